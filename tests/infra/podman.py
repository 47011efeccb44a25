"""podman for the test environment: its configuration, its storage, and the base image.

This machine has no Docker daemon and no registry. podman (Debian package) builds and
runs images once it is told to use runc and cgroupfs (crun refuses the hybrid cgroup
tree) and not to raise ulimits above the hard limits (no CAP_SYS_RESOURCE). Those
settings and the image storage live in the test cache, not in /etc: the machine's own
podman configuration is never touched. Every podman call of the test suite (and of the
product, when a test runs ``spikebatch image build``) gets :func:`podman_env`.

The base image is Debian bookworm with its own python3, made by ``debootstrap``
(Debian's mirror is reachable, registries are not) and imported with ``podman import``.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from . import build_testenv

BASE_IMAGE = "localhost/debian-py:bookworm"
DEBIAN_SUITE = "bookworm"
DEBIAN_MIRROR = "http://deb.debian.org/debian"
BASE_PACKAGES = "python3,python3-venv,python3-pip,ca-certificates"
APT_PACKAGES = ("podman", "runc", "debootstrap")


class PodmanError(RuntimeError):
    pass


def podman_dir() -> Path:
    return build_testenv.cache_dir() / "podman"


def _write_if_changed(path: Path, text: str) -> None:
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def podman_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a podman process: our containers.conf and storage.conf."""
    root = podman_dir()
    containers_conf = root / "containers.conf"
    storage_conf = root / "storage.conf"
    _write_if_changed(containers_conf, (
        "[containers]\n"
        "default_ulimits = []\n"
        "[engine]\n"
        'runtime = "runc"\n'
        'cgroup_manager = "cgroupfs"\n'
        'events_logger = "file"\n'
        f'events_logfile_path = "{root / "events.log"}"\n'
    ))
    _write_if_changed(storage_conf, (
        "[storage]\n"
        'driver = "overlay"\n'
        f'graphroot = "{root / "storage"}"\n'
        f'runroot = "{root / "run"}"\n'
    ))
    env = dict(os.environ if base is None else base)
    env["CONTAINERS_CONF"] = str(containers_conf)
    env["CONTAINERS_STORAGE_CONF"] = str(storage_conf)
    return env


def missing_tools() -> list[str]:
    """The Debian packages whose programs are not on PATH (``.ci/run`` installs them)."""
    programs = {"podman": "podman", "runc": "runc", "debootstrap": "debootstrap"}
    found = {pkg for pkg, prog in programs.items()
             if shutil.which(prog) or Path("/usr/sbin", prog).exists()}
    return [pkg for pkg in APT_PACKAGES if pkg not in found]


def podman(*args: str, check: bool = True, capture: bool = True, timeout: float | None = None,
           stdin=None) -> subprocess.CompletedProcess:
    proc = subprocess.run(["podman", *args], env=podman_env(), text=True, timeout=timeout, stdin=stdin,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None)
    if check and proc.returncode != 0:
        raise PodmanError(f"podman {' '.join(args)} failed ({proc.returncode}): {(proc.stderr or '').strip()[-2000:]}")
    return proc


def image_exists(image: str) -> bool:
    return podman("image", "exists", image, check=False).returncode == 0


def image_id(image: str) -> str:
    return podman("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()


def ensure_base_image(log=build_testenv.log) -> str:
    """``BASE_IMAGE`` in our storage: made once by debootstrap (about 3 minutes)."""
    if image_exists(BASE_IMAGE):
        return BASE_IMAGE
    absent = missing_tools()
    if absent:
        raise PodmanError(f"missing Debian packages {', '.join(absent)}: "
                          f"`apt-get install {' '.join(absent)}` (as .ci/run does)")
    log(f"base image {BASE_IMAGE}: debootstrap {DEBIAN_SUITE} (about 3 min)")
    work = Path(tempfile.mkdtemp(prefix="debootstrap-", dir=podman_dir()))
    rootfs = work / "rootfs"
    try:
        with open(work / "debootstrap.log", "w") as out:
            rc = subprocess.run(["debootstrap", "--variant=minbase", f"--include={BASE_PACKAGES}",
                                 DEBIAN_SUITE, str(rootfs), DEBIAN_MIRROR],
                                stdout=out, stderr=subprocess.STDOUT).returncode
        if rc != 0:
            tail = (work / "debootstrap.log").read_text()[-2000:]
            raise PodmanError(f"debootstrap failed ({rc}):\n{tail}")
        # apt's lists and caches are not needed in an image and only make it larger.
        for junk in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for item in (rootfs / junk).glob("*"):
                if item.is_file():
                    item.unlink()
        log(f"base image {BASE_IMAGE}: podman import")
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            podman("import", "--change", "CMD [\"python3\"]", "-", BASE_IMAGE, stdin=tar.stdout)
        finally:
            tar.stdout.close()
            tar.wait()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BASE_IMAGE


def save_oci_archive(image: str, dest: Path) -> Path:
    """Write ``image`` as an OCI archive (what ``ctr images import`` reads)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    partial = dest.with_name(dest.name + ".partial")
    partial.unlink(missing_ok=True)
    podman("save", "--format", "oci-archive", "-o", str(partial), image)
    partial.replace(dest)
    return dest


if __name__ == "__main__":  # pragma: no cover - by hand: PYTHONPATH=tests python -m infra.podman
    print(ensure_base_image())
