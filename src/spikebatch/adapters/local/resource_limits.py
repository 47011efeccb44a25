"""The container's ``resources`` as the local backend applies them, so that a job which
passes on a laptop does not die on the cluster for using more than it asked for:

- ``limits.memory``: the attempt is killed (OOMKilled, exit code 137) once its processes
  hold more (``memory_limit``);
- ``limits.cpu``: the thread counts of NumPy/BLAS, OpenMP, numexpr, numba and joblib
  are bounded to it, rounded up (``domain.cpu_limit``), through the job's environment.
  The job's own env wins: a variable it sets is left as it set it.

Quantities are checked as the API server checks them, before anything starts: a
malformed one, or a request above its limit, is refused with the field's path.
Requests alone limit nothing (on a cluster they only place the pod).
"""

from __future__ import annotations

import math
import os
from decimal import Decimal
from typing import Any, Mapping, Optional

from ...domain.cpu_limit import CPU_LIMIT_ENV, thread_env, whole_cpus
from ...domain.errors import InvalidManifestError
from ...domain.quantity import parse_quantity

RESOURCES = "spec.template.spec.containers[0].resources"


def available_cores() -> int:
    """The cores this process may run on (its affinity, where the system says)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _quantity(resources: Mapping[str, Any], section: str, resource: str, job: str) -> Optional[Decimal]:
    block = resources.get(section)
    if block is None:
        return None
    if not isinstance(block, Mapping):
        raise InvalidManifestError(
            f"Job {job!r}: resources.{section} must be a mapping of resource names to quantities",
            [f"{RESOURCES}.{section}: Invalid value: must be a mapping"])
    value = block.get(resource)
    if value is None:
        return None
    field = f"{RESOURCES}.{section}.{resource}"
    try:
        parsed = parse_quantity(str(value))
    except ValueError as exc:
        raise InvalidManifestError(f"Job {job!r}: resources.{section}.{resource}: {exc}",
                                   [f"{field}: Invalid value: {value!r}: {exc}"]) from None
    if parsed <= 0:
        raise InvalidManifestError(
            f"Job {job!r}: resources.{section}.{resource} {value!r} must be greater than zero",
            [f"{field}: Invalid value: {value!r}: must be greater than zero"])
    return parsed


def resource_limits(container: Mapping[str, Any], job: str) -> dict[str, Any]:
    """The launch plan's limit fields: ``memoryLimitBytes`` (None: no limit),
    ``cpuLimit`` (the limit as written, None: no limit) and ``limitEnv`` (the thread
    variables the CPU limit calls for; the job's env is laid over them)."""
    resources = container.get("resources") or {}
    if not isinstance(resources, Mapping):
        raise InvalidManifestError(f"Job {job!r}: resources must be a mapping (requests, limits)",
                                   [f"{RESOURCES}: Invalid value: must be a mapping"])
    found: dict[str, Optional[Decimal]] = {}
    for resource in ("cpu", "memory"):
        limit = _quantity(resources, "limits", resource, job)
        request = _quantity(resources, "requests", resource, job)
        if limit is not None and request is not None and request > limit:
            # The API server refuses it the same way: a pod cannot be promised more than it may use.
            written = (resources.get("requests") or {}).get(resource)
            raise InvalidManifestError(
                f"Job {job!r}: resources.requests.{resource} {written!r} is more than resources.limits.{resource} "
                f"{(resources.get('limits') or {}).get(resource)!r}; lower the request or raise the limit",
                [f"{RESOURCES}.requests: Invalid value: {written!r}: must be less than or equal to "
                 f"{resource} limit"])
        found[resource] = limit
    memory, cpu = found["memory"], found["cpu"]
    plan: dict[str, Any] = {
        "memoryLimitBytes": math.ceil(memory) if memory is not None else None,
        "cpuLimit": str((resources.get("limits") or {}).get("cpu")) if cpu is not None else None,
        "limitEnv": {},
    }
    if cpu is not None:
        cpus = whole_cpus(cpu, available_cores())
        plan["limitEnv"] = {**thread_env(cpus), CPU_LIMIT_ENV: str(cpus)}
    return plan
