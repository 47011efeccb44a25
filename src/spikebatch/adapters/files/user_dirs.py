"""spikebatch's folders on the user's machine, after the XDG base directories, each
with its own override variable (what tests and CI use to keep runs apart)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional


def _explicit(variable: str) -> Optional[Path]:
    value = os.environ.get(variable)
    return Path(value).expanduser() if value else None


def _under_xdg(variable: str, *default: str) -> Path:
    base = os.environ.get(variable) or os.path.join(os.path.expanduser("~"), *default)
    return Path(base).expanduser() / "spikebatch"


def state_dir() -> Path:
    """``$SPIKEBATCH_STATE_DIR``, else ``$XDG_STATE_HOME/spikebatch``, else
    ``~/.local/state/spikebatch``: submission records and local Jobs."""
    return _explicit("SPIKEBATCH_STATE_DIR") or _under_xdg("XDG_STATE_HOME", ".local", "state")


def cache_dir() -> Path:
    """``$SPIKEBATCH_CACHE_DIR``, else ``$XDG_CACHE_HOME/spikebatch``, else
    ``~/.cache/spikebatch``: the sha256 digest cache."""
    return _explicit("SPIKEBATCH_CACHE_DIR") or _under_xdg("XDG_CACHE_HOME", ".cache")


def data_dir() -> Path:
    """``$SPIKEBATCH_DATA_DIR``, else ``$XDG_DATA_HOME/spikebatch/storage``, else
    ``~/.local/share/spikebatch/storage``: the local profile's artifact store."""
    return _explicit("SPIKEBATCH_DATA_DIR") or _under_xdg("XDG_DATA_HOME", ".local", "share") / "storage"
