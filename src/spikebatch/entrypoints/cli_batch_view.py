"""The live view of a batch being waited for: a bar over its recordings with the
counts of done / running / failed (on a terminal), or a line at each tenth of the
batch and at each failure (in a log)."""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from .cli_common import STATE, say


def _counts(progress: Any) -> str:
    return (f"{progress.done} done, {progress.running} running, {progress.failed} failed, "
            f"{progress.waiting} waiting")


@contextlib.contextmanager
def batch_progress(feedback: Any, run_id: str) -> Iterator[Callable[[Any], None]]:
    """An ``on_progress`` callback for ``wait_for_batch``."""
    if STATE.quiet:
        yield lambda progress: None
        return
    if not feedback.live:
        said: dict = {"step": -1, "failed": -1}

        def plain(progress: Any) -> None:
            step = progress.done * 10 // max(progress.total, 1)
            if step != said["step"] or progress.failed != said["failed"]:
                said.update(step=step, failed=progress.failed)
                say(f"batch {run_id}: {_counts(progress)}")

        yield plain
        return
    columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeElapsedColumn())
    with Progress(*columns, console=feedback.console, transient=False) as bars:
        task = bars.add_task(f"batch {escape(run_id)}", total=None)

        def update(progress: Any) -> None:
            failed = f"[bold red]{progress.failed} failed[/]" if progress.failed else "0 failed"
            bars.update(task, total=max(progress.total, 1), completed=progress.done + progress.failed,
                        description=f"batch {escape(run_id)}: [green]{progress.done} done[/], "
                                    f"[cyan]{progress.running} running[/], {failed}")

        yield update
