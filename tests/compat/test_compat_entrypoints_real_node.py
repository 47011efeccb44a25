"""The reference-compatible in-container module in a real container on the real kubelet
node, as a lab ported from spikelab.batch_jobs runs it: a SpikeLab workspace and script
packed by ``package_analysis_bundle``, put into MinIO by ``S3StorageClient.upload_bundle``,
submitted by a hand-built ``RunSession`` with ``KubernetesBatchJobBackend`` as a prepared
job running ``python -m spikebatch.entrypoints.workspace`` on the runner image, its
result read back with ``download_output``. The pod gets the S3 keys only from the
secret volume the profile's namespace hook mounts (as tests/e2e/test_cli_real_pods.py).
The same cases through the local backend: test_compat_entrypoints.py."""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pytest

from e2e.test_cluster_jobs import CREDENTIALS_DIR, SECRET, create_s3_secret
from spikebatch.artifact_packager import package_analysis_bundle
from spikebatch.backend_k8s import KubernetesBatchJobBackend
from spikebatch.models import ClusterProfile
from spikebatch.session import RunSession
from spikebatch.storage_s3 import S3StorageClient

pytestmark = pytest.mark.integration

MODULE = "spikebatch.entrypoints.workspace"


@pytest.fixture
def lab(real_cluster, kube_namespace, minio_server, s3_bucket, tmp_path, monkeypatch):  
    """(session, storage, backend) wired by hand as the reference's docs show; the host
    side gets the keys directly, the pod only from the secret volume."""
    monkeypatch.setenv("SPIKEBATCH_CACHE_DIR", str(tmp_path / "cache"))
    create_s3_secret(real_cluster.cluster, kube_namespace, minio_server)
    profile = ClusterProfile.model_validate({
        "name": "lab-real-node", "namespace": kube_namespace, "default_s3_prefix": f"s3://{s3_bucket}/lab/",
        "endpoint_url": minio_server.endpoint_url, "region_name": minio_server.region,
        "default_images": {"cpu": real_cluster.image}, "host_network": True,
        "tolerations": list(real_cluster.node.tolerations),
        "resources": {"requests_cpu": "500m", "requests_memory": "1Gi", "limits_cpu": "2", "limits_memory": "2Gi",
                      "node_selector": dict(real_cluster.node.node_selector)},
        "namespace_hooks": {kube_namespace: {
            "required_volumes": [{"name": "s3-credentials", "mount_path": CREDENTIALS_DIR, "secret_name": SECRET}],
            "env_defaults": {"AWS_SHARED_CREDENTIALS_FILE": f"{CREDENTIALS_DIR}/credentials"}}},
    })
    storage = S3StorageClient(prefix=f"s3://{s3_bucket}/lab/", endpoint_url=minio_server.endpoint_url,
                              region_name=minio_server.region, aws_access_key_id=minio_server.access_key,
                              aws_secret_access_key=minio_server.secret_key)
    backend = KubernetesBatchJobBackend(namespace=kube_namespace, kubeconfig=real_cluster.cluster.admin_kubeconfig)
    session = RunSession(profile=profile, backend=backend, storage_client=storage)
    return session, storage, backend


def workspace_bundle(tmp_path: Path, run_id: str, script_text: str, values: np.ndarray) -> str:
    from spikelab.workspace import AnalysisWorkspace

    workspace = AnalysisWorkspace(name="lab")
    workspace.store("inputs", "values", values)
    workspace.save(str(tmp_path / "my_session"))  # any base name: the job finds it by its content
    script = tmp_path / "analysis.py"
    script.write_text(textwrap.dedent(script_text))
    return package_analysis_bundle(input_paths=[str(tmp_path / "my_session.h5"), str(tmp_path / "my_session.json"),
                                                str(script)],
                                   run_id=run_id, output_dir=str(tmp_path / "bundle"), output_format="workspace")


def submit_workspace_module(lab, run_id: str, bundle: str, minio_server) -> str:
    """Upload the bundle and submit the module as a prepared job; its job name."""
    session, storage, _ = lab
    input_uri = storage.upload_bundle(local_zip=bundle, run_id=run_id)
    job_spec = {"name_prefix": "lab-workspace", "namespace": session.profile.namespace, "container": {
        "command": ["python", "-m", MODULE],
        "env": {"INPUT_URI": input_uri, "OUTPUT_PREFIX": storage.output_prefix_for_run(run_id),
                "SCRIPT_NAME": "analysis.py", "S3_ENDPOINT_URL": minio_server.endpoint_url,
                "AWS_DEFAULT_REGION": minio_server.region}}}
    result = session.submit_prepared_job(job_spec=job_spec, run_id=run_id)
    assert result.run_id == run_id
    return result.job_name


def pod_log(backend, job_name: str) -> str:
    pods = backend.pods_for_job(job_name)
    assert len(pods) == 1, pods
    return "\n".join(backend.stream_logs(pods[0], follow=False))


def test_a_workspace_bundle_runs_in_a_real_pod_and_its_workspace_comes_back(lab, minio_server, tmp_path) -> None:
    from spikelab.workspace import AnalysisWorkspace

    session, storage, backend = lab
    bundle = workspace_bundle(tmp_path, "labws1", """
        workspace.store("results", "doubled", workspace.get("inputs", "values") * 2)
        print("analysis done")
    """, np.arange(5.0))
    job_name = submit_workspace_module(lab, "labws1", bundle, minio_server)

    state = session.wait_for_completion(job_name=job_name, max_wait_seconds=300)
    logs = pod_log(backend, job_name)
    assert state == "Complete", logs[-3000:]
    assert "analysis done" in logs and "Workspace job completed successfully." in logs
    assert minio_server.secret_key not in logs
    back = tmp_path / "back"
    for name in ("workspace.h5", "workspace.json"):
        path = storage.download_output(run_id="labws1", filename=name, local_dir=str(back))
        assert Path(path) == (back / name).absolute()
    result = AnalysisWorkspace.load(str(back / "workspace"))
    np.testing.assert_array_equal(result.get("results", "doubled"), np.arange(5.0) * 2)
    np.testing.assert_array_equal(result.get("inputs", "values"), np.arange(5.0))


def test_a_failing_script_fails_the_real_job_and_uploads_nothing(lab, minio_server, tmp_path) -> None:
    session, storage, backend = lab
    bundle = workspace_bundle(tmp_path, "labws2", """
        print("analysis starting")
        raise RuntimeError("bad analysis: no spikes in channel 3")
    """, np.arange(3.0))
    job_name = submit_workspace_module(lab, "labws2", bundle, minio_server)

    state = session.wait_for_completion(job_name=job_name, max_wait_seconds=300)
    logs = pod_log(backend, job_name)
    assert state == "Failed", logs[-3000:]
    assert "analysis starting" in logs
    assert "RuntimeError: bad analysis: no spikes in channel 3" in logs
    assert "WORKSPACE_SCRIPT_FAILED: RuntimeError: bad analysis: no spikes in channel 3" in logs
    assert "Workspace job completed successfully." not in logs
    assert storage.list_output_files("labws2") == []
