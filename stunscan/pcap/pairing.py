"""Requests paired with responses a run of events at a time, with numpy.

``Analyzer._request`` and ``Analyzer._pair`` (the definition) cost a microsecond or two per
message in CPython, most of a scan's capture. Here a run of request and response events
(no generic event among them) is decided at once: each response finds the request before
it in the run with its (ID, transport, client) by a sort of 64-bit hashes of the key
words; what is left is looked up in the analyser's tables with dict operations done in C;
how many pending requests the run ages out, by ``MAX_PENDING``, comes from running
counts; then the tables are brought to the state the per-message code leaves them in.

Whatever would make the order of those table operations matter is not decided here: the
same request or answer twice in the run (a retransmission, a duplicate answer, the same ID
to two servers), a request already pending, an answer from another address to a request
of an earlier run, a paired request that the run would also age out, a request old enough
for ``PENDING_TIMEOUT``. :func:`plan` then returns None and the caller runs the
per-message code on the run. ``tests/test_fast_pcap.py`` holds both to the same output.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import numpy as np

from stunscan.capture.fastpath import ANSWERING, ASKING
from stunscan.pcap import analyzer as analysis
from stunscan.pcap.analyzer import CLIENT_KEY, Analyzer

_WORDS = 8
_CLIENT_WORDS = CLIENT_KEY // 8
_MIX = np.array(
    [
        0x9E3779B97F4A7C15,
        0xC2B2AE3D27D4EB4F,
        0x165667B19E3779F9,
        0xD6E8FEB86659FD93,
        0xFF51AFD7ED558CCD,
        0xC4CEB9FE1A85EC53,
        0x94D049BB133111EB,
        0xBF58476D1CE4E5B9,
    ],
    np.uint64,
)
"""Odd multipliers: a key's words mixed into one 64-bit number (equal keys, equal hashes;
a collision only sends the run to the per-message code, as a duplicate would)."""
KEY_BYTES = np.dtype((np.void, _WORDS * 8))
CLIENT_BYTES = np.dtype((np.void, CLIENT_KEY))
SERVER_BYTES = np.dtype((np.void, 24))


@dataclass(slots=True)
class Plan:
    """What a run of events does: the responses in order, each with the size of the
    request it answers (None: unsolicited) and whether it came from another address."""

    responses: np.ndarray
    request_sizes: list[int | None]
    moved: list[bool]


def _hash(words: np.ndarray) -> np.ndarray:
    mixed = words * _MIX[: words.shape[1]]
    return np.bitwise_xor.reduce(mixed, axis=1) + mixed.sum(axis=1)


def _repeated(values: np.ndarray) -> bool:
    ordered = np.sort(values)
    return bool(np.any(ordered[1:] == ordered[:-1]))


def client_bytes(words: np.ndarray) -> list[bytes]:
    """The ``pending_by_client`` keys (the first CLIENT_KEY bytes of the pair keys)."""
    prefix = np.ascontiguousarray(words[:, :_CLIENT_WORDS])
    return prefix.view(CLIENT_BYTES).ravel().tolist()  # type: ignore[no-any-return]


class Pairer:
    """Pairs runs of events for one analyser; keeps a lower bound on the capture times of
    its pending requests (so the ageing by time is ruled out without reading them all)."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        pending = analyzer.pending  # (one analyser reads the captures of a run in turn)
        self.earliest = min(v[1] for v in pending.values()) if pending else np.inf
        """No pending request was asked before this (see :meth:`saw`)."""
        self.batch_earliest = np.inf

    def saw(self, times: np.ndarray) -> None:
        """The packets of the batch now read, at these times, may be added to the tables
        (by any code)."""
        self.batch_earliest = float(times.min()) if times.size else np.inf
        self.earliest = min(self.earliest, self.batch_earliest)

    def plan(
        self, kinds: np.ndarray, keys: np.ndarray, times: np.ndarray, sizes: np.ndarray
    ) -> Plan | None:
        """Pair a run of request and response events (``keys``: their pair keys as rows of
        the fast path's words; ``times``: theirs), updating the analyser's tables and stats
        as its per-message code would; None, with nothing changed, when the run is not one
        decided here (see the module's docstring)."""
        analyzer = self.analyzer
        pending = analyzer.pending
        by_client = analyzer.pending_by_client
        limit = analysis.MAX_PENDING
        count = kinds.size
        asks = np.flatnonzero(ASKING[kinds])
        answers = np.flatnonzero(ANSWERING[kinds])
        words = keys.view(np.uint64).reshape(count, _WORDS)
        client_hash = _hash(words[:, :_CLIENT_WORDS])
        asked_hash = client_hash[asks]
        order = np.argsort(asked_hash)
        ordered = asked_hash[order]
        if np.any(ordered[1:] == ordered[:-1]) or _repeated(client_hash[answers]):
            return None
        # the ageing by time: every pending request must stay younger than the timeout
        if asks.size:
            if not pending:
                self.earliest = self.batch_earliest
            ask_times = times[asks]
            earliest = min(self.earliest, float(ask_times.min()))
            latest = float(ask_times.max())
            if not earliest > latest - analysis.PENDING_TIMEOUT:
                self.earliest = min(
                    self.batch_earliest, min(v[1] for v in pending.values()) if pending else np.inf
                )
                earliest = min(self.earliest, float(ask_times.min()))
                if not earliest > latest - analysis.PENDING_TIMEOUT:
                    return None
        # each response: the request before it in the run with its client part, if any
        at = np.minimum(np.searchsorted(ordered, client_hash[answers]), max(asks.size - 1, 0))
        if asks.size:
            request = asks[order[at]]
            found = (ordered[at] == client_hash[answers]) & (request < answers)
            found &= (words[request, :_CLIENT_WORDS] == words[answers, :_CLIENT_WORDS]).all(1)
            same = found & (words[request] == words[answers]).all(1)
        else:
            request = np.zeros(answers.size, np.intp)
            found = same = np.zeros(answers.size, bool)
        key_bytes = keys.view(KEY_BYTES).ravel()
        asked_keys = key_bytes[asks].tolist()
        if not pending.keys().isdisjoint(asked_keys):
            return None  # a request asked again: its place in the table stays the old one
        asked_clients = client_bytes(words[asks])
        if not by_client.keys().isdisjoint(asked_clients):
            return None
        # the others: in the tables (an earlier run's request, perhaps answered from
        # another address: by client), or unsolicited
        looked = np.flatnonzero(~same)
        looked_keys = key_bytes[answers[looked]].tolist()
        in_table = np.fromiter(map(pending.__contains__, looked_keys), bool, looked.size)
        from_table = looked[in_table]
        taken_keys = [looked_keys[i] for i in np.flatnonzero(in_table).tolist()]
        moved = looked[~in_table & found[looked]]
        rest = looked[~in_table & ~found[looked]]
        rest_clients = client_bytes(words[answers[rest]])
        by_asker = np.fromiter(map(by_client.__contains__, rest_clients), bool, rest.size)
        asker_clients = [rest_clients[i] for i in np.flatnonzero(by_asker).tolist()]
        asker_keys = [by_client[client] for client in asker_clients]
        asker_found = np.fromiter(map(pending.__contains__, asker_keys), bool, len(asker_keys))
        moved_far = rest[by_asker][asker_found]
        lost = np.concatenate([rest[~by_asker], rest[by_asker][~asker_found]])
        lost.sort()
        paired_here = np.zeros(answers.size, bool)
        paired_here[same] = True
        paired_here[moved] = True
        paired = paired_here.copy()
        paired[from_table] = True
        paired[moved_far] = True
        # ageing by MAX_PENDING: pending before each request, had nothing aged out
        before = (
            len(pending) + np.arange(asks.size) - np.searchsorted(answers[paired], asks)
        )  # (responses before a request: searchsorted counts them)
        aged = 0
        if asks.size:
            aged = max(0, int((before - limit + 1).max()))
        old = min(aged, len(pending))
        aged_keys = list(islice(pending, old))
        if old and not (
            set(aged_keys).isdisjoint(taken_keys + asker_keys)
            and {k[:CLIENT_KEY] for k in aged_keys}.isdisjoint(asked_clients + asker_clients)
        ):
            return None
        aged_here = aged - old  # the run's own first requests
        rank = np.zeros(count, np.intp)
        rank[asks] = np.arange(asks.size)
        if aged_here and paired_here.any() and rank[request[paired_here]].min() < aged_here:
            return None
        # decided: the tables as the per-message code leaves them
        stats = analyzer.stats
        for key in aged_keys:
            del pending[key]
            by_client.pop(key[:CLIENT_KEY], None)
        stats.unanswered += aged
        request_sizes: list[int | None] = [None] * answers.size
        for index, key in zip(from_table.tolist(), taken_keys, strict=True):
            request_sizes[index] = pending.pop(key)[0]
            client = key[:CLIENT_KEY]
            if by_client.get(client) == key:
                del by_client[client]
        for client in asker_clients:
            del by_client[client]
        far_keys = [asker_keys[i] for i in np.flatnonzero(asker_found).tolist()]
        for index, key in zip(moved_far.tolist(), far_keys, strict=True):
            request_sizes[index] = pending.pop(key)[0]
        here = np.flatnonzero(paired_here)
        for index, size in zip(here.tolist(), sizes[request[here]].tolist(), strict=True):
            request_sizes[index] = size
        left = np.ones(asks.size, bool)
        left[rank[request[here]]] = False
        left[:aged_here] = False
        kept = np.flatnonzero(left).tolist()
        entries = zip(sizes[asks[left]].tolist(), times[asks[left]].tolist(), strict=True)
        pending.update(zip([asked_keys[i] for i in kept], entries, strict=True))
        by_client.update(
            zip([asked_clients[i] for i in kept], [asked_keys[i] for i in kept], strict=True)
        )
        stats.paired += int(np.count_nonzero(paired))
        stats.unsolicited += lost.size
        unsolicited = analyzer.unsolicited
        if unsolicited is not None and lost.size:
            for key in key_bytes[answers[lost]].tolist():
                if len(unsolicited) >= limit:
                    break
                unsolicited[key] = None
        moved_flags = [False] * answers.size
        for index in [*moved.tolist(), *moved_far.tolist()]:
            moved_flags[index] = True
        return Plan(answers, request_sizes, moved_flags)
