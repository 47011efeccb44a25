"""``KubectlBackend.watch``: ``kubectl get jobs --watch --output-watch-events -o json``.

Each round lists the Jobs (``kubectl get jobs -o json``: current states, and which
known Jobs vanished while no watch ran), then runs kubectl's watch, whose first
events repeat the list it made itself, so nothing changes unseen between the two.
When the kubectl process ends (a dropped connection, an API-server restart, kubectl's
own 410 handling giving up), the next round starts; an unreachable API server is
retried with back-off for ``watch_reconnect_grace_seconds``. With ``progress`` the
tracker also reports changes of the Jobs' pod counts and index lists, read from the
same events: no extra kubectl process.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional

from ...domain.errors import BackendAuthError, BackendError, JobNotFoundError
from ...domain.job_state import JobWatchTracker
from ...ports.backend import JobEvent
from ..jobs.deadline import sleep_until
from ..jobs.line_follower import LineFollower
from ..jobs.objects import label_selector
from ..jobs.reconnect import ReconnectBackoff

if TYPE_CHECKING:
    from .backend import KubectlBackend

JOBS = "jobs.batch"


def json_objects(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    """Top-level JSON objects from kubectl's output: one compact object per line
    (what ``--watch -o json`` prints) or pretty-printed over many lines."""
    decoder = json.JSONDecoder()
    buffer = ""
    for line in lines:
        buffer += line + "\n"
        if not line.rstrip().endswith("}"):  # an object can only end on a closing brace
            continue
        while True:
            text = buffer.lstrip()
            try:
                obj, end = decoder.raw_decode(text)
            except ValueError:
                break  # not complete yet
            buffer = text[end:]
            if isinstance(obj, dict):
                yield obj


def watch_jobs(backend: "KubectlBackend", job_names: Optional[Iterable[str]],
               labels: Optional[Mapping[str, str]], timeout_seconds: Optional[float],
               progress: bool = False) -> Iterator[JobEvent]:
    names = sorted(set(job_names)) if job_names is not None else None
    deadline = time.monotonic() + timeout_seconds if timeout_seconds is not None else None
    yield from _JobWatch(backend, names, labels, deadline, progress).events()


def get_jobs_args(names: Optional[list[str]], labels: Optional[Mapping[str, str]]) -> list[str]:
    """``kubectl get jobs`` with the filters the API server applies for us: the labels,
    and the name when exactly one Job is watched."""
    args = ["get", "jobs"]
    selector = label_selector(labels)
    if selector:
        args += ["-l", selector]
    if names is not None and len(names) == 1:
        args += ["--field-selector", f"metadata.name={names[0]}"]
    return args


class _JobWatch:
    """One call of ``watch``: what has been seen (the tracker), whether the first list
    is still to come, and the reconnect state."""

    def __init__(self, backend: "KubectlBackend", names: Optional[list[str]],
                 labels: Optional[Mapping[str, str]], deadline: Optional[float], progress: bool = False) -> None:
        self.backend = backend
        self.tracker = JobWatchTracker.for_names(names, progress=progress)
        self.deadline = deadline
        self.get_jobs = get_jobs_args(names, labels)
        self.first_list = True
        self.reconnect = ReconnectBackoff(backend.watch_reconnect_grace_seconds, deadline)

    def events(self) -> Iterator[JobEvent]:
        while not self.tracker.done() and not self._expired():
            try:
                yield from self._list()
                if self.tracker.done():
                    return
                yield from self._run_kubectl_watch()
            except (JobNotFoundError, BackendAuthError):
                raise
            except BackendError as exc:
                # Unreachable, or the watch broke in a way kubectl reports as an error:
                # both resolve by listing and watching again, as long as the grace lasts.
                self.reconnect.wait_or_raise(exc)

    def _expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    def _list(self) -> Iterator[JobEvent]:
        """The current states; the first list also checks every named Job exists."""
        items = self.backend._json(list(self.get_jobs), verb="list", resource=JOBS).get("items") or []
        yield from self.tracker.relisted(items, kind="ADDED" if self.first_list else "RELISTED")
        if self.first_list:
            self.first_list = False
            missing = self.tracker.missing()
            if missing:
                raise JobNotFoundError(f"job {missing[0]!r} not found in namespace {self.backend.namespace!r}")

    def _run_kubectl_watch(self) -> Iterator[JobEvent]:
        """One kubectl watch process, followed until it ends, or the watch is done or
        out of time."""
        lines, stop = self.backend._stream_process([*self.get_jobs, "--watch", "--output-watch-events", "-o", "json"],
                                                   verb="watch", resource=JOBS)
        follower = LineFollower(lines, stop, lambda: self._expired() or self.tracker.done(),
                                first_check=0.25, max_check=1.0)
        got_any = False
        for event in json_objects(follower):
            got_any = True
            self.reconnect.connected()
            kind = event.get("type", "MODIFIED")
            # kubectl's watch starts by repeating its own list as ADDED.
            ev = self.tracker.observe(event.get("object") or {}, "MODIFIED" if kind == "ADDED" else kind)
            if ev is not None:
                yield ev
            if self.tracker.done() or self._expired():
                follower.stop()
                return
        if follower.error is not None:
            raise follower.error
        if not got_any:
            sleep_until(self.deadline, 0.5)  # kubectl ended at once: do not spin
