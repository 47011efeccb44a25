"""The lines of a streamed urllib3 response of the API server (a followed pod log), in
the (lines, close) shape PodLogStream reads."""

from __future__ import annotations

from typing import Any, Callable, Iterator


def response_lines(resp: Any) -> tuple[Iterator[str], Callable[[], None]]:
    """(lines, close) of an urllib3 response of the API server, for PodLogStream."""
    return _resp_lines(resp), lambda: _shutdown(resp)


def _resp_lines(resp: Any) -> Iterator[str]:
    from kubernetes.watch.watch import iter_resp_lines

    try:
        yield from iter_resp_lines(resp)
    finally:
        resp.close()
        resp.release_conn()


def _shutdown(resp: Any) -> None:
    # Unblocks the thread reading the response; that thread closes it (closing from
    # here could wait on the SSL lock the blocked read holds).
    shutdown = getattr(resp, "shutdown", None)
    if shutdown is not None:
        shutdown()
