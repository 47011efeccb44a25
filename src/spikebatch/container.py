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
from .application.session import RunSession
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

    session = providers.Factory(
        RunSession,
        profile=profile,
        backend=backend,
        storage_client=storage,
        credentials=credentials,
        # Late-bound: both are defined below and import their adapters only when called.
        workspace_codecs=providers.Callable(lambda: workspace_codecs()),
        sorter_factory=providers.Callable(lambda: sorter),
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


# --- what the in-container runner and the session pick by name ------------------------
# The bundle records which codec / sorter made it; these resolve those names.


def workspace_codecs() -> list:
    """Every workspace codec, most specific first (SpikeLab before the built-in)."""
    from .adapters.workspace_directory import DirectoryWorkspaceCodec
    from .adapters.workspace_spikelab import SpikeLabWorkspaceCodec

    return [SpikeLabWorkspaceCodec(), DirectoryWorkspaceCodec()]


def workspace_codec(name: str) -> Any:
    from .domain.errors import ConfigError

    for codec in workspace_codecs():
        if codec.name == name:
            return codec
    raise ConfigError(f"unknown workspace format {name!r}; this spikebatch knows: directory, spikelab")


def result_workspace_codec() -> Any:
    """The codec a sorting job's result workspace is written with: SpikeLab's when it
    is installed (so users get an AnalysisWorkspace back), else the built-in one."""
    from .adapters.workspace_spikelab import spikelab_available

    return workspace_codec("spikelab" if spikelab_available() else "directory")


def sorter(name: str) -> Any:
    from .domain.errors import ConfigError

    if name == "spikeinterface":
        from .adapters.sorter_spikeinterface import SpikeInterfaceSorter

        return SpikeInterfaceSorter()
    if name == "spikelab":
        from .adapters.sorter_spikelab import SpikeLabSorter

        return SpikeLabSorter()
    raise ConfigError(f"unknown sorter {name!r}; use spikeinterface or spikelab")


def store_for_uri(uri: str) -> Any:
    """An ArtifactStore for ``uri``'s scheme, configured from the environment (the
    runner's view: S3_ENDPOINT_URL, AWS_DEFAULT_REGION, the standard AWS credentials,
    or SPIKEBATCH_STORAGE_ROOT for file:// URIs)."""
    import os

    from .domain.errors import ConfigError

    if uri.startswith("file://"):
        from .adapters.storage_local import LocalFileStorage

        return LocalFileStorage(root=os.environ.get("SPIKEBATCH_STORAGE_ROOT") or None)
    if uri.startswith("s3://"):
        from .adapters.storage_s3 import S3StorageClient

        creds = resolve_credentials()
        return S3StorageClient(
            endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None,
            region_name=os.environ.get("AWS_DEFAULT_REGION") or None,
            aws_access_key_id=creds.aws_access_key_id,
            aws_secret_access_key=creds.aws_secret_access_key,
            aws_session_token=creds.aws_session_token,
        )
    raise ConfigError(f"URI {uri!r} must start with s3:// or file://")


def sorting_result_items(outcome: Any, workspace: Any) -> dict:
    """What one sorted recording stores in the result workspace (per workspace kind)."""
    from .adapters.sorting_results import result_items

    return result_items(outcome, workspace)
