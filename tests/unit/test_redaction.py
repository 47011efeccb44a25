"""redact_sensitive_map: masking by key name, by env-list variable name, by known value."""

from __future__ import annotations

import copy

import pytest
from hypothesis import given
from hypothesis import strategies as st

from spikebatch.domain.redaction import MASK, is_sensitive_key, redact_document, redact_sensitive_map, redact_text


@pytest.mark.parametrize(
    "key",
    [
        "AWS_SECRET_ACCESS_KEY",
        "aws_secret_access_key",
        "aws_session_token",
        "AWS_ACCESS_KEY_ID",
        "api-token",
        "GITHUB_TOKEN",
        "token",
        "password",
        "DB_PASSWORD",
        "db.passwd",
        "secret",
        "Secret",
        "apiKey",
        "secretKey",
        "authToken",
        "access_key",
        "private key",
        "credentials",
        "my-credential",
    ],
)
def test_sensitive_key_names(key):
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    ["monkey", "keyboard", "turkey", "secretary", "tokenizer", "key", "Key", "KEY", "name", "image", "value", "region"],
)
def test_non_sensitive_key_names(key):
    assert not is_sensitive_key(key)


@pytest.mark.parametrize("key", ["DBPassword", "JWTToken", "APIKey"])
def test_sensitive_key_after_acronym(key):
    assert redact_sensitive_map({key: "hunter2-value"}) == {key: MASK}


@pytest.mark.parametrize(
    "key", ["secretName", "secret_name", "SECRET_NAME", "secretKeyRef", "secretRef", "tokenSecretName", "api_key_name"]
)
def test_keys_naming_a_secret_are_not_secret(key):
    assert not is_sensitive_key(key)
    assert redact_sensitive_map({key: "s3-creds"}) == {key: "s3-creds"}


def test_redacted_job_manifest_keeps_secret_references():
    manifest = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "env": [
                                {"name": "AWS_SECRET_ACCESS_KEY", "value": "wJalrXUtnFEMI"},
                                {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
                                {"name": "S3_SECRET_NAME", "value": "s3-creds"},
                            ],
                            "envFrom": [{"secretRef": {"name": "lab-env"}}],
                        }
                    ],
                    "volumes": [{"name": "creds", "secret": {"secretName": "s3-creds", "optional": False}}],
                    "imagePullSecrets": [{"name": "ghcr-pull"}],
                }
            }
        },
        "api_token": "tok-123456",
        "password": "hunter2",
    }
    out = redact_sensitive_map(manifest)
    pod = out["spec"]["template"]["spec"]
    env = pod["containers"][0]["env"]
    assert env[0]["value"] == MASK
    assert env[1]["valueFrom"] == {"secretKeyRef": {"name": "db", "key": "password"}}
    assert env[2]["value"] == "s3-creds"
    assert pod["containers"][0]["envFrom"] == [{"secretRef": {"name": "lab-env"}}]
    assert pod["volumes"][0]["secret"] == {"secretName": "s3-creds", "optional": False}
    assert pod["imagePullSecrets"] == [{"name": "ghcr-pull"}]
    assert out["api_token"] == MASK and out["password"] == MASK


def test_masks_values_of_sensitive_keys_and_keeps_the_rest():
    data = {
        "aws_access_key_id": "AKIAEXAMPLE",
        "aws_secret_access_key": "wJalrXUtnFEMI",
        "endpoint_url": "https://s3.example.org",
        "region_name": "us-west-2",
        "key": "inputs/run/bundle.zip",
    }
    assert redact_sensitive_map(data) == {
        "aws_access_key_id": MASK,
        "aws_secret_access_key": MASK,
        "endpoint_url": "https://s3.example.org",
        "region_name": "us-west-2",
        "key": "inputs/run/bundle.zip",
    }


def test_sensitive_key_scalar_types():
    out = redact_sensitive_map({"token": 123456, "password": b"raw", "api_key": 1.5, "secret": None, "SECRET": True})
    assert out["token"] == MASK and out["password"] == MASK and out["api_key"] == MASK
    # "unset" and flags are not secrets; showing them helps the user debug
    assert out["secret"] == "<unset>" and out["SECRET"] is True


def test_top_level_none_is_shown_as_unset_as_the_reference_does():
    out = redact_sensitive_map({"AWS_SESSION_TOKEN": None, "KUBECONFIG": None, "AWS_SECRET_ACCESS_KEY": ""})
    assert out == {"AWS_SESSION_TOKEN": "<unset>", "KUBECONFIG": "<unset>", "AWS_SECRET_ACCESS_KEY": MASK}


def test_redact_document_keeps_none():
    assert redact_document({"secret": None, "spec": {"x": None}}) == {"secret": None, "spec": {"x": None}}


def test_nested_structures_under_sensitive_keys_are_walked_not_wiped():
    # A Kubernetes env entry referencing a secret: the reference (names) is not secret.
    env = [
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "secret"}}},
    ]
    assert redact_sensitive_map({"env": env}) == {"env": env}
    nested = {"credentials": {"region": "us-east-1", "password": "pw-value"}}
    assert redact_sensitive_map(nested) == {"credentials": {"region": "us-east-1", "password": MASK}}


def test_env_list_values_masked_by_variable_name():
    manifest = {
        "spec": {
            "containers": [
                {
                    "env": [
                        {"name": "DB_PASSWORD", "value": "hunter22"},
                        {"name": "GITHUB_TOKEN", "value": "ghp_abc"},
                        {"name": "LOG_LEVEL", "value": "debug"},
                        {"name": "MONKEY", "value": "banana"},
                    ]
                }
            ]
        }
    }
    env = redact_sensitive_map(manifest)["spec"]["containers"][0]["env"]
    assert env == [
        {"name": "DB_PASSWORD", "value": MASK},
        {"name": "GITHUB_TOKEN", "value": MASK},
        {"name": "LOG_LEVEL", "value": "debug"},
        {"name": "MONKEY", "value": "banana"},
    ]


def test_known_secret_value_masked_anywhere():
    secret = "wJalrXUtnFEMI-K7MDENG"
    data = {
        "message": f"upload failed with key {secret} at endpoint",
        "args": ["--secret", secret, ("tuple", f"x{secret}y")],
        "count": 3,
        "nested": {"deep": [{"text": secret}]},
    }
    out = redact_sensitive_map(data, [secret])
    assert out == {
        "message": f"upload failed with key {MASK} at endpoint",
        "args": ["--secret", MASK, ("tuple", f"x{MASK}y")],
        "count": 3,
        "nested": {"deep": [{"text": MASK}]},
    }
    assert isinstance(out["args"][2], tuple)


def test_redaction_returns_a_copy_and_leaves_input_unchanged():
    data = {"password": "pw-value", "items": [{"note": "pw-value"}]}
    before = copy.deepcopy(data)
    out = redact_sensitive_map(data, ["pw-value"])
    assert data == before
    assert out is not data and out["items"] is not data["items"]


def test_longest_secret_masked_first():
    assert redact_text("token=abcd1234XYZ", ["abcd1234", "abcd1234XYZ"]) == f"token={MASK}"


def test_short_or_empty_known_values_are_not_masked_inside_text():
    # Masking "a" would shred every message while protecting nothing.
    assert redact_text("a cat sat", ["a", "cat", "", None]) == "a cat sat"
    assert redact_text("code 1234 here", ["1234"]) == f"code {MASK} here"


def test_non_string_leaves_pass_through():
    data = {"n": 1, "f": 1.5, "b": False, "none": None, "items": [1, None]}
    assert redact_document(data, ["something"]) == data
    # nested None stays None; only a top-level unset value reads "<unset>"
    assert redact_sensitive_map(data, ["something"]) == {**data, "none": "<unset>"}


def test_masks_top_level_string_and_list():
    assert redact_sensitive_map("see s3cr3t-value", ["s3cr3t-value"]) == f"see {MASK}"
    assert redact_sensitive_map(["s3cr3t-value", 1], ["s3cr3t-value"]) == [MASK, 1]


_SAFE_KEYS = st.sampled_from(["name", "message", "args", "items", "note", "region", "path"])
_ALNUM = "abcdefghijklmnopqrstuvwxyz0123456789"


@given(
    secret=st.text(alphabet=_ALNUM, min_size=4, max_size=24),
    before=st.text(alphabet=_ALNUM + " =:/", max_size=30),
    after=st.text(alphabet=_ALNUM + " =:/", max_size=30),
)
def test_known_value_never_survives_in_text(secret, before, after):
    out = redact_sensitive_map({"message": before + secret + after}, [secret])["message"]
    assert secret not in out
    assert MASK in out


@given(
    secret=st.text(alphabet=_ALNUM, min_size=4, max_size=16),
    data=st.recursive(
        st.one_of(st.text(alphabet=_ALNUM + " ", max_size=20), st.integers(), st.none()),
        lambda children: st.one_of(st.lists(children, max_size=4), st.dictionaries(_SAFE_KEYS, children, max_size=4)),
        max_leaves=20,
    ),
)
def test_known_value_never_survives_in_nested_data(secret, data):
    # Upper-case frame: the (lower-case) secret can never be part of it.
    wrapped = {"payload": data, "extra": [f"PREFIX-{secret}-SUFFIX"]}
    strings = list(_strings(redact_sensitive_map(wrapped, [secret])))
    assert f"PREFIX-{MASK}-SUFFIX" in strings
    assert not [s for s in strings if secret in s]


def _strings(node):
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for value in node.values():
            yield from _strings(value)
    elif isinstance(node, (list, tuple)):
        for item in node:
            yield from _strings(item)


def test_a_profiles_secrets_mapping_shows_the_secret_names():
    # Its keys say "secret" but its values name Kubernetes secrets: nothing to hide.
    profile = {"name": "nrp", "default_secrets_mapping": {"s3_credentials_secret": "prp-s3-credentials"},
               "env_defaults": {"DB_PASSWORD": "hunter22"}}
    out = redact_document(profile)
    assert out["default_secrets_mapping"] == {"s3_credentials_secret": "prp-s3-credentials"}
    assert out["env_defaults"] == {"DB_PASSWORD": MASK}
    # a known secret value is still masked in it
    assert redact_document(profile, ["prp-s3-credentials"])["default_secrets_mapping"] == {
        "s3_credentials_secret": MASK}
