"""Rows that wait for their PTR answer, each at most the timeout, in the order they came.

Without reverse DNS a row is written the moment it is put. With it, a row waits at the
back of a queue until its address's answer is in or its own deadline (put time + timeout)
has passed, whichever is first; rows leave from the front, so the output keeps its order
and still streams: no row waits longer than the timeout for its own answer (one behind a
slower row leaves with it, its own deadline being later). A row whose answer was late gets
no hostname; the answer still fills the cache for the address's later rows.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future
from typing import Generic, TypeVar

from stunscan.enrich.columns import Enrichment
from stunscan.enrich.ptr import PtrAnswer

Item = TypeVar("Item")
LATE = "late"
"""The outcome of a row whose answer had not come by its deadline."""


class RowStream(Generic[Item]):
    """Put rows in with their server's address; ``write(item, enrichment)`` is called for
    each, in order, once its enrichment is complete."""

    def __init__(
        self,
        enrich: Callable[[str, PtrAnswer | None, str | None], Enrichment],
        lookup: Callable[[str], Future[PtrAnswer] | None] | None,
        timeout: float,
        write: Callable[[Item, Enrichment], None],
        count: Callable[[str], None] = lambda outcome: None,
    ) -> None:
        self.enrich = enrich
        self.lookup = lookup
        self.timeout = timeout
        self.write = write
        self.count = count
        """Told each row's PTR outcome (a status of ptr.py, or LATE)."""
        self.waiting: deque[tuple[float, str, Future[PtrAnswer] | None, Item, str | None]]
        self.waiting = deque()

    def put(self, ip: str, item: Item, hostname: str | None = None) -> None:
        """A row for server ``ip``; ``hostname``: a name the user gave (no lookup then)."""
        future = None if self.lookup is None or hostname is not None else self.lookup(ip)
        if future is None and not self.waiting:
            self.write(item, self.enrich(ip, None, hostname))
            return
        self.waiting.append((time.monotonic() + self.timeout, ip, future, item, hostname))
        self.pump()

    def pump(self) -> None:
        """Write every row at the front that is ready (answered, or past its deadline)."""
        now = time.monotonic()
        while self.waiting:
            deadline, ip, future, item, hostname = self.waiting[0]
            if future is not None and not future.done() and now < deadline:
                return
            self.waiting.popleft()
            self._write(ip, future, item, hostname)

    def next_deadline(self) -> float | None:
        """When the front row leaves at the latest (time.monotonic), if any waits."""
        return self.waiting[0][0] if self.waiting else None

    def close(self) -> None:
        """Write every row still waiting, each when answered or at its deadline."""
        while self.waiting:
            deadline, ip, future, item, hostname = self.waiting.popleft()
            if future is not None:
                futures.wait([future], timeout=max(0.0, deadline - time.monotonic()))
            self._write(ip, future, item, hostname)

    def _write(
        self, ip: str, future: Future[PtrAnswer] | None, item: Item, hostname: str | None
    ) -> None:
        """``future`` None: a row that waited only for the rows before it."""
        answer: PtrAnswer | None = None
        if future is not None:
            if future.done() and not future.cancelled() and future.exception() is None:
                answer = future.result()
            self.count(answer.status if answer is not None else LATE)
        self.write(item, self.enrich(ip, answer, hostname))
