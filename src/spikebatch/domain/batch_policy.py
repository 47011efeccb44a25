"""Policy for a batch as a whole: what it asks of the cluster at its peak, and the
cluster's rules for many pods at once (pure)."""

from __future__ import annotations

from decimal import Decimal
from typing import List

from .effective import effective_resources
from .models import ClusterProfile, JobSpec
from .policy import BLOCK, PASS, PolicyFinding
from .quantity import parse_quantity

BATCH_RESOURCES = "batch_resources"
BATCH_PODS_NEED_EQUAL_REQUESTS = "batch_pods_need_equal_requests"

_GI = Decimal(1024 ** 3)


def _amount(value: Decimal) -> str:
    return f"{value.normalize():f}"


def batch_findings(job_spec: JobSpec, profile: ClusterProfile, recordings: int, parallelism: int) -> List[PolicyFinding]:
    """The batch's peak request (``parallelism`` pods at once) as a PASS finding the
    preflight shows before anything is submitted, and a BLOCK when more pods than the
    profile's ``max_pods_with_unequal_requests`` would run with requests below limits."""
    res = effective_resources(job_spec, profile)
    at_once = max(1, min(parallelism, recordings))
    cpu = parse_quantity(res.requests_cpu) * at_once
    memory = parse_quantity(res.requests_memory) * at_once / _GI
    gpus = res.gpus * at_once
    findings = [PolicyFinding(BATCH_RESOURCES, PASS, (
        f"batch of {recordings} recordings, {at_once} pods at once: requests {_amount(cpu)} CPU, "
        f"{_amount(memory.quantize(Decimal('0.1')))}Gi memory, {gpus} GPU at its peak"))]
    limit = profile.policy.max_pods_with_unequal_requests
    unequal = [kind for kind in ("cpu", "memory")
               if parse_quantity(getattr(res, f"requests_{kind}")) != parse_quantity(getattr(res, f"limits_{kind}"))]
    if limit is not None and at_once > limit and unequal:
        findings.append(PolicyFinding(BATCH_PODS_NEED_EQUAL_REQUESTS, BLOCK, (
            f"{at_once} pods at once is over {profile.name}'s {limit}, above which every pod must request "
            f"exactly its limits ({' and '.join(unequal)} differ); set requests equal to limits or "
            f"run at most {limit} at once (--parallel {limit}), or pass allow_policy_risk")))
    return findings
