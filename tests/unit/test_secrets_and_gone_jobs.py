"""Secrets never shown (masking of what is rendered, found by name or by shape; the
policy's warning about plain credentials), a Job too large for the API server, and a
Job deleted while it is waited on or followed: each an outcome of its own."""

from __future__ import annotations

import json
import secrets
from typing import Any, Iterator, List

import pytest

from fakes import MemoryStore, ScriptedBackend
from spikebatch import JobState
from spikebatch.adapters.jobs.manifest import MAX_JOB_BYTES, check_job_size
from spikebatch.adapters.kubectl.errors import error_from_stderr
from spikebatch.adapters.kubernetes.api_errors import map_api_error
from spikebatch.application.preflight import render_job
from spikebatch.application.waiting import DELETED, wait_for_job
from spikebatch.domain.documents import parse_yaml_text
from spikebatch.domain.errors import (
    BackendUnavailableError,
    ConfigError,
    InvalidManifestError,
    JobDeletedError,
    JobNotFoundError,
    JobTooLargeError,
)
from spikebatch.domain.job_state import JobEvent
from spikebatch.domain.policy import PLAIN_SECRET_ENV, WARN, evaluate_policy
from spikebatch.domain.redaction import MASK, credential_shape, is_sensitive_key, redact_sensitive_map, secret_values_in
from spikebatch.models import ClusterProfile, JobSpec, NamespaceHookSpec
from spikebatch.session import RunSession

PROFILE = ClusterProfile(name="unit", default_images={"cpu": "runner:1.0", "gpu": "runner:1.0-gpu"})
CANARY = "canary-" + secrets.token_hex(8)


def _env(manifest: dict) -> dict:
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container.get("env", [])}


# --- masking ---------------------------------------------------------------------------


def test_render_job_shows_masked_values_and_keeps_the_real_ones_to_submit() -> None:
    hooked = PROFILE.model_copy(update={"namespace_hooks": {"default": NamespaceHookSpec(
        env_defaults={"DB_PASSWORD": CANARY + "-hook"})}})
    spec = JobSpec(container={"command": ["python", "a.py"], "args": ["--token", CANARY],
                              "env": {"MY_API_TOKEN": CANARY, "PLAIN": "hello",
                                      "S3_KEY": {"secret_name": "s3", "key": "secret-key"}}})
    rendered = render_job(spec, hooked, ["user-aws-secret-value"])
    assert _env(rendered.manifest)["MY_API_TOKEN"] == CANARY  # what would be submitted
    assert _env(rendered.manifest)["DB_PASSWORD"] == CANARY + "-hook"
    shown = _env(rendered.shown_manifest)
    assert shown["MY_API_TOKEN"] == MASK and shown["DB_PASSWORD"] == MASK and shown["PLAIN"] == "hello"
    assert shown["S3_KEY"] == {"secretKeyRef": {"name": "s3", "key": "secret-key"}}
    # the token repeated as an argument is masked there too
    assert rendered.shown_manifest["spec"]["template"]["spec"]["containers"][0]["args"] == ["--token", MASK]
    assert CANARY not in rendered.yaml and "hello" in rendered.yaml


def test_known_user_secrets_are_masked_anywhere_in_the_rendered_manifest() -> None:
    spec = JobSpec(container={"command": ["python", "a.py", "--creds=aws-user-secret-1234"]})
    rendered = render_job(spec, PROFILE, ["aws-user-secret-1234"])
    assert "aws-user-secret-1234" not in rendered.yaml and MASK in rendered.yaml


@pytest.mark.parametrize("name", ["AWS_SHARED_CREDENTIALS_FILE", "TLS_KEY_PATH", "SECRET_DIR", "token_file"])
def test_a_variable_that_says_where_a_secret_is_kept_is_not_itself_secret(name: str) -> None:
    assert not is_sensitive_key(name)
    assert redact_sensitive_map({"env": {name: "/var/run/secrets/x"}}) == {"env": {name: "/var/run/secrets/x"}}


@pytest.mark.parametrize(
    "value, what",
    [
        ("AKIAIOSFODNN7EXAMPLE", "AWS access key id"),
        ("ghp_" + "a1B2c3D4e5" * 4, "GitHub token"),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIE...", "private key"),
        ("kM1v2qh0Dp4Tso7jr38TSdNKlrjuIq3hj69Wj-4AtZQ", "random token"),
    ],
)
def test_credential_shapes(value: str, what: str) -> None:
    assert what in (credential_shape(value) or "")


@pytest.mark.parametrize(
    "value",
    ["/var/run/secrets/spikebatch/s3/credentials", "https://s3.example.org/bucket/key", "Agg", "en_US.UTF-8",
     "registry.example.org/lab/spikebatch-runner:0.1.0-gpu", "0123456789abcdef" * 4, "a" * 64,
     "ThisIsAVeryLongCamelCaseIdentifierName123", "s3://mylab-bucket/spikebatch/inputs/20261126-143721-hba3ni1o/"],
)
def test_ordinary_values_do_not_look_like_credentials(value: str) -> None:
    assert credential_shape(value) is None


def test_env_values_shaped_like_credentials_are_masked_whatever_their_name() -> None:
    data = {"env": {"KEYID": "AKIAIOSFODNN7EXAMPLE", "MODE": "fast"},
            "containers": [{"env": [{"name": "X", "value": "AKIAIOSFODNN7EXAMPLE"}]}]}
    out = redact_sensitive_map(data)
    assert out["env"] == {"KEYID": MASK, "MODE": "fast"}
    assert out["containers"][0]["env"] == [{"name": "X", "value": MASK}]
    assert secret_values_in(data) == ["AKIAIOSFODNN7EXAMPLE"]


def test_short_values_under_secret_names_are_masked_there_but_not_everywhere() -> None:
    data = {"env": [{"name": "USE_TOKEN", "value": "true"}], "args": ["--verbose=true"]}
    out = redact_sensitive_map(data)
    assert out == {"env": [{"name": "USE_TOKEN", "value": MASK}], "args": ["--verbose=true"]}


def test_a_yaml_error_never_quotes_a_secret_value() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_yaml_text(f"env:\n  MY_API_TOKEN: !!int {CANARY}\n", "job config 'j.yaml'")
    assert CANARY not in caught.value.message and "line 2" in caught.value.message
    with pytest.raises(ConfigError) as caught:
        parse_yaml_text("env:\n  X: !!int AKIAIOSFODNN7EXAMPLE\n", "job config 'j.yaml'")
    assert "AKIA" not in caught.value.message
    with pytest.raises(ConfigError, match="'12abc' is not a valid integer"):
        parse_yaml_text("retries: !!int 12abc\n", "job config 'j.yaml'")


# --- the policy's warning --------------------------------------------------------------


def test_policy_warns_about_a_plain_secret_by_name_and_suggests_a_reference() -> None:
    spec = JobSpec(container={"command": ["python", "a.py"], "env": {"MY_API_TOKEN": CANARY}})
    (finding,) = [f for f in evaluate_policy(spec, PROFILE) if f.code == PLAIN_SECRET_ENV]
    assert finding.level == WARN
    assert "MY_API_TOKEN" in finding.message and "{secret_name: <secret>, key: <key>}" in finding.message
    assert CANARY not in finding.message


def test_policy_warns_about_a_value_shaped_like_a_credential_whatever_its_name() -> None:
    spec = JobSpec(container={"command": ["python", "a.py"], "env": {"KEYID": "AKIAIOSFODNN7EXAMPLE"}})
    (finding,) = [f for f in evaluate_policy(spec, PROFILE) if f.code == PLAIN_SECRET_ENV]
    assert "KEYID" in finding.message and "AWS access key id" in finding.message
    assert "AKIA" not in finding.message


def test_policy_names_a_plain_secret_from_the_profile_hook() -> None:
    hooked = PROFILE.model_copy(update={"namespace_hooks": {"default": NamespaceHookSpec(
        env_defaults={"DB_PASSWORD": "hunter2-hunter2", "AWS_SHARED_CREDENTIALS_FILE": "/var/run/s3/credentials"})}})
    spec = JobSpec(container={"command": ["python", "a.py"]})
    findings = [f for f in evaluate_policy(spec, hooked) if f.code == PLAIN_SECRET_ENV]
    assert len(findings) == 1 and "DB_PASSWORD" in findings[0].message and "hook" in findings[0].message


def test_policy_is_quiet_about_references_and_ordinary_values() -> None:
    spec = JobSpec(container={"command": ["python", "a.py"], "env": {
        "AWS_SECRET_ACCESS_KEY": {"secret_name": "s3", "key": "secret"}, "MPLBACKEND": "Agg", "EMPTY_TOKEN": ""}})
    assert PLAIN_SECRET_ENV not in {f.code for f in evaluate_policy(spec, PROFILE)}


# --- too large for the API server ------------------------------------------------------


class _ApiException(Exception):
    def __init__(self, status: int, body: dict) -> None:
        super().__init__(status)
        self.status, self.body, self.reason = status, json.dumps(body), ""


@pytest.mark.parametrize("status, message", [
    (413, "Request entity too large: limit is 3145728"),
    (500, "etcdserver: request is too large"),
])
def test_the_api_servers_size_refusal_is_bad_input(status: int, message: str) -> None:
    error = map_api_error(_ApiException(status, {"message": message, "code": status}), verb="create",
                          resource="jobs.batch", namespace="lab", host="https://k8s", name="big-1")
    assert isinstance(error, JobTooLargeError) and isinstance(error, ConfigError)
    assert error.exit_code == 2 and "too large" in error.message and message in error.message


@pytest.mark.parametrize("stderr", [
    'Error from server (RequestEntityTooLarge): error when creating "STDIN": Request entity too large: '
    'limit is 3145728',
    'Error from server: etcdserver: request is too large',
])
def test_kubectls_size_refusal_is_bad_input(stderr: str) -> None:
    error = error_from_stderr(stderr, verb="create", resource="jobs.batch", namespace="lab", name="big-1")
    assert isinstance(error, JobTooLargeError) and error.exit_code == 2 and "too large" in error.message


def test_a_job_over_the_object_limit_is_refused_before_it_is_sent() -> None:
    body = {"spec": {"x": "y" * MAX_JOB_BYTES}}
    with pytest.raises(JobTooLargeError, match="too large"):
        check_job_size(body, MAX_JOB_BYTES, target="jobs.batch 'big-1'", where="in namespace 'lab'")
    check_job_size(body, None, target="jobs.batch 'big-1'", where="in namespace 'lab'")
    check_job_size({"spec": {"x": "y" * 1000}}, MAX_JOB_BYTES, target="t", where="w")


# --- a Job deleted while it is waited on or followed -----------------------------------


class _GoneBackend(ScriptedBackend):
    """``watch`` replays the script; "deleted" yields the DELETED event a watch gives
    for a Job that went away, "missing" raises JobNotFoundError (a new watch's first
    list no longer finds it). ``log_script`` feeds stream_job_logs; ``exists`` answers
    job_status."""

    def __init__(self, script: List[Any], exists: bool = True) -> None:
        super().__init__(script=script)
        self.exists = exists
        self.status = JobState.RUNNING
        self.log_lines: List[str] = []

    def watch(self, job_names=None, label_selector=None, timeout_seconds=None) -> Iterator[JobEvent]:
        name = list(job_names or ["?"])[0]
        while self.script:
            step = self.script.pop(0)
            if step == "drop":
                return
            if step == "deleted":
                yield JobEvent(job_name=name, state=JobState.RUNNING, kind="DELETED", message="the Job was deleted")
                return
            if step == "missing":
                raise JobNotFoundError(f"job {name!r} not found")
            yield JobEvent(job_name=name, state=step)

    def job_status(self, job_name: str) -> JobState:
        if not self.exists:
            raise JobNotFoundError(f"job {job_name!r} not found")
        return self.status

    def job_report(self, job_name: str):
        if not self.exists:
            raise JobNotFoundError(f"job {job_name!r} not found")
        return super().job_report(job_name)

    def stream_job_logs(self, job_name: str, follow: bool = False) -> Iterator[str]:
        if not self.exists:
            raise JobNotFoundError(f"job {job_name!r} not found")
        yield from self.log_lines
        self.exists = not self.deleted_while_streaming

    deleted_while_streaming = False


def test_a_deletion_event_ends_the_wait_as_deleted() -> None:
    backend = _GoneBackend([JobState.PENDING, "deleted"])
    seen: List[JobState] = []
    assert wait_for_job(backend, "job-1", 30, on_state=seen.append) == DELETED == "Deleted"
    assert seen == [JobState.PENDING]


def test_a_job_gone_between_two_watch_windows_is_deleted() -> None:
    backend = _GoneBackend([JobState.RUNNING, "drop", "missing"])
    backend.reports = []
    assert wait_for_job(backend, "job-1", 30, problem_check_seconds=0.01, retry_initial_seconds=0.0) == DELETED


def test_a_job_missing_from_the_start_is_still_an_error() -> None:
    with pytest.raises(JobNotFoundError):
        wait_for_job(_GoneBackend(["missing"]), "job-1", 30)


def test_the_session_documents_and_returns_deleted() -> None:
    session = RunSession(profile=PROFILE, backend=_GoneBackend([JobState.RUNNING, "deleted"]),
                         storage_client=MemoryStore())
    assert session.wait_for_outcome("job-1", 30) == "Deleted"
    assert '"Deleted"' in RunSession.wait_for_outcome.__doc__
    # The reference's wait says "Failed" for a job that no longer exists.
    again = RunSession(profile=PROFILE, backend=_GoneBackend([JobState.RUNNING, "deleted"]),
                       storage_client=MemoryStore())
    assert again.wait_for_completion("job-1", 30) == "Failed"


def test_following_a_job_deleted_meanwhile_raises_job_deleted_after_the_last_line() -> None:
    backend = _GoneBackend([])
    backend.log_lines = ["one", "two"]
    backend.deleted_while_streaming = True
    session = RunSession(profile=PROFILE, backend=backend, storage_client=MemoryStore())
    got: List[str] = []
    with pytest.raises(JobDeletedError, match="was deleted while its logs were followed") as caught:
        for line in session.stream_logs("job-1", follow=True):
            got.append(line)
    assert got == ["one", "two"] and caught.value.exit_code == 5
    assert isinstance(caught.value, JobNotFoundError)  # callers catching "not found" still do


def test_following_a_job_that_ends_ends_quietly() -> None:
    backend = _GoneBackend([])
    backend.log_lines = ["done"]
    session = RunSession(profile=PROFILE, backend=backend, storage_client=MemoryStore())
    assert list(session.stream_logs("job-1", follow=True)) == ["done"]


def test_following_a_job_that_does_not_exist_is_not_found_at_the_call() -> None:
    session = RunSession(profile=PROFILE, backend=_GoneBackend([], exists=False), storage_client=MemoryStore())
    with pytest.raises(JobNotFoundError) as caught:
        session.stream_logs("job-1", follow=True)
    assert not isinstance(caught.value, JobDeletedError)


def test_exit_codes_of_the_new_errors() -> None:
    assert JobDeletedError("x").exit_code == 5
    assert JobTooLargeError("x").exit_code == 2 and isinstance(JobTooLargeError("x"), InvalidManifestError)
    assert not isinstance(JobTooLargeError("x"), BackendUnavailableError)
