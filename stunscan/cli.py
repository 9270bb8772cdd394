"""The ``stunscan`` command line: thin, it parses options and calls the modules that work.

Scapy is imported inside the commands that use it, never at module level, so that
``stunscan --help`` starts fast.
"""

from __future__ import annotations

import json
import os
import sys
from typing import Annotated, Any

import typer
from rich.console import Console

from stunscan import __version__
from stunscan import protocol as proto

app = typer.Typer(
    help="A Scapy-based raw-packet toolkit for STUN: build, dissect, explain.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode="rich",
)


def _console(stderr: bool = False) -> Console:
    """On a terminal rich fits the window. Into a file or a pipe there is no window, and
    folding addresses at rich's default 80 columns only hurts: give tables room there
    (COLUMNS, if set, still decides)."""
    stream = sys.stderr if stderr else sys.stdout
    roomy = not stream.isatty() and "COLUMNS" not in os.environ
    return Console(stderr=stderr, width=160 if roomy else None)


console = _console()
errors = _console(stderr=True)


def _fail(message: str, code: int = 2) -> None:
    errors.print(f"stunscan: {message}", markup=False, highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _version(value: bool) -> None:
    if value:
        console.print(f"stunscan {__version__}")
        raise typer.Exit()


@app.callback()
def main_options(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    """stunscan: STUN messages built, dissected and explained with Scapy."""


Inputs = Annotated[
    list[str],
    typer.Argument(help="Capture files (pcap/pcapng), folders of them, raw message files, or hex."),
]


@app.command()
def decode(
    inputs: Inputs,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per message.")] = False,
) -> None:
    """Dissect STUN messages with the Scapy layer and show every attribute decoded."""
    from stunscan.display import message_panel
    from stunscan.sources import SourceError, read_sources

    count = 0
    try:
        for found in read_sources(inputs):
            count += 1
            if as_json:
                print(json.dumps(_message_json(found.origin, found.message)), flush=True)
            else:
                console.print(message_panel(found.origin, found.message))
    except SourceError as exc:
        _fail(str(exc))
    if not count:
        _fail("no STUN messages found", code=1)


def _message_json(origin: str, message: Any) -> dict[str, object]:
    result: dict[str, object] = {"origin": origin, "summary": message.summary()}
    if hasattr(message, "malformed_reasons"):
        result["malformed"] = message.malformed_reasons()
    if hasattr(message, "attributes"):
        result["type"] = f"{message.type:04x}"
        result["type_name"] = message.type_name
        result["transaction_id"] = bytes(message.transaction_id).hex()
        result["fingerprint"] = message.fingerprint_ok()
        result["attributes"] = [
            {
                "type": f"{a.type:04x}",
                "name": a.attribute_name,
                "length": a.length,
                "value_hex": a.value_bytes().hex(),
                "value": a.value_text(),
            }
            for a in message.attributes
            if hasattr(a, "attribute_name")
        ]
    return result


@app.command()
def explain(
    message: Annotated[
        str | None, typer.Argument(help="Hex of a message, or a file holding one.")
    ] = None,
    probe: Annotated[
        str,
        typer.Option(
            help="With no MESSAGE: 'shadowserver' (the report's 20-byte probe) or 'binding'."
        ),
    ] = "shadowserver",
) -> None:
    """Show how a STUN message is built, byte by byte (for teaching)."""
    from stunscan.display import explain_table
    from stunscan.layers import STUN, make_attribute
    from stunscan.sources import SourceError, read_sources

    if message is None:
        if probe == "shadowserver":
            pkt = STUN(proto.REFERENCE_PROBE)
        elif probe == "binding":
            pkt = STUN(
                bytes(
                    STUN(
                        type="Binding Request",
                        attributes=[
                            make_attribute("SOFTWARE", value="stunscan"),
                            make_attribute("FINGERPRINT"),
                        ],
                    )
                )
            )
        else:
            _fail(f"unknown probe {probe!r} (shadowserver, binding)")
        messages = [pkt]
    else:
        try:
            messages = [found.message for found in read_sources([message])]
        except SourceError as exc:
            _fail(str(exc))
    for pkt in messages:
        if not hasattr(pkt, "attributes"):
            _fail(f"not a STUN message: {pkt.summary()}")
        console.print(explain_table(pkt))


@app.command()
def pcap(
    inputs: Annotated[list[str], typer.Argument(help="pcap / pcapng files, or folders of them.")],
    csv_out: Annotated[
        str | None, typer.Option("--csv", help="Write the Shadowserver CSV here ('-' for stdout).")
    ] = None,
    json_out: Annotated[
        str | None, typer.Option("--json", help="Write JSON lines here ('-' for stdout).")
    ] = None,
    all_messages: Annotated[
        bool, typer.Option("--all-messages", help="A row for every message, not one per server.")
    ] = False,
    table_rows: Annotated[int, typer.Option(help="Rows shown in the terminal table.")] = 50,
    workers: Annotated[
        int,
        typer.Option(help="Processes for one large pcap file (0: one per core, up to 4)."),
    ] = 0,
) -> None:
    """Analyse captures offline: find every STUN message, pair requests with responses,
    compute amplification, write the Shadowserver report. Scapy is not used."""
    from stunscan.analysis import run_capture_analysis
    from stunscan.parallel import worker_count

    try:
        run_capture_analysis(
            inputs,
            csv_out,
            json_out,
            all_messages,
            table_rows,
            console,
            errors,
            workers or worker_count(),
        )
    except OSError as exc:
        _fail(f"cannot write output: {exc}")


def main() -> None:
    app()
