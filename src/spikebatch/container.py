"""The composition root: the one place where adapters are chosen and wired.

The profile names its adapters (``backend``: kubernetes | kubectl | local;
``storage_backend``: boto3 | minio | local); ``providers.Selector`` turns those names
into instances. Every provider can be overridden, which is how tests inject fakes:

    container = build_container(profile)
    container.backend.override(providers.Object(fake_backend))

Adapter modules are imported inside the factories, so building the container (and so
``spikebatch --help``) never imports boto3, minio or the kubernetes client.
"""

from __future__ import annotations

from typing import Any, Optional

from dependency_injector import containers, providers

from .adapters.credentials import ResolvedCredentials, resolve_credentials
from .domain.models import ClusterProfile


def _kubernetes_backend(profile: ClusterProfile, credentials: ResolvedCredentials) -> Any:
    from .adapters.backend_k8s import KubernetesBatchJobBackend

    return KubernetesBatchJobBackend(namespace=profile.namespace, kubeconfig=credentials.kubeconfig)


def _kubectl_backend(profile: ClusterProfile, credentials: ResolvedCredentials) -> Any:
    from .adapters.backend_kubectl import KubectlBackend

    return KubectlBackend(namespace=profile.namespace, kubeconfig=credentials.kubeconfig)


def _local_backend(profile: ClusterProfile) -> Any:
    from .adapters.backend_local import LocalProcessBackend

    return LocalProcessBackend(namespace=profile.namespace, state_dir=profile.local_state_dir)


def _s3_kwargs(profile: ClusterProfile, credentials: ResolvedCredentials) -> dict:
    return dict(
        prefix=profile.default_s3_prefix,
        path_templates=profile.storage,
        endpoint_url=profile.endpoint_url,
        region_name=profile.region_name,
        aws_access_key_id=credentials.aws_access_key_id,
        aws_secret_access_key=credentials.aws_secret_access_key,
        aws_session_token=credentials.aws_session_token,
    )


def _boto3_storage(profile: ClusterProfile, credentials: ResolvedCredentials) -> Any:
    from .adapters.storage_s3 import S3StorageClient

    return S3StorageClient(**_s3_kwargs(profile, credentials))


def _minio_storage(profile: ClusterProfile, credentials: ResolvedCredentials) -> Any:
    from .adapters.storage_minio import MinioStorageClient

    return MinioStorageClient(**_s3_kwargs(profile, credentials))


def _local_storage(profile: ClusterProfile) -> Any:
    from .adapters.storage_local import LocalFileStorage

    return LocalFileStorage(prefix=profile.default_s3_prefix, path_templates=profile.storage)


class Container(containers.DeclarativeContainer):
    """Providers for one profile. ``profile`` must be given (or overridden)."""

    config = providers.Configuration()
    profile = providers.Dependency(instance_of=ClusterProfile)

    credentials = providers.Singleton(
        resolve_credentials,
        kubeconfig=config.kubeconfig,
        aws_access_key_id=config.aws_access_key_id,
        aws_secret_access_key=config.aws_secret_access_key,
        aws_session_token=config.aws_session_token,
    )

    backend = providers.Selector(
        profile.provided.backend,
        kubernetes=providers.Singleton(_kubernetes_backend, profile, credentials),
        kubectl=providers.Singleton(_kubectl_backend, profile, credentials),
        local=providers.Singleton(_local_backend, profile),
    )

    storage = providers.Selector(
        profile.provided.storage_backend,
        boto3=providers.Singleton(_boto3_storage, profile, credentials),
        minio=providers.Singleton(_minio_storage, profile, credentials),
        local=providers.Singleton(_local_storage, profile),
    )


def build_container(
    profile: ClusterProfile,
    *,
    kubeconfig: Optional[str] = None,
    aws_access_key_id: Optional[str] = None,
    aws_secret_access_key: Optional[str] = None,
    aws_session_token: Optional[str] = None,
) -> Container:
    """A container wired for ``profile``; explicit credentials take precedence."""
    container = Container()
    container.profile.override(providers.Object(profile))
    container.config.from_dict(
        {
            "kubeconfig": kubeconfig,
            "aws_access_key_id": aws_access_key_id,
            "aws_secret_access_key": aws_secret_access_key,
            "aws_session_token": aws_session_token,
        }
    )
    return container
