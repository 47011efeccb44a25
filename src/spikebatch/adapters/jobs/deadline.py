"""Waiting without overrunning a caller's deadline."""

from __future__ import annotations

import time
from typing import Optional


def sleep_until(deadline: Optional[float], seconds: float) -> None:
    """Sleep ``seconds``, but not past ``deadline`` (a time.monotonic() value)."""
    if deadline is not None:
        seconds = min(seconds, max(0.0, deadline - time.monotonic()))
    if seconds > 0:
        time.sleep(seconds)
