"""The local backend's memory limit: an attempt whose processes together hold more
memory than the container's ``resources.limits.memory`` is killed with SIGKILL and
recorded as OOMKilled with exit code 137, as the kernel's OOM killer ends a container
that goes over its cgroup's limit on a cluster.

Without root there is no cgroup to put an attempt in, so the supervisor measures:
every CHECK_SECONDS it finds the attempt's processes in /proc (its process group or
its session, so a worker that made a group of its own still counts) and adds up their
memory. Then SIGKILL goes to the group and to each of those processes: a cluster ends
the whole container, not only its largest process.

What is counted is the memory a cgroup cannot reclaim: the anonymous and shared-memory
pages, each page shared by forked workers counted once across them (``Pss_Anon`` +
``Pss_Shmem`` of /proc/PID/smaps_rollup). File pages (a memory-mapped recording, the
libraries) are left out: a cgroup charges them too, but drops them before it kills.
Kernels whose smaps_rollup lacks those fields fall back to ``RssAnon`` + ``RssShmem``
of /proc/PID/status, which counts a page shared after a fork once per process.

Why not RLIMIT_AS (setrlimit in the attempt): it limits address space, not memory in
use -- reserved but untouched arenas, mapped files and a GPU driver's reservations all
count -- and a process over it is not killed: its allocation fails, so the job ends
with Python's MemoryError (exit 1) where the cluster shows OOMKilled (137). It is also
per process, where a pod's limit holds for all of its processes together.

Differences from a cluster: a sample every CHECK_SECONDS, not every allocation, so a
job allocating fast may pass the limit by what it allocates in that time before it is
killed, and a burst over the limit and back between two samples goes unseen. Where
/proc is absent (macOS) no memory limit is applied, and the pod's log says so.
"""

from __future__ import annotations

import os
import signal
import time
from typing import TYPE_CHECKING, Iterable, Optional

if TYPE_CHECKING:
    from .attempts import Attempt

#: How often an attempt's memory is measured (one /proc scan for all of a supervisor's
#: attempts, about 7 microseconds per process running on the machine).
CHECK_SECONDS = 0.2
OOM_KILLED = "OOMKilled"
_KIB = 1024


def supported() -> bool:
    """Whether this system shows processes' memory in /proc."""
    return os.path.isfile("/proc/self/smaps_rollup") or os.path.isfile("/proc/self/status")


def unsupported_note(limit_bytes: int) -> str:
    """The pod log's line where the limit cannot be applied."""
    return (f"spikebatch: this system has no /proc, so the memory limit ({size_text(limit_bytes)}, "
            "resources.limits.memory) is not applied here; the cluster applies it")


def size_text(n: int) -> str:
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} B"


def _stat(pid: int) -> Optional[tuple[bytes, int, int]]:
    """(state, process group, session) of process ``pid``; None once it has ended."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            stat = fh.read()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses; the rest starts after the last ")".
    fields = stat[stat.rfind(b")") + 2:].split()
    return (fields[0], int(fields[2]), int(fields[3])) if len(fields) >= 4 else None


def group_members(leaders: Iterable[int]) -> dict[int, list[int]]:
    """For each leader pid, the live processes whose process group or session it leads
    (itself included while it runs)."""
    found: dict[int, list[int]] = {leader: [] for leader in leaders}
    if not found:
        return found
    try:
        names = os.listdir("/proc")
    except OSError:
        return found
    for name in names:
        if not name.isdigit():
            continue
        stat = _stat(int(name))
        if stat is None or stat[0] in (b"Z", b"X"):
            continue  # ended meanwhile, or a zombie, which holds no memory
        _, group, session = stat
        leader = group if group in found else session if session in found else None
        if leader is not None:
            found[leader].append(int(name))
    return found


def kill_members(leader: int, pids: Iterable[int]) -> None:
    """SIGKILL the process group led by ``leader`` (our unreaped child: its pid, and so
    the group's id, cannot have been reused), then each of ``pids`` that left the group
    but is still in the leader's session, checked again just before (a pid that ended
    since the scan may belong to another process now)."""
    try:
        os.killpg(leader, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    for pid in pids:
        stat = _stat(pid)
        if stat is not None and stat[1] != leader and stat[2] == leader:
            try:
                os.kill(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _fields_kib(path: str, names: tuple[str, ...]) -> Optional[int]:
    """The sum of the ``Name:  N kB`` lines ``names`` of a /proc file; None when the
    file cannot be read or lacks one of them."""
    try:
        with open(path, "rb") as fh:
            text = fh.read().decode("ascii", errors="replace")
    except OSError:
        return None
    values: dict[str, int] = {}
    for line in text.splitlines():
        key, _, rest = line.partition(":")
        if key in names:
            parts = rest.split()
            if parts and parts[0].isdigit():
                values[key] = int(parts[0])
    return sum(values.values()) if len(values) == len(names) else None


def process_memory_bytes(pid: int) -> int:
    """What a cgroup would hold against process ``pid`` (0 once it has ended)."""
    kib = _fields_kib(f"/proc/{pid}/smaps_rollup", ("Pss_Anon", "Pss_Shmem"))
    if kib is None:
        kib = _fields_kib(f"/proc/{pid}/status", ("RssAnon", "RssShmem"))
    return (kib or 0) * _KIB


class MemoryLimit:
    """One Job's memory limit, applied to its running attempts by ``check``."""

    def __init__(self, limit_bytes: Optional[int]) -> None:
        self.limit_bytes = limit_bytes
        self.applies = limit_bytes is not None and supported()
        self.next_check = 0.0

    def note(self) -> Optional[str]:
        """A line for each attempt's log when the limit cannot be applied here."""
        if self.limit_bytes is not None and not self.applies:
            return unsupported_note(self.limit_bytes)
        return None

    def check(self, attempts: Iterable["Attempt"]) -> None:
        """Kill every running attempt over the limit; measures at most every
        CHECK_SECONDS, however often it is called."""
        if not self.applies:
            return
        now = time.monotonic()
        if now < self.next_check:
            return
        self.next_check = now + CHECK_SECONDS
        watched = {a.proc.pid: a for a in attempts if a.running and a.proc is not None and not a.oom_killed}
        assert self.limit_bytes is not None
        for leader, pids in group_members(watched).items():
            used = sum(process_memory_bytes(pid) for pid in pids)
            if used > self.limit_bytes:
                watched[leader].kill_for_memory(pids, used, self.limit_bytes)
