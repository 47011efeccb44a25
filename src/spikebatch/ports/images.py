"""The image-building ports: a container engine that builds and pushes images, and the
build context of the runner image (the packaged Dockerfile plus what it installs)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, ContextManager, Mapping, Optional, Protocol, runtime_checkable

from ..domain.errors import SpikebatchError

#: The id of the build secret that carries a CA bundle (``RUN --mount=type=secret,id=...``).
CA_BUNDLE_SECRET = "ca_bundle"

#: Receives the engine's output, one line at a time (no trailing newline).
OutputSink = Callable[[str], None]


class ImageEngineUnavailableError(SpikebatchError):
    """The container engine is not installed, or its daemon does not answer."""

    exit_code = 3


class ImageBuildError(SpikebatchError):
    """The engine ran and the build (or the push) failed."""

    exit_code = 1


@dataclass(frozen=True)
class ImageBuildRequest:
    """One ``build`` of an image from a context folder holding a ``Dockerfile``."""

    context: Path
    tag: str
    build_args: Mapping[str, str] = field(default_factory=dict)
    #: A CA bundle given to the build as the secret CA_BUNDLE_SECRET (never a layer).
    ca_bundle: Optional[Path] = None
    #: The network of the RUN steps ("host", ...); None: the engine's default.
    network: Optional[str] = None
    #: Target platform ("linux/amd64", ...); None: the engine's.
    platform: Optional[str] = None
    #: Pull the base image even when a copy is present.
    pull: bool = False
    #: Rebuild every layer.
    no_cache: bool = False

    @property
    def dockerfile(self) -> Path:
        return self.context / "Dockerfile"


@runtime_checkable
class ImageEngine(Protocol):
    """docker or podman (an adapter checks that it can run when it is made)."""

    #: "docker" or "podman".
    name: str

    def build(self, request: ImageBuildRequest, on_output: OutputSink) -> str:
        """Build and tag the image, streaming the engine's output; returns the image id.
        Raises ImageBuildError when the build fails."""

    def push(self, tag: str, on_output: OutputSink) -> None:
        """Push ``tag`` to its registry. Raises ImageBuildError when that fails."""


@runtime_checkable
class RunnerBuildContext(Protocol):
    """Where the runner image's spikebatch comes from: this machine's source checkout,
    or the package index at the installed version."""

    #: The spikebatch version the image will hold.
    version: str
    #: Where it comes from, for people ("the source tree at ...", "spikebatch[runner]==... from the package index").
    origin: str

    def materialize(self) -> ContextManager[Path]:
        """A temporary folder with the Dockerfile and what it copies; removed on exit."""
