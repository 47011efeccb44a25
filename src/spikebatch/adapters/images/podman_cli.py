"""The podman command line as the image engine (daemonless: nothing to check but the
binary). Its configuration comes from the environment, e.g. CONTAINERS_CONF."""

from __future__ import annotations

from typing import Mapping, Optional

from .engine_cli import EngineCommandLine


class PodmanEngine(EngineCommandLine):
    name = "podman"

    def __init__(self, binary: str = "podman", env: Optional[Mapping[str, str]] = None) -> None:
        super().__init__(binary, env)

    def pull_flags(self) -> list[str]:
        return ["--pull=always"]
