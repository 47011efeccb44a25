"""kubectl's stderr -> spikebatch's one-line BackendErrors.

kubectl prints API errors as ``Error from server (<Reason>): <message>``, invalid
objects as ``The Job "x" is invalid: ...`` followed by one ``* <field>: <problem>``
line per cause (or, in older releases, ``[cause, cause]`` on one line), and
connection failures in a handful of forms (all recognised below).
"""

from __future__ import annotations

import re
from typing import Optional

from ...domain.errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    InvalidManifestError,
    JobConflictError,
    JobNotFoundError,
)
from ..jobs.manifest import ETCD_TOO_LARGE, too_large

_SERVER = re.compile(r"Error from server \((?P<reason>[A-Za-z]+)\):\s*(?P<msg>.*)")
_INVALID = re.compile(r"\S+ \"[^\"]*\" is invalid:\s*(?P<rest>.*)$")
# A cause starts with a field path of the Job: metadata..., spec..., status...
_CAUSE_START = re.compile(r",\s+(?=(?:metadata|spec|status|apiVersion|kind)[\w.\[\]/-]*:\s)")
_UNREACHABLE = ("Unable to connect to the server", "connection refused", "was refused",
                "i/o timeout", "no such host", "TLS handshake timeout", "connection reset",
                "EOF", "the server is currently unable", "http2: server sent GOAWAY",
                "ServiceUnavailable", "context deadline exceeded", "Client.Timeout")


def invalid_causes(stderr: str) -> Optional[list[str]]:
    """Field causes of an "is invalid" error, or None if stderr is not one."""
    lines = [ln.rstrip() for ln in stderr.splitlines()]
    for i, line in enumerate(lines):
        m = _INVALID.search(line.strip())
        if not m:
            continue
        bullets = [ln.strip()[2:].strip() for ln in lines[i + 1:] if ln.strip().startswith("* ")]
        if bullets:
            return bullets
        rest = m.group("rest").strip()
        if rest.startswith("[") and rest.endswith("]"):
            rest = rest[1:-1]
        return [c.strip() for c in _CAUSE_START.split(rest) if c.strip()]
    return None


def _main_line(stderr: str) -> str:
    lines = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    for marker in ("Error from server", "error:", "Unable to connect", "The connection to the server"):
        for line in lines:
            if line.startswith(marker):
                return line
    # kubectl wrappers print warnings first; the error is last.
    return lines[-1] if lines else "kubectl failed without a message"


def error_from_stderr(stderr: str, *, verb: str, resource: str, namespace: str,
                      name: Optional[str] = None) -> BackendError:
    target = f"{resource} {name!r}" if name else resource
    where = f"in namespace {namespace!r}"
    causes = invalid_causes(stderr)
    if causes is not None:
        return InvalidManifestError(f"the API server rejected {target} as invalid: {'; '.join(causes)}", causes)
    line = _main_line(stderr)
    m = _SERVER.search(line)
    reason, msg = (m.group("reason"), m.group("msg")) if m else ("", line)
    msg = re.sub(r'^error when \w+ "[^"]*":\s*', "", msg)
    if reason == "Forbidden":
        return BackendAuthError(f"forbidden (403): not allowed to {verb} {target} {where} ({msg}); use a "
                                "namespace your account may use or ask for an RBAC role that grants it")
    if reason == "Unauthorized" or "(Unauthorized)" in line or "must be logged in" in line:
        return BackendAuthError(f"unauthorized (401): the API server rejected the kubeconfig's credentials while "
                                f"trying to {verb} {target} {where}; refresh the token or certificate")
    if reason == "NotFound":
        if name and verb != "create":
            return JobNotFoundError(f"{target} not found {where}")
        return BackendError(f"cannot {verb} {target} {where}: {msg} (does the namespace exist?)")
    if reason == "RequestEntityTooLarge" or "Request entity too large" in line or ETCD_TOO_LARGE in line:
        return too_large(target, where, msg)
    if reason == "AlreadyExists":
        return JobConflictError(f"{target} already exists {where}; delete it or choose another name")
    if reason in ("ServiceUnavailable", "InternalError", "Timeout", "ServerTimeout", "TooManyRequests") or (
            not m and any(s in line for s in _UNREACHABLE)):
        return BackendUnavailableError(f"kubectl could not {verb} {target} {where}: {msg}; check that the "
                                       "cluster is up and the kubeconfig's server address")
    return BackendError(f"kubectl could not {verb} {target} {where}: {line}")
