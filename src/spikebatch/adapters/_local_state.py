"""On-disk layout of the local backend and the process helpers its two halves share
(the backend object, and the detached supervisor that runs a Job's pods).

One folder per Job, under ``<state root>/<namespace>/<job name>/``::

    manifest.json     the Job as applied (metadata gains uid + creationTimestamp)
    launch.json       argv, env overrides, cwd, limits -- resolved before anything ran
    supervisor.json   pid (+ start ticks) of the supervisor process
    status.json       a batch/v1 Job ``status`` the supervisor keeps current
    supervisor.log    the supervisor's own stderr (its crashes, never the job's output)
    pods/000.json     one record per attempt ("pod"): name, pid, phase, exit code
    pods/000.log      that attempt's stdout + stderr

Every JSON file is replaced atomically (write + rename), so a reader in another
process never sees half a file. Folders are 0700 and files 0600: env values may be
credentials.
"""

from __future__ import annotations

import json
import os
import signal
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

MANIFEST = "manifest.json"
LAUNCH = "launch.json"
SUPERVISOR = "supervisor.json"
STATUS = "status.json"
SUPERVISOR_LOG = "supervisor.log"
PODS = "pods"
TRASH = ".trash"


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def now_iso_precise() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def write_json(path: Path, data: Any) -> None:
    """Atomically replace ``path`` with ``data`` as JSON (mode 0600)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=str(path.parent))
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh, indent=1, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def read_json(path: Path) -> Optional[Any]:
    """The JSON in ``path``, or None when the file does not exist (yet / any more)."""
    try:
        with open(path, encoding="utf-8") as fh:
            return json.load(fh)
    except (FileNotFoundError, NotADirectoryError):
        return None


def pod_record_path(job_dir: Path, index: int) -> Path:
    return job_dir / PODS / f"{index:03d}.json"


def pod_log_path(job_dir: Path, index: int) -> Path:
    return job_dir / PODS / f"{index:03d}.log"


def pod_records(job_dir: Path) -> list[dict[str, Any]]:
    """Every attempt of the Job, oldest first."""
    folder = job_dir / PODS
    try:
        names = sorted(p for p in os.listdir(folder) if p.endswith(".json") and not p.startswith("."))
    except FileNotFoundError:
        return []
    records = []
    for name in names:
        rec = read_json(folder / name)
        if isinstance(rec, dict):
            records.append(rec)
    return records


# --------------------------------------------------------------------------- processes

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
