"""The runner image of the test suite, built by the product's own ``spikebatch image build``.

``ensure_runner_image()`` makes sure the base image exists (``podman.ensure_base_image``:
Debian bookworm's own python3, so the build meets PEP 668 as a CUDA or distro base
would), then runs the real command line

    python -m spikebatch.entrypoints.cli image build --engine podman \\
        --base localhost/debian-py:bookworm --tag localhost/spikebatch-runner:test \\
        --ca-bundle /etc/ssl/certs/ca-certificates.crt --network host --output json

with ``podman_env()`` as its environment, and saves the image as an OCI archive under
``<test cache>/images/`` for the real node (``ctr images import``). The archive is
written again only when the image id changed. podman's layer cache makes a rebuild
after a change to spikebatch's code take seconds: the dependency layer is reused.

By hand: ``PYTHONPATH=tests python -m infra.runner_image``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from . import build_testenv
from .podman import BASE_IMAGE, PodmanError, ensure_base_image, podman, podman_env, save_oci_archive

TAG = "localhost/spikebatch-runner:test"
#: The host's CA bundle: this machine's package-index traffic is re-signed by a proxy
#: whose CA only this bundle trusts. Given to the build as a secret, never stored.
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


class RunnerImageError(RuntimeError):
    pass


@dataclass(frozen=True)
class RunnerImage:
    tag: str
    archive: Path
    image_id: str
    #: Seconds the ``spikebatch image build`` command took in this call.
    build_seconds: float


def images_dir() -> Path:
    return build_testenv.cache_dir() / "images"


def archive_path(tag: str = TAG) -> Path:
    name = tag.split("/")[-1].replace(":", "-")
    return images_dir() / f"{name}.oci.tar"


def build_command(tag: str = TAG, base: str = BASE_IMAGE, *extra: str) -> list[str]:
    """The command line the suite builds its image with (what a user would type)."""
    argv = [sys.executable, "-m", "spikebatch.entrypoints.cli", "image", "build", "--engine", "podman",
            "--base", base, "--tag", tag, "--network", "host", "--output", "json"]
    if CA_BUNDLE.is_file():
        argv += ["--ca-bundle", str(CA_BUNDLE)]
    return argv + list(extra)


def build_runner_image(tag: str = TAG, base: str = BASE_IMAGE, *extra: str,
                       log: Optional[Callable[[str], None]] = None) -> dict:
    """Run ``spikebatch image build`` (its JSON document is returned); the engine's
    output goes to ``<cache>/images/<name>.build.log``."""
    log = log or build_testenv.log
    images_dir().mkdir(parents=True, exist_ok=True)
    build_log = archive_path(tag).with_suffix("").with_suffix(".build.log")
    with open(build_log, "w") as err:
        proc = subprocess.run(build_command(tag, base, *extra), env=podman_env(), stdout=subprocess.PIPE,
                              stderr=err, text=True, cwd=images_dir())
    if proc.returncode != 0:
        tail = "\n".join(build_log.read_text().splitlines()[-30:])
        raise RunnerImageError(f"spikebatch image build exited {proc.returncode} (log {build_log}):\n{tail}")
    return json.loads(proc.stdout)


def ensure_runner_image(log: Optional[Callable[[str], None]] = None) -> RunnerImage:
    """``localhost/spikebatch-runner:test`` built from this checkout and saved as an OCI
    archive in the test cache; returns its tag, archive and image id."""
    log = log or build_testenv.log
    try:
        ensure_base_image(log)
    except PodmanError as exc:
        raise RunnerImageError(f"base image {BASE_IMAGE}: {exc}") from exc
    log(f"runner image {TAG}: spikebatch image build (cold: about 4 min, then seconds)")
    started = time.monotonic()
    built = build_runner_image(TAG, BASE_IMAGE, log=log)
    seconds = time.monotonic() - started
    image_id = built["image_id"]
    archive = archive_path(TAG)
    id_file = archive.with_name(archive.name + ".id")
    saved_id = id_file.read_text().strip() if id_file.is_file() else None
    if saved_id == image_id and archive.is_file():
        log(f"runner image {TAG}: built in {seconds:.1f} s, unchanged ({image_id[7:19]}); archive kept")
    else:
        save_started = time.monotonic()
        save_oci_archive(TAG, archive)
        id_file.write_text(image_id + "\n")
        if saved_id:
            # The previous build, now untagged: its own layers (the package's) go.
            podman("rmi", saved_id, check=False)
        log(f"runner image {TAG}: built in {seconds:.1f} s ({image_id[7:19]}); saved {archive.name} "
            f"({archive.stat().st_size / 1e6:.0f} MB) in {time.monotonic() - save_started:.1f} s")
    return RunnerImage(tag=TAG, archive=archive, image_id=image_id, build_seconds=seconds)


if __name__ == "__main__":  # pragma: no cover - by hand
    print(ensure_runner_image())
