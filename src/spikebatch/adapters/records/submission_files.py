"""Submission records as files: one JSON file per run under the user's state folder.

``<state>/submissions/<run_id>.json`` holds the SubmitResult as JSON (the same fields,
so ``SubmitResult.model_validate`` reads it back) plus a ``record`` object with what
is needed to find the job again: when it was submitted, the profile file (when a file
rather than a name was used), the kubeconfig given on the command line, what the run is
(``details``: kind, preset or script, recordings, overrides), and the last state this
machine saw with its reason. ``<state>`` is ``$SPIKEBATCH_STATE_DIR``, else
``$XDG_STATE_HOME/spikebatch``, else ``~/.local/state/spikebatch``.

Files are written atomically and fsynced, so a reader never sees half a record, and no
credential is ever written: the manifest in a SubmitResult is already redacted, and
the kubeconfig is recorded as a path only.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from ...domain.errors import ConfigError
from ...domain.models import SubmitResult
from ...domain.naming import run_id_problem
from ...domain.records import RunDetails, SubmissionRecord
from ...domain.validation import validate_model
from ..files.atomic import write_text_atomically
from ..files.user_dirs import state_dir

SUBMISSIONS_DIR = "submissions"


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _as_json(record: SubmissionRecord) -> Dict[str, Any]:
    data = record.result.model_dump(mode="json")
    data["record"] = {
        "submitted_at": record.submitted_at,
        "profile_file": record.profile_file,
        "kubeconfig": record.kubeconfig,
        "last_state": record.last_state,
        "last_reason": record.last_reason,
        "details": record.details.to_json() if record.details is not None else None,
    }
    return data


class FileRunRecords:
    """RunRecords in ``<folder>`` (default ``<state dir>/submissions``), read from disk
    on every call so several processes share one view."""

    def __init__(self, folder: Optional[str | os.PathLike] = None) -> None:
        self.folder = Path(folder).expanduser() if folder is not None else state_dir() / SUBMISSIONS_DIR

    def __repr__(self) -> str:
        return f"FileRunRecords({str(self.folder)!r})"

    def _write(self, record: SubmissionRecord) -> None:
        path = Path(record.location)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_text_atomically(path, json.dumps(_as_json(record), indent=2) + "\n", fsync=True, private=True)

    def save(self, result: SubmitResult, *, profile_file: Optional[str], kubeconfig: Optional[str],
             details: Optional[RunDetails] = None) -> SubmissionRecord:
        if run_id_problem(result.run_id):
            raise ConfigError(f"run id {result.run_id!r} cannot name a record file")
        path = self.folder / f"{result.run_id}.json"
        record = SubmissionRecord(result, _now(), profile_file, kubeconfig, None, str(path), details=details)
        self._write(record)
        return record

    def update_state(self, record: SubmissionRecord, state: str, reason: Optional[str] = None) -> None:
        record.last_state = str(state)
        record.last_reason = reason
        self._write(record)

    def _read(self, path: Path) -> SubmissionRecord:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"submission record {path} is not valid JSON ({getattr(exc, 'msg', exc)}); delete it") from None
        if not isinstance(data, dict):
            raise ConfigError(f"submission record {path} is not a JSON object; delete it")
        meta = data.pop("record", None) or {}
        try:
            result = validate_model(SubmitResult, data)
        except ConfigError as exc:
            raise ConfigError(f"submission record {path} is not a SubmitResult ({exc.message}); delete it") from None
        return SubmissionRecord(
            result,
            meta.get("submitted_at"),
            meta.get("profile_file"),
            meta.get("kubeconfig"),
            meta.get("last_state"),
            str(path),
            last_reason=meta.get("last_reason") if isinstance(meta.get("last_reason"), str) else None,
            details=RunDetails.from_json(meta.get("details"), result.job_type) if meta.get("details") else None,
        )

    def _load(self, run_id: str) -> Optional[SubmissionRecord]:
        if run_id_problem(run_id):
            return None
        path = self.folder / f"{run_id}.json"
        return self._read(path) if path.is_file() else None

    def all(self, on_error: Optional[Callable[[str], None]] = None) -> List[SubmissionRecord]:
        if not self.folder.is_dir():
            return []
        records: List[SubmissionRecord] = []
        for path in sorted(self.folder.glob("*.json")):
            try:
                records.append(self._read(path))
            except (ConfigError, OSError) as exc:
                if on_error is not None:
                    on_error(getattr(exc, "message", None) or str(exc))
        return sorted(records, key=lambda r: (r.submitted_at or "", r.result.run_id))

    def find(self, ref: str) -> Optional[SubmissionRecord]:
        record = self._load(ref)
        if record is not None:
            return record
        matches = [r for r in self.all() if r.result.job_name == ref]
        return matches[-1] if matches else None
