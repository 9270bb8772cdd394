"""A response seen that will become a report row, kept as bytes until the row is needed.

Decoding every attribute is most of the cost of a row. The analyser's workers (see
``stunscan.pcap.parallel``) find first sightings of servers that another run may already have
reported, so they hand these back undecoded; only the parent decodes the ones it writes.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass

from stunscan import codec, csvrow, roles
from stunscan.csvrow import Line
from stunscan.record import Record
from stunscan.text import endpoint_text


@dataclass(slots=True)
class Sighting:
    """One message to report: where and when it was seen and its bytes, not decoded."""

    time: float
    transport: str
    data: bytes
    src: bytes
    sport: int
    dst: bytes
    dport: int
    request_size: int | None
    pair_key: bytes | None = None
    moved: bool = False
    """Answered from another address than the request went to (see Analyzer._pair)."""
    first: bool = False
    """The first response seen from its server: the one the server tally counts."""
    line: Line | None = None
    """Its report row's CSV line, when made already (``stunscan.pcap.block``)."""

    def __reduce__(self) -> tuple[type[Sighting], tuple[object, ...]]:
        """Pickled as its fields in order: several times faster than a slots class's
        default, and the workers of stunscan.pcap.parallel send thousands."""
        return Sighting, (
            self.time,
            self.transport,
            self.data,
            self.src,
            self.sport,
            self.dst,
            self.dport,
            self.request_size,
            self.pair_key,
            self.moved,
            self.first,
            self.line,
        )

    @property
    def role(self) -> str | None:
        """The responder's role (stunscan.roles), from the bytes; None unless a response."""
        return roles.role_of_bytes(self.data)

    @property
    def server(self) -> tuple[bytes, int]:
        """The server's (packed address, port): the sender of a response, else the receiver."""
        if len(self.data) >= 2 and not roles.from_server((self.data[0] << 8) | self.data[1]):
            return self.dst, self.dport
        return self.src, self.sport

    def record(self) -> Record:
        """The report row's record, decoded now (not kept: a batch's worth of decoded
        messages would be most of the analyser's memory)."""
        message = codec.decode(self.data, datagram=self.transport == "udp")
        assert message is not None  # the analyser's peek said it is STUN
        # ip and port always name the server: the sender of a response, the receiver of a
        # request (--all-messages rows)
        server, port, client, client_port = self.src, self.sport, self.dst, self.dport
        if not roles.from_server(message.msg_type):
            server, port, client, client_port = client, client_port, server, port
        record = Record(
            self.time,
            ip_text(server),
            port,
            self.transport,
            message,
            message.size,
            self.request_size,
            endpoint_text(ip_text(client), client_port),
        )
        record.pair_key = self.pair_key
        if self.moved:
            record.extra["answered_from_another_address"] = True
        return record


def ip_text(packed: bytes) -> str:
    return socket.inet_ntop(socket.AF_INET if len(packed) == 4 else socket.AF_INET6, packed)


def row_fields(
    sighting: Sighting, role: str | None = None
) -> tuple[list[str], float, int, str] | None:
    """(cells, amplification, family, SOFTWARE) of the record the sighting makes; None for
    what is not a STUN or classic response (the caller decodes those in full). ``role``:
    the sighting's, when the caller has it already."""
    if (role or sighting.role) is None:
        return None
    ip = ip_text(sighting.src)
    made = csvrow.cells(sighting.data, sighting.time, ip, sighting.sport, sighting.transport,
                 sighting.request_size)  # fmt: skip
    if made is None:
        return None
    return made[0], made[1], 6 if ":" in ip else 4, made[2]
