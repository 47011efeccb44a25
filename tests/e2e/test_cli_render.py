"""`spikebatch render-job` as a user runs it: a real subprocess, real files."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "job.yaml"


def run_cli(*args: str, env: dict | None = None, program: list[str] | None = None) -> subprocess.CompletedProcess:
    command = program or [sys.executable, "-m", "spikebatch"]
    return subprocess.run(
        [*command, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> None:
    assert result.returncode == 2, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, f"expected one error line, got: {result.stderr!r}"
    assert lines[0].startswith("error: ")
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


#: An image a user built with `spikebatch image build` (no built-in profile names one).
IMAGE = "registry.example.org/lab/spikebatch-runner:1.0"


@pytest.mark.parametrize("profile", ["local", "defaults", "nrp"])
def test_render_job_prints_a_manifest_kubernetes_validate_accepts(profile: str) -> None:
    # The local backend runs no image; a cluster profile needs one named.
    image = [] if profile == "local" else ["--image", IMAGE]
    result = run_cli("render-job", "--profile", profile, "--job-config", str(EXAMPLE), *image)
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    kubernetes_validate.validate(manifest, "1.37.0", strict=True)
    assert manifest["metadata"]["name"].startswith("spike-analysis-")
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    # the secret in the example stays a reference
    secret_env = [e for e in container["env"] if e["name"] == "AWS_SECRET_ACCESS_KEY"]
    assert secret_env == [{"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s3-credentials", "key": "secret-access-key"}}}]


@pytest.mark.parametrize(("program", "target"), [("spikebatch", "spikebatch.entrypoints.cli:main"),
                                                 ("spikebatch-batch-jobs", "spikebatch.cli:main")])
def test_each_console_script_renders_a_job(program: str, target: str) -> None:
    # The script table as this checkout declares it (an editable install's metadata only
    # changes with `pip install -e .`); each target run as the console script would.
    import tomllib

    scripts = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts[program] == target
    # SpikeLab (a test extra) ships `spikelab-batch-jobs`: declaring it too would make
    # whichever package was installed last own that name on PATH.
    assert "spikelab-batch-jobs" not in scripts
    module, _, func = target.partition(":")
    launcher = f"import sys; from {module} import {func}; sys.argv[0] = {program!r}; sys.exit({func}())"
    image = ["--image", IMAGE] if program == "spikebatch-batch-jobs" else []  # its default profile is `defaults`
    result = run_cli("render-job", "--job-config", str(EXAMPLE), *image, program=[sys.executable, "-c", launcher])
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["kind"] == "Job"
    if program == "spikebatch":
        exe = shutil.which(program)
        assert exe, "console script spikebatch is not installed; run pip install -e ."
        assert yaml.safe_load(run_cli("render-job", "--job-config", str(EXAMPLE), program=[exe]).stdout)["kind"] == "Job"


@pytest.mark.parametrize("profile", ["defaults", "nrp"])
def test_builtin_cluster_profile_without_an_image_says_how_to_build_one(profile: str) -> None:
    result = run_cli("render-job", "--profile", profile, "--job-config", str(EXAMPLE))
    assert_one_line_error(result, "no container image", "default_images.cpu",
                          "spikebatch image build --tag <registry>/spikebatch-runner:<version> --push")


def test_global_profile_option_before_the_command() -> None:
    result = run_cli("--profile", "nrp", "render-job", "--job-config", str(EXAMPLE), "--image", IMAGE)
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["metadata"]["namespace"] == "braingeneers"


def test_output_manifest_writes_file_and_prints_its_path(tmp_path: Path) -> None:
    out = tmp_path / "job.yaml"
    result = run_cli("render-job", "--job-config", str(EXAMPLE), "--output-manifest", str(out), "--image", "mine:1.2")
    assert result.returncode == 0, result.stderr
    lines = dict(line.split("=", 1) for line in result.stdout.splitlines())
    assert lines["MANIFEST_PATH"] == str(out.resolve())
    manifest = yaml.safe_load(out.read_text())
    assert lines["JOB_NAME"] == manifest["metadata"]["name"]
    assert manifest["spec"]["template"]["spec"]["containers"][0]["image"] == "mine:1.2"


def test_image_profile_gpu_picks_the_gpu_image(tmp_path: Path) -> None:
    (tmp_path / "lab.yaml").write_text(f"extends: nrp\ndefault_images: {{cpu: '{IMAGE}', gpu: '{IMAGE}-gpu'}}\n")
    result = run_cli("render-job", "--profile", "lab", "--job-config", str(EXAMPLE), "--image-profile", "gpu",
                     env={"SPIKEBATCH_PROFILE_PATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    image = yaml.safe_load(result.stdout)["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image.endswith("-gpu")


def test_policy_findings_go_to_stderr_not_into_the_manifest(tmp_path: Path) -> None:
    config = tmp_path / "idle.yaml"
    config.write_text("container:\n  command: [sleep, infinity]\n")
    result = run_cli("render-job", "--job-config", str(config))
    assert result.returncode == 0, result.stderr
    assert "policy: [BLOCK] sleep_in_batch_job: " in result.stderr
    assert yaml.safe_load(result.stdout)["kind"] == "Job"


def test_malformed_yaml_is_one_line_with_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("container:\n  command: [python\n  args: x\n")
    assert_one_line_error(run_cli("render-job", "--job-config", str(config)), "bad.yaml", "line")


def test_unknown_field_is_named(tmp_path: Path) -> None:
    config = tmp_path / "typo.yaml"
    config.write_text("container:\n  imagee: x:1\n")
    assert_one_line_error(run_cli("render-job", "--job-config", str(config)), "container.imagee", "unknown field")


def test_bad_quantity_is_named(tmp_path: Path) -> None:
    config = tmp_path / "q.yaml"
    config.write_text("resources:\n  requests_memory: lots\n")
    assert_one_line_error(run_cli("render-job", "--job-config", str(config)), "resources.requests_memory", "quantity")


def test_unknown_profile_lists_known_ones() -> None:
    result = run_cli("render-job", "--profile", "nope", "--job-config", str(EXAMPLE))
    assert_one_line_error(result, "unknown profile 'nope'", "defaults, local, nrp")


def test_missing_job_config_file() -> None:
    assert_one_line_error(run_cli("render-job", "--job-config", "/no/such/job.yaml"), "/no/such/job.yaml", "does not exist")


def test_missing_image_names_the_fix(tmp_path: Path) -> None:
    profile = tmp_path / "bare.yaml"
    profile.write_text("name: bare\n")
    result = run_cli("render-job", "--profile-file", str(profile), "--job-config", str(EXAMPLE))
    assert_one_line_error(result, "no container image", "--image")


def test_user_profile_on_the_search_path_is_found(tmp_path: Path) -> None:
    (tmp_path / "mysite.yaml").write_text("extends: nrp\ndefault_s3_prefix: s3://lab-bucket/jobs/\nnamespace: mylab\n"
                                          f"default_images: {{cpu: '{IMAGE}'}}\n")
    result = run_cli("render-job", "--profile", "mysite", "--job-config", str(EXAMPLE), env={"SPIKEBATCH_PROFILE_PATH": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    manifest = yaml.safe_load(result.stdout)
    assert manifest["metadata"]["namespace"] == "mylab"
    assert manifest["spec"]["template"]["spec"]["containers"][0]["image"] == IMAGE


def test_output_into_missing_folder_writes_nothing(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "job.yaml"
    assert_one_line_error(
        run_cli("render-job", "--job-config", str(EXAMPLE), "--output-manifest", str(target)), "does not exist"
    )
    assert not target.parent.exists()


def test_debug_shows_the_traceback() -> None:
    result = run_cli("--debug", "render-job", "--profile", "nope", "--job-config", str(EXAMPLE))
    assert result.returncode == 2
    assert "Traceback" in result.stderr
