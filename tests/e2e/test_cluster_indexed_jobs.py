"""A sorting batch as one Indexed Job against the test control plane: the real job
controller runs its per-index retries, pod failure policy and index lists, and kwok
plays the pods (every index succeeds except the chosen ones of the
fail-chosen-indexes stage, see ``infra.testenv.fail_chosen_indexes_stage``).

Checked from both cluster adapters: the watch of a 200-index Job costs the same
couple of requests as the watch of a 4-index one, ``run_objects`` is two requests for
200 pods, and what it returns, fed to ``report_batch``, says which recordings failed,
after how many attempts and why, exactly as the Job's ``status.failedIndexes`` does.
"""
from __future__ import annotations

import threading
from typing import Any, Optional

import pytest

from spikebatch.adapters.kubectl.backend import KubectlBackend
from spikebatch.adapters.kubernetes.backend import KubernetesBatchJobBackend
from spikebatch.adapters.kubernetes.server_version import parse_server_version
from spikebatch.domain.batch import (
    COMPLETION_INDEX_LABEL,
    BatchDescription,
    BatchRecording,
    format_index_ranges,
    indexed_job,
)
from spikebatch.domain.batch_report import FAILED, SUCCEEDED, report_batch
from spikebatch.domain.manifest import render_job_manifest
from spikebatch.domain.models import ClusterProfile, ContainerSpec, JobSpec, ResourceSpec
from spikebatch.domain.naming import RUN_ID_LABEL, new_run_id
from spikebatch.errors import BackendUnavailableError
from spikebatch.ports.backend import JobState

from contract.backend_harness import make_backend, wait_for
from infra.processes import free_port
from infra.testenv import (
    FAIL_CHOSEN_INDEXES_LABEL,
    FAIL_INDEXES_EXIT_1,
    FAIL_INDEXES_EXIT_2,
    FAIL_INDEXES_EXIT_2_MESSAGE,
    FAIL_INDEXES_MESSAGE,
)

COMPLETIONS = 200
#: Pods at once: four waves over the 200 indexes, a quarter of the load of all at once
#: on a shared 2-core machine, still well inside the time the failing indexes' 10 s
#: per-index back-off takes anyway.
PARALLELISM = 50
#: One retry per index: the exit-1 indexes take 2 attempts with the job controller's
#: 10 s back-off between them (each more retry doubles that).
RETRIES_PER_INDEX = 1
#: More than the 4 chosen failures: the Job runs every index, then fails with
#: FailedIndexes (not MaxFailedIndexesExceeded).
MAX_FAILED_INDEXES = 10
WATCH_TIMEOUT = 150.0


def _batch_job(namespace: str, run_id: str, name: str, completions: int, *, fail_chosen: bool) -> dict[str, Any]:
    """A batch Job as the product renders one: render_job_manifest, then indexed_job."""
    labels = {FAIL_CHOSEN_INDEXES_LABEL[0]: FAIL_CHOSEN_INDEXES_LABEL[1]} if fail_chosen else {}
    spec = JobSpec(
        name_prefix=name, namespace=namespace, labels=labels, backoff_limit=0,
        container=ContainerSpec(image="python:3.11-slim", command=["python", "-c", "print('kwok runs nothing')"]),
        resources=ResourceSpec(requests_cpu="100m", limits_cpu="100m", requests_memory="64Mi",
                               limits_memory="64Mi"),
    )
    manifest = render_job_manifest(name, spec, ClusterProfile(name="indexed", namespace=namespace), run_id)
    # MAX_FAILED_INDEXES is above the small Job's 4 completions, which the API server
    # refuses: indexed_job caps it at the batch's size.
    return indexed_job(manifest, recording_indexes=list(range(completions)), parallelism=PARALLELISM,
                       retries_per_index=RETRIES_PER_INDEX, max_failed_indexes=MAX_FAILED_INDEXES)


def _description(run_id: str, completions: int) -> BatchDescription:
    return BatchDescription(
        run_id=run_id, sorter="kilosort4", output_prefix="s3://unused/out/", logs_prefix="s3://unused/logs/",
        parallelism=PARALLELISM, retries_per_recording=RETRIES_PER_INDEX, max_failed_recordings=MAX_FAILED_INDEXES,
        recordings=[BatchRecording(index=i, name=f"rec{i:03d}", size=0, sha256="0" * 64, cache_key="0" * 64)
                    for i in range(completions)])


class WatchInThread:
    """``backend.watch(progress=True)`` of one Job, consumed in a thread: the events and
    the requests (HTTP requests or kubectl processes) the watch alone cost."""

    def __init__(self, backend: Any, job_name: str) -> None:
        self.backend, self.job_name = backend, job_name
        self.events: list = []
        self.requests = 0
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, name=f"watch-{job_name}", daemon=True)

    def _run(self) -> None:
        before = self.backend.request_count
        try:
            self.events = list(self.backend.watch(job_names=[self.job_name], timeout_seconds=WATCH_TIMEOUT,
                                                  progress=True))
        except BaseException as exc:  # handed to the test thread by result()
            self.error = exc
        self.requests = self.backend.request_count - before

    def start(self) -> "WatchInThread":
        self.thread.start()
        return self

    def result(self) -> list:
        self.thread.join(WATCH_TIMEOUT + 30)
        assert not self.thread.is_alive(), f"the watch of {self.job_name} did not end"
        if self.error is not None:
            raise self.error
        return self.events


def _admin_read_job(cluster: Any, namespace: str, name: str) -> dict[str, Any]:
    """The Job as the admin reads it (behind the backends, whose requests are counted)."""
    from kubernetes import client

    with cluster.admin_api() as api:
        return client.BatchV1Api(api).read_namespaced_job(name, namespace, _preload_content=False).json()


def _has_condition(job: dict[str, Any], kind: str) -> bool:
    return any(c.get("type") == kind and c.get("status") == "True" for c in job["status"].get("conditions") or ())


def _expected_version(version: str) -> tuple[int, int]:
    major, minor = version.lstrip("v").split(".")[:2]
    return int(major), int(minor)


@pytest.fixture
def cluster_backends(kube_cluster, kube_namespace):
    kube_cluster.require("fail_label")  # the kwok stages exist on the built-in control plane only
    client = make_backend("kubernetes", kube_namespace, kubeconfig=kube_cluster.admin_kubeconfig)
    # A second client backend for the small Job's watch: its own request counter.
    small_client = make_backend("kubernetes", kube_namespace, kubeconfig=kube_cluster.admin_kubeconfig)
    kubectl = make_backend("kubectl", kube_namespace, kubeconfig=kube_cluster.admin_kubeconfig)
    yield client, small_client, kubectl
    client.close()
    small_client.close()


@pytest.mark.integration
def test_a_200_index_batch_fails_exactly_the_chosen_indexes(kube_cluster, kube_namespace, cluster_backends) -> None:
    client, small_client, kubectl = cluster_backends
    expected_version = _expected_version(kube_cluster.version)
    assert client.server_version() == expected_version == (1, 37)
    assert kubectl.server_version() == expected_version

    run_id = new_run_id()
    big = client.apply_manifest(_batch_job(kube_namespace, run_id, "batch-200", COMPLETIONS, fail_chosen=True))
    small = client.apply_manifest(_batch_job(kube_namespace, new_run_id(), "batch-4", 4, fail_chosen=False))
    # Three watches at once: the big Job by the client and by kubectl, the small one by
    # a second client; what each cost is counted on its own backend.
    watches = {"client": WatchInThread(client, big).start(), "kubectl": WatchInThread(kubectl, big).start(),
               "small": WatchInThread(small_client, small).start()}
    events = {key: watch.result() for key, watch in watches.items()}
    requests = {key: watch.requests for key, watch in watches.items()}
    print(f"\nwatch requests: {requests}; events: { {k: len(v) for k, v in events.items()} }")

    failed = sorted(int(i) for i in FAIL_INDEXES_EXIT_1 + FAIL_INDEXES_EXIT_2)
    succeeded = [i for i in range(COMPLETIONS) if i not in failed]
    for key in ("client", "kubectl"):
        last = events[key][-1]
        assert last.state is JobState.FAILED and "FailedIndexes" in last.message, (key, last)
        assert last.progress is not None
        assert last.progress.failed_indexes == format_index_ranges(failed), key
        assert last.progress.completed_indexes == format_index_ranges(succeeded), key
        assert last.progress.succeeded == len(succeeded), key
        # Every event carries progress, and there are more of them than requests: the
        # live view's counts come over the one watch connection.
        assert all(e.progress is not None for e in events[key]), key
        assert len(events[key]) > requests[key], (key, len(events[key]), requests[key])
        assert max(e.progress.active for e in events[key]) <= PARALLELISM, key
    assert events["small"][-1].state is JobState.COMPLETE
    assert events["small"][-1].progress.completed_indexes == "0-3"
    # Constant in N: one list and one watch connection (HTTP requests, or kubectl
    # processes), for 200 indexes as for 4.
    assert requests["client"] <= 3 and requests["client"] <= requests["small"] + 1, requests
    assert requests["kubectl"] <= 3, requests

    # The watch ends at the controller's first word (FailureTarget); the pod counts in
    # status are final once it has added Failed, after the pods' finalizers are gone.
    wait_for(lambda: _has_condition(_admin_read_job(kube_cluster, kube_namespace, big), "Failed"),
             timeout=60, what=f"the Failed condition of {big}")

    # Everything of the run in two requests, from either adapter.
    before = client.request_count
    jobs, pods = client.run_objects(run_id)
    assert client.request_count - before == 2
    before = kubectl.request_count
    kubectl_jobs, kubectl_pods = kubectl.run_objects(run_id)
    assert kubectl.request_count - before == 2
    assert [j["metadata"]["name"] for j in jobs] == [big]  # the small Job is another run's
    assert [j["metadata"]["uid"] for j in kubectl_jobs] == [j["metadata"]["uid"] for j in jobs]
    assert sorted(p["metadata"]["uid"] for p in kubectl_pods) == sorted(p["metadata"]["uid"] for p in pods)
    exit_1 = [int(i) for i in FAIL_INDEXES_EXIT_1]
    assert len(pods) == COMPLETIONS + len(exit_1) * RETRIES_PER_INDEX
    assert all(p["kind"] == "Pod" and p["metadata"]["labels"][RUN_ID_LABEL] == run_id for p in pods)
    assert jobs[0]["kind"] == "Job" and jobs[0]["apiVersion"] == "batch/v1"
    created = [p["metadata"]["creationTimestamp"] for p in pods]
    assert created == sorted(created)

    [job] = jobs
    assert job["status"]["failedIndexes"] == format_index_ranges(failed)
    assert job["status"]["completedIndexes"] == format_index_ranges(succeeded)
    assert job["status"]["failed"] == len(exit_1) * (RETRIES_PER_INDEX + 1) + len(FAIL_INDEXES_EXIT_2)

    for source_jobs, source_pods in ((jobs, pods), (kubectl_jobs, kubectl_pods)):
        report = report_batch(_description(run_id, COMPLETIONS), source_jobs, source_pods, {}, {})
        rows = {row.index: row for row in report.rows}
        assert report.state == "Failed" and report.job_names == [big]
        for index in exit_1:
            row = rows[index]
            assert (row.state, row.attempts, row.reason, row.exit_code, row.message) == (
                FAILED, RETRIES_PER_INDEX + 1, "Error", 1, FAIL_INDEXES_MESSAGE), row
        for index in (int(i) for i in FAIL_INDEXES_EXIT_2):
            row = rows[index]
            # FailIndex on the bad-input exit code: no retry for it.
            assert (row.state, row.attempts, row.reason, row.exit_code, row.message) == (
                FAILED, 1, "Error", 2, FAIL_INDEXES_EXIT_2_MESSAGE), row
        for index in succeeded:
            assert (rows[index].state, rows[index].attempts) == (SUCCEEDED, 1), rows[index]
        assert sorted(r.index for r in report.to_retry()) == failed

    # Each failed attempt is its own pod, carrying its completion index as a label.
    attempts_per_index: dict[int, int] = {}
    for pod in pods:
        index = int(pod["metadata"]["labels"][COMPLETION_INDEX_LABEL])
        attempts_per_index[index] = attempts_per_index.get(index, 0) + 1
    assert {i for i, n in attempts_per_index.items() if n > 1} == set(exit_1)


def test_server_version_reads_decorated_releases() -> None:
    assert parse_server_version({"major": "1", "minor": "37", "gitVersion": "v1.37.2"}) == (1, 37)
    assert parse_server_version({"major": "1", "minor": "33+", "gitVersion": "v1.33.2-gke.1200"}) == (1, 33)
    # Builds that leave major/minor empty: the git version says it.
    assert parse_server_version({"major": "", "minor": "", "gitVersion": "v1.32.4-eks-abc"}) == (1, 32)
    with pytest.raises(ValueError, match="names no release"):
        parse_server_version({"major": "", "minor": "", "gitVersion": "$Format:%H$"})


@pytest.mark.parametrize("adapter", ["kubernetes", "kubectl"])
def test_server_version_of_an_unreachable_server_is_unavailable(adapter, tmp_path) -> None:
    from infra.testenv import write_kubeconfig

    # Nothing listens on a port just freed: the connection is refused at once.
    kubeconfig = write_kubeconfig(tmp_path / "dead.kubeconfig", server=f"https://127.0.0.1:{free_port()}",
                                  ca_file=tmp_path / "no-ca.crt", user="nobody", token="t")
    text = kubeconfig.read_text().replace("certificate-authority: " + str(tmp_path / "no-ca.crt"),
                                          "insecure-skip-tls-verify: true")
    kubeconfig.write_text(text)
    backend = (KubernetesBatchJobBackend(namespace="x", kubeconfig=str(kubeconfig), use_kubectl_fallback=False)
               if adapter == "kubernetes" else KubectlBackend(namespace="x", kubeconfig=str(kubeconfig)))
    with pytest.raises(BackendUnavailableError):
        backend.server_version()
