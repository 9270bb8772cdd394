"""The attribute list of a dissected STUN message: each attribute dissected when first read.

A 65,535-byte body holds up to 16,383 attributes. A Scapy packet per attribute costs tens
of microseconds, so dissecting them all up front made one such message take most of a
second, while ``decode`` and ``explain`` show the first 200 and every check (the length,
FINGERPRINT, MESSAGE-INTEGRITY, the malformations) works on bytes. :class:`AttributeList`
knows where each attribute's TLV starts (one pass over the body, the walk of
``protocol.iter_attributes`` and the fast codec) and dissects an attribute the first time
it is read, against the header the message was received with. To everything else it is
the list of attribute packets: indexing, slicing, iterating, comparing and copying give
dissected packets, and any change to the list dissects the rest first and is then an
ordinary list change. ``len``, :meth:`AttributeList.codes`, :meth:`AttributeList.problems`
and :meth:`AttributeList.body_size` need no dissection.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable, Iterator
from typing import Any, SupportsIndex

from scapy.config import conf
from scapy.packet import Packet

from stunscan import protocol as proto

from .attributes import STUNAttribute, dispatch_attribute

_NOT_YET: Any = object()
"""Stands in the list for an attribute not dissected yet; never handed out."""


class ReceivedHeader:
    """What dissecting an attribute reads from its message, as the message was received:
    the type (an unknown method makes every attribute opaque) and the XOR key. An attribute
    dissected late decodes exactly as it would have at once, whatever was changed since."""

    __slots__ = ("_key", "type")

    def __init__(self, msg_type: int, key: bytes) -> None:
        self.type = msg_type
        self._key = key

    def xor_key(self) -> bytes:
        return self._key

    @property
    def opaque(self) -> bool:
        return not proto.known_method(self.type)


def tlv_problem(wire: bytes, opaque: bool) -> str | None:
    """Why one attribute's TLV is malformed, or None: what ``problem()`` of the sub-layer
    :func:`dispatch_attribute` makes of these bytes says, without making it."""
    if len(wire) < proto.ATTRIBUTE_HEADER_SIZE:
        return proto.trailing_bytes_problem(len(wire))
    code, declared = struct.unpack_from("!HH", wire)
    value = wire[proto.ATTRIBUTE_HEADER_SIZE : proto.ATTRIBUTE_HEADER_SIZE + declared]
    if opaque:
        return proto.opaque_attribute_problem(code, declared, value)
    return proto.attribute_problem(code, declared, value)


def item_problem(item: Packet) -> str | None:
    """Why one dissected item is malformed (Raw: an attribute no sub-layer could read)."""
    problem = getattr(item, "problem", None)
    return problem() if problem is not None else "undecodable attribute"


def item_size(item: Packet) -> int:
    """Bytes one dissected item takes on the wire."""
    return len(item.wire() if isinstance(item, STUNAttribute) else bytes(item))


def _dissect_lists(*values: Any) -> None:
    """Dissect every lazy list among ``values``: list methods written in C read the items
    of a list (this one, or another given to it) as they are stored."""
    for value in values:
        if isinstance(value, AttributeList):
            value.dissect_all()


def _settling(name: str) -> Callable[..., Any]:
    """A list method that reads every item as it is stored: dissect the rest first."""
    method = getattr(list, name)

    def settled(self: AttributeList, *args: Any, **kwargs: Any) -> Any:
        _dissect_lists(self, *args)
        return method(self, *args, **kwargs)

    settled.__name__ = name
    settled.__doc__ = method.__doc__
    return settled


def _reshaping(name: str) -> Callable[..., Any]:
    """A list method that changes the list: dissect the rest, then an ordinary change."""
    method = getattr(list, name)

    def reshaped(self: AttributeList, *args: Any, **kwargs: Any) -> Any:
        _dissect_lists(self, *args)
        self._reshaped = True
        return method(self, *args, **kwargs)

    reshaped.__name__ = name
    reshaped.__doc__ = method.__doc__
    return reshaped


class AttributeList(list):  # type: ignore[type-arg]
    """The attributes of one dissected message, dissected one by one as they are read."""

    __slots__ = ("_body", "_header", "_reshaped", "_snapshots", "_starts", "owner")

    def __init__(
        self, body: bytes, starts: list[int], header: ReceivedHeader, owner: Packet | None
    ) -> None:
        super().__init__([_NOT_YET] * len(starts))
        self._body = body
        self._starts = starts
        self._header = header
        self.owner = owner
        """The message: every attribute's ``parent`` once dissected."""
        self._snapshots: dict[int, tuple[dict[str, Any], Any]] = {}
        """Each dissected item's fields as dissected, to tell whether it was changed since."""
        self._reshaped = False

    @classmethod
    def of_body(cls, body: bytes, header: ReceivedHeader, owner: Packet | None) -> AttributeList:
        """The list for an attribute body: where each TLV starts, in one pass (a length
        past the end gives one attribute holding what is left; fewer than 4 bytes left,
        one item of trailing bytes)."""
        starts: list[int] = []
        offset, end = 0, len(body)
        while offset < end:
            starts.append(offset)
            if end - offset >= proto.ATTRIBUTE_HEADER_SIZE:
                length = (body[offset + 2] << 8) | body[offset + 3]
                offset += min(proto.ATTRIBUTE_HEADER_SIZE + proto.padded(length), end - offset)
            else:
                offset = end
        return cls(body, starts, header, owner)

    # -- dissecting -------------------------------------------------------------------

    def _span(self, index: int) -> bytes:
        start = self._starts[index]
        end = self._starts[index + 1] if index + 1 < len(self._starts) else len(self._body)
        return self._body[start:end]

    def _item(self, index: int) -> Any:
        item = list.__getitem__(self, index)
        if item is _NOT_YET:
            index = index + len(self) if index < 0 else index
            item = self._dissect(index)
            list.__setitem__(self, index, item)
        return item

    def _dissect(self, index: int) -> Packet:
        span = self._span(index)
        try:
            item = dispatch_attribute(span, _parent=self._header)  # type: ignore[arg-type]
        except Exception:  # as PacketListField does: the bytes kept raw
            if conf.debug_dissector:
                raise
            item = conf.raw_layer(load=span)
        item.parent = self.owner
        self._snapshots[index] = (item.fields.copy(), item.payload.raw_packet_cache)
        return item

    def dissect_all(self) -> None:
        """Dissect every attribute not dissected yet."""
        if self._reshaped:
            return
        for index in range(len(self)):
            self._item(index)

    def dissected(self) -> Iterator[Packet]:
        """The attributes dissected so far (the others are as received)."""
        return (item for item in list.__iter__(self) if item is not _NOT_YET)

    # -- what needs no dissection -------------------------------------------------------

    def codes(self) -> list[int | None]:
        """Each attribute's type code (None for trailing bytes and undecodable ones)."""
        if self._reshaped:
            return [getattr(item, "type", None) for item in list.__iter__(self)]
        codes: list[int | None] = []
        body = self._body
        for index, item in enumerate(list.__iter__(self)):
            if item is not _NOT_YET:
                codes.append(getattr(item, "type", None))
                continue
            start = self._starts[index]
            end = self._starts[index + 1] if index + 1 < len(self._starts) else len(body)
            codes.append((body[start] << 8) | body[start + 1] if end - start >= 4 else None)
        return codes

    def problems(self) -> list[str]:
        """What is malformed in the attributes, in order (``problem()`` of each)."""
        opaque = self._header.opaque
        known: dict[bytes, str | None] = {}  # a hostile message repeats one TLV thousands of times
        found = []
        for index, item in enumerate(list.__iter__(self)):
            if item is _NOT_YET:
                span = self._span(index)
                problem = known.get(span, "")
                if problem == "":
                    problem = known[span] = tlv_problem(span, opaque)
            else:
                problem = item_problem(item)
            if problem:
                found.append(problem)
        return found

    def body_size(self) -> int:
        """The bytes the attributes take on the wire."""
        if self.unchanged():  # then the items tile the body received
            return len(self._body)
        return sum(
            len(self._span(index)) if item is _NOT_YET else item_size(item)
            for index, item in enumerate(list.__iter__(self))
        )

    def unchanged(self) -> bool:
        """Nothing in the list changed since it was dissected (Scapy then sends the bytes
        received, as for any field)."""
        if self._reshaped:
            return False
        for index, (fields, payload) in self._snapshots.items():
            item = list.__getitem__(self, index)
            if item.fields != fields or item.payload.raw_packet_cache != payload:
                return False
        return True

    def lazy_copy(self) -> AttributeList:
        """A copy that leaves the undissected attributes undissected (``Packet.copy()``)."""
        if self._reshaped:
            clone = AttributeList(b"", [], self._header, self.owner)
            list.extend(clone, [item.copy() for item in list.__iter__(self)])
            clone._reshaped = True
            return clone
        clone = AttributeList(self._body, self._starts, self._header, self.owner)
        for index, item in enumerate(list.__iter__(self)):
            if item is not _NOT_YET:
                list.__setitem__(clone, index, item.copy())
        clone._snapshots = dict(self._snapshots)
        return clone

    # -- the list as everyone else sees it --------------------------------------------

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            return [self._item(index) for index in range(*key.indices(len(self)))]
        return self._item(key)

    def __iter__(self) -> Iterator[Any]:
        index = 0
        while index < len(self):
            yield self._item(index)
            index += 1

    def __reversed__(self) -> Iterator[Any]:
        for index in range(len(self) - 1, -1, -1):
            if index < len(self):
                yield self._item(index)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, list) and len(other) != len(self):
            return False
        _dissect_lists(self, other)
        return list.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = None  # type: ignore[assignment]

    def __radd__(self, other: Any) -> Any:  # [...] + attributes: list.__add__ reads raw
        if isinstance(other, list):
            return [*other, *self]
        return NotImplemented

    def __reduce_ex__(self, protocol: SupportsIndex) -> Any:
        return (list, (list(self),))

    def copy(self) -> list[Any]:
        return list(self)

    __contains__ = _settling("__contains__")
    __lt__ = _settling("__lt__")
    __le__ = _settling("__le__")
    __gt__ = _settling("__gt__")
    __ge__ = _settling("__ge__")
    __repr__ = _settling("__repr__")
    __add__ = _settling("__add__")
    __mul__ = _settling("__mul__")
    __rmul__ = _settling("__rmul__")
    index = _settling("index")
    count = _settling("count")

    __setitem__ = _reshaping("__setitem__")
    __delitem__ = _reshaping("__delitem__")
    __iadd__ = _reshaping("__iadd__")
    __imul__ = _reshaping("__imul__")
    append = _reshaping("append")
    extend = _reshaping("extend")
    insert = _reshaping("insert")
    pop = _reshaping("pop")
    remove = _reshaping("remove")
    clear = _reshaping("clear")
    sort = _reshaping("sort")
    reverse = _reshaping("reverse")


def first_with_code(attributes: Iterable[Any], code: int) -> Packet | None:
    """The first attribute of this type code, dissecting only that one in an
    :class:`AttributeList`."""
    if isinstance(attributes, AttributeList):
        for index, found in enumerate(attributes.codes()):
            if found == code:
                return attributes[index]  # type: ignore[no-any-return]
        return None
    for attr in attributes:
        if getattr(attr, "type", None) == code:
            return attr  # type: ignore[no-any-return]
    return None


def with_codes(attributes: Iterable[Any], wanted: Callable[[int], bool]) -> Iterator[Any]:
    """The attributes whose type code ``wanted`` accepts, in order, dissecting only those
    in an :class:`AttributeList`."""
    if isinstance(attributes, AttributeList):
        for index, code in enumerate(attributes.codes()):
            if code is not None and wanted(code):
                yield attributes[index]
        return
    for attr in attributes:
        code = getattr(attr, "type", None)
        if isinstance(code, int) and wanted(code):
            yield attr
