"""validate_job_spec: raw payloads into JobSpec, one line per problem naming the field path."""

from __future__ import annotations

import pytest
import yaml
from pydantic import ValidationError

from spikebatch.errors import ConfigError, JobSpecValidationError, SpikebatchError
from spikebatch.models import ClusterProfile, JobSpec, ResourceSpec, SecretEnvRef
from spikebatch.domain.validation import summarize_validation_errors, validate_job_spec, validate_model

GOOD_YAML = """
name_prefix: Spike Sort
namespace: lab
labels:
  team: ephys
container:
  image: ghcr.io/lab/sort:1.0
  command: [python, -m, spikebatch.entrypoints.runner, sorting]
  env:
    DEBUG: 1
    AWS_SECRET_ACCESS_KEY:
      secret_name: s3-creds
      key: secret
resources:
  requests_cpu: 500m
  limits_cpu: 2
  requests_memory: 4Gi
  limits_memory: 4Gi
  requests_gpu: 1
  limits_gpu: 1
volumes:
  - name: data
    mount_path: /data
    pvc_name: lab-data
active_deadline_seconds: 3600
"""


def validation_problems(payload) -> list[str]:
    with pytest.raises(JobSpecValidationError) as info:
        validate_job_spec(payload)
    return info.value.problems


def test_validate_job_spec_parses_a_yaml_job_config():
    job = validate_job_spec(yaml.safe_load(GOOD_YAML))
    assert isinstance(job, JobSpec)
    assert job.name_prefix == "spike-sort"
    assert job.namespace == "lab"
    assert job.container.env["DEBUG"] == "1"
    assert job.container.env["AWS_SECRET_ACCESS_KEY"] == SecretEnvRef(secret_name="s3-creds", key="secret")
    assert job.resources.limits_cpu == "2"
    assert job.resources.gpus == 1
    assert job.volumes[0].pvc_name == "lab-data"
    assert job.active_deadline_seconds == 3600


def test_validate_job_spec_empty_mapping_gives_defaults():
    assert validate_job_spec({}) == JobSpec()


def test_validate_job_spec_passes_a_job_spec_through():
    job = JobSpec(name_prefix="x")
    assert validate_job_spec(job) is job


@pytest.mark.parametrize(("payload", "type_name"), [(None, "NoneType"), ([1, 2], "list"), ("job", "str")])
def test_validate_job_spec_rejects_non_mapping(payload, type_name):
    assert validation_problems(payload) == [f"expected a mapping of fields, got {type_name}"]


def test_validation_error_is_a_one_line_config_error():
    with pytest.raises(JobSpecValidationError) as info:
        validate_job_spec({"namespace": "Bad_NS", "backoff_limit": -1, "unknown": 1})
    err = info.value
    assert isinstance(err, ConfigError) and isinstance(err, SpikebatchError)
    assert err.exit_code == 2
    assert "\n" not in str(err)
    assert str(err) == "; ".join(err.problems)
    assert len(err.problems) == 3


def test_each_problem_is_one_line_naming_its_field_path():
    payload = {
        "nmae_prefix": "typo",
        "namespace": "Bad_NS",
        "container": {"image_pull_policy": "Sometimes", "env": {"1BAD": "x"}},
        "resources": {"requests_cpu": "lots", "requests_gpu": 1},
        "volumes": [
            {"name": "ok", "mount_path": "/ok", "secret_name": "s"},
            {"name": "data", "mount_path": "relative", "pvc_name": "p"},
            {"name": "nomount", "pvc_name": "p"},
        ],
    }
    problems = validation_problems(payload)
    by_path = {line.split(": ", 1)[0]: line.split(": ", 1)[1] for line in problems}
    assert set(by_path) == {
        "nmae_prefix",
        "namespace",
        "container.image_pull_policy",
        "container.env",
        "resources.requests_cpu",
        "volumes[1].mount_path",
        "volumes[2].mount_path",
    }
    assert by_path["nmae_prefix"] == "unknown field; remove it or check its spelling"
    assert by_path["namespace"] == "namespace 'Bad_NS' must be an RFC 1123 label (a-z, 0-9, '-')"
    assert "'Always', 'IfNotPresent' or 'Never'" in by_path["container.image_pull_policy"]
    assert "'1BAD'" in by_path["container.env"]
    assert "'lots' is not a Kubernetes quantity" in by_path["resources.requests_cpu"]
    assert by_path["volumes[1].mount_path"] == "mount_path 'relative' must be an absolute path"
    assert by_path["volumes[2].mount_path"] == "required field is missing"
    assert all("\n" not in line for line in problems)
    assert not any(line.startswith("Value error") or "Value error, " in line for line in problems)


def test_model_level_problem_names_its_model():
    assert validation_problems({"resources": {"requests_gpu": 2}}) == [
        "resources: requests_gpu (2) and limits_gpu (0) must be equal: Kubernetes does not overcommit GPUs"
    ]
    assert validation_problems(
        {"volumes": [{"name": "v", "mount_path": "/a"}]}
    ) == ["volumes[0]: volume 'v' needs exactly one of secret_name, pvc_name or empty_dir: true"]


def test_top_level_problem_is_labelled_top_level():
    vol = {"name": "data", "mount_path": "/d", "pvc_name": "p"}
    assert validation_problems({"volumes": [vol, {**vol, "pvc_name": "q"}]}) == [
        "(top level): volumes: entries named 'data' mount different sources; entries of one "
        "name are mounts of one volume, so give the other source another name"
    ]


def test_validate_model_with_root_prefixes_paths():
    with pytest.raises(JobSpecValidationError) as info:
        validate_model(ResourceSpec, {"limits_memory": "1m", "extra": 1}, root="profile.resources")
    assert sorted(info.value.problems) == [
        "profile.resources.extra: unknown field; remove it or check its spelling",
        "profile.resources.limits_memory: memory '1m' uses a milli/micro/nano suffix; use 'Mi' or 'Gi'",
    ]


def test_validate_model_with_root_and_non_mapping():
    with pytest.raises(JobSpecValidationError) as info:
        validate_model(ClusterProfile, ["x"], root="profile")
    assert info.value.problems == ["profile: expected a mapping of fields, got list"]


def test_summarize_validation_errors_lists_each_problem():
    with pytest.raises(ValidationError) as info:
        ClusterProfile(name="p", namespace_hooks={"lab": {"required_volumes": [{"name": "X", "mount_path": "/x", "pvc_name": "p"}]}})
    assert summarize_validation_errors(info.value) == [
        "namespace_hooks.lab.required_volumes[0].name: volume name 'X' must be an RFC 1123 label (a-z, 0-9, '-')"
    ]


def test_missing_required_field_has_plain_message():
    with pytest.raises(JobSpecValidationError) as info:
        validate_model(ClusterProfile, {})
    assert info.value.problems == ["name: required field is missing"]


def test_bad_secret_reference_is_one_problem_at_the_env_variable():
    problems = validation_problems({"container": {"env": {"X": {"secret_name": "Bad Name", "key": "k"}}}})
    assert len(problems) == 1, problems
    assert problems[0].startswith("container.env.X")
    assert ".str" not in problems[0] and "SecretEnvRef" not in problems[0]
    assert "'Bad Name'" in problems[0]


def test_value_of_no_allowed_type_is_one_problem_at_the_env_variable():
    problems = validation_problems({"container": {"env": {"X": [1, 2]}}})
    assert len(problems) == 1, problems
    location, message = problems[0].split(": ", 1)
    assert location == "container.env.X"
    assert "valid string" in message and "valid dictionary" in message


def test_env_variable_named_like_a_union_tag_keeps_its_name():
    problems = validation_problems({"container": {"env": {"str": {"secret_name": "Bad Name", "key": "k"}}}})
    assert problems == ["container.env.str.secret_name: secret name 'Bad Name' must be a lower-case DNS subdomain"]


def test_every_problem_inside_a_secret_reference_is_kept_without_union_tags():
    problems = validation_problems({"container": {"env": {"S": {"secret_name": "s", "bogus": 1}}}})
    assert sorted(problems) == [
        "container.env.S.bogus: unknown field; remove it or check its spelling",
        "container.env.S.key: required field is missing",
    ]


def test_summarize_without_model_drops_union_tags_in_profile_hooks():
    with pytest.raises(ValidationError) as info:
        ClusterProfile(name="p", namespace_hooks={"lab": {"env_defaults": {"A": {"key": "k"}}}})
    assert summarize_validation_errors(info.value, root="profile") == [
        "profile.namespace_hooks.lab.env_defaults.A.secret_name: required field is missing"
    ]
