"""The pure derivation of a Job's state from its object, and the watch bookkeeping
every backend shares."""
from __future__ import annotations

import pytest

from spikebatch.domain.job_state import JobWatchTracker, derive_job_state, job_state_of, state_message
from spikebatch import JobState


def cond(ctype: str, status: str = "True", reason: str = "", message: str = "") -> dict:
    return {"type": ctype, "status": status, "reason": reason, "message": message}


def job(name: str, status: dict | None = None, suspend: bool = False) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"suspend": suspend}, "status": status or {}}


@pytest.mark.parametrize("status, expected", [
    # Terminal conditions decide, whatever the pod counts say.
    ({"conditions": [cond("Complete")], "succeeded": 1}, JobState.COMPLETE),
    ({"conditions": [cond("SuccessCriteriaMet")], "active": 1}, JobState.COMPLETE),
    ({"conditions": [cond("Failed", reason="BackoffLimitExceeded")], "failed": 2}, JobState.FAILED),
    ({"conditions": [cond("FailureTarget", reason="BackoffLimitExceeded")], "active": 1}, JobState.FAILED),
    ({"conditions": [cond("Failed", reason="DeadlineExceeded")]}, JobState.FAILED),
    # A condition present but not True does not count.
    ({"conditions": [cond("Complete", status="False")], "active": 1, "ready": 1}, JobState.RUNNING),
    ({"conditions": [cond("Failed", status="Unknown")], "active": 1, "ready": 0}, JobState.PENDING),
    # Running: a ready pod, or a finished pod while the Job is not done (a retry).
    ({"active": 1, "ready": 1}, JobState.RUNNING),
    ({"failed": 1, "active": 0, "ready": 0}, JobState.RUNNING),
    ({"failed": 1, "active": 1, "ready": 0}, JobState.RUNNING),
    ({"succeeded": 1, "active": 1, "ready": 0}, JobState.RUNNING),
    # Pending: a pod exists but none is ready (unschedulable, pulling the image) ...
    ({"active": 1, "ready": 0}, JobState.PENDING),
    # ... unless the server does not report readiness at all (older API servers).
    ({"active": 1}, JobState.RUNNING),
    # Nothing yet: the controller has not looked at it.
    ({}, JobState.PENDING),
    (None, JobState.PENDING),
])
def test_state_is_derived_from_conditions_then_pod_counts(status, expected):
    assert derive_job_state(status) is expected


def test_failed_wins_over_complete_in_a_malformed_status():
    # Never report success when a failure is also claimed.
    status = {"conditions": [cond("Complete"), cond("Failed")]}
    assert derive_job_state(status) is JobState.FAILED


def test_suspended_job_is_pending_until_resumed():
    assert job_state_of(job("s", {"active": 0}, suspend=True)) is JobState.PENDING
    assert derive_job_state({"conditions": [cond("Suspended")]}) is JobState.PENDING
    # a suspended Job that already finished stays finished
    assert job_state_of(job("s", {"conditions": [cond("Complete")]}, suspend=True)) is JobState.COMPLETE


def test_garbage_is_unknown_not_an_exception():
    assert derive_job_state("not a status") is JobState.UNKNOWN  # type: ignore[arg-type]
    assert job_state_of(None) is JobState.UNKNOWN
    assert derive_job_state({"active": "many", "conditions": ["x", None]}) is JobState.PENDING


def test_state_compares_equal_to_the_spec_era_strings():
    assert derive_job_state({"conditions": [cond("Complete")]}) == "Complete"
    assert str(JobState.FAILED) == "Failed"


def test_message_names_the_deciding_condition():
    j = job("x", {"conditions": [cond("FailureTarget", reason="BackoffLimitExceeded",
                                       message="Job has reached the specified backoff limit"),
                                  cond("Failed", reason="BackoffLimitExceeded",
                                       message="Job has reached the specified backoff limit")]})
    assert state_message(j) == "Failed: BackoffLimitExceeded Job has reached the specified backoff limit"
    assert state_message(job("y", {"active": 1})) == ""


# ------------------------------------------------------------------ watch bookkeeping

def test_tracker_reports_first_sighting_then_only_state_changes():
    t = JobWatchTracker.for_names(["a"])
    first = t.relisted([job("a", {"active": 1, "ready": 0})], kind="ADDED")
    assert [(e.job_name, e.state, e.kind) for e in first] == [("a", JobState.PENDING, "ADDED")]
    # a status update that changes no state (e.g. a pod's readiness timestamp) is silent
    assert t.observe(job("a", {"active": 1, "ready": 0}), "MODIFIED") is None
    running = t.observe(job("a", {"active": 1, "ready": 1}), "MODIFIED")
    assert (running.state, running.kind) == (JobState.RUNNING, "MODIFIED")
    assert not t.done()
    done = t.observe(job("a", {"conditions": [cond("Complete")]}), "MODIFIED")
    assert done.state is JobState.COMPLETE
    assert t.done()


def test_tracker_ignores_jobs_it_was_not_asked_about():
    t = JobWatchTracker.for_names(["a"])
    assert t.observe(job("other", {"active": 1, "ready": 1}), "ADDED") is None
    assert t.missing() == ["a"]


def test_relist_reports_changes_and_vanished_jobs():
    t = JobWatchTracker.for_names(["a", "b", "c"])
    t.relisted([job("a", {"active": 1, "ready": 1}), job("b", {"active": 1, "ready": 1}),
                job("c", {"active": 1, "ready": 1})], kind="ADDED")
    # while the watch was down: a completed, b was deleted, c did not change
    events = t.relisted([job("a", {"conditions": [cond("Complete")]}), job("c", {"active": 1, "ready": 1})])
    assert [(e.job_name, e.state, e.kind) for e in events] == [
        ("a", JobState.COMPLETE, "RELISTED"),
        ("b", JobState.RUNNING, "DELETED"),
    ]
    assert not t.done()  # c is still running
    t.deleted("c")
    assert t.done()  # deleted counts as finished: nothing more will happen to it


def test_deleted_is_reported_once():
    t = JobWatchTracker.for_names(None)
    t.observe(job("a", {}), "ADDED")
    assert t.deleted("a").kind == "DELETED"
    assert t.deleted("a") is None
    assert t.observe(job("a", {}), "DELETED") is None


def test_label_only_watch_is_never_done_by_itself():
    t = JobWatchTracker.for_names(None)
    t.observe(job("a", {"conditions": [cond("Complete")]}), "ADDED")
    assert not t.done()
    assert t.missing() == []
