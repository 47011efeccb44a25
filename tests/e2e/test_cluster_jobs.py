"""The product against a cluster whose Jobs really run: the real API server and job
controller, a real kubelet node with containerd running the runner image that
``spikebatch image build`` made from this checkout, and a real MinIO.

Each pod fetches its bundle from MinIO with the credentials the profile delivers (a
secret volume from a namespace hook, or ``secretKeyRef`` env), runs, uploads, and ends
with its real exit code; the Job's state comes from the job controller, the logs from
the kubelet through the API server. Pods use the host network so that they reach the
test MinIO on 127.0.0.1.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest

from spikebatch.domain.naming import MANAGED_BY_LABEL, RUN_ID_LABEL
from spikebatch.models import ClusterProfile, NamespaceHookSpec, ResourceSpec, SecretEnvRef, VolumeMountSpec
from spikebatch.session import RunSession
from spikebatch.workspace import DirectoryWorkspace

pytestmark = pytest.mark.integration

SECRET = "s3-credentials"
#: Where the fixed profiles mount the S3 credentials: a path the runner's user (uid
#: 1000) can traverse, unlike /root (mode 0700 in Debian-based images).
CREDENTIALS_DIR = "/var/run/secrets/spikebatch/s3"


def create_s3_secret(kube_cluster, namespace: str, minio_server) -> None:
    from kubernetes import client

    credentials = (f"[default]\naws_access_key_id = {minio_server.access_key}\n"
                   f"aws_secret_access_key = {minio_server.secret_key}\n")
    with kube_cluster.admin_api() as api:
        client.CoreV1Api(api).create_namespaced_secret(namespace, {
            "metadata": {"name": SECRET},
            "stringData": {"credentials": credentials, "access-key-id": minio_server.access_key,
                           "secret-access-key": minio_server.secret_key},
        })


def credentials_hook(how: str, mount_dir: str = CREDENTIALS_DIR) -> NamespaceHookSpec:
    if how == "volume":
        return NamespaceHookSpec(
            required_volumes=[VolumeMountSpec(name="s3-credentials", mount_path=mount_dir, secret_name=SECRET,
                                              read_only=True)],
            env_defaults={"AWS_SHARED_CREDENTIALS_FILE": f"{mount_dir}/credentials"},
        )
    return NamespaceHookSpec(env_defaults={
        "AWS_ACCESS_KEY_ID": SecretEnvRef(secret_name=SECRET, key="access-key-id"),
        "AWS_SECRET_ACCESS_KEY": SecretEnvRef(secret_name=SECRET, key="secret-access-key"),
    })


def real_profile(real_cluster, namespace: str, bucket: str, minio_server, *, storage: str = "boto3",
                 credentials: str = "volume", mount_dir: str = CREDENTIALS_DIR, **resources) -> ClusterProfile:
    return ClusterProfile(
        name="real-node",
        namespace=namespace,
        backend="kubernetes",
        storage_backend=storage,
        default_s3_prefix=f"s3://{bucket}/spikebatch/",
        endpoint_url=minio_server.endpoint_url,
        region_name=minio_server.region,
        default_images={"cpu": real_cluster.image},
        host_network=True,
        tolerations=list(real_cluster.node.tolerations),
        resources=ResourceSpec(**{"requests_cpu": "500m", "requests_memory": "1Gi", "limits_cpu": "2",
                                  "limits_memory": "2Gi", "node_selector": dict(real_cluster.node.node_selector),
                                  **resources}),
        namespace_hooks={namespace: credentials_hook(credentials, mount_dir)},
    )


@pytest.fixture
def s3_secret(real_cluster, kube_namespace, minio_server) -> str:
    create_s3_secret(real_cluster.cluster, kube_namespace, minio_server)
    return SECRET


def open_session(profile: ClusterProfile, kube_cluster, minio_server) -> RunSession:
    # The host side (staging, retrieval) gets the keys directly; the pod only from the secret.
    return RunSession.from_profile(profile, kubeconfig=kube_cluster.admin_kubeconfig,
                                   aws_access_key_id=minio_server.access_key,
                                   aws_secret_access_key=minio_server.secret_key)


@pytest.fixture
def session_for(real_cluster, kube_namespace, minio_server, s3_bucket, s3_secret, tmp_path, monkeypatch):
    monkeypatch.setenv("SPIKEBATCH_CACHE_DIR", str(tmp_path / "cache"))

    def make(**kw) -> RunSession:
        profile = real_profile(real_cluster, kube_namespace, s3_bucket, minio_server, **kw)
        return open_session(profile, real_cluster.cluster, minio_server)

    return make


def read_job(kube_cluster, namespace: str, name: str) -> dict:
    from kubernetes import client

    with kube_cluster.admin_api() as api:
        job = client.BatchV1Api(api).read_namespaced_job(name, namespace)
        return api.sanitize_for_serialization(job)


def job_pods(kube_cluster, namespace: str, job_name: str) -> list[dict]:
    from kubernetes import client

    with kube_cluster.admin_api() as api:
        pods = client.CoreV1Api(api).list_namespaced_pod(namespace, label_selector=f"job-name={job_name}")
        return [api.sanitize_for_serialization(p) for p in pods.items]


def bucket_keys(minio_server, bucket: str) -> list[str]:
    s3 = minio_server.boto3_client()
    return [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
            for o in page.get("Contents", [])]


def script_file(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "analysis.py"
    path.write_text(text)
    return path


@pytest.mark.parametrize("storage, credentials", [("boto3", "volume"), ("minio", "env")])
def test_workspace_job_runs_in_a_real_pod(session_for, storage, credentials, real_cluster, kube_namespace,
                                          minio_server, s3_bucket, tmp_path) -> None:
    session = session_for(storage=storage, credentials=credentials)
    ws = DirectoryWorkspace(str(tmp_path / "ws"))
    ws.store("inputs", "values", np.arange(4.0))
    big = tmp_path / "reference.bin"
    big.write_bytes(os.urandom(9 * 1024 * 1024))  # over the blob threshold: staged content-addressed
    script = script_file(tmp_path, (
        "import os\n"
        "size = os.path.getsize(os.path.join(inputs_dir, 'reference.bin'))\n"
        "print('analysis running as uid', os.getuid(), flush=True)\n"
        "workspace.store('results', 'summary', {'total': float(workspace.get('inputs', 'values').sum()), "
        "'ref_size': size, 'uid': os.getuid()})\n"
    ))
    result = session.submit_workspace_job(workspace=ws, script=str(script), job_spec={"name_prefix": "real ws"},
                                          bundle_input_paths=[str(big)])

    job = read_job(real_cluster.cluster, kube_namespace, result.job_name)
    assert job["metadata"]["labels"][RUN_ID_LABEL] == result.run_id
    assert job["metadata"]["labels"][MANAGED_BY_LABEL] == "spikebatch"
    # No credential value in the Job or in the manifest the user got back.
    assert minio_server.secret_key not in json.dumps(job) and minio_server.secret_key not in result.manifest_yaml
    bundle = minio_server.boto3_client().get_object(
        Bucket=s3_bucket, Key=f"spikebatch/inputs/{result.run_id}/bundle.zip")["Body"].read()
    manifest = json.loads(zipfile.ZipFile(io.BytesIO(bundle)).read("manifest.json"))
    assert {f["path"]: f["source"] for f in manifest["files"]}["inputs/reference.bin"] == "blob"

    assert session.wait_for_completion(result.job_name, max_wait_seconds=300) == "Complete"

    # It ran in a real container on the real node, from its real exit code.
    pods = job_pods(real_cluster.cluster, kube_namespace, result.job_name)
    assert [p["spec"]["nodeName"] for p in pods] == [real_cluster.node.name]
    terminated = pods[0]["status"]["containerStatuses"][0]["state"]["terminated"]
    assert (terminated["exitCode"], terminated["reason"]) == (0, "Completed")
    assert pods[0]["status"]["containerStatuses"][0]["image"].endswith(real_cluster.image.split("/")[-1])
    logs = list(session.stream_logs(result.job_name))
    assert "analysis running as uid 1000" in logs
    assert "SPIKEBATCH_RESULT status=succeeded" in logs

    out = session.retrieve_result(result, str(tmp_path / "retrieved"))
    assert out.get("results", "summary") == {"total": 6.0, "ref_size": 9 * 1024 * 1024, "uid": 1000}
    assert f"spikebatch/logs/{result.run_id}/runner.log" in bucket_keys(minio_server, s3_bucket)


def test_spikelab_workspace_job_runs_in_a_real_pod(session_for, tmp_path) -> None:
    from spikelab.workspace import AnalysisWorkspace

    session = session_for()
    ws = AnalysisWorkspace(name="lab")
    ws.store("rec1", "rates", np.array([1.0, 2.0, 4.0]))
    script = script_file(tmp_path, (
        "rates = workspace.get('rec1', 'rates')\n"
        "workspace.store('rec1', 'normalised', rates / rates.max())\n"
    ))
    result = session.submit_workspace_job(workspace=ws, script=str(script), job_spec={})
    assert session.wait_for_completion(result.job_name, max_wait_seconds=300) == "Complete"
    out = session.retrieve_result(result, str(tmp_path / "retrieved"))
    assert type(out).__name__ == "AnalysisWorkspace"
    np.testing.assert_allclose(out.get("rec1", "normalised"), [0.25, 0.5, 1.0])


def test_sorting_job_runs_in_a_real_pod(session_for, real_cluster, kube_namespace, tmp_path) -> None:
    import spikeinterface.core as si

    recording, truth = si.generate_ground_truth_recording(durations=[20.0], num_channels=8, num_units=4, seed=3)
    folder = tmp_path / "short_rec"
    recording.save(folder=folder, verbose=False)
    session = session_for(storage="minio")
    result = session.submit_sorting_job(recording_paths=[str(folder)], config="tridesclous2",
                                        job_spec={"name_prefix": "real sort"})
    assert session.wait_for_completion(result.job_name, max_wait_seconds=600) == "Complete", \
        "\n".join(list(session.stream_logs(result.job_name))[-40:])
    out = session.retrieve_result(result, str(tmp_path / "retrieved"))
    assert "short_rec" in out.list_namespaces()
    found = np.asarray(out.get("short_rec", "unit_ids"))
    # A sorter on a 4-unit ground truth finds units, and not an absurd number of them.
    assert 1 <= len(found) <= 3 * truth.get_num_units()
    assert (tmp_path / "retrieved" / "short_rec" / "units.npz").is_file()


def test_prepared_job_runs_in_a_real_pod_with_its_env(session_for) -> None:
    session = session_for()
    result = session.submit_prepared_job(job_spec={"container": {
        "command": ["python", "-c", "import os; print('greeting:', os.environ['GREETING'], os.getuid())"],
        "env": {"GREETING": "hello from a real pod"}}})
    assert session.wait_for_completion(result.job_name, max_wait_seconds=180) == "Complete"
    assert "greeting: hello from a real pod 1000" in list(session.stream_logs(result.job_name))
    report = session.job_report(result.job_name)
    assert (str(report.state), report.reason) == ("Complete", "")


def test_the_pod_runs_with_least_privilege(session_for, real_cluster, kube_namespace, tmp_path) -> None:
    session = session_for()
    ws = DirectoryWorkspace(str(tmp_path / "ws"))
    ws.store("inputs", "x", {"v": 1})
    script = script_file(tmp_path, (
        "import os\n"
        "def writable(path):\n"
        "    try:\n"
        "        open(os.path.join(path, 'probe'), 'w').close()\n"
        "        return True\n"
        "    except OSError:\n"
        "        return False\n"
        "status = open('/proc/self/status').read()\n"
        "workspace.store('out', 'facts', {\n"
        "    'uid': os.getuid(), 'root_fs_writable': writable('/opt'), 'tmp_writable': writable('/tmp'),\n"
        "    'kubeconfig': os.path.exists(os.path.expanduser('~/.kube/config')) or 'KUBECONFIG' in os.environ,\n"
        "    'cap_eff': [l.split()[1] for l in status.splitlines() if l.startswith('CapEff')][0],\n"
        "    'no_new_privs': [l.split()[1] for l in status.splitlines() if l.startswith('NoNewPrivs')][0]})\n"
    ))
    result = session.submit_workspace_job(workspace=ws, script=str(script), job_spec={})
    assert session.wait_for_completion(result.job_name, max_wait_seconds=300) == "Complete"
    facts = session.retrieve_result(result, str(tmp_path / "out")).get("out", "facts")
    assert facts == {"uid": 1000, "root_fs_writable": False, "tmp_writable": True, "kubeconfig": False,
                     "cap_eff": "0000000000000000", "no_new_privs": "1"}


def test_a_script_that_raises_fails_the_job_with_its_exception(session_for, tmp_path) -> None:
    session = session_for()
    ws = DirectoryWorkspace(str(tmp_path / "ws"))
    ws.store("inputs", "x", {"v": 1})
    script = script_file(tmp_path, "raise ValueError('the threshold must be positive')\n")
    result = session.submit_workspace_job(workspace=ws, script=str(script), job_spec={})
    assert session.wait_for_completion(result.job_name, max_wait_seconds=300) == "Failed"
    report = session.job_report(result.job_name)
    assert (str(report.state), report.reason, report.exit_code) == ("Failed", "Error", 1)
    assert "ValueError: the threshold must be positive" in report.message


def test_a_job_over_its_memory_limit_is_oomkilled(session_for) -> None:
    session = session_for(requests_memory="64Mi", limits_memory="64Mi")
    # b"x" * n writes every page (a zero-filled bytearray would not touch them).
    result = session.submit_prepared_job(job_spec={"container": {
        "command": ["python", "-c", "data = b'x' * (512 * 1024 * 1024); print(len(data))"]}})
    assert session.wait_for_completion(result.job_name, max_wait_seconds=180) == "Failed"
    report = session.job_report(result.job_name)
    assert (report.reason, report.exit_code) == ("OOMKilled", 137)


def test_a_job_past_its_deadline_fails_as_deadline_exceeded(session_for) -> None:
    session = session_for()
    result = session.submit_prepared_job(job_spec={"active_deadline_seconds": 3, "container": {
        "command": ["python", "-c", "import time; print('started', flush=True); time.sleep(600)"]}})
    assert session.wait_for_completion(result.job_name, max_wait_seconds=180) == "Failed"
    report = session.job_report(result.job_name)
    assert report.reason == "DeadlineExceeded"


def test_an_image_that_does_not_exist_is_reported_while_waiting(session_for) -> None:
    session = session_for()
    missing = "127.0.0.1:1/spikebatch/no-such-image:0"  # a refused port on loopback: no request leaves
    result = session.submit_prepared_job(job_spec={"container": {"image": missing, "command": ["true"]}})
    problems = []
    final = session.wait_for_completion(result.job_name, max_wait_seconds=300, on_problem=problems.append)
    assert final == "Stuck"
    assert problems and problems[-1].reason == "ImagePullBackOff" and problems[-1].stuck
    assert all(p.reason in ("ErrImagePull", "ImagePullBackOff") for p in problems)
    assert missing in problems[0].message
    assert session.delete_job(result.job_name)


def test_credentials_under_root_fail_for_the_runner_user_and_the_fixed_path_works(session_for, tmp_path) -> None:
    """The old nrp hook mounted the S3 credentials at /root/.aws; the image runs as uid
    1000 and /root is mode 0700, so the runner could not read them."""
    ws = DirectoryWorkspace(str(tmp_path / "ws"))
    ws.store("inputs", "x", {"v": 1})
    script = script_file(tmp_path, "workspace.store('out', 'ok', {'v': 1})\n")

    old = session_for(mount_dir="/root/.aws")
    broken = old.submit_workspace_job(workspace=ws, script=str(script), job_spec={})
    assert old.wait_for_completion(broken.job_name, max_wait_seconds=300) == "Failed"
    logs = "\n".join(old.stream_logs(broken.job_name))
    assert "credentials" in logs.lower(), logs[-2000:]

    fixed = session_for()
    good = fixed.submit_workspace_job(workspace=ws, script=str(script), job_spec={})
    assert fixed.wait_for_completion(good.job_name, max_wait_seconds=300) == "Complete"
    assert fixed.retrieve_result(good, str(tmp_path / "out")).get("out", "ok") == {"v": 1}
