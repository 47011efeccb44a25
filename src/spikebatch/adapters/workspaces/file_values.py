"""A file on disk as a value to store in a directory workspace (``spikebatch workspace
add``): a ``.npy`` file is its array, a ``.json`` file its parsed value, any other file
its bytes. Arrays are read with ``allow_pickle=False``: adding a file never runs code."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...domain.errors import ConfigError


def value_from_file(path: str | Path) -> Any:
    """The value ``path`` holds, by its extension (.npy, .json, anything else: bytes)."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise ConfigError(f"FILE {str(path)!r} is not a file; give a .npy, .json or any other file to store")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _array(path)
    if suffix == ".json":
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            raise ConfigError(f"FILE {str(path)!r} is not UTF-8 text; a .json file must be (rename it to store "
                              "its bytes)") from None
        except ValueError as exc:
            raise ConfigError(f"FILE {str(path)!r} is not valid JSON ({getattr(exc, 'msg', exc)} at line "
                              f"{getattr(exc, 'lineno', '?')}); fix it, or rename it to store its bytes") from None
    return path.read_bytes()


def _array(path: Path) -> Any:
    try:
        import numpy as np
    except ImportError:
        raise ConfigError(f"FILE {str(path)!r} is a NumPy array, and NumPy is not installed here; "
                          "pip install numpy") from None
    try:
        with open(path, "rb") as handle:
            return np.load(handle, allow_pickle=False)
    except ValueError as exc:
        # Object arrays need pickle, which is refused (it could run code).
        raise ConfigError(f"FILE {str(path)!r} cannot be read as a plain NumPy array ({exc}); save it with "
                          "numpy.save(..., allow_pickle=False) from a numeric array") from None
