"""Smoke tests proving the real node is real: kubelet + containerd + runc on the test
control plane run Jobs and Pods in containers of the Debian base image, the Job
controller reads the containers' real exit codes, secrets reach the containers as a
volume and as env, logs come through the API server from the kubelet -- and stopping
the node leaves nothing on the host."""
from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest

from infra.podman import PodmanError, ensure_base_image, missing_tools
from infra.pytest_plugin import unavailable
from infra.real_node import CGROUP_FS, cgroup_hierarchies, podman_oci_archive

pytestmark = pytest.mark.integration

TIMEOUT = 120


@pytest.fixture(scope="module")
def base_image(real_node, testenv_log) -> str:
    """``localhost/debian-py:bookworm`` (built by debootstrap once), imported into the node."""
    absent = missing_tools()
    if absent:
        unavailable(f"podman base image not available: missing Debian packages {', '.join(absent)}")
    try:
        image = ensure_base_image(log=testenv_log)
        archive = podman_oci_archive(image, log=testenv_log)
    except PodmanError as e:
        unavailable(f"podman base image not available: {e}")
    names = real_node.import_image(archive)
    assert image in names
    return image


@pytest.fixture
def api(kube_cluster):
    with kube_cluster.admin_api() as api_client:
        yield api_client


def _pod_spec(real_node, image: str, code: str, **extra) -> dict:
    """A pod spec pinned to the real node: hostNetwork, the node's toleration, an
    unprivileged container (as real job pods run), no image pull."""
    container = {
        "name": "main", "image": image, "imagePullPolicy": "Never",
        "command": ["python3", "-c", code],
        "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                            "runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000},
    }
    container.update(extra.pop("container", {}))
    spec = {
        "restartPolicy": "Never", "hostNetwork": True, "dnsPolicy": "ClusterFirstWithHostNet",
        "nodeSelector": dict(real_node.node_selector), "tolerations": list(real_node.tolerations),
        "terminationGracePeriodSeconds": 1, "containers": [container],
    }
    spec.update(extra)
    return spec


def _job(name: str, pod_spec: dict) -> dict:
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": name},
            "spec": {"backoffLimit": 0, "template": {"metadata": {"labels": {"app": name}}, "spec": pod_spec}}}


def _wait(what: str, check, timeout: float = TIMEOUT, describe=lambda: ""):
    """Poll ``check`` (a condition on cluster state) until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not {what} after {timeout} s; {describe()}")
        time.sleep(0.2)


def _job_finished(batch, namespace: str, name: str):
    job = batch.read_namespaced_job(name, namespace)
    for c in (job.status.conditions or []) if job.status else []:
        if c.type in ("Complete", "Failed") and c.status == "True":
            return c
    return None


def _describe_pods(core, namespace: str, real_node) -> str:
    pods = core.list_namespaced_pod(namespace).items
    states = [(p.metadata.name, p.spec.node_name, p.status.phase,
               [(s.name, s.state.to_dict()) for s in (p.status.container_statuses or [])]) for p in pods]
    return f"pods: {states}\n--- end of {real_node.kubelet_log} ---\n{real_node.log_tail('kubelet', 25)}"


def _only_pod(core, namespace: str, job_name: str):
    pods = core.list_namespaced_pod(namespace, label_selector=f"job-name={job_name}").items
    assert len(pods) == 1, [p.metadata.name for p in pods]
    return pods[0]


def test_node_is_registered_ready_labelled_and_tainted(real_node, api):
    from kubernetes import client

    node = client.CoreV1Api(api).read_node(real_node.name)

    assert real_node.name == "127.0.0.1"
    assert node.metadata.labels["kubernetes.io/hostname"] == "127.0.0.1"
    assert node.metadata.labels["spikebatch.test/real-node"] == "true"
    assert [(t.key, t.value, t.effect) for t in node.spec.taints] == [("spikebatch.test/real-node", "true", "NoSchedule")]
    assert {(a.type, a.address) for a in node.status.addresses} >= {("InternalIP", "127.0.0.1")}
    assert any(c.type == "Ready" and c.status == "True" for c in node.status.conditions)
    assert node.status.node_info.kubelet_version == "v1.37.2"
    assert node.status.node_info.container_runtime_version == "containerd://2.4.2"
    assert real_node.kubelet_log.is_file()


def test_job_runs_in_a_container_completes_and_its_log_comes_through_the_api_server(
        real_node, base_image, api, kube_namespace):
    from kubernetes import client

    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    name = f"hello-{uuid.uuid4().hex[:6]}"
    code = ("import os, sys; print('hello from a real container'); "
            "print('uid', os.getuid(), 'python', sys.version.split()[0], 'in', os.uname().nodename)")
    t = time.monotonic()
    batch.create_namespaced_job(kube_namespace, _job(name, _pod_spec(real_node, base_image, code)))

    cond = _wait("Complete or Failed", lambda: _job_finished(batch, kube_namespace, name),
                 describe=lambda: _describe_pods(core, kube_namespace, real_node))
    elapsed = time.monotonic() - t

    assert (cond.type, cond.reason) == ("Complete", "CompletionsReached"), _describe_pods(core, kube_namespace, real_node)
    pod = _only_pod(core, kube_namespace, name)
    assert pod.spec.node_name == "127.0.0.1"
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    log = core.read_namespaced_pod_log(pod.metadata.name, kube_namespace)
    assert log.splitlines()[0] == "hello from a real container"
    assert log.splitlines()[1].startswith("uid 1000 python 3.11")
    print(f"job create -> Complete: {elapsed:.1f} s")


def test_job_fails_with_the_containers_real_exit_code(real_node, base_image, api, kube_namespace):
    from kubernetes import client

    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    name = f"exit3-{uuid.uuid4().hex[:6]}"
    code = "import sys; print('about to fail', flush=True); sys.exit(3)"
    batch.create_namespaced_job(kube_namespace, _job(name, _pod_spec(real_node, base_image, code)))

    cond = _wait("Complete or Failed", lambda: _job_finished(batch, kube_namespace, name),
                 describe=lambda: _describe_pods(core, kube_namespace, real_node))

    assert (cond.type, cond.reason) == ("Failed", "BackoffLimitExceeded")
    pod = _only_pod(core, kube_namespace, name)
    terminated = pod.status.container_statuses[0].state.terminated
    assert (terminated.exit_code, terminated.reason) == (3, "Error")
    assert pod.status.phase == "Failed"
    assert core.read_namespaced_pod_log(pod.metadata.name, kube_namespace).strip() == "about to fail"


def test_pod_reads_a_secret_from_a_volume_and_from_env(real_node, base_image, api, kube_namespace):
    from kubernetes import client

    core = client.CoreV1Api(api)
    value = "s3cr3t-" + uuid.uuid4().hex
    core.create_namespaced_secret(kube_namespace, {"metadata": {"name": "creds"}, "stringData": {"token": value}})
    code = ("import os\n"
            "f = open('/var/run/secrets/spikebatch/creds/token').read()\n"
            "e = os.environ['TOKEN']\n"
            "print('file', f)\n"
            "print('env', e)\n"
            "try:\n"
            "    open('/var/run/secrets/spikebatch/creds/x', 'w')\n"
            "except OSError as exc:\n"
            "    print('write', exc.errno)\n")
    spec = _pod_spec(real_node, base_image, code,
                     container={"env": [{"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "token"}}}],
                                "volumeMounts": [{"name": "creds", "mountPath": "/var/run/secrets/spikebatch/creds",
                                                  "readOnly": True}]},
                     volumes=[{"name": "creds", "secret": {"secretName": "creds"}}],
                     securityContext={"fsGroup": 1000})
    core.create_namespaced_pod(kube_namespace, {"metadata": {"name": "reads-secret"}, "spec": spec})

    def finished():
        pod = core.read_namespaced_pod("reads-secret", kube_namespace)
        return pod if pod.status.phase in ("Succeeded", "Failed") else None

    pod = _wait("Succeeded or Failed", finished, describe=lambda: _describe_pods(core, kube_namespace, real_node))

    log = core.read_namespaced_pod_log("reads-secret", kube_namespace)
    assert pod.status.phase == "Succeeded", log
    assert log.splitlines() == [f"file {value}", f"env {value}", "write 30"]  # EROFS


def _kubepods_dirs() -> list[Path]:
    out = []
    for h in cgroup_hierarchies():
        out += [d for d in h.iterdir() if d.is_dir() and (d.name == "kubepods" or d.name.startswith("spikebatch-node-"))]
    return out


def test_stop_leaves_nothing_on_the_host_and_the_node_starts_again(real_node, base_image, api, kube_namespace):
    """Runs last in this module: stops the session's node, looks for anything left behind
    (processes, /run/containerd, /var/lib/kubelet, kubepods cgroups, mounts), starts it
    again (images re-imported) and runs a Job on it."""
    from kubernetes import client

    batch, core = client.BatchV1Api(api), client.CoreV1Api(api)
    # something running while the node stops: a container the drain has to end
    sleeper = _pod_spec(real_node, base_image, "import time; time.sleep(600)")
    core.create_namespaced_pod(kube_namespace, {"metadata": {"name": "sleeper"}, "spec": sleeper})
    _wait("Running", lambda: core.read_namespaced_pod("sleeper", kube_namespace).status.phase == "Running",
          describe=lambda: _describe_pods(core, kube_namespace, real_node))
    run_dir, cgroup_root = real_node.run_dir, real_node.cgroup_root
    pids = {name: p.pid for name, p in real_node.processes.items()}
    assert Path("/proc", str(pids["kubelet"])).exists()

    real_node.stop()

    assert real_node.leftovers() == []
    assert not os.path.exists("/run/containerd")
    assert not os.path.exists("/var/lib/kubelet/device-plugins")
    assert not os.path.exists("/var/log/containers")
    assert [d for d in _kubepods_dirs() if d.name == cgroup_root.lstrip("/")] == []
    assert [p for p in (CGROUP_FS / "memory").iterdir() if p.name == "kubepods"] == []
    assert not any(Path("/proc", str(pid)).exists() for pid in pids.values()), pids
    needle = str(run_dir).encode()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                assert needle not in Path("/proc", entry, "cmdline").read_bytes(), entry
            except FileNotFoundError:
                pass
    assert str(run_dir) not in Path("/proc/self/mountinfo").read_text()
    with pytest.raises(client.ApiException) as gone:
        core.read_node(real_node.name)
    assert gone.value.status == 404

    real_node.start()

    assert base_image in real_node.list_images()
    name = f"again-{uuid.uuid4().hex[:6]}"
    batch.create_namespaced_job(kube_namespace, _job(name, _pod_spec(real_node, base_image, "print('again')")))
    cond = _wait("Complete or Failed", lambda: _job_finished(batch, kube_namespace, name),
                 describe=lambda: _describe_pods(core, kube_namespace, real_node))
    assert cond.type == "Complete"
