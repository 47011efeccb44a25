"""A 200-recording sorting batch against the test control plane (real API server and
job controller; kwok plays the node) with real MinIO: one Indexed Job, a kwok stage
failing the pods of chosen completion indexes, the batch's status read from what the
API server reports, partial retrieval and ``retry``.

kwok runs no container, so the per-recording outputs a pod would upload are written
into MinIO by the test for the indexes the job controller reports complete (with the
runner's own layout, ``recordings/<name>/``).
"""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest

from infra.testenv import FAIL_CHOSEN_INDEXES_LABEL, FAIL_INDEXES_EXIT_1, FAIL_INDEXES_EXIT_2, FAIL_INDEXES_MESSAGE
from spikebatch.domain.batch import BATCH_INDEXES_ENV, parse_index_ranges, recording_output_prefix
from spikebatch.domain.naming import RUN_ID_LABEL
from spikebatch.models import ClusterProfile, ResourceSpec
from spikebatch.session import RunSession
from spikebatch.workspace import DirectoryWorkspace

pytestmark = pytest.mark.integration

IMAGE = "registry.example.org/lab/spikebatch-runner:1.0"
COUNT = 200


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> list[Path]:
    """COUNT small SpikeInterface binary folders with distinct data."""
    from spikeinterface.generation import NoiseGeneratorRecording

    root = tmp_path_factory.mktemp("many")
    template = root / "template"
    # 1 s x 2 channels of int32: an 80 kB data file, staged as a blob like any real
    # recording's data (the small JSON sidecars travel in the bundle zip).
    recording = NoiseGeneratorRecording(num_channels=2, sampling_frequency=10000.0, durations=[1.0], seed=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        recording.save(folder=template, verbose=False)
    (raw,) = template.glob("traces_cached_seg*.raw")
    rng = np.random.default_rng(5)
    folders = []
    for i in range(COUNT):
        folder = root / f"rec{i:03d}"
        shutil.copytree(template, folder)
        (folder / raw.name).write_bytes(rng.integers(-500, 500, raw.stat().st_size // 4, dtype=np.int32).tobytes())
        folders.append(folder)
    return folders


def _profile(namespace: str, bucket: str, minio_server) -> ClusterProfile:
    return ClusterProfile(
        name="kwok-batch", namespace=namespace, backend="kubernetes", storage_backend="boto3",
        default_s3_prefix=f"s3://{bucket}/spikebatch/", endpoint_url=minio_server.endpoint_url,
        region_name=minio_server.region, default_images={"cpu": IMAGE},
        resources=ResourceSpec(requests_cpu="100m", requests_memory="128Mi", limits_cpu="100m", limits_memory="128Mi"),
    )


@pytest.fixture
def session(kube_cluster, kube_namespace, minio_server, s3_bucket, tmp_path, monkeypatch) -> RunSession:
    monkeypatch.setenv("SPIKEBATCH_CACHE_DIR", str(tmp_path / "cache"))
    session = RunSession.from_profile(_profile(kube_namespace, s3_bucket, minio_server),
                                      kubeconfig=kube_cluster.admin_kubeconfig,
                                      aws_access_key_id=minio_server.access_key,
                                      aws_secret_access_key=minio_server.secret_key)
    return session


def _bucket_objects(minio_server, bucket: str) -> dict:
    s3 = minio_server.boto3_client()
    return {o["Key"]: o["Size"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])}


def _write_outputs_of(session: RunSession, batch, names: list[str], tmp_path: Path) -> None:
    """What each pod of these recordings would have uploaded: its workspace and result.json."""
    store = session.storage_client
    for name in names:
        ws_dir = tmp_path / "outputs" / name / "workspace"
        workspace = DirectoryWorkspace(ws_dir)
        workspace.store(name, "unit_ids", np.arange(3))
        prefix = recording_output_prefix(batch.result.output_prefix, name)
        for path in sorted(p for p in ws_dir.rglob("*") if p.is_file()):
            store.upload_file(local_path=path, s3_uri=prefix + "workspace/" + path.relative_to(ws_dir).as_posix())
        store.write_bytes(prefix + "result.json", json.dumps(
            {"status": "succeeded", "units": 3, "seconds": 1.5, "format": "directory"}).encode())


def test_a_200_recording_batch_is_one_indexed_job_with_partial_results_and_retry(
        session: RunSession, recordings, kube_cluster, kube_namespace, minio_server, s3_bucket, tmp_path) -> None:
    failing_1 = [int(i) for i in FAIL_INDEXES_EXIT_1]
    failing_2 = [int(i) for i in FAIL_INDEXES_EXIT_2]
    batch = session.submit_sorting_batch(
        recording_paths=[str(p) for p in recordings], config="tridesclous2",
        job_spec={"labels": {FAIL_CHOSEN_INDEXES_LABEL[0]: FAIL_CHOSEN_INDEXES_LABEL[1]}},
        parallelism=50, retries_per_recording=1)
    assert batch.indexed and len(batch.job_names) == 1 and len(batch.submitted) == COUNT
    assert batch.uploaded_bytes == sum(f.stat().st_size for p in recordings for f in p.glob("traces_cached_seg*.raw"))
    run_id = batch.run_id

    # One Indexed Job, as the API server stores it.
    (job,), _pods = session.backend.run_objects(run_id)
    spec = job["spec"]
    assert (spec["completionMode"], spec["completions"], spec["parallelism"], spec["backoffLimitPerIndex"]) == (
        "Indexed", COUNT, 50, 1)
    assert spec["podReplacementPolicy"] == "Failed"
    assert [r["action"] for r in spec["podFailurePolicy"]["rules"]] == ["Ignore", "FailIndex"]

    # Watching costs the same few requests however many recordings there are.
    seen = []
    before = session.backend.request_count
    final, report = session.wait_for_batch(run_id, 600, on_progress=seen.append)
    watch_requests = session.backend.request_count - before
    print(f"waiting for {COUNT} recordings took {watch_requests} API requests")
    assert watch_requests <= 10, session.backend.requests_by_kind
    assert final == "Failed"
    assert seen[-1].done == COUNT - len(failing_1) - len(failing_2) and seen[-1].failed == len(failing_1) + len(failing_2)
    assert seen[-1].total == COUNT

    # The status, against what the API server says of the Job and its pods.
    job = session.backend.run_objects(run_id)[0][0]
    assert parse_index_ranges(job["status"]["failedIndexes"]) == sorted(failing_1 + failing_2)
    rows = {r.index: r for r in report.rows}
    for index in failing_1:
        row = rows[index]
        assert (row.state, row.attempts, row.reason, row.exit_code) == ("failed", 2, "Error", 1), row
        assert row.message == FAIL_INDEXES_MESSAGE and row.recording == recordings[index].name
    for index in failing_2:
        assert (rows[index].state, rows[index].attempts, rows[index].exit_code) == ("failed", 1, 2)  # FailIndex: no retry
    good = [r for r in report.rows if r.index not in failing_1 + failing_2]
    assert all(r.state == "succeeded" and r.attempts == 1 for r in good)

    # Partial retrieval: every recording whose pod finished comes back; the failed
    # ones are listed with their reasons.
    _write_outputs_of(session, batch, [r.recording for r in good], tmp_path)
    got = session.retrieve_batch(run_id, str(tmp_path / "retrieved"))
    assert sorted(got.succeeded) == sorted(r.recording for r in good)
    assert sorted(got.workspace.list_namespaces()) == sorted(r.recording for r in good)
    assert set(got.failed) == {recordings[i].name for i in failing_1 + failing_2}
    assert got.failed[recordings[3].name] == f"Error (exit code 1): {FAIL_INDEXES_MESSAGE}"
    assert session.batch_status(run_id).rows[0].units == 3  # read back from result.json

    # Retry: exactly the failed recordings, in a new Job of the same run, nothing uploaded.
    stored = _bucket_objects(minio_server, s3_bucket)
    again = session.retry_batch(run_id)
    assert sorted(again.submitted) == sorted(recordings[i].name for i in failing_1 + failing_2)
    assert _bucket_objects(minio_server, s3_bucket) == stored
    jobs = session.backend.run_objects(run_id)[0]
    assert len(jobs) == 2 and {j["metadata"]["labels"][RUN_ID_LABEL] for j in jobs} == {run_id}
    retry_job = next(j for j in jobs if j["metadata"]["name"] == again.job_name)
    assert retry_job["spec"]["completions"] == 4
    env = {e["name"]: e.get("value") for e in retry_job["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert parse_index_ranges(env[BATCH_INDEXES_ENV]) == sorted(failing_1 + failing_2)
    for name in again.job_names + batch.job_names:
        session.delete_job(name)


def test_one_job_per_recording_when_asked_or_on_an_old_api_server(session: RunSession, recordings) -> None:
    batch = session.submit_sorting_batch(recording_paths=[str(p) for p in recordings[:5]], config="tridesclous2",
                                         job_spec={}, retries_per_recording=0, per_recording_jobs=True)
    assert not batch.indexed and len(batch.job_names) == 5 and batch.fallback_reason
    final, report = session.wait_for_batch(batch.run_id, 300)
    assert final == "Complete"
    assert [r.recording for r in report.rows] == [p.name for p in recordings[:5]]
    assert all(r.state == "succeeded" and r.attempts == 1 for r in report.rows)
    for name in batch.job_names:
        session.delete_job(name)
