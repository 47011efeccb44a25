"""What every local Job supervisor shares, whichever way it schedules attempts: the
Job's launch plan and status file, the final conditions written as the job controller
writes them, the signals, the deadline, the memory limit and the retry back-off.

SIGTERM (the backend's delete) sets ``stopping``: the supervisor stops its running
attempts and ends without writing anything more, for the Job is being deleted.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import Any, Optional

from . import state_files as st
from .attempts import Attempt
from .launch_plan import attempt_command
from .memory_limit import CHECK_SECONDS, MemoryLimit

#: Local retry back-off: 1 s, doubling, at most 30 s (the job controller uses 10 s
#: doubling to 6 min; a laptop has no crowded node to protect).
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0
DEADLINE_EXCEEDED = "DeadlineExceeded"
DEADLINE_MESSAGE = "Job was active longer than specified deadline"
#: An attempt stopped because its Job is being deleted.
DELETED = "Deleted"


def backoff_seconds(failures: int) -> float:
    """The wait before the next attempt after ``failures`` counted failures."""
    if failures <= 0:
        return 0.0
    return min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (failures - 1))


class SupervisorBase:
    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        manifest = st.read_json(job_dir / st.MANIFEST) or {}
        meta = manifest.get("metadata") or {}
        self.job_name = meta.get("name", job_dir.name)
        self.namespace = meta.get("namespace") or job_dir.parent.name
        self.launch: dict[str, Any] = st.read_json(job_dir / st.LAUNCH) or {}
        self.status: dict[str, Any] = {"active": 0, "ready": 0, "failed": 0, "succeeded": 0}
        self.stopping = False
        self.grace = float(self.launch.get("gracePeriodSeconds", 5))
        self.container_name = str(self.launch.get("containerName") or "")
        self.failure_rules: list[dict[str, Any]] = list(self.launch.get("podFailureRules") or [])
        self.deadline: Optional[float] = None
        self.memory = MemoryLimit(self.launch.get("memoryLimitBytes"))

    # ------------------------------------------------------------------ state
    def write_status(self) -> None:
        try:
            st.write_json(self.job_dir / st.STATUS, self.status)
        except FileNotFoundError:
            # The folder was moved away: the Job is being deleted.
            self.stopping = True

    def gone(self) -> None:
        """A record could not be written: the Job's folder was moved away (deleted)."""
        self.stopping = True

    def finish(self, outcome: str, reason: str, message: str) -> None:
        """Write the Job's final conditions: the interim SuccessCriteriaMet or
        FailureTarget the controller sets first, then Complete or Failed."""
        now = st.now_iso()
        decided = "SuccessCriteriaMet" if outcome == "Complete" else "FailureTarget"
        self.status.update(active=0, ready=0, completionTime=now if outcome == "Complete" else None)
        self.status["conditions"] = [
            {"type": decided, "status": "True", "reason": reason, "message": message,
             "lastTransitionTime": now, "lastProbeTime": now},
            {"type": outcome, "status": "True", "reason": reason, "message": message,
             "lastTransitionTime": now, "lastProbeTime": now},
        ]
        if self.status.get("completionTime") is None:
            del self.status["completionTime"]
        self.write_status()

    # ------------------------------------------------------------------ attempts
    def new_attempt(self, number: int, completion_index: Optional[int] = None,
                    record_extra: Optional[dict[str, Any]] = None) -> Attempt:
        argv, env = attempt_command(self.launch, completion_index, self.job_name)
        attempt = Attempt(self.job_dir, self.job_name, number, argv, env, self.launch.get("cwd"),
                          completion_index=completion_index, record_extra=record_extra, on_gone=self.gone)
        note = self.memory.note()
        if note:
            attempt.notes.append(note)
        return attempt

    def running_attempts(self) -> list[Attempt]:
        """The attempts whose processes run now (what SIGTERM must reach)."""
        raise NotImplementedError

    # ------------------------------------------------------------------ signals and time
    def on_sigterm(self, signum: int, frame: Any) -> None:
        self.stopping = True
        for attempt in self.running_attempts():
            attempt.signal(signal.SIGTERM)

    def begin(self) -> None:
        """Signals, deadline and startTime: what every run starts with."""
        signal.signal(signal.SIGTERM, self.on_sigterm)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C aimed at the caller is not a delete
        deadline_s = self.launch.get("activeDeadlineSeconds")
        self.deadline = time.monotonic() + float(deadline_s) if deadline_s else None
        self.status["startTime"] = st.now_iso()
        self.write_status()

    def past_deadline(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def poll_seconds(self, longest: float) -> float:
        """How long to wait for an attempt before looking again: at most ``longest``,
        the time to the next memory check, and the time left to the deadline."""
        wait = min(longest, CHECK_SECONDS) if self.memory.applies else longest
        if self.deadline is not None:
            wait = min(wait, self.deadline - time.monotonic())
        return max(0.0, wait)

    def run(self) -> int:
        raise NotImplementedError
