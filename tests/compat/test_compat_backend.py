"""spikebatch.backend_k8s as code written for spikelab.batch_jobs.backend_k8s calls it:
``KubernetesBatchJobBackend(namespace, kubeconfig, use_kubectl_fallback)`` built
without a cluster, then apply / status / pods / one pod's log / delete against the
test environment's real control plane (its job controller drives the Jobs, kwok plays
the node and serves each pod's log)."""

from __future__ import annotations

import inspect
import time
import uuid

import pytest
import yaml

from spikebatch.backend_k8s import KubernetesBatchJobBackend
from spikebatch.errors import BackendUnavailableError, JobNotFoundError, NamespaceMismatchError

from infra.testenv import FAIL_LABEL

TERMINAL = ("Complete", "Failed")
#: The failing Job waits for the job controller's back-off; the Job ends well within.
JOB_TIMEOUT = 120.0



def _reference():
    from spikelab.batch_jobs.backend_k8s import KubernetesBatchJobBackend as reference

    return reference


def job_yaml(name: str, namespace: str = "", fail: bool = False) -> str:
    """A Job as a porting user writes it (YAML text, no spikebatch helper)."""
    labels = {FAIL_LABEL[0]: FAIL_LABEL[1]} if fail else {}
    job = {
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name, **({"namespace": namespace} if namespace else {})},
        "spec": {"backoffLimit": 0, "ttlSecondsAfterFinished": 3600, "template": {
            "metadata": {"labels": labels},
            "spec": {"restartPolicy": "Never", "containers": [{
                "name": "main", "image": "python:3.11-slim", "command": ["python", "-c", "print('hi')"],
                "resources": {"requests": {"cpu": "100m", "memory": "64Mi"},
                              "limits": {"cpu": "100m", "memory": "64Mi"}}}]}}},
    }
    return yaml.safe_dump(job, sort_keys=False)


def until_terminal(backend, name: str) -> str:
    deadline = time.monotonic() + JOB_TIMEOUT
    while True:
        state = backend.job_status(name)
        assert state in ("Pending", "Running", "Complete", "Failed"), state
        if state in TERMINAL:
            return state
        assert time.monotonic() < deadline, f"job {name} still {state} after {JOB_TIMEOUT:.0f} s"
        time.sleep(0.5)


# ------------------------------------------------------------------ offline: names and construction

def test_public_methods_and_signatures_are_the_references() -> None:
    reference = _reference()
    for name in ("__init__", "apply_manifest", "delete_job", "job_status", "pods_for_job", "stream_logs"):
        theirs = inspect.signature(getattr(reference, name)).parameters
        ours = inspect.signature(getattr(KubernetesBatchJobBackend, name)).parameters
        # every parameter of the reference, same name, kind and default, in the same order
        assert list(ours)[: len(theirs)] == list(theirs), name
        for pname, param in theirs.items():
            assert (ours[pname].kind, ours[pname].default) == (param.kind, param.default), (name, pname)
        # anything of ours beyond them is optional
        assert all(p.default is not inspect.Parameter.empty for p in list(ours.values())[len(theirs):]), name


def test_builds_without_a_cluster_or_a_kubeconfig_and_says_why_at_the_first_call(tmp_path) -> None:
    missing = str(tmp_path / "no-such.kubeconfig")
    backend = KubernetesBatchJobBackend(namespace="lab", kubeconfig=missing, use_kubectl_fallback=False)
    assert (backend.namespace, backend.kubeconfig, backend.use_kubectl_fallback) == ("lab", missing, False)

    for call in (lambda: backend.job_status("x"), lambda: backend.pods_for_job("x"),
                 lambda: backend.delete_job("x"), lambda: backend.apply_manifest(job_yaml("x"))):
        with pytest.raises(BackendUnavailableError) as caught:
            call()
        message = str(caught.value)
        assert "\n" not in message and missing in message and "pass the path of an existing kubeconfig" in message
    with pytest.raises(BackendUnavailableError, match="does not exist"):
        backend.stream_logs("x-pod")  # the pod is looked up at the call


def test_the_first_calls_error_is_the_references_runtime_error(tmp_path) -> None:
    backend = KubernetesBatchJobBackend(kubeconfig=str(tmp_path / "none"), use_kubectl_fallback=False)
    with pytest.raises(RuntimeError):
        backend.job_status("x")


# ------------------------------------------------------------------ against the test control plane

@pytest.fixture
def backend(kube_cluster, kube_namespace):
    b = KubernetesBatchJobBackend(namespace=kube_namespace, kubeconfig=kube_cluster.admin_kubeconfig)
    yield b
    b.close()


def _name(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:6]}"


@pytest.mark.integration
def test_a_job_from_a_yaml_file_runs_to_complete_and_its_pod_log_reads(backend, kube_cluster, tmp_path) -> None:
    path = tmp_path / "job.yaml"
    name = _name("compat-file")
    path.write_text(job_yaml(name))

    assert backend.apply_manifest(str(path)) == name  # a path string, as the reference's CLI passes

    assert until_terminal(backend, name) == "Complete"
    status = backend.job_status(name)
    assert isinstance(status, str) and status == "Complete" and f"{status}" == "Complete"
    pods = backend.pods_for_job(name)
    assert isinstance(pods, list) and len(pods) == 1 and all(isinstance(p, str) for p in pods)
    assert pods[0].startswith(name + "-")
    lines = list(backend.stream_logs(pods[0], follow=False))
    assert lines == kube_cluster.pod_log_lines and all(isinstance(line, str) for line in lines)
    assert list(backend.stream_logs(pods[0])) == kube_cluster.pod_log_lines  # follow=True: the pod has ended

    assert backend.delete_job(name) is True  # ours says it existed; the reference returns None
    backend.delete_job(name)  # idempotent: a job already gone is no error
    with pytest.raises(JobNotFoundError, match=name):
        backend.job_status(name)


@pytest.mark.integration
def test_yaml_text_and_a_dict_apply_too_and_a_failing_job_is_failed(backend) -> None:
    text_name, dict_name = _name("compat-text"), _name("compat-dict")

    assert backend.apply_manifest(job_yaml(text_name, fail=True)) == text_name
    assert backend.apply_manifest(yaml.safe_load(job_yaml(dict_name, namespace=backend.namespace))) == dict_name

    assert until_terminal(backend, text_name) == "Failed"
    assert until_terminal(backend, dict_name) == "Complete"
    for name in (text_name, dict_name):
        backend.delete_job(name)


@pytest.mark.integration
def test_a_manifest_for_another_namespace_is_refused_and_nothing_is_created(backend) -> None:
    name = _name("compat-elsewhere")
    with pytest.raises(NamespaceMismatchError, match="render the manifest for this namespace"):
        backend.apply_manifest(job_yaml(name, namespace="somewhere-else"))
    with pytest.raises(JobNotFoundError):
        backend.job_status(name)


@pytest.mark.integration
def test_refused_manifests_are_value_errors_as_the_references(backend) -> None:
    with pytest.raises(ValueError):
        backend.apply_manifest(job_yaml(_name("compat-ns"), namespace="somewhere-else"))
    no_name = yaml.safe_load(job_yaml("x"))
    del no_name["metadata"]["name"]
    with pytest.raises(ValueError):
        backend.apply_manifest(no_name)


@pytest.mark.integration
def test_a_missing_pod_or_job_is_an_error_of_the_call(backend) -> None:
    with pytest.raises(JobNotFoundError, match="no-such-pod"):
        backend.stream_logs("no-such-pod")
    with pytest.raises(JobNotFoundError, match="no-such-job"):
        backend.pods_for_job("no-such-job")
    backend.delete_job("no-such-job")  # not an error, as the reference's
