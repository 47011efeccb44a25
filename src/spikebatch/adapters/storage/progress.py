"""Progress accounting for transfers, and how a progress callback cancels one."""

from __future__ import annotations

import threading
from typing import Optional

from ...ports.storage import ProgressCallback


class TransferCancelled(Exception):
    """Carries a KeyboardInterrupt / SystemExit raised by a progress callback through
    library code that cleans up (aborts a multipart upload) only on ``Exception``;
    the adapters re-raise ``reason`` once the library has cleaned up."""

    def __init__(self, reason: BaseException) -> None:
        super().__init__(f"transfer cancelled by {type(reason).__name__}")
        self.reason = reason


class Progress:
    """Turns byte increments (from any thread) into ``callback(done, total)`` calls.

    Calls are serialised, so a progress bar needs no locking. An exception raised by
    the callback propagates to the transfer, which is how a caller cancels one.
    """

    def __init__(self, callback: Optional[ProgressCallback], total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0
        self._lock = threading.Lock()

    def add(self, count: int) -> None:
        # boto3 reports negative counts when it rewinds a part for a retry.
        with self._lock:
            self.done += count
            if self.callback is not None:
                self._call()

    def _call(self) -> None:
        try:
            self.callback(self.done, self.total)  # type: ignore[misc]
        except Exception:
            raise
        except BaseException as exc:
            raise TransferCancelled(exc) from exc

    def finish(self) -> None:
        """Report completion once if the transfer did not (an upload that was skipped
        because the object already exists)."""
        with self._lock:
            if self.done != self.total:
                self.done = self.total
                if self.callback is not None:
                    self._call()
