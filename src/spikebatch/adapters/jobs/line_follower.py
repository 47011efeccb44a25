"""Following a stream of lines that may never end by itself: kwok, and a dropped
connection, keep a followed log open after the container has exited, and a watch
process may stay silent after everything it was asked about has happened."""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator, Optional

_END = object()


class LineFollower:
    """Read lines from a blocking source in a thread, so the reader of the lines can
    notice, while the source is silent, that the writer has finished.

    ``open_stream`` returns an iterator of lines; ``close_stream`` unblocks it from
    another thread. ``finished`` answers "has the writer ended?" and is asked only
    while no line arrives (first after ``first_check`` s, then less and less often,
    up to ``max_check`` s, so a long silent step costs few requests)."""

    def __init__(self, lines: Iterator[str], close_stream: Callable[[], None],
                 finished: Callable[[], bool], first_check: float = 1.0, max_check: float = 15.0) -> None:
        self._lines, self._close = lines, close_stream
        self._finished, self._first, self._max = finished, first_check, max_check
        self._queue: queue.Queue = queue.Queue(maxsize=10000)
        self.error: Optional[BaseException] = None
        self.ended_by_source = False
        self._thread = threading.Thread(target=self._pump, name="spikebatch-log-follow", daemon=True)
        self._stopping = threading.Event()

    def _put(self, item: object) -> bool:
        # Bounded waits: once the reader has stopped, nobody drains the queue.
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        try:
            for line in self._lines:
                if not self._put(line):
                    return
        except BaseException as exc:  # handed to the reading thread, which decides
            if not self._stopping.is_set():
                self.error = exc
        finally:
            self._put(_END)

    def __iter__(self) -> Iterator[str]:
        self._thread.start()
        wait = self._first
        try:
            while True:
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    if self._finished():
                        return
                    wait = min(wait * 2, self._max)
                    continue
                if item is _END:
                    self.ended_by_source = True
                    return
                wait = self._first
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        if not self._stopping.is_set():
            self._stopping.set()
            self._close()
            self._thread.join(timeout=5)
