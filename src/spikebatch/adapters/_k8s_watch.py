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
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional

from ..domain.errors import BackendUnavailableError, JobNotFoundError
from ..domain.job_state import JobWatchTracker
from ..ports.backend import JobEvent
from . import _k8s_client as kc
from ._backend_common import label_selector as selector_string
from ._backend_common import sleep_until

if TYPE_CHECKING:
    from .backend_k8s import KubernetesBatchJobBackend


def watch_jobs(backend: "KubernetesBatchJobBackend", job_names: Optional[Iterable[str]],
               labels: Optional[Mapping[str, str]], timeout_seconds: Optional[float]) -> Iterator[JobEvent]:
    from kubernetes import watch as k8s_watch
    from kubernetes.client.exceptions import ApiException

    names = sorted(set(job_names)) if job_names is not None else None
    tracker = JobWatchTracker.for_names(names)
    deadline = time.monotonic() + timeout_seconds if timeout_seconds is not None else None
    selectors: dict[str, Any] = {}
    if labels:
        selectors["label_selector"] = selector_string(labels)
    if names is not None and len(names) == 1:
        selectors["field_selector"] = f"metadata.name={names[0]}"  # the server filters for us

    def list_jobs() -> tuple[list[dict], str]:
        data = backend._json(backend._batch.list_namespaced_job, backend.namespace, verb="list",
                             resource="jobs.batch", **selectors)
        return data.get("items") or [], (data.get("metadata") or {}).get("resourceVersion", "")

    items, rv = list_jobs()
    yield from tracker.relisted(items, kind="ADDED")
    missing = tracker.missing()
    if missing:
        raise JobNotFoundError(f"job {missing[0]!r} not found in namespace {backend.namespace!r}")

    w = k8s_watch.Watch()
    relist = False
    down_since: Optional[float] = None
    failures = 0

    def time_left() -> Optional[float]:
        return None if deadline is None else deadline - time.monotonic()

    while not tracker.done():
        left = time_left()
        if left is not None and left <= 0:
            return
        try:
            if relist:
                items, rv = list_jobs()
                relist = False
                yield from tracker.relisted(items)
                continue
            chunk = backend.watch_chunk_seconds if left is None else max(1, min(backend.watch_chunk_seconds,
                                                                                int(left) + 1))
            stream = w.stream(backend._batch.list_namespaced_job, backend.namespace, resource_version=rv,
                              allow_watch_bookmarks=True, timeout_seconds=chunk,
                              _request_timeout=(10.0, chunk + 30.0), **selectors)
            opened, seen = time.monotonic(), 0
            for event in stream:
                seen += 1
                down_since, failures = None, 0
                obj = event.get("raw_object") or {}
                rv = (obj.get("metadata") or {}).get("resourceVersion") or rv
                if event.get("type") != "BOOKMARK":
                    ev = tracker.observe(obj, event.get("type", "MODIFIED"))
                    if ev is not None:
                        yield ev
                left = time_left()
                if tracker.done() or (left is not None and left <= 0):
                    w.stop()
                    break
            if not seen and time.monotonic() - opened < 1.0:
                sleep_until(deadline, 0.5)  # closed at once with nothing said: do not spin
        except ApiException as exc:
            if exc.status == 410:
                relist = True
                continue
            mapped = kc.map_api_error(exc, verb="watch", resource="jobs.batch", namespace=backend.namespace,
                                      host=backend.host)
            if not isinstance(mapped, BackendUnavailableError):
                raise mapped from exc
            down_since, failures = _wait_to_retry(backend, down_since, failures, deadline, mapped)
        except BackendUnavailableError as exc:  # from list_jobs
            down_since, failures = _wait_to_retry(backend, down_since, failures, deadline, exc)
        except Exception as exc:
            if not kc.is_unreachable(exc):
                raise
            down_since, failures = _wait_to_retry(backend, down_since, failures, deadline,
                                                  kc.unavailable(backend.host, exc))


def _wait_to_retry(backend: "KubernetesBatchJobBackend", down_since: Optional[float], failures: int,
                   deadline: Optional[float], error: BackendUnavailableError) -> tuple[float, int]:
    """Back off before reconnecting; give up (raise ``error``) after the grace period."""
    now = time.monotonic()
    down_since = down_since if down_since is not None else now
    if now - down_since > backend.watch_reconnect_grace_seconds:
        raise error
    failures += 1
    sleep_until(deadline, min(5.0, 0.25 * 2 ** min(failures, 5)))
    return down_since, failures
