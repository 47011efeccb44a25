"""A job's scratch space on this machine: its work folder (the runner's inputs and
outputs) and its temporary files are removed when the job ends, unless the user asks
to keep them for debugging.

Both halves read the same switch: the runner (its own work folder) and the local
backend (the private temporary folder each local pod gets as its ``$TMPDIR``).
"""

from __future__ import annotations

from typing import Mapping

#: Set to 1 (true, yes, on) to keep a finished job's work folder and temporary files;
#: on the local backend ``job-delete`` still removes them.
KEEP_WORK_DIR_ENV = "SPIKEBATCH_KEEP_WORK_DIR"
_TRUE = frozenset({"1", "true", "yes", "on"})


def keep_work_dir(env: Mapping[str, str]) -> bool:
    """Whether ``env`` asks to keep the job's scratch folders after it ends."""
    return str(env.get(KEEP_WORK_DIR_ENV, "")).strip().lower() in _TRUE
