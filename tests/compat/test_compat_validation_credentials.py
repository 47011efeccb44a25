"""spikebatch.validation and spikebatch.credentials as code written for the reference's
modules of those names calls them."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest
from pydantic import ValidationError

from spikebatch.credentials import ResolvedCredentials, redact_sensitive_map, resolve_credentials
from spikebatch.errors import ConfigError, JobSpecValidationError
from spikebatch.models import JobSpec
from spikebatch.validation import summarize_validation_error, validate_job_spec

ref_validation = pytest.importorskip("spikelab.batch_jobs.validation")
ref_credentials = pytest.importorskip("spikelab.batch_jobs.credentials")

BAD = {"name_prefix": "ok", "resources": {"requests_gpu": 1, "limits_gpu": 2}, "backoff_limit": -1}


# --------------------------------------------------------------------------- validation


def test_validate_job_spec_returns_a_job_spec() -> None:
    job = validate_job_spec({"name_prefix": "Nightly Sort", "container": {"image": "img:1"}})
    assert isinstance(job, JobSpec) and job.name_prefix == "nightly-sort"


def test_an_invalid_payload_raises_pydantics_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        validate_job_spec(BAD)
    exc = info.value
    assert isinstance(exc, JobSpecValidationError) and isinstance(exc, ConfigError)
    assert exc.title == "JobSpec" and exc.error_count() == 2
    assert {error["loc"] for error in exc.errors()} == {("resources",), ("backoff_limit",)}
    assert all(error["msg"] for error in exc.errors())


def test_the_error_is_still_our_one_line_with_its_problems() -> None:
    with pytest.raises(JobSpecValidationError) as info:
        validate_job_spec({"ttl_seconds_after_finished": -5, "nmae_prefix": "x"})
    assert "\n" not in str(info.value)
    assert sorted(info.value.problems) == [
        "nmae_prefix: unknown field; remove it or check its spelling",
        "ttl_seconds_after_finished: Input should be greater than or equal to 0",
    ]


def test_a_payload_that_is_not_a_mapping_is_a_validation_error() -> None:
    with pytest.raises(ValidationError) as info:
        validate_job_spec(["not", "a", "mapping"])
    assert "expected a mapping of fields, got list" in str(info.value)


def test_summarize_validation_error_has_the_references_shape() -> None:
    try:
        validate_job_spec(BAD)
    except ValidationError as exc:
        text = summarize_validation_error(exc)
    lines = text.split("\n")
    assert lines[0] == "Invalid job config:"
    assert sorted(line.split(":")[0] for line in lines[1:]) == ["  - backoff_limit", "  - resources"]
    assert "GPU" in text or "gpu" in text


def test_summarize_validation_error_takes_a_plain_pydantic_error() -> None:
    with pytest.raises(ValidationError) as info:
        JobSpec.model_validate({"backoff_limit": "many"})
    assert summarize_validation_error(info.value).startswith("Invalid job config:\n  - backoff_limit: ")


def test_summarize_validation_error_names_the_same_fields_as_the_reference() -> None:
    payload = {"container": {"image": "i"}, "resources": {}, "backoff_limit": -1, "ttl_seconds_after_finished": -1}
    with pytest.raises(ValidationError) as theirs:
        ref_validation.validate_job_spec(payload)
    with pytest.raises(ValidationError) as mine:
        validate_job_spec(payload)
    fields = lambda text: sorted(line.split(":")[0] for line in text.split("\n")[1:])  # noqa: E731
    assert fields(summarize_validation_error(mine.value)) == fields(
        ref_validation.summarize_validation_error(theirs.value))


# --------------------------------------------------------------------------- redaction


def test_redact_sensitive_map_signature() -> None:
    params = list(inspect.signature(redact_sensitive_map).parameters)
    assert params[0] == "values" == list(inspect.signature(ref_credentials.redact_sensitive_map).parameters)[0]
    assert inspect.signature(redact_sensitive_map).parameters["secret_values"].default == ()


#: Keys both implementations judge alike.
AGREED = {
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY",
    "AWS_SESSION_TOKEN": "FwoGZXIvYXdzEJr//////////",
    "GITHUB_TOKEN": "ghp_example",
    "DB_PASSWORD": "hunter2",
    "client_secret": "xyz",
    "SECRETS_PATH": "/etc/secrets",
    "KUBECONFIG": "/home/me/.kube/config",
    "REGION": "us-west-2",
    "MONKEY": "banana",
    "UNSET_TOKEN": None,
    "HOME": None,
}


def test_redact_sensitive_map_agrees_with_the_reference() -> None:
    assert redact_sensitive_map(dict(AGREED)) == ref_credentials.redact_sensitive_map(dict(AGREED))


def test_masks_none_and_word_boundaries() -> None:
    out = redact_sensitive_map({"SECRETS_PATH": "/s", "MY_SECRET": "x", "NOTHING": None})
    assert out == {"SECRETS_PATH": "/s", "MY_SECRET": "***REDACTED***", "NOTHING": "<unset>"}


def test_ours_also_masks_access_key_ids_and_known_values() -> None:
    # More than the reference (deliberate): an access key id is a credential too, and a
    # known secret value is masked wherever it appears.
    out = redact_sensitive_map({"AWS_ACCESS_KEY_ID": "AKIAIOSFODNN7EXAMPLE", "NOTE": "uses s3cr3t-value"},
                               secret_values=["s3cr3t-value"])
    assert out == {"AWS_ACCESS_KEY_ID": "***REDACTED***", "NOTE": "uses ***REDACTED***"}


def test_the_input_is_not_changed() -> None:
    values = {"TOKEN": "abc", "X": None}
    redact_sensitive_map(values)
    assert values == {"TOKEN": "abc", "X": None}


# --------------------------------------------------------------------------- credentials


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No credentials anywhere but what a test sets: an empty home, no AWS/KUBE env."""
    monkeypatch.setenv("HOME", str(tmp_path))
    for name in ("KUBECONFIG", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
                 "AWS_SHARED_CREDENTIALS_FILE", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)


def _fields(creds: object) -> tuple:
    return (creds.kubeconfig, creds.aws_access_key_id, creds.aws_secret_access_key,  # type: ignore[attr-defined]
            creds.aws_session_token)  # type: ignore[attr-defined]


def test_resolve_credentials_signature_is_the_references() -> None:
    theirs = inspect.signature(ref_credentials.resolve_credentials).parameters
    mine = inspect.signature(resolve_credentials).parameters
    for name, param in theirs.items():
        assert mine[name].kind is inspect.Parameter.KEYWORD_ONLY and mine[name].default is None, name
    assert list(theirs) == list(mine)[: len(theirs)]


def test_resolved_credentials_has_the_reference_fields_in_order() -> None:
    import dataclasses

    theirs = [f.name for f in dataclasses.fields(ref_credentials.ResolvedCredentials)]
    assert [f.name for f in dataclasses.fields(ResolvedCredentials)][: len(theirs)] == theirs
    creds = ResolvedCredentials("/k", "AKIA", "secret", None)  # positional, as the reference
    assert _fields(creds) == ("/k", "AKIA", "secret", None)


def test_explicit_arguments_come_first(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET")
    monkeypatch.setenv("KUBECONFIG", "/env/kubeconfig")
    kwargs = dict(kubeconfig="/arg/kubeconfig", aws_access_key_id="ARGKEY", aws_secret_access_key="ARGSECRET",
                  aws_session_token="ARGTOKEN")
    assert _fields(resolve_credentials(**kwargs)) == _fields(ref_credentials.resolve_credentials(**kwargs))


def test_then_the_environment(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENVKEY")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ENVSECRET")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "ENVTOKEN")
    monkeypatch.setenv("KUBECONFIG", "/env/kubeconfig")
    assert _fields(resolve_credentials()) == _fields(ref_credentials.resolve_credentials()) == (
        "/env/kubeconfig", "ENVKEY", "ENVSECRET", "ENVTOKEN")


def test_nothing_set_resolves_to_nothing(clean_env: None) -> None:
    assert _fields(resolve_credentials()) == _fields(ref_credentials.resolve_credentials()) == (None,) * 4


def test_resolved_credentials_never_show_a_key(clean_env: None) -> None:
    creds = resolve_credentials(aws_access_key_id="AKIAIOSFODNN7EXAMPLE", aws_secret_access_key="s3cr3t/value")
    assert "s3cr3t/value" not in repr(creds) and "AKIAIOSFODNN7EXAMPLE" not in str(creds)
