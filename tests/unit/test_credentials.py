"""resolve_credentials: explicit > environment > ~/.aws/credentials and ~/.kube/config.

Every test runs with HOME pointing at an empty temporary folder, so the real user's
files are never read.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import pytest

from spikebatch.credentials import ResolvedCredentials, resolve_credentials
from spikebatch.errors import ConfigError
from spikebatch.credentials import MASK

ENV_KEY, ENV_SECRET, ENV_TOKEN = "AKIAENVIRONMENT01", "env-secret-value-0123456789", "env-session-token-xyz"
FILE_KEY, FILE_SECRET = "AKIAFILEDEFAULT001", "file-secret-value-abcdef"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_SHARED_CREDENTIALS_FILE", "KUBECONFIG"):
        monkeypatch.delenv(name, raising=False)
    return home


def write_aws_credentials(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def aws_file(home) -> Path:
    return write_aws_credentials(
        home / ".aws" / "credentials",
        f"[default]\naws_access_key_id = {FILE_KEY}\naws_secret_access_key = {FILE_SECRET}\n\n"
        "[lab]\naws_access_key_id = AKIALAB\naws_secret_access_key = lab%secret\naws_session_token = lab-token\n",
    )


ENV = {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET, "AWS_SESSION_TOKEN": ENV_TOKEN}


def test_explicit_keys_win_over_environment_and_file(aws_file):
    creds = resolve_credentials(
        aws_access_key_id="AKIAEXPLICIT", aws_secret_access_key="explicit-secret", aws_session_token="tok", env=ENV
    )
    assert (creds.aws_access_key_id, creds.aws_secret_access_key, creds.aws_session_token) == (
        "AKIAEXPLICIT", "explicit-secret", "tok"
    )
    assert creds.aws_source == "explicit"


def test_environment_wins_over_file(aws_file):
    creds = resolve_credentials(env=ENV)
    assert (creds.aws_access_key_id, creds.aws_secret_access_key, creds.aws_session_token) == (
        ENV_KEY, ENV_SECRET, ENV_TOKEN
    )
    assert creds.aws_source == "environment"


def test_environment_without_token_keeps_explicit_token(home):
    env = {"AWS_ACCESS_KEY_ID": ENV_KEY, "AWS_SECRET_ACCESS_KEY": ENV_SECRET}
    creds = resolve_credentials(aws_session_token="explicit-token", env=env)
    assert creds.aws_session_token == "explicit-token"
    assert resolve_credentials(env=env).aws_session_token is None


def test_explicit_token_wins_over_environment_token(home):
    creds = resolve_credentials(aws_session_token="explicit-token", env=ENV)
    assert (creds.aws_access_key_id, creds.aws_secret_access_key) == (ENV_KEY, ENV_SECRET)
    assert creds.aws_session_token == "explicit-token"
    assert creds.aws_source == "environment"


def test_explicit_token_wins_over_file_token(aws_file):
    creds = resolve_credentials(aws_session_token="explicit-token", env={"AWS_PROFILE": "lab"})
    assert (creds.aws_access_key_id, creds.aws_session_token) == ("AKIALAB", "explicit-token")


def test_environment_needs_both_key_and_secret(aws_file):
    creds = resolve_credentials(env={"AWS_ACCESS_KEY_ID": ENV_KEY})
    assert (creds.aws_access_key_id, creds.aws_secret_access_key) == (FILE_KEY, FILE_SECRET)
    assert creds.aws_source == f"file:{aws_file}"


def test_real_process_environment_is_used_when_env_not_given(home, monkeypatch):
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)
    creds = resolve_credentials()
    assert (creds.aws_access_key_id, creds.aws_source) == (ENV_KEY, "environment")


def test_default_section_of_home_credentials_file(aws_file):
    creds = resolve_credentials(env={})
    assert (creds.aws_access_key_id, creds.aws_secret_access_key, creds.aws_session_token) == (
        FILE_KEY, FILE_SECRET, None
    )
    assert creds.aws_source == f"file:{aws_file}"


def test_aws_profile_selects_section_and_percent_is_literal(aws_file):
    creds = resolve_credentials(env={"AWS_PROFILE": "lab"})
    assert (creds.aws_access_key_id, creds.aws_secret_access_key, creds.aws_session_token) == (
        "AKIALAB", "lab%secret", "lab-token"
    )


def test_aws_shared_credentials_file_overrides_location(home, aws_file, tmp_path):
    other = write_aws_credentials(
        tmp_path / "elsewhere" / "creds", "[default]\naws_access_key_id = AKIAOTHER\naws_secret_access_key = other\n"
    )
    creds = resolve_credentials(env={"AWS_SHARED_CREDENTIALS_FILE": str(other)})
    assert creds.aws_access_key_id == "AKIAOTHER"
    assert creds.aws_source == f"file:{other}"


def test_unknown_profile_section_gives_no_keys(aws_file):
    creds = resolve_credentials(env={"AWS_PROFILE": "nope"})
    assert (creds.aws_access_key_id, creds.aws_secret_access_key, creds.aws_source) == (None, None, None)


def test_nothing_configured_gives_nothing(home):
    creds = resolve_credentials(env={})
    assert creds == ResolvedCredentials(kubeconfig=None)
    assert creds.secret_values == []


def test_malformed_credentials_file_is_a_config_error_that_hides_the_secret(home):
    path = write_aws_credentials(home / ".aws" / "credentials", f"aws_secret_access_key = {FILE_SECRET}\n")
    with pytest.raises(ConfigError) as info:
        resolve_credentials(env={})
    assert str(path) in info.value.message
    assert FILE_SECRET not in info.value.message


def test_unparsable_line_in_credentials_file_names_the_line_not_its_text(home):
    path = write_aws_credentials(
        home / ".aws" / "credentials", f"[default]\naws_access_key_id = {FILE_KEY}\n{FILE_SECRET}\n"
    )
    with pytest.raises(ConfigError) as info:
        resolve_credentials(env={})
    assert str(path) in info.value.message and "line 3" in info.value.message
    assert FILE_SECRET not in info.value.message and FILE_KEY not in info.value.message
    assert info.value.__cause__ is None and info.value.__suppress_context__


# --------------------------------------------------------------------------- kubeconfig


def test_explicit_kubeconfig_wins_and_expands_home(home):
    creds = resolve_credentials(kubeconfig="~/clusters/lab.yaml", env={"KUBECONFIG": "/etc/kube/other"})
    assert creds.kubeconfig == str(home / "clusters" / "lab.yaml")


def test_kubeconfig_from_environment_first_entry(home):
    env = {"KUBECONFIG": os.pathsep.join(["/etc/kube/a", "/etc/kube/b"])}
    assert resolve_credentials(env=env).kubeconfig == "/etc/kube/a"


def test_kubeconfig_default_file_when_present(home):
    assert resolve_credentials(env={}).kubeconfig is None
    config = home / ".kube" / "config"
    config.parent.mkdir()
    config.write_text("apiVersion: v1\nkind: Config\n")
    assert resolve_credentials(env={}).kubeconfig == str(config)


def test_kubeconfig_skips_empty_entries(home):
    creds = resolve_credentials(env={"KUBECONFIG": os.pathsep + "/etc/kube/lab"})
    assert creds.kubeconfig == "/etc/kube/lab"


# --------------------------------------------------------------------------- ResolvedCredentials


def test_repr_and_str_never_show_a_key(home):
    creds = resolve_credentials(kubeconfig="/k/config", env=ENV)
    for text in (repr(creds), str(creds), f"{creds}", f"{creds!r}", repr([creds])):
        assert ENV_KEY not in text and ENV_SECRET not in text and ENV_TOKEN not in text
        assert MASK in text
        assert "/k/config" in text
        assert "'environment'" in text


def test_repr_shows_which_keys_are_unset(home):
    text = repr(ResolvedCredentials(kubeconfig=None, aws_access_key_id="AKIAONLY"))
    assert f"aws_access_key_id='{MASK}'" in text
    assert "aws_secret_access_key=None" in text and "aws_session_token=None" in text
    assert "AKIAONLY" not in text


def test_secret_values_lists_every_set_key(home):
    creds = resolve_credentials(env=ENV)
    assert creds.secret_values == [ENV_KEY, ENV_SECRET, ENV_TOKEN]


def test_resolved_credentials_is_frozen(home):
    creds = resolve_credentials(env=ENV)
    with pytest.raises(dataclasses.FrozenInstanceError):
        creds.aws_secret_access_key = "changed"
