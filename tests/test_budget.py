"""The budget and the advice on messages of every shape: classic stund answers, coturn
without SOFTWARE, answers to a FINGERPRINT request, errors, malformed and hostile input."""

from __future__ import annotations

import pytest
from lab_servers import exchange_udp, stund

from stunscan import advice, codec
from stunscan import protocol as proto
from stunscan.budget import MINIMUM_IPV4, NEEDED, OTHER, REMOVABLE, budget

SUCCESS = proto.message_type(0x001, proto.MessageClass.SUCCESS_RESPONSE)
KEY = proto.MAGIC_COOKIE_BYTES + bytes(12)


def _address(code: int, xor: bool = False) -> tuple[int, bytes]:
    value = (
        proto.encode_xor_address("192.0.2.1", 3478, KEY)
        if xor
        else proto.encode_address("192.0.2.1", 3478)
    )
    return code, value


def test_stund_classic_answer_is_recognised_and_has_no_setting() -> None:
    with stund() as server:
        answer, _, _ = exchange_udp(proto.REFERENCE_PROBE, server.address)
    message = codec.decode(answer)
    assert message is not None
    plan = budget(message)
    assert plan.response_size == len(answer) and plan.known
    needed = [p.name for p in plan.parts if p.verdict == NEEDED]
    assert needed == ["header", "XOR-MAPPED-ADDRESS"]  # Debian's stund sends 0x0020
    assert {p.name for p in plan.removable} >= {"MAPPED-ADDRESS", "SOURCE-ADDRESS", "SOFTWARE"}
    told = advice.advise(message, plan)
    assert told.server == advice.STUND and told.recognised_by == "SOFTWARE"
    assert told.steps == () and any("no option" in n for n in told.notes)


def test_coturn_without_software_is_recognised_by_its_attribute_order() -> None:
    wire = proto.encode_message(
        SUCCESS,
        bytes(12),
        [
            _address(proto.XOR_MAPPED_ADDRESS, xor=True),
            _address(proto.MAPPED_ADDRESS),
            _address(proto.ATTRIBUTE_CODES["RESPONSE-ORIGIN"]),
        ],
    )
    message = codec.decode(wire)
    assert message is not None
    told = advice.advise(message, budget(message))
    assert (told.server, told.recognised_by) == (advice.COTURN, "the order of its attributes")
    assert told.steps[0][1] == "--no-stun-backward-compatibility"


def test_fingerprint_is_needed_only_when_the_request_had_one() -> None:
    wire = proto.encode_message(
        SUCCESS, bytes(12), [_address(proto.XOR_MAPPED_ADDRESS, xor=True)], fingerprint_last=True
    )
    message = codec.decode(wire)
    assert message is not None
    verdicts = {p.name: p.verdict for p in budget(message).parts}
    assert verdicts["FINGERPRINT"] == REMOVABLE
    plan = budget(message, 28, request_fingerprint=True)
    assert {p.name: p.verdict for p in plan.parts}["FINGERPRINT"] == NEEDED
    assert plan.minimum_size == MINIMUM_IPV4 + 8 and plan.factor == pytest.approx(40 / 28)


def test_classic_answer_needs_mapped_address() -> None:
    wire = proto.encode_message(SUCCESS, bytes(16), [_address(proto.MAPPED_ADDRESS)])
    message = codec.decode(wire)
    assert message is not None
    plan = budget(message)
    assert [p.verdict for p in plan.parts] == [NEEDED, NEEDED]
    assert plan.minimum_size == 32


def test_error_and_truncated_messages_are_not_judged_but_still_add_up() -> None:
    error = proto.encode_message(
        proto.message_type(0x003, 3), bytes(12), [(proto.ERROR_CODE, b"\x00\x00\x04\x01Unauth")]
    )
    message = codec.decode(error)
    assert message is not None
    plan = budget(message)
    assert not plan.known and plan.minimum_size == plan.response_size == len(error)
    assert {p.verdict for p in plan.parts[1:]} == {OTHER}
    broken = proto.encode_message(SUCCESS, bytes(12), [(proto.SOFTWARE, b"abcdefgh")])[:-3]
    hostile = codec.decode(broken + b"\x00")
    assert hostile is not None
    plan = budget(hostile, response_size=len(broken) + 1)
    assert sum(p.size for p in plan.parts) == len(broken) + 1
    with pytest.raises(ValueError, match="at least one byte"):
        budget(hostile, 0)


def test_hostile_software_text_does_not_match_by_accident() -> None:
    wire = proto.encode_message(SUCCESS, bytes(12), [(proto.SOFTWARE, b"\x1b[31mCoturn-1")])
    message = codec.decode(wire)
    assert message is not None
    assert advice.recognise(message) == (None, "")


def test_binding_answers_of_the_corpus_captures_are_recognised() -> None:
    from stunscan.capture.sources import read_sources

    from corpus import CORPUS

    capture = CORPUS / "pcaps" / "ndpi" / "stun.pcap"
    if not capture.is_file():
        pytest.skip(f"no corpus at {CORPUS}")
    seen: dict[tuple[str, ...], str | None] = {}
    warnings: list[str] = []
    for found in read_sources([str(capture)], warnings.append):
        if not hasattr(found.message, "message_bytes"):
            continue
        message = codec.decode(found.message.message_bytes())
        if message is None or message.msg_type != SUCCESS:
            continue
        plan = budget(message)
        assert sum(p.size for p in plan.parts) == plan.response_size
        seen[tuple(a.name for a in message.attributes)] = advice.recognise(message)[0]
    assert warnings == []
    coturn_shape = (
        "XOR-MAPPED-ADDRESS",
        "MAPPED-ADDRESS",
        "RESPONSE-ORIGIN",
        "OTHER-ADDRESS",
        "FINGERPRINT",
    )
    assert seen[coturn_shape] == advice.COTURN  # a coturn that hides SOFTWARE
    microsoft = [shape for shape in seen if shape[:2] == ("XOR-MAPPED-ADDRESS", "USERNAME")]
    assert microsoft and all(seen[shape] == advice.MS_ICE for shape in microsoft)


def test_a_budget_of_thousands_of_parts_lists_the_first_and_sums_the_rest() -> None:
    """A 64 KB answer of 16,383 attributes: the table shows MAX_SHOWN_PARTS rows and one
    row summing the rest, whose bytes add up to the whole answer."""
    from rich.console import Console

    from stunscan.render.budget import MAX_SHOWN_PARTS, budget_table

    body = b"".join(proto_attr(0x8029 + (i & 1)) for i in range(1000))
    wire = bytes.fromhex("0101") + len(body).to_bytes(2, "big") + bytes(16) + body
    wire = wire[:4] + bytes.fromhex("2112a442") + wire[8:]
    plan = budget(codec.decode(wire))
    table = budget_table(plan)
    assert table.row_count == MAX_SHOWN_PARTS + 2  # the first parts, the rest, the total
    console = Console(width=120, record=True)
    console.print(table)
    text = console.export_text()
    rest = plan.parts[MAX_SHOWN_PARTS:]
    assert f"{len(rest)} more parts" in text
    assert sum(p.size for p in plan.parts[:MAX_SHOWN_PARTS]) + sum(p.size for p in rest) == (
        plan.response_size
    )


def proto_attr(code: int) -> bytes:
    """An attribute of ``code`` with a 4-byte value."""
    return code.to_bytes(2, "big") + (4).to_bytes(2, "big") + bytes(4)
