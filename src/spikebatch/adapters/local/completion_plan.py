"""How many pods a local Job runs and when it is done: ``completionMode``,
``completions``, ``parallelism`` and the per-index limits of an Indexed Job, checked as
the API server checks them and resolved with its defaults.

An Indexed Job runs one completion per index 0..completions-1, up to ``parallelism``
attempts at once, each told its index in ``JOB_COMPLETION_INDEX``. A NonIndexed Job
runs locally one pod at a time, so there it takes neither more completions nor more
parallelism than 1 (those need a cluster).
"""

from __future__ import annotations

from typing import Any, Mapping, Optional

from ...domain.batch import COMPLETION_INDEX_ENV
from ...domain.errors import InvalidManifestError

INDEXED, NON_INDEXED = "Indexed", "NonIndexed"
#: The API server's caps for Indexed Jobs (parallelism; completions and
#: maxFailedIndexes with backoffLimitPerIndex).
MAX_INDEXED_PARALLELISM = 100_000
MAX_INDEXED_COMPLETIONS_PER_INDEX_LIMIT = 100_000
#: The backoffLimit the API server defaults to when backoffLimitPerIndex is set (and
#: backoffLimit is not): per-index retries alone then limit the Job.
UNLIMITED_BACKOFF = 2**31 - 1
DEFAULT_BACKOFF_LIMIT = 6
REPLACEMENT_POLICIES = ("TerminatingOrFailed", "Failed")


def _int(spec: Mapping[str, Any], key: str) -> Optional[int]:
    value = spec.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def completion_field_causes(spec: Mapping[str, Any]) -> list[str]:
    """What the API server refuses in these fields (a subset of its Job validation)."""
    causes: list[str] = []
    mode = spec.get("completionMode", NON_INDEXED)
    if mode not in (INDEXED, NON_INDEXED):
        causes.append(f'spec.completionMode: Unsupported value: {mode!r}: supported values: "NonIndexed", "Indexed"')
    for key in ("backoffLimitPerIndex", "maxFailedIndexes"):
        value = spec.get(key)
        if value is not None and (_int(spec, key) is None or value < 0):
            causes.append(f"spec.{key}: Invalid value: {value!r}: must be greater than or equal to 0")
    completions, parallelism = _int(spec, "completions"), _int(spec, "parallelism")
    per_index, max_failed = _int(spec, "backoffLimitPerIndex"), _int(spec, "maxFailedIndexes")
    if mode == INDEXED:
        if spec.get("completions") is None:
            causes.append("spec.completions: Required value: when completion mode is Indexed")
        if parallelism is not None and parallelism > MAX_INDEXED_PARALLELISM:
            causes.append(f"spec.parallelism: Invalid value: {parallelism}: must be less than or equal to "
                          f"{MAX_INDEXED_PARALLELISM} when completion mode is Indexed")
    elif spec.get("backoffLimitPerIndex") is not None:
        causes.append("spec.backoffLimitPerIndex: Forbidden: requires indexed completion mode")
    if spec.get("maxFailedIndexes") is not None and spec.get("backoffLimitPerIndex") is None:
        causes.append("spec.maxFailedIndexes: Forbidden: cannot set maxFailedIndexes when backoffLimitPerIndex "
                      "is not set")
    if per_index is not None and completions is not None and completions > MAX_INDEXED_COMPLETIONS_PER_INDEX_LIMIT:
        causes.append(f"spec.completions: Invalid value: {completions}: must be less than or equal to "
                      f"{MAX_INDEXED_COMPLETIONS_PER_INDEX_LIMIT} when backoffLimitPerIndex is set")
    if max_failed is not None and completions is not None and max_failed > completions:
        causes.append(f"spec.maxFailedIndexes: Invalid value: {max_failed}: must be less than or equal to "
                      "completions")
    replacement = spec.get("podReplacementPolicy")
    if replacement is not None and replacement not in REPLACEMENT_POLICIES:
        causes.append(f'spec.podReplacementPolicy: Unsupported value: {replacement!r}: supported values: '
                      '"TerminatingOrFailed", "Failed"')
    elif replacement == "TerminatingOrFailed" and spec.get("podFailurePolicy") is not None:
        causes.append('spec.podReplacementPolicy: Unsupported value: "TerminatingOrFailed": supported values: '
                      '"Failed" (when podFailurePolicy is specified)')
    return causes


def refuse_what_runs_only_on_a_cluster(spec: Mapping[str, Any], name: str) -> None:
    """A NonIndexed Job with more than one completion or pod at once, and an Indexed
    Job's successPolicy, need a cluster: the local backend refuses them rather than
    run them differently."""
    if spec.get("completionMode", NON_INDEXED) == NON_INDEXED:
        for key in ("completions", "parallelism"):
            if int(spec.get(key) or 1) > 1:
                raise InvalidManifestError(
                    f"Job {name!r}: the local backend runs a NonIndexed Job one pod at a time; spec.{key}="
                    f"{spec[key]} needs a Kubernetes backend (or completionMode: Indexed)",
                    [f"spec.{key}: Unsupported value: {spec[key]!r}"])
    if spec.get("successPolicy") is not None:
        raise InvalidManifestError(
            f"Job {name!r}: the local backend does not apply spec.successPolicy; leave it out or submit to a "
            "Kubernetes backend", ["spec.successPolicy: Unsupported value (local backend)"])


def completion_fields(spec: Mapping[str, Any]) -> dict[str, Any]:
    """The launch plan's share: mode, completions, parallelism (Kubernetes' default 1)
    and the per-index limits (None: not set). Call after the checks above."""
    indexed = spec.get("completionMode") == INDEXED
    parallelism = _int(spec, "parallelism")
    return {
        "completionMode": INDEXED if indexed else NON_INDEXED,
        "completions": int(spec["completions"]) if indexed else 1,
        "parallelism": parallelism if parallelism is not None else 1,
        "backoffLimitPerIndex": _int(spec, "backoffLimitPerIndex"),
        "maxFailedIndexes": _int(spec, "maxFailedIndexes"),
    }


def backoff_limit(spec: Mapping[str, Any]) -> int:
    """spec.backoffLimit with the API server's default: 6, or unlimited when
    backoffLimitPerIndex limits each index instead."""
    if spec.get("backoffLimit") is not None:
        return int(spec["backoffLimit"])
    return UNLIMITED_BACKOFF if spec.get("backoffLimitPerIndex") is not None else DEFAULT_BACKOFF_LIMIT


def with_completion_index(env: Mapping[str, str], index: int) -> dict[str, str]:
    """The env of the attempt at ``index``: the job controller adds
    ``JOB_COMPLETION_INDEX`` after the container's own variables, unless the container
    defines it itself."""
    result = dict(env)
    result.setdefault(COMPLETION_INDEX_ENV, str(index))
    return result
