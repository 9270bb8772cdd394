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

While run follows run, the pending requests live in a :class:`PendingTable` (arrays)
rather than the analyser's dicts; the caller hands them back (:meth:`Pairer.release`)
before any per-message code runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import islice

import numpy as np

from stunscan.capture.fastpath import ANSWERING, ASKING
from stunscan.pcap import analyzer as analysis
from stunscan.pcap.analyzer import CLIENT_KEY, Analyzer
from stunscan.pcap.pending import (
    CLIENT_BYTES,
    CLIENT_WORDS,
    KEY_BYTES,
    WORDS,
    PendingTable,
    word_hash,
)

__all__ = ["KEY_BYTES", "SERVER_BYTES", "Pairer", "Plan"]

SERVER_BYTES = np.dtype((np.void, 24))


@dataclass(slots=True)
class Plan:
    """What a run of events does: the responses in order, each with the size of the
    request it answers (-1: unsolicited) and whether it came from another address."""

    responses: np.ndarray
    request_sizes: np.ndarray
    moved: np.ndarray


def _repeated(values: np.ndarray) -> bool:
    ordered = np.sort(values)
    return bool(np.any(ordered[1:] == ordered[:-1]))


def client_bytes(words: np.ndarray) -> list[bytes]:
    """The ``pending_by_client`` keys (the first CLIENT_KEY bytes of the pair keys)."""
    prefix = np.ascontiguousarray(words[:, :CLIENT_WORDS])
    return prefix.view(CLIENT_BYTES).ravel().tolist()  # type: ignore[no-any-return]


@dataclass(slots=True)
class _Run:
    """A run's requests and responses matched among themselves, whatever holds the table:
    each response's request before it in the run with its client part (``request``,
    ``found``), and whether the whole key is the same (``same``)."""

    kinds: np.ndarray
    times: np.ndarray
    sizes: np.ndarray
    words: np.ndarray
    client_hash: np.ndarray
    asks: np.ndarray
    answers: np.ndarray
    request: np.ndarray
    found: np.ndarray
    same: np.ndarray

    @classmethod
    def match(
        cls, kinds: np.ndarray, keys: np.ndarray, times: np.ndarray, sizes: np.ndarray
    ) -> _Run | None:
        """None if a client part repeats among the requests or among the responses."""
        count = kinds.size
        asks = np.flatnonzero(ASKING[kinds])
        answers = np.flatnonzero(ANSWERING[kinds])
        words = keys.view(np.uint64).reshape(count, WORDS)
        client_hash = word_hash(words[:, :CLIENT_WORDS])
        asked_hash = client_hash[asks]
        order = np.argsort(asked_hash)
        ordered = asked_hash[order]
        if np.any(ordered[1:] == ordered[:-1]) or _repeated(client_hash[answers]):
            return None
        at = np.minimum(np.searchsorted(ordered, client_hash[answers]), max(asks.size - 1, 0))
        if asks.size:
            request = asks[order[at]]
            found = (ordered[at] == client_hash[answers]) & (request < answers)
            found &= (words[request, :CLIENT_WORDS] == words[answers, :CLIENT_WORDS]).all(1)
            same = found & (words[request] == words[answers]).all(1)
        else:
            request = np.zeros(answers.size, np.intp)
            found = same = np.zeros(answers.size, bool)
        return cls(kinds, times, sizes, words, client_hash, asks, answers, request, found, same)

    def young(self, earliest: float) -> bool:
        """Whether no request ages out by time (``earliest``: the table's oldest time)."""
        if not self.asks.size:
            return True
        ask_times = self.times[self.asks]
        earliest = min(earliest, float(ask_times.min()))
        return earliest > float(ask_times.max()) - analysis.PENDING_TIMEOUT

    def aged(self, pending: int, paired: np.ndarray) -> int:
        """How many requests MAX_PENDING ages out, ``pending`` being the table's size
        before the run and ``paired`` which responses pair (none of the aged, checked by
        the caller)."""
        if not self.asks.size:
            return 0
        before = (
            pending + np.arange(self.asks.size) - np.searchsorted(self.answers[paired], self.asks)
        )  # (responses before a request: searchsorted counts them)
        return max(0, int((before - analysis.MAX_PENDING + 1).max()))

    def ranks(self) -> np.ndarray:
        rank = np.zeros(self.kinds.size, np.intp)
        rank[self.asks] = np.arange(self.asks.size)
        return rank

    def settle(
        self,
        analyzer: Analyzer,
        request_sizes: np.ndarray,
        paired: np.ndarray,
        lost: np.ndarray,
        moved: np.ndarray,
    ) -> Plan:
        """The counts and the unanswered-for responses; the plan."""
        stats = analyzer.stats
        stats.paired += int(np.count_nonzero(paired))
        stats.unsolicited += lost.size
        unsolicited = analyzer.unsolicited
        first = 0
        while unsolicited is not None and first < lost.size:
            room = analysis.MAX_PENDING - len(unsolicited)
            if room <= 0:
                break
            chosen = self.answers[lost[first : first + room]]
            unsolicited.update(dict.fromkeys(self.words[chosen].view(KEY_BYTES).ravel().tolist()))
            first += room
        flags = np.zeros(self.answers.size, bool)
        flags[moved] = True
        return Plan(self.answers, request_sizes, flags)

    def kept(self, here: np.ndarray, aged_here: int) -> np.ndarray:
        """The run's requests still pending after it (not paired in it, not aged)."""
        left = np.ones(self.asks.size, bool)
        left[self.ranks()[self.request[here]]] = False
        left[:aged_here] = False
        return left


class Pairer:
    """Pairs runs of events for one analyser, holding the pending requests in a
    :class:`PendingTable` while it can; keeps a lower bound on the capture times of the
    dicts' pending requests (so the ageing by time is ruled out without reading them all)."""

    def __init__(self, analyzer: Analyzer) -> None:
        self.analyzer = analyzer
        pending = analyzer.pending  # (one analyser reads the captures of a run in turn)
        self.earliest = min(v[1] for v in pending.values()) if pending else np.inf
        """No pending request in the dicts was asked before this (see :meth:`saw`)."""
        self.batch_earliest = np.inf
        self.table = PendingTable()
        self.owned = False
        """Whether the table holds the pending requests (the dicts are empty then)."""

    def saw(self, times: np.ndarray) -> None:
        """The packets of the batch now read, at these times, may be added to the tables
        (by any code)."""
        self.batch_earliest = float(times.min()) if times.size else np.inf
        self.earliest = min(self.earliest, self.batch_earliest)

    def pending_count(self) -> int:
        """How many requests are pending, wherever they are held."""
        return self.table.live if self.owned else len(self.analyzer.pending)

    def release(self) -> None:
        """The pending requests back in the analyser's dicts, for per-message code."""
        if self.owned:
            self.table.give(self.analyzer.pending, self.analyzer.pending_by_client)
            self.owned = False

    def plan(
        self, kinds: np.ndarray, keys: np.ndarray, times: np.ndarray, sizes: np.ndarray
    ) -> Plan | None:
        """Pair a run of request and response events (``keys``: their pair keys as rows of
        the fast path's words; ``times``: theirs), updating the analyser's tables and stats
        as its per-message code would; None, with nothing changed, when the run is not one
        decided here (see the module's docstring). The table is taken over when the dicts
        hold no more requests than the run has events (so handing them back to and fro
        costs no more than the run's own pairing)."""
        analyzer = self.analyzer
        pending = analyzer.pending
        if (
            not self.owned
            and len(pending) <= kinds.size
            and PendingTable.can_take(pending, analyzer.pending_by_client)
        ):
            self.owned = self.table.take(pending, analyzer.pending_by_client)
        run = _Run.match(kinds, keys, times, sizes)
        if run is None:
            return None
        if self.owned:
            return self._plan_table(run)
        return self._plan_dicts(run)

    def _plan_table(self, run: _Run) -> Plan | None:
        table = self.table
        if not run.young(table.earliest()):
            return None
        asks, answers, words = run.asks, run.answers, run.words
        if table.any_client(run.client_hash[asks]):
            return None  # a request asked again, or its client part pending already
        # the others: a table request with their client part (the same key, or answered
        # from another address), one of the run's (from another address), or unsolicited
        looked = np.flatnonzero(~run.same)
        looked_answers = answers[looked]
        slot = table.find_clients(
            run.client_hash[looked_answers], words[looked_answers, :CLIENT_WORDS]
        )
        in_table = slot >= 0
        whole = np.zeros(looked.size, bool)
        whole[in_table] = (table.words[slot[in_table]] == words[looked_answers[in_table]]).all(1)
        from_table = looked[in_table]
        taken = slot[in_table]
        moved_far = looked[in_table & ~whole]
        moved = looked[~in_table & run.found[looked]]
        lost = looked[~in_table & ~run.found[looked]]
        paired_here = run.same.copy()
        paired_here[moved] = True
        paired = paired_here.copy()
        paired[from_table] = True
        aged = run.aged(table.live, paired)
        old = min(aged, table.live)
        aged_slots = table.oldest(old)
        if old and taken.size and taken.min() <= aged_slots[-1]:
            return None  # a request the run pairs would have aged out first
        aged_here = aged - old
        here = np.flatnonzero(paired_here)
        if aged_here and here.size and run.ranks()[run.request[here]].min() < aged_here:
            return None
        # decided: the table as the per-message code leaves the dicts
        self.analyzer.stats.unanswered += aged
        table.remove(aged_slots)
        request_sizes = np.full(answers.size, -1, np.int64)
        request_sizes[from_table] = table.sizes[taken]
        table.remove(taken)
        request_sizes[here] = run.sizes[run.request[here]]
        left = asks[run.kept(here, aged_here)]
        table.add(words[left], run.sizes[left], run.times[left])
        moved_flags = np.concatenate([moved, moved_far])
        return run.settle(self.analyzer, request_sizes, paired, lost, moved_flags)

    def _plan_dicts(self, run: _Run) -> Plan | None:
        analyzer = self.analyzer
        pending = analyzer.pending
        by_client = analyzer.pending_by_client
        asks, answers, words = run.asks, run.answers, run.words
        # the ageing by time: every pending request must stay younger than the timeout
        if asks.size:
            if not pending:
                self.earliest = self.batch_earliest
            if not run.young(self.earliest):
                self.earliest = min(
                    self.batch_earliest, min(v[1] for v in pending.values()) if pending else np.inf
                )
                if not run.young(self.earliest):
                    return None
        key_bytes = words.view(KEY_BYTES).ravel()
        asked_keys = key_bytes[asks].tolist()
        if not pending.keys().isdisjoint(asked_keys):
            return None  # a request asked again: its place in the table stays the old one
        asked_clients = client_bytes(words[asks])
        if not by_client.keys().isdisjoint(asked_clients):
            return None
        # the others: in the tables (an earlier run's request, perhaps answered from
        # another address: by client), or unsolicited
        looked = np.flatnonzero(~run.same)
        looked_keys = key_bytes[answers[looked]].tolist()
        in_table = np.fromiter(map(pending.__contains__, looked_keys), bool, looked.size)
        from_table = looked[in_table]
        taken_keys = [looked_keys[i] for i in np.flatnonzero(in_table).tolist()]
        moved = looked[~in_table & run.found[looked]]
        rest = looked[~in_table & ~run.found[looked]]
        rest_clients = client_bytes(words[answers[rest]])
        by_asker = np.fromiter(map(by_client.__contains__, rest_clients), bool, rest.size)
        asker_clients = [rest_clients[i] for i in np.flatnonzero(by_asker).tolist()]
        asker_keys = [by_client[client] for client in asker_clients]
        asker_found = np.fromiter(map(pending.__contains__, asker_keys), bool, len(asker_keys))
        moved_far = rest[by_asker][asker_found]
        lost = np.concatenate([rest[~by_asker], rest[by_asker][~asker_found]])
        lost.sort()
        paired_here = run.same.copy()
        paired_here[moved] = True
        paired = paired_here.copy()
        paired[from_table] = True
        paired[moved_far] = True
        aged = run.aged(len(pending), paired)
        old = min(aged, len(pending))
        aged_keys = list(islice(pending, old))
        if old and not (
            set(aged_keys).isdisjoint(taken_keys + asker_keys)
            and {k[:CLIENT_KEY] for k in aged_keys}.isdisjoint(asked_clients + asker_clients)
        ):
            return None
        aged_here = aged - old  # the run's own first requests
        here = np.flatnonzero(paired_here)
        if aged_here and here.size and run.ranks()[run.request[here]].min() < aged_here:
            return None
        # decided: the tables as the per-message code leaves them
        for key in aged_keys:
            del pending[key]
            by_client.pop(key[:CLIENT_KEY], None)
        analyzer.stats.unanswered += aged
        request_sizes = np.full(answers.size, -1, np.int64)
        sizes = []
        for key in taken_keys:
            sizes.append(pending.pop(key)[0])
            client = key[:CLIENT_KEY]
            if by_client.get(client) == key:
                del by_client[client]
        request_sizes[from_table] = sizes
        for client in asker_clients:
            del by_client[client]
        far_keys = [asker_keys[i] for i in np.flatnonzero(asker_found).tolist()]
        request_sizes[moved_far] = [pending.pop(key)[0] for key in far_keys]
        request_sizes[here] = run.sizes[run.request[here]]
        left = run.kept(here, aged_here)
        kept = np.flatnonzero(left).tolist()
        entries = zip(run.sizes[asks[left]].tolist(), run.times[asks[left]].tolist(), strict=True)
        pending.update(zip([asked_keys[i] for i in kept], entries, strict=True))
        by_client.update(
            zip([asked_clients[i] for i in kept], [asked_keys[i] for i in kept], strict=True)
        )
        return run.settle(analyzer, request_sizes, paired, lost, np.concatenate([moved, moved_far]))
