"""What this machine remembers of a submission (the CLI's ``wait RUN_ID``,
``list-jobs --offline`` and ``show RUN`` read it): the SubmitResult plus where and with
what it was submitted, what the run is (RunDetails), and the last state and reason
seen. The store that keeps records is a port; these are the values it holds."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Dict, Optional, Tuple

from .models import SubmitResult

#: Recording names a one-line summary shows before "+N".
SHOWN_RECORDINGS = 2


@dataclass(frozen=True)
class RunDetails:
    """What a run is, in the user's terms, so runs can be told apart: a sorting run's
    preset, recordings and overrides, a workspace run's script."""

    #: "workspace", "sorting" or "prepared" (as SubmitResult.job_type).
    kind: str
    preset: Optional[str] = None
    #: The analysis script's file name (a workspace job).
    script: Optional[str] = None
    #: Recording names, in the order given.
    recordings: Tuple[str, ...] = ()
    #: The sorter parameter overrides as given (nested dicts for dotted keys).
    overrides: Dict[str, Any] = field(default_factory=dict)

    @property
    def what(self) -> Optional[str]:
        """The preset of a sorting run, the script of a workspace run."""
        return self.preset or self.script

    def recordings_text(self) -> Optional[str]:
        """'a.bin,b.bin+3': the first names and how many more, no spaces (a table
        column that still splits on whitespace)."""
        if not self.recordings:
            return None
        shown = ",".join(self.recordings[:SHOWN_RECORDINGS])
        more = len(self.recordings) - SHOWN_RECORDINGS
        return shown + (f"+{more}" if more > 0 else "")

    def overrides_text(self) -> Optional[str]:
        """'detection.detect_threshold=6,min_firing_rate=0.1' (dotted, values as JSON)."""
        flat = _dotted(self.overrides)
        return ",".join(f"{k}={json.dumps(v, separators=(',', ':'))}" for k, v in flat.items()) or None

    def to_json(self) -> Dict[str, Any]:
        return {"kind": self.kind, "preset": self.preset, "script": self.script,
                "recordings": list(self.recordings), "overrides": self.overrides}

    @classmethod
    def from_json(cls, data: Any, kind: str) -> "RunDetails":
        """Read back what ``to_json`` wrote; a record written before details were kept
        (or damaged) gives the kind alone."""
        if not isinstance(data, dict):
            return cls(kind)
        recordings = data.get("recordings")
        overrides = data.get("overrides")
        return cls(
            kind=str(data.get("kind") or kind),
            preset=data.get("preset") if isinstance(data.get("preset"), str) else None,
            script=data.get("script") if isinstance(data.get("script"), str) else None,
            recordings=tuple(str(r) for r in recordings) if isinstance(recordings, list) else (),
            overrides=overrides if isinstance(overrides, dict) else {},
        )


def _dotted(values: Dict[str, Any], prefix: str = "") -> Dict[str, Any]:
    flat: Dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(_dotted(value, name + "."))
        else:
            flat[name] = value
    return flat


@dataclass
class SubmissionRecord:
    result: SubmitResult
    #: ISO 8601 UTC time of the submission.
    submitted_at: Optional[str]
    #: The profile file used, when a file rather than a profile name was chosen.
    profile_file: Optional[str]
    #: The kubeconfig path given on the command line (a path, never its content).
    kubeconfig: Optional[str]
    #: The last state this machine saw ("Complete", "Failed", "Deleted", ...).
    last_state: Optional[str]
    #: Where the record is kept (named in messages about it).
    location: str
    #: Why it ended as it did, when it failed ("DeadlineExceeded", "OOMKilled",
    #: "Error (exit code 1): ValueError: ...").
    last_reason: Optional[str] = None
    #: What the run is (kind, preset or script, recordings, overrides).
    details: Optional[RunDetails] = None

    @property
    def profile_hint(self) -> Dict[str, Optional[str]]:
        """The profile to reach the job with when the user names none."""
        return {"profile_name": self.result.profile_name, "profile_file": self.profile_file}

    @property
    def submitted(self) -> Optional[datetime]:
        try:
            return datetime.fromisoformat(self.submitted_at) if self.submitted_at else None
        except ValueError:
            return None

    @property
    def run_details(self) -> RunDetails:
        """The details, or the kind alone for a record that has none."""
        return self.details or RunDetails(self.result.job_type)


def reason_of(report: Any) -> Optional[str]:
    """A JobReport's reason as one line ("OOMKilled (exit code 137): ..."), or None
    when it gives none (a job that succeeded or still runs)."""
    if not getattr(report, "reason", ""):
        return None
    text = report.reason + (f" (exit code {report.exit_code})" if report.exit_code is not None else "")
    return f"{text}: {report.message}" if report.message else text
