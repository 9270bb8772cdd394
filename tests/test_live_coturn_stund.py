"""The Scapy layer against real servers: requests built with it, sent to coturn and stund
started on loopback, their real answers dissected with every attribute decoded."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from lab_servers import LabServer, coturn, exchange_tcp, exchange_udp, stund

from stunscan import protocol as proto
from stunscan.layers import STUN, STUNClassic, STUNStream, make_attribute


@pytest.fixture(scope="module")
def coturn_server() -> Iterator[LabServer]:
    with coturn() as server:
        yield server


@pytest.fixture(scope="module")
def coturn_auth_server() -> Iterator[LabServer]:
    with coturn(auth=True, ipv6=False) as server:
        yield server


@pytest.fixture(scope="module")
def stund_server() -> Iterator[LabServer]:
    with stund() as server:
        yield server


def _address(pkt: STUN, name: str) -> tuple[str, int]:
    attr = pkt.get_attribute(name)
    assert attr is not None, f"no {name} in {pkt.summary()}"
    return attr.decoded.address, attr.decoded.port


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
def test_coturn_binding_over_udp(coturn_server: LabServer, host: str) -> None:
    request = STUN(
        type="Binding Request", attributes=[make_attribute("SOFTWARE", value="stunscan tests")]
    )
    answer, source, own = exchange_udp(bytes(request), (host, coturn_server.port))
    response = STUN(answer)
    assert type(response) is STUN
    assert response.type_name == "Binding Success Response"
    assert response.transaction_id == request.transaction_id
    assert response.malformed_reasons() == []
    assert source == (host, coturn_server.port)
    assert _address(response, "XOR-MAPPED-ADDRESS") == own
    assert _address(response, "MAPPED-ADDRESS") == own
    assert _address(response, "RESPONSE-ORIGIN") == (host, coturn_server.port)
    assert _address(response, "OTHER-ADDRESS") == (host, coturn_server.alternate_port)
    assert response.get_attribute("SOFTWARE").decoded.startswith("Coturn-")
    assert response.fingerprint_ok() in (True, None)
    xor = response.get_attribute("XOR-MAPPED-ADDRESS")
    assert xor.raw_port == own[1] ^ 0x2112  # the wire value really is XORed
    assert bytes(response) == answer


def test_coturn_binding_over_tcp(coturn_server: LabServer) -> None:
    request = STUN(type="Binding Request", attributes=[make_attribute("FINGERPRINT")])
    answer, own = exchange_tcp(bytes(request), coturn_server.address)
    (response,) = STUNStream(answer).messages
    assert response.type_name == "Binding Success Response"
    assert response.transaction_id == request.transaction_id
    assert _address(response, "XOR-MAPPED-ADDRESS") == own
    assert response.malformed_reasons() == []


def test_coturn_allocate_without_credentials_gets_401(coturn_auth_server: LabServer) -> None:
    request = STUN(
        type="Allocate Request", attributes=[make_attribute("REQUESTED-TRANSPORT", protocol=17)]
    )
    answer, _, _ = exchange_udp(bytes(request), coturn_auth_server.address)
    response = STUN(answer)
    assert response.type_name == "Allocate Error Response"
    assert response.get_attribute("ERROR-CODE").decoded[0] == 401
    assert response.get_attribute("REALM").decoded == "example.org"
    assert len(response.get_attribute("NONCE").decoded) >= 8
    assert response.malformed_reasons() == []
    assert len(answer) > len(bytes(request))  # the amplification the report is about


def test_coturn_allocate_with_credentials_is_authenticated(coturn_auth_server: LabServer) -> None:
    """The 401's NONCE and REALM, then MESSAGE-INTEGRITY built by the layer: coturn accepts it
    (from the same 5-tuple: coturn ties the nonce to it)."""
    key = proto.long_term_key("alice", "example.org", "secret")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.settimeout(1.0)
        sock.bind(("127.0.0.1", 0))
        first = STUN(type="Allocate Request", attributes=[make_attribute("REQUESTED-TRANSPORT")])
        sock.sendto(bytes(first), coturn_auth_server.address)
        challenge = STUN(sock.recv(65535))
        request = STUN(
            type="Allocate Request",
            attributes=[
                make_attribute("REQUESTED-TRANSPORT"),
                make_attribute("USERNAME", value="alice"),
                make_attribute("REALM", value="example.org"),
                make_attribute("NONCE", value=challenge.get_attribute("NONCE").decoded),
                make_attribute("MESSAGE-INTEGRITY", key=key),
                make_attribute("FINGERPRINT"),
            ],
        )
        sock.sendto(bytes(request), coturn_auth_server.address)
        response = STUN(sock.recv(65535))
    assert response.type_name == "Allocate Success Response", response.summary()
    assert response.integrity_ok(key) is True
    assert response.integrity_ok(proto.long_term_key("alice", "example.org", "wrong")) is False
    assert response.get_attribute("XOR-RELAYED-ADDRESS").decoded.address == "127.0.0.1"
    assert response.get_attribute("LIFETIME").decoded > 0


@pytest.mark.parametrize("classic", [False, True])
def test_stund_binding(stund_server: LabServer, classic: bool) -> None:
    request = STUNClassic(type="Binding Request") if classic else STUN(type="Binding Request")
    answer, source, own = exchange_udp(bytes(request), stund_server.address)
    response = STUN(answer)
    assert type(response) is (STUNClassic if classic else STUN)
    assert response.transaction_id == request.transaction_id
    assert source == stund_server.address
    assert _address(response, "MAPPED-ADDRESS") == own
    assert _address(response, "SOURCE-ADDRESS") == stund_server.address
    assert _address(response, "CHANGED-ADDRESS") == (
        stund_server.alternate_host,
        stund_server.alternate_port,
    )
    # Debian's stund 0.97 sends XOR-MAPPED-ADDRESS as 0x0020 (rfc3489bis), XORed with the
    # cookie, or in a classic message with the first bytes of the 128-bit ID
    xor = response.get_attribute("XOR-MAPPED-ADDRESS")
    assert (xor.decoded.address, xor.decoded.port) == own
    assert xor.raw_port != own[1]
    assert "Vovida" in response.get_attribute("SOFTWARE").decoded
    assert response.malformed_reasons() == []


def test_stund_change_request_answers_from_the_other_address_and_port(
    stund_server: LabServer,
) -> None:
    request = STUNClassic(
        type="Binding Request",
        attributes=[make_attribute("CHANGE-REQUEST", change_ip=1, change_port=1)],
    )
    answer, source, own = exchange_udp(bytes(request), stund_server.address)
    assert source == (stund_server.alternate_host, stund_server.alternate_port)
    response = STUN(answer)
    assert _address(response, "SOURCE-ADDRESS") == source
    assert _address(response, "MAPPED-ADDRESS") == own


def test_stund_change_port_only(stund_server: LabServer) -> None:
    request = STUN(
        type="Binding Request", attributes=[make_attribute("CHANGE-REQUEST", change_port=1)]
    )
    _, source, _ = exchange_udp(bytes(request), stund_server.address)
    assert source == (stund_server.host, stund_server.alternate_port)
