"""The official kubernetes client, as KubernetesBatchJobBackend uses it: loading a
configuration, counting every HTTP request the client makes, and turning the
client's exceptions into spikebatch's one-line BackendErrors.

``kubernetes`` is imported inside functions: importing spikebatch stays cheap, and a
machine without the package can still use the kubectl fallback.
"""

from __future__ import annotations

import json
import os
import threading
from collections import Counter
from typing import Any, Optional
from urllib.parse import urlsplit

from ..domain.errors import (
    BackendAuthError,
    BackendError,
    BackendUnavailableError,
    InvalidManifestError,
    JobConflictError,
    JobNotFoundError,
)


class ClientConfigMissing(Exception):
    """No client configuration could be loaded (the reason is in the message)."""


_CLIENT_CLASS: Any = None


def counting_client_class() -> Any:
    """ApiClient subclass counting requests (one per HTTP request: a list, a get, each
    watch connection, each log stream), per kind, for the benchmark and for users
    who want to know what a wait costs the API server."""
    global _CLIENT_CLASS
    if _CLIENT_CLASS is None:
        from kubernetes import client

        class CountingApiClient(client.ApiClient):
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                super().__init__(*args, **kwargs)
                self._count_lock = threading.Lock()
                self.request_count = 0
                self.requests_by_kind: Counter[str] = Counter()

            def call_api(self, method: str, url: str, *args: Any, **kwargs: Any) -> Any:
                kind = request_kind(method, url)
                with self._count_lock:
                    self.request_count += 1
                    self.requests_by_kind[kind] += 1
                return super().call_api(method, url, *args, **kwargs)

        _CLIENT_CLASS = CountingApiClient
    return _CLIENT_CLASS


def request_kind(method: str, url: str) -> str:
    """"create", "delete", "watch", "log", "list" or "get" for one request."""
    parts = urlsplit(url)
    method = method.upper()
    if method == "POST":
        return "create"
    if method == "DELETE":
        return "delete"
    if method != "GET":
        return method.lower()
    if "watch=true" in parts.query.lower():
        return "watch"
    path = parts.path.rstrip("/")
    if path.endswith("/log"):
        return "log"
    last = path.rsplit("/", 1)[-1]
    return "list" if last in ("jobs", "pods") else "get"


def load_api_client(kubeconfig: Optional[str]) -> Any:
    """A counting ApiClient from ``kubeconfig`` (None: $KUBECONFIG / ~/.kube/config,
    then the in-cluster service account). Raises ClientConfigMissing."""
    try:
        from kubernetes import client, config
        from kubernetes.config.config_exception import ConfigException
    except ImportError as exc:
        raise ClientConfigMissing(f"the kubernetes package is not importable ({exc})") from exc
    import yaml

    cfg = client.Configuration()
    try:
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    except (ConfigException, OSError, yaml.YAMLError, KeyError, TypeError, ValueError) as exc:
        reason = " ".join(str(exc).split()) or type(exc).__name__
        if kubeconfig is not None:
            raise ClientConfigMissing(f"kubeconfig {kubeconfig!r} did not load: {reason}") from exc
        try:
            config.load_incluster_config(client_configuration=cfg)
        except ConfigException as exc2:
            raise ClientConfigMissing(
                f"no kubeconfig ({reason}) and not inside a cluster ({' '.join(str(exc2).split())})") from exc2
    return counting_client_class()(cfg)


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
    if status == 422:
        causes = field_causes(body)
        detail = "; ".join(causes) if causes else server_msg
        return InvalidManifestError(f"the API server rejected {target} as invalid: {detail}", causes)
    if status in (0, 429, 500, 502, 503, 504):
        return BackendUnavailableError(
            f"the Kubernetes API server at {host} could not {verb} {target} {where} "
            f"(HTTP {status or 'no status'}: {server_msg or 'unavailable'}); retry shortly")
    return BackendError(f"cannot {verb} {target} {where}: HTTP {status} {server_msg}".strip())


def server_host(api_client: Any) -> str:
    host = getattr(getattr(api_client, "configuration", None), "host", "") or "?"
    return host


def env_kubeconfig_exists(kubeconfig: Optional[str]) -> bool:
    """An explicit kubeconfig path must exist (None defers to $KUBECONFIG / defaults)."""
    return kubeconfig is None or os.path.exists(os.path.expanduser(kubeconfig))
