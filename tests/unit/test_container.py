"""The composition root: the profile names the adapters, and any provider can be
overridden (how tests and callers inject their own)."""

from __future__ import annotations

import sys

import pytest
from dependency_injector import providers

from fakes import MemoryStore, ScriptedBackend
from spikebatch.container import build_container
from spikebatch.models import ClusterProfile
from spikebatch.profiles import load_profile_from_name
from spikebatch.session import RunSession


def profile(backend: str, storage: str, **extra) -> ClusterProfile:
    return ClusterProfile(
        name="p", backend=backend, storage_backend=storage, default_s3_prefix="s3://bucket/jobs/",
        endpoint_url="http://127.0.0.1:9", region_name="us-east-1", **extra,
    )


def test_local_profile_wires_local_adapters(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("SPIKEBATCH_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("SPIKEBATCH_DATA_DIR", str(tmp_path / "data"))
    container = build_container(load_profile_from_name("local"))
    session = container.session()
    assert isinstance(session, RunSession)
    assert type(session.backend).__name__ == "LocalProcessBackend"
    assert type(session.storage_client).__name__ == "LocalFileStorage"
    assert session.storage_client.prefix.startswith("file://" + str(tmp_path / "data"))


@pytest.mark.parametrize(
    "backend, storage, backend_class, storage_class",
    [
        ("kubectl", "boto3", "KubectlBackend", "S3StorageClient"),
        ("kubectl", "minio", "KubectlBackend", "MinioStorageClient"),
    ],
)
def test_profile_names_the_adapters(backend, storage, backend_class, storage_class) -> None:
    container = build_container(profile(backend, storage), aws_access_key_id="AKIAEXAMPLEKEY", aws_secret_access_key="example-secret-value")
    assert type(container.backend()).__name__ == backend_class
    store = container.storage()
    assert type(store).__name__ == storage_class
    assert store.build_uri(run_id="r1", filename="bundle.zip") == "s3://bucket/jobs/inputs/r1/bundle.zip"
    # explicit credentials beat the environment, and never show in the store's repr
    assert container.credentials().aws_source == "explicit"
    assert "example-secret-value" not in repr(store)


def test_kubernetes_backend_takes_the_given_kubeconfig(tmp_path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        "clusters: [{name: k, cluster: {server: 'https://127.0.0.1:6443'}}]\n"
        "users: [{name: u, user: {token: not-a-real-token}}]\n"
        "contexts: [{name: c, context: {cluster: k, user: u, namespace: lab}}]\n"
    )
    backend = build_container(profile("kubernetes", "boto3", namespace="lab"), kubeconfig=str(kubeconfig)).backend()
    assert type(backend).__name__ == "KubernetesBatchJobBackend"
    assert backend.namespace == "lab"


def test_building_the_container_imports_no_cloud_client() -> None:
    import subprocess

    code = (
        "import sys\n"
        "from spikebatch.container import build_container\n"
        "from spikebatch.profiles import load_profile_from_name\n"
        "build_container(load_profile_from_name('defaults'))\n"
        "print(sorted(m for m in ('boto3', 'botocore', 'kubernetes', 'minio') if m in sys.modules))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_any_provider_can_be_overridden() -> None:
    container = build_container(profile("kubernetes", "boto3"))
    fake_backend, fake_store = ScriptedBackend(), MemoryStore()
    container.backend.override(providers.Object(fake_backend))
    container.storage.override(providers.Object(fake_store))
    session = container.session()
    assert session.backend is fake_backend and session.storage_client is fake_store
    container.backend.reset_override()
    assert container.backend() is not fake_backend


def test_the_runner_gets_the_store_of_its_bundle_uri(tmp_path) -> None:
    from spikebatch.container import in_job_adapters
    from spikebatch.errors import ConfigError

    local = in_job_adapters(f"file://{tmp_path}/inputs/r/bundle.zip", {"SPIKEBATCH_STORAGE_ROOT": str(tmp_path)})
    assert type(local.store).__name__ == "LocalFileStorage" and local.store.local_root == tmp_path
    env = {"S3_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY": "example-secret-value"}
    remote = in_job_adapters("s3://bucket/jobs/inputs/r/bundle.zip", env)
    assert type(remote.store).__name__ == "S3StorageClient"
    assert (remote.store.endpoint_url, remote.store.region_name) == ("http://127.0.0.1:9", "us-east-1")
    assert "example-secret-value" not in repr(remote.store)
    with pytest.raises(ConfigError, match="'gs://bucket/x' must start with s3:// or file://"):
        in_job_adapters("gs://bucket/x", {})


def test_the_bundle_names_its_codec_and_sorter() -> None:
    from spikebatch.container import NamedAdapters
    from spikebatch.errors import ConfigError

    named = NamedAdapters()
    codec, sorter = named.workspace_codec_by_name(), named.sorter_by_name()
    assert codec("directory").name == "directory" and codec("spikelab").name == "spikelab"
    assert sorter("spikeinterface").name == "spikeinterface" and sorter("spikelab").name == "spikelab"
    with pytest.raises(ConfigError, match="unknown workspace format 'pickle'; this spikebatch knows: directory, spikelab"):
        codec("pickle")
    with pytest.raises(ConfigError, match="unknown sorter 'kilosort'; use spikeinterface or spikelab"):
        sorter("kilosort")
    # SpikeLab is installed here, so a sorting result comes back as its AnalysisWorkspace
    assert named.result_workspace_codec().name == "spikelab"


def test_a_session_built_by_hand_can_run_workspace_and_sorting_jobs() -> None:
    # The spec's way: RunSession(profile=, backend=, storage_client=) with no codecs given.
    session = RunSession(profile=profile("local", "local"), backend=ScriptedBackend(), storage_client=MemoryStore())
    assert [codec.name for codec in session.workspace_codecs] == ["spikelab", "directory"]
    assert session._sorter("spikeinterface").name == "spikeinterface"


def test_the_user_file_adapters_can_be_redirected() -> None:
    from spikebatch.container import USER_FILES, run_records

    fake = object()
    USER_FILES.records.override(providers.Object(fake))
    try:
        assert run_records() is fake
    finally:
        USER_FILES.records.reset_override()
    assert type(run_records()).__name__ == "FileRunRecords"
