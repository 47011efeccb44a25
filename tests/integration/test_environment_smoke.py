"""Smoke tests proving the test environment is real: MinIO, the Kubernetes control
plane (real job controller + scheduler, kwok node), RBAC, pod logs, kubectl."""
from __future__ import annotations

import io
import json
import shutil
import subprocess
import time
import uuid

import pytest

pytestmark = pytest.mark.integration

JOB_TIMEOUT = 90


# ------------------------------------------------------------------ MinIO

def test_object_round_trips_through_minio_with_boto3(minio_server, s3_bucket):
    s3 = minio_server.boto3_client()
    payload = b"spikebatch " + uuid.uuid4().bytes * 1000
    s3.put_object(Bucket=s3_bucket, Key="runs/r1/input.bin", Body=payload)

    listed = [o["Key"] for o in s3.list_objects_v2(Bucket=s3_bucket)["Contents"]]
    body = s3.get_object(Bucket=s3_bucket, Key="runs/r1/input.bin")["Body"].read()

    assert listed == ["runs/r1/input.bin"]
    assert body == payload


def test_object_round_trips_through_minio_with_minio_sdk(minio_server, s3_bucket):
    from minio import Minio

    host = minio_server.endpoint_url.split("://", 1)[1]
    mc = Minio(host, access_key=minio_server.access_key, secret_key=minio_server.secret_key,
               secure=minio_server.endpoint_url.startswith("https"), region=minio_server.region)
    payload = b"spike times " * 4096
    mc.put_object(s3_bucket, "outputs/result.npz", io.BytesIO(payload), length=len(payload))

    resp = mc.get_object(s3_bucket, "outputs/result.npz")
    try:
        body = resp.read()
    finally:
        resp.close()
        resp.release_conn()

    assert body == payload
    # and boto3 sees what the MinIO SDK wrote: one server, two clients
    assert minio_server.boto3_client().head_object(Bucket=s3_bucket, Key="outputs/result.npz")["ContentLength"] == len(payload)


def test_make_bucket_gives_a_fresh_empty_bucket(minio_server):
    a, b = minio_server.make_bucket(), minio_server.make_bucket()
    try:
        assert a != b
        assert minio_server.boto3_client().list_objects_v2(Bucket=a)["KeyCount"] == 0
    finally:
        minio_server.remove_bucket(a)
        minio_server.remove_bucket(b)


# ------------------------------------------------------------------ Kubernetes helpers

def _job(name: str, *, labels: dict | None = None, backoff_limit: int = 0,
         node_selector: dict | None = None) -> dict:
    return {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {
            "backoffLimit": backoff_limit,
            "template": {
                "metadata": {"labels": dict(labels or {})},
                "spec": {
                    "restartPolicy": "Never",
                    "nodeSelector": node_selector,
                    "containers": [{"name": "main", "image": "python:3.11-slim",
                                    "command": ["python", "-c", "print('hi')"]}],
                },
            },
        },
    }


def _wait_job_condition(batch, namespace: str, name: str, timeout: float = JOB_TIMEOUT):
    """Watch (not poll) the Job until a Complete or Failed condition is True."""
    from kubernetes import watch

    w = watch.Watch()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for event in w.stream(batch.list_namespaced_job, namespace, field_selector=f"metadata.name={name}",
                              timeout_seconds=max(1, int(deadline - time.monotonic()))):
            job = event["object"]
            for c in (job.status.conditions or []) if job.status else []:
                if c.type in ("Complete", "Failed") and c.status == "True":
                    w.stop()
                    return c.type, job
    raise AssertionError(f"Job {namespace}/{name} reached neither Complete nor Failed within {timeout} s")


def _pods_of(core, namespace: str, job_name: str):
    return core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items


@pytest.fixture
def admin(kube_cluster):
    from kubernetes import client

    api = kube_cluster.admin_api()
    yield client.BatchV1Api(api), client.CoreV1Api(api)
    api.close()


# ------------------------------------------------------------------ Kubernetes

def test_api_server_reports_the_pinned_release(kube_cluster):
    kube_cluster.require("version")
    from kubernetes import client

    with kube_cluster.admin_api() as api:
        info = client.VersionApi(api).get_code()

    assert info.git_version == kube_cluster.version
    assert kube_cluster.server.startswith("https://127.0.0.1:")


def test_job_reaches_complete_through_the_job_controller_and_kwok(kube_cluster, kube_namespace, admin):
    kube_cluster.require("node_name")
    batch, core = admin
    batch.create_namespaced_job(kube_namespace, _job("ok"))

    condition, job = _wait_job_condition(batch, kube_namespace, "ok")

    assert condition == "Complete"
    assert job.status.succeeded == 1
    pods = _pods_of(core, kube_namespace, "ok")
    assert [p.status.phase for p in pods] == ["Succeeded"]
    assert pods[0].spec.node_name == kube_cluster.node_name


def test_job_labelled_to_fail_is_failed_only_after_backoff_limit_retries(kube_cluster, kube_namespace, admin):
    kube_cluster.require("fail_label")
    batch, core = admin
    key, value = kube_cluster.fail_label
    batch.create_namespaced_job(kube_namespace, _job("doomed", labels={key: value}, backoff_limit=1))

    condition, job = _wait_job_condition(batch, kube_namespace, "doomed")

    assert condition == "Failed"
    failed = next(c for c in job.status.conditions if c.type == "Failed")
    assert failed.reason == "BackoffLimitExceeded"
    assert job.status.failed == 2  # backoffLimit + 1 pods ran and failed
    phases = sorted(p.status.phase for p in _pods_of(core, kube_namespace, "doomed"))
    assert phases == ["Failed", "Failed"]


def test_pod_under_pending_node_selector_stays_pending(kube_cluster, kube_namespace, admin):
    kube_cluster.require("pending_node_selector")
    batch, core = admin
    batch.create_namespaced_job(kube_namespace, _job("waits", node_selector=kube_cluster.pending_node_selector))

    deadline = time.monotonic() + 30
    pod = None
    while time.monotonic() < deadline:  # the scheduler must have looked at it and said no
        pods = _pods_of(core, kube_namespace, "waits")
        if pods and any(c.type == "PodScheduled" and c.status == "False" for c in pods[0].status.conditions or []):
            pod = pods[0]
            break
        time.sleep(0.5)
    assert pod is not None, "the pod was never marked unschedulable"
    time.sleep(2)
    pod = core.read_namespaced_pod(pod.metadata.name, kube_namespace)
    assert pod.status.phase == "Pending"
    assert pod.spec.node_name is None
    assert not batch.read_namespaced_job("waits", kube_namespace).status.conditions


def test_kubectl_lists_the_same_job(kube_cluster, kube_namespace, admin):
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl is not on PATH"
    batch, _ = admin
    batch.create_namespaced_job(kube_namespace, _job("seen-by-kubectl"))
    _wait_job_condition(batch, kube_namespace, "seen-by-kubectl")

    out = subprocess.run([kubectl, "--kubeconfig", kube_cluster.admin_kubeconfig, "get", "jobs",
                          "-n", kube_namespace, "-o", "json"],
                         capture_output=True, text=True, timeout=60, check=True).stdout
    items = json.loads(out)["items"]

    assert [j["metadata"]["name"] for j in items] == ["seen-by-kubectl"]
    assert any(c["type"] == "Complete" and c["status"] == "True" for c in items[0]["status"]["conditions"])


def test_server_side_dry_run_rejects_an_invalid_job_with_422(kube_cluster, kube_namespace, admin):
    from kubernetes.client.rest import ApiException

    batch, _ = admin
    bad = _job("bad")
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"  # not allowed for a Job
    bad["spec"]["template"]["spec"]["containers"][0]["name"] = "Not_A_DNS_Label"

    with pytest.raises(ApiException) as err:
        batch.create_namespaced_job(kube_namespace, bad, dry_run="All")

    assert err.value.status == 422
    body = json.loads(err.value.body)
    assert body["reason"] == "Invalid"
    assert "restartPolicy" in body["message"]
    assert batch.list_namespaced_job(kube_namespace).items == []  # nothing was created

    ok = batch.create_namespaced_job(kube_namespace, _job("fine"), dry_run="All")
    assert ok.metadata.name == "fine"
    assert batch.list_namespaced_job(kube_namespace).items == []  # dry run stores nothing


def test_limited_user_is_refused_outside_its_namespace_and_allowed_inside(kube_cluster, kube_namespace):
    kube_cluster.require("user_kubeconfig", "user_namespace")
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    name = f"user-{uuid.uuid4().hex[:6]}"
    with kube_cluster.user_api() as api:
        batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
        # inside its namespace: Jobs and Pods work
        batch.create_namespaced_job(kube_cluster.user_namespace, _job(name))
        try:
            assert name in [j.metadata.name for j in batch.list_namespaced_job(kube_cluster.user_namespace).items]
            core.list_namespaced_pod(kube_cluster.user_namespace)
            # outside it: 403
            for call in (lambda: batch.list_namespaced_job(kube_namespace),
                         lambda: batch.create_namespaced_job(kube_namespace, _job(name)),
                         lambda: core.list_namespaced_pod("default"),
                         lambda: core.list_namespace(),
                         lambda: core.list_namespaced_secret(kube_cluster.user_namespace)):
                with pytest.raises(ApiException) as err:
                    call()
                assert err.value.status == 403
        finally:
            batch.delete_namespaced_job(name, kube_cluster.user_namespace, propagation_policy="Background")


def test_pod_logs_are_served_through_the_api_server(kube_cluster, admin):
    kube_cluster.require("pod_log_lines", "user_kubeconfig")
    from kubernetes import client

    batch, core = admin
    ns = kube_cluster.user_namespace
    name = f"logs-{uuid.uuid4().hex[:6]}"
    batch.create_namespaced_job(ns, _job(name))
    try:
        assert _wait_job_condition(batch, ns, name)[0] == "Complete"
        pod = _pods_of(core, ns, name)[0].metadata.name

        with kube_cluster.user_api() as api:  # the limited user may read pods/log in its namespace
            text = client.CoreV1Api(api).read_namespaced_pod_log(pod, ns, container="main")
        kubectl = subprocess.run(["kubectl", "--kubeconfig", kube_cluster.user_kubeconfig, "logs", "-n", ns, pod],
                                 capture_output=True, text=True, timeout=60, check=True).stdout

        assert text.splitlines() == kube_cluster.pod_log_lines
        assert kubectl.splitlines() == kube_cluster.pod_log_lines
    finally:
        batch.delete_namespaced_job(name, ns, propagation_policy="Background")


def test_api_server_restart_keeps_the_cluster_usable(kube_cluster, kube_namespace, admin):
    # Runs last in this file on purpose: it takes the API server away for a few seconds.
    kube_cluster.require("restart_apiserver")
    batch, _ = admin
    batch.create_namespaced_job(kube_namespace, _job("before"))

    downtime = kube_cluster.restart_apiserver()

    assert downtime < 60
    assert [j.metadata.name for j in batch.list_namespaced_job(kube_namespace).items] == ["before"]
    batch.create_namespaced_job(kube_namespace, _job("after"))  # controllers reconnected by themselves
    assert _wait_job_condition(batch, kube_namespace, "after")[0] == "Complete"
