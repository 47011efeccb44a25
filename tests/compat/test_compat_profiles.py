"""spikebatch.profiles with the reference's own profile files and profile names.

The reference's built-in ``defaults.yaml`` and ``nrp.yaml`` (read from the installed
spikelab package) load with ``load_cluster_profile`` and render a Job.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, List

import pytest
import yaml

from spikebatch.domain.manifest import manifest_to_yaml, render_job_manifest
from spikebatch.errors import ProfileNotFoundError
from spikebatch.models import ClusterProfile, JobSpec
from spikebatch.profiles import load_cluster_profile, load_profile_from_name

ref_profiles = pytest.importorskip("spikelab.batch_jobs.profiles")

RUN_ID = "20240101-000000-abcdefgh"
#: Fields both models have; what the reference reads from its files must read the same here.
SHARED = ["name", "namespace", "labels", "default_s3_prefix", "affinity", "tolerations",
          "default_secrets_mapping", "default_images", "endpoint_url", "region_name", "image_pull_secrets"]


def _pod(manifest: Dict[str, Any]) -> Dict[str, Any]:
    return manifest["spec"]["template"]["spec"]


@pytest.mark.parametrize("name", ["defaults", "nrp"])
def test_the_reference_profile_files_load(reference_profile_files: Dict[str, Path], name: str) -> None:
    path = reference_profile_files[name]
    for given in (str(path), path):
        profile = load_cluster_profile(given)
        assert isinstance(profile, ClusterProfile) and profile.name == name


@pytest.mark.parametrize("name", ["defaults", "nrp"])
def test_the_reference_files_read_as_the_reference_reads_them(reference_profile_files: Dict[str, Path],
                                                            name: str) -> None:
    path = reference_profile_files[name]
    theirs, mine = ref_profiles.load_cluster_profile(str(path)), load_cluster_profile(path)
    for field in SHARED:
        assert getattr(mine, field) == getattr(theirs, field), field
    assert mine.resources.model_dump() == theirs.resources.model_dump()
    for category in ("inputs", "outputs", "logs"):
        assert getattr(mine.storage, category) == getattr(theirs.storage, category)
    assert set(mine.namespace_hooks) == set(theirs.namespace_hooks)
    for namespace, hook in theirs.namespace_hooks.items():
        got = mine.namespace_hooks[namespace]
        assert got.default_command == hook.default_command and got.env_defaults == hook.env_defaults
        assert got.image_pull_policy == hook.image_pull_policy
        reference_fields = set(type(hook).model_fields["required_volumes"].annotation.__args__[0].model_fields)
        assert [v.model_dump() for v in hook.required_volumes] == [
            {k: v for k, v in vol.model_dump().items() if k in reference_fields} for vol in got.required_volumes
        ]


def test_the_reference_nrp_file_carries_its_secrets_mapping(reference_profile_files: Dict[str, Path]) -> None:
    profile = load_cluster_profile(reference_profile_files["nrp"])
    assert profile.default_secrets_mapping == {"s3_credentials_secret": "prp-s3-credentials"}
    assert profile.affinity["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 50


def test_the_reference_defaults_file_renders_a_job(reference_profile_files: Dict[str, Path]) -> None:
    profile = load_cluster_profile(reference_profile_files["defaults"])
    job = JobSpec(name_prefix="analysis", container={"image": "ghcr.io/lab/analysis:1.0", "args": ["run.py"]})
    manifest = render_job_manifest("analysis-abc123", job, profile, RUN_ID)
    assert manifest["kind"] == "Job" and manifest["metadata"]["namespace"] == "default"
    pod = _pod(manifest)
    assert "affinity" not in pod  # affinity: {} renders no affinity
    assert pod["containers"][0]["image"] == "ghcr.io/lab/analysis:1.0"
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 3600
    assert yaml.safe_load(manifest_to_yaml(manifest)) == manifest


def _nrp_manifest(reference_profile_files: Dict[str, Path]) -> Dict[str, Any]:
    profile = load_cluster_profile(reference_profile_files["nrp"])
    job = JobSpec(name_prefix="sort", container={"image": "ghcr.io/braingeneers/spikelab-analysis-base:gpu",
                                                  "args": ["python run.py"]})
    return render_job_manifest("sort-abc123", job, profile, RUN_ID)


def test_the_reference_nrp_file_renders_a_job_with_its_hook(reference_profile_files: Dict[str, Path]) -> None:
    manifest = _nrp_manifest(reference_profile_files)
    assert manifest["metadata"]["namespace"] == "braingeneers"
    pod = _pod(manifest)
    container = pod["containers"][0]
    assert container["command"] == ["sh", "-c"] and container["imagePullPolicy"] == "Always"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["AWS_SHARED_CREDENTIALS_FILE"] == "/etc/spikelab/aws/credentials"
    assert env["KUBECONFIG"] == "/etc/spikelab/kube/config"
    assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert pod["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"][0]["weight"] == 50


def test_the_nrp_secret_is_mounted_twice_with_its_sub_paths(reference_profile_files: Dict[str, Path]) -> None:
    container = _pod(_nrp_manifest(reference_profile_files))["containers"][0]
    mounts: List[Dict[str, Any]] = container["volumeMounts"]
    s3 = [(m["mountPath"], m.get("subPath")) for m in mounts if m["name"] == "prp-s3-credentials"]
    assert s3 == [("/etc/spikelab/aws/credentials", "credentials"), ("/etc/spikelab/aws/.s3cfg", ".s3cfg")]
    assert all(m["readOnly"] for m in mounts)
    assert [m["name"] for m in mounts if m["name"] == "kube-config"] == ["kube-config"]


def test_the_nrp_secret_is_one_pod_volume(reference_profile_files: Dict[str, Path]) -> None:
    volumes = _pod(_nrp_manifest(reference_profile_files))["volumes"]
    assert [v["name"] for v in volumes] == ["prp-s3-credentials", "kube-config"]
    assert volumes[0]["secret"] == {"secretName": "prp-s3-credentials"}


# --------------------------------------------------------------------------- names


@pytest.mark.parametrize("alias", ["nrp", "nautilus", "defaults", "default"])
def test_every_reference_alias_loads_the_same_profile(alias: str) -> None:
    expected = ref_profiles._KNOWN_PROFILE_NAMES[alias].removesuffix(".yaml")
    assert load_profile_from_name(alias).name == expected


@pytest.mark.parametrize(("raw", "expected"), [(" nrp ", "nrp"), ("NRP", "nrp"), ("Nautilus\n", "nrp"),
                                               ("DEFAULT", "defaults"), ("\tdefaults", "defaults")])
def test_names_are_trimmed_and_case_folded(raw: str, expected: str) -> None:
    assert load_profile_from_name(raw).name == expected


def test_an_unknown_name_is_an_error_naming_the_aliases() -> None:
    # The reference warns and falls back to defaults; a typo must not land a job on
    # the wrong cluster, so ours refuses the name (a deliberate difference).
    with pytest.raises(ProfileNotFoundError) as info:
        load_profile_from_name("nrpp")
    message = str(info.value)
    assert "unknown profile 'nrpp'" in message
    assert "default -> defaults" in message and "nautilus -> nrp" in message
    assert "\n" not in message
