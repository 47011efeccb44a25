"""The composition root: the one place where adapters are chosen and wired.

The profile names its adapters (``backend``: kubernetes | kubectl | local;
``storage_backend``: boto3 | minio | local) and ``providers.Selector`` turns those
names into instances; a bundle names its workspace format and its sorter, and
``providers.Aggregate`` turns those into codecs and sorters. Every provider can be
overridden (an Aggregate through its members), which is how tests inject fakes:

    container = build_container(profile)
    container.backend.override(providers.Object(fake_backend))

Only the entrypoints (the CLI, the in-job runner) and the library entry
(``spikebatch.session.RunSession``) use this module. Adapter modules are imported when a
provider is first called, so building a container (and so ``spikebatch --help``) never
imports boto3, minio, the kubernetes client or NumPy.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from dependency_injector import containers, errors, providers

from .application.runner import InJobAdapters
from .domain.errors import ConfigError
from .domain.models import ClusterProfile

if TYPE_CHECKING:
    from .domain.models import JobSpec
    from .ports.images import ImageEngine, RunnerBuildContext
    from .ports.records import RunRecords
    from .ports.storage import ArtifactStore
    from .session import RunSession

_ADAPTERS = "spikebatch.adapters"


def _lazy(target: str) -> Callable[..., Any]:
    """``module:name`` as a callable that imports its module on the first call."""
    module_name, _, attr = target.partition(":")

    def call(*args: Any, **kwargs: Any) -> Any:
        return getattr(importlib.import_module(f"{_ADAPTERS}.{module_name}"), attr)(*args, **kwargs)

    call.__qualname__ = call.__name__ = attr
    return call


def _chooser(aggregate: providers.Aggregate, what: str, known: str) -> Callable[[str], Any]:
    """``aggregate`` as a function of a name, with a one-line error for an unknown one."""

    def choose(name: str) -> Any:
        try:
            return aggregate(name)
        except errors.NoSuchProviderError:
            raise ConfigError(f"unknown {what} {name!r}; {known}") from None

    return choose


def _result_codec(codec_by_name: Callable[[str], Any], spikelab_available: Callable[[], bool]) -> Any:
    # A sorting job's result workspace is SpikeLab's when it is installed (users then
    # get an AnalysisWorkspace back), else the built-in folder format.
    return codec_by_name("spikelab" if spikelab_available() else "directory")


class NamedAdapters(containers.DeclarativeContainer):
    """Adapters picked by a name that travels in the bundle: the workspace format
    ("directory", "spikelab") and the sorter ("spikeinterface", "spikelab")."""

    workspace_codec = providers.Aggregate(
        spikelab=providers.Factory(_lazy("workspaces.spikelab:SpikeLabWorkspaceCodec")),
        directory=providers.Factory(_lazy("workspaces.directory:DirectoryWorkspaceCodec")),
    )
    #: Every codec, most specific first (a SpikeLab workspace before the plain folder).
    workspace_codecs = providers.List(workspace_codec.providers["spikelab"], workspace_codec.providers["directory"])
    workspace_codec_by_name = providers.Callable(
        _chooser, workspace_codec.provider, "workspace format", "this spikebatch knows: directory, spikelab"
    )
    result_workspace_codec = providers.Callable(
        _result_codec, workspace_codec_by_name, providers.Object(_lazy("workspaces.spikelab:spikelab_available"))
    )

    sorter = providers.Aggregate(
        spikeinterface=providers.Factory(_lazy("sorting.spikeinterface:SpikeInterfaceSorter")),
        spikelab=providers.Factory(_lazy("sorting.spikelab:SpikeLabSorter")),
    )
    sorter_by_name = providers.Callable(_chooser, sorter.provider, "sorter", "use spikeinterface or spikelab")
    #: What one sorted recording puts into a result workspace (per workspace kind).
    sorting_result_items = providers.Object(_lazy("sorting.result_items:result_items"))


def _public_session(**kwargs: Any) -> "RunSession":
    # The library's RunSession (spikebatch.session), so that a session built here is
    # the same class a user imports.
    from .session import RunSession

    return RunSession(**kwargs)


def _s3_store(target: str, profile: Any, credentials: Any) -> providers.Singleton:
    return providers.Singleton(
        _lazy(target),
        prefix=profile.provided.default_s3_prefix,
        path_templates=profile.provided.storage,
        endpoint_url=profile.provided.endpoint_url,
        region_name=profile.provided.region_name,
        aws_access_key_id=credentials.provided.aws_access_key_id,
        aws_secret_access_key=credentials.provided.aws_secret_access_key,
        aws_session_token=credentials.provided.aws_session_token,
    )


class Container(containers.DeclarativeContainer):
    """Providers for one profile. ``profile`` must be given (or overridden)."""

    config = providers.Configuration()
    profile = providers.Dependency(instance_of=ClusterProfile)
    named = providers.Container(NamedAdapters)

    credentials = providers.Singleton(
        _lazy("config.credentials:resolve_credentials"),
        kubeconfig=config.kubeconfig,
        aws_access_key_id=config.aws_access_key_id,
        aws_secret_access_key=config.aws_secret_access_key,
        aws_session_token=config.aws_session_token,
    )

    backend = providers.Selector(
        profile.provided.backend,
        kubernetes=providers.Singleton(
            _lazy("kubernetes.backend:KubernetesBatchJobBackend"),
            namespace=profile.provided.namespace,
            kubeconfig=credentials.provided.kubeconfig,
        ),
        kubectl=providers.Singleton(
            _lazy("kubectl.backend:KubectlBackend"),
            namespace=profile.provided.namespace,
            kubeconfig=credentials.provided.kubeconfig,
        ),
        local=providers.Singleton(
            _lazy("local.backend:LocalProcessBackend"),
            namespace=profile.provided.namespace,
            state_dir=profile.provided.local_state_dir,
        ),
    )

    storage = providers.Selector(
        profile.provided.storage_backend,
        boto3=_s3_store("s3.boto3_store:S3StorageClient", profile, credentials),
        minio=_s3_store("s3.minio_store:MinioStorageClient", profile, credentials),
        local=providers.Singleton(
            _lazy("files.local_store:LocalFileStorage"),
            prefix=profile.provided.default_s3_prefix,
            path_templates=profile.provided.storage,
        ),
    )

    session = providers.Factory(
        _public_session,
        profile=profile,
        backend=backend,
        storage_client=storage,
        credentials=credentials,
        workspace_codecs=named.workspace_codecs,
        sorter_factory=named.sorter_by_name,
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


class UserFiles(containers.DeclarativeContainer):
    """What spikebatch reads and writes among the user's own files on this machine:
    profiles, job configs, a workspace named by its path, files the user asked for
    (a rendered manifest), and the records of the submissions made here."""

    records = providers.Singleton(_lazy("records.submission_files:FileRunRecords"))
    profile_named = providers.Object(_lazy("config.profile_files:load_profile_from_name"))
    profile_file = providers.Object(_lazy("config.profile_files:load_cluster_profile"))
    job_config = providers.Object(_lazy("config.job_config_file:load_job_config"))
    workspace_at = providers.Object(_lazy("workspaces.opening:workspace_at"))
    directory_workspace = providers.Object(_lazy("workspaces.directory:DirectoryWorkspace"))
    workspace_value_from_file = providers.Object(_lazy("workspaces.file_values:value_from_file"))
    text_writer = providers.Object(_lazy("files.atomic:write_text_atomically"))
    #: The user's own credential values (environment, ~/.aws/credentials), to mask.
    secret_values = providers.Object(_lazy("config.credentials:user_secret_values"))


#: The user-file adapters of this process (override its providers to redirect them).
USER_FILES = UserFiles()


def load_profile(profile_or_name: Any) -> ClusterProfile:
    """A ClusterProfile from a ClusterProfile, a profile name or a YAML file path."""
    if isinstance(profile_or_name, ClusterProfile):
        return profile_or_name
    text = str(profile_or_name)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return USER_FILES.profile_file()(text)
    return USER_FILES.profile_named()(text)


def load_job_config(path: Any) -> "JobSpec":
    """A job config YAML file as a validated JobSpec."""
    return USER_FILES.job_config()(path)


def workspace_at(path: Any) -> Any:
    """The workspace a path on the command line names (see adapters.workspaces.opening)."""
    return USER_FILES.workspace_at()(path)


def directory_workspace(path: Any, *, name: Any = None, create: bool) -> Any:
    """The built-in directory workspace in folder ``path``: a new one when ``create``
    and the folder holds none, else the one there (ConfigError when there is none)."""
    return USER_FILES.directory_workspace()(path, name, create=create)


def workspace_value_from_file(path: Any) -> Any:
    """A file as a workspace value: .npy an array, .json its value, else its bytes."""
    return USER_FILES.workspace_value_from_file()(path)


def write_user_file(path: Any, text: str) -> None:
    """Write a file the user asked for, atomically and readable by them only."""
    USER_FILES.text_writer()(path, text, private=True)


def user_secret_values() -> list[str]:
    """The user's own credential values (AWS keys from the environment or the shared
    credentials file): masked wherever they would be shown or stored."""
    return USER_FILES.secret_values()()


def run_records() -> "RunRecords":
    """This machine's submission records."""
    return USER_FILES.records()


def open_session(profile_or_name: Any, **options: Any) -> "RunSession":
    """The session of a profile (object, name, or YAML path) with the adapters it
    names. ``options``: kubeconfig / aws_* credentials, progress."""
    progress = options.pop("progress", None)
    session = build_container(load_profile(profile_or_name), **options).session(progress=progress)
    # Submissions through this session are recorded like the CLI's (list-jobs
    # --offline, show, wait RUN_ID), with what finds the job again: the profile file
    # when a file was named, and the kubeconfig given.
    session.run_records = run_records()
    named_file = not isinstance(profile_or_name, ClusterProfile) and (
        str(profile_or_name).endswith((".yaml", ".yml")) or "/" in str(profile_or_name))
    session.record_origin = {
        "profile_file": str(Path(str(profile_or_name)).expanduser().resolve()) if named_file else None,
        "kubeconfig": str(Path(options["kubeconfig"]).expanduser().resolve()) if options.get("kubeconfig") else None,
    }
    return session


def artifact_store(profile_or_name: Any, **credentials: Any) -> "ArtifactStore":
    """The storage adapter of a profile (object, name, or YAML path) alone, for a
    command that touches nothing else. ``credentials``: aws_* keys."""
    return build_container(load_profile(profile_or_name), **credentials).storage()


def default_named_adapters() -> tuple[list, Callable[[str], Any]]:
    """(workspace codecs, sorter by name) for a session built by hand from adapters."""
    named = NamedAdapters()
    return named.workspace_codecs(), named.sorter_by_name()


class ImageTools(containers.DeclarativeContainer):
    """The runner image: its build context (from this spikebatch) and the container
    engine that builds it, by name or, when none is named, the first that answers."""

    engine = providers.Aggregate(
        docker=providers.Factory(_lazy("images.docker_cli:DockerEngine")),
        podman=providers.Factory(_lazy("images.podman_cli:PodmanEngine")),
    )
    engine_answering = providers.Object(_lazy("images.engine_choice:engine_answering"))
    runner_build_context = providers.Factory(_lazy("images.build_context:RunnerBuildContext"))


#: The image tools of this process (override its providers to substitute them).
IMAGE_TOOLS = ImageTools()


def image_engine(name: Optional[str] = None) -> "ImageEngine":
    """The engine called ``name`` (docker | podman), or the one that answers."""
    chosen = name or IMAGE_TOOLS.engine_answering()()
    return _chooser(IMAGE_TOOLS.engine, "container engine (--engine)", "use docker or podman")(chosen)


def runner_build_context() -> "RunnerBuildContext":
    """The runner image's build context for the spikebatch that is running."""
    return IMAGE_TOOLS.runner_build_context()


class InJob(containers.DeclarativeContainer):
    """What the runner inside a job works with. ``config.scheme`` is the scheme of the
    bundle's URI; the rest comes from the job's environment."""

    config = providers.Configuration()
    env = providers.Dependency()
    named = providers.Container(NamedAdapters)
    credentials = providers.Singleton(_lazy("config.credentials:resolve_credentials"), env=env)
    store = providers.Selector(
        config.scheme,
        file=providers.Singleton(_lazy("files.local_store:LocalFileStorage"), root=config.storage_root),
        s3=providers.Singleton(
            _lazy("s3.boto3_store:S3StorageClient"),
            endpoint_url=config.endpoint_url,
            region_name=config.region_name,
            aws_access_key_id=credentials.provided.aws_access_key_id,
            aws_secret_access_key=credentials.provided.aws_secret_access_key,
            aws_session_token=credentials.provided.aws_session_token,
        ),
    )
    adapters = providers.Factory(
        InJobAdapters,
        store=store,
        workspace_codec=named.workspace_codec_by_name,
        result_codec=named.result_workspace_codec.provider,
        sorter=named.sorter_by_name,
        result_items=named.sorting_result_items,
    )


def in_job_adapters(input_uri: str, env: Mapping[str, str]) -> InJobAdapters:
    """The runner's adapters for a bundle at ``input_uri``: the store is picked by the
    URI's scheme and configured from ``env`` (S3_ENDPOINT_URL, AWS_DEFAULT_REGION and
    the standard AWS credentials, or SPIKEBATCH_STORAGE_ROOT for file:// URIs)."""
    scheme = input_uri.split("://", 1)[0] if "://" in input_uri else ""
    container = InJob()
    container.env.override(providers.Object(env))
    container.config.from_dict(
        {
            "scheme": scheme,
            "storage_root": env.get("SPIKEBATCH_STORAGE_ROOT") or None,
            "endpoint_url": env.get("S3_ENDPOINT_URL") or None,
            "region_name": env.get("AWS_DEFAULT_REGION") or None,
        }
    )
    if scheme not in container.store.providers:
        raise ConfigError(f"URI {input_uri!r} must start with s3:// or file://")
    return container.adapters()
