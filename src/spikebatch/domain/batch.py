"""A sorting batch: many recordings, one Kubernetes Job with one completion index per
recording (pure: models, names and manifest transforms; no I/O).

How a batch is laid out, wherever it runs:

- The bundle lists every recording (``BundleManifest.recordings``) in *recording
  index* order; the batch description (``batch.json``, next to the bundle) says which
  recording has which index, its content digest and cache key.
- A Job covers a list of recording indexes, carried in its pod template's env as
  ``SPIKEBATCH_BATCH_INDEXES`` ("0-199", "3,17"): the pod whose completion index is
  ``i`` (``JOB_COMPLETION_INDEX``) sorts the ``i``-th recording of that list. The first
  Job of a batch covers all recordings; a ``retry`` Job covers the failed ones, so its
  completion index 0 may be recording 17.
- On an API server without Indexed Jobs with per-index retries (< 1.33) the batch is
  one ordinary Job per recording instead, each with ``JOB_COMPLETION_INDEX=0`` and a
  one-element list, labelled with its recording index: the runner and the report read
  both shapes the same way.
- Each recording's outputs go under ``<run outputs>/recordings/<name>/`` (its own
  ``result.json`` and workspace), so one failed recording never hides another's
  results.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

from pydantic import BaseModel, ConfigDict, Field

from .errors import ConfigError

#: The label the job controller puts on an Indexed Job's pods (and the env it sets).
COMPLETION_INDEX_LABEL = "batch.kubernetes.io/job-completion-index"
COMPLETION_INDEX_ENV = "JOB_COMPLETION_INDEX"
#: Env of a batch Job's pods: the recording indexes the Job covers, in completion-index order.
BATCH_INDEXES_ENV = "SPIKEBATCH_BATCH_INDEXES"
#: Label on a per-recording fallback Job (and its pods): the recording index it sorts.
RECORDING_INDEX_LABEL = "spikebatch.io/recording-index"
#: Label on every Job of a batch: which attempt of the batch made it ("0" first, "1" the
#: first retry, ...).
BATCH_ROUND_LABEL = "spikebatch.io/batch-round"
#: The runner's exit code for input it cannot use (a bad recording, an integrity
#: failure): retrying cannot help, so the pod failure policy fails the index at once.
BAD_INPUT_EXIT_CODE = 2
#: First Kubernetes minor with backoffLimitPerIndex / maxFailedIndexes GA.
INDEXED_BATCH_MIN_VERSION = (1, 33)
#: Kubernetes' own limit on completions of an Indexed Job with backoffLimitPerIndex.
MAX_INDEXED_COMPLETIONS = 100_000

BATCH_FILENAME = "batch.json"
RECORDING_OUTPUTS_DIR = "recordings"
#: Folder (under the store's prefix) of the result cache's entries.
CACHE_DIR = "cache/sorting"

_RANGE = re.compile(r"^(\d+)(?:-(\d+))?$")


# --------------------------------------------------------------------------- index lists
def parse_index_ranges(text: Optional[str]) -> List[int]:
    """``"0-2,5"`` -> ``[0, 1, 2, 5]`` (the format of ``status.completedIndexes``);
    empty or None -> ``[]``. Raises ValueError on anything else."""
    found: List[int] = []
    for part in (text or "").split(","):
        part = part.strip()
        if not part:
            continue
        match = _RANGE.match(part)
        if not match:
            raise ValueError(f"not an index range: {part!r}")
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise ValueError(f"not an index range: {part!r}")
        found.extend(range(first, last + 1))
    return found


def format_index_ranges(indexes: Iterable[int]) -> str:
    """``[0, 1, 2, 5]`` -> ``"0-2,5"`` (sorted, duplicates dropped)."""
    ordered = sorted(set(int(i) for i in indexes))
    parts: List[str] = []
    start = prev = None
    for i in ordered:
        if start is None:
            start = prev = i
        elif i == prev + 1:
            prev = i
        else:
            parts.append(f"{start}-{prev}" if prev != start else f"{start}")
            start = prev = i
    if start is not None:
        parts.append(f"{start}-{prev}" if prev != start else f"{start}")
    return ",".join(parts)


def version_supports_indexed_batches(version: Optional[tuple]) -> bool:
    """Whether an API server of ``version`` (major, minor) runs a batch as one Indexed
    Job; None (a backend that is not an API server, e.g. the local one) does."""
    return version is None or tuple(version[:2]) >= INDEXED_BATCH_MIN_VERSION


# --------------------------------------------------------------------------- manifests
def _pod_env(manifest: Dict[str, Any], values: Mapping[str, str]) -> None:
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    env = [e for e in container.get("env") or [] if e.get("name") not in values]
    env += [{"name": k, "value": v} for k, v in values.items()]
    container["env"] = env


def _label(manifest: Dict[str, Any], key: str, value: str) -> None:
    manifest["metadata"].setdefault("labels", {})[key] = value
    manifest["spec"]["template"].setdefault("metadata", {}).setdefault("labels", {})[key] = value


def indexed_job(
    manifest: Mapping[str, Any],
    *,
    recording_indexes: Sequence[int],
    parallelism: int,
    retries_per_index: int,
    max_failed_indexes: Optional[int],
    batch_round: int = 0,
) -> Dict[str, Any]:
    """``manifest`` (one runner Job) as the Indexed Job of a batch over
    ``recording_indexes``: one completion per recording, ``parallelism`` pods at once,
    ``retries_per_index`` retries for each recording on its own, the Job failing early
    once more than ``max_failed_indexes`` recordings failed (None: never early).

    The pod failure policy does not count a disruption (eviction, preemption, node
    drain: the ``DisruptionTarget`` condition) against a recording's retries, and fails
    a recording at once when the runner exits with ``BAD_INPUT_EXIT_CODE``: a recording
    it cannot read will not become readable on a second try. Failed pods are replaced
    only once they have fully terminated, so two pods never sort one recording at once.
    """
    count = len(recording_indexes)
    if count < 1:
        raise ConfigError("a batch needs at least one recording")
    if count > MAX_INDEXED_COMPLETIONS:
        raise ConfigError(f"a batch holds at most {MAX_INDEXED_COMPLETIONS} recordings; split it")
    job = json.loads(json.dumps(manifest))  # a deep copy of plain JSON
    spec = job["spec"]
    # With per-index retries the global backoffLimit would cap the whole batch's
    # failures; left out, the controller treats it as unlimited.
    spec.pop("backoffLimit", None)
    spec.update({
        "completionMode": "Indexed",
        "completions": count,
        "parallelism": max(1, min(int(parallelism), count)),
        "backoffLimitPerIndex": int(retries_per_index),
        "podReplacementPolicy": "Failed",
        "podFailurePolicy": {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailIndex", "onExitCodes": {
                "containerName": job["spec"]["template"]["spec"]["containers"][0]["name"],
                "operator": "In", "values": [BAD_INPUT_EXIT_CODE]}},
        ]},
    })
    if max_failed_indexes is not None:
        # The API server refuses a maxFailedIndexes above completions; beyond the
        # batch's size it means "never stop early" anyway.
        spec["maxFailedIndexes"] = min(int(max_failed_indexes), count)
    if list(recording_indexes) != sorted(set(recording_indexes)):
        raise ConfigError("a batch's recording indexes must be distinct and in order")
    _pod_env(job, {BATCH_INDEXES_ENV: format_index_ranges(recording_indexes)})
    _label(job, BATCH_ROUND_LABEL, str(batch_round))
    return job


def per_recording_jobs(
    manifest: Mapping[str, Any],
    *,
    recording_indexes: Sequence[int],
    retries_per_index: int,
    batch_round: int = 0,
) -> List[Dict[str, Any]]:
    """The fallback for API servers without per-index retries: one ordinary Job per
    recording, named ``<name>-<recording index>``, each retried on its own
    (``backoffLimit`` = ``retries_per_index``) with the same pod failure policy."""
    base = manifest["metadata"]["name"]
    jobs = []
    for index in recording_indexes:
        job = json.loads(json.dumps(manifest))
        suffix = f"-{index}"
        job["metadata"]["name"] = base[: 63 - len(suffix)].rstrip("-") + suffix
        spec = job["spec"]
        spec["backoffLimit"] = int(retries_per_index)
        spec["podFailurePolicy"] = {"rules": [
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
            {"action": "FailJob", "onExitCodes": {
                "containerName": spec["template"]["spec"]["containers"][0]["name"],
                "operator": "In", "values": [BAD_INPUT_EXIT_CODE]}},
        ]}
        _pod_env(job, {BATCH_INDEXES_ENV: str(index), COMPLETION_INDEX_ENV: "0"})
        _label(job, RECORDING_INDEX_LABEL, str(index))
        _label(job, BATCH_ROUND_LABEL, str(batch_round))
        jobs.append(job)
    return jobs


def job_recording_indexes(job: Mapping[str, Any]) -> List[int]:
    """The recording indexes a batch Job covers, in completion-index order (from its
    pod template's ``SPIKEBATCH_BATCH_INDEXES``); [] for a Job that is not a batch's."""
    try:
        containers = job["spec"]["template"]["spec"]["containers"]
        env = containers[0].get("env") or []
    except (KeyError, IndexError, TypeError, AttributeError):
        return []
    for entry in env:
        if isinstance(entry, Mapping) and entry.get("name") == BATCH_INDEXES_ENV:
            try:
                return parse_index_ranges(str(entry.get("value") or ""))
            except ValueError:
                return []
    return []


# --------------------------------------------------------------------------- description
class BatchRecording(BaseModel):
    """One recording of a batch."""

    model_config = ConfigDict(extra="ignore")

    index: int = Field(ge=0)
    name: str
    #: Bytes of the recording (all its files).
    size: int = Field(ge=0)
    #: sha256 over the recording's files (see ``recording_digest``).
    sha256: str
    #: What identifies its sorting result (see ``sorting_cache_key``).
    cache_key: str
    #: Format, channels, duration, sampling rate, as the sorter read them before staging.
    description: Dict[str, Any] = Field(default_factory=dict)
    #: The output prefix of an earlier run whose result for the same recording,
    #: sorter, parameters and image is reused instead of sorting again.
    cached_from: Optional[str] = None


class BatchDescription(BaseModel):
    """``batch.json``: what a batch is, written next to its bundle at submission. The
    status, retrieval and retry of a batch start from it."""

    model_config = ConfigDict(extra="ignore")

    run_id: str
    sorter: str
    preset: Optional[str] = None
    config: Dict[str, Any] = Field(default_factory=dict)
    image: str = ""
    bundle_uri: str = ""
    output_prefix: str
    logs_prefix: str
    indexed: bool = True
    parallelism: int = 1
    retries_per_recording: int = 0
    max_failed_recordings: Optional[int] = None
    recordings: List[BatchRecording]
    #: The Jobs' name prefix (a retry's Job is named like the batch's first).
    name_prefix: str = "sort"
    created_at: Optional[str] = None

    def recording(self, index: int) -> BatchRecording:
        return self.recordings[index]

    def to_sort(self) -> List[int]:
        """Indexes of the recordings not served from the cache."""
        return [r.index for r in self.recordings if r.cached_from is None]


def recording_output_prefix(output_prefix: str, name: str) -> str:
    """Where one recording's outputs go: ``<run outputs>recordings/<name>/``."""
    return f"{output_prefix}{RECORDING_OUTPUTS_DIR}/{name}/"


def recording_digest(files: Iterable[tuple]) -> str:
    """One sha256 for a recording made of ``(relative path, sha256, size)`` files: the
    same bytes under the same names give the same digest, wherever they lie."""
    hasher = hashlib.sha256()
    for path, sha256, size in sorted(files):
        hasher.update(f"{path}\0{sha256}\0{size}\n".encode())
    return hasher.hexdigest()


def sorting_cache_key(recording_sha256: str, sorter: str, config: Mapping[str, Any], image: str) -> str:
    """What a sorting result depends on: the recording's content, the sorter, its
    resolved parameters and the image (its sorter and library versions). Equal keys
    mean the earlier result can be reused."""
    text = json.dumps({"recording": recording_sha256, "sorter": sorter, "config": config, "image": image},
                      sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_entry_uri(prefix: Optional[str], cache_key: str) -> Optional[str]:
    """The cache entry of ``cache_key`` under a store's ``prefix`` (None: no cache)."""
    if not prefix:
        return None
    return f"{prefix}{CACHE_DIR}/{cache_key}.json"
