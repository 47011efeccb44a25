"""profiles list / show / validate, policy-check and render-job's JSON output."""

from __future__ import annotations

from pathlib import Path

import yaml
from cli_support import EXAMPLE, Cli, assert_one_line_error, cli  # noqa: F401


def test_profiles_list_shows_builtins_and_user_profiles(cli: Cli, tmp_path: Path) -> None:
    user_dir = tmp_path / "profiles"
    user_dir.mkdir()
    (user_dir / "mylab.yaml").write_text("extends: nrp\nnamespace: mylab\n")
    (user_dir / "broken.yaml").write_text("name: broken\nbackend: carrier-pigeon\n")
    result = cli("profiles", "list", env={"SPIKEBATCH_PROFILE_PATH": str(user_dir)})
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line.split() for line in result.stdout.splitlines()[1:]}
    assert {"defaults", "local", "nrp", "mylab", "broken"} <= set(rows)
    assert rows["local"][1:3] == ["local", "local"]
    assert rows["mylab"][1] == "kubernetes" and rows["mylab"][3] == "mylab"
    assert rows["mylab"][4] == str(user_dir / "mylab.yaml")
    assert rows["broken"][1] == "INVALID"
    assert "warning: profile broken:" in result.stderr and "backend" in result.stderr

    document = cli("profiles", "list", "-o", "json").json()
    names = {p["name"]: p for p in document["profiles"]}
    assert names["nrp"]["source"] == "built-in" and names["nrp"]["namespace"] == "braingeneers"


def test_profiles_show_prints_the_resolved_profile(cli: Cli, tmp_path: Path) -> None:
    result = cli("profiles", "show", "nrp")
    assert result.returncode == 0, result.stderr
    shown = yaml.safe_load(result.stdout)
    assert shown["name"] == "nrp" and shown["namespace"] == "braingeneers"
    assert shown["default_images"] == {}  # no built-in names an image that does not exist
    assert shown["pod_security"]["run_as_user"] == 1000
    child = tmp_path / "child.yaml"
    child.write_text("extends: nrp\nnamespace: mylab\ndefault_images: {cpu: 'registry.example.org/lab/runner:1.0'}\n")
    resolved = cli("profiles", "show", str(child), "--output", "json").json()
    assert resolved["namespace"] == "mylab" and resolved["default_images"] == {"cpu": "registry.example.org/lab/runner:1.0"}
    assert resolved["namespace_hooks"] == shown["namespace_hooks"]
    assert_one_line_error(cli("profiles", "show", "nope"), 2, "unknown profile 'nope'")


def test_profiles_show_takes_the_references_aliases_and_any_case(cli: Cli) -> None:
    for name in ("nautilus", " NRP "):
        shown = cli("profiles", "show", name, "--output", "json").json()
        assert shown["name"] == "nrp" and shown["namespace"] == "braingeneers"
        assert shown["default_s3_prefix"] is None  # JSON keeps null: "<unset>" is only for logged maps
    assert cli("profiles", "show", "default", "--output", "json").json()["name"] == "defaults"
    assert_one_line_error(cli("profiles", "show", "nautilis"), 2, "unknown profile 'nautilis'",
                          "nautilus -> nrp", "default -> defaults")


def test_the_references_profile_files_validate_and_show(cli: Cli) -> None:
    import spikelab

    folder = Path(spikelab.__file__).parent / "batch_jobs" / "profiles"
    for name, namespace in (("defaults", "default"), ("nrp", "braingeneers")):
        result = cli("profiles", "validate", str(folder / f"{name}.yaml"))
        assert result.returncode == 0, result.stderr
        assert result.keys["PROFILE_NAME"] == name and result.keys["NAMESPACE"] == namespace
    shown = cli("profiles", "show", str(folder / "nrp.yaml"), "--output", "json").json()
    assert shown["default_secrets_mapping"] == {"s3_credentials_secret": "prp-s3-credentials"}
    mounts = shown["namespace_hooks"]["braingeneers"]["required_volumes"]
    assert [(m["name"], m["sub_path"]) for m in mounts] == [
        ("prp-s3-credentials", "credentials"), ("prp-s3-credentials", ".s3cfg"), ("kube-config", None)]


def test_profiles_validate(cli: Cli, tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text("name: good\nextends: defaults\nnamespace: lab\ndefault_s3_prefix: s3://bucket/x/\n")
    result = cli("profiles", "validate", str(good))
    assert result.returncode == 0, result.stderr
    assert result.keys == {"PROFILE_NAME": "good", "BACKEND": "kubernetes", "STORAGE_BACKEND": "boto3", "NAMESPACE": "lab"}
    assert "is valid" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: bad\nresources: {requests_memory: lots}\n")
    assert_one_line_error(cli("profiles", "validate", str(bad)), 2, "bad.yaml", "resources.requests_memory")
    malformed = tmp_path / "malformed.yaml"
    malformed.write_text("name: [x\n")
    assert_one_line_error(cli("profiles", "validate", str(malformed)), 2, "malformed.yaml", "line")


def test_policy_check_passes_and_warns_without_submitting(cli: Cli, tmp_path: Path) -> None:
    ok = cli("policy-check", "--job-config", str(EXAMPLE))
    assert ok.returncode == 0, ok.stderr
    assert ok.keys["POLICY"] in ("PASS", "WARN") and ok.keys["BLOCK"] == "0"
    config = tmp_path / "mismatch.yaml"
    config.write_text("container:\n  command: [python, run.py]\n"
                      "resources: {requests_cpu: '1', limits_cpu: '8', requests_memory: 1Gi, limits_memory: 1Gi}\n")
    image = ("--image", "registry.example.org/lab/runner:1.0")
    warned = cli("--profile", "nrp", "policy-check", "--job-config", str(config), *image)
    assert warned.returncode == 0, warned.stderr
    assert warned.keys["POLICY"] == "WARN" and int(warned.keys["WARN"]) >= 1
    assert "policy: [WARN] " in warned.stderr
    document = cli("--profile", "nrp", "policy-check", "--job-config", str(config), *image, "-o", "json").json()
    assert document["policy"] == "WARN" and document["blocked"] is False
    assert any(f["level"] == "WARN" for f in document["findings"])
    assert cli.local_jobs() == [] and cli.records() == []


def test_render_job_json_holds_the_manifest_and_the_policy(cli: Cli) -> None:
    result = cli("render-job", "--job-config", str(EXAMPLE), "--output", "json")
    assert result.returncode == 0, result.stderr
    document = result.json()
    assert document["manifest"]["kind"] == "Job"
    assert document["manifest"]["metadata"]["name"] == document["job_name"]
    assert document["policy"]["blocked"] is False
    assert document["manifest_path"] is None
