"""Interfaces (typing.Protocol) that the application layer talks to.

Adapters in ``spikebatch.adapters`` implement them; ``spikebatch.container`` picks which.
"""

from .backend import JobBackend, JobEvent, JobInfo, JobState
from .records import RunRecords, SubmissionRecord
from .sorter import Sorter, SortingOutcome
from .storage import ArtifactStore, IncompleteUpload, ProgressCallback
from .workspace import WorkspaceCodec

__all__ = [
    "ArtifactStore",
    "IncompleteUpload",
    "JobBackend",
    "JobEvent",
    "JobInfo",
    "JobState",
    "ProgressCallback",
    "RunRecords",
    "Sorter",
    "SortingOutcome",
    "SubmissionRecord",
    "WorkspaceCodec",
]
