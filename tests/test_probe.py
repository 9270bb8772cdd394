"""``stunscan probe`` against real servers (coturn and stund started on loopback) and
against misbehaving responders: what is taken, what is counted as stray, what fails how."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator

import pytest
from fake_responders import echo, forged, forged_then_real, late, responder, silent
from lab_servers import LabServer, coturn, free_port_pair, stund

from stunscan import protocol as proto
from stunscan.probe import Probe, Target, Timing, probe_target
from stunscan.probe.exchange import exchange_tcp, exchange_udp
from stunscan.probe.nat import ENDPOINT_INDEPENDENT, NOT_PORT_DEPENDENT
from stunscan.probe.output import host_json, report_row
from stunscan.probe.variants import VARIANTS, binding

QUICK = Timing(rto=0.2, timeout=1.0)


@pytest.fixture(scope="module")
def turn_server() -> Iterator[LabServer]:
    with coturn(auth=True) as server:
        yield server


@pytest.fixture(scope="module")
def stund_server() -> Iterator[LabServer]:
    with stund() as server:
        yield server


def _closed_port(host: str) -> int:
    return free_port_pair((host,))


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_coturn_binding_allocate_and_tcp(turn_server: LabServer, host: str) -> None:
    probe = Probe(("shadowserver", "binding", "allocate"), udp=True, tcp=True, timing=QUICK)
    report = probe_target(Target(host, host, turn_server.port), probe)
    by_key = {(r.variant, r.exchange.transport): r.exchange for r in report.results}
    assert set(by_key) == {(v, t) for v in probe.variants for t in ("udp", "tcp")}
    for (variant, _), exchange in by_key.items():
        assert exchange.answered, (variant, exchange.failure)
        assert exchange.answer[4:20] == exchange.request[4:20]
        assert exchange.source == (host, turn_server.port) and not exchange.moved
        assert exchange.amplification == len(exchange.answer) / len(exchange.request)
        assert exchange.rtt is not None and 0 < exchange.rtt < 1
    binding_answer = by_key[("binding", "udp")].message
    assert binding_answer is not None and binding_answer.type_name == "Binding Success Response"
    xor = binding_answer.get("XOR-MAPPED-ADDRESS").decoded
    assert (xor.address, xor.port) == by_key[("binding", "udp")].local
    assert binding_answer.get("MAPPED-ADDRESS").decoded == xor
    assert binding_answer.get("SOFTWARE").decoded.startswith("Coturn-")
    unauthorized = by_key[("allocate", "udp")].message
    assert unauthorized is not None and unauthorized.get("ERROR-CODE").decoded[0] == 401
    assert unauthorized.get("REALM").decoded == "example.org"
    worst = report.worst()
    assert worst is not None and worst.exchange.transport == "udp"
    assert worst.exchange.amplification == max(
        e.amplification for (_, t), e in by_key.items() if t == "udp"
    )
    verdict = report.verdict()
    assert verdict.startswith("AMPLIFIER over UDP") and "TURN server" in verdict
    assert "answers over TCP" in verdict
    row = report_row(report)
    assert row is not None and row.request_size == 20
    assert row.row()["transaction_id"] == "0" * 24  # the report's own probe was preferred


def test_stund_classic_and_change_request_answered_from_elsewhere(
    stund_server: LabServer,
) -> None:
    probe = Probe(("classic", "change-request"), timing=QUICK)
    report = probe_target(Target("stund", stund_server.host, stund_server.port), probe)
    classic, change = (r.exchange for r in report.results)
    assert classic.answered and len(classic.request) == 20
    assert classic.request[4:8] != proto.MAGIC_COOKIE_BYTES
    assert classic.message is not None and classic.message.kind == proto.CLASSIC_MESSAGE
    assert change.answered and change.moved
    assert change.source == (stund_server.alternate_host, stund_server.alternate_port)
    changed = classic.message.get("CHANGED-ADDRESS").decoded
    assert (changed.address, changed.port) == change.source


def test_nat_discovery_through_stund_two_addresses(stund_server: LabServer) -> None:
    probe = Probe(("nat",), timing=QUICK)
    report = probe_target(Target("stund", stund_server.host, stund_server.port), probe)
    nat = report.nat
    assert nat is not None and nat.nat is False  # loopback: the mapped address is our own
    assert (nat.other.address, nat.other.port) == (
        stund_server.alternate_host,
        stund_server.alternate_port,
    )
    assert (nat.mapping, nat.filtering) == (ENDPOINT_INDEPENDENT, ENDPOINT_INDEPENDENT)
    asked = {exchange.target for _, exchange in nat.tests}
    assert (stund_server.alternate_host, stund_server.port) in asked
    locals_ = {exchange.local[1] for _, exchange in nat.tests if exchange.local}
    assert len(locals_) == 1  # every test from the same local port, as RFC 5780 requires
    assert host_json(report)["nat"]["mapping"] == ENDPOINT_INDEPENDENT


def test_nat_discovery_with_a_one_address_server(turn_server: LabServer) -> None:
    report = probe_target(
        Target("coturn", "127.0.0.1", turn_server.port), Probe(("nat",), timing=QUICK)
    )
    assert report.nat is not None
    assert report.nat.mapping == ENDPOINT_INDEPENDENT
    assert report.nat.filtering == NOT_PORT_DEPENDENT
    assert any("one IP address" in note for note in report.nat.notes)


def test_a_silent_host_is_retransmitted_to_on_schedule_then_given_up() -> None:
    timing = Timing(rto=0.2, transmissions=7, timeout=1.0)  # sends at 0, 0.2, 0.6
    with responder(silent) as quiet:
        exchange = exchange_udp(binding(), quiet.address, timing)
    assert exchange.failure == "no answer" and not exchange.answered
    assert exchange.sent == 3 == len(quiet.received)
    assert len(set(quiet.received)) == 1  # retransmissions are the same request


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_a_closed_port_is_reported_as_icmp_unreachable(host: str) -> None:
    exchange = exchange_udp(binding(), (host, _closed_port(host)), QUICK)
    assert exchange.failure in ("ICMP port unreachable", "ICMPv6 port unreachable")
    tcp = exchange_tcp(binding(), (host, _closed_port(host)), QUICK)
    assert tcp.failure == "TCP connection refused"


def test_a_forged_transaction_id_is_counted_as_stray_never_taken() -> None:
    with responder(forged) as liar:
        exchange = exchange_udp(binding(), liar.address, QUICK)
    assert not exchange.answered and exchange.failure == "no answer"
    assert exchange.stray["another transaction ID"] == exchange.sent >= 1


def test_the_real_answer_is_taken_after_a_forged_one() -> None:
    with responder(forged_then_real) as server:
        exchange = exchange_udp(binding(), server.address, QUICK)
    assert exchange.answered and exchange.sent == 1
    assert dict(exchange.stray) == {"another transaction ID": 1}
    assert exchange.answer[8:20] == exchange.request[8:20]


def test_an_echo_of_the_request_is_not_an_answer() -> None:
    with responder(echo) as mirror:
        exchange = exchange_udp(binding(), mirror.address, QUICK)
    assert not exchange.answered
    assert exchange.stray["not a response (an echo of the request?)"] >= 1


def test_a_retransmission_draws_the_answer() -> None:
    with responder(late) as slow:
        exchange = exchange_udp(binding(), slow.address, QUICK)
    assert exchange.answered and exchange.sent == 2 == len(slow.received)


def test_tcp_to_a_server_that_sends_garbage() -> None:
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]

        def serve() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(100)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

        thread = threading.Thread(target=serve, daemon=True)
        thread.start()
        exchange = exchange_tcp(binding(), ("127.0.0.1", port), QUICK)
        thread.join(timeout=2)
    assert not exchange.answered
    assert exchange.failure in (
        "the server sent bytes that are not STUN",
        "connection closed without an answer",
    )


def test_timing_follows_rfc_8489() -> None:
    rfc = Timing(rto=0.5, transmissions=7, last_wait=16, timeout=0)
    assert rfc.send_times() == [0, 0.5, 1.5, 3.5, 7.5, 15.5, 31.5]
    assert rfc.deadline() == 39.5
    capped = Timing(rto=0.5, timeout=3.0)
    assert capped.send_times() == [0, 0.5, 1.5] and capped.deadline() == 3.0
    assert Timing(rto=0.5, transmissions=1, timeout=0).deadline() == 8.0


def test_every_variant_has_a_question_and_builds_valid_stun() -> None:
    for name, variant in VARIANTS.items():
        request = variant.build()
        assert variant.question
        assert proto.classify(request) in (proto.STUN_MESSAGE, proto.CLASSIC_MESSAGE), name
        assert proto.message_length_field(request) == len(request) - 20


def test_an_open_relay_is_called_one() -> None:
    with coturn() as open_server:  # no credentials asked: Allocate succeeds
        report = probe_target(
            Target("open", "127.0.0.1", open_server.port), Probe(("allocate",), timing=QUICK)
        )
    (result,) = report.results
    assert result.exchange.message is not None
    assert result.exchange.message.type_name == "Allocate Success Response"
    assert result.exchange.message.get("XOR-RELAYED-ADDRESS") is not None
    assert "OPEN TURN relay" in report.verdict() and "401" not in report.verdict()
