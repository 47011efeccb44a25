"""``KubernetesBatchJobBackend.watch``: list, then watch from the list's
resourceVersion with the client's ``kubernetes.watch.Watch``.

* The first list gives every matching Job's current state (one "ADDED" event each).
* Each watch connection lasts ``watch_chunk_seconds`` server-side (bookmarks on, so
  the resourceVersion we hold stays recent), then is renewed from where it stopped.
* A dropped connection or an unreachable API server: retry with back-off, resuming
  from the last resourceVersion, for up to ``watch_reconnect_grace_seconds``.
* 410 Gone: that resourceVersion is too old to resume from (an API-server restart
  resets the watch cache): list again, report what changed as "RELISTED" (and what
  vanished as "DELETED"), then watch from the new list.
* ``progress``: the tracker also reports changes of the Jobs' pod counts and index
  lists (what a batch's live view counts); they come on the same connection, so a
  batch of any size still costs one list and one watch connection per chunk.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional

from ...domain.errors import BackendUnavailableError, JobNotFoundError
from ...domain.job_state import JobWatchTracker
from ...ports.backend import JobEvent
from ..jobs.deadline import sleep_until
from ..jobs.objects import label_selector
from ..jobs.reconnect import ReconnectBackoff
from .api_errors import is_unreachable, map_api_error, unavailable

if TYPE_CHECKING:
    from .backend import KubernetesBatchJobBackend

JOBS = "jobs.batch"


def watch_jobs(backend: "KubernetesBatchJobBackend", job_names: Optional[Iterable[str]],
               labels: Optional[Mapping[str, str]], timeout_seconds: Optional[float],
               progress: bool = False) -> Iterator[JobEvent]:
    names = sorted(set(job_names)) if job_names is not None else None
    deadline = time.monotonic() + timeout_seconds if timeout_seconds is not None else None
    yield from _JobWatch(backend, names, labels, deadline, progress).events()


def server_side_filters(names: Optional[list[str]], labels: Optional[Mapping[str, str]]) -> dict[str, Any]:
    """The list/watch arguments that let the API server filter for us: the labels, and
    the name when exactly one Job is watched."""
    filters: dict[str, Any] = {}
    if labels:
        filters["label_selector"] = label_selector(labels)
    if names is not None and len(names) == 1:
        filters["field_selector"] = f"metadata.name={names[0]}"
    return filters


class _JobWatch:
    """One call of ``watch``: what has been seen (the tracker), where to resume from
    (the resourceVersion), and the reconnect state."""

    def __init__(self, backend: "KubernetesBatchJobBackend", names: Optional[list[str]],
                 labels: Optional[Mapping[str, str]], deadline: Optional[float], progress: bool = False) -> None:
        from kubernetes import watch as k8s_watch

        self.backend = backend
        self.tracker = JobWatchTracker.for_names(names, progress=progress)
        self.deadline = deadline
        self.filters = server_side_filters(names, labels)
        self.resource_version = ""
        self.must_relist = False
        self.reconnect = ReconnectBackoff(backend.watch_reconnect_grace_seconds, deadline)
        self.watch = k8s_watch.Watch()

    def events(self) -> Iterator[JobEvent]:
        from kubernetes.client.exceptions import ApiException

        yield from self._first_list()
        while not self.tracker.done():
            left = self._time_left()
            if left is not None and left <= 0:
                return
            try:
                if self.must_relist:
                    yield from self._relist()
                else:
                    yield from self._one_connection(left)
            except ApiException as exc:
                if exc.status == 410:
                    self.must_relist = True
                    continue
                self._retry_or_raise(exc)
            except BackendUnavailableError as exc:  # from a relist
                self.reconnect.wait_or_raise(exc)
            except Exception as exc:
                if not is_unreachable(exc):
                    raise
                self.reconnect.wait_or_raise(unavailable(self.backend.host, exc))

    # ------------------------------------------------------------------ listing
    def _list(self) -> list[dict]:
        """The matching Jobs; remembers the list's resourceVersion to watch from."""
        data = self.backend._json(self.backend._batch.list_namespaced_job, self.backend.namespace,
                                  verb="list", resource=JOBS, **self.filters)
        self.resource_version = (data.get("metadata") or {}).get("resourceVersion", "")
        return data.get("items") or []

    def _first_list(self) -> Iterator[JobEvent]:
        yield from self.tracker.relisted(self._list(), kind="ADDED")
        missing = self.tracker.missing()
        if missing:
            raise JobNotFoundError(f"job {missing[0]!r} not found in namespace {self.backend.namespace!r}")

    def _relist(self) -> Iterator[JobEvent]:
        items = self._list()
        self.must_relist = False
        yield from self.tracker.relisted(items)

    # ------------------------------------------------------------------ watching
    def _one_connection(self, left: Optional[float]) -> Iterator[JobEvent]:
        """Follow one watch connection from the resourceVersion held until the server
        ends it, or the watch is done or out of time."""
        chunk = self._connection_seconds(left)
        stream = self.watch.stream(self.backend._batch.list_namespaced_job, self.backend.namespace,
                                   resource_version=self.resource_version, allow_watch_bookmarks=True,
                                   timeout_seconds=chunk, _request_timeout=(10.0, chunk + 30.0), **self.filters)
        opened, seen = time.monotonic(), 0
        for event in stream:
            seen += 1
            self.reconnect.connected()
            ev = self._observe(event)
            if ev is not None:
                yield ev
            if self.tracker.done() or self._out_of_time():
                self.watch.stop()
                break
        if not seen and time.monotonic() - opened < 1.0:
            sleep_until(self.deadline, 0.5)  # closed at once with nothing said: do not spin

    def _connection_seconds(self, left: Optional[float]) -> int:
        """Server-side length of the next connection: the chunk, cut to what is left."""
        chunk = self.backend.watch_chunk_seconds
        return chunk if left is None else max(1, min(chunk, int(left) + 1))

    def _observe(self, event: Mapping[str, Any]) -> Optional[JobEvent]:
        """Note the event's resourceVersion; the JobEvent it means, if any (a bookmark
        only moves the resourceVersion on)."""
        obj = event.get("raw_object") or {}
        self.resource_version = (obj.get("metadata") or {}).get("resourceVersion") or self.resource_version
        if event.get("type") == "BOOKMARK":
            return None
        return self.tracker.observe(obj, event.get("type", "MODIFIED"))

    # ------------------------------------------------------------------ time and failures
    def _time_left(self) -> Optional[float]:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _out_of_time(self) -> bool:
        left = self._time_left()
        return left is not None and left <= 0

    def _retry_or_raise(self, exc: Any) -> None:
        """An API error of the watch: wait and retry when the server is unavailable,
        raise it as a BackendError otherwise."""
        mapped = map_api_error(exc, verb="watch", resource=JOBS, namespace=self.backend.namespace,
                               host=self.backend.host)
        if not isinstance(mapped, BackendUnavailableError):
            raise mapped from exc
        self.reconnect.wait_or_raise(mapped)
