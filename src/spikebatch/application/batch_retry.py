"""Re-submitting the failed and missing recordings of a batch: a new Job of the same
run over just those indexes, copied from the batch's own Job and reading the bundle
already stored (0 bytes uploaded).
"""

from __future__ import annotations

import json
from typing import Any, Dict, Optional

from ..domain.batch import BATCH_ROUND_LABEL
from ..domain.errors import ConfigError
from ..domain.manifest import manifest_to_yaml
from ..domain.models import SubmitResult
from ..domain.naming import make_job_name
from ..domain.redaction import redact_sensitive_map
from .batch_status import batch_report
from .batch_submission import BatchSubmitResult, batch_manifests, check_batch_options, read_description


def clone_for_retry(job: Dict[str, Any], new_name: str) -> Dict[str, Any]:
    """A Job of the batch as it can be created again under ``new_name``: what the API
    server added (status, uid, selector, the controller's labels) removed."""
    controller = ("controller-uid", "job-name", "batch.kubernetes.io/controller-uid", "batch.kubernetes.io/job-name")
    fresh = json.loads(json.dumps(job))
    meta = fresh.get("metadata") or {}
    labels = {k: v for k, v in (meta.get("labels") or {}).items() if k not in controller}
    fresh["metadata"] = {"name": new_name, "namespace": meta.get("namespace"), "labels": labels}
    if meta.get("annotations"):
        fresh["metadata"]["annotations"] = {k: v for k, v in meta["annotations"].items()
                                            if not k.startswith("batch.kubernetes.io/")}
    fresh.pop("status", None)
    spec = fresh.get("spec") or {}
    spec.pop("selector", None)
    spec.pop("manualSelector", None)
    spec.pop("suspend", None)
    template_meta = (spec.get("template") or {}).get("metadata") or {}
    template_meta["labels"] = {k: v for k, v in (template_meta.get("labels") or {}).items() if k not in controller}
    for key in ("completedIndexes", "failedIndexes"):
        spec.pop(key, None)
    return fresh


def retry_batch(session: Any, run_id: str, *, parallelism: Optional[int] = None,
                retries_per_recording: Optional[int] = None) -> BatchSubmitResult:
    """Re-submit the failed and missing recordings of batch ``run_id`` as a new Job of
    the same run, reading the bundle already stored (nothing is uploaded)."""
    check_batch_options(parallelism, retries_per_recording or 0, None)
    store = session.storage_client
    description = read_description(store, run_id)
    report, jobs = batch_report(session, run_id, description, with_jobs=True)
    rows = report.to_retry()
    if not rows:
        raise ConfigError(f"batch {run_id} has no failed or missing recordings to retry "
                          f"({report.count('succeeded', 'cached')} done, "
                          f"{report.count('running', 'pending')} still running or pending)")
    if not description.bundle_uri or not store.exists(description.bundle_uri):
        raise ConfigError(f"the bundle of batch {run_id} is no longer in the store; submit the recordings again")
    if not jobs:
        raise ConfigError(f"no Job of batch {run_id} is left in namespace {session.namespace!r} to copy its "
                          "settings from; submit the recordings again")
    indexes = sorted(r.index for r in rows)
    template = jobs[-1]
    rounds = [int((j.get("metadata", {}).get("labels") or {}).get(BATCH_ROUND_LABEL, "0") or 0) for j in jobs]
    batch_round = max(rounds, default=0) + 1
    name = make_job_name(description.name_prefix or "sort")
    base = clone_for_retry(template, name)
    at_once = parallelism or min(description.parallelism, len(indexes))
    retries = description.retries_per_recording if retries_per_recording is None else retries_per_recording
    manifests = batch_manifests(base, indexes, indexed=description.indexed, parallelism=at_once, retries=retries,
                                max_failed=description.max_failed_recordings, batch_round=batch_round)
    session.backend.apply_manifest(manifests[0], dry_run=True)
    names = [session.backend.apply_manifest(m) for m in manifests]
    secrets = getattr(session.credentials, "secret_values", []) or []
    result = SubmitResult(job_name=names[0], manifest_yaml=manifest_to_yaml(redact_sensitive_map(manifests[0], secrets)),
                          run_id=run_id, uploaded_input_uri=description.bundle_uri,
                          output_prefix=description.output_prefix, logs_prefix=description.logs_prefix,
                          job_type="sorting", namespace=session.backend.namespace, profile_name=session.profile.name)
    recs = description.recordings
    return BatchSubmitResult(result=result, job_names=names, recordings=[r.name for r in recs],
                             submitted=[recs[i].name for i in indexes], cached=[], indexed=description.indexed,
                             description=description)
