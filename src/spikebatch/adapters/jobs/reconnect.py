"""How a Job watch (kubernetes and kubectl alike) waits before connecting again: a
back-off that grows with each failure in a row, and a grace period after which an
API server that stays unreachable is reported instead of retried."""

from __future__ import annotations

import time
from typing import Optional

from .deadline import sleep_until


class ReconnectBackoff:
    """Reconnect state of one watch. ``connected()`` when the server answers again;
    ``wait_or_raise(error)`` after each failure."""

    def __init__(self, grace_seconds: float, deadline: Optional[float]) -> None:
        self.grace_seconds, self.deadline = grace_seconds, deadline
        self.down_since: Optional[float] = None
        self.failures = 0

    def connected(self) -> None:
        self.down_since, self.failures = None, 0

    def wait_or_raise(self, error: BaseException) -> None:
        """Back off before reconnecting; give up (raise ``error``) once the server has
        been unreachable for longer than the grace period."""
        now = time.monotonic()
        self.down_since = self.down_since if self.down_since is not None else now
        if now - self.down_since > self.grace_seconds:
            raise error
        self.failures += 1
        sleep_until(self.deadline, min(5.0, 0.25 * 2 ** min(self.failures, 5)))
