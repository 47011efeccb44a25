"""The WorkspaceCodec port: how an analysis workspace travels to a job and back.

A workspace is saved into a folder of plain files (never pickle) that the bundle
carries; inside the job the runner opens it, hands it to the user's script as the
global ``workspace``, saves it again, and the outputs carry it home.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class WorkspaceCodec(Protocol):
    #: Short name recorded in the bundle manifest's ``format`` ("directory", "spikelab").
    name: str

    def can_handle(self, workspace: Any) -> bool:
        """Whether ``workspace`` (an object or a path) is this codec's kind."""

    def save(self, workspace: Any, folder: Path) -> list[Path]:
        """Write ``workspace`` (object or existing saved path) into ``folder``; return
        the files written, all inside ``folder``."""

    def open(self, folder: Path) -> Any:
        """The live workspace object saved in ``folder``."""

    def commit(self, workspace: Any, folder: Path) -> list[Path]:
        """Save a live (possibly modified) workspace back into ``folder``."""

    def load_result(self, folder: Path) -> Any:
        """The workspace as ``retrieve_result`` returns it to the user."""
