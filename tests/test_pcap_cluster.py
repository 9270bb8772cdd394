"""A Dask cluster, one answer: ``stunscan pcap --cluster`` on a real ``distributed``
LocalCluster (two worker processes over TCP on loopback) writes the same CSV bytes, JSON
lines, table and summary as one process, on every capture of the corpus and of pcaps/, on
a generated capture cut into runs (cuts that separate requests from their responses), on
several files at once and on a file read through an fsspec URL."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from stunscan.cli import app
from stunscan.pcap.cluster import ClusterError, connect, plan_runs
from stunscan.pcap.parallel import boundaries

from corpus import CORPUS, PROJECT, corpus_pcaps, needs_corpus

sys.path.insert(0, str(PROJECT / "benchmarks"))
from mixed_capture import generate

runner = CliRunner()
PROJECT_PCAPS = sorted(p for p in (PROJECT / "pcaps").iterdir() if p.suffix in (".pcap", ".pcapng"))


@pytest.fixture(scope="module")
def scheduler() -> Iterator[str]:
    from distributed import LocalCluster

    cluster = LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        protocol="tcp",
        dashboard_address=None,
        worker_dashboard_address=None,
    )
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4.4 MB of mixed traffic, cut into five 1 MiB runs."""
    path = tmp_path_factory.mktemp("cluster") / "mixed.pcap"
    generate(path, 40_000, seed=7)
    return path


def report(tmp_path: Path, inputs: list[str], *options: str) -> dict[str, object]:
    """Everything `stunscan pcap` shows and writes for these inputs."""
    csv_out, json_out = tmp_path / "out.csv", tmp_path / "out.jsonl"
    for stale in (csv_out, json_out):
        stale.unlink(missing_ok=True)
    result = runner.invoke(
        app,
        ["pcap", *inputs, "--csv", str(csv_out), "--json", str(json_out), *options],
        env={"COLUMNS": "200"},
    )
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return {
        "exit": result.exit_code,
        "csv": csv_out.read_bytes() if csv_out.exists() else None,
        "json": json_out.read_bytes() if json_out.exists() else None,
        "stdout": result.stdout,
        "stderr": result.stderr,
    }


def assert_same(tmp_path: Path, scheduler: str, inputs: list[str], *options: str) -> None:
    one = report(tmp_path, inputs, "--workers", "1", *options)
    on_cluster = report(tmp_path, inputs, "--cluster", scheduler, "--chunk-mib", "1", *options)
    assert one["exit"] == 0
    assert on_cluster == one
    assert one["csv"]


@needs_corpus
@pytest.mark.parametrize(
    "path", corpus_pcaps() + PROJECT_PCAPS, ids=lambda p: f"{p.parent.name}/{p.name}"
)
def test_every_capture_as_one_process(tmp_path: Path, scheduler: str, path: Path) -> None:
    assert_same(tmp_path, scheduler, [str(path)])


@needs_corpus
def test_whole_folders_in_one_run(tmp_path: Path, scheduler: str) -> None:
    # several files: every file a task, merged in file order, each server reported once
    assert_same(tmp_path, scheduler, [str(CORPUS / "pcaps"), str(PROJECT / "pcaps")])


def test_a_capture_cut_into_runs(tmp_path: Path, scheduler: str, mixed: Path) -> None:
    runs = plan_runs([mixed], 1 << 20)
    assert len(runs) == 5 and [run.start for run in runs] == boundaries(mixed, 5)[:-1]  # type: ignore[index]
    assert_same(tmp_path, scheduler, [str(mixed)])
    assert_same(tmp_path, scheduler, [str(mixed), str(PROJECT / "pcaps" / "coturn-udp.pcap")])


def test_every_message_of_a_cut_capture(tmp_path: Path, scheduler: str, mixed: Path) -> None:
    assert_same(tmp_path, scheduler, [str(mixed), str(PROJECT / "pcaps")], "--all-messages")


def test_an_fsspec_url_is_staged_run_by_run(tmp_path: Path, scheduler: str, mixed: Path) -> None:
    one = report(tmp_path, [str(mixed)], "--workers", "1")
    url = f"file://{mixed}"
    on_cluster = report(tmp_path, [url], "--cluster", scheduler, "--chunk-mib", "1")
    assert on_cluster == one
    runs = plan_runs([url], 1 << 20)  # the cuts found on a sparse copy of the windows
    assert [run.start for run in runs] == boundaries(mixed, 5)[:-1]  # type: ignore[index]


def test_a_damaged_file_is_reported_and_the_others_analysed(
    tmp_path: Path, scheduler: str, mixed: Path
) -> None:
    damaged = tmp_path / "cut.pcap"
    damaged.write_bytes(mixed.read_bytes()[: 3 << 20])  # ends inside a record
    inputs = [str(damaged), str(PROJECT / "pcaps")]
    one = report(tmp_path, inputs, "--workers", "1")
    on_cluster = report(tmp_path, inputs, "--cluster", scheduler, "--chunk-mib", "1")
    assert on_cluster == one
    assert "cut.pcap: truncated packet data" in str(one["stderr"])
    assert "coturn" in str(one["csv"]) or b"127.0.0.1" in one["csv"]  # type: ignore[operator]


def test_urls_need_a_cluster_and_bad_schedulers_are_one_line(mixed: Path) -> None:
    result = runner.invoke(app, ["pcap", f"file://{mixed}"])
    assert result.exit_code == 2
    assert "a URL is read only with --cluster" in result.stderr
    result = runner.invoke(app, ["pcap", "--cluster", "file:///nowhere", str(mixed)])
    assert result.exit_code == 2
    assert result.stderr.startswith("stunscan: not a Dask scheduler address")
    assert "Traceback" not in result.stderr
    with pytest.raises(ClusterError):
        connect("udp://127.0.0.1:1")
