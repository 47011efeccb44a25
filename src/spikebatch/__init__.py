"""spikebatch: run analysis and spike-sorting workloads as Kubernetes batch jobs.

The public names follow the spikelab.batch_jobs reference. Heavy modules (cloud
clients, the session) are imported lazily on first attribute access, so ``import
spikebatch`` and ``spikebatch --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> module that defines it
_EXPORTS = {
    "ContainerSpec": "spikebatch.domain.models",
    "ResourceSpec": "spikebatch.domain.models",
    "VolumeMountSpec": "spikebatch.domain.models",
    "NamespaceHookSpec": "spikebatch.domain.models",
    "StoragePathTemplates": "spikebatch.domain.models",
    "PolicyConfig": "spikebatch.domain.models",
    "JobSpec": "spikebatch.domain.models",
    "ClusterProfile": "spikebatch.domain.models",
    "SubmitResult": "spikebatch.domain.models",
    "RunConfig": "spikebatch.domain.models",
    "SecretEnvRef": "spikebatch.domain.models",
    "SpikebatchError": "spikebatch.domain.errors",
    "PolicyFinding": "spikebatch.domain.policy",
    "evaluate_policy": "spikebatch.domain.policy",
    "summarize_preflight": "spikebatch.domain.policy",
    "validate_job_spec": "spikebatch.domain.validation",
    "redact_sensitive_map": "spikebatch.domain.redaction",
    "ResolvedCredentials": "spikebatch.adapters.credentials",
    "resolve_credentials": "spikebatch.adapters.credentials",
    "load_cluster_profile": "spikebatch.adapters.profile_files",
    "load_profile_from_name": "spikebatch.adapters.profile_files",
    "render_job_manifest": "spikebatch.domain.manifest",
    "manifest_to_yaml": "spikebatch.domain.manifest",
    "JobState": "spikebatch.ports.backend",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spikebatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
