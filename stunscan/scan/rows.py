"""The report's CSV lines for a batch of answers at once, read from the receive ring.

When every target answers, the sniffer writes a line per answer; making them one at a
time (``Answer.cells``) costs more than judging the frames. ``stunscan.csvlines`` makes a
batch's lines with numpy, from the messages where they lie in the ring; the answers it
leaves (too long, too many attributes, a vendor's method) keep no row and take the
one-at-a-time path. ``tests/test_scan_triage.py`` holds both paths to the same lines.
"""

from __future__ import annotations

import numpy as np

from stunscan import csvlines
from stunscan import protocol as proto
from stunscan.scan.answer import Answer, Row


def fill(buffer: np.ndarray, answers: list[Answer], starts: list[int]) -> None:
    """Set the row of each answer whose message (its UDP payload, which also lies at
    ``starts`` in ``buffer``) the batch code can read; the others keep none, for the
    one-at-a-time path."""
    if not answers:
        return
    basis = answers[0].asked.request_size or len(proto.REFERENCE_PROBE)
    made = csvlines.lines(
        buffer,
        starts,
        [len(answer.payload) for answer in answers],
        [answer.time for answer in answers],
        [f"{answer.ip},udp,{answer.port}" for answer in answers],
        np.full(len(answers), basis, np.int64),
        enriched=answers[0].asked.columns,
        extent=False,
    )
    for answer, line in zip(answers, made, strict=True):
        if line is not None:
            answer.row = Row(line.text, line.amplification, line.software)
