"""Files and bytes done, on the terminal, while a long ``stunscan pcap`` runs.

On standard error only, and only when it is a terminal: rows streamed to standard output
(``--csv -``) are never touched, and a log or a pipe gets no control sequences. Short runs
show nothing. The bar is transient: the table and the summary print where it was.
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

SHOW_FROM_BYTES = 64 << 20
"""Runs over less capture than this end too soon for a bar to help."""


class RunProgress:
    """``files`` files of ``total_bytes`` bytes: :meth:`advance` as bytes are done,
    :meth:`file_done` as each file is. Does nothing when off."""

    def __init__(self, console: Console, files: int, total_bytes: int) -> None:
        self.files = files
        self.files_done = 0
        self.enabled = console.is_terminal and total_bytes >= SHOW_FROM_BYTES
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if self.enabled:
            self._bar = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                TimeRemainingColumn(),
                console=console,
                transient=True,
                redirect_stdout=False,
                redirect_stderr=False,
            )
            self._task = self._bar.add_task(self._description(), total=total_bytes)

    def _description(self) -> str:
        return f"files {self.files_done}/{self.files}"

    def advance(self, done: int) -> None:
        if self._bar is not None and self._task is not None:
            self._bar.advance(self._task, done)

    def file_done(self) -> None:
        self.files_done += 1
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, description=self._description())

    def __enter__(self) -> RunProgress:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._bar is not None:
            self._bar.stop()
