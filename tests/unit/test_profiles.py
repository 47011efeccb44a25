"""Cluster profiles from YAML: built-ins, the user search path, extends, and error messages.

Every test points HOME and XDG_CONFIG_HOME at temporary folders, so the real user's
profiles are never read.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import pytest

from spikebatch.profiles import (
    PROFILE_PATH_ENV,
    available_profiles,
    builtin_profile_names,
    load_cluster_profile,
    load_profile_from_name,
    user_profile_dirs,
)
from spikebatch.errors import ConfigError, ProfileNotFoundError
from spikebatch.domain.models import PodSecuritySpec
from spikebatch.models import ClusterProfile, PolicyConfig, ResourceSpec, StoragePathTemplates

BUILTINS = ("defaults", "local", "nrp")


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv(PROFILE_PATH_ENV, raising=False)
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return home


@pytest.fixture
def xdg(tmp_path) -> Path:
    folder = tmp_path / "xdg"
    (folder / "spikebatch" / "profiles").mkdir(parents=True)
    return folder


@pytest.fixture
def env(home, xdg) -> dict:
    return {"XDG_CONFIG_HOME": str(xdg)}


def write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


def user_dir(xdg: Path) -> Path:
    return xdg / "spikebatch" / "profiles"


def builtin_path(name: str) -> Path:
    return Path(str(resources.files("spikebatch") / "profiles" / f"{name}.yaml"))


# --------------------------------------------------------------------------- built-ins


def test_builtin_profile_names():
    assert set(BUILTINS) <= set(builtin_profile_names())
    assert builtin_profile_names() == sorted(builtin_profile_names())


@pytest.mark.parametrize("name", BUILTINS)
def test_each_builtin_loads_and_validates(name, env):
    profile = load_profile_from_name(name, env=env)
    assert isinstance(profile, ClusterProfile)
    assert profile.name == name
    assert profile.description  # a user listing profiles sees what each is for
    # No built-in names an image that does not exist: a user builds and names their own.
    assert profile.default_images == {}
    assert profile.default_image_profile == "cpu"
    # Jobs run as the runner image's unprivileged user, on the pod network.
    assert profile.pod_security == PodSecuritySpec()
    assert profile.host_network is False and profile.automount_service_account_token is False


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_yaml_names_no_image_and_nothing_under_root(name):
    import yaml

    text = builtin_path(name).read_text()
    data = yaml.safe_load(text)
    assert "default_images" not in data
    assert "/root" not in yaml.safe_dump(data)  # uid 1000 cannot traverse /root
    if data["backend"] != "local":
        assert "spikebatch image build --tag" in text  # the comment says how to get an image


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_by_path_equals_builtin_by_name(name, env):
    assert load_cluster_profile(builtin_path(name), env=env) == load_profile_from_name(name, env=env)


def test_defaults_profile(env):
    profile = load_profile_from_name("defaults", env=env)
    assert (profile.backend, profile.storage_backend) == ("kubernetes", "boto3")
    assert profile.namespace == "default"
    assert profile.default_s3_prefix is None
    assert profile.region_name == "us-east-1"
    assert profile.default_images == {}
    assert profile.resources == ResourceSpec()
    assert profile.storage == StoragePathTemplates()
    assert profile.policy == PolicyConfig()


def test_local_profile_runs_without_a_cluster(env):
    profile = load_profile_from_name("local", env=env)
    assert (profile.backend, profile.storage_backend) == ("local", "local")
    assert profile.policy.warn_request_limit_mismatch is False
    assert profile.policy.max_interactive_gpus == 0
    assert profile.policy.block_sleep_infinity is True
    assert profile.runs_containers is False  # so it needs no image


def test_nrp_profile(env):
    profile = load_profile_from_name("nrp", env=env)
    assert profile.namespace == "braingeneers"
    assert profile.endpoint_url == "https://s3-west.nrp-nautilus.io"
    assert profile.default_images == {}
    hook = profile.namespace_hooks["braingeneers"]
    assert hook.image_pull_policy == "Always"
    # The S3 credentials only, where uid 1000 can read them (/root is 0700); no kubeconfig.
    assert {v.name: (v.secret_name, v.mount_path, v.read_only) for v in hook.required_volumes} == {
        "prp-s3-credentials": ("prp-s3-credentials", "/var/run/secrets/spikebatch/s3", True),
    }
    assert hook.env_defaults["AWS_SHARED_CREDENTIALS_FILE"] == "/var/run/secrets/spikebatch/s3/credentials"
    assert "KUBECONFIG" not in hook.env_defaults
    assert profile.default_volumes == [] and profile.pod_security.run_as_user == 1000
    assert profile.policy.max_runtime_seconds == 1209600
    assert profile.policy.sleep_duration_threshold_s == 600
    assert profile.policy.max_limit_request_ratio == 1.2
    assert profile.policy.max_interactive_gpus == 2
    assert profile.affinity["nodeAffinity"]
    assert (profile.resources.requests_cpu, profile.resources.limits_memory) == ("2", "8Gi")


# --------------------------------------------------------------------------- load_cluster_profile


def test_load_cluster_profile_missing_file(tmp_path, env):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(ConfigError) as info:
        load_cluster_profile(missing, env=env)
    assert str(missing) in info.value.message
    assert "does not exist" in info.value.message and "--profile-file" in info.value.message


def test_load_cluster_profile_name_defaults_to_file_stem(tmp_path, env):
    path = write(tmp_path, "mysite.yaml", "namespace: lab\ndefault_s3_prefix: s3://bucket/sb\n")
    profile = load_cluster_profile(str(path), env=env)
    assert profile.name == "mysite"
    assert profile.namespace == "lab"
    assert profile.default_s3_prefix == "s3://bucket/sb/"


def test_load_cluster_profile_keeps_explicit_name(tmp_path, env):
    path = write(tmp_path, "file.yaml", "name: lab-cluster\n")
    assert load_cluster_profile(path, env=env).name == "lab-cluster"


def test_empty_profile_file_gives_model_defaults(tmp_path, env):
    path = write(tmp_path, "empty.yaml", "")
    assert load_cluster_profile(path, env=env) == ClusterProfile(name="empty")


def test_profile_must_be_a_mapping(tmp_path, env):
    path = write(tmp_path, "list.yaml", "- a\n- b\n")
    with pytest.raises(ConfigError) as info:
        load_cluster_profile(path, env=env)
    assert info.value.message == f"{path}: a profile must be a YAML mapping of fields, got list"


@pytest.mark.parametrize(
    ("text", "where", "problem"),
    [
        ("name: x\n\tnamespace: lab\n", "line 2, column 1", "found character '\\t' that cannot start any token"),
        ("name: x\npolicy:\n  max_interactive_gpus: [1, 2\n", "line 4, column 1", "expected ',' or ']'"),
    ],
)
def test_malformed_yaml_names_line_and_column(tmp_path, env, text, where, problem):
    path = write(tmp_path, "broken.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_cluster_profile(path, env=env)
    message = info.value.message
    assert message.startswith(f"{path}: {where}: ")
    assert problem in message
    assert "fix the YAML syntax" in message
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("polcy: {}\n", "polcy"),
        ("policy:\n  max_gpus: 3\n", "policy.max_gpus"),
        ("namespace_hooks:\n  lab:\n    env: {A: b}\n", "namespace_hooks.lab.env"),
    ],
)
def test_unknown_field_is_named(tmp_path, env, text, field):
    path = write(tmp_path, "typo.yaml", text)
    with pytest.raises(ConfigError) as info:
        load_cluster_profile(path, env=env)
    assert info.value.message == (
        f"{path}: invalid profile: {field}: unknown field; remove it or check its spelling"
    )


def test_invalid_value_names_file_and_field(tmp_path, env):
    path = write(tmp_path, "bad.yaml", "namespace: Lab_NS\nresources:\n  requests_cpu: lots\n")
    with pytest.raises(ConfigError) as info:
        load_cluster_profile(path, env=env)
    message = info.value.message
    assert message.startswith(f"{path}: invalid profile: ")
    assert "namespace: namespace 'Lab_NS' must be an RFC 1123 label" in message
    assert "resources.requests_cpu: 'lots' is not a Kubernetes quantity" in message


# --------------------------------------------------------------------------- search path


def test_user_profile_dirs_order(tmp_path, home):
    a, b, xdg = tmp_path / "a", tmp_path / "b", tmp_path / "cfg"
    env = {PROFILE_PATH_ENV: os.pathsep.join([str(a), "", str(b)]), "XDG_CONFIG_HOME": str(xdg)}
    assert user_profile_dirs(env) == [a, b, xdg / "spikebatch" / "profiles"]


def test_user_profile_dirs_default_config_home(home):
    assert user_profile_dirs({}) == [home / ".config" / "spikebatch" / "profiles"]


def test_user_profile_in_config_home_is_found(env, xdg):
    write(user_dir(xdg), "site.yaml", "extends: defaults\ndefault_s3_prefix: s3://lab-bucket/\n")
    profile = load_profile_from_name("site", env=env)
    assert profile.name == "site"
    assert profile.default_s3_prefix == "s3://lab-bucket/"


def test_default_config_home_is_under_home(home):
    write(home / ".config" / "spikebatch" / "profiles", "mine.yml", "namespace: mine\n")
    assert load_profile_from_name("mine", env={}).namespace == "mine"


def test_profile_path_env_wins_over_config_home(tmp_path, env, xdg):
    first, second = tmp_path / "first", tmp_path / "second"
    write(first, "site.yaml", "namespace: first\n")
    write(second, "site.yaml", "namespace: second\n")
    write(user_dir(xdg), "site.yaml", "namespace: xdg\n")
    env = {**env, PROFILE_PATH_ENV: os.pathsep.join([str(first), str(second)])}
    assert load_profile_from_name("site", env=env).namespace == "first"
    env[PROFILE_PATH_ENV] = str(second)
    assert load_profile_from_name("site", env=env).namespace == "second"
    env[PROFILE_PATH_ENV] = str(tmp_path / "missing")
    assert load_profile_from_name("site", env=env).namespace == "xdg"


def test_process_environment_is_used_when_env_not_given(tmp_path, home, monkeypatch):
    folder = tmp_path / "profiles"
    write(folder, "fromenv.yaml", "namespace: fromenv\n")
    monkeypatch.setenv(PROFILE_PATH_ENV, str(folder))
    assert load_profile_from_name("fromenv").namespace == "fromenv"


def test_user_profile_shadows_builtin(env, xdg):
    write(user_dir(xdg), "nrp.yaml", "namespace: my-lab\n")
    profile = load_profile_from_name("nrp", env=env)
    assert profile.name == "nrp"
    assert profile.namespace == "my-lab"
    assert profile.namespace_hooks == {}  # nothing of the built-in leaks in
    assert available_profiles(env)["nrp"] == str(user_dir(xdg) / "nrp.yaml")


def test_available_profiles_lists_builtins_and_user_profiles(tmp_path, env, xdg):
    extra = tmp_path / "extra"
    write(extra, "alpha.yml", "{}\n")
    write(user_dir(xdg), "site.yaml", "{}\n")
    write(user_dir(xdg), "notes.txt", "not a profile\n")
    found = available_profiles({**env, PROFILE_PATH_ENV: str(extra)})
    assert {name: found[name] for name in BUILTINS} == {name: "built-in" for name in BUILTINS}
    assert found["alpha"] == str(extra / "alpha.yml")
    assert found["site"] == str(user_dir(xdg) / "site.yaml")
    assert "notes" not in found
    assert list(found) == sorted(found)


def test_unknown_name_lists_known_profiles(env, xdg):
    write(user_dir(xdg), "site.yaml", "{}\n")
    with pytest.raises(ProfileNotFoundError) as info:
        load_profile_from_name("nrpp", env=env)
    message = info.value.message
    assert isinstance(info.value, ConfigError)
    assert "unknown profile 'nrpp'" in message
    assert "known profiles: defaults, local, nrp, site" in message
    assert PROFILE_PATH_ENV in message
    assert message.endswith("; aliases: default -> defaults, nautilus -> nrp)")


@pytest.mark.parametrize(("raw", "expected"), [
    ("  nrp ", "nrp"), ("NRP", "nrp"), ("Nautilus", "nrp"), ("nautilus", "nrp"),
    ("default", "defaults"), (" DEFAULTS", "defaults"), ("Local", "local"),
])
def test_names_are_trimmed_case_folded_and_aliased(env, raw, expected):
    assert load_profile_from_name(raw, env=env).name == expected


def test_a_user_profile_named_like_an_alias_wins_over_the_alias(env, xdg):
    write(user_dir(xdg), "nautilus.yaml", "namespace: mine\n")
    profile = load_profile_from_name("nautilus", env=env)
    assert (profile.name, profile.namespace) == ("nautilus", "mine")


def test_a_mixed_case_user_profile_is_found_as_written_and_lower_cased(env, xdg):
    write(user_dir(xdg), "lab.yaml", "namespace: lab\n")
    assert load_profile_from_name("LAB", env=env).name == "lab"


def test_extends_accepts_an_alias(env, xdg):
    write(user_dir(xdg), "kid.yaml", "extends: nautilus\n")
    profile = load_profile_from_name("kid", env=env)
    assert profile.namespace == "braingeneers" and profile.name == "kid"


@pytest.mark.parametrize("name", ["../outside", "sub/inside", "../OUTSIDE"])
def test_a_path_is_not_a_profile_name(env, xdg, name):
    write(xdg / "spikebatch", "outside.yaml", "namespace: out\n")
    write(user_dir(xdg) / "sub", "inside.yaml", "namespace: in\n")
    with pytest.raises(ProfileNotFoundError, match="unknown profile"):
        load_profile_from_name(name, env=env)


# --------------------------------------------------------------------------- extends


def test_extends_deep_merges_mappings_and_replaces_lists(env, xdg):
    write(
        user_dir(xdg),
        "lab.yaml",
        "extends: nrp\n"
        "default_s3_prefix: s3://lab-bucket/spikebatch\n"
        "policy:\n  max_interactive_gpus: 4\n"
        "default_images:\n  cpu: registry.example/lab:2\n  gpu: registry.example/lab-gpu:2\n"
        "pod_security:\n  run_as_user: 2000\n"
        "tolerations:\n  - {key: gpu, operator: Exists, effect: NoSchedule}\n",
    )
    profile = load_profile_from_name("lab", env=env)
    nrp = load_profile_from_name("nrp", env=env)
    assert profile.name == "lab"  # the parent's name is not inherited
    assert profile.default_s3_prefix == "s3://lab-bucket/spikebatch/"
    assert profile.namespace == nrp.namespace and profile.endpoint_url == nrp.endpoint_url
    assert profile.namespace_hooks == nrp.namespace_hooks
    # mapping merged key by key
    assert profile.policy.max_interactive_gpus == 4
    assert profile.policy.max_runtime_seconds == nrp.policy.max_runtime_seconds
    assert profile.default_images == {"cpu": "registry.example/lab:2", "gpu": "registry.example/lab-gpu:2"}
    assert profile.pod_security == PodSecuritySpec(run_as_user=2000)  # the other ids kept
    # lists replaced
    assert profile.tolerations == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]


def test_a_profile_extending_another_can_turn_pod_security_off(env, xdg):
    write(user_dir(xdg), "rootful.yaml", "extends: defaults\npod_security: null\nhost_network: true\n")
    profile = load_profile_from_name("rootful", env=env)
    assert profile.pod_security is None and profile.host_network is True


def test_extends_chain(env, xdg):
    write(user_dir(xdg), "base.yaml", "extends: defaults\nnamespace: base-ns\nregion_name: eu-west-1\n")
    write(user_dir(xdg), "child.yaml", "extends: base\nregion_name: eu-central-1\n")
    profile = load_profile_from_name("child", env=env)
    assert (profile.name, profile.namespace, profile.region_name) == ("child", "base-ns", "eu-central-1")
    assert profile.default_images == load_profile_from_name("defaults", env=env).default_images


def test_extends_from_explicit_path_finds_parent_by_name(tmp_path, env, xdg):
    write(user_dir(xdg), "base.yaml", "namespace: base-ns\n")
    path = write(tmp_path / "cfg", "run.yaml", "extends: base\nregion_name: r1\n")
    profile = load_cluster_profile(path, env=env)
    assert (profile.name, profile.namespace, profile.region_name) == ("run", "base-ns", "r1")


def test_extends_loop_is_detected(env, xdg):
    write(user_dir(xdg), "a.yaml", "extends: b\n")
    write(user_dir(xdg), "b.yaml", "extends: a\n")
    with pytest.raises(ConfigError) as info:
        load_profile_from_name("a", env=env)
    assert "extend each other in a loop (a -> b -> a)" in info.value.message


def test_extends_itself_is_a_loop(env, xdg):
    write(user_dir(xdg), "selfish.yaml", "extends: selfish\n")
    with pytest.raises(ConfigError, match=r"loop \(selfish -> selfish\)"):
        load_profile_from_name("selfish", env=env)


def test_extends_must_be_a_name(env, xdg):
    path = write(user_dir(xdg), "odd.yaml", "extends: [nrp, defaults]\n")
    with pytest.raises(ConfigError) as info:
        load_profile_from_name("odd", env=env)
    assert info.value.message == f"{path}: extends must be a profile name"


def test_extends_unknown_parent(env, xdg):
    write(user_dir(xdg), "orphan.yaml", "extends: missing-parent\n")
    with pytest.raises(ProfileNotFoundError, match="unknown profile 'missing-parent'; known profiles: defaults"):
        load_profile_from_name("orphan", env=env)


def test_malformed_parent_is_named(env, xdg):
    parent = write(user_dir(xdg), "parent.yaml", "name: p\n\tbad: 1\n")
    write(user_dir(xdg), "kid.yaml", "extends: parent\n")
    with pytest.raises(ConfigError) as info:
        load_profile_from_name("kid", env=env)
    assert info.value.message.startswith(f"{parent}: line 2, column 1:")


def test_file_named_like_its_parent_can_extend_it(tmp_path, env):
    path = write(tmp_path / "site", "nrp.yaml", "extends: nrp\ndefault_s3_prefix: s3://lab-bucket/\n")
    profile = load_cluster_profile(path, env=env)
    assert profile.namespace == "braingeneers"
    assert profile.default_s3_prefix == "s3://lab-bucket/"


def test_file_named_like_its_parent_works_from_a_relative_path(tmp_path, env, monkeypatch):
    write(tmp_path / "site", "nrp.yaml", "extends: nrp\ndefault_s3_prefix: s3://lab-bucket/\n")
    monkeypatch.chdir(tmp_path / "site")
    profile = load_cluster_profile("./nrp.yaml", env=env)
    assert (profile.name, profile.namespace) == ("nrp", "braingeneers")


def test_explicit_file_reached_again_by_name_is_a_loop(env, xdg):
    path = write(user_dir(xdg), "a.yaml", "extends: b\n")
    write(user_dir(xdg), "b.yaml", "extends: a\n")
    with pytest.raises(ConfigError) as info:
        load_cluster_profile(path, env=env)
    assert "extend each other in a loop (a -> b -> a)" in info.value.message


def test_user_profile_extending_its_own_name_is_a_loop(env, xdg):
    # A user profile shadows the built-in of the same name, so `extends: nrp` finds itself.
    write(user_dir(xdg), "nrp.yaml", "extends: nrp\n")
    with pytest.raises(ConfigError, match=r"loop \(nrp -> nrp\)"):
        load_profile_from_name("nrp", env=env)
