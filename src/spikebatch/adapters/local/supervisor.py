"""The detached process that runs one local Job, writing a batch/v1 Job status as it
goes (see ``state_files`` for the files). A NonIndexed Job runs here: its attempts
("pods") one after the other, up to backoffLimit retries, within
activeDeadlineSeconds, its pod failure policy deciding which failures count. An
Indexed Job runs in ``indexed_supervisor``: many attempts at once, retried per index.

The backend starts it as ``main(["launch", <job folder>])`` in a new interpreter (a
``python -c`` code string naming this module; see ``LocalProcessBackend``): that
process forks the supervisor into a new session and exits once the supervisor has
recorded its pid, so the supervisor outlives the caller and, orphaned, is reaped by
init rather than lingering as a zombie of a long-lived caller.

SIGTERM (the backend's delete) stops the running attempt's process group and ends
the supervisor without writing anything more: the Job is being deleted.

An attempt whose processes hold more memory than the container's limits.memory is
killed and recorded as OOMKilled, exit code 137 (``memory_limit``); it counts as a
failure like any other, retried within backoffLimit.

Each attempt gets a private temporary folder as its ``$TMPDIR`` (``pod_scratch``),
named in its pod record before it is made and removed once the attempt's process has
ended (before the record says so), unless ``SPIKEBATCH_KEEP_WORK_DIR`` is set
(``attempts``).
"""

from __future__ import annotations

import os
import sys
import time
import traceback
from pathlib import Path
from typing import Optional

from . import state_files as st
from .attempts import Attempt, stop_attempts
from .completion_plan import INDEXED
from .indexed_supervisor import IndexedSupervisor
from .pod_failure_policy import FAIL_JOB, IGNORE, POD_FAILURE_POLICY_REASON, fail_job_message, matching_rule
from .processes import start_ticks
from .supervisor_base import DEADLINE_EXCEEDED, DEADLINE_MESSAGE, DELETED, SupervisorBase, backoff_seconds


class Supervisor(SupervisorBase):
    """A NonIndexed Job: one attempt at a time until one succeeds or the Job fails."""

    def __init__(self, job_dir: Path) -> None:
        super().__init__(job_dir)
        self.current: Optional[Attempt] = None

    def running_attempts(self) -> list[Attempt]:
        current = self.current
        return [current] if current is not None and current.running else []

    def run_attempt(self, number: int) -> Attempt:
        """Run one pod to its end (by itself, the deadline or a delete)."""
        attempt = self.new_attempt(number)
        self.current = attempt
        if not attempt.start():
            self.current = None
            return attempt
        self.status.update(active=1, ready=1)
        self.write_status()
        while True:
            code = attempt.wait(self.poll_seconds(0.5))
            if code is not None:
                attempt.conclude(code)
                break
            reason = DELETED if self.stopping else DEADLINE_EXCEEDED if self.past_deadline() else ""
            if reason:
                stop_attempts([attempt], self.grace, reason)
                break
            self.memory.check([attempt])
        self.current = None
        return attempt

    def run(self) -> int:
        self.begin()
        backoff_limit = int(self.launch.get("backoffLimit", 6))
        number = 0
        while not self.stopping:
            attempt = self.run_attempt(number)
            code, reason = attempt.exit_code, attempt.reason
            if self.stopping:
                break
            number += 1
            if reason == DEADLINE_EXCEEDED:
                self.status["failed"] += 1
                self.finish("Failed", DEADLINE_EXCEEDED, DEADLINE_MESSAGE)
                break
            if code == 0:
                self.status["succeeded"] = 1
                self.finish("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
                break
            rule = matching_rule(self.failure_rules, self.container_name, code)
            action = rule[1] if rule else ""
            if action != IGNORE:  # an ignored failure is not counted anywhere
                self.status["failed"] += 1
            if rule and action == FAIL_JOB:
                self.finish("Failed", POD_FAILURE_POLICY_REASON,
                            fail_job_message(self.container_name, self.namespace, attempt.pod_name, code or 0,
                                             rule[0]))
                break
            if self.status["failed"] > backoff_limit:
                self.finish("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
                break
            self.status.update(active=0, ready=0)
            self.write_status()
            wait = 0.0 if action == IGNORE else backoff_seconds(self.status["failed"])
            if not self.wait_backoff(wait):
                if not self.stopping:
                    self.finish("Failed", DEADLINE_EXCEEDED, DEADLINE_MESSAGE)
                break
        return 0

    def wait_backoff(self, seconds: float) -> bool:
        """Sleep before the next attempt; False when the deadline or a delete came first."""
        until = time.monotonic() + seconds
        while time.monotonic() < until:
            if self.stopping or self.past_deadline():
                return False
            time.sleep(0.05)
        return not self.stopping and not self.past_deadline()


def supervisor_for(job_dir: Path) -> SupervisorBase:
    """The supervisor a Job's launch plan calls for."""
    launch = st.read_json(job_dir / st.LAUNCH) or {}
    return IndexedSupervisor(job_dir) if launch.get("completionMode") == INDEXED else Supervisor(job_dir)


def _launch(job_dir: Path) -> int:
    """Fork the supervisor into its own session; return once it has recorded its pid."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(ready_w)
        os.read(ready_r, 1)  # EOF once the supervisor has written supervisor.json
        print(pid, flush=True)
        return 0
    os.close(ready_r)
    os.setsid()
    log_fd = os.open(job_dir / st.SUPERVISOR_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    code = 1
    try:
        me = os.getpid()
        st.write_json(job_dir / st.SUPERVISOR, {"pid": me, "startTicks": start_ticks(me)})
        os.close(ready_w)
        code = supervisor_for(job_dir).run()
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "launch":
        print("usage: python -m spikebatch.adapters.local.supervisor launch <job folder>", file=sys.stderr)
        return 2
    return _launch(Path(argv[1]))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
