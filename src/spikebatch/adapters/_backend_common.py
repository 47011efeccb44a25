"""Pieces the three JobBackend adapters share: reading a manifest from what the caller
passed, the namespace rule, label selectors, JobInfo from a Job object, and following
a stream of lines that may never end by itself (kwok, and a dropped connection, keep
a followed log open after the container has exited)."""

from __future__ import annotations

import copy
import os
import queue
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Optional

import yaml

from ..domain.errors import InvalidManifestError, JobNotFoundError, NamespaceMismatchError
from ..domain.job_state import job_state_of
from ..ports.backend import JobInfo, ManifestInput


def load_manifest(manifest: ManifestInput) -> dict[str, Any]:
    """A Job manifest as a fresh dict, from a dict, a Path, a path string or YAML text."""
    if isinstance(manifest, Mapping):
        return copy.deepcopy(dict(manifest))
    if isinstance(manifest, Path) or (isinstance(manifest, str) and _looks_like_path(manifest)):
        path = Path(manifest).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise InvalidManifestError(f"cannot read manifest file {str(path)!r}: {exc.strerror or exc}") from exc
        source = str(path)
    elif isinstance(manifest, str):
        text, source = manifest, "manifest text"
    else:
        raise InvalidManifestError(
            f"a manifest must be YAML text, a path or a dict, not {type(manifest).__name__}")
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise InvalidManifestError(f"{source} is not valid YAML{at}: {getattr(exc, 'problem', exc)}") from exc
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise InvalidManifestError(f"{source} must hold exactly one Job object (found {len(docs)} documents)")
    return docs[0]


def _looks_like_path(text: str) -> bool:
    # YAML text of a Job always spans lines or braces; a single line that names an
    # existing file, or ends like a manifest file name, is a path.
    if "\n" in text or text.lstrip().startswith("{"):
        return False
    return os.path.exists(os.path.expanduser(text)) or text.endswith((".yaml", ".yml", ".json"))


def prepare_job_manifest(manifest: ManifestInput, namespace: str) -> dict[str, Any]:
    """Load ``manifest``, check it is a batch/v1 Job, and pin it to ``namespace``.

    A manifest naming another namespace is refused (never silently moved)."""
    body = load_manifest(manifest)
    kind, api = body.get("kind"), body.get("apiVersion")
    if kind != "Job" or api != "batch/v1":
        raise InvalidManifestError(
            f"the manifest is {api or '?'}/{kind or '?'}; a backend submits batch/v1 Jobs only",
            [f"kind: expected Job (apiVersion batch/v1), got {kind!r} ({api!r})"])
    meta = body.get("metadata")
    if meta is None:
        meta = body["metadata"] = {}
    if not isinstance(meta, dict):
        raise InvalidManifestError("the manifest's metadata must be a mapping", ["metadata: not a mapping"])
    theirs = meta.get("namespace")
    if theirs not in (None, "") and theirs != namespace:
        raise NamespaceMismatchError(
            f"the manifest targets namespace {theirs!r} but this backend works in {namespace!r}; "
            "render the manifest for this namespace or build the backend with namespace="
            f"{theirs!r}")
    meta["namespace"] = namespace
    if not meta.get("name") and not meta.get("generateName"):
        raise InvalidManifestError("the Job manifest has no metadata.name",
                                   ["metadata.name: Required value: name or generateName is required"])
    return body


def label_selector(labels: Optional[Mapping[str, str]]) -> Optional[str]:
    """``{"a": "1", "b": "2"}`` -> ``"a=1,b=2"`` (equality on every label)."""
    if not labels:
        return None
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))


def parse_timestamp(value: Any) -> Optional[datetime]:
    if not value:
        return None
    if isinstance(value, datetime):
        return value
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def job_info(job: Mapping[str, Any], namespace: str) -> JobInfo:
    meta = job.get("metadata") or {}
    return JobInfo(name=meta.get("name", ""), namespace=meta.get("namespace") or namespace,
                   state=job_state_of(job), labels=dict(meta.get("labels") or {}),
                   created_at=parse_timestamp(meta.get("creationTimestamp")))


def sorted_by_creation(objects: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Oldest first: by creationTimestamp (1 s resolution), then by name."""
    def key(obj: Mapping[str, Any]) -> tuple[str, str]:
        meta = obj.get("metadata") or {}
        return (str(meta.get("creationTimestamp") or ""), str(meta.get("name") or ""))

    return sorted(objects, key=key)


def pod_has_finished(pod: Optional[Mapping[str, Any]]) -> bool:
    """The pod is gone, or Succeeded/Failed, or its containers all terminated."""
    if not pod:
        return True
    status = pod.get("status") or {}
    if status.get("phase") in ("Succeeded", "Failed"):
        return True
    states = [c.get("state") or {} for c in status.get("containerStatuses") or ()]
    return bool(states) and all("terminated" in s for s in states)


def pod_has_started(pod: Optional[Mapping[str, Any]]) -> bool:
    """Some container of the pod has run (so it has a log to read)."""
    if not pod:
        return False
    status = pod.get("status") or {}
    if status.get("phase") in ("Running", "Succeeded", "Failed"):
        return True
    return any("running" in (c.get("state") or {}) or "terminated" in (c.get("state") or {})
               for c in status.get("containerStatuses") or ())


_END = object()


class LineFollower:
    """Read lines from a blocking source in a thread, so the reader of the lines can
    notice, while the source is silent, that the writer has finished.

    ``open_stream`` returns an iterator of lines; ``close_stream`` unblocks it from
    another thread. ``finished`` answers "has the writer ended?" and is asked only
    while no line arrives (first after ``first_check`` s, then less and less often,
    up to ``max_check`` s, so a long silent step costs few requests)."""

    def __init__(self, lines: Iterator[str], close_stream: Callable[[], None],
                 finished: Callable[[], bool], first_check: float = 1.0, max_check: float = 15.0) -> None:
        self._lines, self._close = lines, close_stream
        self._finished, self._first, self._max = finished, first_check, max_check
        self._queue: queue.Queue = queue.Queue(maxsize=10000)
        self.error: Optional[BaseException] = None
        self.ended_by_source = False
        self._thread = threading.Thread(target=self._pump, name="spikebatch-log-follow", daemon=True)
        self._stopping = threading.Event()

    def _put(self, item: object) -> bool:
        # Bounded waits: once the reader has stopped, nobody drains the queue.
        while not self._stopping.is_set():
            try:
                self._queue.put(item, timeout=0.5)
                return True
            except queue.Full:
                continue
        return False

    def _pump(self) -> None:
        try:
            for line in self._lines:
                if not self._put(line):
                    return
        except BaseException as exc:  # handed to the reading thread, which decides
            if not self._stopping.is_set():
                self.error = exc
        finally:
            self._put(_END)

    def __iter__(self) -> Iterator[str]:
        self._thread.start()
        wait = self._first
        try:
            while True:
                try:
                    item = self._queue.get(timeout=wait)
                except queue.Empty:
                    if self._finished():
                        return
                    wait = min(wait * 2, self._max)
                    continue
                if item is _END:
                    self.ended_by_source = True
                    return
                wait = self._first
                yield item
        finally:
            self.stop()

    def stop(self) -> None:
        if not self._stopping.is_set():
            self._stopping.set()
            self._close()
            self._thread.join(timeout=5)


def sleep_until(deadline: Optional[float], seconds: float) -> None:
    """Sleep ``seconds``, but not past ``deadline`` (a time.monotonic() value)."""
    if deadline is not None:
        seconds = min(seconds, max(0.0, deadline - time.monotonic()))
    if seconds > 0:
        time.sleep(seconds)


def container_name(pod: Mapping[str, Any]) -> str:
    """The name of a pod's first container (the one spikebatch renders)."""
    return ((pod.get("spec") or {}).get("containers") or [{}])[0].get("name", "")


def job_log_lines(
    job_pods: Callable[[], tuple],
    read_log: Callable[[Mapping[str, Any]], Iterator[str]],
    follow_pod: Callable[[Mapping[str, Any]], Iterator[str]],
    follow: bool,
) -> Iterator[str]:
    """Log lines of every pod of a Job, oldest pod first, retried pods included.

    ``job_pods()`` returns (job, pods oldest first); ``read_log(pod)`` reads a pod's log
    once; ``follow_pod(pod)`` streams it until the pod ends. With ``follow``, pods that
    appear later (retries) are picked up until the Job is terminal or deleted.
    """
    job, pods = job_pods()
    if not follow:
        for pod in pods:
            if pod_has_started(pod):
                yield from read_log(pod)
        return
    seen: set[str] = set()
    wait = 0.5
    while True:
        fresh = [p for p in pods if p["metadata"]["name"] not in seen]
        for pod in fresh:
            seen.add(pod["metadata"]["name"])
            yield from follow_pod(pod)
        # The Job was read before its pods: terminal then means no pod is missing.
        if not fresh and job_state_of(job).is_terminal:
            return
        if not fresh:
            time.sleep(wait)  # a retry pod is due after the controller's back-off
            wait = min(wait * 1.5, 5.0)
        else:
            wait = 0.5
        try:
            job, pods = job_pods()
        except JobNotFoundError:
            return  # deleted while we followed it
