"""``KubectlBackend.watch``: ``kubectl get jobs --watch --output-watch-events -o json``.

Each round lists the Jobs (``kubectl get jobs -o json``: current states, and which
known Jobs vanished while no watch ran), then runs kubectl's watch, whose first
events repeat the list it made itself, so nothing changes unseen between the two.
When the kubectl process ends (a dropped connection, an API-server restart, kubectl's
own 410 handling giving up), the next round starts; an unreachable API server is
retried with back-off for ``watch_reconnect_grace_seconds``.
"""

from __future__ import annotations

import json
import time
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping, Optional

from ..domain.errors import BackendAuthError, BackendError, JobNotFoundError
from ..domain.job_state import JobWatchTracker
from ..ports.backend import JobEvent
from ._backend_common import LineFollower, label_selector, sleep_until

if TYPE_CHECKING:
    from .backend_kubectl import KubectlBackend


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
               labels: Optional[Mapping[str, str]], timeout_seconds: Optional[float]) -> Iterator[JobEvent]:
    names = sorted(set(job_names)) if job_names is not None else None
    tracker = JobWatchTracker.for_names(names)
    deadline = time.monotonic() + timeout_seconds if timeout_seconds is not None else None
    selector = label_selector(labels)
    args = ["get", "jobs"]
    if selector:
        args += ["-l", selector]
    if names is not None and len(names) == 1:
        args += ["--field-selector", f"metadata.name={names[0]}"]

    def expired() -> bool:
        return deadline is not None and time.monotonic() >= deadline

    first = True
    down_since: Optional[float] = None
    failures = 0
    while not tracker.done() and not expired():
        try:
            items = backend._json(list(args), verb="list", resource="jobs.batch").get("items") or []
            yield from tracker.relisted(items, kind="ADDED" if first else "RELISTED")
            if first:
                first = False
                missing = tracker.missing()
                if missing:
                    raise JobNotFoundError(f"job {missing[0]!r} not found in namespace {backend.namespace!r}")
            if tracker.done():
                return
            lines, stop = backend._stream_process([*args, "--watch", "--output-watch-events", "-o", "json"],
                                                  verb="watch", resource="jobs.batch")
            follower = LineFollower(lines, stop, lambda: expired() or tracker.done(), first_check=0.25, max_check=1.0)
            got_any = False
            for event in json_objects(follower):
                got_any = True
                down_since, failures = None, 0
                kind = event.get("type", "MODIFIED")
                # kubectl's watch starts by repeating its own list as ADDED.
                ev = tracker.observe(event.get("object") or {}, "MODIFIED" if kind == "ADDED" else kind)
                if ev is not None:
                    yield ev
                if tracker.done() or expired():
                    follower.stop()
                    return
            if follower.error is not None:
                raise follower.error
            if not got_any:
                sleep_until(deadline, 0.5)  # kubectl ended at once: do not spin
        except (JobNotFoundError, BackendAuthError):
            raise
        except BackendError:
            # Unreachable, or the watch broke in a way kubectl reports as an error:
            # both resolve by listing and watching again, as long as the grace lasts.
            now = time.monotonic()
            down_since = down_since if down_since is not None else now
            if now - down_since > backend.watch_reconnect_grace_seconds:
                raise
            failures += 1
            sleep_until(deadline, min(5.0, 0.25 * 2 ** min(failures, 5)))
