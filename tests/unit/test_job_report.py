"""Why a Job failed or cannot start, from the Job and its pods as the API server
serialises them (shapes taken from a real kubelet's pods: see tests/e2e/test_real_pods.py)."""

from __future__ import annotations

from spikebatch.domain.job_report import JobReport, last_line, report_job
from spikebatch.domain.job_state import JobState


def job(*conditions: dict, **status) -> dict:
    return {"metadata": {"name": "j"}, "status": {"conditions": list(conditions), **status}}


FAILED_BACKOFF = {"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                  "message": "Job has reached the specified backoff limit"}
FAILED_DEADLINE = {"type": "Failed", "status": "True", "reason": "DeadlineExceeded",
                   "message": "Job was active longer than specified deadline"}
COMPLETE = {"type": "Complete", "status": "True"}


def pod(created: str, *, terminated: dict | None = None, waiting: dict | None = None,
        conditions: list | None = None) -> dict:
    state = {"terminated": terminated} if terminated else {"waiting": waiting} if waiting else {"running": {}}
    return {"metadata": {"name": f"p-{created}", "creationTimestamp": created},
            "status": {"containerStatuses": [{"name": "main", "state": state}], "conditions": conditions or []}}


TRACEBACK = ("Traceback (most recent call last):\n  File \"analysis.py\", line 3, in <module>\n"
             "    raise ValueError('the threshold must be positive')\n"
             "ValueError: the threshold must be positive\n\n")


def test_a_script_that_raises_reports_its_exit_code_and_exception_line() -> None:
    r = report_job(job(FAILED_BACKOFF), [pod("2026-01-01T00:00:01Z", terminated={
        "exitCode": 1, "reason": "Error", "message": TRACEBACK})])
    assert (r.state, r.reason, r.exit_code) == (JobState.FAILED, "Error", 1)
    assert r.message == "ValueError: the threshold must be positive"
    assert r.summary() == "Failed: Error (exit code 1): ValueError: the threshold must be positive"


def test_the_newest_attempt_explains_the_failure() -> None:
    r = report_job(job(FAILED_BACKOFF), [
        pod("2026-01-01T00:00:09Z", terminated={"exitCode": 137, "reason": "OOMKilled"}),
        pod("2026-01-01T00:00:01Z", terminated={"exitCode": 1, "reason": "Error", "message": "x"}),
    ])
    assert (r.reason, r.exit_code, r.message) == ("OOMKilled", 137, "")


def test_a_deadline_is_the_reason_even_when_the_killed_pod_has_an_exit_code() -> None:
    r = report_job(job(FAILED_DEADLINE), [pod("2026-01-01T00:00:01Z", terminated={"exitCode": 137, "reason": "Error"})])
    assert (r.reason, r.exit_code) == ("DeadlineExceeded", None)
    assert r.message == "Job was active longer than specified deadline"


def test_a_failed_job_without_pods_reports_its_condition() -> None:
    r = report_job(job(FAILED_BACKOFF), [])
    assert (r.state, r.reason) == (JobState.FAILED, "BackoffLimitExceeded")


def test_a_complete_job_has_nothing_to_explain() -> None:
    r = report_job(job(COMPLETE, succeeded=1), [pod("2026-01-01T00:00:01Z", terminated={"exitCode": 0, "reason": "Completed"})])
    assert r == JobReport("j", JobState.COMPLETE)
    assert r.summary() == "Complete"


def test_an_image_that_cannot_be_pulled_is_a_problem_then_stuck() -> None:
    pulling = report_job(job(active=1, ready=0), [pod("2026-01-01T00:00:01Z", waiting={
        "reason": "ErrImagePull", "message": "failed to pull and unpack image \"127.0.0.1:1/nope:0\""})])
    assert (pulling.state, pulling.reason, pulling.stuck) == (JobState.PENDING, "ErrImagePull", False)
    backoff = report_job(job(active=1, ready=0), [pod("2026-01-01T00:00:01Z", waiting={
        "reason": "ImagePullBackOff", "message": "Back-off pulling image \"127.0.0.1:1/nope:0\""})])
    assert (backoff.reason, backoff.stuck) == ("ImagePullBackOff", True)
    assert "127.0.0.1:1/nope:0" in backoff.message


def test_a_pod_creating_its_container_normally_is_no_problem() -> None:
    r = report_job(job(active=1, ready=0), [pod("2026-01-01T00:00:01Z", waiting={"reason": "ContainerCreating"})])
    assert (r.reason, r.stuck) == ("", False)


def test_an_unschedulable_pod_says_why() -> None:
    r = report_job(job(active=1, ready=0), [pod("2026-01-01T00:00:01Z", conditions=[{
        "type": "PodScheduled", "status": "False", "reason": "Unschedulable",
        "message": "0/2 nodes are available: 2 Insufficient memory."}])])
    assert r.reason == "Unschedulable" and "Insufficient memory" in r.message and not r.stuck


def test_a_running_job_with_a_failed_attempt_shows_that_attempt() -> None:
    r = report_job(job(active=1, ready=1, failed=1), [
        pod("2026-01-01T00:00:01Z", terminated={"exitCode": 2, "reason": "Error", "message": "bad input\n"}),
        pod("2026-01-01T00:00:05Z"),
    ])
    assert (r.state, r.reason, r.exit_code, r.message) == (JobState.RUNNING, "Error", 2, "bad input")


def test_last_line_is_bounded_and_single_line() -> None:
    assert last_line("a\n\n  b  c \n") == "b c"
    assert len(last_line("x" * 10_000)) == 300
    assert last_line(None) == ""


def test_the_runners_result_marker_gives_way_to_its_reason() -> None:
    tail = ("Traceback (most recent call last):\n  ...\nRuntimeError: error during blosc decompression: -1\n"
            "SPIKEBATCH_RESULT status=failed reason=SorterFailed: tridesclous2 failed on rec.zarr: "
            "RuntimeError: error during blosc decompression: -1\n")
    assert last_line(tail) == ("SorterFailed: tridesclous2 failed on rec.zarr: RuntimeError: error during "
                               "blosc decompression: -1")


def test_a_marker_without_a_reason_gives_way_to_the_line_before_it() -> None:
    assert last_line("ValueError: bad data\nSPIKEBATCH_RESULT status=failed\n") == "ValueError: bad data"
    assert last_line("SPIKEBATCH_RESULT status=failed\n") == ""
