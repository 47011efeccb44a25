"""What the JobBackend contract suite needs from each adapter: the backend under
test in a fresh namespace, Job manifests for the suite's scenarios (rendered by
``spikebatch.domain.manifest``), the log lines every job prints, and a way to look
behind the backend (the admin API, or the local state folder) to check effects the
backend itself no longer reports (pods gone after a delete).

Imported by ``test_job_backend.py``; not a conftest, so it adds no fixtures anywhere
else.
"""
from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from spikebatch.domain.manifest import render_job_manifest
from spikebatch.domain.models import ClusterProfile, ContainerSpec, JobSpec, ResourceSpec
from spikebatch.domain.naming import new_run_id

from infra.testenv import FAIL_LABEL, POD_LOG_LINES

ADAPTERS = ("kubernetes", "kubectl", "local")
CLUSTER_ADAPTERS = ("kubernetes", "kubectl")
#: Longest a scenario may take to reach its end state (the failing Job needs the job
#: controller's 10 s back-off between its two pods).
JOB_TIMEOUT = 120.0


def printing_command(lines: list[str], exit_code: int = 0, pause: float = 0.2) -> list[str]:
    """A command printing ``lines`` with pauses (so a followed log is really followed),
    then exiting with ``exit_code``. On the cluster kwok ignores it and serves its
    own log file, which holds the same lines."""
    code = ("import sys, time\n"
            f"for line in {lines!r}:\n"
            "    print(line, flush=True)\n"
            f"    time.sleep({pause})\n"
            f"sys.exit({exit_code})\n")
    return ["python", "-c", code]


@dataclass
class Harness:
    adapter: str
    backend: Any
    namespace: str
    #: Lines every pod's log shows.
    log_lines: list[str] = field(default_factory=lambda: list(POD_LOG_LINES))
    #: The KubeCluster (cluster adapters only).
    cluster: Any = None
    #: Local adapter: the state root shared by every backend object of the test.
    state_root: Optional[Path] = None
    run_id: str = field(default_factory=new_run_id)

    @property
    def on_cluster(self) -> bool:
        return self.adapter in CLUSTER_ADAPTERS

    def name(self, prefix: str) -> str:
        return f"{prefix}-{uuid.uuid4().hex[:6]}"

    def job(self, name: str, *, outcome: str = "succeed", backoff_limit: int = 0,
            labels: Optional[dict[str, str]] = None, run_id: Optional[str] = None,
            command: Optional[list[str]] = None, deadline: Optional[int] = None) -> dict[str, Any]:
        """A batch/v1 Job whose pods ``outcome``: "succeed", "fail" (every attempt),
        "pending" (never start: unschedulable on the cluster, suspended locally) or
        "suspended" (spec.suspend on every adapter)."""
        pod_labels = dict(labels or {})
        if outcome == "fail":
            pod_labels[FAIL_LABEL[0]] = FAIL_LABEL[1]  # kwok fails pods carrying it
        node_selector: dict[str, str] = {}
        if outcome == "pending" and self.on_cluster:
            node_selector = dict(self.cluster.pending_node_selector)
        spec = JobSpec(
            name_prefix=name, namespace=self.namespace, labels=pod_labels, backoff_limit=backoff_limit,
            active_deadline_seconds=deadline,
            container=ContainerSpec(
                image="python:3.11-slim",
                command=command or printing_command(self.log_lines, exit_code=3 if outcome == "fail" else 0)),
            resources=ResourceSpec(requests_cpu="100m", limits_cpu="100m", requests_memory="64Mi",
                                   limits_memory="64Mi", node_selector=node_selector),
        )
        profile = ClusterProfile(name="contract", namespace=self.namespace)
        manifest = render_job_manifest(name, spec, profile, run_id or self.run_id)
        if outcome == "suspended" or (outcome == "pending" and not self.on_cluster):
            manifest["spec"]["suspend"] = True
        return manifest

    # ------------------------------------------------------------------ behind the backend
    def remaining_pods(self, job_name: str) -> list[str]:
        """Pods (cluster) or live processes (local) the deleted Job left behind."""
        if self.on_cluster:
            from kubernetes import client

            with self.cluster.admin_api() as api:
                pods = client.CoreV1Api(api).list_namespaced_pod(self.namespace, label_selector=f"job-name={job_name}")
            return [p.metadata.name for p in pods.items]
        return []  # the local Job folder, with its pod records, is gone with the Job

    def admin_patch_job(self, job_name: str, patch: dict[str, Any]) -> None:
        """Change a Job behind the backend's back (the admin API)."""
        from kubernetes import client

        with self.cluster.admin_api() as api:
            client.BatchV1Api(api).patch_namespaced_job(job_name, self.namespace, patch)


def wait_for(predicate: Callable[[], Any], timeout: float, what: str, interval: float = 0.25) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(interval)


def make_backend(adapter: str, namespace: str, *, kubeconfig: Optional[str] = None,
                 state_root: Optional[Path] = None) -> Any:
    if adapter == "kubernetes":
        from spikebatch.adapters.kubernetes.backend import KubernetesBatchJobBackend

        backend = KubernetesBatchJobBackend(namespace=namespace, kubeconfig=kubeconfig, use_kubectl_fallback=False)
        assert backend.fallback is None, "the client configuration did not load"
        return backend
    if adapter == "kubectl":
        from spikebatch.adapters.kubectl.backend import KubectlBackend

        return KubectlBackend(namespace=namespace, kubeconfig=kubeconfig)
    if adapter == "local":
        from spikebatch.adapters.local.backend import LocalProcessBackend

        return LocalProcessBackend(namespace=namespace, state_dir=state_root)
    raise ValueError(adapter)
