"""LocalProcessBackend: the JobBackend of the laptop profile. A Job's first container
runs as a local process (its command + args, with its plain env values), one attempt
after another up to backoffLimit, within activeDeadlineSeconds; an Indexed Job runs its
completion indexes up to ``parallelism`` at once, with per-index retries, its failed
index limit and its pod failure policy, as the job controller does
(``indexed_supervisor``). A detached supervisor (``supervisor``) runs the Job, so it
outlives the Python process that applied it, and all state lives in files
(``state_files``): another process, or a new backend object, sees the same Jobs.

The container's resources hold as on a cluster, so a job that passes here does not die
there: an attempt over ``limits.memory`` is killed as OOMKilled (exit code 137), and
``limits.cpu`` bounds the thread counts of NumPy/BLAS and the like through the job's
environment (``resource_limits``, ``memory_limit``).

Differences from a cluster, on purpose: no image (this interpreter stands in for
``python``), a NonIndexed Job runs one pod at a time, nodeSelector and requests ignored
(parallelism alone bounds how many attempts run at once), CPU time not throttled (only
thread counts bounded), memory sampled rather than charged per allocation, no
disruptions (pod failure rules on pod conditions never match), a 1 s retry back-off
and a 5 s default termination grace. ``spec.suspend: true`` keeps a Job Pending (no
process starts) until it is deleted. Each pod gets a private ``$TMPDIR`` that goes
with it, as a pod's ``/tmp`` does (``pod_scratch``); ``delete_job`` removes whatever
of it is left. Env values and arguments a process could not receive (a NUL byte, more
than ``execve`` takes) are refused when the Job is applied (``launch_plan``).
"""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Optional

from ...domain.errors import BackendError, BackendUnavailableError, ConfigError, JobConflictError, JobNotFoundError
from ...domain.job_report import JobReport, report_job
from ...domain.job_state import JobWatchTracker, job_state_of
from ...domain.naming import RUN_ID_LABEL, is_dns_subdomain, is_rfc1123_label
from ...ports.backend import JobEvent, JobInfo, JobState, ManifestInput
from ..files import user_dirs
from ..jobs.deadline import sleep_until
from ..jobs.manifest import prepare_job_manifest
from ..jobs.objects import job_info
from . import state_files as st
from .launch_plan import launch_plan
from .pod_objects import pod_objects
from .pod_scratch import remove_pod_dir
from .processes import process_alive, stop_group

log = logging.getLogger(__name__)

#: How often watch and followed logs look at the state files again.
POLL_SECONDS = 0.2
#: The folder holding the ``spikebatch`` package (src/ of a checkout, or site-packages).
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[3])


#: The backend's sub-folder of spikebatch's state folder: the CLI keeps its submission
#: records there too, and a namespace named like another tenant must not collide.
STATE_SUBFOLDER = "local-backend"


class LocalProcessBackend:
    """Jobs as local processes; state under ``<state_dir>/<namespace>/``.

    ``state_dir`` defaults to ``$SPIKEBATCH_STATE_DIR/local-backend``, else
    ``$XDG_STATE_HOME/spikebatch/local-backend`` (``~/.local/state/...``)."""

    def __init__(self, namespace: str = "default", state_dir: Optional[str | os.PathLike] = None) -> None:
        if not is_rfc1123_label(namespace):
            raise ConfigError(f"namespace {namespace!r} must be a lowercase RFC 1123 label (e.g. 'default')")
        self.namespace = namespace
        self.state_dir = (Path(state_dir).expanduser() if state_dir else user_dirs.state_dir() / STATE_SUBFOLDER) / namespace

    # ------------------------------------------------------------------ files
    def _job_dir(self, job_name: str) -> Path:
        # Names are checked before they become paths: "../x" must not escape.
        if not isinstance(job_name, str) or not is_dns_subdomain(job_name):
            raise JobNotFoundError(f"job {job_name!r} not found in namespace {self.namespace!r} (local backend)")
        return self.state_dir / job_name

    def _not_found(self, job_name: str) -> JobNotFoundError:
        return JobNotFoundError(f"job {job_name!r} not found in namespace {self.namespace!r} "
                                f"(local backend, state in {self.state_dir})")

    def _job_object(self, job_dir: Path) -> Optional[dict[str, Any]]:
        """The Job as a batch/v1 object (manifest + status), or None if it is gone."""
        manifest = st.read_json(job_dir / st.MANIFEST)
        if not isinstance(manifest, dict):
            return None
        job = dict(manifest)
        job["status"] = st.read_json(job_dir / st.STATUS) or {}
        if job_state_of(job).is_terminal or (manifest.get("spec") or {}).get("suspend"):
            return job
        sup = st.read_json(job_dir / st.SUPERVISOR)
        if sup and not process_alive(sup.get("pid"), sup.get("startTicks")):
            # Read again: it may have written its last status just before exiting.
            job["status"] = st.read_json(job_dir / st.STATUS) or {}
            if not job_state_of(job).is_terminal:
                job["status"] = dict(job["status"], active=0, ready=0, conditions=[{
                    "type": "Failed", "status": "True", "reason": "SupervisorLost",
                    "message": f"the local supervisor (pid {sup.get('pid')}) ended without recording an "
                               "outcome (killed, or the machine restarted)"}])
        return job

    def _jobs(self) -> list[dict[str, Any]]:
        try:
            names = sorted(n for n in os.listdir(self.state_dir) if not n.startswith("."))
        except FileNotFoundError:
            return []
        except OSError as exc:
            raise BackendUnavailableError(f"cannot read the local backend state folder {self.state_dir}: "
                                          f"{exc.strerror or exc}") from exc
        jobs = (self._job_object(self.state_dir / n) for n in names)
        return [j for j in jobs if j is not None]

    def _require(self, job_name: str) -> tuple[Path, dict[str, Any]]:
        job_dir = self._job_dir(job_name)
        job = self._job_object(job_dir)
        if job is None:
            raise self._not_found(job_name)
        return job_dir, job

    # ------------------------------------------------------------------ port
    def _conflict(self, name: str) -> JobConflictError:
        return JobConflictError(
            f"job {name!r} already exists in namespace {self.namespace!r} (local backend); "
            "delete it or choose another name"
        )

    def apply_manifest(self, manifest: ManifestInput, dry_run: bool = False) -> str:
        body = prepare_job_manifest(manifest, self.namespace)
        meta = body["metadata"]
        if not meta.get("name"):
            meta["name"] = f"{meta['generateName']}{secrets.token_hex(3)[:5]}"
        plan = launch_plan(body, os.getcwd())  # every refusal happens before any file or process
        name = meta["name"]
        if dry_run:
            if (self.state_dir / name).exists():
                raise self._conflict(name)
            return name
        try:
            self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
            job_dir = self.state_dir / name
            os.mkdir(job_dir, 0o700)
        except FileExistsError:
            raise self._conflict(name) from None
        except OSError as exc:
            raise BackendUnavailableError(f"cannot write the local backend state folder {self.state_dir}: "
                                          f"{exc.strerror or exc}") from exc
        try:
            meta.update(uid=str(uuid.uuid4()), creationTimestamp=st.now_iso())
            (job_dir / st.PODS).mkdir(mode=0o700)
            st.write_json(job_dir / st.LAUNCH, plan)
            suspended = {"conditions": [{"type": "Suspended", "status": "True", "reason": "JobSuspended",
                                         "message": "Job suspended"}]}
            st.write_json(job_dir / st.STATUS, suspended if plan["suspend"] else {})
            # The manifest last: a Job becomes visible to readers only once complete.
            st.write_json(job_dir / st.MANIFEST, body)
            if not plan["suspend"]:
                self._spawn_supervisor(job_dir)
        except BaseException:
            shutil.rmtree(job_dir, ignore_errors=True)
            raise
        return name

    def _spawn_supervisor(self, job_dir: Path) -> None:
        # sys.path rather than PYTHONPATH: the job's own environment stays untouched.
        code = ("import sys; sys.path.insert(0, sys.argv.pop(1)); "
                "from spikebatch.adapters.local.supervisor import main; raise SystemExit(main(sys.argv[1:]))")
        try:
            done = subprocess.run([sys.executable, "-c", code, _PACKAGE_PARENT, "launch", str(job_dir)],
                                  stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=60)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise BackendError(f"could not start the local supervisor for {job_dir.name!r}: {exc}") from exc
        if done.returncode != 0 or not (job_dir / st.SUPERVISOR).exists():
            last = (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise BackendError(f"could not start the local supervisor for {job_dir.name!r}: {last}")

    def job_status(self, job_name: str) -> JobState:
        return job_state_of(self._require(job_name)[1])

    def job_report(self, job_name: str) -> JobReport:
        job_dir, job = self._require(job_name)
        return report_job(job, pod_objects(job_dir, job))

    def pods_for_job(self, job_name: str) -> list[str]:
        job_dir, _ = self._require(job_name)
        return [r["name"] for r in st.pod_records(job_dir)]

    def stream_logs(self, pod_name: str, follow: bool = True) -> Iterator[str]:
        """One pod's (attempt's) log lines; the pod is looked up now, so a name that
        is not a pod of this namespace raises JobNotFoundError at the call."""
        job_dir, index = self._find_pod(pod_name)

        def lines() -> Iterator[str]:
            while follow and not st.pod_log_path(job_dir, index).exists():
                record = st.read_json(st.pod_record_path(job_dir, index))
                if record is None or record.get("phase") in ("Succeeded", "Failed"):
                    break  # gone, or ended without ever starting: nothing to follow
                time.sleep(POLL_SECONDS)
            yield from self._pod_lines(job_dir, index, follow)

        return lines()

    def _find_pod(self, pod_name: str) -> tuple[Path, int]:
        """The folder of the Job whose attempt ``pod_name`` is, and the attempt's number.
        A pod's name starts with its Job's name, so only those Jobs are looked at."""
        if isinstance(pod_name, str) and is_dns_subdomain(pod_name):
            for job in self._jobs():
                job_name = str((job.get("metadata") or {}).get("name") or "")
                if not job_name or not pod_name.startswith(job_name + "-"):
                    continue
                job_dir = self.state_dir / job_name
                for number, record in enumerate(st.pod_records(job_dir)):
                    if record.get("name") == pod_name:
                        return job_dir, int(record.get("index", number))
        raise JobNotFoundError(f"pod {pod_name!r} not found in namespace {self.namespace!r} (local backend, "
                               f"state in {self.state_dir}); pods_for_job(job_name) lists a job's pods")

    def stream_job_logs(self, job_name: str, follow: bool = False) -> Iterator[str]:
        job_dir, _ = self._require(job_name)
        index = 0
        while True:
            record = st.read_json(st.pod_record_path(job_dir, index))
            if record is None:
                job = self._job_object(job_dir)
                if not follow or job is None or job_state_of(job).is_terminal:
                    # One more look: a last attempt may have appeared with the final status.
                    if st.read_json(st.pod_record_path(job_dir, index)) is None:
                        return
                    continue
                time.sleep(POLL_SECONDS)
                continue
            yield from self._pod_lines(job_dir, index, follow)
            index += 1

    def _pod_lines(self, job_dir: Path, index: int, follow: bool) -> Iterator[str]:
        path = st.pod_log_path(job_dir, index)
        pending = b""
        try:
            fh = open(path, "rb")
        except FileNotFoundError:
            return
        with fh:
            while True:
                chunk = fh.read(65536)
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split(b"\n")
                    for line in lines:
                        yield line.decode("utf-8", errors="replace")
                    continue
                record = st.read_json(st.pod_record_path(job_dir, index))
                finished = record is None or record.get("phase") in ("Succeeded", "Failed")
                if not follow or finished:
                    if finished and follow:
                        rest = fh.read()  # written between our last read and the exit
                        pending += rest
                        if rest:
                            *lines, pending = pending.split(b"\n")
                            for line in lines:
                                yield line.decode("utf-8", errors="replace")
                    if pending:
                        yield pending.decode("utf-8", errors="replace")
                    return
                time.sleep(POLL_SECONDS)

    def delete_job(self, job_name: str) -> bool:
        try:
            job_dir = self._job_dir(job_name)
        except JobNotFoundError:
            return False
        if not (job_dir / st.MANIFEST).exists():
            return False
        trash = self.state_dir / st.TRASH
        trash.mkdir(exist_ok=True, mode=0o700)
        target = trash / f"{job_name}-{secrets.token_hex(4)}"
        try:
            # Atomic: from here the name is free and every reader sees the Job gone.
            os.rename(job_dir, target)
        except FileNotFoundError:
            return False  # another process deleted it first
        launch = st.read_json(target / st.LAUNCH) or {}
        grace = float(launch.get("gracePeriodSeconds", 5))
        sup = st.read_json(target / st.SUPERVISOR)
        if sup:
            # The supervisor stops its attempt gracefully; give it the grace and a margin.
            stop_group(sup.get("pid"), sup.get("startTicks"), grace + 2)
        records = st.pod_records(target)
        for rec in records:
            if rec.get("phase") == "Running":
                stop_group(rec.get("pid"), rec.get("startTicks"), grace)
        # Every process is gone now: remove what the pods left in the temp root (kept on
        # request, or left by a supervisor that was killed).
        for rec in records:
            problem = remove_pod_dir(rec.get("tmpDir"))
            if problem:
                log.warning("%s", problem)
        shutil.rmtree(target, ignore_errors=True)
        return True

    def list_jobs(self, labels: Optional[Mapping[str, str]] = None) -> list[JobInfo]:
        want = dict(labels or {})
        infos = []
        for job in self._jobs():
            have = (job.get("metadata") or {}).get("labels") or {}
            if all(have.get(k) == v for k, v in want.items()):
                infos.append(job_info(job, self.namespace))
        return sorted(infos, key=lambda i: (i.created_at is None, i.created_at, i.name))

    def watch(self, job_names: Optional[Iterable[str]] = None,
              label_selector: Optional[Mapping[str, str]] = None,
              timeout_seconds: Optional[float] = None, progress: bool = False) -> Iterator[JobEvent]:
        tracker = JobWatchTracker.for_names(job_names, progress=progress)
        deadline = time.monotonic() + timeout_seconds if timeout_seconds is not None else None
        want = dict(label_selector or {})

        def snapshot() -> list[dict[str, Any]]:
            return [j for j in self._jobs()
                    if all(((j.get("metadata") or {}).get("labels") or {}).get(k) == v for k, v in want.items())]

        yield from tracker.relisted(snapshot(), kind="ADDED")
        missing = tracker.missing()
        if missing:
            raise self._not_found(missing[0])
        while not tracker.done() and (deadline is None or time.monotonic() < deadline):
            sleep_until(deadline, POLL_SECONDS)
            yield from tracker.relisted(snapshot(), kind="MODIFIED")

    def server_version(self) -> Optional[tuple[int, int]]:
        """None: no API server here; this backend runs Indexed Jobs itself."""
        return None

    def run_objects(self, run_id: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every Job labelled ``spikebatch.io/run-id=<run_id>`` and every pod so
        labelled (a pod carries its Job's pod template labels), shaped as the API
        server lists them; pods oldest first."""
        jobs: list[dict[str, Any]] = []
        pods: list[dict[str, Any]] = []
        for job in self._jobs():
            meta = job.get("metadata") or {}
            if (meta.get("labels") or {}).get(RUN_ID_LABEL) == run_id:
                jobs.append(job)
            template = ((job.get("spec") or {}).get("template") or {}).get("metadata") or {}
            if (template.get("labels") or {}).get(RUN_ID_LABEL) == run_id:
                pods += pod_objects(self.state_dir / str(meta.get("name")), job)
        pods.sort(key=lambda pod: (str(pod["metadata"].get("creationTimestamp") or ""),
                                   str(pod["metadata"].get("name"))))
        return jobs, pods
