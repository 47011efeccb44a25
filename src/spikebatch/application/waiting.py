"""Waiting for a Job to end: watch it (the backend pushes changes), and ride out a
dropped watch or a backend that is briefly unreachable."""

from __future__ import annotations

import time
from typing import Callable, Optional

from ..domain.errors import BackendUnavailableError
from ..ports.backend import JobBackend, JobState

#: What wait_for_job returns besides the terminal job states.
TIMEOUT = "Timeout"
BACKEND_UNAVAILABLE = "Backend unavailable"


def wait_for_job(
    backend: JobBackend,
    job_name: str,
    max_wait_seconds: float,
    *,
    on_state: Optional[Callable[[JobState], None]] = None,
    retry_initial_seconds: float = 1.0,
    retry_max_seconds: float = 30.0,
) -> str:
    """Watch the job until it ends: "Complete", "Failed", TIMEOUT or
    BACKEND_UNAVAILABLE. Transient backend errors back off and retry."""
    deadline = time.monotonic() + max_wait_seconds
    delay = retry_initial_seconds
    last_error: Optional[BackendUnavailableError] = None
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return BACKEND_UNAVAILABLE if last_error else TIMEOUT
        try:
            for event in backend.watch(job_names=[job_name], timeout_seconds=remaining):
                last_error = None
                delay = retry_initial_seconds
                if on_state:
                    on_state(event.state)
                if event.state.is_terminal:
                    return event.state.value
            # The watch ended without a terminal state. At the deadline that is a
            # timeout; before it, the stream was cut short: ask once, then watch again.
            if time.monotonic() >= deadline:
                return TIMEOUT
            state = backend.job_status(job_name)
            if state.is_terminal:
                if on_state:
                    on_state(state)
                return state.value
            time.sleep(min(retry_initial_seconds, max(0.0, deadline - time.monotonic())))
        except BackendUnavailableError as exc:
            last_error = exc
            time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
            delay = min(delay * 2, retry_max_seconds)
