"""One JSON shape per thing, in every command: an address, an attribute, a message, a row.

``stunscan/schemas/*.json`` (JSON Schema, packaged with stunscan) describe them; the tests
validate every command's output against those files. Numbers are JSON numbers, absent
values are ``null``, an address is ``{"ip": ..., "port": ...}`` (``family`` added inside
an attribute value, as STUN carries it), and every attribute keeps its raw bytes as hex
beside the decoded value, so a binary USERNAME or a value the decoder mangled can always be
recovered.
"""

from __future__ import annotations

import json
from dataclasses import is_dataclass
from importlib import resources
from typing import Any

from stunscan import protocol as proto


def address_json(host: str, port: int) -> dict[str, Any]:
    """An endpoint: ``{"ip": "2001:db8::1", "port": 3478}`` (no brackets, port a number)."""
    return {"ip": host, "port": port}


def endpoint_json(text: str) -> dict[str, Any] | None:
    """An endpoint written as 'ip:port' or '[v6]:port' (see text.endpoint_text) as JSON."""
    if not text:
        return None
    host, _, port = text.rpartition(":")
    return address_json(host.strip("[]"), int(port))


def value_json(value: Any) -> Any:
    """A decoded attribute value as JSON: bytes as hex, addresses as objects, tuples as
    lists; strings and numbers as they are."""
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, proto.Address):
        return {"family": value.family, "ip": value.address, "port": value.port}
    if isinstance(value, tuple | list):
        return [value_json(v) for v in value]
    if is_dataclass(value):
        return {k: value_json(getattr(value, k)) for k in value.__dataclass_fields__}
    return value


def attribute_json(
    code: int,
    name: str,
    length: int,
    raw: bytes,
    decoded: Any,
    problem: str | None,
    padding: bytes = b"",
) -> dict[str, Any]:
    """One attribute, the same in every command: type code (4 hex digits, or null for
    trailing bytes), name, declared length, the value's raw hex, the decoded value (the
    raw hex again when it could not be decoded), and the problem if any."""
    return {
        "type": f"{code:04x}" if code >= 0 else None,
        "name": name,
        "length": length,
        "hex": raw.hex(),
        "value": value_json(raw if problem else decoded),
        "padding_hex": padding.hex(),
        "problem": problem,
    }


def codec_attribute_json(attr: Any) -> dict[str, Any]:
    """:func:`attribute_json` of a fast-codec ``Attribute``."""
    return attribute_json(
        attr.code, attr.name, attr.length, attr.value, attr.decoded, attr.problem, attr.padding
    )


def layer_attribute_json(attr: Any) -> dict[str, Any]:
    """:func:`attribute_json` of a Scapy-layer attribute (``stunscan decode``): the layer's
    decoded value where it has one, else its text."""
    raw = attr.value_bytes()
    problem = attr.problem()
    decoded = None if problem else attr.decoded
    padding = bytes(attr)[4 + len(raw) :]
    return attribute_json(
        attr.type, attr.attribute_name, attr.length, raw, decoded, problem, padding
    )


def message_json(message: Any) -> dict[str, Any]:
    """A fast-codec ``Message``'s own facts (no context: where and when it was seen is the
    row's business)."""
    return {
        "kind": message.kind,
        "message_type": f"{message.msg_type:04x}",
        "type_name": message.type_name,
        "transaction_id": message.transaction_id.hex(),
        "length": message.length,
        "fingerprint_valid": message.fingerprint,
        "malformed": list(message.malformed),
        "attributes": [codec_attribute_json(a) for a in message.attributes],
    }


SCHEMAS = ("common", "pcap", "scan", "probe", "decode")


def schema(name: str) -> dict[str, Any]:
    """A packaged JSON Schema (see :data:`SCHEMAS`)."""
    text = resources.files("stunscan.schemas").joinpath(f"{name}.json").read_text("utf-8")
    return json.loads(text)  # type: ignore[no-any-return]


def validator(name: str) -> Any:
    """A jsonschema validator for one command's output, the shared shapes resolved from
    the packaged files (never fetched: their ids are URNs)."""
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    registry: Any = Registry().with_resources(
        (f"urn:stunscan:schema:{n}", Resource.from_contents(schema(n))) for n in SCHEMAS
    )
    return Draft202012Validator(schema(name), registry=registry)
