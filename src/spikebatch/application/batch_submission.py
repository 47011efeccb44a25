"""Submitting a sorting batch.

``submit_batch`` checks everything before a byte is uploaded (the policy, including
the batch's peak request; every override; every recording opened and described by
the sorter, duplicates refused), hashes the recordings, looks each one up in the
result cache, has the cluster admit the Job(s) (server-side dry run), stages only the
recordings still to sort, writes ``batch.json`` and submits one Indexed Job, or one
Job per recording on an API server older than 1.33.

Re-submitting what failed is ``batch_retry``'s.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence

from ..domain.batch import (
    BATCH_FILENAME,
    BatchDescription,
    BatchRecording,
    cache_entry_uri,
    indexed_job,
    per_recording_jobs,
    recording_digest,
    sorting_cache_key,
    version_supports_indexed_batches,
)
from ..domain.batch_policy import batch_findings
from ..domain.bundle import RESULT_NAME
from ..domain.effective import effective_resources, resolve_image
from ..domain.errors import ConfigError, StorageError
from ..domain.manifest import manifest_to_yaml, render_job_manifest
from ..domain.models import ClusterProfile, JobSpec, SubmitResult
from ..domain.naming import make_job_name, new_run_id
from ..domain.quantity import parse_quantity
from ..domain.redaction import redact_sensitive_map
from .bundle_inputs import recording_files as recording_folder_files
from .bundle_inputs import recording_source
from .bundling import BundlePlan
from .staging import stage_plan
from .preflight import as_job_spec
from .submission import run_locations, runner_job_spec

#: Default retries of one recording: a transient failure (a node lost, a sorter's
#: rare crash) gets two more chances; a recording that cannot be read fails at once.
DEFAULT_RETRIES_PER_RECORDING = 2
#: Pods a batch runs at once on a cluster unless told otherwise.
DEFAULT_CLUSTER_PARALLELISM = 100


@dataclass
class BatchSubmitResult:
    """What ``submit_sorting_batch`` / ``retry_batch`` did."""

    #: The batch as a SubmitResult (``job_name``: its first Job; "" when every
    #: recording came from the cache and nothing was submitted).
    result: SubmitResult
    job_names: List[str]
    #: Every recording of the batch, in index order.
    recordings: List[str]
    #: Recordings submitted for sorting now.
    submitted: List[str]
    #: Recordings whose earlier result is reused.
    cached: List[str]
    #: One Indexed Job (True) or one Job per recording (False).
    indexed: bool
    uploaded_bytes: int = 0
    #: Bytes of recordings already in the store (not sent again).
    stored_bytes: int = 0
    stored_recordings: int = 0
    #: Why the batch runs as one Job per recording ("" when indexed).
    fallback_reason: str = ""
    description_uri: str = ""
    description: Optional[BatchDescription] = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return self.result.run_id

    @property
    def job_name(self) -> str:
        return self.result.job_name


def batch_name_prefix(spec: JobSpec, resolved: Dict[str, Any]) -> str:
    """The job config's name_prefix when it sets one, else ``sort-<preset>``: a batch's
    Jobs say what they are."""
    if "name_prefix" in spec.model_fields_set:
        return spec.name_prefix
    preset = resolved.get("preset") or resolved.get("sorter_name")
    if not isinstance(preset, str):
        sorter = resolved.get("sorter")
        preset = sorter.get("sorter_name") if isinstance(sorter, dict) else None
    return f"sort-{preset}" if isinstance(preset, str) and preset else "sort"


def check_batch_options(parallelism: Optional[int], retries: int, max_failed: Optional[int]) -> None:
    for name, value, low in (("parallelism", parallelism, 1), ("retries_per_recording", retries, 0),
                             ("max_failed_recordings", max_failed, 0)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ConfigError(f"{name} must be a whole number of at least {low}, not {value!r}")


def default_parallelism(profile: ClusterProfile, spec: JobSpec, count: int, cores: Optional[int]) -> int:
    """On a workstation: its cores divided by the job's CPU request (a 2-CPU job on 8
    cores: 4 at once). On a cluster: every recording at once, up to 100."""
    if not profile.runs_containers:
        cpu = parse_quantity(effective_resources(spec, profile).requests_cpu)
        share = int(Decimal(cores or 1) / max(cpu, Decimal("0.001")))
        return max(1, min(count, share))
    return max(1, min(count, DEFAULT_CLUSTER_PARALLELISM))


def describe_recordings(sorter: Any, paths: Sequence[str]) -> List[Dict[str, Any]]:
    """Every recording checked as a file or folder, then opened by the sorter; the
    first bad one raises, before anything is hashed or uploaded."""
    sources = [recording_source(p) for p in paths]
    for rec, size in sources:
        if size is None:
            # Every file in a recording folder is checked (names, links, kinds) before
            # the sorter opens it: a bad member is refused as such, not as a bad recording.
            recording_folder_files(rec)
    checked = [rec for rec, _ in sources]
    names: Dict[str, Path] = {}
    for rec in checked:
        if rec.name in names:
            raise ConfigError(f"recording {rec.name!r} is given twice ({names[rec.name]} and {rec}); "
                              "give each recording once (rename one if they differ)")
        names[rec.name] = rec
    return [sorter.describe(rec) for rec in checked]


def recording_files(plan: BundlePlan) -> Dict[str, List[Any]]:
    """The plan's files per recording name."""
    grouped: Dict[str, List[Any]] = {r.name: [] for r in plan.recordings}
    bases = {r.path: r.name for r in plan.recordings}
    for planned in plan.files:
        for base, name in bases.items():
            if planned.path == base or planned.path.startswith(base + "/"):
                grouped[name].append(planned)
                break
    return grouped


def _relative(path: str, base: str) -> str:
    return path[len(base) + 1:] if path.startswith(base + "/") else ""


def batch_recordings(plan: BundlePlan, descriptions: List[Dict[str, Any]], sorter: str,
                     config: Dict[str, Any], image: str, cache_prefix: Optional[str]) -> List[BatchRecording]:
    """One BatchRecording per planned recording, with its content digest and cache key;
    two recordings with the same content are refused."""
    files = recording_files(plan)
    found: List[BatchRecording] = []
    seen: Dict[str, str] = {}
    for index, (entry, info) in enumerate(zip(plan.recordings, descriptions)):
        mine = files[entry.name]
        digest = recording_digest((_relative(f.path, entry.path), f.sha256, f.size) for f in mine)
        if digest in seen:
            raise ConfigError(f"recordings {seen[digest]!r} and {entry.name!r} have the same content; "
                              "give each recording once")
        seen[digest] = entry.name
        key = sorting_cache_key(digest, sorter, config, image)
        found.append(BatchRecording(index=index, name=entry.name, size=sum(f.size for f in mine), sha256=digest,
                                    cache_key=key, description=info))
    return found


def look_up_cache(store: Any, recordings: List[BatchRecording]) -> List[BatchRecording]:
    """Each recording with ``cached_from`` set when the cache holds a result for its
    key whose result.json still exists (an entry whose run was cleaned is ignored)."""
    updated = []
    for rec in recordings:
        uri = cache_entry_uri(store.prefix, rec.cache_key)
        cached_from = None
        if uri is not None and store.exists(uri):
            try:
                entry = json.loads(store.read_bytes(uri))
                prefix = entry.get("output_prefix") if isinstance(entry, dict) else None
                if isinstance(prefix, str) and prefix.endswith("/") and store.exists(prefix + RESULT_NAME):
                    cached_from = prefix
            except (StorageError, ValueError):
                cached_from = None  # a damaged entry only costs a new sort
        updated.append(rec.model_copy(update={"cached_from": cached_from}))
    return updated


def plan_for_sorting(plan: BundlePlan, recordings: List[BatchRecording], cache_prefix: Optional[str]) -> BundlePlan:
    """The plan without the files of cached recordings, each recording entry carrying
    its cache key and where the runner records its result."""
    skipped = {r.name for r in recordings if r.cached_from is not None}
    by_name = {r.name: r for r in recordings}
    bases = [e.path for e in plan.recordings if e.name in skipped]
    plan.files = [f for f in plan.files
                  if not any(f.path == b or f.path.startswith(b + "/") for b in bases)]
    plan.recordings = [e.model_copy(update={"cache_key": by_name[e.name].cache_key,
                                            "cache_uri": cache_entry_uri(cache_prefix, by_name[e.name].cache_key)})
                       for e in plan.recordings]
    return plan


def batch_manifests(base: Dict[str, Any], indexes: List[int], *, indexed: bool, parallelism: int,
                    retries: int, max_failed: Optional[int], batch_round: int) -> List[Dict[str, Any]]:
    if indexed:
        return [indexed_job(base, recording_indexes=indexes, parallelism=parallelism,
                            retries_per_index=retries, max_failed_indexes=max_failed, batch_round=batch_round)]
    return per_recording_jobs(base, recording_indexes=indexes, retries_per_index=retries, batch_round=batch_round)


def indexed_or_why(backend: Any, per_recording: Optional[bool]) -> tuple[bool, str]:
    """One Indexed Job, or one Job per recording and why."""
    if per_recording:
        return False, "one Job per recording was asked for"
    version = backend.server_version()
    if version_supports_indexed_batches(version):
        return True, ""
    if per_recording is False:
        raise ConfigError(f"the API server is Kubernetes {version[0]}.{version[1]}, older than 1.33: it cannot run "
                          "a batch as one Indexed Job with per-recording retries; allow one Job per recording")
    return False, (f"the API server is Kubernetes {version[0]}.{version[1]} (< 1.33, no per-index retries): "
                   "the batch runs as one Job per recording")


def write_description(store: Any, description: BatchDescription) -> str:
    uri = store.build_uri(run_id=description.run_id, filename=BATCH_FILENAME, category="inputs")
    store.write_bytes(uri, description.model_dump_json(indent=2).encode())
    return uri


def is_batch(store: Any, run_id: str) -> bool:
    """Whether run ``run_id`` is a sorting batch (its batch.json is in the store)."""
    try:
        return bool(store.exists(store.build_uri(run_id=run_id, filename=BATCH_FILENAME, category="inputs")))
    except StorageError:
        return False


def read_description(store: Any, run_id: str) -> BatchDescription:
    uri = store.build_uri(run_id=run_id, filename=BATCH_FILENAME, category="inputs")
    try:
        data = store.read_bytes(uri)
    except StorageError:
        raise ConfigError(f"run {run_id} is not a sorting batch of this profile's store (no {uri}); "
                          "check the run id and the profile") from None
    try:
        return BatchDescription.model_validate_json(data)
    except ValueError:
        raise ConfigError(f"{uri} is not a batch description written by spikebatch") from None


def submit_batch(
    session: Any,
    *,
    recording_paths: Iterable[str],
    config: Any,
    config_overrides: Optional[dict],
    job_spec: Any,
    parallelism: Optional[int],
    retries_per_recording: int,
    max_failed_recordings: Optional[int],
    allow_policy_risk: bool,
    metadata: Optional[dict],
    force: bool,
    per_recording_jobs: Optional[bool],
    sorter_name: str,
) -> BatchSubmitResult:
    spec = as_job_spec(job_spec)
    paths = [str(p) for p in recording_paths]
    if not paths:
        raise ConfigError("recording_paths is empty; give at least one recording file or folder")
    check_batch_options(parallelism, retries_per_recording, max_failed_recordings)
    profile, store = session.profile, session.storage_client
    at_once = parallelism or default_parallelism(profile, spec, len(paths), os.cpu_count())
    session.preflight(spec, allow_policy_risk, extra_findings=batch_findings(spec, profile, len(paths), at_once))
    sorter = session._sorter(sorter_name)
    resolved = sorter.resolve_config(config, config_overrides)
    descriptions = describe_recordings(sorter, paths)
    indexed, fallback_reason = indexed_or_why(session.backend, per_recording_jobs)
    run_id, job_name = new_run_id(), make_job_name(batch_name_prefix(spec, resolved))
    where = run_locations(store, run_id)
    plan = session._planner().plan_sorting(run_id=run_id, recording_paths=paths, sorter_name=sorter.name,
                                           sorter_config=resolved, metadata=metadata)
    image = resolve_image(spec, profile) or "local"
    recordings = batch_recordings(plan, descriptions, sorter.name, resolved, image, store.prefix)
    if not force:
        recordings = look_up_cache(store, recordings)
    plan = plan_for_sorting(plan, recordings, store.prefix)
    to_sort = [r.index for r in recordings if r.cached_from is None]
    env = {"INPUT_URI": where["bundle"], "OUTPUT_PREFIX": where["outputs"], "LOGS_PREFIX": where["logs"]}
    largest = max((r.size for r in recordings if r.cached_from is None), default=0)
    manifests: List[Dict[str, Any]] = []
    if to_sort:
        runner_spec = runner_job_spec(spec, profile, store, "sorting", env, largest)
        base = render_job_manifest(job_name, runner_spec, profile, run_id, job_type="sorting")
        manifests = batch_manifests(base, to_sort, indexed=indexed, parallelism=at_once,
                                    retries=retries_per_recording, max_failed=max_failed_recordings, batch_round=0)
        # The cluster admits the Job before a byte is uploaded (the per-recording Jobs
        # differ only in name and index: the first stands for all).
        session.backend.apply_manifest(manifests[0], dry_run=True)
    description = BatchDescription(
        run_id=run_id, sorter=sorter.name, preset=config if isinstance(config, str) else resolved.get("preset"),
        config=resolved, image=image, bundle_uri=where["bundle"] if to_sort else "",
        output_prefix=where["outputs"], logs_prefix=where["logs"], indexed=indexed, parallelism=at_once,
        retries_per_recording=retries_per_recording, max_failed_recordings=max_failed_recordings,
        recordings=recordings, name_prefix=batch_name_prefix(spec, resolved),
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    uploaded = stored = stored_count = 0
    if to_sort:
        with tempfile.TemporaryDirectory(prefix="spikebatch-bundle-") as scratch:
            staged = stage_plan(plan, store, Path(scratch), session.progress)
        uploaded, stored = staged.uploaded_bytes, staged.stored_bytes
        stored_count = _recordings_already_stored(plan, staged)
    description_uri = write_description(store, description)
    names = [session.backend.apply_manifest(m) for m in manifests]
    secrets = getattr(session.credentials, "secret_values", []) or []
    shown = manifest_to_yaml(redact_sensitive_map(manifests[0], secrets)) if manifests else ""
    result = SubmitResult(job_name=names[0] if names else "", manifest_yaml=shown, run_id=run_id,
                          uploaded_input_uri=where["bundle"] if to_sort else "", output_prefix=where["outputs"],
                          logs_prefix=where["logs"], job_type="sorting", namespace=session.backend.namespace,
                          profile_name=profile.name)
    return BatchSubmitResult(
        result=result, job_names=names, recordings=[r.name for r in recordings],
        submitted=[recordings[i].name for i in to_sort],
        cached=[r.name for r in recordings if r.cached_from is not None], indexed=indexed,
        uploaded_bytes=uploaded, stored_bytes=stored, stored_recordings=stored_count,
        fallback_reason=fallback_reason, description_uri=description_uri, description=description)


def _recordings_already_stored(plan: BundlePlan, staged: Any) -> int:
    """Recordings every blob of which was already in the store."""
    stored = set(staged.stored_paths)
    count = 0
    for files in recording_files(plan).values():
        blobs = [f.path for f in files if f.as_blob]
        if blobs and all(p in stored for p in blobs):
            count += 1
    return count
