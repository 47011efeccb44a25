"""The local record of submissions: one JSON file per run under the user's state folder.

``<state>/submissions/<run_id>.json`` holds the SubmitResult as JSON (the same fields,
so ``SubmitResult.model_validate`` reads it back) plus a ``record`` object with what
the CLI needs to find the job again: when it was submitted, the profile file (when a
file rather than a name was used), the kubeconfig given on the command line, and the
last state this machine saw. ``<state>`` is ``$SPIKEBATCH_STATE_DIR``, else
``$XDG_STATE_HOME/spikebatch``, else ``~/.local/state/spikebatch``.

Files are written atomically (temporary file in the same folder, fsync, rename), so a
reader never sees half a record, and no credential is ever written: the manifest in a
SubmitResult is already redacted, and the kubeconfig is recorded as a path only.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Dict, List, Optional

from ..domain.errors import ConfigError

SUBMISSIONS_DIR = "submissions"
#: What may name a record file (a run id or job name: lower-case RFC 1123 text).
_SAFE_REF = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


def state_dir() -> Path:
    explicit = os.environ.get("SPIKEBATCH_STATE_DIR")
    if explicit:
        return Path(explicit).expanduser()
    base = os.environ.get("XDG_STATE_HOME") or os.path.join(os.path.expanduser("~"), ".local", "state")
    return Path(base).expanduser() / "spikebatch"


def records_dir() -> Path:
    return state_dir() / SUBMISSIONS_DIR


def write_text_atomically(path: Path, text: str, *, fsync: bool = False) -> None:
    """Replace ``path`` with ``text`` in one rename; a crash leaves the old file or none."""
    path = path.expanduser()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass
class Record:
    """One submission as this machine remembers it."""

    result: Any  # SubmitResult
    submitted_at: Optional[str]
    profile_file: Optional[str]
    kubeconfig: Optional[str]
    last_state: Optional[str]
    path: Path

    @property
    def profile_hint(self) -> Dict[str, Optional[str]]:
        """What ``load_profile`` falls back to when no profile is given."""
        return {"profile_name": self.result.profile_name, "profile_file": self.profile_file}

    @property
    def submitted(self) -> Optional[datetime]:
        try:
            return datetime.fromisoformat(self.submitted_at) if self.submitted_at else None
        except ValueError:
            return None

    def to_json(self) -> Dict[str, Any]:
        data = self.result.model_dump(mode="json")
        data["record"] = {
            "submitted_at": self.submitted_at,
            "profile_file": self.profile_file,
            "kubeconfig": self.kubeconfig,
            "last_state": self.last_state,
        }
        return data


def _save(record: Record) -> Path:
    record.path.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomically(record.path, json.dumps(record.to_json(), indent=2) + "\n", fsync=True)
    return record.path


def write_record(result: Any, *, profile_file: Optional[str], kubeconfig: Optional[str]) -> Path:
    """Remember a submission; returns the record's path."""
    if not _SAFE_REF.fullmatch(result.run_id):
        raise ConfigError(f"run id {result.run_id!r} cannot name a record file")
    path = records_dir() / f"{result.run_id}.json"
    record = Record(result, _now(), profile_file, kubeconfig, None, path)
    return _save(record)


def update_state(record: Record, state: str) -> None:
    """Remember the last state seen (list-jobs --offline shows it)."""
    record.last_state = str(state)
    _save(record)


def _read(path: Path) -> Record:
    from ..domain.models import SubmitResult
    from ..domain.validation import validate_model

    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise ConfigError(f"submission record {path} is not valid JSON ({exc.msg}); delete it") from None
    if not isinstance(data, dict):
        raise ConfigError(f"submission record {path} is not a JSON object; delete it")
    meta = data.pop("record", None) or {}
    try:
        result = validate_model(SubmitResult, data)
    except ConfigError as exc:
        raise ConfigError(f"submission record {path} is not a SubmitResult ({exc.message}); delete it") from None
    return Record(
        result,
        meta.get("submitted_at"),
        meta.get("profile_file"),
        meta.get("kubeconfig"),
        meta.get("last_state"),
        path,
    )


def load_record(run_id: str) -> Optional[Record]:
    """The record of ``run_id``, or None if this machine has none."""
    if not _SAFE_REF.fullmatch(run_id):
        return None
    path = records_dir() / f"{run_id}.json"
    return _read(path) if path.is_file() else None


def list_records(on_error: Optional[Any] = None) -> List[Record]:
    """Every readable record, oldest first. An unreadable one is passed to
    ``on_error(message)`` (if given) and left out."""
    folder = records_dir()
    if not folder.is_dir():
        return []
    records: List[Record] = []
    for path in sorted(folder.glob("*.json")):
        try:
            records.append(_read(path))
        except (ConfigError, OSError) as exc:
            if on_error is not None:
                on_error(getattr(exc, "message", None) or str(exc))
    return sorted(records, key=lambda r: (r.submitted_at or "", r.result.run_id))


def find_record(ref: str) -> Optional[Record]:
    """The record whose run id or job name is ``ref`` (the newest for a job name)."""
    record = load_record(ref)
    if record is not None:
        return record
    matches = [r for r in list_records() if r.result.job_name == ref]
    return matches[-1] if matches else None
