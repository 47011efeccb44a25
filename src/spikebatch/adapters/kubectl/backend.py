"""KubectlBackend: the JobBackend on the ``kubectl`` binary (argument lists only,
never a shell). Every object is read as ``-o json``, so the state derivation is the
same as the client adapter's; errors are read from kubectl's "Error from server
(<Reason>): ..." lines. The watch runs ``kubectl get jobs --watch
--output-watch-events -o json`` and, when that process ends (the API server went
away, a connection dropped), lists again and starts a new one. A run's objects
(``run_objects``) are two ``kubectl get -l spikebatch.io/run-id=...`` calls.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from collections import Counter
from typing import Any, Iterable, Iterator, Mapping, Optional

from ...domain.errors import BackendAuthError, BackendError, BackendUnavailableError, JobNotFoundError
from ...domain.job_report import JobReport, report_job
from ...domain.job_state import job_state_of
from ...domain.naming import RUN_ID_LABEL
from ...ports.backend import JobEvent, JobInfo, JobState, ManifestInput
from ..jobs.manifest import MAX_JOB_BYTES, check_job_size, prepare_job_manifest
from ..jobs.objects import container_name, job_info, label_selector, pod_selector, sorted_by_creation
from ..jobs.pod_logs import PodLogStream, job_log_lines
from ..kubernetes.server_version import parse_server_version
from .errors import error_from_stderr
from .job_watch import watch_jobs

JOBS = "jobs.batch"


class KubectlBackend:
    """Jobs through ``kubectl``. ``request_count`` counts kubectl invocations."""

    #: Seconds one ordinary kubectl call may take.
    timeout_seconds: float = 60.0
    #: Longest a watch keeps restarting kubectl against an unreachable API server.
    watch_reconnect_grace_seconds: float = 120.0
    #: The largest Job (JSON bytes) handed to kubectl; a larger one is refused before
    #: kubectl runs (see ``jobs.manifest.MAX_JOB_BYTES``). None: the server judges.
    max_job_bytes: Optional[int] = MAX_JOB_BYTES

    def __init__(self, namespace: str = "default", kubeconfig: Optional[str] = None, kubectl: str = "kubectl") -> None:
        self.namespace = namespace
        self.kubeconfig = kubeconfig
        found = shutil.which(kubectl)
        if found is None:
            raise BackendUnavailableError(f"kubectl ({kubectl!r}) is not on PATH; install kubectl or use "
                                          "the kubernetes client backend")
        self.kubectl = found
        self.request_count = 0
        self.requests_by_kind: Counter[str] = Counter()

    # ------------------------------------------------------------------ plumbing
    def _argv(self, *args: str) -> list[str]:
        argv = [self.kubectl]
        if self.kubeconfig:
            argv += ["--kubeconfig", str(self.kubeconfig)]
        return argv + ["--namespace", self.namespace, *args]

    def _count(self, kind: str) -> None:
        self.request_count += 1
        self.requests_by_kind[kind] += 1

    def _run(self, args: list[str], *, verb: str, resource: str, name: Optional[str] = None,
             stdin: Optional[str] = None) -> str:
        self._count(verb)
        try:
            done = subprocess.run(self._argv(*args), input=stdin, capture_output=True, text=True,
                                  timeout=self.timeout_seconds)
        except subprocess.TimeoutExpired as exc:
            raise BackendUnavailableError(f"kubectl {verb} {resource} in namespace {self.namespace!r} took longer "
                                          f"than {self.timeout_seconds:.0f} s; is the API server reachable?") from exc
        except OSError as exc:
            raise BackendUnavailableError(f"cannot run kubectl ({self.kubectl}): {exc.strerror or exc}") from exc
        if done.returncode != 0:
            raise error_from_stderr(done.stderr, verb=verb, resource=resource, namespace=self.namespace, name=name)
        return done.stdout

    def _json(self, args: list[str], **kw: Any) -> dict[str, Any]:
        out = self._run([*args, "-o", "json"], **kw)
        try:
            return json.loads(out)
        except ValueError as exc:
            raise BackendError(f"kubectl {kw.get('verb')} {kw.get('resource')} printed something that is not "
                               "JSON") from exc

    def _read_job(self, job_name: str) -> dict[str, Any]:
        return self._json(["get", "job", job_name], verb="get", resource=JOBS, name=job_name)

    def _job_pods(self, job_name: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        job = self._read_job(job_name)
        pods = self._json(["get", "pods", "-l", pod_selector(job)], verb="list", resource="pods")
        return job, sorted_by_creation(pods.get("items") or [])

    # ------------------------------------------------------------------ port
    def apply_manifest(self, manifest: ManifestInput, dry_run: bool = False) -> str:
        body = prepare_job_manifest(manifest, self.namespace)
        name = body["metadata"].get("name") or body["metadata"].get("generateName")
        check_job_size(body, self.max_job_bytes, target=f"{JOBS} {name!r}", where=f"in namespace {self.namespace!r}")
        args = ["create", "-f", "-"] + (["--dry-run=server"] if dry_run else [])
        created = self._json(args, stdin=json.dumps(body), verb="create", resource=JOBS, name=name)
        return created["metadata"]["name"]

    def job_status(self, job_name: str) -> JobState:
        return job_state_of(self._read_job(job_name))

    def job_report(self, job_name: str) -> JobReport:
        return report_job(*self._job_pods(job_name))

    def pods_for_job(self, job_name: str) -> list[str]:
        return [p["metadata"]["name"] for p in self._job_pods(job_name)[1]]

    def stream_logs(self, pod_name: str, follow: bool = True) -> Iterator[str]:
        # The pod is read now: a name that is not a pod is an error of this call.
        pod = self._json(["get", "pod", pod_name], verb="get", resource="pods", name=pod_name)
        return self._pod_stream(pod).lines() if follow else self._read_log(pod)

    def stream_job_logs(self, job_name: str, follow: bool = False) -> Iterator[str]:
        yield from job_log_lines(
            lambda: self._job_pods(job_name), self._read_log, lambda pod: self._pod_stream(pod).lines(), follow
        )

    def _read_log(self, pod: Mapping[str, Any]) -> Iterator[str]:
        name = pod["metadata"]["name"]
        try:
            out = self._run(["logs", name, "-c", container_name(pod)], verb="get", resource="pods/log", name=name)
        except (BackendAuthError, BackendUnavailableError):
            raise  # no right to read logs, or no server: the caller must know
        except BackendError:
            # 400 "container ... is waiting to start", 404 the pod went meanwhile:
            # this pod has no log to give.
            return
        yield from out.splitlines()

    def _pod_stream(self, pod: Mapping[str, Any]) -> PodLogStream:
        name, container = pod["metadata"]["name"], container_name(pod)

        def open_log(follow: bool, since: Optional[int]) -> tuple[Iterator[str], Any]:
            args = ["logs", name, "-c", container, "--timestamps"]
            if follow:
                args.append("--follow")
            if since:
                args.append(f"--since={since}s")
            return self._stream_process(args, verb="get", resource="pods/log", name=name)

        def read_pod() -> Optional[dict]:
            try:
                return self._json(["get", "pod", name], verb="get", resource="pods", name=name)
            except JobNotFoundError:
                return None

        return PodLogStream(open_log, read_pod, lambda e: isinstance(e, BackendUnavailableError))

    def _stream_process(self, args: list[str], *, verb: str, resource: str,
                        name: Optional[str] = None) -> tuple[Iterator[str], Any]:
        """Start a long-running kubectl; (its stdout lines, a function that stops it).
        The lines end with a mapped BackendError when kubectl fails."""
        self._count("watch" if "--watch" in args else verb)
        errors = tempfile.TemporaryFile(mode="w+")  # a file, not a pipe: it never fills up and blocks kubectl
        try:
            proc = subprocess.Popen(self._argv(*args), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=errors, text=True, bufsize=1)
        except OSError as exc:
            errors.close()
            raise BackendUnavailableError(f"cannot run kubectl ({self.kubectl}): {exc.strerror or exc}") from exc

        def lines() -> Iterator[str]:
            try:
                for line in proc.stdout:  # type: ignore[union-attr]
                    yield line.rstrip("\n")
                code = proc.wait()
                if code not in (0, -15, -9):
                    errors.seek(0)
                    raise error_from_stderr(errors.read(), verb=verb, resource=resource,
                                            namespace=self.namespace, name=name)
            finally:
                stop()
                if proc.stdout is not None:
                    proc.stdout.close()
                errors.close()

        def stop() -> None:
            # Safe from another thread: ending kubectl ends the read of its stdout.
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()

        return lines(), stop

    def delete_job(self, job_name: str) -> bool:
        out = self._run(["delete", "job", job_name, "--cascade=background", "--ignore-not-found", "--wait=false",
                         "-o", "name"], verb="delete", resource=JOBS, name=job_name)
        return bool(out.strip())

    def list_jobs(self, labels: Optional[Mapping[str, str]] = None) -> list[JobInfo]:
        selector = label_selector(labels)
        data = self._json(["get", "jobs", *(["-l", selector] if selector else [])], verb="list", resource=JOBS)
        infos = [job_info(j, self.namespace) for j in data.get("items") or []]
        return sorted(infos, key=lambda i: (i.created_at is None, i.created_at, i.name))

    def watch(self, job_names: Optional[Iterable[str]] = None,
              label_selector: Optional[Mapping[str, str]] = None,
              timeout_seconds: Optional[float] = None, progress: bool = False) -> Iterator[JobEvent]:
        yield from watch_jobs(self, job_names, label_selector, timeout_seconds, progress=progress)

    def server_version(self) -> Optional[tuple[int, int]]:
        # Without --client kubectl asks the API server (GET /version); when it cannot
        # reach it, it exits non-zero with its usual connection error on stderr.
        info = self._json(["version"], verb="get", resource="the server version (/version)")
        server = info.get("serverVersion")
        if not isinstance(server, Mapping):
            raise BackendError("kubectl version printed no serverVersion; is the API server reachable?")
        try:
            return parse_server_version(server)
        except ValueError as exc:
            raise BackendError(f"kubectl version: {exc}") from exc

    def run_objects(self, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        # Two kubectl calls whatever the batch's size (kubectl itself may page a long
        # list in chunks of 500, all inside the one call).
        selector = label_selector({RUN_ID_LABEL: run_id}) or ""
        jobs = self._json(["get", "jobs", "-l", selector], verb="list", resource=JOBS)
        pods = self._json(["get", "pods", "-l", selector], verb="list", resource="pods")
        return ([dict(j) for j in sorted_by_creation(jobs.get("items") or [])],
                [dict(p) for p in sorted_by_creation(pods.get("items") or [])])
