"""Waiting for a job to end, as RunSession methods: the spec's ``wait_for_completion``
(its parameters and outcomes) and ``wait_for_outcome``, the richer wait the
``spikebatch`` CLI uses (it tells a deleted job and a missing one apart)."""

from __future__ import annotations

import logging
from typing import Any, Callable, Optional

from ..domain.errors import ConfigError, JobNotFoundError
from ..ports.backend import JobBackend, JobReport, JobState
from .waiting import DELETED, wait_for_job

_log = logging.getLogger(__name__)


def _check_number(name: str, value: Any, rule: str, ok: Callable[[float], bool]) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not ok(value):
        raise ConfigError(f"{name} must be a number {rule}, not {value!r}")


class WaitUseCases:
    """Mixed into RunSession, which provides ``backend``."""

    backend: JobBackend

    def wait_for_completion(
        self,
        job_name: str,
        max_wait_seconds: float = 3600,
        *,
        poll_interval_seconds: float = 10,
        max_consecutive_failures: int = 5,
        max_backoff_seconds: float = 300,
        on_state: Optional[Callable[[JobState], None]] = None,
        on_problem: Optional[Callable[[JobReport], None]] = None,
    ) -> str:
        """Wait until the job ends and return "Complete", "Failed", "Timeout", "Stuck"
        (its pod cannot start: an image that cannot be pulled, a missing secret; see
        ``job_report``) or "Backend unavailable" (``max_consecutive_failures`` backend
        calls in a row failed). A job that does not exist, or is deleted while waited
        on, is "Failed" (``wait_for_outcome`` tells those apart).

        The job is watched, so its end is seen at once; ``poll_interval_seconds`` is the
        longest the wait goes without asking why the job is not done yet (a pod that
        cannot start is noticed within it) and the first pause after a failed backend
        call, doubling per failure up to ``max_backoff_seconds``."""
        _check_number("poll_interval_seconds", poll_interval_seconds, "> 0", lambda v: v > 0)
        _check_number("max_backoff_seconds", max_backoff_seconds, "> 0", lambda v: v > 0)
        _check_number("max_consecutive_failures", max_consecutive_failures, ">= 1", lambda v: v >= 1)
        try:
            outcome = wait_for_job(self.backend, job_name, max_wait_seconds, on_state=on_state, on_problem=on_problem,
                                   retry_initial_seconds=poll_interval_seconds,
                                   retry_max_seconds=max(max_backoff_seconds, poll_interval_seconds),
                                   problem_check_seconds=poll_interval_seconds,
                                   max_consecutive_failures=int(max_consecutive_failures))
        except JobNotFoundError:
            _log.info("wait_for_completion: job %s does not exist; returning Failed", job_name)
            return JobState.FAILED.value
        if outcome == DELETED:
            _log.info("wait_for_completion: job %s was deleted while waited on; returning Failed", job_name)
            return JobState.FAILED.value
        return outcome

    def wait_for_outcome(
        self,
        job_name: str,
        max_wait_seconds: float = 3600,
        *,
        on_state: Optional[Callable[[JobState], None]] = None,
        on_problem: Optional[Callable[[JobReport], None]] = None,
        retry_initial_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
    ) -> str:
        """Watch the job until it ends: "Complete", "Failed", "Timeout", "Stuck" (its
        pod cannot start), "Deleted" (the Job was deleted while it was waited on: by
        someone else, ``delete_job``, a TTL; it will not end by itself) or "Backend
        unavailable" (still unreachable at the deadline). Transient backend errors back
        off and retry. A job that does not exist when the wait starts raises
        JobNotFoundError. What the ``spikebatch`` CLI waits with."""
        return wait_for_job(self.backend, job_name, max_wait_seconds, on_state=on_state, on_problem=on_problem,
                            retry_initial_seconds=retry_initial_seconds, retry_max_seconds=retry_max_seconds)
