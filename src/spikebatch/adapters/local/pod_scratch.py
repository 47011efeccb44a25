"""Each local pod's private temporary folder: the local stand-in for a pod's own
``/tmp`` (an ``emptyDir`` on a cluster), which goes away with the pod.

The supervisor makes ``<temp root>/spikebatch-pod-<pod name>-<random>/`` before the
attempt starts and gives it to the process as ``$TMPDIR``, so everything the job
writes there (the runner's work folder with its inputs and outputs, a sorter's
scratch) lies in one folder that belongs to that pod. The supervisor removes it when
the attempt ends, whatever the outcome, and ``job-delete`` removes what a killed
supervisor left. ``SPIKEBATCH_KEEP_WORK_DIR=1`` keeps it until ``job-delete``.

The temp root is the job's own ``TMPDIR`` when its env names an existing absolute
folder, else this process's (``$TMPDIR``, else the system's, e.g. ``/tmp``).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from pathlib import Path
from typing import Mapping, Optional

#: Name prefix of every pod folder: removal refuses anything not named so.
POD_DIR_PREFIX = "spikebatch-pod-"


def temp_root(env: Mapping[str, str]) -> Path:
    """Where a pod's folder is made: the job env's TMPDIR, else this process's."""
    chosen = env.get("TMPDIR") or ""
    if os.path.isabs(chosen) and os.path.isdir(chosen):
        return Path(chosen)
    return Path(tempfile.gettempdir())


def pod_dir_path(root: Path, pod_name: str) -> Path:
    """A new pod folder's path (not made yet: the pod record names it first, so a
    delete always knows what to remove)."""
    return root / f"{POD_DIR_PREFIX}{pod_name}-{secrets.token_hex(3)}"


def make_pod_dir(path: Path) -> None:
    """Create the pod folder, private to the user (a job's inputs may be sensitive)."""
    os.mkdir(path, 0o700)


def _make_removable(root: str) -> None:
    """Give the user write and search rights on every folder under ``root``: a job
    may have left read-only folders (a Go module cache, a copied read-only tree), whose
    entries cannot be unlinked otherwise."""
    os.chmod(root, stat.S_IRWXU)
    for folder, dirs, _files in os.walk(root):
        for name in dirs:
            path = os.path.join(folder, name)
            if not os.path.islink(path):
                os.chmod(path, stat.S_IRWXU)


def remove_pod_dir(path: Optional[str]) -> Optional[str]:
    """Remove a pod folder and everything in it. Returns None when it is gone (or was
    never made), else one line saying what is left and why. Anything that is not a
    real folder named like a pod folder is left alone."""
    if not path:
        return None
    folder = Path(path)
    if not folder.is_absolute() or not folder.name.startswith(POD_DIR_PREFIX):
        return f"not removing {path}: it is not a spikebatch pod folder"
    try:
        info = folder.lstat()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return f"cannot remove the pod folder {path}: {exc.strerror or exc}"
    if not stat.S_ISDIR(info.st_mode):
        return f"not removing {path}: it is not a folder"
    problem: Optional[OSError] = None
    for attempt in range(2):
        try:
            if attempt:
                # Most often a read-only folder inside: fix the rights, then once more.
                _make_removable(str(folder))
            shutil.rmtree(folder)
            return None
        except OSError as exc:
            if not os.path.lexists(folder):
                return None  # removed meanwhile (by the supervisor or a delete)
            problem = exc
    return f"cannot remove the pod folder {path}: {getattr(problem, 'strerror', None) or problem}; remove it by hand"
