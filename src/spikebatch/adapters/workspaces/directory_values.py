"""Names and values of the directory workspace: what may be a namespace or key, and how
a value becomes a file (JSON, raw bytes, or a ``.npy`` array) and back. No pickle: JSON
is parsed by ``json`` and arrays are read with ``allow_pickle=False``, so opening a
downloaded workspace can never run code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ...domain.errors import SpikebatchError, UnsafePathError

#: Longest namespace / key, in UTF-8 bytes. File names are limited to 255 bytes on
#: common filesystems; the rest is room for a "~N" collision suffix and the extension.
MAX_NAME_BYTES = 200

# Characters Windows refuses in file names: a workspace retrieved on a Windows laptop
# must unpack there too, so they are refused everywhere.
_FORBIDDEN_CHARS = set('/\\:*?"<>|')

EXTENSIONS = {"json": ".json", "bytes": ".bin", "npy": ".npy"}

#: ``get``'s default when none is given: a missing item is then an error.
REQUIRED: Any = object()


def check_name(value: Any, what: str) -> str:
    """``value`` if it can name a namespace / key folder or file; otherwise
    UnsafePathError saying which rule it breaks. The rules make escaping the workspace
    folder impossible (no separators, no "." / ".." / leading dot) and keep the files
    portable (no control or Windows-reserved characters, no trailing dot or space)."""
    if not isinstance(value, str):
        raise UnsafePathError(f"workspace {what} must be a str, got {type(value).__name__}")
    problem = None
    if not value:
        problem = "it is empty"
    elif value.startswith("."):
        problem = "it starts with '.' (reserved for temporary files; also rules out '..')"
    elif value[-1] in ". ":
        problem = "it ends with '.' or a space"
    elif any(ch in _FORBIDDEN_CHARS or ord(ch) < 32 or ord(ch) == 127 for ch in value):
        problem = 'it contains a path separator, a control character or one of :*?"<>|'
    elif len(value.encode("utf-8")) > MAX_NAME_BYTES:
        problem = f"it is longer than {MAX_NAME_BYTES} bytes"
    if problem:
        shown = value if len(value) <= 60 else value[:60] + "..."
        raise UnsafePathError(f"workspace {what} {shown!r} is not allowed: {problem}")
    return value


def unique_stem(wanted: str, taken: set[str]) -> str:
    """``wanted``, or ``wanted~2``, ``wanted~3``… so that no two names in one folder
    differ only by case: a workspace must unpack on case-insensitive filesystems
    (macOS, Windows) without one file overwriting another."""
    candidate, n = wanted, 1
    while candidate.casefold() in taken:
        n += 1
        candidate = f"{wanted}~{n}"
    return candidate


def _numpy():
    """NumPy, or None when it is not installed (arrays are then unavailable)."""
    try:
        import numpy
    except ImportError:
        return None
    return numpy


def _json_ready(value: Any, where: str) -> Any:
    """A copy of ``value`` that ``json`` writes without losing anything silently:
    NumPy scalars become Python scalars, tuples become lists; non-str dict keys, sets,
    arrays and other objects are refused (they would not come back as they went in)."""
    np = _numpy()
    # NumPy scalars first: np.float64 subclasses float but should be stored as one.
    if np is not None and isinstance(value, np.generic) and not isinstance(value, np.void):
        return _json_ready(value.item(), where)
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_json_ready(v, f"{where}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, dict):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"cannot store {where}: dict key {k!r} is not a str (JSON keys are strings)")
            out[k] = _json_ready(v, f"{where}[{k!r}]")
        return out
    if np is not None and isinstance(value, np.ndarray):
        raise TypeError(f"cannot store {where}: an array inside a JSON value; store the array under its own key")
    raise TypeError(
        f"cannot store {where}: {type(value).__name__} is not a JSON value, bytes or a NumPy array"
    )


def encode(value: Any, where: str) -> tuple[str, dict, Any]:
    """(kind, summary, payload) for ``value``; kind is "json", "bytes" or "npy"."""
    np = _numpy()
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        return "bytes", {"type": "bytes", "size": len(data)}, data
    if np is not None and isinstance(value, np.ndarray):
        if value.dtype.hasobject:
            # Object arrays need pickle to be written or read.
            raise TypeError(f"cannot store {where}: arrays of dtype object need pickle, which is not used")
        return "npy", {"type": "ndarray", "shape": list(value.shape), "dtype": str(value.dtype)}, value
    clean = _json_ready(value, where)
    return "json", {"type": type(clean).__name__}, clean


def write_payload(kind: str, payload: Any, path: Path) -> None:
    """Write an encoded value to ``path`` (a temporary file the caller renames)."""
    if kind == "bytes":
        path.write_bytes(payload)
    elif kind == "json":
        # NaN / Infinity are written as Python's json does so they come back as floats.
        path.write_text(json.dumps(payload, ensure_ascii=False), encoding="utf-8")
    else:
        np = _numpy()
        with open(path, "wb") as fh:
            np.save(fh, payload, allow_pickle=False)


def read_payload(kind: str, path: Path) -> Any:
    """The value stored in ``path`` by write_payload."""
    if kind == "bytes":
        return path.read_bytes()
    if kind == "json":
        return json.loads(path.read_text(encoding="utf-8"))
    if kind == "npy":
        np = _numpy()
        if np is None:
            raise SpikebatchError(f"{path.name} is a NumPy array; install numpy to read it")
        with open(path, "rb") as fh:
            return np.load(fh, allow_pickle=False)
    raise SpikebatchError(f"{path.name}: unknown stored kind {kind!r} in the workspace index")


class MissingItemError(KeyError):
    """A script read a (namespace, key) the workspace does not hold. A KeyError, as for
    a dict, so ``except KeyError`` works; its text names the key and what is there."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # KeyError's own would show the message quoted
        return self.message


#: Keys listed in a MissingItemError before "...".
SHOWN_KEYS = 20


def missing_item(namespace: str, key: str, keys: dict) -> MissingItemError:
    """The error for a read of (namespace, key) that is not stored; ``keys`` is
    ``{namespace: [keys]}`` of the workspace."""
    if namespace in keys:
        there = list(keys[namespace])
        listed = ", ".join(map(repr, there[:SHOWN_KEYS])) + (", ..." if len(there) > SHOWN_KEYS else "")
        held = f"namespace {namespace!r} holds {listed}" if there else f"namespace {namespace!r} is empty"
    else:
        names = list(keys)
        held = ("namespaces there: " + ", ".join(map(repr, names[:SHOWN_KEYS]))) if names else "the workspace is empty"
    return MissingItemError(
        f"workspace has no item {key!r} in namespace {namespace!r} ({held}); check the name, or pass a "
        f"default to get None instead: workspace.get({namespace!r}, {key!r}, None)"
    )
