"""The supervisor of an Indexed Job: completion indexes 0..completions-1 run as local
processes, up to ``parallelism`` at once, with the job controller's semantics so a
workstation runs a batch the way a cluster does.

- Indexes start lowest first; each attempt gets ``JOB_COMPLETION_INDEX``. An index
  whose attempt failed waits out its back-off (1 s doubling per failure of that index)
  while other indexes go on.
- ``backoffLimitPerIndex`` R: an index fails after R + 1 counted failures; the others go
  on. ``maxFailedIndexes`` M: once more than M indexes failed, the Job fails
  (``MaxFailedIndexesExceeded``), its running attempts are stopped and no new ones
  start. Without backoffLimitPerIndex, ``backoffLimit`` counts the failures of the
  whole Job, as for a NonIndexed Job.
- The pod failure policy (``pod_failure_policy``): FailJob fails the Job at once
  (``PodFailurePolicy``), FailIndex fails the index at once, Ignore neither counts nor
  delays the retry.
- ``activeDeadlineSeconds`` bounds the whole Job (``DeadlineExceeded``).
- Each attempt holds to the container's memory limit on its own (``memory_limit``): one
  over it is killed as OOMKilled (exit code 137), a failure of its index.
- At the end: every index succeeded -> Complete (``CompletionsReached``); some failed ->
  Failed (``FailedIndexes``). Attempts stopped by the Job's failure count in
  ``status.failed`` (as deleted pods do on a cluster) and name the Job's reason; their
  indexes are not failed indexes.
- A failed attempt is replaced only once its process has ended (podReplacementPolicy
  Failed, the only way a local attempt can be replaced).

The status it writes carries what the controller's does: ``active``, ``ready``,
``succeeded`` and ``failed`` (pods), ``completedIndexes``, ``failedIndexes`` (with
backoffLimitPerIndex), ``startTime``, ``completionTime`` and the conditions.
"""

from __future__ import annotations

import bisect
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

from ...domain.batch import format_index_ranges
from .attempts import Attempt, stop_attempts
from .pod_failure_policy import (
    FAIL_INDEX,
    FAIL_JOB,
    IGNORE,
    POD_FAILURE_POLICY_REASON,
    fail_job_message,
    matching_rule,
)
from .supervisor_base import DEADLINE_EXCEEDED, DEADLINE_MESSAGE, DELETED, SupervisorBase, backoff_seconds

#: How often the loop looks at its attempts (the status lags an attempt's end by at most this).
POLL_SECONDS = 0.05

WAITING, RUNNING, SUCCEEDED, FAILED = "waiting", "running", "succeeded", "failed"
MAX_FAILED_INDEXES_EXCEEDED = "MaxFailedIndexesExceeded"
FAILED_INDEXES = "FailedIndexes"


@dataclass
class IndexState:
    """Where one completion index stands."""

    state: str = WAITING
    #: Counted failed attempts (what backoffLimitPerIndex limits).
    failures: int = 0
    #: Failed attempts an Ignore rule let go.
    ignored: int = 0
    #: time.monotonic() before which no new attempt starts (its back-off).
    not_before: float = 0.0


class IndexedSupervisor(SupervisorBase):
    def __init__(self, job_dir: Path) -> None:
        super().__init__(job_dir)
        self.completions = int(self.launch.get("completions") or 0)
        self.parallelism = int(self.launch.get("parallelism") if self.launch.get("parallelism") is not None else 1)
        per_index = self.launch.get("backoffLimitPerIndex")
        self.per_index_limit: Optional[int] = int(per_index) if per_index is not None else None
        max_failed = self.launch.get("maxFailedIndexes")
        self.max_failed_indexes: Optional[int] = int(max_failed) if max_failed is not None else None
        self.backoff_limit = int(self.launch.get("backoffLimit", 6))
        self.indexes = [IndexState() for _ in range(self.completions)]
        # Kept as the indexes change, so one turn of the loop costs the same for 10 or
        # 100 000 completions: the waiting indexes in order, and how many are in each state.
        self.waiting: list[int] = list(range(self.completions))
        self.counts = {WAITING: self.completions, RUNNING: 0, SUCCEEDED: 0, FAILED: 0}
        self.changed = True  # something the status shows changed since it was last written
        self.running: dict[int, Attempt] = {}  # completion index -> its running attempt
        self.next_number = 0
        #: Set by a FailJob match: the Job fails with this message.
        self.fail_job: Optional[str] = None
        if self.per_index_limit is not None:
            self.status["failedIndexes"] = ""  # the controller sets it (empty) from the start

    def running_attempts(self) -> list[Attempt]:
        return [a for a in list(self.running.values()) if a.running]

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        self.begin()
        while True:
            self.collect_ended()
            self.memory.check(self.running.values())
            if self.stopping:
                stop_attempts(list(self.running.values()), self.grace, DELETED)
                return 0
            outcome = self.outcome()
            if outcome is not None:
                self.end(*outcome)
                return 0
            self.start_attempts()
            if self.stopping:
                continue  # deleted while starting: stop what started
            if self.changed:
                self.refresh_counts()
                self.write_status()
                self.changed = False
            time.sleep(POLL_SECONDS)

    def collect_ended(self) -> None:
        """Record every attempt whose process has exited and update its index."""
        for index, attempt in list(self.running.items()):
            code = attempt.poll()
            if code is None:
                continue
            attempt.conclude(code)
            del self.running[index]
            self.attempt_ended(index, attempt)

    def attempt_ended(self, index: int, attempt: Attempt) -> None:
        """Apply one ended attempt (exited, or failed to start) to its index."""
        entry = self.indexes[index]
        code = attempt.exit_code
        self.changed = True
        if code == 0 and not attempt.reason:
            self.move(index, SUCCEEDED)
            self.status["succeeded"] += 1
            return
        rule = matching_rule(self.failure_rules, self.container_name, code)
        action = rule[1] if rule else ""
        if action == IGNORE:
            entry.ignored += 1
            self.move(index, WAITING)  # neither counted nor delayed
            return
        self.status["failed"] += 1
        entry.failures += 1
        if rule and action == FAIL_JOB and self.fail_job is None:
            self.fail_job = fail_job_message(self.container_name, self.namespace, attempt.pod_name, code or 0, rule[0])
        if self.per_index_limit is not None and (action == FAIL_INDEX or entry.failures > self.per_index_limit):
            self.move(index, FAILED)
            return
        entry.not_before = time.monotonic() + backoff_seconds(entry.failures)
        self.move(index, WAITING)

    def move(self, index: int, state: str) -> None:
        """Put ``index`` in ``state``, keeping the counts and the waiting list."""
        entry = self.indexes[index]
        self.counts[entry.state] -= 1
        self.counts[state] += 1
        if state == WAITING:
            bisect.insort(self.waiting, index)
        elif entry.state == WAITING:
            self.waiting.pop(bisect.bisect_left(self.waiting, index))
        entry.state = state

    def outcome(self) -> Optional[tuple[str, str, str]]:
        """(Complete | Failed, reason, message) once the Job is decided, checked in the
        job controller's order; None while it goes on."""
        if self.fail_job is not None:
            return "Failed", POD_FAILURE_POLICY_REASON, self.fail_job
        if self.status["failed"] > self.backoff_limit:
            return "Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit"
        if self.past_deadline():
            return "Failed", DEADLINE_EXCEEDED, DEADLINE_MESSAGE
        failed = self.counts[FAILED]
        if self.max_failed_indexes is not None and failed > self.max_failed_indexes:
            return ("Failed", MAX_FAILED_INDEXES_EXCEEDED,
                    "Job has exceeded the specified maximal number of failed indexes")
        succeeded = self.counts[SUCCEEDED]
        if failed and failed + succeeded >= self.completions:
            return "Failed", FAILED_INDEXES, "Job has failed indexes"
        if succeeded >= self.completions:
            return "Complete", "CompletionsReached", "Reached expected number of succeeded pods"
        return None

    def end(self, outcome: str, reason: str, message: str) -> None:
        """Stop what still runs (a failed Job's attempts end with its reason), then
        write the final status."""
        stopped = list(self.running.values())
        stop_attempts(stopped, self.grace, reason)
        self.status["failed"] += len(stopped)
        self.running.clear()
        self.refresh_counts()
        if self.stopping:
            return  # deleted meanwhile: nothing more is written
        self.finish(outcome, reason, message)

    # ------------------------------------------------------------------ starting
    def start_attempts(self) -> None:
        """Start the lowest waiting indexes whose back-off is over, up to parallelism."""
        if len(self.running) >= self.parallelism or not self.waiting:
            return
        now = time.monotonic()
        # A copy: starting an index takes it out of the list (and a failed start puts it back).
        for index in list(self.waiting):
            if len(self.running) >= self.parallelism or self.stopping:
                return
            entry = self.indexes[index]
            if entry.not_before > now:
                continue  # in its back-off; higher indexes may start meanwhile
            extra: dict[str, Any] = {}
            if self.per_index_limit is not None:
                # What the controller annotates a pod with: its index's failures so far.
                extra["indexFailureCount"] = entry.failures
                if entry.ignored:
                    extra["indexIgnoredFailureCount"] = entry.ignored
            attempt = self.new_attempt(self.next_number, index, extra)
            self.next_number += 1
            self.move(index, RUNNING)
            self.running[index] = attempt
            self.changed = True
            if not attempt.start():
                del self.running[index]
                self.attempt_ended(index, attempt)

    # ------------------------------------------------------------------ status
    def refresh_counts(self) -> None:
        """The status fields that follow from the indexes and the running attempts."""
        running = sum(1 for a in self.running.values() if a.running)
        self.status.update(active=len(self.running), ready=running)
        completed = [i for i, e in enumerate(self.indexes) if e.state == SUCCEEDED]
        if completed:
            self.status["completedIndexes"] = format_index_ranges(completed)
        if self.per_index_limit is not None:
            self.status["failedIndexes"] = format_index_ranges(
                i for i, e in enumerate(self.indexes) if e.state == FAILED)
