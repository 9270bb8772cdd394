"""What a STUN message row is: its direction, and the role of the host that answered.

The Shadowserver report counts services that answer an *unauthenticated* Binding. A capture
also holds ICE peers answering connectivity checks (authenticated with short-term
credentials: USERNAME, MESSAGE-INTEGRITY) and TURN servers answering Allocate and its kin.
A response carries MESSAGE-INTEGRITY exactly when the request it answers was authenticated
(RFC 8489 9.1.3 and 9.2.4: the server signs with the request's key; RFC 8445 7.3.1.1: a
check's response is signed with the same password), so the role is read from the response
alone, even when the request is not in the capture. Decided from the bytes (no decode), so
the analyser's fast CSV path can filter on it too.
"""

from __future__ import annotations

from stunscan import protocol as proto

SERVER = "server"
"""Answered a Binding without credentials: an accessible STUN service (the report's)."""
ICE_PEER = "ice-peer"
"""Answered only authenticated requests (an ICE connectivity check, or any signed one)."""
TURN = "turn"
"""Answered a TURN request (Allocate, Refresh, CreatePermission, ChannelBind...)."""
OTHER = "other"
"""Answered a method outside STUN's and TURN's (vendor protocols such as WhatsApp's)."""
ROLES = (SERVER, ICE_PEER, TURN, OTHER)

REQUEST, INDICATION, RESPONSE = "request", "indication", "response"
TURN_METHODS = frozenset(range(0x003, 0x00D)) - {0x005}
_BINDING_METHODS = frozenset({0x001, 0x080})  # Binding; GOOG-PING answers like it
_DATA_INDICATION = proto.message_type(0x007, proto.MessageClass.INDICATION)


def direction(msg_type: int) -> str:
    """'request', 'indication' or 'response' (success and error alike)."""
    cls = proto.split_message_type(msg_type)[1]
    if cls == proto.MessageClass.REQUEST:
        return REQUEST
    if cls == proto.MessageClass.INDICATION:
        return INDICATION
    return RESPONSE


def from_server(msg_type: int) -> bool:
    """Whether a message of this type travels from the server (a response, a Data
    indication) rather than to it: which end of the flow a row names as the server."""
    return direction(msg_type) == RESPONSE or msg_type == _DATA_INDICATION


def role(msg_type: int, signed: bool) -> str:
    """The answering host's role from a response's type and whether it is signed."""
    method = proto.split_message_type(msg_type)[0]
    if method in TURN_METHODS:
        return TURN
    if signed:
        return ICE_PEER
    if method in _BINDING_METHODS:
        return SERVER
    return OTHER if method not in proto.METHODS else SERVER


def is_signed(data: bytes) -> bool:
    """Whether the STUN message in ``data`` carries MESSAGE-INTEGRITY(-SHA256), read off
    the attribute headers only (bounded by the message and the buffer)."""
    if len(data) < proto.HEADER_SIZE:
        return False
    end = min(proto.HEADER_SIZE + ((data[2] << 8) | data[3]), len(data))
    offset = proto.HEADER_SIZE
    while offset + 4 <= end:
        code = (data[offset] << 8) | data[offset + 1]
        if code in proto.INTEGRITY_ATTRIBUTES:
            return True
        offset += 4 + ((((data[offset + 2] << 8) | data[offset + 3]) + 3) & ~3)
    return False


def role_of_bytes(data: bytes) -> str | None:
    """The role a response's bytes show; None for a request or an indication."""
    if len(data) < proto.HEADER_SIZE:
        return None
    msg_type = (data[0] << 8) | data[1]
    if direction(msg_type) != RESPONSE:
        return None
    return role(msg_type, is_signed(data))


def response_role(msg_type: int, signed: bool) -> str | None:
    """:func:`role_of_bytes` for a caller that walked the attributes already (``signed``:
    whether they hold MESSAGE-INTEGRITY(-SHA256))."""
    return role(msg_type, signed) if direction(msg_type) == RESPONSE else None


def counted(role_name: str | None, include_peers: bool) -> bool:
    """Whether a responder of this role is one the report counts (servers only, unless
    ``--include-peers``)."""
    return role_name == SERVER or (include_peers and role_name is not None)
