"""pytest fixtures for services in containers (see container_services.py).

Loaded by ``tests/conftest.py`` with ``pytest_plugins = [..., "infra.container_fixtures"]``.

Session scope: ``podman_api`` (podman's Docker API on a private socket),
``minio_container`` (a MinioServer run by testcontainers through it). Function scope:
``container_s3_bucket``. Nothing starts unless a test asks for it.

Without podman/runc or the MinIO binary the tests skip, saying how to get them -- or
fail when ``SPIKEBATCH_TESTENV_REQUIRED=1`` (CI).
"""
from __future__ import annotations

import pytest

from . import build_testenv
from .container_services import ContainerMinioServer, PodmanApiService, missing_tools
from .pytest_plugin import _required
from .testenv import missing


def _unavailable(what: str, why: str) -> None:
    msg = f"{what} not available: {why}"
    if _required():
        pytest.fail(msg + " (SPIKEBATCH_TESTENV_REQUIRED is set, so this fails instead of skipping)",
                    pytrace=False)
    pytest.skip(msg)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "s3_service(name): the MinIO an S3 case runs against: 'binary' (the minio_server "
        "fixture, the default) or 'container' (minio_container: testcontainers through podman)")


@pytest.fixture(scope="session")
def podman_api():
    """``.socket_path``, ``.docker_host`` (unix://...), ``.env()``, ``.labels()``,
    ``.docker_client_kw()``, ``.containers()``, ``.timings``."""
    absent = missing_tools()
    if absent:
        _unavailable("podman's Docker API", f"missing {', '.join(absent)}; "
                     f"`apt-get install {' '.join(absent)}` (as .ci/run does)")
    service = PodmanApiService().start()
    try:
        yield service
    finally:
        service.stop()


@pytest.fixture(scope="session")
def minio_container(podman_api):
    """A MinioServer (same interface as ``minio_server``) in a container started by
    testcontainers; also ``.image``, ``.container_id``, ``.timings``."""
    absent = missing(ContainerMinioServer.COMPONENTS)
    if absent:
        _unavailable("MinIO in a container", f"missing {', '.join(absent)} in the test-environment "
                     f"cache; run `python tests/infra/build_testenv.py` (builds into {build_testenv.cache_dir()})")
    server = ContainerMinioServer(podman_api).start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def container_s3_bucket(minio_container):
    name = minio_container.make_bucket()
    yield name
    minio_container.remove_bucket(name)
