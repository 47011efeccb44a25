"""The RunRecords port: this machine's memory of the submissions made from it."""

from __future__ import annotations

from typing import Callable, Optional, Protocol, runtime_checkable

from ..domain.models import SubmitResult
from ..domain.records import RunDetails, SubmissionRecord

__all__ = ["RunRecords", "SubmissionRecord"]


@runtime_checkable
class RunRecords(Protocol):
    """Submission records. Writing one never stores a credential: the SubmitResult's
    manifest is already redacted and the kubeconfig is kept as a path."""

    def save(self, result: SubmitResult, *, profile_file: Optional[str], kubeconfig: Optional[str],
             details: Optional[RunDetails] = None) -> SubmissionRecord:
        """Remember a submission and what it is (raises OSError when it cannot be
        written)."""

    def find(self, ref: str) -> Optional[SubmissionRecord]:
        """The record whose run id, or else job name, is ``ref`` (the newest for a job
        name); None when this machine has none."""

    def all(self, on_error: Optional[Callable[[str], None]] = None) -> list[SubmissionRecord]:
        """Every readable record, oldest first; an unreadable one is reported to
        ``on_error(message)`` and left out."""

    def update_state(self, record: SubmissionRecord, state: str, reason: Optional[str] = None) -> None:
        """Remember the last state seen of a recorded job and why it ended so (raises
        OSError)."""
