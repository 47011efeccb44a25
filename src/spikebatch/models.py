"""Typed models used by the batch job launcher (spec module ``models``)."""

from .domain.models import (  # noqa: F401 - re-exported public API
    ClusterProfile,
    ContainerSpec,
    JobSpec,
    NamespaceHookSpec,
    PodSecuritySpec,
    PolicyConfig,
    ResourceSpec,
    RunConfig,
    SecretEnvRef,
    StoragePathTemplates,
    SubmitResult,
    VolumeMountSpec,
)

__all__ = [
    "ClusterProfile",
    "ContainerSpec",
    "JobSpec",
    "NamespaceHookSpec",
    "PodSecuritySpec",
    "PolicyConfig",
    "ResourceSpec",
    "RunConfig",
    "SecretEnvRef",
    "StoragePathTemplates",
    "SubmitResult",
    "VolumeMountSpec",
]
