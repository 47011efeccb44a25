"""Interfaces (typing.Protocol) that the application layer talks to.

Adapters in ``spikebatch.adapters`` implement them; the container picks which.
"""

from .backend import JobBackend, JobEvent, JobInfo, JobState
from .storage import ArtifactStore, ProgressCallback

__all__ = [
    "ArtifactStore",
    "JobBackend",
    "JobEvent",
    "JobInfo",
    "JobState",
    "ProgressCallback",
]
