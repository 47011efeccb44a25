"""Waiting for a Job to end: watch it (the backend pushes changes), ride out a dropped
watch or a backend that is briefly unreachable, and notice a pod that cannot start.

A pod whose image cannot be pulled never changes its Job: the Job stays Pending until
its deadline, if it has one. So the watch runs in windows of ``problem_check_seconds``;
between two windows the wait asks the backend why the Job is not done yet, tells the
caller about a problem (``on_problem``), and gives up with STUCK when the pod waits for
something that will not happen by itself (an image that cannot be pulled, a secret
that does not exist). The Job is left as it is.

A Job deleted while it is waited on (by someone else, ``job-delete``, a TTL) ends the
wait with DELETED: the job is gone and will never end by itself. A Job that does not
exist when the wait starts is an error (JobNotFoundError), not an outcome.

``max_consecutive_failures``: after that many backend calls in a row failed, the wait
gives up with BACKEND_UNAVAILABLE (None: it keeps retrying until the deadline).
"""

from __future__ import annotations

import time
from typing import Callable, Optional

from ..domain.errors import BackendUnavailableError, JobNotFoundError
from ..domain.job_report import WAITING_PROBLEMS, JobReport
from ..ports.backend import JobBackend, JobState

#: What wait_for_job returns besides the terminal job states.
TIMEOUT = "Timeout"
BACKEND_UNAVAILABLE = "Backend unavailable"
STUCK = "Stuck"
#: The Job was deleted while it was waited on.
DELETED = "Deleted"

#: Seconds between two looks at the pods of a Job that is not done yet.
PROBLEM_CHECK_SECONDS = 5.0


def wait_for_job(
    backend: JobBackend,
    job_name: str,
    max_wait_seconds: float,
    *,
    on_state: Optional[Callable[[JobState], None]] = None,
    on_problem: Optional[Callable[[JobReport], None]] = None,
    retry_initial_seconds: float = 1.0,
    retry_max_seconds: float = 30.0,
    problem_check_seconds: float = PROBLEM_CHECK_SECONDS,
    max_consecutive_failures: Optional[int] = None,
) -> str:
    """Watch the job until it ends: "Complete", "Failed", TIMEOUT, STUCK, DELETED or
    BACKEND_UNAVAILABLE. Transient backend errors back off and retry. Raises
    JobNotFoundError when the job does not exist at the start."""
    deadline = time.monotonic() + max_wait_seconds
    delay = retry_initial_seconds
    failures = 0  # backend calls that failed in a row
    last_error: Optional[BackendUnavailableError] = None
    told: Optional[tuple[str, str]] = None
    seen = False  # the Job has been seen: from then on its absence means it was deleted
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return BACKEND_UNAVAILABLE if last_error else TIMEOUT
        window = min(remaining, problem_check_seconds)
        started = time.monotonic()
        try:
            for event in backend.watch(job_names=[job_name], timeout_seconds=window):
                last_error = None
                delay = retry_initial_seconds
                failures = 0
                if event.kind == "DELETED":
                    return DELETED
                seen = True
                if on_state:
                    on_state(event.state)
                if event.state.is_terminal:
                    return event.state.value
            # The window ended (or the stream was cut short) without a terminal state:
            # ask why, then watch again.
            report = backend.job_report(job_name)
            last_error = None
            failures = 0
            if report.state.is_terminal:
                if on_state:
                    on_state(report.state)
                return report.state.value
            if report.reason in WAITING_PROBLEMS and (report.reason, report.message) != told:
                told = (report.reason, report.message)
                if on_problem:
                    on_problem(report)
            if report.stuck:
                return STUCK
            if time.monotonic() >= deadline:
                return TIMEOUT
            if time.monotonic() - started < window / 2:
                # The stream was cut short, not timed out: do not hammer the backend.
                time.sleep(min(retry_initial_seconds, max(0.0, deadline - time.monotonic())))
        except JobNotFoundError:
            if not seen:
                raise
            return DELETED  # gone between two windows of the watch
        except BackendUnavailableError as exc:
            last_error = exc
            failures += 1
            if max_consecutive_failures is not None and failures >= max_consecutive_failures:
                return BACKEND_UNAVAILABLE
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, retry_max_seconds)
