"""A differential fuzzing campaign: a million damaged real messages through both decoders.

    python tests/fuzz/campaign.py                    # 1,000,000 inputs on 2 processes
    python tests/fuzz/campaign.py --inputs 200000 --workers 2 --minutes 15 --seed 7

Every STUN message of the corpus and of pcaps/ (tests/mutations.py) is mutated the ways
a broken or hostile peer would, and each input goes through the fast codec and the Scapy
layer (as a datagram and as a TCP segment) and the analyser's quick verdict (codec.peek).
A crash is any exception; a disagreement is any field the two decoders read differently
(tests/test_codec_differential.py's views), or a quick verdict unlike the full decode.
The run is reproducible from ``--seed``: input ``n`` is made by ``random.Random((seed, n))``.
It prints the count, the rate, and each crash and disagreement (up to 20 of each, with the
hex to replay); exit 1 if there was any. ``--minutes`` stops early (the count is printed:
how many inputs actually ran).
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import sys
import time
import traceback
from pathlib import Path

TESTS = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(TESTS))

CHUNK = 2000
SHOWN = 20


def _check(data: bytes) -> tuple[str, str] | None:
    """None if all agree, else (kind, what): kind 'crash' or 'disagreement'."""
    import test_codec_differential as differential

    from stunscan import codec
    from stunscan import protocol as proto

    try:
        differential.assert_agree_on_datagram(data)
    except AssertionError:
        return "disagreement", "datagram: the codec and the layer differ"
    except Exception:
        return "crash", "datagram: " + traceback.format_exc(limit=-3).strip().splitlines()[-1]
    try:
        differential.assert_agree_on_stream(data)
    except AssertionError:
        return "disagreement", "stream: the codec and the layer differ"
    except Exception:
        return "crash", "stream: " + traceback.format_exc(limit=-3).strip().splitlines()[-1]
    for datagram in (True, False):
        full = codec.decode(data, datagram=datagram)
        quick = codec.peek(data, datagram=datagram)
        if (full is None) != (quick is None):
            return "disagreement", "peek and decode differ on whether it is STUN"
        if full is not None and quick is not None:
            if quick[0] != full.kind or quick[4] != (not full.malformed):
                return "disagreement", f"peek's verdict differs (datagram={datagram})"
            if full.kind in (proto.STUN_MESSAGE, proto.CLASSIC_MESSAGE) and quick[1:4] != (
                full.msg_type,
                full.transaction_id,
                full.size,
            ):
                return "disagreement", f"peek's header differs (datagram={datagram})"
    return None


def _work(job: tuple[int, int, int]) -> tuple[int, list[tuple[str, str, str]]]:
    """Inputs ``first``..``first + count - 1`` of the campaign ``seed``."""
    from mutations import mutate, seed_messages

    seed, first, count = job
    seeds = _SEEDS if _SEEDS else seed_messages()
    found = []
    for number in range(first, first + count):
        rng = random.Random(f"{seed}:{number}")
        data = mutate(rng.choice(seeds), rng, rng.choice(seeds))
        if not data:
            continue
        try:
            problem = _check(data)
        except Exception:  # the checker itself: still a crash, of the views
            problem = ("crash", traceback.format_exc(limit=-2).strip().splitlines()[-1])
        if problem is not None:
            found.append((problem[0], problem[1], data.hex()))
    return count, found


_SEEDS: list[bytes] = []


def _init() -> None:
    from mutations import seed_messages

    _SEEDS[:] = seed_messages()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--inputs", type=int, default=1_000_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=0.0, help="stop after this (0: never)")
    args = parser.parse_args()
    if not (0 < args.inputs and 0 < args.workers <= 64 and args.minutes >= 0):
        parser.error("--inputs and --workers must be > 0, --minutes >= 0")
    from mutations import seed_messages

    seeds = seed_messages()
    print(f"{len(seeds)} seed messages; {args.inputs:,} inputs on {args.workers} processes,"
          f" seed {args.seed}", flush=True)  # fmt: skip
    jobs = [(args.seed, first, min(CHUNK, args.inputs - first))
            for first in range(0, args.inputs, CHUNK)]  # fmt: skip
    started = time.monotonic()
    deadline = started + args.minutes * 60 if args.minutes else None
    done = 0
    problems: list[tuple[str, str, str]] = []
    last_note = started
    with multiprocessing.get_context("fork").Pool(args.workers, initializer=_init) as pool:
        try:
            for count, found in pool.imap_unordered(_work, jobs):
                done += count
                problems += found
                now = time.monotonic()
                if now - last_note >= 30:
                    last_note = now
                    print(f"  {done:,} inputs, {done / (now - started):,.0f}/s,"
                          f" {len(problems)} problems", flush=True)  # fmt: skip
                if deadline is not None and now >= deadline:
                    pool.terminate()
                    break
        except KeyboardInterrupt:
            pool.terminate()
            print("interrupted", flush=True)
    elapsed = time.monotonic() - started
    crashes = [p for p in problems if p[0] == "crash"]
    disagreements = [p for p in problems if p[0] == "disagreement"]
    print(f"inputs run: {done:,} in {elapsed:,.0f} s ({done / max(elapsed, 1e-9):,.0f}/s)"
          f"{'' if done >= args.inputs else f' (stopped early, of {args.inputs:,})'}")  # fmt: skip
    print(f"crashes: {len(crashes)}; disagreements: {len(disagreements)}")
    for kind, items in (("crash", crashes), ("disagreement", disagreements)):
        for _, what, data in items[:SHOWN]:
            print(f"  {kind}: {what}\n    {data}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
