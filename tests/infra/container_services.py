"""Test services in containers, started by testcontainers through podman's Docker API.

The design names testcontainers for the MinIO fixture on machines with Docker. This
machine has no Docker daemon, but podman serves the same API on a unix socket
(``podman system service``), and testcontainers (docker-py underneath) talks to it
like to a Docker daemon. Nothing here needs a registry:

* :class:`PodmanApiService` -- ``podman system service --time=0 unix://<run dir>/podman.sock``
  under :func:`infra.podman.podman_env` (runc, cgroupfs, the test cache's storage), a
  :class:`~infra.processes.ManagedProcess`, so it is stopped with the other servers (fixture
  teardown, exit, SIGTERM/SIGHUP, PDEATHSIG). Stopping it first removes every container
  started through it; containers of an earlier session that was SIGKILLed are removed
  when the next service starts.
* :func:`ensure_minio_image` -- ``localhost/spikebatch-minio:<sha256 prefix of the binary>``:
  the MinIO binary of the test cache (static, ``CGO_ENABLED=0``) copied into an empty
  (``FROM scratch``) image; built again only when the binary changes.
* :class:`ContainerMinioServer` -- a :class:`~infra.testenv.MinioServer` (same fields and
  helpers) whose server runs in that image, started with testcontainers'
  ``DockerContainer``. Host networking, MinIO listening on ``127.0.0.1:<free port>``:
  podman's default network would add iptables rules on the host; the host network
  adds none.

By hand (from the repository root)::

    PYTHONPATH=tests python -m infra.container_services   # start, print the endpoint, Ctrl-C stops
"""
from __future__ import annotations

import fcntl
import hashlib
import http.client
import json
import os
import shutil
import socket
import time
from pathlib import Path

from . import build_testenv
from .podman import image_exists, podman, podman_dir, podman_env
from .processes import ManagedProcess, StartupError, free_port, http_ok, wait_until
from .testenv import LOOPBACK, MinioServer, _keep, _run_dir, binaries_dir

MINIO_REPOSITORY = "localhost/spikebatch-minio"
OWNER_LABEL = "spikebatch.test.owner-pid"      # the pytest process that started the container
SERVICE_LABEL = "spikebatch.test.podman-api"   # the API service it was started through
RUN_DIRS_LABEL = "spikebatch.test.run-dirs"    # folders to remove with it (":"-separated)
_RUN_DIR_PREFIXES = ("spikebatch-podman-api-", "spikebatch-minio-container-")
TOOLS = ("podman", "runc")                     # Debian packages of the same names
CONTAINERFILE = 'FROM scratch\nCOPY minio /minio\nENTRYPOINT ["/minio"]\n'
_SOCKET_PATH_MAX = 107  # sun_path is 108 bytes with the terminating NUL


def missing_tools() -> list[str]:
    """The programs this module needs that are not installed (``apt-get install`` names)."""
    return [t for t in TOOLS if not (shutil.which(t) or Path("/usr/sbin", t).exists())]


# --------------------------------------------------------------------------- the API socket

class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        try:
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def api_get(socket_path: Path | str, path: str, timeout: float = 3.0) -> tuple[int, bytes]:
    """``GET path`` on a Docker-API unix socket: (status, body)."""
    conn = _UnixHTTPConnection(str(socket_path), timeout)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_containers(*filters: str) -> list[str]:
    """``podman rm -f`` every container matching all ``filters``; returns their ids."""
    args = [a for f in filters for a in ("--filter", f)]
    ids = podman("ps", "-a", "-q", "--no-trunc", *args).stdout.split()
    if ids:
        podman("rm", "-f", "-i", "-t", "0", *ids)
    return ids


def remove_orphaned_containers() -> list[str]:
    """Remove containers whose owning pytest process is gone (it was SIGKILLed, so no
    teardown ran), and the run folders named on them; containers of live sessions are
    left alone."""
    listing = podman("ps", "-a", "--filter", f"label={OWNER_LABEL}", "--format", "json").stdout
    removed: list[str] = []
    for entry in json.loads(listing or "[]"):
        owner = (entry.get("Labels") or {}).get(OWNER_LABEL, "")
        if owner.isdigit() and not _pid_alive(int(owner)):
            removed += _remove_containers(f"id={entry['Id']}")
            for folder in (entry.get("Labels") or {}).get(RUN_DIRS_LABEL, "").split(":"):
                path = Path(folder)
                if path.is_absolute() and path.name.startswith(_RUN_DIR_PREFIXES) and path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
    return removed


class _ServiceProcess(ManagedProcess):
    """The ``podman system service`` process. Containers outlive the service (conmon
    detaches from its process group), so stopping it -- also from ``stop_all`` at exit
    or on a signal -- removes the containers started through it first."""

    def __init__(self, *args, service_id: str, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.service_id = service_id

    def stop(self, timeout: float = 2.0) -> None:
        try:
            if self.proc is not None:
                _remove_containers(f"label={SERVICE_LABEL}={self.service_id}")
        finally:
            super().stop(timeout)


class PodmanApiService:
    """podman's Docker-compatible API on a private unix socket.

    ``socket_path``, ``docker_host`` (``unix://...``), ``labels()`` (to put on every
    container started through it), ``env()`` (``DOCKER_HOST`` and
    ``TESTCONTAINERS_RYUK_DISABLED`` for a child process), ``docker_client_kw()`` (for
    testcontainers' ``DockerContainer(docker_client_kw=...)``), ``containers()``,
    ``orphans_removed`` (ids of containers of dead sessions removed at start), ``timings``."""

    def __init__(self) -> None:
        self.run_dir: Path | None = None
        self.socket_path: Path | None = None
        self.docker_host = ""
        self.process: _ServiceProcess | None = None
        self.timings: dict[str, float] = {}
        self.orphans_removed: list[str] = []

    def start(self, timeout: float = 30) -> "PodmanApiService":
        t0 = time.monotonic()
        self.orphans_removed = remove_orphaned_containers()
        self.run_dir = _run_dir("podman-api")
        self.socket_path = self.run_dir / "podman.sock"
        if len(str(self.socket_path)) > _SOCKET_PATH_MAX:
            raise StartupError(f"socket path too long for a unix socket: {self.socket_path} "
                               "(shorten SPIKEBATCH_TESTENV_RUNDIR)")
        self.docker_host = f"unix://{self.socket_path}"
        self.process = _ServiceProcess(
            "podman-api", ["podman", "system", "service", "--time=0", self.docker_host],
            log_path=self.run_dir / "podman-service.log", env=podman_env(), cwd=self.run_dir,
            service_id=self.run_dir.name,
        ).start()
        try:
            wait_until(self.process, self.answers, timeout=timeout, what="answering GET /_ping")
        except BaseException:
            self.stop()
            raise
        self.timings["start"] = time.monotonic() - t0
        return self

    def answers(self) -> bool:
        return self.socket_path is not None and api_get(self.socket_path, "/_ping") == (200, b"OK")

    def running(self) -> bool:
        return self.process is not None and self.process.alive()

    def labels(self, *run_dirs: Path) -> dict[str, str]:
        """Labels for a container started through this service (``run_dirs``: the
        container's own folders, removed with it if its session is SIGKILLed)."""
        return {SERVICE_LABEL: self.run_dir.name, OWNER_LABEL: str(os.getpid()),
                RUN_DIRS_LABEL: ":".join(str(d) for d in (self.run_dir, *run_dirs))}

    def env(self) -> dict[str, str]:
        # Ryuk (testcontainers' reaper) is an image from Docker Hub, which is unreachable
        # here; the service removes our containers itself.
        return {"DOCKER_HOST": self.docker_host, "TESTCONTAINERS_RYUK_DISABLED": "true"}

    def docker_client_kw(self) -> dict:
        # docker.from_env(environment=...) reads DOCKER_HOST from this mapping, not from
        # os.environ: nothing of the process environment changes.
        return {"environment": {"DOCKER_HOST": self.docker_host}}

    def containers(self) -> list[str]:
        """Ids of the containers (running or not) started through this service."""
        return podman("ps", "-a", "-q", "--no-trunc", "--filter",
                      f"label={SERVICE_LABEL}={self.run_dir.name}").stdout.split()

    def stop(self) -> None:
        if self.process:
            self.process.stop()
            self.process = None
        if self.run_dir and not _keep():
            shutil.rmtree(self.run_dir, ignore_errors=True)

    def __repr__(self) -> str:
        return f"PodmanApiService({self.docker_host!r})"


# --------------------------------------------------------------------------- the MinIO image

def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def minio_image_tag(binary: Path, repository: str = MINIO_REPOSITORY) -> str:
    return f"{repository}:{sha256_file(binary)[:16]}"


def ensure_minio_image(binary: Path | None = None, repository: str = MINIO_REPOSITORY,
                       log=build_testenv.log) -> tuple[str, bool]:
    """The image holding ``binary`` (default: the test cache's MinIO) as ``/minio``:
    (tag, whether it was built now). Older tags of ``repository`` are removed when
    the binary changed."""
    binary = Path(binary or binaries_dir() / "minio")
    digest = sha256_file(binary)
    tag = f"{repository}:{digest[:16]}"
    if image_exists(tag):
        return tag, False
    lock_path = podman_dir() / f".{repository.rsplit('/', 1)[-1]}.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    with open(lock_path, "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # a concurrent session builds it once, the other waits
        if image_exists(tag):
            return tag, False
        log(f"image {tag}: podman build from {binary}")
        context = podman_dir() / f"build-{digest[:16]}"
        shutil.rmtree(context, ignore_errors=True)
        context.mkdir(parents=True)
        try:
            try:
                os.link(binary, context / "minio")  # same file system as the cache: no copy
            except OSError:
                shutil.copy2(binary, context / "minio")
            (context / "Containerfile").write_text(CONTAINERFILE)
            podman("build", "--pull=never", "--label", f"spikebatch.test.binary-sha256={digest}",
                   "-t", tag, "-f", str(context / "Containerfile"), str(context))
        finally:
            shutil.rmtree(context, ignore_errors=True)
        old = podman("images", "--filter", f"reference={repository}",
                     "--format", "{{.Repository}}:{{.Tag}}").stdout.split()
        for stale in sorted(set(old) - {tag}):
            # An image still used by a container of another session stays; it goes later.
            podman("rmi", stale, check=False)
    return tag, True


# --------------------------------------------------------------------------- MinIO in a container

class _ContainerHandle:
    """What MinioServer and ``wait_until`` expect of ``.process`` (``alive()``,
    ``stop()``, ``fail()``), for a testcontainers container."""

    proc = None  # no child process of ours: the container runs under conmon

    def __init__(self, name: str, container, service: PodmanApiService) -> None:
        self.name = name
        self.container = container
        self.service = service

    def _id(self) -> str | None:
        wrapped = self.container._container  # None until created
        return wrapped.id if wrapped is not None else None

    def alive(self) -> bool:
        import docker.errors

        if self._id() is None or not self.service.running():
            return False
        try:
            self.container.reload()
        except docker.errors.NotFound:
            return False
        return self.container.status == "running"

    def log_tail(self, lines: int = 25) -> str:
        import docker.errors

        if self._id() is None or not self.service.running():
            return "(no container, or the API service is gone)"
        try:
            out, err = self.container.get_logs()
        except docker.errors.NotFound:
            return "(container is gone)"
        text = (out + err).decode(errors="replace")
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, why: str) -> StartupError:
        return StartupError(f"{self.name}: {why}\n--- last lines of its log ---\n{self.log_tail()}")

    def stop(self) -> None:
        import docker.errors

        ident = self._id()
        if ident is not None and self.service.running():
            try:
                self.container.get_wrapped_container().remove(force=True, v=True)
            except docker.errors.NotFound:
                pass  # already removed
        elif ident is not None:
            # The service was stopped first (stop_all on a signal): it removed its
            # containers; make sure without it.
            _remove_containers(f"id={ident}")
        self.container.get_docker_client().client.close()


class ContainerMinioServer(MinioServer):
    """MinioServer whose server is the test cache's MinIO binary in a container, started
    with testcontainers through ``service`` (a :class:`PodmanApiService`)."""

    def __init__(self, service: PodmanApiService) -> None:
        super().__init__()
        self.service = service
        self.image = ""
        self.container_id = ""
        self.timings: dict[str, float] = {}

    def start(self, timeout: float = 60) -> "ContainerMinioServer":
        from testcontainers.core.config import testcontainers_config
        from testcontainers.core.container import DockerContainer

        t0 = time.monotonic()
        self.image, built = ensure_minio_image()
        self.timings["image build" if built else "image check"] = time.monotonic() - t0
        t = time.monotonic()
        self.run_dir = _run_dir("minio-container")
        try:
            (self.run_dir / "data").mkdir()
            self.port = free_port()
            console = free_port()
            self.endpoint_url = f"http://{LOOPBACK}:{self.port}"
            testcontainers_config.ryuk_disabled = True  # see PodmanApiService.env
            container = DockerContainer(
                self.image,
                docker_client_kw=self.service.docker_client_kw(),
                command=["server", "--quiet", "--address", f"{LOOPBACK}:{self.port}",
                         "--console-address", f"{LOOPBACK}:{console}", "--certs-dir", "/certs", "/data"],
                env={"MINIO_ROOT_USER": self.access_key, "MINIO_ROOT_PASSWORD": self.secret_key,
                     "MINIO_BROWSER": "off", "MINIO_UPDATE": "off", "MINIO_REGION": self.region,
                     "MINIO_PROMETHEUS_AUTH_TYPE": "public"},
                name=f"spikebatch-minio-{self.run_dir.name.rsplit('-', 1)[-1]}-{os.getpid()}",
                network_mode="host",
                labels=self.service.labels(self.run_dir),
            ).with_volume_mapping(str(self.run_dir / "data"), "/data", "rw")
            self.process = _ContainerHandle("minio (container)", container, self.service)
            container.start()
            self.container_id = container.get_container_id()
            self.timings["container start"] = time.monotonic() - t
            wait_until(self.process, lambda: http_ok(f"{self.endpoint_url}/minio/health/ready"),
                       timeout=timeout, what="ready (/minio/health/ready)")
        except BaseException:
            self.stop()
            raise
        self.timings["ready"] = time.monotonic() - t
        self.startup_seconds = self.timings["total"] = time.monotonic() - t0
        return self

    def __repr__(self) -> str:
        return f"ContainerMinioServer({self.endpoint_url!r}, image={self.image!r})"


def main() -> int:  # pragma: no cover - manual bring-up
    import signal as _signal

    absent = missing_tools()
    if absent:
        print(f"missing: {', '.join(absent)} (apt-get install {' '.join(absent)})")
        return 1
    service = PodmanApiService().start()
    try:
        minio = ContainerMinioServer(service).start()
        print(f"{service}  {service.timings}\n{minio}  {minio.timings}\n"
              f"access={minio.access_key} secret={minio.secret_key}\nCtrl-C to stop.")
        try:
            _signal.pause()
        except KeyboardInterrupt:
            pass
        minio.stop()
    finally:
        service.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
