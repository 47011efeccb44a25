"""In-memory fakes of the ports, for unit tests of the session only.

Every adapter is proven against its real service in tests/contract; these fakes only
record what the session asked for, so a test can assert "nothing was uploaded".
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Dict, Iterable, Iterator, List, Mapping, Optional

import yaml

from spikebatch.errors import BackendUnavailableError, IntegrityError, ObjectNotFoundError
from spikebatch.domain.naming import RUN_ID_LABEL
from spikebatch.models import StoragePathTemplates
from spikebatch.ports.backend import JobEvent, JobInfo, JobReport, JobState
from spikebatch.ports.sorter import SortingOutcome
from spikebatch.ports.storage import IncompleteUpload


class MemoryStore:
    scheme = "s3"
    local_root = None

    def __init__(self, prefix: str = "s3://unit-bucket/jobs/") -> None:
        self.prefix = prefix
        self.templates = StoragePathTemplates()
        self.objects: Dict[str, bytes] = {}
        self.uploads: List[str] = []
        #: Unfinished uploads (what a killed upload leaves on a server).
        self.incomplete: List[IncompleteUpload] = []

    def build_uri(self, *, run_id: str, filename: str, category: str = "inputs") -> str:
        return self.templates.render(category, prefix=self.prefix, run_id=run_id, filename=filename)

    def output_prefix_for_run(self, run_id: str) -> str:
        return self.build_uri(run_id=run_id, filename="", category="outputs")

    def logs_prefix_for_run(self, run_id: str) -> str:
        return self.build_uri(run_id=run_id, filename="", category="logs")

    def blob_digest(self, local_path: Any, progress: Any = None) -> str:
        data = Path(local_path).read_bytes()
        if progress is not None:
            progress(len(data), len(data))
        return hashlib.sha256(data).hexdigest()

    def blob_digests(self, paths: Iterable[Any], progress: Any = None) -> List[str]:
        files = [Path(p) for p in paths]
        total = sum(f.stat().st_size for f in files)
        digests, done = [], 0
        for file in files:
            data = file.read_bytes()
            digests.append(hashlib.sha256(data).hexdigest())
            done += len(data)
            if progress is not None:
                progress(done, total)
        return digests

    def has_blob(self, sha256: str, size: int) -> bool:
        data = self.objects.get(self.build_uri(run_id="", filename=sha256, category="blobs"))
        return data is not None and len(data) == size

    def upload_file(self, *, local_path: Any, s3_uri: str, progress: Any = None) -> str:
        self.objects[s3_uri] = Path(local_path).read_bytes()
        self.uploads.append(s3_uri)
        # Like the adapters: a finished upload aborts the unfinished ones of its object.
        self.incomplete = [upload for upload in self.incomplete if upload.uri != s3_uri]
        return s3_uri

    def upload_bundle(self, *, local_zip: Any, run_id: str) -> str:
        return self.upload_file(local_path=local_zip, s3_uri=self.build_uri(run_id=run_id, filename=Path(local_zip).name))

    def put_blob(self, local_path: Any, progress: Any = None) -> str:
        uri = self.build_uri(run_id="", filename=self.blob_digest(local_path), category="blobs")
        if uri not in self.objects:
            self.upload_file(local_path=local_path, s3_uri=uri)
        return uri

    def download_file(self, *, s3_uri: str, local_path: Any, progress: Any = None, expected_sha256: Any = None,
                      read_only: bool = False) -> str:
        if s3_uri not in self.objects:
            raise ObjectNotFoundError(f"{s3_uri} not found")
        if expected_sha256 is not None and hashlib.sha256(self.objects[s3_uri]).hexdigest() != expected_sha256:
            raise IntegrityError(f"{s3_uri} does not have the expected sha256")
        Path(local_path).write_bytes(self.objects[s3_uri])
        return str(local_path)

    def list_outputs(self, output_prefix: str) -> List[str]:
        return sorted(u for u in self.objects if u.startswith(output_prefix))

    def download_outputs(self, *, output_prefix: str, local_dir: Any, progress: Any = None) -> List[Path]:
        paths = []
        for uri in self.list_outputs(output_prefix):
            target = Path(local_dir) / uri[len(output_prefix):]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(self.objects[uri])
            paths.append(target)
        return paths

    DEFAULT_LIST_OUTPUT_LIMIT = 10_000

    def list_output_files(self, run_id: str, *, max_keys: Optional[int] = None) -> List[str]:
        prefix = self.output_prefix_for_run(run_id)
        return [u.split("/", 3)[3] for u in self.list_outputs(prefix)]

    def download_output(self, *, run_id: str, filename: str, local_dir: Any) -> str:
        target = Path(local_dir) / filename
        return self.download_file(s3_uri=self.output_prefix_for_run(run_id) + filename, local_path=target)

    def exists(self, uri: str) -> bool:
        return uri in self.objects

    def read_bytes(self, uri: str) -> bytes:
        if uri not in self.objects:
            raise ObjectNotFoundError(f"object {uri} not found")
        return self.objects[uri]

    def write_bytes(self, uri: str, data: bytes) -> str:
        self.objects[uri] = data
        self.uploads.append(uri)
        return uri

    def list_incomplete_uploads(self, prefix: str) -> List[IncompleteUpload]:
        return sorted((u for u in self.incomplete if u.uri.startswith(prefix)),
                      key=lambda u: (u.uri, u.initiated, u.upload_id))

    def abort_incomplete_upload(self, upload: IncompleteUpload) -> bool:
        if upload not in self.incomplete:
            return False
        self.incomplete.remove(upload)
        return True


class ScriptedBackend:
    """Records applied manifests; ``watch`` replays a script of states / events / errors."""

    def __init__(self, namespace: str = "default", script: Optional[List[Any]] = None) -> None:
        self.namespace = namespace
        self.applied: List[dict] = []
        self.dry_runs: List[dict] = []
        #: An error every dry run raises (a cluster that would refuse the Job).
        self.refuse: Optional[Exception] = None
        self.script: List[Any] = list(script or [])
        self.watch_calls = 0
        self.status = JobState.UNKNOWN
        #: What list_jobs finds (filtered by label, like a real backend).
        self.jobs: List[JobInfo] = []
        #: What job_report answers next (then: the plain ``status``).
        self.reports: List[JobReport] = []
        self.report_calls = 0
        #: What server_version answers: the test cluster's release by default; set
        #: (1, 32) for a server without per-index retries, None for a non-server.
        self.version: Optional[tuple] = (1, 37)
        #: What run_objects finds (filtered by the run-id label, like a real backend):
        #: Job and Pod dicts as the API server serialises them.
        self.job_objects: List[dict] = []
        self.pod_objects: List[dict] = []
        self.run_objects_calls = 0
        #: The ``progress`` argument of each watch call.
        self.watch_progress: List[bool] = []

    def apply_manifest(self, manifest: Any, dry_run: bool = False) -> str:
        data = manifest if isinstance(manifest, dict) else yaml.safe_load(manifest)
        if dry_run:
            if self.refuse is not None:
                raise self.refuse
            self.dry_runs.append(data)
        else:
            self.applied.append(data)
        return data["metadata"]["name"]

    def job_status(self, job_name: str) -> JobState:
        return self.status

    def job_report(self, job_name: str) -> JobReport:
        self.report_calls += 1
        if self.reports:
            return self.reports.pop(0)
        return JobReport(job_name, self.status)

    def pods_for_job(self, job_name: str) -> List[str]:
        return []

    def stream_job_logs(self, job_name: str, follow: bool = False) -> Iterator[str]:
        return iter(())

    def stream_logs(self, pod_name: str, follow: bool = True) -> Iterator[str]:
        return iter(())

    def delete_job(self, job_name: str) -> bool:
        return True

    def list_jobs(self, labels: Optional[Mapping[str, str]] = None) -> List[JobInfo]:
        return [job for job in self.jobs if all(job.labels.get(k) == v for k, v in (labels or {}).items())]

    def watch(self, job_names: Optional[Iterable[str]] = None, label_selector: Any = None,
              timeout_seconds: Optional[float] = None, progress: bool = False) -> Iterator[JobEvent]:
        self.watch_calls += 1
        self.watch_progress.append(progress)
        name = list(job_names or ["?"])[0]
        while self.script:
            step = self.script.pop(0)
            if step == "drop":  # the watch ends without a terminal state
                return
            if isinstance(step, Exception):
                raise step
            if isinstance(step, JobEvent):  # a scripted event as is (e.g. carrying progress)
                yield step
                continue
            yield JobEvent(job_name=name, state=step)

    def server_version(self) -> Optional[tuple]:
        return self.version

    def run_objects(self, run_id: str) -> tuple:
        self.run_objects_calls += 1

        def of_run(obj: dict) -> bool:
            return ((obj.get("metadata") or {}).get("labels") or {}).get(RUN_ID_LABEL) == run_id

        return ([j for j in self.job_objects if of_run(j)], [p for p in self.pod_objects if of_run(p)])


class JsonFileCodec:
    """A workspace that is a dict, saved as one JSON file."""

    name = "jsonfile"

    def can_handle(self, workspace: Any) -> bool:
        return isinstance(workspace, dict)

    def save(self, workspace: Any, folder: Path) -> List[Path]:
        path = folder / "ws.json"
        path.write_text(json.dumps(workspace))
        return [path]

    def open(self, folder: Path) -> Any:
        return json.loads((folder / "ws.json").read_text())

    def commit(self, workspace: Any, folder: Path) -> List[Path]:
        return self.save(workspace, folder)

    def load_result(self, folder: Path) -> Any:
        return self.open(folder)


class RecordingSorter:
    name = "spikeinterface"

    def __init__(self, known: Iterable[str] = ("detect_threshold",)) -> None:
        self.known = set(known)

    def resolve_config(self, config: Any = None, overrides: Optional[Mapping[str, Any]] = None) -> dict:
        from spikebatch.errors import ConfigError

        unknown = set(overrides or {}) - self.known
        if unknown:
            raise ConfigError(f"unknown sorting option(s) {sorted(unknown)}; known: {sorted(self.known)}")
        return {"sorter_name": config or "spykingcircus2", "params": dict(overrides or {})}

    def describe(self, recording_path: Path) -> dict:
        """A recording whose name says "unreadable" cannot be opened."""
        from spikebatch.errors import ConfigError

        if "unreadable" in Path(recording_path).name:
            raise ConfigError(f"recording {Path(recording_path).name} cannot be opened (not a recording)")
        return {"format": "fake", "channels": 4, "duration_s": 1.0, "sampling_frequency": 1000.0}

    def sort(self, recording_path: Path, config: Mapping[str, Any], output_dir: Path) -> SortingOutcome:
        raise AssertionError("the session never sorts; the runner does")


def unavailable() -> BackendUnavailableError:
    return BackendUnavailableError("API server at https://127.0.0.1:1 is unreachable")
