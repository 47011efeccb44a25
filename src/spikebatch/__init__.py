"""spikebatch: run analysis and spike-sorting workloads as Kubernetes batch jobs.

The public names follow the spikelab.batch_jobs reference: every name its package
exports (``ClusterProfile``, ``JobSpec``, ``RunSession``, ``load_profile_from_name``, ...)
is exported here too, with more of our own. Heavy modules (cloud
clients, the session) are imported lazily on first attribute access, so ``import
spikebatch`` and ``spikebatch --help`` stay fast.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

# public name -> the module it is imported from
_EXPORTS = {
    "ContainerSpec": "spikebatch.models",
    "ResourceSpec": "spikebatch.models",
    "VolumeMountSpec": "spikebatch.models",
    "NamespaceHookSpec": "spikebatch.models",
    "StoragePathTemplates": "spikebatch.models",
    "PolicyConfig": "spikebatch.models",
    "JobSpec": "spikebatch.models",
    "ClusterProfile": "spikebatch.models",
    "SubmitResult": "spikebatch.models",
    "RunConfig": "spikebatch.models",
    "SecretEnvRef": "spikebatch.models",
    "SpikebatchError": "spikebatch.errors",
    "PolicyFinding": "spikebatch.policy",
    "evaluate_policy": "spikebatch.policy",
    "summarize_preflight": "spikebatch.policy",
    "validate_job_spec": "spikebatch.validation",
    "summarize_validation_error": "spikebatch.validation",
    "redact_sensitive_map": "spikebatch.credentials",
    "ResolvedCredentials": "spikebatch.credentials",
    "resolve_credentials": "spikebatch.credentials",
    "load_cluster_profile": "spikebatch.profiles",
    "load_profile_from_name": "spikebatch.profiles",
    "render_job_manifest": "spikebatch.domain.manifest",
    "manifest_to_yaml": "spikebatch.domain.manifest",
    "JobState": "spikebatch.domain.job_state",
    "RunSession": "spikebatch.session",
    "DirectoryWorkspace": "spikebatch.workspace",
}

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'spikebatch' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
