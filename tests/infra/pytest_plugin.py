"""pytest fixtures for the real test environment (see tests/infra/README.md).

Loaded by ``tests/conftest.py`` with ``pytest_plugins = ["infra.pytest_plugin"]``.

Session scope: ``minio_server``, ``kube_cluster``. Function scope: ``s3_bucket``,
``kube_namespace``. Nothing starts unless a test asks for it.

Where things come from, in order:
* S3: ``SPIKEBATCH_TEST_S3_ENDPOINT`` + ``..._ACCESS_KEY`` + ``..._SECRET_KEY``
  (+ optional ``..._REGION``), else the MinIO binary from the cache folder.
* Kubernetes: ``SPIKEBATCH_TEST_KUBECONFIG`` (+ optional
  ``SPIKEBATCH_TEST_USER_KUBECONFIG`` / ``SPIKEBATCH_TEST_USER_NAMESPACE``), else
  the binaries from the cache folder.
* Neither: the tests skip, saying how to enable them -- or fail instead of
  skipping when ``SPIKEBATCH_TESTENV_REQUIRED=1`` (CI on this project's machines).
"""
from __future__ import annotations

import os

import pytest

from . import build_testenv
from .testenv import KubeCluster, MinioServer, missing

HOW_TO_ENABLE = ("run `python tests/infra/build_testenv.py` (needs Go; builds into "
                 f"{build_testenv.cache_dir()}), or point the tests at existing services with "
                 "SPIKEBATCH_TEST_S3_ENDPOINT/_ACCESS_KEY/_SECRET_KEY and SPIKEBATCH_TEST_KUBECONFIG")


def _required() -> bool:
    return os.environ.get("SPIKEBATCH_TESTENV_REQUIRED", "") not in ("", "0", "false")


def _unavailable(what: str, comps: list[str]) -> None:
    msg = f"{what} not available: missing {', '.join(comps)} in the test-environment cache; {HOW_TO_ENABLE}"
    if _required():
        pytest.fail(msg + " (SPIKEBATCH_TESTENV_REQUIRED is set, so this fails instead of skipping)",
                    pytrace=False)
    pytest.skip(msg)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "integration: needs real services (MinIO, a Kubernetes API server)")


def _built_and_started(server_class, what: str):
    """Start ``server_class`` from the built binaries (skip or fail, saying how to build
    them, when they are missing) and stop it when the fixture ends."""
    absent = missing(server_class.COMPONENTS)
    if absent:
        _unavailable(what, absent)
    server = server_class().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def minio_server():
    endpoint = os.environ.get("SPIKEBATCH_TEST_S3_ENDPOINT")
    if endpoint:
        access = os.environ.get("SPIKEBATCH_TEST_S3_ACCESS_KEY")
        secret = os.environ.get("SPIKEBATCH_TEST_S3_SECRET_KEY")
        if not (access and secret):
            pytest.fail("SPIKEBATCH_TEST_S3_ENDPOINT is set but SPIKEBATCH_TEST_S3_ACCESS_KEY / "
                        "SPIKEBATCH_TEST_S3_SECRET_KEY are not", pytrace=False)
        yield MinioServer.external_endpoint(endpoint, access, secret,
                                            os.environ.get("SPIKEBATCH_TEST_S3_REGION", "us-east-1"))
        return
    yield from _built_and_started(MinioServer, "MinIO")


@pytest.fixture
def s3_bucket(minio_server):
    name = minio_server.make_bucket()
    yield name
    minio_server.remove_bucket(name)


@pytest.fixture(scope="session")
def kube_cluster():
    kubeconfig = os.environ.get("SPIKEBATCH_TEST_KUBECONFIG")
    if kubeconfig:
        yield KubeCluster.from_kubeconfig(
            kubeconfig,
            user_kubeconfig=os.environ.get("SPIKEBATCH_TEST_USER_KUBECONFIG"),
            user_namespace=os.environ.get("SPIKEBATCH_TEST_USER_NAMESPACE"),
        )
        return
    yield from _built_and_started(KubeCluster, "Kubernetes control plane")


@pytest.fixture
def kube_namespace(kube_cluster):
    name = kube_cluster.create_namespace()
    yield name
    kube_cluster.delete_namespace(name)


def pytest_report_header(config: pytest.Config) -> list[str]:
    miss = build_testenv.missing_components()
    return [f"spikebatch testenv cache: {build_testenv.cache_dir()} "
            f"({'complete' if not miss else 'missing ' + ', '.join(miss)})"]


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # Backstop: whatever is still running (an aborted session) goes now, not at exit.
    from .processes import stop_all

    stop_all()

