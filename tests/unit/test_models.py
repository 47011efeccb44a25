"""Domain models: every documented default, and every validator accepting and rejecting."""

from __future__ import annotations

import warnings

import pytest
from pydantic import ValidationError

from spikebatch.domain.models import PodSecuritySpec
from spikebatch.errors import ConfigError
from spikebatch.models import (
    ClusterProfile,
    ContainerSpec,
    JobSpec,
    NamespaceHookSpec,
    PolicyConfig,
    ResourceSpec,
    RunConfig,
    SecretEnvRef,
    StoragePathTemplates,
    SubmitResult,
    VolumeMountSpec,
)


def problems(info: pytest.ExceptionInfo) -> dict:
    """{field path: message} of a pydantic ValidationError, as a user reads it."""
    return {".".join(str(p) for p in e["loc"]): e["msg"] for e in info.value.errors()}


def one_problem(info: pytest.ExceptionInfo) -> tuple[str, str]:
    found = problems(info)
    assert len(found) == 1, found
    return next(iter(found.items()))


SECRET_VOLUME = {"name": "creds", "mount_path": "/var/run/secrets/s3", "secret_name": "s3-creds"}
SUBMIT_FIELDS = dict(
    job_name="analysis-job-abc123",
    manifest_yaml="kind: Job\n",
    run_id="20240102-030405-abcdefgh",
    uploaded_input_uri="s3://b/inputs/r/bundle.zip",
    output_prefix="s3://b/outputs/r/",
    logs_prefix="s3://b/logs/r/",
    job_type="workspace",
)


# --------------------------------------------------------------------------- every model


@pytest.mark.parametrize(
    ("model", "kwargs"),
    [
        (ContainerSpec, {}),
        (SecretEnvRef, {"secret_name": "s", "key": "k"}),
        (ResourceSpec, {}),
        (VolumeMountSpec, SECRET_VOLUME),
        (NamespaceHookSpec, {}),
        (PodSecuritySpec, {}),
        (StoragePathTemplates, {}),
        (PolicyConfig, {}),
        (JobSpec, {}),
        (ClusterProfile, {"name": "p"}),
        (SubmitResult, SUBMIT_FIELDS),
        (RunConfig, {"input_path": "ws"}),
    ],
    ids=lambda v: v.__name__ if isinstance(v, type) else "",
)
def test_every_model_rejects_an_unknown_field_by_name(model, kwargs):
    with pytest.raises(ValidationError) as info:
        model(**kwargs, nmae_typo="x")
    assert problems(info) == {"nmae_typo": "Extra inputs are not permitted"}


def test_assignment_is_validated():
    spec = ContainerSpec()
    with pytest.raises(ValidationError):
        spec.image_pull_policy = "Sometimes"
    assert spec.image_pull_policy == "IfNotPresent"


# --------------------------------------------------------------------------- ContainerSpec


def test_container_spec_defaults():
    spec = ContainerSpec()
    assert spec.image is None
    assert spec.image_pull_policy == "IfNotPresent"
    assert spec.command == []
    assert spec.args == []
    assert spec.env == {}


def test_container_spec_mutable_defaults_are_not_shared():
    a, b = ContainerSpec(), ContainerSpec()
    a.command.append("python")
    a.env["X"] = "1"
    assert b.command == [] and b.env == {}


@pytest.mark.parametrize("policy", ["Always", "IfNotPresent", "Never"])
def test_container_spec_accepts_each_pull_policy(policy):
    assert ContainerSpec(image_pull_policy=policy).image_pull_policy == policy


@pytest.mark.parametrize("policy", ["always", "IfPresent", ""])
def test_container_spec_rejects_unknown_pull_policy(policy):
    with pytest.raises(ValidationError) as info:
        ContainerSpec(image_pull_policy=policy)
    loc, msg = one_problem(info)
    assert loc == "image_pull_policy"
    assert "'Always', 'IfNotPresent' or 'Never'" in msg


@pytest.mark.parametrize("image", ["python:3.11", "ghcr.io/lab/img@sha256:" + "a" * 64, "localhost:5000/x"])
def test_container_spec_accepts_image_references(image):
    assert ContainerSpec(image=image).image == image


@pytest.mark.parametrize("image", ["", "   ", "repo/img: tag", "img\tv1"])
def test_container_spec_rejects_blank_or_spaced_image(image):
    with pytest.raises(ValidationError) as info:
        ContainerSpec(image=image)
    loc, msg = one_problem(info)
    assert loc == "image"
    assert "non-empty reference without spaces" in msg and repr(image) in msg


def test_container_spec_env_yaml_scalars_become_text():
    spec = ContainerSpec(env={"DEBUG": 1, "FLAG": True, "OFF": False, "RATIO": 0.5, "NAME": "x"})
    assert spec.env == {"DEBUG": "1", "FLAG": "true", "OFF": "false", "RATIO": "0.5", "NAME": "x"}


def test_container_spec_env_secret_reference_from_mapping():
    spec = ContainerSpec(env={"AWS_SECRET_ACCESS_KEY": {"secret_name": "s3-creds", "key": "secret"}})
    ref = spec.env["AWS_SECRET_ACCESS_KEY"]
    assert isinstance(ref, SecretEnvRef)
    assert (ref.secret_name, ref.key, ref.optional) == ("s3-creds", "secret", False)


@pytest.mark.parametrize("name", ["FOO", "_private", "my.var-1", "a", "-dash"])
def test_container_spec_accepts_env_names(name):
    assert name in ContainerSpec(env={name: "v"}).env


@pytest.mark.parametrize("name", ["1FOO", "FOO BAR", "", "FOO=1", "é"])
def test_container_spec_rejects_env_names(name):
    with pytest.raises(ValidationError) as info:
        ContainerSpec(env={name: "v"})
    loc, msg = one_problem(info)
    assert loc == "env"
    assert repr(name) in msg and "[-._a-zA-Z][-._a-zA-Z0-9]*" in msg


def test_container_spec_rejects_env_name_with_trailing_newline():
    with pytest.raises(ValidationError):
        ContainerSpec(env={"FOO\n": "v"})


# --------------------------------------------------------------------------- SecretEnvRef


def test_secret_env_ref_defaults_and_fields():
    ref = SecretEnvRef(secret_name="prp-s3-credentials", key="aws_secret_access_key")
    assert ref.optional is False
    assert SecretEnvRef(secret_name="a.b", key="k", optional=True).optional is True


@pytest.mark.parametrize("name", ["My_Secret", "UPPER", "", "-lead", "has space"])
def test_secret_env_ref_rejects_non_dns_subdomain(name):
    with pytest.raises(ValidationError) as info:
        SecretEnvRef(secret_name=name, key="k")
    loc, msg = one_problem(info)
    assert loc == "secret_name"
    assert "DNS subdomain" in msg and repr(name) in msg


def test_secret_env_ref_requires_key():
    with pytest.raises(ValidationError) as info:
        SecretEnvRef(secret_name="s")
    assert problems(info) == {"key": "Field required"}


# --------------------------------------------------------------------------- ResourceSpec


def test_resource_spec_defaults():
    res = ResourceSpec()
    assert res.requests_cpu == "1"
    assert res.requests_memory == "2Gi"
    assert res.limits_cpu == "1"
    assert res.limits_memory == "2Gi"
    assert res.requests_gpu == 0 and res.limits_gpu == 0
    assert res.gpus == 0
    assert res.node_selector == {}


def test_resource_spec_accepts_kubernetes_quantities():
    res = ResourceSpec(requests_cpu="500m", limits_cpu="2", requests_memory="512Mi", limits_memory="8Gi")
    assert (res.requests_cpu, res.limits_cpu, res.requests_memory, res.limits_memory) == ("500m", "2", "512Mi", "8Gi")


def test_resource_spec_yaml_numbers_become_quantity_text():
    res = ResourceSpec(requests_cpu=2, limits_cpu=0.5, requests_memory=1073741824)
    assert (res.requests_cpu, res.limits_cpu, res.requests_memory) == ("2", "0.5", "1073741824")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("requests_cpu", "two", "not a Kubernetes quantity"),
        ("limits_cpu", "0", "greater than zero"),
        ("requests_cpu", "1Gi", "memory suffix"),
        ("requests_memory", "8GB", "not a Kubernetes quantity"),
        ("limits_memory", "0Gi", "greater than zero"),
        ("limits_memory", "512m", "milli/micro/nano"),
    ],
)
def test_resource_spec_rejects_bad_quantities_naming_the_field(field, value, expected):
    with pytest.raises(ValidationError) as info:
        ResourceSpec(**{field: value})
    loc, msg = one_problem(info)
    assert loc == field
    assert expected in msg and repr(value) in msg


def test_resource_spec_gpus_must_match():
    res = ResourceSpec(requests_gpu=2, limits_gpu=2)
    assert res.gpus == 2


@pytest.mark.parametrize(("req", "lim"), [(1, 0), (0, 1), (2, 4)])
def test_resource_spec_rejects_gpu_requests_different_from_limits(req, lim):
    with pytest.raises(ValidationError) as info:
        ResourceSpec(requests_gpu=req, limits_gpu=lim)
    _, msg = one_problem(info)
    assert f"requests_gpu ({req}) and limits_gpu ({lim}) must be equal" in msg


@pytest.mark.parametrize("field", ["requests_gpu", "limits_gpu"])
def test_resource_spec_rejects_negative_gpus(field):
    with pytest.raises(ValidationError) as info:
        ResourceSpec(**{field: -1})
    assert problems(info)[field] == "Input should be greater than or equal to 0"


def test_resource_spec_assignment_rechecks_gpu_match():
    res = ResourceSpec()
    with pytest.raises(ValidationError, match="must be equal"):
        res.requests_gpu = 1


def test_resource_spec_node_selector():
    res = ResourceSpec(node_selector={"nvidia.com/gpu.product": "A100"})
    assert res.node_selector == {"nvidia.com/gpu.product": "A100"}


# --------------------------------------------------------------------------- VolumeMountSpec


def test_volume_mount_spec_defaults():
    vol = VolumeMountSpec(**SECRET_VOLUME)
    assert vol.sub_path is None
    assert vol.pvc_name is None
    assert vol.read_only is True


def test_volume_mount_spec_secret_fields():
    vol = VolumeMountSpec(**SECRET_VOLUME)
    assert (vol.name, vol.mount_path, vol.secret_name) == ("creds", "/var/run/secrets/s3", "s3-creds")


def test_volume_mount_spec_pvc_only():
    vol = VolumeMountSpec(name="data", mount_path="/data", pvc_name="lab-data", read_only=False, sub_path="x")
    assert (vol.pvc_name, vol.secret_name, vol.read_only, vol.sub_path) == ("lab-data", None, False, "x")


@pytest.mark.parametrize(
    "sources",
    [{}, {"secret_name": "s", "pvc_name": "p"}, {"secret_name": "s", "empty_dir": True},
     {"pvc_name": "p", "empty_dir": True, "read_only": False}],
    ids=["neither", "both", "secret-and-empty-dir", "pvc-and-empty-dir"],
)
def test_volume_mount_spec_needs_exactly_one_source(sources):
    with pytest.raises(ValidationError) as info:
        VolumeMountSpec(name="data", mount_path="/data", **sources)
    _, msg = one_problem(info)
    assert "volume 'data' needs exactly one of secret_name, pvc_name or empty_dir: true" in msg


def test_volume_mount_spec_defaults_leave_empty_dir_off():
    vol = VolumeMountSpec(**SECRET_VOLUME)
    assert (vol.empty_dir, vol.size_limit) == (False, None)


def test_empty_dir_volume_is_writable_unless_said_otherwise():
    vol = VolumeMountSpec(name="scratch", mount_path="/scratch", empty_dir=True)
    assert (vol.empty_dir, vol.read_only, vol.size_limit) == (True, False, None)
    assert "read_only" in vol.model_fields_set  # with_changes copies keep it writable
    assert VolumeMountSpec.model_validate(vol.model_dump(exclude_unset=True)) == vol


def test_empty_dir_volume_read_only_is_refused():
    with pytest.raises(ValidationError) as info:
        VolumeMountSpec(name="scratch", mount_path="/scratch", empty_dir=True, read_only=True)
    _, msg = one_problem(info)
    assert "empty_dir scratch space mounted read-only" in msg and "drop read_only: true" in msg


@pytest.mark.parametrize(("given", "stored"), [("10Gi", "10Gi"), ("512Mi", "512Mi"), (1073741824, "1073741824")])
def test_empty_dir_size_limit_is_a_memory_quantity(given, stored):
    vol = VolumeMountSpec(name="scratch", mount_path="/scratch", empty_dir=True, size_limit=given)
    assert vol.size_limit == stored


@pytest.mark.parametrize("bad", ["lots", "0", "100m"])
def test_empty_dir_size_limit_rejects_bad_quantities_naming_the_field(bad):
    with pytest.raises(ValidationError) as info:
        VolumeMountSpec(name="scratch", mount_path="/scratch", empty_dir=True, size_limit=bad)
    loc, msg = one_problem(info)
    assert loc == "size_limit" and "size_limit" in msg


def test_size_limit_applies_to_empty_dir_only():
    with pytest.raises(ValidationError) as info:
        VolumeMountSpec(**SECRET_VOLUME, size_limit="1Gi")
    _, msg = one_problem(info)
    assert "size_limit applies to empty_dir volumes only" in msg


@pytest.mark.parametrize("name", ["Data", "data_vol", "-x", "", "a" * 64])
def test_volume_mount_spec_rejects_bad_name(name):
    with pytest.raises(ValidationError) as info:
        VolumeMountSpec(**{**SECRET_VOLUME, "name": name})
    assert "RFC 1123 label" in problems(info)["name"]


@pytest.mark.parametrize("path", ["data", "./data", "", "~/data"])
def test_volume_mount_spec_rejects_relative_mount_path(path):
    with pytest.raises(ValidationError) as info:
        VolumeMountSpec(**{**SECRET_VOLUME, "mount_path": path})
    assert problems(info)["mount_path"] == f"Value error, mount_path {path!r} must be an absolute path"


@pytest.mark.parametrize("field", ["secret_name", "pvc_name"])
@pytest.mark.parametrize("value", ["", "My Secret"])
def test_volume_mount_spec_rejects_invalid_source_names(field, value):
    with pytest.raises(ValidationError):
        VolumeMountSpec(name="v", mount_path="/v", **{field: value})


@pytest.mark.parametrize(("field", "what"), [("secret_name", "secret name"), ("pvc_name", "PVC name")])
def test_volume_mount_spec_source_name_problem_names_the_field(field, what):
    with pytest.raises(ValidationError) as info:
        VolumeMountSpec(name="v", mount_path="/v", **{field: "My Secret"})
    loc, msg = one_problem(info)
    assert loc == field and f"{what} 'My Secret'" in msg and "DNS subdomain" in msg


# --------------------------------------------------------------------------- NamespaceHookSpec


def test_namespace_hook_spec_defaults():
    hook = NamespaceHookSpec()
    assert hook.image_pull_policy is None
    assert hook.default_command == []
    assert hook.required_volumes == []
    assert hook.env_defaults == {}


def test_namespace_hook_spec_fields():
    hook = NamespaceHookSpec(
        image_pull_policy="Always",
        default_command=["python", "-m", "spikebatch.entrypoints.runner"],
        required_volumes=[SECRET_VOLUME],
        env_defaults={"DEBUG": 1, "TOKEN": {"secret_name": "t", "key": "token"}},
    )
    assert hook.required_volumes[0].secret_name == "s3-creds"
    assert hook.env_defaults["DEBUG"] == "1"
    assert isinstance(hook.env_defaults["TOKEN"], SecretEnvRef)


def test_namespace_hook_spec_rejects_bad_pull_policy():
    with pytest.raises(ValidationError) as info:
        NamespaceHookSpec(image_pull_policy="sometimes")
    assert "image_pull_policy" in problems(info)


def test_namespace_hook_spec_rejects_bad_env_name():
    with pytest.raises(ValidationError) as info:
        NamespaceHookSpec(env_defaults={"1BAD": "x"})
    assert "'1BAD'" in problems(info)["env_defaults"]


def test_namespace_hook_spec_validates_required_volumes():
    with pytest.raises(ValidationError) as info:
        NamespaceHookSpec(required_volumes=[{"name": "v", "mount_path": "/v"}])
    assert "exactly one of secret_name, pvc_name or empty_dir: true" in problems(info)["required_volumes.0"]


# --------------------------------------------------------------------------- StoragePathTemplates


def test_storage_path_templates_defaults():
    t = StoragePathTemplates()
    assert t.inputs == "{prefix}inputs/{run_id}/{filename}"
    assert t.outputs == "{prefix}outputs/{run_id}/"
    assert t.logs == "{prefix}logs/{run_id}/"
    assert t.blobs == "{prefix}blobs/sha256/{filename}"


def test_storage_path_templates_render_each_category():
    t = StoragePathTemplates()
    kw = dict(prefix="s3://bucket/spikebatch/", run_id="r1", filename="bundle.zip")
    assert t.render("inputs", **kw) == "s3://bucket/spikebatch/inputs/r1/bundle.zip"
    assert t.render("outputs", **kw) == "s3://bucket/spikebatch/outputs/r1/"
    assert t.render("logs", **kw) == "s3://bucket/spikebatch/logs/r1/"
    assert t.render("blobs", prefix="s3://bucket/", filename="ab" * 32) == "s3://bucket/blobs/sha256/" + "ab" * 32


def test_storage_path_templates_render_adds_missing_slash_to_prefix():
    t = StoragePathTemplates()
    assert t.render("outputs", prefix="s3://bucket/sb", run_id="r") == "s3://bucket/sb/outputs/r/"
    assert t.render("outputs", prefix="file:///tmp/x", run_id="r") == "file:///tmp/x/outputs/r/"


def test_storage_path_templates_custom_layout():
    t = StoragePathTemplates(inputs="{prefix}{run_id}/in/{filename}", outputs="{prefix}{run_id}/out/")
    assert t.render("inputs", prefix="s3://b/", run_id="r", filename="f") == "s3://b/r/in/f"
    assert t.render("outputs", prefix="s3://b/", run_id="r") == "s3://b/r/out/"


def test_storage_path_templates_render_rejects_unknown_category():
    with pytest.raises(ConfigError) as info:
        StoragePathTemplates().render("results", prefix="s3://b/", run_id="r")
    assert "'results'" in info.value.message
    assert "inputs, outputs, logs, blobs" in info.value.message


@pytest.mark.parametrize("prefix", [None, ""])
def test_storage_path_templates_render_without_prefix_says_how_to_set_it(prefix):
    with pytest.raises(ConfigError) as info:
        StoragePathTemplates().render("inputs", prefix=prefix, run_id="r", filename="f")
    assert "prefix is not set" in info.value.message
    assert "default_s3_prefix" in info.value.message


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"inputs": "{prefix}{bucket}/{run_id}/{filename}"}, "'inputs' uses unknown placeholder(s) ['bucket']"),
        ({"logs": "{prefix}logs/{user}/{run_id}/"}, "'logs' uses unknown placeholder(s) ['user']"),
        ({"inputs": "{prefix}inputs/{filename}"}, "'inputs' must contain {run_id}"),
        ({"inputs": "{prefix}inputs/"}, "'inputs' must contain {filename}, {run_id}"),
        ({"outputs": "{prefix}outputs/"}, "'outputs' must contain {run_id}"),
        ({"logs": "{prefix}logs/"}, "'logs' must contain {run_id}"),
        ({"blobs": "{prefix}blobs/"}, "'blobs' must contain {filename}"),
        ({"outputs": "{prefix}outputs/{run_id}"}, "'outputs' must end with '/'"),
        ({"logs": "{prefix}logs/{run_id}"}, "'logs' must end with '/'"),
    ],
)
def test_storage_path_templates_reject_bad_templates_naming_the_category(fields, expected):
    with pytest.raises(ValidationError) as info:
        StoragePathTemplates(**fields)
    _, msg = one_problem(info)
    assert expected in msg


@pytest.mark.parametrize("template", ["{prefix}logs/{run_id!x}/", "{prefix}logs/{run_id:%}/", "{prefix}logs/{run_id}}/"])
def test_storage_path_templates_template_that_cannot_render_names_the_category(template):
    with pytest.raises(ValidationError) as info:
        StoragePathTemplates(logs=template)
    _, msg = one_problem(info)
    assert "'logs'" in msg and "malformed" in msg


def test_storage_path_templates_malformed_template_names_the_category():
    with pytest.raises(ValidationError) as info:
        StoragePathTemplates(logs="{prefix}logs/{run_id/")
    _, msg = one_problem(info)
    assert "'logs'" in msg


# --------------------------------------------------------------------------- PolicyConfig


def test_policy_config_defaults():
    policy = PolicyConfig()
    assert policy.block_sleep_infinity is True
    assert policy.warn_request_limit_mismatch is True
    assert policy.max_interactive_gpus == 2
    assert policy.block_gpus_over_interactive_limit is False
    assert policy.max_runtime_seconds == 1_209_600
    assert policy.sleep_duration_threshold_s == 86_400
    assert policy.block_long_runtime is False and policy.warn_missing_deadline is False
    assert policy.max_limit_request_ratio == 4.0


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("max_interactive_gpus", -1, "greater than or equal to 0"),
        ("max_runtime_seconds", 0, "greater than 0"),
        ("sleep_duration_threshold_s", 0, "greater than or equal to 1"),
        ("max_limit_request_ratio", 0.5, "greater than or equal to 1"),
        ("block_sleep_infinity", "perhaps", "valid boolean"),
    ],
)
def test_policy_config_rejects_out_of_range(field, value, expected):
    with pytest.raises(ValidationError) as info:
        PolicyConfig(**{field: value})
    assert expected in problems(info)[field]


def test_policy_config_accepts_thresholds():
    policy = PolicyConfig(max_interactive_gpus=0, max_runtime_seconds=60, sleep_duration_threshold_s=1, max_limit_request_ratio=1.0)
    assert (policy.max_interactive_gpus, policy.max_runtime_seconds) == (0, 60)


# --------------------------------------------------------------------------- JobSpec


def test_job_spec_defaults():
    job = JobSpec()
    assert job.name_prefix == "analysis-job"
    assert job.namespace == "default"
    assert job.labels == {}
    assert job.container == ContainerSpec()
    assert job.resources == ResourceSpec()
    assert job.volumes == []
    assert job.image_profile is None
    assert job.ttl_seconds_after_finished == 3600  # the reference's one hour
    assert job.backoff_limit == 0
    assert job.active_deadline_seconds is None


@pytest.mark.parametrize(
    ("raw", "expected"),
    [("My Analysis Job", "my-analysis-job"), ("sort_run.v2", "sort-run-v2"), ("  Lab Run  ", "lab-run")],
)
def test_job_spec_normalises_name_prefix_to_rfc1123(raw, expected):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is cut, so no warning
        assert JobSpec(name_prefix=raw).name_prefix == expected


def test_job_spec_cuts_a_long_name_prefix_to_40_with_a_warning():
    with pytest.warns(UserWarning, match="cut to 'x{40}'"):
        assert JobSpec(name_prefix="x" * 80).name_prefix == "x" * 40


def test_job_spec_name_prefix_of_exactly_40_is_kept_without_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert JobSpec(name_prefix="y" * 40).name_prefix == "y" * 40


def test_job_spec_normalises_name_prefix_on_assignment():
    job = JobSpec()
    job.name_prefix = "Nightly Sort"
    assert job.name_prefix == "nightly-sort"


@pytest.mark.parametrize("raw", ["", "!!!", "___"])
def test_job_spec_rejects_name_prefix_without_letters_or_digits(raw):
    with pytest.raises(ValidationError) as info:
        JobSpec(name_prefix=raw)
    loc, msg = one_problem(info)
    assert loc == "name_prefix"
    assert "no letters or digits" in msg


@pytest.mark.parametrize("namespace", ["lab", "braingeneers", "team-1"])
def test_job_spec_accepts_namespace(namespace):
    assert JobSpec(namespace=namespace).namespace == namespace


def test_job_spec_empty_namespace_is_accepted_and_means_the_profiles():
    assert JobSpec(namespace="").namespace == ""


@pytest.mark.parametrize("namespace", ["Lab", "my_ns", " ", "-x", "a.b", "n" * 64])
def test_job_spec_rejects_namespace(namespace):
    with pytest.raises(ValidationError) as info:
        JobSpec(namespace=namespace)
    loc, msg = one_problem(info)
    assert loc == "namespace"
    assert "RFC 1123 label" in msg and repr(namespace) in msg


def test_job_spec_rejects_namespace_with_trailing_newline():
    with pytest.raises(ValidationError):
        JobSpec(namespace="lab\n")


def test_job_spec_labels_yaml_scalars_become_text():
    job = JobSpec(labels={"owner": "alice", "gpu": True, "batch": 3, "cold": False})
    assert job.labels == {"owner": "alice", "gpu": "true", "batch": "3", "cold": "false"}


def test_job_spec_accepts_prefixed_label_key_and_empty_value():
    job = JobSpec(labels={"example.org/team": "ephys", "flag": ""})
    assert job.labels == {"example.org/team": "ephys", "flag": ""}


@pytest.mark.parametrize(
    ("labels", "expected"),
    [
        ({"bad key": "x"}, "label key 'bad key'"),
        ({"-x": "x"}, "label key '-x'"),
        ({"Bad.Prefix/x": "y"}, "label key prefix 'Bad.Prefix'"),
        ({"owner": "alice smith"}, "label value 'alice smith'"),
        ({"owner": "v" * 64}, "at most 63 characters"),
    ],
)
def test_job_spec_rejects_bad_labels(labels, expected):
    with pytest.raises(ValidationError) as info:
        JobSpec(labels=labels)
    loc, msg = one_problem(info)
    assert loc == "labels"
    assert expected in msg


def test_job_spec_null_label_value_does_not_become_text_none():
    try:
        job = JobSpec(labels={"owner": None})
    except ValidationError as exc:
        assert "labels" in str(exc)
    else:
        assert job.labels["owner"] != "None"


def test_job_spec_accepts_two_mounts_of_one_volume():
    # The reference's nrp profile mounts two files of one secret under one name.
    job = JobSpec(volumes=[{**SECRET_VOLUME, "mount_path": "/a", "sub_path": "credentials"},
                           {**SECRET_VOLUME, "mount_path": "/b", "sub_path": ".s3cfg"}])
    assert [(v.name, v.sub_path) for v in job.volumes] == [("creds", "credentials"), ("creds", ".s3cfg")]


def test_job_spec_rejects_one_name_for_two_sources():
    with pytest.raises(ValidationError) as info:
        JobSpec(volumes=[SECRET_VOLUME, {"name": "creds", "mount_path": "/other", "pvc_name": "lab-data"}])
    _, msg = one_problem(info)
    assert "entries named 'creds' mount different sources" in msg


def test_job_spec_rejects_one_volume_mounted_twice_at_one_path():
    with pytest.raises(ValidationError) as info:
        JobSpec(volumes=[SECRET_VOLUME, dict(SECRET_VOLUME)])
    _, msg = one_problem(info)
    assert f"volume 'creds' is mounted at {SECRET_VOLUME['mount_path']!r} twice" in msg


def test_job_spec_accepts_distinct_volumes():
    job = JobSpec(volumes=[SECRET_VOLUME, {"name": "data", "mount_path": "/data", "pvc_name": "lab-data"}])
    assert [v.name for v in job.volumes] == ["creds", "data"]


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("ttl_seconds_after_finished", -1, "greater than or equal to 0"),
        ("backoff_limit", -1, "greater than or equal to 0"),
        ("active_deadline_seconds", 0, "greater than 0"),
        ("backoff_limit", "many", "valid integer"),
    ],
)
def test_job_spec_rejects_out_of_range_integers(field, value, expected):
    with pytest.raises(ValidationError) as info:
        JobSpec(**{field: value})
    assert expected in problems(info)[field]


def test_job_spec_accepts_job_lifecycle_fields():
    job = JobSpec(ttl_seconds_after_finished=None, backoff_limit=2, active_deadline_seconds=3600, image_profile="gpu")
    assert (job.ttl_seconds_after_finished, job.backoff_limit, job.active_deadline_seconds) == (None, 2, 3600)
    assert job.image_profile == "gpu"


def test_job_spec_nested_errors_name_the_nested_field():
    with pytest.raises(ValidationError) as info:
        JobSpec(container={"image_pull_policy": "Sometimes"}, resources={"limits_cpu": "lots"})
    found = problems(info)
    assert set(found) == {"container.image_pull_policy", "resources.limits_cpu"}


def test_job_spec_round_trips_through_model_dump():
    job = JobSpec(
        name_prefix="Sort Run",
        labels={"team": "ephys"},
        container={
            "image": "ghcr.io/lab/sort:1",
            "command": ["python", "-c", "print('hi')"],
            "env": {"A": "1", "S": {"secret_name": "s", "key": "k", "optional": True}},
        },
        resources={"requests_gpu": 1, "limits_gpu": 1},
        volumes=[SECRET_VOLUME],
    )
    assert JobSpec.model_validate(job.model_dump()) == job


def test_job_spec_with_scratch_and_read_only_root_round_trips_through_dump_and_yaml():
    import yaml

    job = JobSpec(
        container={"image": "runner:1", "working_dir": "/tmp", "read_only_root_filesystem": True},
        volumes=[SECRET_VOLUME, {"name": "work", "mount_path": "/work", "empty_dir": True, "size_limit": "3Gi"}],
    )
    assert JobSpec.model_validate(job.model_dump()) == job
    assert JobSpec.model_validate(yaml.safe_load(yaml.safe_dump(job.model_dump()))) == job
    assert JobSpec.model_validate(job.model_dump(exclude_unset=True)) == job


def test_container_spec_security_fields_default_off():
    spec = ContainerSpec()
    assert (spec.working_dir, spec.read_only_root_filesystem) == (None, False)


@pytest.mark.parametrize("path", ["tmp", "./x", ""])
def test_container_spec_working_dir_must_be_absolute(path):
    with pytest.raises(ValidationError) as info:
        ContainerSpec(working_dir=path)
    loc, msg = one_problem(info)
    assert loc == "working_dir" and "absolute path" in msg


# --------------------------------------------------------------------------- ClusterProfile


def test_cluster_profile_defaults():
    profile = ClusterProfile(name="site")
    assert profile.name == "site"
    assert profile.description == ""
    assert profile.namespace == "default"
    assert profile.default_s3_prefix is None
    assert profile.endpoint_url is None
    assert profile.region_name is None
    assert profile.backend == "kubernetes"
    assert profile.storage_backend == "boto3"
    assert profile.local_state_dir is None
    assert profile.labels == {}
    assert profile.affinity == {}
    assert profile.default_secrets_mapping == {}
    assert profile.tolerations == []
    assert profile.default_images == {}
    assert profile.default_image_profile == "cpu"
    assert profile.default_volumes == []
    assert profile.namespace_hooks == {}
    assert profile.storage == StoragePathTemplates()
    assert profile.policy == PolicyConfig()
    assert profile.resources == ResourceSpec()
    assert profile.image_pull_secrets == []
    assert profile.host_network is False
    assert profile.pod_security == PodSecuritySpec()
    assert profile.automount_service_account_token is False
    assert profile.runs_containers is True


def test_pod_security_defaults_are_the_runner_user():
    security = PodSecuritySpec()
    assert (security.run_as_user, security.run_as_group, security.fs_group, security.run_as_non_root) == (
        1000, 1000, 1000, True)


def test_pod_security_null_turns_it_off():
    assert ClusterProfile.model_validate({"name": "p", "pod_security": None}).pod_security is None


def test_pod_security_rejects_root_with_run_as_non_root():
    with pytest.raises(ValidationError) as info:
        ClusterProfile(name="p", pod_security={"run_as_user": 0})
    loc, msg = one_problem(info)
    assert loc == "pod_security" and "pod_security: null" in msg
    assert ClusterProfile(name="p", pod_security={"run_as_user": 0, "run_as_non_root": False}).pod_security.run_as_user == 0


@pytest.mark.parametrize("field", ["run_as_user", "run_as_group", "fs_group"])
def test_pod_security_ids_are_not_negative(field):
    with pytest.raises(ValidationError) as info:
        PodSecuritySpec(**{field: -1})
    assert field in problems(info)


@pytest.mark.parametrize(("backend", "runs"), [("kubernetes", True), ("kubectl", True), ("local", False)])
def test_only_cluster_backends_run_containers(backend, runs):
    assert ClusterProfile(name="p", backend=backend).runs_containers is runs


def test_cluster_profile_requires_name():
    with pytest.raises(ValidationError) as info:
        ClusterProfile()
    assert problems(info) == {"name": "Field required"}


@pytest.mark.parametrize(
    ("prefix", "stored"),
    [
        ("s3://bucket", "s3://bucket/"),
        ("s3://bucket/", "s3://bucket/"),
        ("s3://bucket/spikebatch", "s3://bucket/spikebatch/"),
        ("file:///tmp/artifacts", "file:///tmp/artifacts/"),
    ],
)
def test_cluster_profile_default_s3_prefix_gets_trailing_slash(prefix, stored):
    assert ClusterProfile(name="p", default_s3_prefix=prefix).default_s3_prefix == stored


@pytest.mark.parametrize("prefix", ["bucket/path", "s3://", "s3:///x", "http://host/b/", "file://relative/x", "/tmp/x", "s3://my bucket/"])
def test_cluster_profile_rejects_other_prefixes(prefix):
    with pytest.raises(ValidationError) as info:
        ClusterProfile(name="p", default_s3_prefix=prefix)
    loc, msg = one_problem(info)
    assert loc == "default_s3_prefix"
    assert "'s3://bucket/path/' or 'file:///abs/path/'" in msg


@pytest.mark.parametrize(("field", "value"), [("backend", "docker"), ("storage_backend", "gcs")])
def test_cluster_profile_rejects_unknown_adapters(field, value):
    with pytest.raises(ValidationError) as info:
        ClusterProfile(name="p", **{field: value})
    assert field in problems(info)


@pytest.mark.parametrize(
    ("backend", "storage"), [("kubernetes", "boto3"), ("kubectl", "minio"), ("local", "local")]
)
def test_cluster_profile_accepts_each_adapter(backend, storage):
    profile = ClusterProfile(name="p", backend=backend, storage_backend=storage)
    assert (profile.backend, profile.storage_backend) == (backend, storage)


def test_cluster_profile_default_image_profile_must_be_an_image_key():
    with pytest.raises(ValidationError) as info:
        ClusterProfile(name="p", default_images={"gpu": "img:gpu", "big": "img:big"})
    _, msg = one_problem(info)
    assert "default_image_profile 'cpu' is not a key of default_images (big, gpu)" in msg


def test_cluster_profile_default_image_profile_selects_an_image():
    profile = ClusterProfile(name="p", default_images={"gpu": "img:gpu"}, default_image_profile="gpu")
    assert profile.default_images[profile.default_image_profile] == "img:gpu"


def test_cluster_profile_rejects_bad_namespace_and_labels():
    with pytest.raises(ValidationError) as info:
        ClusterProfile(name="p", namespace="Lab_NS", labels={"x y": "z"})
    found = problems(info)
    assert "RFC 1123 label" in found["namespace"]
    assert "label key 'x y'" in found["labels"]


def test_cluster_profile_labels_yaml_scalars_become_text_like_job_spec():
    labels = {"owner": "alice", "gpu": True, "batch": 3, "cold": False}
    assert ClusterProfile(name="p", labels=labels).labels == JobSpec(labels=labels).labels == {
        "owner": "alice", "gpu": "true", "batch": "3", "cold": "false"
    }


def test_cluster_profile_null_label_value_is_rejected_like_job_spec():
    with pytest.raises(ValidationError) as info:
        ClusterProfile(name="p", labels={"owner": None})
    loc, msg = one_problem(info)
    assert loc == "labels" and "'owner'" in msg and "null" in msg


@pytest.mark.parametrize("namespace", ["Lab", "lab_ns", "", "lab\n", "-lab", "x" * 64])
def test_cluster_profile_namespace_hook_keys_must_be_namespace_names(namespace):
    with pytest.raises(ValidationError) as info:
        ClusterProfile(name="p", namespace_hooks={namespace: {}})
    loc, msg = one_problem(info)
    assert loc == "namespace_hooks"
    assert repr(namespace) in msg and "RFC 1123 label" in msg


def test_cluster_profile_namespace_hook_keys_accept_namespace_names():
    profile = ClusterProfile(name="p", namespace_hooks={"lab": {}, "braingeneers-2": {}})
    assert set(profile.namespace_hooks) == {"lab", "braingeneers-2"}


def test_cluster_profile_nested_sections_are_validated():
    with pytest.raises(ValidationError) as info:
        ClusterProfile(
            name="p",
            policy={"max_interactive_gpus": -1},
            storage={"outputs": "{prefix}out"},
            namespace_hooks={"lab": {"required_volumes": [{"name": "v", "mount_path": "/v"}]}},
        )
    assert set(problems(info)) == {
        "policy.max_interactive_gpus",
        "storage",
        "namespace_hooks.lab.required_volumes.0",
    }


# --------------------------------------------------------------------------- SubmitResult / RunConfig


def test_submit_result_fields_and_defaults():
    result = SubmitResult(**SUBMIT_FIELDS)
    assert result.job_name == "analysis-job-abc123"
    assert result.job_type == "workspace"
    assert result.namespace == "default"
    assert result.profile_name is None


@pytest.mark.parametrize("job_type", ["workspace", "sorting", "prepared"])
def test_submit_result_job_types(job_type):
    assert SubmitResult(**{**SUBMIT_FIELDS, "job_type": job_type}).job_type == job_type


def test_submit_result_rejects_unknown_job_type():
    with pytest.raises(ValidationError) as info:
        SubmitResult(**{**SUBMIT_FIELDS, "job_type": "interactive"})
    assert "'workspace', 'sorting' or 'prepared'" in problems(info)["job_type"]


def test_submit_result_requires_every_documented_field():
    with pytest.raises(ValidationError) as info:
        SubmitResult()
    assert set(problems(info)) == {
        "job_name", "manifest_yaml", "run_id", "uploaded_input_uri", "output_prefix", "logs_prefix", "job_type"
    }


def test_run_config_defaults():
    config = RunConfig(input_path="workspace/base")
    assert config.profile_name == "defaults"
    assert config.input_path == "workspace/base"
    assert config.output_prefix is None
    assert config.workspace_id is None
    assert config.namespace is None
    assert config.allow_policy_risk is False
    assert config.wait_for_completion is False
    assert config.follow_logs is False


def test_run_config_requires_input_path():
    with pytest.raises(ValidationError) as info:
        RunConfig()
    assert problems(info) == {"input_path": "Field required"}
