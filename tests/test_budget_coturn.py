"""The amplification budget proven on a real coturn: started on loopback with its default
settings and with each setting the advice table names, probed with the report's 20-byte
probe; the factor the budget predicts for each setting is the factor measured."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from lab_servers import LabServer, coturn

from stunscan import advice
from stunscan.budget import MINIMUM_IPV4, MINIMUM_IPV6, REMOVABLE, Budget
from stunscan.probe import Probe, Timing, probe_target, resolve
from stunscan.probe.why import why

HOSTS = ("127.0.0.1", "::1")
COTURN_SETTINGS = [setting for _, setting, _ in advice.settings_for(advice.COTURN)]
ALL_SETTINGS = " ".join(dict.fromkeys(o for s in COTURN_SETTINGS for o in s.split()))
PROBE = Probe(("shadowserver",), timing=Timing(timeout=2.0))


def _probe(server: LabServer, host: str) -> tuple[float, Budget, advice.Advice]:
    (target,) = resolve(f"[{host}]:{server.port}" if ":" in host else f"{host}:{server.port}")  # type: ignore[misc]
    report = probe_target(target, PROBE)
    reason = why(report)
    assert reason is not None, report.verdict()
    assert len(reason.result.exchange.request) == 20
    return reason.result.exchange.amplification or 0.0, reason.budget, reason.advice


@pytest.fixture(scope="module")
def default_answers() -> Iterator[dict[str, tuple[float, Budget, advice.Advice]]]:
    with coturn() as server:
        yield {host: _probe(server, host) for host in HOSTS}


def test_default_coturn_budget_adds_up(
    default_answers: dict[str, tuple[float, Budget, advice.Advice]],
) -> None:
    for host, (measured, plan, told) in default_answers.items():
        assert sum(p.size for p in plan.parts) == plan.response_size
        assert plan.factor == pytest.approx(measured)
        assert sum(p.share for p in plan.parts) == pytest.approx(measured)
        removable = {p.name for p in plan.removable}
        assert removable == {"MAPPED-ADDRESS", "RESPONSE-ORIGIN", "OTHER-ADDRESS", "SOFTWARE"}
        assert plan.minimum_size == (MINIMUM_IPV6 if ":" in host else MINIMUM_IPV4)
        assert told.server == advice.COTURN and told.recognised_by == "SOFTWARE"
        assert not told.unfixable
        assert told.steps[-1][3] == pytest.approx(plan.minimum_factor)
    assert default_answers["127.0.0.1"][0] == pytest.approx(4.60)


@pytest.mark.parametrize("setting", [*COTURN_SETTINGS, ALL_SETTINGS])
def test_each_setting_drops_what_the_budget_predicts(
    setting: str, default_answers: dict[str, tuple[float, Budget, advice.Advice]]
) -> None:
    options = tuple(setting.split())
    dropped = advice.dropped_by(advice.COTURN, set(options))
    assert dropped
    with coturn(extra=options) as server:
        for host in HOSTS:
            measured, after, _ = _probe(server, host)
            before = default_answers[host][1]
            assert measured == pytest.approx(before.factor_without(dropped)), (host, setting)
            assert measured < before.factor
            assert {p.name for p in after.parts} == {p.name for p in before.parts} - dropped
    if setting == ALL_SETTINGS:
        assert {
            p.name for p in default_answers["::1"][1].parts if p.verdict == REMOVABLE
        } <= dropped


def test_all_settings_reach_the_minimum() -> None:
    with coturn(extra=tuple(ALL_SETTINGS.split())) as server:
        factors = {host: _probe(server, host) for host in HOSTS}
    assert factors["127.0.0.1"][0] == pytest.approx(MINIMUM_IPV4 / 20) == pytest.approx(1.60)
    assert factors["::1"][0] == pytest.approx(MINIMUM_IPV6 / 20) == pytest.approx(2.20)
    for _, plan, told in factors.values():
        assert not plan.removable
        assert told.steps == ()  # nothing left to advise but the general mitigations
        assert told.server is None  # nothing left to recognise it by


def test_probe_panel_and_json_carry_the_budget_and_advice() -> None:
    import json
    import subprocess
    import sys

    with coturn(ipv6=False) as server:
        target = f"127.0.0.1:{server.port}"
        command = [sys.executable, "-m", "stunscan", "probe", "-V", "shadowserver", "--tcp"]
        panel = subprocess.run([*command, target], capture_output=True, text=True, timeout=60)
        line = subprocess.run(
            [*command, "--json", "-", target], capture_output=True, text=True, timeout=60
        )
    assert panel.returncode == 0, panel.stderr
    assert "Why it amplifies (shadowserver:" in panel.stdout
    assert "--no-software-attribute: drops SOFTWARE" in panel.stdout
    assert "it answers over TCP already" in panel.stdout
    host = json.loads(line.stdout)
    (udp,) = [r for r in host["results"] if r["transport"] == "udp"]
    plan = udp["budget"]
    assert sum(p["bytes"] for p in plan["parts"]) == plan["response_size"] == 20 * plan["factor"]
    assert plan["minimum_size"] == MINIMUM_IPV4 and plan["judged"] is True
    assert {p["part"] for p in plan["parts"] if p["verdict"] == "removable"} >= {"SOFTWARE"}
    advice_json = host["advice"]
    assert advice_json["server"] == "coturn"
    assert advice_json["settings"][0]["setting"] == "--no-software-attribute"
    assert any("TCP already" in note for note in advice_json["notes"])
