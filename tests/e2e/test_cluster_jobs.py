"""The product against a cluster: the real API server (job controller + kwok) and a real
MinIO. kwok runs no containers, so after kwok completes the Job the test plays the
container: it runs the runner with the Job's own environment, as the pod would."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from spikebatch.workspace import DirectoryWorkspace
from spikebatch.models import ClusterProfile
from spikebatch.domain.naming import MANAGED_BY_LABEL, RUN_ID_LABEL
from spikebatch.session import RunSession

pytestmark = pytest.mark.integration


@pytest.fixture(params=["boto3", "minio"])
def cluster_session(request, kube_cluster, kube_namespace, minio_server, s3_bucket, tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEBATCH_CACHE_DIR", str(tmp_path / "cache"))
    profile = ClusterProfile(
        name="test-cluster",
        namespace=kube_namespace,
        backend="kubernetes",
        storage_backend=request.param,
        default_s3_prefix=f"s3://{s3_bucket}/spikebatch/",
        endpoint_url=minio_server.endpoint_url,
        region_name=minio_server.region,
        default_images={"cpu": "spikebatch-runner:0.1.0"},
    )
    return RunSession.from_profile(
        profile,
        kubeconfig=kube_cluster.admin_kubeconfig,
        aws_access_key_id=minio_server.access_key,
        aws_secret_access_key=minio_server.secret_key,
    )


def job_object(kube_cluster, namespace: str, name: str):
    from kubernetes import client

    return client.BatchV1Api(kube_cluster.admin_api()).read_namespaced_job(name, namespace)


def play_the_container(job, minio_server, mode: str, work_dir: Path) -> subprocess.CompletedProcess:
    """Run the runner exactly as the Job's container would: its command, its env, plus
    the S3 credentials a cluster would mount from a secret."""
    container = job.spec.template.spec.containers[0]
    assert container.command[:3] == ["python", "-m", "spikebatch.entrypoints.runner"]
    env = {e.name: e.value for e in container.env if e.value is not None}
    env.update(
        PATH=os.environ["PATH"],
        HOME=str(work_dir),
        AWS_ACCESS_KEY_ID=minio_server.access_key,
        AWS_SECRET_ACCESS_KEY=minio_server.secret_key,
        SPIKEBATCH_WORK_DIR=str(work_dir / "run"),
        SPIKEBATCH_CACHE_DIR=str(work_dir / "cache"),
        MPLBACKEND="Agg",
    )
    return subprocess.run(
        [sys.executable, *container.command[1:], *(container.args or [])],
        env=env, capture_output=True, text=True, timeout=900,
    )


def bucket_keys(minio_server, bucket: str) -> list[str]:
    s3 = minio_server.boto3_client()
    return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in page.get("Contents", [])]


def test_workspace_job_through_the_cluster(cluster_session, kube_cluster, kube_namespace, minio_server, s3_bucket, tmp_path) -> None:
    session = cluster_session
    ws = DirectoryWorkspace(str(tmp_path / "ws"))
    ws.store("inputs", "values", np.arange(4.0))
    big = tmp_path / "reference.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # over the blob threshold: staged content-addressed
    script = tmp_path / "analysis.py"
    script.write_text(
        "import os\n"
        "size = os.path.getsize(os.path.join(inputs_dir, 'reference.bin'))\n"
        "workspace.store('results', 'summary', {'total': float(workspace.get('inputs', 'values').sum()), 'ref_size': size})\n"
    )
    result = session.submit_workspace_job(
        workspace=ws, script=str(script), job_spec={"name_prefix": "cluster ws"}, bundle_input_paths=[str(big)]
    )

    # The Job reached the API server with the expected manifest.
    job = job_object(kube_cluster, kube_namespace, result.job_name)
    assert job.metadata.labels[RUN_ID_LABEL] == result.run_id
    assert job.metadata.labels[MANAGED_BY_LABEL] == "spikebatch"
    env = {e.name: e.value for e in job.spec.template.spec.containers[0].env}
    assert env["INPUT_URI"] == result.uploaded_input_uri == f"s3://{s3_bucket}/spikebatch/inputs/{result.run_id}/bundle.zip"
    assert env["S3_ENDPOINT_URL"] == minio_server.endpoint_url
    # no credential value in the Job or in the returned manifest
    assert minio_server.secret_key not in json.dumps(job.to_dict(), default=str)
    assert minio_server.secret_key not in result.manifest_yaml

    # The bundle and the blob landed in MinIO.
    keys = bucket_keys(minio_server, s3_bucket)
    assert f"spikebatch/inputs/{result.run_id}/bundle.zip" in keys
    blob_keys = [k for k in keys if k.startswith("spikebatch/blobs/sha256/")]
    assert len(blob_keys) == 1
    bundle = minio_server.boto3_client().get_object(Bucket=s3_bucket, Key=f"spikebatch/inputs/{result.run_id}/bundle.zip")["Body"].read()
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(bundle)).read("manifest.json"))
    assert {f["path"]: f["source"] for f in manifest["files"]}["inputs/reference.bin"] == "blob"

    # kwok runs the pod to completion; the real job controller marks the Job Complete.
    assert session.wait_for_completion(result.job_name, max_wait_seconds=120) == "Complete"

    run = play_the_container(job, minio_server, "workspace", tmp_path / "container")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "SPIKEBATCH_RESULT status=succeeded" in run.stdout

    out = session.retrieve_result(result, str(tmp_path / "retrieved"))
    assert out.get("results", "summary") == {"total": 6.0, "ref_size": 9 * 1024 * 1024}
    assert f"spikebatch/logs/{result.run_id}/runner.log" in bucket_keys(minio_server, s3_bucket)

    # Re-submitting the unchanged input stores no new blob.
    again = session.submit_workspace_job(workspace=ws, script=str(script), job_spec={}, bundle_input_paths=[str(big)])
    assert [k for k in bucket_keys(minio_server, s3_bucket) if "/blobs/" in k] == blob_keys
    assert again.run_id != result.run_id


# One storage adapter is enough here: the sort dominates the time, and the workspace
# test above already runs the whole path through both.
@pytest.mark.parametrize("cluster_session", ["minio"], indirect=True)
def test_sorting_job_through_the_cluster(cluster_session, kube_cluster, kube_namespace, minio_server, s3_bucket, tmp_path) -> None:
    import spikeinterface.core as si

    recording, _truth = si.generate_ground_truth_recording(durations=[20.0], num_channels=8, num_units=4, seed=3)
    folder = tmp_path / "short_rec"
    recording.save(folder=folder, verbose=False)
    session = cluster_session
    result = session.submit_sorting_job(
        recording_paths=[str(folder)], config="tridesclous2", job_spec={"name_prefix": "cluster sort"}
    )
    job = job_object(kube_cluster, kube_namespace, result.job_name)
    assert job.spec.template.spec.containers[0].command[-1] == "sorting"
    assert any(k.startswith("spikebatch/blobs/sha256/") for k in bucket_keys(minio_server, s3_bucket))
    assert session.wait_for_completion(result.job_name, max_wait_seconds=120) == "Complete"

    run = play_the_container(job, minio_server, "sorting", tmp_path / "container")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    out = session.retrieve_result(result, str(tmp_path / "retrieved"))
    assert "short_rec" in out.list_namespaces()
    assert len(np.asarray(out.get("short_rec", "unit_ids"))) >= 1
    assert (tmp_path / "retrieved" / "short_rec" / "units.npz").is_file()


def test_prepared_job_and_a_failing_pod(cluster_session, kube_cluster, kube_namespace) -> None:
    key, value = kube_cluster.fail_label
    session = cluster_session
    ok = session.submit_prepared_job(job_spec={"container": {"command": ["python", "-c", "print('hi')"]}})
    failing = session.submit_prepared_job(job_spec={"labels": {key: value}, "container": {"command": ["python", "-c", "raise SystemExit(1)"]}})
    assert session.wait_for_completion(ok.job_name, max_wait_seconds=120) == "Complete"
    assert session.wait_for_completion(failing.job_name, max_wait_seconds=180) == "Failed"
    assert ok.uploaded_input_uri == "" and ok.job_type == "prepared"
