"""KubernetesBatchJobBackend: the JobBackend on the official ``kubernetes`` client.

Objects are read as the API server's JSON (``_preload_content=False``): the same
camelCase dicts kubectl prints and the local backend writes, so one state derivation
(``domain.job_state``) serves all three adapters, and no time goes into building
model objects for lists of hundreds of Jobs.

``watch`` lists once, then watches from the list's resourceVersion: the API server
pushes changes, so waiting for N Jobs costs a handful of requests, not N x polls.
A dropped connection resumes from the last resourceVersion seen (bookmarks keep it
fresh); 410 Gone (that version is compacted away, e.g. after an API-server restart)
relists and reports what changed meanwhile.

A batch's status reads everything of a run in two lists (``run_objects``: its Jobs,
its pods, by the run-id label), whatever the number of recordings.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

from ...domain.errors import BackendAuthError, BackendError, BackendUnavailableError, JobNotFoundError
from ...domain.job_report import JobReport, report_job
from ...domain.job_state import job_state_of
from ...domain.naming import RUN_ID_LABEL
from ...ports.backend import JobEvent, JobInfo, JobState, ManifestInput
from ..jobs.manifest import MAX_JOB_BYTES, check_job_size, prepare_job_manifest
from ..jobs.objects import container_name, job_info, label_selector, pod_selector, sorted_by_creation
from ..jobs.pod_logs import PodLogStream, job_log_lines
from ..kubectl.backend import KubectlBackend
from .api_client import ClientConfigMissing, kubeconfig_exists, load_api_client, server_host
from .api_errors import is_unreachable, map_api_error, unavailable
from .job_watch import watch_jobs
from .response_lines import response_lines
from .server_version import parse_server_version

JOBS = "jobs.batch"
PODS = "pods"
VERSION = "the server version (/version)"


class KubernetesBatchJobBackend:
    """Backend wrapper around the Kubernetes client with kubectl fallback.

    When no client configuration loads (no kubeconfig, not in a cluster, or one the
    client cannot read) and ``use_kubectl_fallback`` is true and kubectl is on PATH,
    every operation goes through :class:`KubectlBackend` instead (``self.fallback``).
    """

    #: (connect, read) seconds for ordinary requests.
    request_timeout: tuple[float, float] = (10.0, 60.0)
    #: Longest a watch keeps retrying an unreachable API server before giving up.
    watch_reconnect_grace_seconds: float = 120.0
    #: Server-side length of one watch connection (then it is renewed).
    watch_chunk_seconds: int = 300
    #: The largest Job (JSON bytes) sent to the API server; a larger one is refused
    #: before any request (see ``jobs.manifest.MAX_JOB_BYTES``). None: the server judges.
    max_job_bytes: Optional[int] = MAX_JOB_BYTES

    def __init__(self, namespace: str = "default", kubeconfig: Optional[str] = None,
                 use_kubectl_fallback: bool = True) -> None:
        self.namespace = namespace
        #: The spec's constructor arguments, kept as they were given.
        self.kubeconfig, self.use_kubectl_fallback = kubeconfig, use_kubectl_fallback
        # Nothing is read or contacted here (as the reference's backend: it builds
        # without a cluster); the configuration loads at the first call that needs it.
        self._connection: Optional[_Connection] = None

    def _connected(self) -> "_Connection":
        """The client (or the kubectl fallback) for this backend, loaded on first use.
        A configuration that does not load raises BackendUnavailableError each call."""
        if self._connection is None:
            self._connection = _connect(self.namespace, self.kubeconfig, self.use_kubectl_fallback)
        return self._connection

    @property
    def fallback(self) -> Any:
        """The KubectlBackend every call goes through when no client configuration
        loaded (None when the client is used)."""
        return self._connected().fallback

    @property
    def fallback_reason(self) -> Optional[str]:
        return self._connected().fallback_reason

    @property
    def api_client(self) -> Any:
        return self._connected().api_client

    @property
    def host(self) -> Optional[str]:
        return self._connected().host

    @property
    def _batch(self) -> Any:
        return self._connected().batch

    @property
    def _core(self) -> Any:
        return self._connected().core

    # ------------------------------------------------------------------ plumbing
    @property
    def request_count(self) -> int:
        """HTTP requests made so far (kubectl invocations when on the fallback); 0
        before the first call."""
        if self._connection is None:
            return 0
        if self.fallback is not None:
            return self.fallback.request_count
        return self.api_client.request_count

    @property
    def requests_by_kind(self) -> dict[str, int]:
        if self._connection is None:
            return {}
        if self.fallback is not None:
            return dict(self.fallback.requests_by_kind)
        return dict(self.api_client.requests_by_kind)

    def close(self) -> None:
        if self._connection is not None and self._connection.api_client is not None:
            self._connection.api_client.close()

    def __enter__(self) -> "KubernetesBatchJobBackend":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _raw(self, fn: Callable[..., Any], *args: Any, verb: str, resource: str,
             name: Optional[str] = None, **kwargs: Any) -> Any:
        """Call one client method; the urllib3 response (unread), or a mapped error."""
        from kubernetes.client.exceptions import ApiException

        kwargs.setdefault("_request_timeout", self.request_timeout)
        try:
            return fn(*args, _preload_content=False, **kwargs)
        except ApiException as exc:
            raise map_api_error(exc, verb=verb, resource=resource, namespace=self.namespace,
                                   host=self.host, name=name) from exc
        except Exception as exc:
            if is_unreachable(exc):
                raise unavailable(self.host, exc) from exc
            raise

    def _json(self, fn: Callable[..., Any], *args: Any, verb: str, resource: str,
              name: Optional[str] = None, **kwargs: Any) -> dict[str, Any]:
        resp = self._raw(fn, *args, verb=verb, resource=resource, name=name, **kwargs)
        try:
            data = resp.data
        finally:
            resp.release_conn()
        try:
            return json.loads(data)
        except ValueError as exc:
            raise BackendError(f"the API server at {self.host} answered {verb} {resource} with "
                               "something that is not JSON") from exc

    def _read_job(self, job_name: str) -> dict[str, Any]:
        return self._json(self._batch.read_namespaced_job, job_name, self.namespace,
                          verb="get", resource=JOBS, name=job_name)

    def _job_pods(self, job_name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        """The Job and its pods, oldest first."""
        job = self._read_job(job_name)
        pods = self._json(self._core.list_namespaced_pod, self.namespace, label_selector=pod_selector(job),
                          verb="list", resource=PODS)
        return job, sorted_by_creation(pods.get("items") or [])

    # ------------------------------------------------------------------ port
    # Parameter names as the reference's (manifest_path_or_str, name), so keyword calls port.
    def apply_manifest(self, manifest_path_or_str: ManifestInput, dry_run: bool = False) -> str:
        """Create the Job from a YAML file path, YAML text or a dict; return its name."""
        if self.fallback is not None:
            return self.fallback.apply_manifest(manifest_path_or_str, dry_run=dry_run)
        body = prepare_job_manifest(manifest_path_or_str, self.namespace)
        name = body["metadata"].get("name") or body["metadata"].get("generateName")
        check_job_size(body, self.max_job_bytes, target=f"{JOBS} {name!r}", where=f"in namespace {self.namespace!r}")
        # dryRun=All: the API server validates, admits and authorises, and stores nothing.
        extra = {"dry_run": "All"} if dry_run else {}
        created = self._json(self._batch.create_namespaced_job, self.namespace, body,
                             verb="create", resource=JOBS, name=name, **extra)
        return created["metadata"]["name"]

    def job_status(self, name: str) -> JobState:
        """"Pending", "Running", "Complete", "Failed" or "Unknown" (a str enum)."""
        if self.fallback is not None:
            return self.fallback.job_status(name)
        return job_state_of(self._read_job(name))

    def job_report(self, job_name: str) -> JobReport:
        if self.fallback is not None:
            return self.fallback.job_report(job_name)
        return report_job(*self._job_pods(job_name))

    def pods_for_job(self, job_name: str) -> list[str]:
        if self.fallback is not None:
            return self.fallback.pods_for_job(job_name)
        return [p["metadata"]["name"] for p in self._job_pods(job_name)[1]]

    def stream_logs(self, pod_name: str, follow: bool = True) -> Iterator[str]:
        if self.fallback is not None:
            return self.fallback.stream_logs(pod_name, follow=follow)
        # The pod is read now: a name that is not a pod is an error of this call.
        pod = self._json(self._core.read_namespaced_pod, pod_name, self.namespace,
                         verb="get", resource=PODS, name=pod_name)
        return self._pod_stream(pod).lines() if follow else self._read_log(pod)

    def stream_job_logs(self, job_name: str, follow: bool = False) -> Iterator[str]:
        if self.fallback is not None:
            yield from self.fallback.stream_job_logs(job_name, follow=follow)
            return
        yield from job_log_lines(
            lambda: self._job_pods(job_name), self._read_log, lambda pod: self._pod_stream(pod).lines(), follow
        )

    def _read_log(self, pod: Mapping[str, Any]) -> Iterator[str]:
        name = pod["metadata"]["name"]
        try:
            resp = self._raw(self._core.read_namespaced_pod_log, name, self.namespace,
                             container=container_name(pod), verb="get", resource="pods/log", name=name)
        except (BackendAuthError, BackendUnavailableError):
            raise  # no right to read logs, or no server: the caller must know
        except BackendError:
            # 400 "container ... is waiting to start", 404 the pod went meanwhile:
            # this pod has no log to give.
            return
        try:
            text = resp.data.decode("utf-8", errors="replace")
        finally:
            resp.release_conn()
        yield from text.splitlines()

    def _pod_stream(self, pod: Mapping[str, Any]) -> PodLogStream:
        name, container = pod["metadata"]["name"], container_name(pod)

        def open_log(follow: bool, since: Optional[int]) -> Any:
            kwargs: dict[str, Any] = {"container": container, "timestamps": True, "follow": follow}
            if since:
                kwargs["since_seconds"] = since
            if follow:
                # A silent container is normal: liveness is checked aside, and a read
                # timeout only makes PodLogStream reconnect where it left off.
                kwargs["_request_timeout"] = (10.0, 3600.0)
            return response_lines(self._raw(self._core.read_namespaced_pod_log, name, self.namespace,
                                            verb="get", resource="pods/log", name=name, **kwargs))

        def read_pod() -> Optional[dict]:
            try:
                return self._json(self._core.read_namespaced_pod, name, self.namespace,
                                  verb="get", resource=PODS, name=name)
            except JobNotFoundError:
                return None

        return PodLogStream(open_log, read_pod,
                            lambda e: is_unreachable(e) or isinstance(e, BackendUnavailableError))

    def delete_job(self, name: str) -> bool:
        """Delete the Job and its pods; True if it existed, False (no error) if not."""
        if self.fallback is not None:
            return self.fallback.delete_job(name)
        try:
            self._json(self._batch.delete_namespaced_job, name, self.namespace,
                       propagation_policy="Background", verb="delete", resource=JOBS, name=name)
        except JobNotFoundError:
            return False
        return True

    def list_jobs(self, labels: Optional[Mapping[str, str]] = None) -> list[JobInfo]:
        if self.fallback is not None:
            return self.fallback.list_jobs(labels)
        data = self._json(self._batch.list_namespaced_job, self.namespace,
                          label_selector=label_selector(labels), verb="list", resource=JOBS)
        infos = [job_info(j, self.namespace) for j in data.get("items") or []]
        return sorted(infos, key=lambda i: (i.created_at is None, i.created_at, i.name))

    def watch(self, job_names: Optional[Iterable[str]] = None,
              label_selector: Optional[Mapping[str, str]] = None,
              timeout_seconds: Optional[float] = None, progress: bool = False) -> Iterator[JobEvent]:
        if self.fallback is not None:
            yield from self.fallback.watch(job_names, label_selector, timeout_seconds, progress=progress)
            return
        yield from watch_jobs(self, job_names, label_selector, timeout_seconds, progress=progress)

    def server_version(self) -> Optional[tuple[int, int]]:
        if self.fallback is not None:
            return self.fallback.server_version()
        from kubernetes import client

        info = self._json(client.VersionApi(self.api_client).get_code, verb="get", resource=VERSION)
        try:
            return parse_server_version(info)
        except ValueError as exc:
            raise BackendError(f"the API server at {self.host}: {exc}") from exc

    def run_objects(self, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        if self.fallback is not None:
            return self.fallback.run_objects(run_id)
        # One list each, not a get per Job or per pod: a 200-recording batch costs the
        # API server two requests. No pagination either (``limit``/``continue``), so the
        # two lists are two consistent snapshots.
        selector = label_selector({RUN_ID_LABEL: run_id})
        jobs = self._json(self._batch.list_namespaced_job, self.namespace, label_selector=selector,
                          verb="list", resource=JOBS)
        pods = self._json(self._core.list_namespaced_pod, self.namespace, label_selector=selector,
                          verb="list", resource=PODS)
        return (list_items(jobs, "batch/v1", "Job"), list_items(pods, "v1", "Pod"))


@dataclass
class _Connection:
    """What the first call of a KubernetesBatchJobBackend loads: the client and its
    two APIs, or the kubectl fallback (and why)."""

    api_client: Any = None
    batch: Any = None
    core: Any = None
    host: Optional[str] = None
    fallback: Any = None
    fallback_reason: Optional[str] = None


def _connect(namespace: str, kubeconfig: Optional[str], use_kubectl_fallback: bool) -> _Connection:
    if not kubeconfig_exists(kubeconfig):
        # A path that names nothing is a typo, not a reason to try kubectl instead.
        raise BackendUnavailableError(f"kubeconfig {kubeconfig!r} does not exist; pass the path of an existing "
                                      "kubeconfig file (or kubeconfig=None for $KUBECONFIG / ~/.kube/config)")
    try:
        api_client = load_api_client(kubeconfig)
    except ClientConfigMissing as exc:
        if use_kubectl_fallback and shutil.which("kubectl"):
            return _Connection(fallback=KubectlBackend(namespace=namespace, kubeconfig=kubeconfig),
                               fallback_reason=str(exc))
        hint = ("; install kubectl or give a kubeconfig" if use_kubectl_fallback
                else " (kubectl fallback disabled); give a kubeconfig that loads")
        raise BackendUnavailableError(f"no Kubernetes client configuration: {exc}{hint}") from exc
    from kubernetes import client

    return _Connection(api_client=api_client, batch=client.BatchV1Api(api_client),
                       core=client.CoreV1Api(api_client), host=server_host(api_client))


def list_items(listed: Mapping[str, Any], api_version: str, kind: str) -> list[dict[str, Any]]:
    """A list response's items, oldest first, each with its ``apiVersion`` and ``kind``:
    the API server leaves those out of list items, kubectl puts them back; filled here
    too, both adapters hand out the same dicts."""
    items = []
    for item in sorted_by_creation(listed.get("items") or []):
        item = dict(item)
        item.setdefault("apiVersion", api_version)
        item.setdefault("kind", kind)
        items.append(item)
    return items
