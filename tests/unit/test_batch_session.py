"""RunSession's sorting batches with in-memory fakes: what a batch submits and uploads,
that bad input leaves nothing behind, the result cache, the fallback for old API
servers, and that retry uploads nothing."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from fakes import MemoryStore, RecordingSorter, ScriptedBackend
from spikebatch.domain.batch import BATCH_FILENAME, BatchDescription, cache_entry_uri, job_recording_indexes
from spikebatch.errors import ConfigError, PolicyBlockedError
from spikebatch.models import ClusterProfile, PolicyConfig
from spikebatch.session import RunSession

PROFILE = ClusterProfile(name="unit", default_images={"cpu": "runner:1"})


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


def make_session(store: MemoryStore, backend: ScriptedBackend, profile: ClusterProfile = PROFILE) -> RunSession:
    return RunSession(profile=profile, backend=backend, storage_client=store, sorter_factory=lambda name: RecordingSorter())


@pytest.fixture
def session(store: MemoryStore, backend: ScriptedBackend) -> RunSession:
    return make_session(store, backend)


def recordings(tmp_path: Path, *names: str) -> list[str]:
    paths = []
    for name in names:
        path = tmp_path / name
        path.write_bytes(f"data of {name}".encode() * 1000)
        paths.append(str(path))
    return paths


def nothing_happened(store: MemoryStore, backend: ScriptedBackend) -> bool:
    return store.uploads == [] and backend.applied == [] and backend.dry_runs == []


def test_a_batch_is_one_indexed_job_over_every_recording(session, store, backend, tmp_path) -> None:
    batch = session.submit_sorting_batch(recording_paths=recordings(tmp_path, "a.nwb", "b.nwb", "c.nwb"),
                                         config="tridesclous2", job_spec={}, parallelism=2, retries_per_recording=3,
                                         max_failed_recordings=1)
    (job,) = backend.applied
    assert backend.dry_runs == [job]  # the cluster admitted it before anything was uploaded
    spec = job["spec"]
    assert (spec["completions"], spec["parallelism"], spec["backoffLimitPerIndex"], spec["maxFailedIndexes"]) == (3, 2, 3, 1)
    assert job_recording_indexes(job) == [0, 1, 2]
    assert job["metadata"]["name"].startswith("sort-tridesclous2-") and batch.job_names == [job["metadata"]["name"]]
    assert batch.indexed and batch.recordings == ["a.nwb", "b.nwb", "c.nwb"] and batch.cached == []
    assert batch.uploaded_bytes == sum(Path(p).stat().st_size for p in recordings(tmp_path, "a.nwb", "b.nwb", "c.nwb"))
    description = BatchDescription.model_validate_json(
        store.objects[store.build_uri(run_id=batch.run_id, filename=BATCH_FILENAME, category="inputs")])
    assert [(r.index, r.name, r.description["channels"]) for r in description.recordings] == [
        (0, "a.nwb", 4), (1, "b.nwb", 4), (2, "c.nwb", 4)]
    with zipfile.ZipFile(io.BytesIO(store.objects[batch.result.uploaded_input_uri])) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
    assert [r["cache_uri"] for r in manifest["recordings"]] == [
        cache_entry_uri(store.prefix, r.cache_key) for r in description.recordings]


@pytest.mark.parametrize("names, fragment", [
    (("a.nwb", "unreadable.nwb"), "unreadable.nwb cannot be opened"),
    (("a.nwb", "sub/a.nwb"), "given twice"),
])
def test_bad_recordings_leave_nothing_behind(session, store, backend, tmp_path, names, fragment) -> None:
    (tmp_path / "sub").mkdir()
    with pytest.raises(ConfigError, match=fragment):
        session.submit_sorting_batch(recording_paths=recordings(tmp_path, *names), job_spec={})
    assert nothing_happened(store, backend)


def test_the_same_content_twice_is_refused(session, store, backend, tmp_path) -> None:
    first, second = recordings(tmp_path, "a.nwb", "copy.nwb")
    Path(second).write_bytes(Path(first).read_bytes())
    with pytest.raises(ConfigError, match="'a.nwb' and 'copy.nwb' have the same content"):
        session.submit_sorting_batch(recording_paths=[first, second], job_spec={})
    assert nothing_happened(store, backend)


@pytest.mark.parametrize("options, fragment", [
    ({"parallelism": 0}, "parallelism must be a whole number of at least 1"),
    ({"retries_per_recording": -1}, "retries_per_recording"),
    ({"max_failed_recordings": "2"}, "max_failed_recordings"),
    ({"config_overrides": {"no_such_knob": 1}}, "no_such_knob"),
])
def test_bad_options_leave_nothing_behind(session, store, backend, tmp_path, options, fragment) -> None:
    with pytest.raises(ConfigError, match=fragment):
        session.submit_sorting_batch(recording_paths=recordings(tmp_path, "a.nwb"), job_spec={}, **options)
    assert nothing_happened(store, backend)


def test_many_pods_with_unequal_requests_are_blocked_where_the_cluster_says_so(store, backend, tmp_path) -> None:
    strict = PROFILE.model_copy(update={"policy": PolicyConfig(max_pods_with_unequal_requests=2)})
    session = make_session(store, backend, strict)
    unequal = {"resources": {"requests_cpu": "1", "limits_cpu": "2"}}
    with pytest.raises(PolicyBlockedError, match="batch_pods_need_equal_requests"):
        session.submit_sorting_batch(recording_paths=recordings(tmp_path, "a.nwb", "b.nwb", "c.nwb"),
                                     job_spec=unequal, parallelism=3)
    assert nothing_happened(store, backend)
    session.submit_sorting_batch(recording_paths=recordings(tmp_path, "a.nwb", "b.nwb", "c.nwb"),
                                 job_spec=unequal, parallelism=2)
    assert "batch_resources" in {f.code for f in session.last_preflight.findings}


def test_an_old_api_server_gets_one_job_per_recording(session, backend, tmp_path) -> None:
    backend.version = (1, 32)
    batch = session.submit_sorting_batch(recording_paths=recordings(tmp_path, "a.nwb", "b.nwb"), job_spec={},
                                         retries_per_recording=4)
    assert not batch.indexed and "1.32" in batch.fallback_reason
    assert [job_recording_indexes(j) for j in backend.applied] == [[0], [1]]
    assert all(j["spec"]["backoffLimit"] == 4 and "completionMode" not in j["spec"] for j in backend.applied)


def test_refusing_the_fallback_on_an_old_server_leaves_nothing_behind(session, store, backend, tmp_path) -> None:
    backend.version = (1, 30)
    with pytest.raises(ConfigError, match="older than 1.33"):
        session.submit_sorting_batch(recording_paths=recordings(tmp_path, "a.nwb"), job_spec={}, per_recording_jobs=False)
    assert nothing_happened(store, backend)


def _complete(store: MemoryStore, batch, names: list[str]) -> None:
    """What the batch's pods write on success: result.json and a cache entry."""
    description = batch.description
    for rec in description.recordings:
        if rec.name in names:
            prefix = f"{description.output_prefix}recordings/{rec.name}/"
            store.write_bytes(prefix + "result.json", json.dumps({"status": "succeeded", "units": 5}).encode())
            store.write_bytes(cache_entry_uri(store.prefix, rec.cache_key),
                              json.dumps({"output_prefix": prefix}).encode())


def test_results_already_computed_are_reused_and_not_uploaded(session, store, backend, tmp_path) -> None:
    paths = recordings(tmp_path, "a.nwb", "b.nwb", "c.nwb")
    first = session.submit_sorting_batch(recording_paths=paths, job_spec={})
    _complete(store, first, ["a.nwb", "c.nwb"])
    backend.applied.clear()
    store.uploads.clear()

    again = session.submit_sorting_batch(recording_paths=paths, job_spec={})
    assert again.cached == ["a.nwb", "c.nwb"] and again.submitted == ["b.nwb"] and again.uploaded_bytes == 0
    (job,) = backend.applied
    assert job_recording_indexes(job) == [1] and job["spec"]["completions"] == 1
    assert not any("/blobs/" in uri for uri in store.uploads)
    rows = {r.recording: r for r in session.batch_status(again.run_id).rows}
    assert (rows["a.nwb"].state, rows["a.nwb"].units) == ("cached", 5)

    forced = session.submit_sorting_batch(recording_paths=paths, job_spec={}, force=True)
    assert forced.cached == [] and len(forced.submitted) == 3


def test_a_cache_entry_whose_results_were_cleaned_is_ignored(session, store, backend, tmp_path) -> None:
    paths = recordings(tmp_path, "a.nwb")
    first = session.submit_sorting_batch(recording_paths=paths, job_spec={})
    _complete(store, first, ["a.nwb"])
    del store.objects[f"{first.description.output_prefix}recordings/a.nwb/result.json"]
    again = session.submit_sorting_batch(recording_paths=paths, job_spec={})
    assert again.cached == [] and again.submitted == ["a.nwb"]


def test_every_recording_cached_submits_no_job(session, store, backend, tmp_path) -> None:
    paths = recordings(tmp_path, "a.nwb")
    _complete(store, session.submit_sorting_batch(recording_paths=paths, job_spec={}), ["a.nwb"])
    backend.applied.clear()
    again = session.submit_sorting_batch(recording_paths=paths, job_spec={})
    assert again.job_names == [] and again.job_name == "" and backend.applied == []
    assert session.batch_status(again.run_id).state == "Complete"


def test_retry_resubmits_the_failed_recordings_and_uploads_nothing(session, store, backend, tmp_path) -> None:
    batch = session.submit_sorting_batch(recording_paths=recordings(tmp_path, "a.nwb", "b.nwb", "c.nwb"), job_spec={})
    (job,) = backend.applied
    job = json.loads(json.dumps(job))
    job["metadata"].update(uid="u1", creationTimestamp="2026-11-30T12:00:00Z")
    job["status"] = {"completedIndexes": "0", "failedIndexes": "1-2",
                     "conditions": [{"type": "Failed", "status": "True", "reason": "FailedIndexes"}]}
    backend.job_objects = [job]
    _complete(store, batch, ["a.nwb"])
    uploads = list(store.uploads)
    backend.applied.clear()

    again = session.retry_batch(batch.run_id, parallelism=1)
    assert again.submitted == ["b.nwb", "c.nwb"] and store.uploads == uploads
    (retry_job,) = backend.applied
    assert job_recording_indexes(retry_job) == [1, 2] and retry_job["spec"]["parallelism"] == 1
    assert retry_job["metadata"]["name"] != job["metadata"]["name"]
    assert "uid" not in retry_job["metadata"] and "status" not in retry_job
    assert retry_job["metadata"]["labels"]["spikebatch.io/batch-round"] == "1"


def test_retry_of_a_batch_with_nothing_failed_says_so(session, store, backend, tmp_path) -> None:
    batch = session.submit_sorting_batch(recording_paths=recordings(tmp_path, "a.nwb"), job_spec={})
    _complete(store, batch, ["a.nwb"])
    with pytest.raises(ConfigError, match="no failed or missing recordings"):
        session.retry_batch(batch.run_id)


def test_status_of_a_run_that_is_not_a_batch_names_the_fix(session) -> None:
    with pytest.raises(ConfigError, match="is not a sorting batch"):
        session.batch_status("20261130-120000-abcdefgh")


def test_waiting_for_a_batch_whose_pods_cannot_start_ends_stuck(session, store, backend, tmp_path) -> None:
    batch = session.submit_sorting_batch(recording_paths=recordings(tmp_path, "a.nwb", "b.nwb"), job_spec={})
    (job,) = backend.applied
    job = json.loads(json.dumps(job))
    job["metadata"].update(uid="u1", creationTimestamp="2026-11-30T12:00:00Z")
    job["status"] = {"active": 2}
    backend.job_objects = [job]
    backend.pod_objects = [{
        "metadata": {"name": f"p{i}", "creationTimestamp": "2026-11-30T12:00:01Z",
                     "labels": {"spikebatch.io/run-id": batch.run_id,
                                "batch.kubernetes.io/job-completion-index": str(i)},
                     "ownerReferences": [{"kind": "Job", "uid": "u1"}]},
        "status": {"phase": "Pending", "containerStatuses": [{"name": "main", "state": {"waiting": {
            "reason": "ImagePullBackOff", "message": "Back-off pulling image runner:1"}}}]}} for i in (0, 1)]
    problems = []
    final, report = session.wait_for_batch(batch.run_id, 60, on_problem=problems.append)
    assert final == "Stuck" and [p.reason for p in problems] == ["ImagePullBackOff"]
    assert backend.watch_progress == [True]  # one window of the watch, then the pods were read
    assert {r.state for r in report.rows} == {"pending"}
