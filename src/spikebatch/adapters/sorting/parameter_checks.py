"""Sorter overrides checked against the defaults they replace, on the submitting machine.

A sorter reads its parameters deep inside the job, minutes after the upload: a number
where it expects a dict of parameters (``detection=6``) ends the job with an
AttributeError, text where it expects a number (``min_firing_rate=fast``) with a
TypeError. So every override is compared with the default it replaces, and a mismatch
is one ConfigError naming the key, the type expected and the default, before anything
is uploaded.

What a default accepts, by its type:

- a number: any number (an int where a float is, and a float where an int is:
  SpikeInterface writes many real-valued defaults as ints, ``detect_threshold: 5``);
- true/false: true or false only (``1`` for a flag is more likely a slip);
- text: text only (``--set scheme=3`` where the default is ``"2"`` would reach the
  sorter as an int; quoting it, ``'"3"'``, passes text);
- a list: a list;
- a dict of parameters: a dict, merged into the default entry by entry;
- null (None): anything (SpikeInterface's "chosen automatically").

A null override is accepted wherever a single value is (SpikeInterface reads None as
"automatic" for most of them) but not where a dict of parameters is: the sorter reads
entries from it.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from typing import Any, Optional

from ...domain.errors import ConfigError

#: Longest default shown in an error line (a dict of parameters can be long).
_SHOWN_DEFAULT_CHARS = 80
#: Parameters whose text default also has a numeric form: SpikeInterface's
#: ``chunk_duration`` is "1s" or a number of seconds.
_TEXT_OR_NUMBER = {"chunk_duration"}


def is_open_ended(key: str, default: Any) -> bool:
    """Whether a dict parameter takes keys its default does not list: SpikeInterface
    forwards ``*_kwargs`` bags and empty dicts without a key list."""
    return key.endswith("_kwargs") or default in ({}, None)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def expected_kind(default: Any) -> Optional[str]:
    """What a parameter with this default takes, in words; None: anything."""
    if isinstance(default, bool):
        return "true or false"
    if _is_number(default):
        return "a number"
    if isinstance(default, str):
        return "text"
    if isinstance(default, (list, tuple)):
        return "a list"
    if isinstance(default, Mapping):
        return "a dict of parameters"
    return None


def _accepts(default: Any, value: Any) -> bool:
    kind = expected_kind(default)
    if kind is None:
        return True
    if value is None:
        return kind != "a dict of parameters"
    return {
        "true or false": lambda: isinstance(value, bool),
        "a number": lambda: _is_number(value),
        "text": lambda: isinstance(value, str),
        "a list": lambda: isinstance(value, (list, tuple)),
        "a dict of parameters": lambda: isinstance(value, Mapping),
    }[kind]()


def _described(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"the value {str(value).lower()}"
    if _is_number(value):
        return f"the number {value}"
    if isinstance(value, str):
        return f"the text {value!r}"
    if isinstance(value, Mapping):
        return "a dict"
    if isinstance(value, (list, tuple)):
        return "a list"
    return f"a {type(value).__name__}"


def shown_default(default: Any) -> str:
    """The default as JSON, cut to fit one error line."""
    text = json.dumps(default, default=str)
    return text if len(text) <= _SHOWN_DEFAULT_CHARS else text[: _SHOWN_DEFAULT_CHARS - 3] + "..."


def _fix(dotted: str, default: Any, value: Any, kind: str) -> str:
    if kind == "a dict of parameters":
        entry = next(iter(default), None) if isinstance(default, Mapping) else None
        example = f", e.g. {dotted}.{entry}=..." if entry is not None else ""
        return f"give a dict, or set one of its entries by its dotted name{example}"
    if kind == "text" and (_is_number(value) or isinstance(value, bool)):
        return f"to pass it as text, quote it ('\"{json.dumps(value)}\"' on the command line)"
    if kind == "a number":
        return f"give a number like {json.dumps(default)}"
    return f"give {kind}"


def check_override(dotted: str, value: Any, default: Any, *, sorter_name: str) -> None:
    """ConfigError unless ``value`` may replace ``default`` (see the module's rules)."""
    if _accepts(default, value):
        return
    if dotted.rsplit(".", 1)[-1] in _TEXT_OR_NUMBER and _is_number(value):
        return
    kind = expected_kind(default) or "any value"
    raise ConfigError(
        f"{sorter_name} parameter {dotted!r} takes {kind} (default: {shown_default(default)}), "
        f"not {_described(value)}; {_fix(dotted, default, value, kind)}"
    )


def merge_overrides(defaults: Mapping, overrides: Mapping, *, sorter_name: str, hint: Optional[str] = None,
                    path: str = "", strict: bool = True) -> dict:
    """``defaults`` with ``overrides`` applied, each checked against the default it
    replaces; a dict merges into a dict default entry by entry. ``strict``: unknown keys
    are refused (by their dotted name, listing the valid ones); below an open-ended dict
    (``*_kwargs``, an empty default) they pass, while the keys its default does list are
    still type-checked."""
    merged = copy.deepcopy(dict(defaults))
    for key, value in overrides.items():
        dotted = f"{path}{key}"
        if key not in merged:
            if strict:
                valid = ", ".join(sorted(map(str, merged))) or "(none)"
                under = f" under {path[:-1]}" if path else ""
                deeper = [name for name, _ in flatten_parameters(merged, path) if name.endswith(f".{key}")]
                extra = f"; did you mean {' or '.join(deeper[:3])}?" if deeper else ""
                extra += f"; {hint}" if hint else ""
                raise ConfigError(f"unknown {sorter_name} parameter {dotted!r}; valid keys{under}: {valid}{extra}")
            merged[key] = copy.deepcopy(value)
            continue
        current = merged[key]
        check_override(dotted, value, current, sorter_name=sorter_name)
        if isinstance(value, Mapping) and isinstance(current, Mapping):
            merged[key] = merge_overrides(current, value, sorter_name=sorter_name, hint=hint, path=f"{dotted}.",
                                          strict=strict and not is_open_ended(str(key), current))
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def flatten_parameters(params: Mapping, path: str = "") -> list[tuple[str, Any]]:
    """(dotted name, default) of every parameter, nested ones by their dotted name; an
    empty dict stays one entry (its keys are free)."""
    rows: list[tuple[str, Any]] = []
    for key, value in params.items():
        dotted = f"{path}{key}"
        if isinstance(value, Mapping) and value:
            rows.extend(flatten_parameters(value, f"{dotted}."))
        else:
            rows.append((dotted, value))
    return rows
