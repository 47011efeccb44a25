"""The testcontainers path: MinIO in a container, started by testcontainers through
podman's Docker-compatible API (tests/infra/container_services.py)."""
from __future__ import annotations

import os
import subprocess
from contextlib import closing

import docker
import pytest

from infra.container_services import (
    MINIO_REPOSITORY,
    OWNER_LABEL,
    RUN_DIRS_LABEL,
    SERVICE_LABEL,
    ContainerMinioServer,
    PodmanApiService,
    api_get,
    ensure_minio_image,
    sha256_file,
)
from infra.podman import image_exists, podman
from infra.testenv import MinioServer, binaries_dir

pytestmark = pytest.mark.integration


def _api(podman_api) -> docker.DockerClient:
    return docker.DockerClient(base_url=podman_api.docker_host)


def test_the_api_socket_is_podman_speaking_docker(podman_api) -> None:
    assert api_get(podman_api.socket_path, "/_ping") == (200, b"OK")
    with closing(_api(podman_api)) as api:
        components = [c["Name"] for c in api.version()["Components"]]
    assert "Podman Engine" in components
    assert podman_api.env() == {"DOCKER_HOST": f"unix://{podman_api.socket_path}",
                                "TESTCONTAINERS_RYUK_DISABLED": "true"}


def test_container_minio_serves_s3_from_the_cache_binary(minio_container, container_s3_bucket,
                                                         podman_api) -> None:
    assert isinstance(minio_container, MinioServer) and not minio_container.external
    s3 = minio_container.boto3_client()
    s3.put_object(Bucket=container_s3_bucket, Key="a/b.txt", Body=b"in a container")
    assert s3.get_object(Bucket=container_s3_bucket, Key="a/b.txt")["Body"].read() == b"in a container"
    assert minio_container.endpoint_url == f"http://127.0.0.1:{minio_container.port}"
    assert minio_container.env()["S3_ENDPOINT_URL"] == minio_container.endpoint_url

    with closing(_api(podman_api)) as api:
        container = api.containers.get(minio_container.container_id)
        image = api.images.get(minio_container.image)
        # Started by testcontainers, through this service, on the host network (no
        # iptables rules), MinIO bound to loopback only.
        assert container.status == "running"
        assert container.labels["org.testcontainers"] == "true"
        assert container.labels[SERVICE_LABEL] == podman_api.run_dir.name
        assert container.attrs["HostConfig"]["NetworkMode"] == "host"
        args = container.attrs["Args"]
        assert args[args.index("--address") + 1] == f"127.0.0.1:{minio_container.port}"
        assert args[args.index("--console-address") + 1].startswith("127.0.0.1:")
        # The image is the test cache's binary and nothing else.
        assert minio_container.image.startswith(f"{MINIO_REPOSITORY}:")
        assert image.labels["spikebatch.test.binary-sha256"] == sha256_file(binaries_dir() / "minio")
    assert podman_api.containers() == [minio_container.container_id]


def test_the_image_is_built_again_only_when_the_binary_changes(podman_api, tmp_path) -> None:
    repository = f"localhost/spikebatch-test-image-stamp-{os.getpid()}"
    binary = tmp_path / "minio"
    binary.write_bytes(b"first binary")
    first, built = ensure_minio_image(binary, repository)
    try:
        assert built and image_exists(first)
        assert ensure_minio_image(binary, repository) == (first, False)
        binary.write_bytes(b"second binary")
        second, built = ensure_minio_image(binary, repository)
        assert built and second != first
        assert image_exists(second) and not image_exists(first)  # the old tag is gone
    finally:
        for tag in podman("images", "--filter", f"reference={repository}",
                          "--format", "{{.Repository}}:{{.Tag}}").stdout.split():
            podman("rmi", tag)


@pytest.mark.usefixtures("minio_container")  # podman and the binary are there (else skip/fail)
def test_stopping_the_service_removes_its_containers_and_its_socket() -> None:
    """What happens on SIGTERM / exit: stop_all stops the service before any fixture
    teardown; the container must not outlive it."""
    service = PodmanApiService().start()
    minio = ContainerMinioServer(service)
    try:
        minio.start()
        run_dirs = (service.run_dir, minio.run_dir)
        assert service.containers() == [minio.container_id]
        process = service.process.proc
        service.stop()
        assert process.poll() is not None
        assert podman("ps", "-a", "-q", "--filter", f"id={minio.container_id}").stdout.split() == []
        assert not run_dirs[0].exists()
        minio.stop()  # the fixture's teardown afterwards: nothing left to do, no error
        assert not run_dirs[1].exists()
    finally:
        minio.stop()
        service.stop()


def test_containers_of_a_killed_session_are_removed_by_the_next_service(minio_container, tmp_path) -> None:
    """A SIGKILLed pytest runs no teardown: its container and folders stay until the
    next service starts. Containers of live sessions are left alone."""
    image = minio_container.image
    gone = subprocess.Popen(["true"])  # its pid stands for the SIGKILLed pytest
    gone.wait()
    folder = tmp_path / "spikebatch-minio-container-killed"
    (folder / "data").mkdir(parents=True)
    created = podman("create", "--label", f"{OWNER_LABEL}={gone.pid}", "--label", f"{SERVICE_LABEL}=gone",
                     "--label", f"{RUN_DIRS_LABEL}={folder}", "--network", "host", image, "--version").stdout.strip()
    alive = podman("create", "--label", f"{OWNER_LABEL}={os.getpid()}", "--label", f"{SERVICE_LABEL}=live",
                   "--network", "host", image, "--version").stdout.strip()
    service = PodmanApiService()
    try:
        service.start()
        # (another session starting a service at the same moment may be the one removing it)
        assert alive not in service.orphans_removed
        assert podman("ps", "-a", "-q", "--no-trunc", "--filter", f"id={created}").stdout.split() == []
        assert podman("ps", "-a", "-q", "--no-trunc", "--filter", f"id={alive}").stdout.split() == [alive]
        assert not folder.exists()
    finally:
        service.stop()
        podman("rm", "-f", "-i", created, alive)
