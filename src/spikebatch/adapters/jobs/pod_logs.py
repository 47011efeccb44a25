"""Following the logs of a Job's pods through the API server, exactly once per line.

A pod's stream is asked for with timestamps, so a reconnect (API server restart,
dropped connection) skips the lines already yielded. A followed log normally ends when
the container exits; kwok and broken proxies keep it open, so while the stream is
silent the pod is looked at, and a finished pod ends the follow. A Job's log is the
logs of all its pods, oldest first, retried pods included.
"""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Any, Callable, Iterator, Mapping, Optional

from ...domain.errors import BackendUnavailableError, JobNotFoundError
from ...domain.job_state import job_state_of
from .line_follower import LineFollower
from .objects import pod_has_finished, pod_has_started

#: A reconnect asks for the last (now - last line) + this many seconds, so a clock
#: difference between us and the node cannot lose lines (duplicates are dropped).
SINCE_MARGIN_SECONDS = 60


def timestamp_key(ts: str) -> Optional[tuple[str, int]]:
    """Sortable key of an RFC 3339 timestamp with up to 9 fractional digits (the
    kubelet trims trailing zeros, so plain string order is wrong)."""
    if len(ts) < 20 or ts[4] != "-" or ts[10] != "T":
        return None
    head, _, frac = ts.rstrip("Z").partition(".")
    digits = "".join(ch for ch in frac if ch.isdigit())
    return head[:19], int((digits + "000000000")[:9])


def _seconds_since(key: tuple[str, int]) -> float:
    try:
        then = datetime.strptime(key[0], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=timezone.utc)
    except ValueError:
        return 0.0
    return max(0.0, (datetime.now(timezone.utc) - then).total_seconds())


class PodLogStream:
    """Yields the log lines of one container of one pod, following it to its end.

    ``open_log(follow, since_seconds)`` starts reading the log (timestamps on) and
    returns ``(lines, close)``: an iterator of its lines and a function that unblocks
    that iterator from another thread; it raises a BackendError when the log cannot
    be opened. ``read_pod()`` returns the pod as a dict, or None when it is gone;
    ``is_unreachable`` tells a dropped connection from other errors of the reading.
    Used by the Kubernetes adapter (a response of the API) and by the kubectl
    adapter (a ``kubectl logs -f`` process).
    """

    def __init__(self, open_log: Callable[[bool, Optional[int]], tuple[Iterator[str], Callable[[], None]]],
                 read_pod: Callable[[], Optional[dict]], is_unreachable: Callable[[BaseException], bool]) -> None:
        self._open, self._read_pod, self._unreachable = open_log, read_pod, is_unreachable
        self._last: Optional[tuple[str, int]] = None
        self._same = 0  # lines already yielded that carry exactly the timestamp self._last
        self._skip = 0  # after a reconnect: how many of those the new stream repeats

    def _fresh(self, raw: str) -> Optional[str]:
        ts, sep, text = raw.partition(" ")
        key = timestamp_key(ts) if sep else None
        if key is None:  # not a timestamped line (should not happen): pass it through
            return raw
        if self._last is not None:
            if key < self._last:
                return None
            if key == self._last:
                if self._skip > 0:
                    self._skip -= 1
                    return None
                self._same += 1
                return text
        self._last, self._same = key, 1
        return text

    def lines(self) -> Iterator[str]:
        if not self._wait_started():
            return
        failures = 0
        while True:
            self._skip = self._same if self._last is not None else 0
            since = int(_seconds_since(self._last)) + SINCE_MARGIN_SECONDS if self._last else None
            try:
                lines, close = self._open(True, since)
            except BackendUnavailableError:
                if failures >= 30:
                    raise
                failures += 1
                time.sleep(min(5.0, 0.5 * failures))
                continue
            follower = LineFollower(lines, close, self._finished)
            for raw in follower:
                text = self._fresh(raw)
                if text is not None:
                    yield text
            if not follower.ended_by_source:
                return  # silent and finished: everything it wrote has been read
            if follower.error is not None and not self._unreachable(follower.error):
                raise follower.error
            if self._finished():
                # The stream ended with the container; one plain read catches lines a
                # dropped connection may have cut off (duplicates are skipped).
                if follower.error is not None:
                    yield from self._final_read()
                return
            failures = failures + 1 if follower.error is not None else 0
            time.sleep(min(5.0, 0.5 * failures))

    def _final_read(self) -> Iterator[str]:
        self._skip = self._same if self._last is not None else 0
        lines, _close = self._open(False, None)
        for raw in lines:
            text = self._fresh(raw)
            if text is not None:
                yield text

    def _finished(self) -> bool:
        return pod_has_finished(self._read_pod())

    def _wait_started(self) -> bool:
        """Wait until the container has run (a Pending pod has no log yet). False when
        the pod went away or finished without ever starting."""
        wait = 0.5
        while True:
            pod = self._read_pod()
            if pod is None:
                return False
            if pod_has_started(pod):
                return True
            if pod_has_finished(pod):
                return False
            time.sleep(wait)
            wait = min(wait * 1.5, 5.0)


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
