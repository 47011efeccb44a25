"""The pure parts of a sorting batch: index lists, the Indexed Job a batch becomes, the
per-recording fallback, cache keys, the batch's policy and its status report."""

from __future__ import annotations

import pytest

from spikebatch.domain.batch import (
    BATCH_INDEXES_ENV,
    BatchDescription,
    BatchRecording,
    format_index_ranges,
    indexed_job,
    job_recording_indexes,
    parse_index_ranges,
    per_recording_jobs,
    recording_digest,
    sorting_cache_key,
    version_supports_indexed_batches,
)
from spikebatch.domain.batch_policy import BATCH_PODS_NEED_EQUAL_REQUESTS, BATCH_RESOURCES, batch_findings
from spikebatch.domain.batch_report import report_batch
from spikebatch.domain.errors import ConfigError
from spikebatch.domain.manifest import render_job_manifest
from spikebatch.models import ClusterProfile, JobSpec
from spikebatch.profiles import load_profile_from_name as load_profile


@pytest.mark.parametrize("indexes, text", [([], ""), ([4], "4"), ([0, 1, 2, 5], "0-2,5"),
                                           ([7, 3, 4, 5, 9, 10], "3-5,7,9-10")])
def test_index_ranges_round_trip(indexes, text) -> None:
    assert format_index_ranges(indexes) == text
    assert parse_index_ranges(text) == sorted(indexes)


@pytest.mark.parametrize("bad", ["a", "3-1", "1-", "-2", "1,,x"])
def test_malformed_index_ranges_are_refused(bad) -> None:
    with pytest.raises(ValueError):
        parse_index_ranges(bad)


def test_indexed_batches_need_api_1_33() -> None:
    assert version_supports_indexed_batches((1, 33)) and version_supports_indexed_batches((2, 0))
    assert not version_supports_indexed_batches((1, 32))
    assert version_supports_indexed_batches(None)  # the local backend


def _manifest() -> dict:
    profile = ClusterProfile(name="lab", namespace="lab", default_images={"cpu": "registry.example/runner:1"})
    return render_job_manifest("sort-abc123", JobSpec(), profile, "20261130-120000-abcdefgh", job_type="sorting")


def test_a_batch_is_one_indexed_job_with_per_recording_retries() -> None:
    job = indexed_job(_manifest(), recording_indexes=list(range(200)), parallelism=50, retries_per_index=2,
                      max_failed_indexes=10)
    spec = job["spec"]
    assert spec["completionMode"] == "Indexed" and spec["completions"] == 200 and spec["parallelism"] == 50
    assert spec["backoffLimitPerIndex"] == 2 and spec["maxFailedIndexes"] == 10
    assert "backoffLimit" not in spec  # a global limit would cap the whole batch's failures
    assert spec["podReplacementPolicy"] == "Failed"
    rules = spec["podFailurePolicy"]["rules"]
    assert rules[0] == {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]}
    assert rules[1]["action"] == "FailIndex" and rules[1]["onExitCodes"]["values"] == [2]
    assert rules[1]["onExitCodes"]["containerName"] == spec["template"]["spec"]["containers"][0]["name"]
    assert job_recording_indexes(job) == list(range(200))
    env = {e["name"]: e.get("value") for e in spec["template"]["spec"]["containers"][0]["env"]}
    assert env[BATCH_INDEXES_ENV] == "0-199"


def test_parallelism_never_exceeds_the_recordings_and_the_input_is_untouched() -> None:
    base = _manifest()
    job = indexed_job(base, recording_indexes=[3, 17], parallelism=100, retries_per_index=0, max_failed_indexes=None)
    assert job["spec"]["parallelism"] == 2 and "maxFailedIndexes" not in job["spec"]
    assert "completionMode" not in base["spec"]  # a copy was changed, not the caller's manifest
    assert job_recording_indexes(job) == [3, 17]


def test_batch_indexes_must_be_distinct_and_ordered() -> None:
    with pytest.raises(ConfigError):
        indexed_job(_manifest(), recording_indexes=[2, 1], parallelism=1, retries_per_index=0, max_failed_indexes=None)
    with pytest.raises(ConfigError):
        indexed_job(_manifest(), recording_indexes=[], parallelism=1, retries_per_index=0, max_failed_indexes=None)


def test_the_fallback_is_one_job_per_recording_each_reading_index_zero() -> None:
    jobs = per_recording_jobs(_manifest(), recording_indexes=[0, 5], retries_per_index=3)
    assert [j["metadata"]["name"] for j in jobs] == ["sort-abc123-0", "sort-abc123-5"]
    for job, index in zip(jobs, [0, 5]):
        assert "completionMode" not in job["spec"] and job["spec"]["backoffLimit"] == 3
        env = {e["name"]: e.get("value") for e in job["spec"]["template"]["spec"]["containers"][0]["env"]}
        assert env[BATCH_INDEXES_ENV] == str(index) and env["JOB_COMPLETION_INDEX"] == "0"
        assert job["spec"]["podFailurePolicy"]["rules"][1]["action"] == "FailJob"
        assert job_recording_indexes(job) == [index]
        assert len(job["metadata"]["name"]) <= 63


def test_cache_key_changes_with_each_input_it_depends_on() -> None:
    digest = recording_digest([("traces.raw", "a" * 64, 10), ("probe.json", "b" * 64, 2)])
    assert digest == recording_digest([("probe.json", "b" * 64, 2), ("traces.raw", "a" * 64, 10)])
    key = sorting_cache_key(digest, "spikeinterface", {"params": {"x": 1}}, "img:1")
    assert key == sorting_cache_key(digest, "spikeinterface", {"params": {"x": 1}}, "img:1")
    others = {
        sorting_cache_key(recording_digest([("traces.raw", "c" * 64, 10)]), "spikeinterface", {"params": {"x": 1}}, "img:1"),
        sorting_cache_key(digest, "spikelab", {"params": {"x": 1}}, "img:1"),
        sorting_cache_key(digest, "spikeinterface", {"params": {"x": 2}}, "img:1"),
        sorting_cache_key(digest, "spikeinterface", {"params": {"x": 1}}, "img:2"),
    }
    assert key not in others and len(others) == 4


def test_batch_policy_shows_the_peak_request_and_nrps_rule_for_many_pods() -> None:
    nrp = load_profile("nrp")
    spec = JobSpec.model_validate({"resources": {"requests_cpu": "2", "limits_cpu": "2", "requests_memory": "8Gi",
                                                 "limits_memory": "8Gi"}})
    (shown,) = batch_findings(spec, nrp, recordings=300, parallelism=150)
    assert shown.code == BATCH_RESOURCES and shown.level == "PASS"
    assert "150 pods at once" in shown.message and "300 CPU" in shown.message and "1200Gi memory" in shown.message
    unequal = JobSpec.model_validate({"resources": {"requests_cpu": "1", "limits_cpu": "2", "requests_memory": "8Gi",
                                                    "limits_memory": "8Gi"}})
    codes = {f.code: f.level for f in batch_findings(unequal, nrp, recordings=300, parallelism=150)}
    assert codes[BATCH_PODS_NEED_EQUAL_REQUESTS] == "BLOCK"
    assert BATCH_PODS_NEED_EQUAL_REQUESTS not in {f.code for f in batch_findings(unequal, nrp, 300, 100)}
    assert BATCH_PODS_NEED_EQUAL_REQUESTS not in {f.code for f in batch_findings(unequal, load_profile("defaults"), 300, 150)}


# --------------------------------------------------------------------------- report
def _description(count: int) -> BatchDescription:
    return BatchDescription(
        run_id="20261130-120000-abcdefgh", sorter="spikeinterface", output_prefix="s3://b/out/", logs_prefix="s3://b/logs/",
        recordings=[BatchRecording(index=i, name=f"rec{i}", size=1, sha256=str(i) * 64, cache_key=str(i))
                    for i in range(count)])


def _job(name: str, uid: str, status: dict, indexes: str, created: str = "2026-11-30T12:00:00Z") -> dict:
    job = indexed_job(_manifest(), recording_indexes=parse_index_ranges(indexes), parallelism=5, retries_per_index=1,
                      max_failed_indexes=None)
    job["metadata"].update(name=name, uid=uid, creationTimestamp=created)
    job["status"] = status
    return job


def _pod(job_uid: str, index: int, phase: str, created: str, exit_code=None, reason=None, message="",
         pod_reason=None) -> dict:
    status: dict = {"phase": phase}
    if exit_code is not None:
        status["containerStatuses"] = [{"name": "main", "state": {"terminated": {
            "exitCode": exit_code, "reason": reason or "Error", "message": message,
            "startedAt": "2026-11-30T12:00:00Z", "finishedAt": "2026-11-30T12:00:30Z"}}}]
    if pod_reason:
        status["reason"] = pod_reason
    return {"metadata": {"name": f"p{index}-{created[-3:]}", "creationTimestamp": created,
                         "labels": {"batch.kubernetes.io/job-completion-index": str(index)},
                         "ownerReferences": [{"kind": "Job", "uid": job_uid}]}, "status": status}


def test_report_reads_each_recording_from_indexes_pods_and_results() -> None:
    failed_cond = {"type": "Failed", "status": "True", "reason": "FailedIndexes", "message": "Job has failed indexes"}
    job = _job("sort-a", "u1", {"completedIndexes": "0,2", "failedIndexes": "1,3", "conditions": [failed_cond]}, "0-4")
    pods = [
        _pod("u1", 0, "Succeeded", "2026-11-30T12:00:01Z", 0, "Completed"),
        _pod("u1", 1, "Failed", "2026-11-30T12:00:01Z", 1, message="Traceback\nValueError: bad data"),
        _pod("u1", 1, "Failed", "2026-11-30T12:00:05Z", 1, message="Traceback\nValueError: bad data"),
        _pod("u1", 2, "Succeeded", "2026-11-30T12:00:01Z", 0, "Completed"),
        _pod("u1", 3, "Failed", "2026-11-30T12:00:01Z", 137, "OOMKilled"),
        _pod("other", 4, "Failed", "2026-11-30T12:00:01Z", 1),  # another Job's pod
    ]
    results = {"rec0": {"status": "succeeded", "units": 7, "seconds": 12.5}}
    report = report_batch(_description(5), [job], pods, results, {"rec0": "s3://b/out/recordings/rec0/"})
    rows = {r.recording: r for r in report.rows}
    assert (rows["rec0"].state, rows["rec0"].units, rows["rec0"].run_seconds) == ("succeeded", 7, 12.5)
    assert rows["rec0"].output_prefix == "s3://b/out/recordings/rec0/"
    assert (rows["rec1"].state, rows["rec1"].attempts, rows["rec1"].exit_code) == ("failed", 2, 1)
    assert rows["rec1"].message == "ValueError: bad data"
    assert rows["rec2"].state == "succeeded" and rows["rec2"].run_seconds == 30.0
    assert (rows["rec3"].reason, rows["rec3"].exit_code) == ("OOMKilled", 137)
    assert rows["rec4"].state == "failed" and rows["rec4"].attempts == 0  # the Job ended before it ran
    assert report.state == "Failed" and [r.recording for r in report.to_retry()] == ["rec1", "rec3", "rec4"]


def test_report_of_a_running_batch_and_of_a_retry() -> None:
    first = _job("sort-a", "u1", {"completedIndexes": "0", "failedIndexes": "1-2", "conditions": [
        {"type": "Failed", "status": "True", "reason": "FailedIndexes"}]}, "0-2", "2026-11-30T12:00:00Z")
    retry = _job("sort-b", "u2", {"active": 1, "completedIndexes": "0"}, "1-2", "2026-11-30T12:10:00Z")
    pods = [_pod("u1", 1, "Failed", "2026-11-30T12:00:01Z", 1, pod_reason="Evicted"),
            _pod("u1", 2, "Failed", "2026-11-30T12:00:01Z", 1),
            _pod("u2", 0, "Succeeded", "2026-11-30T12:10:01Z", 0, "Completed"),
            _pod("u2", 1, "Running", "2026-11-30T12:10:01Z")]
    report = report_batch(_description(3), [retry, first], pods, {}, {})
    rows = {r.recording: r for r in report.rows}
    assert rows["rec1"].state == "succeeded" and rows["rec1"].attempts == 2 and rows["rec1"].job_name == "sort-b"
    assert rows["rec2"].state == "running" and rows["rec2"].attempts == 2
    assert report.state == "Running" and not report.finished


def test_report_says_cached_and_missing() -> None:
    description = _description(2)
    description.recordings[0] = description.recordings[0].model_copy(update={"cached_from": "s3://b/old/recordings/rec0/"})
    report = report_batch(description, [], [], {"rec0": {"status": "succeeded", "units": 3}}, {})
    rows = {r.recording: r for r in report.rows}
    assert (rows["rec0"].state, rows["rec0"].units) == ("cached", 3)
    assert rows["rec0"].output_prefix == "s3://b/old/recordings/rec0/"
    assert rows["rec1"].state == "missing" and report.state == "Failed"


def _waiting_pod(job_uid: str, index: int, reason: str, created: str = "2026-11-30T12:00:01Z") -> dict:
    pod = _pod(job_uid, index, "Pending", created)
    pod["status"]["containerStatuses"] = [{"name": "main", "state": {"waiting": {
        "reason": reason, "message": "Back-off pulling image \"registry.example/runner:9\""}}}]
    return pod


def test_a_batch_whose_pods_cannot_pull_their_image_is_stuck() -> None:
    from spikebatch.domain.batch_report import batch_stuck

    job = _job("sort-a", "u1", {"active": 2}, "0-1")
    stuck = batch_stuck([job], [_waiting_pod("u1", 0, "ImagePullBackOff"), _waiting_pod("u1", 1, "ImagePullBackOff")])
    assert stuck is not None and stuck.reason == "ImagePullBackOff" and "registry.example/runner:9" in stuck.message
    # still retrying the pull, or some pod runs: not stuck
    assert batch_stuck([job], [_waiting_pod("u1", 0, "ErrImagePull")]) is None
    running = _pod("u1", 1, "Running", "2026-11-30T12:00:02Z")
    assert batch_stuck([job], [_waiting_pod("u1", 0, "ImagePullBackOff"), running]) is None
    ended = _job("sort-b", "u2", {"conditions": [{"type": "Failed", "status": "True"}]}, "0-1")
    assert batch_stuck([ended], [_waiting_pod("u2", 0, "ImagePullBackOff")]) is None
