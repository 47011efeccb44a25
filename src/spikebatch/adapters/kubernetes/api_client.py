"""The official kubernetes client, as KubernetesBatchJobBackend uses it: loading a
configuration, and counting every HTTP request the client makes.

``kubernetes`` is imported inside functions: importing spikebatch stays cheap, and a
machine without the package can still use the kubectl fallback.
"""

from __future__ import annotations

import os
import threading
from collections import Counter
from typing import Any, Optional
from urllib.parse import urlsplit


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


def server_host(api_client: Any) -> str:
    """The API server's address, for messages ("?" when the client has none)."""
    return getattr(getattr(api_client, "configuration", None), "host", "") or "?"


def kubeconfig_exists(kubeconfig: Optional[str]) -> bool:
    """An explicit kubeconfig path must exist (None defers to $KUBECONFIG / defaults)."""
    return kubeconfig is None or os.path.exists(os.path.expanduser(kubeconfig))
