"""Which engine builds when the user names none: docker when its daemon answers (what
most users have), else podman (daemonless) when it is installed."""

from __future__ import annotations

import shutil
from typing import Mapping, Optional

from ...ports.images import ImageEngineUnavailableError
from .docker_cli import docker_daemon_problem


def engine_answering(env: Optional[Mapping[str, str]] = None) -> str:
    """"docker" or "podman"; ImageEngineUnavailableError when neither can build."""
    docker = shutil.which("docker")
    problem = docker_daemon_problem(docker, env) if docker else None
    if docker and problem is None:
        return "docker"
    if shutil.which("podman"):
        return "podman"
    if docker:
        raise ImageEngineUnavailableError(
            f"docker's daemon does not answer ({(problem or '').rstrip('.')}) and podman is not installed; "
            "start docker's daemon or install podman"
        )
    raise ImageEngineUnavailableError(
        "no container engine found: install docker (with its daemon running) or podman, then rerun"
    )
