"""``stunscan probe`` end to end: resolve, probe hosts side by side, stream the results.

Hosts are probed concurrently (threads: the work is waiting on sockets), each host's
variants one after another, and results are written in the order the hosts were given as
soon as each is complete, so a long list shows progress and an interrupted run keeps what
it finished.
"""

from __future__ import annotations

import ipaddress
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from typing import IO, Any

from rich.console import Console

from stunscan.enrich.columns import Enrichment
from stunscan.enrich.enricher import Enricher
from stunscan.jsonout import json_text
from stunscan.probe import HostReport, Probe, Unresolved, probe_target, resolve
from stunscan.probe.output import host_json, report_row
from stunscan.probe.panel import probe_panel
from stunscan.probe.targets import split_host_port
from stunscan.record import CSVWriter, open_output


def run_probes(
    hosts: list[str],
    probe: Probe,
    family: int,
    parallel: int,
    csv_out: str | None,
    json_out: str | None,
    console: Console,
    errors: Console,
    enricher: Enricher | None = None,
) -> bool:
    """Probe every host; True if any answered. ValueError for a malformed target.
    ``enricher``: the enrichment columns (a name the user typed is the hostname; an
    address's reverse lookup starts with its probe, if the enricher does PTR)."""
    for host in hosts:
        split_host_port(host)  # every target checked before anything is sent
    answered = False
    enricher = enricher or Enricher()
    with ExitStack() as stack:
        csv_writer = CSVWriter(open_output(stack, csv_out)) if csv_out else None
        json_stream = open_output(stack, json_out) if json_out else None
        show_panels = "-" not in (csv_out, json_out)
        stack.callback(enricher.close)

        def write(report: HostReport, enrichment: Enrichment) -> None:
            report.enrichment = enrichment
            if show_panels:
                console.print(probe_panel(report))
            if csv_writer is not None and (row := report_row(report)) is not None:
                csv_writer.write(row)
            if json_stream is not None:
                json_stream.write(json_text(host_json(report)) + "\n")
                json_stream.flush()

        stream = enricher.stream(write)
        pool = stack.enter_context(ThreadPoolExecutor(max_workers=parallel))
        resolving = [pool.submit(resolve, host, family) for host in hosts]
        # Probes start as soon as their name resolves; results go out in the hosts' order.
        planned: list[Unresolved | list[Future[HostReport]]] = []
        for pending in resolving:
            found = pending.result()
            if isinstance(found, Unresolved):
                planned.append(found)
            else:
                planned.append([pool.submit(probe_target, t, probe) for t in found])
                for target in found:  # reverse lookups run while the probes do
                    if enricher.ptr is not None and _typed_name(target.given) is None:
                        enricher.ptr.lookup(target.address)
        try:
            for item in planned:
                if isinstance(item, Unresolved):
                    stream.close()  # the hosts before it first, in order
                    _unresolved(item, errors, json_stream)
                    continue
                for future in item:
                    report = future.result()
                    answered |= report.answered
                    target = report.target
                    stream.put(target.address, report, _typed_name(target.given))
            stream.close()
        except KeyboardInterrupt:
            pool.shutdown(wait=False, cancel_futures=True)
            errors.print("stunscan: interrupted: results above are complete", markup=False)
    return answered


def _unresolved(found: Unresolved, errors: Console, json_stream: IO[str] | None) -> None:
    errors.print(f"stunscan: {found.host}: {found.reason}", markup=False, highlight=False)
    if json_stream is not None:
        record: dict[str, Any] = {"host": found.given, "answered": False, "error": found.reason}
        json_stream.write(json_text(record) + "\n")
        json_stream.flush()


def _typed_name(given: str) -> str | None:
    """The host name the user typed for a target, None if they typed an address."""
    host = split_host_port(given)[0]
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return host
    return None
