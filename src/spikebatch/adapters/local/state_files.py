"""On-disk layout of the local backend, shared by its two halves (the backend object,
and the detached supervisor that runs a Job's pods).

One folder per Job, under ``<state root>/<namespace>/<job name>/``::

    manifest.json     the Job as applied (metadata gains uid + creationTimestamp)
    launch.json       argv, env overrides, cwd, limits -- resolved before anything ran
    supervisor.json   pid (+ start ticks) of the supervisor process
    status.json       a batch/v1 Job ``status`` the supervisor keeps current
    supervisor.log    the supervisor's own stderr (its crashes, never the job's output)
    pods/000.json     one record per attempt ("pod"), numbered in start order: name, pid,
                      phase, exit code, and for an Indexed Job its completion index
    pods/000.log      that attempt's stdout + stderr

Every JSON file is replaced atomically (write + rename), so a reader in another
process never sees half a file. Folders are 0700 and files 0600: env values may be
credentials.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional

from ..files.atomic import write_text_atomically

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
    """Atomically replace ``path`` with ``data`` as JSON (mode 0600). Raises
    FileNotFoundError when the Job's folder has been moved away (deleted)."""
    write_text_atomically(path, json.dumps(data, indent=1, sort_keys=True), private=True)


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


def _attempt_number(file_name: str) -> int:
    stem = file_name[: -len(".json")]
    return int(stem) if stem.isdigit() else -1


def pod_records(job_dir: Path) -> list[dict[str, Any]]:
    """Every attempt of the Job, oldest first."""
    folder = job_dir / PODS
    try:
        # By number, not by name: an Indexed Job may have more than 999 attempts, and
        # "1000.json" sorts before "999.json".
        names = sorted((p for p in os.listdir(folder) if p.endswith(".json") and not p.startswith(".")),
                       key=lambda p: (_attempt_number(p), p))
    except FileNotFoundError:
        return []
    records = []
    for name in names:
        rec = read_json(folder / name)
        if isinstance(rec, dict):
            records.append(rec)
    return records
