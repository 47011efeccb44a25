"""spikebatch.models as code written for spikelab.batch_jobs.models uses it.

The installed reference is the oracle: its model classes name the fields and defaults
a porting user relies on; every such field must exist here, with the same default
unless a difference is deliberate (listed below and in the README's porting section).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
from pydantic import ValidationError

import spikebatch
from spikebatch import models as ours
from spikebatch.domain.effective import target_namespace
from spikebatch.domain.manifest import render_job_manifest

ref = pytest.importorskip("spikelab.batch_jobs.models")

#: Reference model classes whose fields and defaults we mirror (PolicyConfig belongs
#: to the policy compatibility tests).
MODELS = ["ContainerSpec", "ResourceSpec", "VolumeMountSpec", "NamespaceHookSpec",
          "StoragePathTemplates", "JobSpec", "ClusterProfile", "SubmitResult"]

#: Deliberate default differences: (model, field) -> why.
DIFFERENT_DEFAULTS = {
    # The reference requires an image; ours takes the profile's default image.
    ("ContainerSpec", "image"): "None: the profile's default_images entry",
    # The reference requires these two; ours start from the profile's.
    ("JobSpec", "container"): "ContainerSpec()",
    ("JobSpec", "resources"): "ResourceSpec(): the profile's resources fill what is unset",
}

RUN_ID = "20240101-000000-abcdefgh"


def _default(model: Any, field: str) -> Any:
    info = model.model_fields[field]
    if info.is_required():
        return "<required>"
    value = info.get_default(call_default_factory=True)
    return value.model_dump() if hasattr(value, "model_dump") else value


def test_every_reference_model_is_importable_from_spikebatch_models() -> None:
    for name in MODELS + ["PolicyConfig"]:
        assert isinstance(getattr(ours, name), type), name


@pytest.mark.parametrize("name", MODELS)
def test_every_reference_field_exists(name: str) -> None:
    missing = set(getattr(ref, name).model_fields) - set(getattr(ours, name).model_fields)
    assert not missing, f"{name} lacks the reference's fields {sorted(missing)}"


@pytest.mark.parametrize("name", MODELS)
def test_reference_defaults_are_ours(name: str) -> None:
    theirs, mine = getattr(ref, name), getattr(ours, name)
    for field in theirs.model_fields:
        if (name, field) in DIFFERENT_DEFAULTS:
            continue
        expected = _default(theirs, field)
        if field in {"storage", "resources"} and isinstance(expected, dict):
            # Ours carry extra fields (e.g. storage.blobs): the reference's must agree.
            got = _default(mine, field)
            assert {k: got[k] for k in expected} == expected, f"{name}.{field}"
            continue
        if field == "policy":
            continue  # PolicyConfig defaults: the policy compatibility tests
        assert _default(mine, field) == expected, f"{name}.{field}"


def test_job_spec_defaults_are_the_references() -> None:
    job = ours.JobSpec()
    assert (job.name_prefix, job.namespace, job.ttl_seconds_after_finished, job.backoff_limit,
            job.active_deadline_seconds) == ("analysis-job", "default", 3600, 0, None)


def test_cluster_profile_affinity_and_secrets_mapping_default_to_empty() -> None:
    profile = ours.ClusterProfile(name="site")
    assert profile.affinity == {} and profile.default_secrets_mapping == {}


def test_cluster_profile_affinity_null_reads_as_empty() -> None:
    assert ours.ClusterProfile(name="site", affinity=None).affinity == {}


def test_job_spec_built_as_a_reference_user_does() -> None:
    job = ours.JobSpec(
        name_prefix="Spike Sort",
        container=ours.ContainerSpec(image="ghcr.io/lab/analysis:1.0", command=["python"], args=["run.py"],
                                     env={"MODE": "fast"}),
        resources=ours.ResourceSpec(requests_cpu="2", limits_cpu="2", requests_gpu=1, limits_gpu=1),
        volumes=[ours.VolumeMountSpec(name="data", mount_path="/data", pvc_name="lab-data")],
        ttl_seconds_after_finished=600,
        active_deadline_seconds=3600,
    )
    assert job.name_prefix == "spike-sort"
    assert job.resources.limits_gpu == 1 and job.volumes[0].read_only is True


@pytest.mark.parametrize("raw", [
    "analysis-job", "My Analysis Job", "sort_run.v2", "  padded  ", "UPPER", "a--b---c",
    "-lead-and-trail-", "ÄÖÜ-job", "x" * 40, "x" * 41, "y" * 80, "-" + "b" * 45,
    "a" * 39 + "-bcd", "tab\there", "dots.and.more.dots",
])
def test_name_prefix_sanitised_exactly_as_the_reference(raw: str) -> None:
    with warnings.catch_warnings(record=True) as theirs_warned:
        warnings.simplefilter("always")
        expected = ref.JobSpec(container=ref.ContainerSpec(image="i"), resources=ref.ResourceSpec(),
                               name_prefix=raw).name_prefix
    with warnings.catch_warnings(record=True) as ours_warned:
        warnings.simplefilter("always")
        got = ours.JobSpec(name_prefix=raw).name_prefix
    assert got == expected
    warned = lambda records: [w for w in records if issubclass(w.category, UserWarning)]  # noqa: E731
    assert bool(warned(ours_warned)) == bool(warned(theirs_warned)), raw


def test_a_long_name_prefix_is_cut_to_40_with_a_user_warning() -> None:
    with pytest.warns(UserWarning, match="name_prefix"):
        job = ours.JobSpec(name_prefix="a-very-long-descriptive-name-for-a-nightly-sorting-run")
    assert job.name_prefix == "a-very-long-descriptive-name-for-a-night" and len(job.name_prefix) == 40


@pytest.mark.parametrize("raw", ["   ", "---", "!!!", ""])
def test_a_name_prefix_with_nothing_usable_is_refused(raw: str) -> None:
    with pytest.raises(ValidationError, match="name_prefix"):
        ours.JobSpec(name_prefix=raw)


def test_gpu_requests_and_limits_must_match_as_in_the_reference() -> None:
    with pytest.raises(ValidationError):
        ours.ResourceSpec(requests_gpu=1, limits_gpu=2)
    with pytest.raises(ValueError):  # pydantic's ValidationError is a ValueError
        ours.ResourceSpec(requests_gpu=2, limits_gpu=0)


def test_a_volume_needs_a_source_as_in_the_reference() -> None:
    with pytest.raises(ValidationError):
        ours.VolumeMountSpec(name="v", mount_path="/v")


def test_submit_result_takes_the_reference_fields() -> None:
    fields = dict(job_name="j-abc123", manifest_yaml="kind: Job\n", run_id=RUN_ID,
                  uploaded_input_uri="s3://b/inputs/x.zip", output_prefix="s3://b/outputs/x/",
                  logs_prefix="s3://b/logs/x/", job_type="workspace")
    result = ours.SubmitResult(**fields)
    assert {k: getattr(result, k) for k in fields} == ref.SubmitResult(**fields).model_dump()


@pytest.mark.parametrize("namespace_field", [{}, {"namespace": ""}])
def test_an_unset_or_empty_namespace_means_the_profiles(namespace_field: dict) -> None:
    profile = ours.ClusterProfile(name="site", namespace="lab", default_images={"cpu": "img:1"})
    job = ours.JobSpec(**namespace_field)
    assert target_namespace(job, profile) == "lab"
    manifest = render_job_manifest("job-abc123", job, profile, RUN_ID)
    assert manifest["metadata"]["namespace"] == "lab"


def test_a_namespace_the_job_names_wins() -> None:
    profile = ours.ClusterProfile(name="site", namespace="lab", default_images={"cpu": "img:1"})
    manifest = render_job_manifest("job-abc123", ours.JobSpec(namespace="other"), profile, RUN_ID)
    assert manifest["metadata"]["namespace"] == "other"


def test_the_manifest_carries_the_default_ttl_of_one_hour() -> None:
    profile = ours.ClusterProfile(name="site", default_images={"cpu": "img:1"})
    manifest = render_job_manifest("job-abc123", ours.JobSpec(), profile, RUN_ID)
    assert manifest["spec"]["ttlSecondsAfterFinished"] == 3600


def test_every_reference_top_level_name_is_exported() -> None:
    import spikelab.batch_jobs as reference

    missing = [name for name in reference.__all__ if name not in spikebatch.__all__]
    assert not missing, f"spikebatch.__all__ lacks {missing}"
    for name in reference.__all__:
        assert getattr(spikebatch, name) is not None, name


def test_top_level_models_are_the_models_modules() -> None:
    assert spikebatch.JobSpec is ours.JobSpec and spikebatch.ClusterProfile is ours.ClusterProfile
    from spikebatch.session import RunSession

    assert spikebatch.RunSession is RunSession
