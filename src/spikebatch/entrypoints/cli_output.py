"""What a person sees on stderr: progress bars, a live status line, coloured policy
findings (rich).

All of it is live only when stderr is a terminal and --quiet is not given; otherwise
progress and state changes become plain one-line messages (none with --quiet), so logs
of batch scripts stay readable. rich is imported here, and this module only inside
commands, so ``spikebatch --help`` never pays for it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable, Iterator, Optional

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from .cli_common import STATE, say

LEVEL_STYLE = {"BLOCK": "bold red", "WARN": "yellow", "PASS": "green"}
STATE_STYLE = {"Complete": "bold green", "Failed": "bold red", "Running": "cyan", "Pending": "yellow"}


def human_bytes(count: float) -> str:
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(count) < 1000 or unit == "TB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1000
    return f"{count:.1f} TB"


class Feedback:
    """The stderr side of one command run."""

    def __init__(self, console: Optional[Console] = None) -> None:
        self.console = console or Console(stderr=True, highlight=False, soft_wrap=True)
        self.live = not STATE.quiet and self.console.is_terminal
        #: The last state printed by ``waiting`` (plain mode), so it is not said twice.
        self._said_state: Optional[str] = None

    # --- policy ---------------------------------------------------------------------
    def findings(self, summary: Any, *, include_pass: bool = False) -> None:
        """Each WARN / BLOCK finding on its own ``policy: [LEVEL] code: message`` line,
        coloured by level (BLOCK red, WARN yellow); PASS findings only with
        ``include_pass``."""
        if STATE.quiet:
            return
        for finding in summary.findings:
            if finding.level == "PASS" and not include_pass:
                continue
            if self.live:
                style = LEVEL_STYLE.get(finding.level, "")
                self.console.print(
                    f"policy: [{style}]{escape(f'[{finding.level}]')}[/] [bold]{escape(finding.code)}[/]: "
                    f"{escape(finding.message)}"
                )
            else:
                say(f"policy: [{finding.level}] {finding.code}: {finding.message}")

    # --- transfers --------------------------------------------------------------------
    @contextlib.contextmanager
    def session_transfer(self, session: Any, description: str) -> Iterator[None]:
        """A ``transfer`` bar that the session's transfers report to, for the block."""
        with self.transfer(description) as progress:
            session.progress = progress
            try:
                yield
            finally:
                session.progress = None

    @contextlib.contextmanager
    def transfer(self, description: str, *, preparing: Optional[str] = None,
                 summarize: bool = True) -> Iterator[Callable[[int, int], None]]:
        """A progress callback ``(bytes_done, bytes_total)`` drawn as a bar with bytes,
        rate and ETA. Its ``.hashing`` attribute is a second callback of the same shape
        for the hashing that precedes an upload, drawn as its own bar labelled
        ``preparing``.

        ``summarize=False``: the bar goes away when done and no "N in S s" line follows
        it, for a caller that says what was done itself (an upload's progress counts
        blobs the store already held at once, so its bytes and rate would claim an
        upload that never happened)."""
        seen: dict = {"done": 0, "total": 0, "started": None}
        hashed: dict = {"done": 0, "total": 0, "started": None}

        def recorder(state: dict) -> Callable[[int, int], None]:
            def record(done: int, total: int) -> None:
                if state["started"] is None:
                    state["started"] = time.monotonic()
                state["done"], state["total"] = done, total

            return record

        record, record_hash = recorder(seen), recorder(hashed)
        if not self.live:
            record.hashing = record_hash  # type: ignore[attr-defined]
            yield record
            if preparing:
                self._summary(preparing, hashed)
            if summarize:
                self._summary(description, seen)
            return
        columns = (
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
        )
        with Progress(*columns, console=self.console, transient=not summarize) as bars:
            tasks: dict = {}

            def bar(name: str, label: str, state: dict, recorder_fn: Callable[[int, int], None]) -> Callable[[int, int], None]:
                def update(done: int, total: int) -> None:
                    recorder_fn(done, total)
                    if name not in tasks:
                        tasks[name] = bars.add_task(label, total=max(total, 1))
                    bars.update(tasks[name], total=max(total, 1), completed=min(done, max(total, 1)))

                return update

            update = bar("transfer", description, seen, record)
            update.hashing = bar("hashing", preparing or "hashing", hashed, record_hash)  # type: ignore[attr-defined]
            yield update
            if "transfer" in tasks and seen["total"] == 0:
                bars.update(tasks["transfer"], total=1, completed=1)

    def _summary(self, description: str, seen: dict) -> None:
        if seen["total"]:
            elapsed = max(time.monotonic() - seen["started"], 1e-6)
            rate = seen["done"] / elapsed
            say(f"{description}: {human_bytes(seen['done'])} in {elapsed:.1f} s ({human_bytes(rate)}/s)")

    # --- waiting ----------------------------------------------------------------------
    @contextlib.contextmanager
    def waiting(self, job_name: str) -> Iterator[Callable[[Any], None]]:
        """An ``on_state`` callback: a live line 'job NAME: STATE  0:00:12' on a
        terminal, else one line per state change."""
        self._said_state = None

        def plain(state: Any) -> None:
            if str(state) != self._said_state:
                self._said_state = str(state)
                say(f"job {job_name}: {state}")

        if not self.live:
            yield plain
            return
        columns = (SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())
        with Progress(*columns, console=self.console, transient=True) as line:
            task = line.add_task(f"job {escape(job_name)}: waiting", total=None)

            def update(state: Any) -> None:
                text = str(state)
                style = STATE_STYLE.get(text, "")
                label = f"[{style}]{escape(text)}[/]" if style else escape(text)
                line.update(task, description=f"job {escape(job_name)}: {label}")

            yield update

    def final_state(self, job_name: str, state: str) -> None:
        if STATE.quiet:
            return
        if self.live:
            style = STATE_STYLE.get(state, "bold")
            self.console.print(f"job {escape(job_name)}: [{style}]{escape(state)}[/]")
        elif state != self._said_state:
            say(f"job {job_name}: {state}")

    def note(self, message: str) -> None:
        """A plain human line (no markup interpretation)."""
        if not STATE.quiet:
            if self.live:
                self.console.print(escape(message))
            else:
                say(message)
