"""The process helpers the local backend and its supervisor share: telling a live
process from a later one that reused its pid, and stopping a process group."""

from __future__ import annotations

import os
import signal
import time
from typing import Optional


def start_ticks(pid: int) -> Optional[str]:
    """The process's start time in clock ticks since boot (Linux /proc), which tells a
    live process from a later one that reused its pid. None where /proc is absent."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as fh:
            stat = fh.read()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses; the rest starts after the last ")".
    fields = stat[stat.rfind(")") + 2:].split()
    if fields and fields[0] == "Z":  # a zombie has finished
        return None
    return fields[19] if len(fields) > 19 else None


def process_alive(pid: Optional[int], ticks: Optional[str]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return ticks is None  # exists but is not ours: only plausible without /proc
    if os.path.isdir("/proc"):
        current = start_ticks(pid)
        return current is not None and (ticks is None or current == ticks)
    return True


def signal_group(pgid: Optional[int], ticks: Optional[str], sig: int) -> None:
    """Send ``sig`` to the process group led by ``pgid``, unless its leader is alive
    but is another process than the one recorded (pid reused)."""
    if not pgid:
        return
    if ticks is not None and os.path.isdir("/proc"):
        current = start_ticks(pgid)
        if current is not None and current != ticks:
            return
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def stop_group(pgid: Optional[int], ticks: Optional[str], grace: float) -> None:
    """SIGTERM the group led by ``pgid``, wait up to ``grace`` s for its leader to end,
    then SIGKILL whatever of the group is left. Waits on the leader with
    ``process_alive`` (zombie-aware): an orphan may wait a moment for its reaper."""
    if not pgid:
        return
    signal_group(pgid, ticks, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and process_alive(pgid, ticks):
        time.sleep(0.05)
    signal_group(pgid, ticks, signal.SIGKILL)
