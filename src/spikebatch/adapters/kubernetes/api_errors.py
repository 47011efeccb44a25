"""The kubernetes client's exceptions as spikebatch's one-line BackendErrors (never a
credential in the message)."""

from __future__ import annotations

import json
from typing import Any, Optional

from ...domain.errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    InvalidManifestError,
    JobConflictError,
    JobNotFoundError,
)
from ..jobs.manifest import ETCD_TOO_LARGE, too_large


def status_body(exc: Any) -> dict[str, Any]:
    """The API server's Status object carried by an ApiException (or {})."""
    body = getattr(exc, "body", None)
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def field_causes(status: dict[str, Any]) -> list[str]:
    causes = []
    for cause in (status.get("details") or {}).get("causes") or []:
        field, message = cause.get("field"), cause.get("message") or cause.get("reason") or ""
        causes.append(f"{field}: {message}" if field else message)
    return causes


def is_unreachable(exc: BaseException) -> bool:
    """The request never got an answer from the API server."""
    import urllib3

    return isinstance(exc, (urllib3.exceptions.HTTPError, ConnectionError, TimeoutError))


def unavailable(host: str, exc: BaseException) -> BackendUnavailableError:
    reason = getattr(exc, "reason", None) or exc
    text = " ".join(str(reason).split())
    # urllib3 repeats the pool object in its messages; keep the part a user can act on.
    if "Failed to establish a new connection:" in text:
        text = text.split("Failed to establish a new connection:", 1)[1].strip(" )'\"")
    return BackendUnavailableError(
        f"cannot reach the Kubernetes API server at {host}: {text[:200]}; check that the cluster is "
        "up and the kubeconfig's server address")


def map_api_error(exc: Any, *, verb: str, resource: str, namespace: str, host: str,
                  name: Optional[str] = None) -> BackendError:
    """One BackendError (one line, never a credential) for an ApiException."""
    status = getattr(exc, "status", None) or 0
    body = status_body(exc)
    server_msg = " ".join(str(body.get("message") or getattr(exc, "reason", "") or "").split())
    target = f"{resource} {name!r}" if name else resource
    where = f"in namespace {namespace!r}"
    if status == 401:
        return BackendAuthError(
            f"unauthorized (401): the API server at {host} rejected the kubeconfig's credentials "
            f"while trying to {verb} {target} {where}; refresh the token or certificate")
    if status == 403:
        return BackendAuthError(
            f"forbidden (403): not allowed to {verb} {target} {where} ({server_msg}); use a namespace "
            "your account may use or ask for an RBAC role that grants it")
    if status == 404:
        if name and verb != "create":
            return JobNotFoundError(f"{target} not found {where}")
        return BackendError(f"cannot {verb} {target} {where}: {server_msg or 'not found'} "
                            "(does the namespace exist?)")
    if status == 409:
        return JobConflictError(f"{target} already exists {where}; delete it or choose another name")
    if status == 413 or ETCD_TOO_LARGE in server_msg:
        return too_large(target, where, server_msg or f"HTTP {status}")
    if status == 422:
        causes = field_causes(body)
        detail = "; ".join(causes) if causes else server_msg
        return InvalidManifestError(f"the API server rejected {target} as invalid: {detail}", causes)
    if status in (0, 429, 500, 502, 503, 504):
        return BackendUnavailableError(
            f"the Kubernetes API server at {host} could not {verb} {target} {where} "
            f"(HTTP {status or 'no status'}: {server_msg or 'unavailable'}); retry shortly")
    return BackendError(f"cannot {verb} {target} {where}: HTTP {status} {server_msg}".strip())
