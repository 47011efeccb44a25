"""What this machine remembers of a submission (the CLI's ``wait RUN_ID`` and
``list-jobs --offline`` read it): the SubmitResult plus where and with what it was
submitted. The store that keeps records is a port; this is the value it holds."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Dict, Optional

from .models import SubmitResult


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
