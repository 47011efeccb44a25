"""The docker command line as the image engine. Builds go through BuildKit (needed for
the build secret that carries a CA bundle) with plain progress, one line per step."""

from __future__ import annotations

import subprocess
from typing import Mapping, Optional

from ...ports.images import ImageEngineUnavailableError
from .engine_cli import EngineCommandLine

#: Longest the daemon may take to answer ``docker version``.
DAEMON_CHECK_SECONDS = 20.0


def docker_daemon_problem(binary: str, env: Optional[Mapping[str, str]] = None) -> Optional[str]:
    """None when docker's daemon answers, else why not (one line)."""
    try:
        done = subprocess.run([binary, "version", "--format", "{{.Server.Version}}"], capture_output=True, text=True,
                              timeout=DAEMON_CHECK_SECONDS, env=None if env is None else dict(env),
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        return f"docker's daemon did not answer within {DAEMON_CHECK_SECONDS:.0f} s"
    except OSError as exc:
        return f"cannot run {binary}: {exc.strerror or exc}"
    if done.returncode == 0 and done.stdout.strip():
        return None
    lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
    return lines[-1] if lines else f"docker version exited {done.returncode}"


class DockerEngine(EngineCommandLine):
    name = "docker"

    def __init__(self, binary: str = "docker", env: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(binary, env)
        problem = docker_daemon_problem(self.binary, self.env)
        if problem is not None:
            raise ImageEngineUnavailableError(
                f"docker's daemon does not answer ({problem.rstrip('.')}); start it, or use --engine podman"
            )

    def build_env(self) -> dict[str, str]:
        return {**self.env, "DOCKER_BUILDKIT": "1"}

    def extra_build_flags(self) -> list[str]:
        return ["--progress", "plain"]

