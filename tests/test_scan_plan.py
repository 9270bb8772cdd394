"""What a scan would touch, and in which order, checked without sending anything.

Targets, ports, the special-purpose blocklist and --exclude; the cyclic-group order (every
target exactly once, reproducible from a seed, shards disjoint and complete); keyed
transaction IDs; the frames the sender builds, checked by Scapy's own dissection.
"""

from __future__ import annotations

import io
import ipaddress
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stunscan import codec
from stunscan.layers import STUN, STUNClassic, make_attribute
from stunscan.record import Record
from stunscan.scan.frames import PROBES, FrameBuilder, build_template
from stunscan.scan.order import CyclicOrder, is_prime, safe_prime_above
from stunscan.scan.route import Route
from stunscan.scan.sniffer import ReceiveStats, Validator, dissect
from stunscan.scan.targets import (
    TargetError,
    TargetSpace,
    address_text,
    blocklist,
    gather_targets,
    parse_ports,
    parse_target,
)
from stunscan.scan.txid import TransactionKey

from corpus import fuzz_seeds


def dry_run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "stunscan", "scan", "--dry-run", *args],
        capture_output=True, text=True, input=stdin, timeout=60,
    )  # fmt: skip


# --------------------------------------------------------------------------- targets


@pytest.mark.parametrize(
    ("text", "first", "last"),
    [
        ("192.0.2.7", "192.0.2.7", "192.0.2.7"),
        ("192.0.2.0/30", "192.0.2.0", "192.0.2.3"),
        ("192.0.2.9/30", "192.0.2.8", "192.0.2.11"),
        ("192.0.2.250-192.0.3.4", "192.0.2.250", "192.0.3.4"),
        ("2001:db8::1", "2001:db8::1", "2001:db8::1"),
        ("2001:db8::/126", "2001:db8::", "2001:db8::3"),
        ("2001:db8::ff-2001:db8::101", "2001:db8::ff", "2001:db8::101"),
    ],
)
def test_target_forms(text: str, first: str, last: str) -> None:
    span = parse_target(text)
    assert (span.first, span.last) == (
        int(ipaddress.ip_address(first)),
        int(ipaddress.ip_address(last)),
    )


@pytest.mark.parametrize(
    "text",
    ["example.org", "192.0.2.300", "192.0.2.9-192.0.2.1", "192.0.2.1-2001:db8::1", "1.2.3/99", ""],
)
def test_bad_targets_are_refused(text: str) -> None:
    with pytest.raises(TargetError):
        parse_target(text)


def test_ports() -> None:
    assert parse_ports(["3478"]) == (3478,)
    assert parse_ports(["3479,3478", "5349-5350"]) == (3478, 3479, 5349, 5350)
    for bad in ("0", "65536", "x", "9-3"):
        with pytest.raises(TargetError):
            parse_ports([bad])


def test_overlapping_targets_are_scanned_once() -> None:
    space = TargetSpace.build(
        gather_targets(["192.0.2.0/29", "192.0.2.4-192.0.2.9", "192.0.2.3"]), (3478, 3479), []
    )
    assert space.addresses == 10
    assert len(space) == 20
    seen = {space[i] for i in range(len(space))}
    assert len(seen) == 20


def test_ipv6_addresses_below_2_to_the_32_stay_ipv6() -> None:
    space = TargetSpace.build([parse_target("::2-::4")], (3478,), [])
    assert space.first_address(6) == "::2"
    assert address_text(6, 2) == "::2" and address_text(4, 2) == "0.0.0.2"


def test_default_blocklist_covers_special_purpose_ranges() -> None:
    blocked = blocklist()
    space = TargetSpace(blocked, (3478,))
    special = ("10.1.2.3", "127.0.0.1", "192.168.1.1", "172.31.0.1", "100.64.0.1", "169.254.1.1",
               "224.0.0.1", "255.255.255.255", "192.0.2.1", "198.18.0.1", "203.0.113.5", "::1",
               "fe80::1", "fd00::1", "ff02::1", "2001:db8::1")  # fmt: skip
    for address in special:
        parsed = ipaddress.ip_address(address)
        assert space.contains(parsed.version, int(parsed)), address
    for address in ("8.8.8.8", "2606:4700::1111"):
        parsed = ipaddress.ip_address(address)
        assert not space.contains(parsed.version, int(parsed)), address


def test_dry_run_refuses_blocklisted_targets_without_allow() -> None:
    result = dry_run("203.0.113.0/24")
    assert result.returncode == 2
    assert "nothing to scan: all 256 addresses are blocklisted" in result.stderr
    assert result.stderr.count("\n") == 1


def test_allow_and_exclude(tmp_path: Path) -> None:
    exclusions = tmp_path / "exclude.txt"
    exclusions.write_text("# never these\n203.0.113.4/30\n203.0.113.9  # one host\n")
    result = dry_run(
        "203.0.113.0/28", "198.51.100.0/30", "--allow", "203.0.113.0/24",
        "--exclude", str(exclusions), "--seed", "3",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    listed = [line.rsplit(":", 1)[0] for line in result.stdout.split()]
    expected = {f"203.0.113.{n}" for n in range(16)} - {f"203.0.113.{n}" for n in (4, 5, 6, 7, 9)}
    assert sorted(listed) == sorted(expected)


def test_targets_from_a_file_and_stdin(tmp_path: Path) -> None:
    listing = tmp_path / "targets.txt"
    listing.write_text("203.0.113.1\n# comment\n\n203.0.113.2 203.0.113.3\n")
    result = dry_run(
        "-I", str(listing), "-", "--allow", "203.0.113.0/24", "--allow", "2001:db8::/32",
        "-p", "3478,3479",
        stdin="2001:db8::5\n",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert sorted(result.stdout.split()) == sorted(
        [f"203.0.113.{n}:{p}" for n in (1, 2, 3) for p in (3478, 3479)]
        + [f"[2001:db8::5]:{p}" for p in (3478, 3479)]
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["example.org"], "not an address or CIDR"),
        (["203.0.113.1", "--allow", "203.0.113.0/24", "-p", "70000"], "ports are 1 to 65535"),
        (["203.0.113.1", "--allow", "203.0.113.0/24", "--shards", "2", "--shard", "2"], "--shard"),
        (["203.0.113.1", "--exclude", "/nonexistent/list"], "cannot read /nonexistent/list"),
        (["203.0.113.1", "--probe", "loud"], "unknown probe 'loud'"),
        ([], "no targets"),
    ],
)
def test_usage_errors_are_one_line_exit_two(args: list[str], message: str) -> None:
    result = dry_run(*args)
    assert result.returncode == 2
    assert message in result.stderr
    assert result.stderr.count("\n") == 1


# --------------------------------------------------------------------------- order


def test_safe_primes() -> None:
    assert [safe_prime_above(n) for n in (0, 5, 7, 12, 100)] == [5, 7, 11, 23, 107]
    assert all(is_prime(p) and is_prime((p - 1) // 2) for p in (safe_prime_above(2**32),))
    assert not is_prime(3215031751)  # a strong pseudoprime to bases 2, 3, 5 and 7


@settings(max_examples=60, deadline=None)
@given(size=st.integers(1, 3000), shards=st.integers(1, 7), seed=st.integers(0, 2**32))
def test_shards_are_disjoint_and_cover_every_target_once(size: int, shards: int, seed: int) -> None:
    order = CyclicOrder.for_space(size, seed)
    walks = [list(order.walk(shards, shard)) for shard in range(shards)]
    together = [index for walk in walks for index in walk]
    assert sorted(together) == list(range(size))


def test_order_is_reproducible_and_seeded() -> None:
    first = list(CyclicOrder.for_space(1000, 7).walk())
    assert first == list(CyclicOrder.for_space(1000, 7).walk())
    assert first != list(CyclicOrder.for_space(1000, 8).walk())
    assert first != sorted(first)


def test_dry_run_shards_split_the_full_scan() -> None:
    common = ["203.0.113.0/26", "--allow", "203.0.113.0/24", "-p", "3478-3479", "--seed", "11"]
    full = dry_run(*common).stdout.split()
    parts = [dry_run(*common, "--shards", "3", "--shard", str(i)).stdout.split() for i in range(3)]
    assert len(full) == 128 and len(set(full)) == 128
    assert sorted(full) == sorted(line for part in parts for line in part)
    assert all(set(a).isdisjoint(b) for a in parts for b in parts if a is not b)
    assert dry_run(*common, "--max-targets", "5").stdout.split() == full[:5]


# --------------------------------------------------------------------------- transaction IDs


def test_transaction_ids_bind_address_port_and_probe() -> None:
    key = TransactionKey()
    address = ipaddress.ip_address("203.0.113.9").packed
    ident = key.transaction_id(address, 3478, 2)
    assert len(ident) == 12
    assert key.probe_number(ident, address, 3478) == 2
    assert key.probe_number(ident, address, 3479) is None
    assert key.probe_number(ident, ipaddress.ip_address("203.0.113.8").packed, 3478) is None
    assert TransactionKey().probe_number(ident, address, 3478) is None  # another scan's key
    forged = ident[:11] + bytes((3,))
    assert key.probe_number(forged, address, 3478) is None
    classic = TransactionKey(size=16)
    assert classic.probe_number(classic.transaction_id(address, 1, 0), address, 1) == 0


# --------------------------------------------------------------------------- frames


def _route(version: int) -> Route:
    source = "2001:db8:ffff::2" if version == 6 else "192.0.2.2"
    return Route(
        version, "scan0", source, bytes.fromhex("020000000002"), bytes.fromhex("020000000001")
    )


@settings(max_examples=150, deadline=None)
@given(
    version=st.sampled_from((4, 6)),
    probe=st.sampled_from(sorted(PROBES)),
    address=st.integers(0, 2**32 - 1),
    port=st.integers(1, 65535),
    source_port=st.integers(1, 65535),
    ident=st.binary(min_size=16, max_size=16),
)
def test_frames_are_what_scapy_would_build(
    version: int, probe: str, address: int, port: int, source_port: int, ident: bytes
) -> None:
    """Checksums from the template shortcut equal the ones Scapy computes from scratch."""
    from scapy.layers.inet import IP, UDP
    from scapy.layers.inet6 import IPv6
    from scapy.layers.l2 import Ether

    template = build_template(probe)
    builder = FrameBuilder(_route(version), template)
    destination = address | (0x20010DB8 << 96 if version == 6 else 0)
    transaction_id = ident[: template.id_size]
    frame = builder.frame(destination, port, source_port, transaction_id)
    assert len(frame) == builder.frame_size
    packet = Ether(frame)
    rebuilt = packet.copy()
    network = rebuilt[IPv6] if version == 6 else rebuilt[IP]
    if version == 4:
        del network.chksum
    del rebuilt[UDP].chksum
    assert bytes(Ether(bytes(rebuilt))) == frame
    assert packet[UDP].dport == port and packet[UDP].sport == source_port
    message = codec.decode(bytes(packet[UDP].payload))
    assert message is not None and not message.malformed
    assert message.transaction_id.endswith(transaction_id or bytes(12))
    if probe == "fingerprint":
        assert message.fingerprint is True
    layer = STUNClassic if probe == "classic" else STUN
    assert bytes(packet[UDP].payload) == bytes(
        layer(bytes(packet[UDP].payload))
    )  # the layer dissects and rebuilds it byte for byte


def test_the_scan_receive_path_does_not_import_scapy() -> None:
    code = (
        "import sys; import stunscan.scan.sniffer, stunscan.scan.run, stunscan.scan.targets;"
        " assert 'scapy' not in sys.modules, 'scapy imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- the sniffer

SERVER, SCANNER = "203.0.113.10", "192.0.2.2"


def _validator(keyed: bool = True) -> tuple[Validator, TransactionKey]:
    space = TargetSpace.build([parse_target("203.0.113.0/28")], (3478, 3479), [])
    key = TransactionKey()
    return Validator(space, key, keyed, 20, {4: f"{SCANNER}:40000"}), key


def _answer_frame(
    ident: bytes, source: str = SERVER, sport: int = 3478, cls: str = "Binding Success Response"
) -> bytes:
    from scapy.layers.inet import IP, UDP
    from scapy.layers.l2 import Ether

    stun = STUN(
        type=cls,
        transaction_id=ident,
        attributes=[make_attribute("XOR-MAPPED-ADDRESS", address=SCANNER, port=40000)],
    )
    ether = Ether(src="02:00:00:00:00:01", dst="02:00:00:00:00:02")  # never ask ARP for them
    return bytes(ether / IP(src=source, dst=SCANNER) / UDP(sport=sport, dport=40000) / stun)


def _judge(validator: Validator, frame: bytes, stats: ReceiveStats) -> Record | None:
    answer = dissect(memoryview(frame), validator, stats)
    return None if answer is None else answer.record()


def test_only_answers_with_our_id_from_their_own_address_count() -> None:
    validator, key = _validator()
    server = ipaddress.ip_address(SERVER).packed
    ident = key.transaction_id(server, 3478, 0)
    stats = ReceiveStats()
    record = _judge(validator, _answer_frame(ident), stats)
    assert record is not None and (record.ip, record.port) == (SERVER, 3478)
    assert record.message.get("XOR-MAPPED-ADDRESS").decoded.address == SCANNER
    assert _judge(validator, _answer_frame(ident), stats) is None  # the same server again
    assert _judge(validator, _answer_frame(bytes(12)), stats) is None  # forged
    assert _judge(validator, _answer_frame(ident, source="203.0.113.11"), stats) is None  # spoofed
    echo = _answer_frame(key.transaction_id(server, 3479, 0), cls="Binding Request")
    assert _judge(validator, echo, stats) is None
    moved = _judge(validator, _answer_frame(key.transaction_id(server, 3479, 0), sport=5000), stats)
    assert moved is not None and moved.port == 3479 and moved.extra["answered_from_port"] == 5000
    assert (stats.valid, stats.duplicates, stats.bad_id, stats.echoed, stats.moved) == (
        2,
        1,
        2,
        1,
        1,
    )


def test_hostile_and_truncated_frames_are_counted_never_raised() -> None:
    validator, key = _validator()
    ident = key.transaction_id(ipaddress.ip_address(SERVER).packed, 3478, 0)
    good = _answer_frame(ident)
    stats = ReceiveStats()
    hostile = [good[:n] for n in range(len(good))]  # every truncation
    hostile.append(good[:38] + b"\xff\xff" + good[40:])  # UDP length far past the frame
    hostile.append(good[:38] + b"\x00\x03" + good[40:])  # UDP length shorter than its header
    hostile += [good[:42] + seed.read_bytes()[:1400] for seed in fuzz_seeds()[:200]]
    for frame in hostile:
        _judge(validator, frame, stats)  # must not raise
    _judge(validator, good, stats)
    assert stats.received == len(hostile) + 1
    assert stats.valid == 1  # one row for the server: a cut-short copy (marked) or the whole
    buckets = (stats.valid + stats.duplicates + stats.bad_id + stats.not_stun + stats.echoed
               + stats.icmp_port_unreachable + stats.icmp_other_unreachable)  # fmt: skip
    assert buckets == stats.received  # every frame is accounted for once


def test_the_report_probe_is_checked_by_address_and_port_only() -> None:
    validator, _key = _validator(keyed=False)
    stats = ReceiveStats()
    record = _judge(validator, _answer_frame(bytes(12)), stats)
    assert record is not None and record.extra["validation"] == "address-only"
    assert _judge(validator, _answer_frame(bytes(12), source="198.51.100.1"), stats) is None
    assert _judge(validator, _answer_frame(b"\x01" * 12, source="203.0.113.12"), stats) is None
    assert (stats.valid, stats.bad_id) == (1, 2)


@pytest.mark.parametrize("dropped", [0, 1234])
def test_the_summary_says_what_the_kernel_dropped(dropped: int) -> None:
    from types import SimpleNamespace

    from rich.console import Console

    from stunscan.scan.display import scan_summary
    from stunscan.scan.sender import SendStats
    from stunscan.tally import ServerTally, summarize

    options = SimpleNamespace(probe="binding", shard=0, shards=1)
    panel = scan_summary(
        SendStats(10, 10, 0, 0.0, 1.0), ReceiveStats(received=3, kernel_dropped=dropped),
        summarize(ServerTally()), SimpleNamespace(seed=1), options,
    )  # fmt: skip
    console = Console(width=200, record=True, file=io.StringIO())
    console.print(panel)
    text = console.export_text()
    assert f"kernel drops      {dropped:,}" in text
    assert ("lower --rate" in text) == bool(dropped)
