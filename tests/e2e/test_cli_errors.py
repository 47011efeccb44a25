"""Bad input gives the documented exit code and one ``error:`` line, and leaves
nothing behind: no upload, no job, no record."""

from __future__ import annotations

from pathlib import Path

import pytest
from cli_support import EXAMPLE, Cli, assert_one_line_error, cli, closed_port, write_kubeconfig, write_workspace  # noqa: F401

IDLE = "container:\n  command: [sleep, infinity]\n"


def _nothing_created(cli: Cli) -> None:
    assert cli.data_files() == [], "something was uploaded"
    assert cli.local_jobs() == [], "a job was created"
    assert cli.records() == [], "a submission was recorded"


@pytest.fixture
def workspace_args(cli: Cli) -> list:
    workspace = write_workspace(cli.root / "ws", x=1)
    script = cli.root / "analysis.py"
    script.write_text("print(workspace.get('in', 'x'))\n")
    return ["--workspace", str(workspace), "--script", str(script)]


@pytest.mark.parametrize("command", ["deploy-job", "policy-check", "submit-workspace"])
def test_malformed_yaml(cli: Cli, workspace_args: list, command: str) -> None:
    config = cli.root / "bad.yaml"
    config.write_text("container:\n  command: [python\n  args: x\n")
    extra = workspace_args if command == "submit-workspace" else []
    assert_one_line_error(cli(command, "--job-config", str(config), *extra), 2, "bad.yaml", "line")
    _nothing_created(cli)


@pytest.mark.parametrize("command", ["deploy-job", "policy-check", "render-job"])
def test_unknown_profile_lists_the_known_ones(cli: Cli, command: str) -> None:
    result = cli("--profile", "nope", command, "--job-config", str(EXAMPLE))
    assert_one_line_error(result, 2, "unknown profile 'nope'", "defaults, local, nrp")
    _nothing_created(cli)


def test_unknown_profile_for_list_jobs_and_wait(cli: Cli) -> None:
    assert_one_line_error(cli("list-jobs", "--profile", "nope"), 2, "unknown profile 'nope'")
    assert_one_line_error(cli("wait", "some-job", "--profile", "nope"), 2, "unknown profile 'nope'")


@pytest.mark.parametrize(
    "args, fragment",
    [
        (["deploy-job", "--job-config", "/no/such/job.yaml"], "/no/such/job.yaml"),
        (["submit-workspace", "--workspace", "/no/such/ws", "--script", "/no/such.py"], "/no/such/ws"),
        (["submit-sorting", "--recording", "/no/such/recording.nwb"], "/no/such/recording.nwb"),
        (["--profile-file", "/no/such/profile.yaml", "list-jobs"], "/no/such/profile.yaml"),
        (["profiles", "validate", "/no/such/profile.yaml"], "/no/such/profile.yaml"),
    ],
)
def test_missing_file(cli: Cli, args: list, fragment: str) -> None:
    assert_one_line_error(cli(*args), 2, fragment, "does not exist")
    _nothing_created(cli)


def test_missing_script_uploads_nothing(cli: Cli, workspace_args: list) -> None:
    args = workspace_args[:2] + ["--script", str(cli.root / "missing.py")]
    assert_one_line_error(cli("submit-workspace", *args), 2, "missing.py", "does not exist")
    _nothing_created(cli)


def test_folder_that_is_not_a_workspace(cli: Cli, workspace_args: list) -> None:
    folder = cli.root / "plain"
    folder.mkdir()
    args = ["--workspace", str(folder), *workspace_args[2:]]
    assert_one_line_error(cli("submit-workspace", *args), 2, "no spikebatch directory workspace")
    _nothing_created(cli)


@pytest.mark.parametrize("command", ["deploy-job", "submit-workspace"])
def test_blocked_policy_submits_nothing(cli: Cli, workspace_args: list, command: str) -> None:
    config = cli.root / "idle.yaml"
    config.write_text(IDLE)
    extra = workspace_args if command == "submit-workspace" else []
    result = cli(command, "--job-config", str(config), *extra)
    assert_one_line_error(result, 2, "policy blocked", "sleep_in_batch_job", "--allow-policy-risk")
    _nothing_created(cli)


def test_policy_check_exits_2_when_blocked_and_submits_nothing(cli: Cli) -> None:
    config = cli.root / "idle.yaml"
    config.write_text(IDLE)
    result = cli("policy-check", "--job-config", str(config))
    assert result.returncode == 2
    assert result.keys["POLICY"] == "BLOCK" and result.keys["BLOCK"] == "1"
    errors = [line for line in result.error_lines if line.startswith("error:")]
    assert len(errors) == 1 and "sleep_in_batch_job" in errors[0]
    assert "policy: [BLOCK] sleep_in_batch_job: " in result.stderr  # the finding itself, for a person
    _nothing_created(cli)


def test_unreachable_cluster_exits_3_before_anything_is_created(cli: Cli, workspace_args: list, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kubeconfig", f"https://127.0.0.1:{closed_port()}")
    profile = tmp_path / "cluster.yaml"
    profile.write_text("name: cluster\nbackend: kubernetes\nstorage_backend: local\n"
                       "default_images: {cpu: 'runner:1.0'}\n")
    common = ["--kubeconfig", str(kubeconfig), "--profile-file", str(profile)]
    config = cli.root / "job.yaml"
    config.write_text("container:\n  command: [python, -c, 'print(1)']\n")
    assert_one_line_error(cli(*common, "deploy-job", "--job-config", str(config)), 3, "cannot reach", "127.0.0.1")
    submit = cli(*common, "submit-workspace", *workspace_args)
    assert_one_line_error(submit, 3, "cannot reach")
    _nothing_created(cli)
    assert_one_line_error(cli(*common, "job-status", "some-job"), 3, "cannot reach")
    assert_one_line_error(cli(*common, "list-jobs"), 3, "cannot reach")


def test_usage_errors_are_one_line_with_exit_2(cli: Cli) -> None:
    assert_one_line_error(cli("deploy-job"), 2, "Missing option '--job-config'", "deploy-job --help")
    assert_one_line_error(cli("deploy-job", "--job-config", str(EXAMPLE), "--no-such-flag"), 2, "--no-such-flag")
    assert_one_line_error(cli("no-such-command"), 2, "no-such-command")
    assert_one_line_error(cli("--output", "yaml", "list-jobs"), 2, "yaml")
    assert_one_line_error(cli("list-jobs", "--output", "xml", "--offline"), 2, "xml")
    assert_one_line_error(cli("wait", "x", "--max-wait-seconds", "-1"), 2, "--max-wait-seconds")


def test_bad_key_value_options(cli: Cli, tmp_path: Path, workspace_args: list) -> None:
    recording = tmp_path / "rec.nwb"
    recording.write_bytes(b"\0")
    assert_one_line_error(cli("submit-sorting", "--recording", str(recording), "--set", "threshold"), 2,
                          "--set", "key=value")
    assert_one_line_error(cli("submit-workspace", *workspace_args, "--metadata", "=x"), 2, "--metadata")
    assert_one_line_error(cli("submit-sorting", "--recording", str(recording), "--set", "x=[1, 2"), 2, "not valid YAML")
    _nothing_created(cli)


def test_unknown_run_id_and_job(cli: Cli) -> None:
    assert_one_line_error(cli("retrieve", "20260101-000000-abcdefgh", "--to", str(cli.root / "out")), 2,
                          "20260101-000000-abcdefgh", "no local record")
    assert_one_line_error(cli("job-logs", "no-such-job"), 2, "no-such-job")
    assert_one_line_error(cli("wait", "no-such-job", "--max-wait-seconds", "5"), 2, "no-such-job")


def test_retrieve_into_a_file_is_refused(cli: Cli) -> None:
    target = cli.root / "afile"
    target.write_text("x")
    assert_one_line_error(cli("retrieve", "some-job", "--to", str(target)), 2, "is a file")


def test_corrupt_record_names_the_file(cli: Cli) -> None:
    folder = cli.state / "submissions"
    folder.mkdir(parents=True)
    (folder / "20260101-000000-abcdefgh.json").write_text("[1, 2]")
    assert_one_line_error(cli("wait", "20260101-000000-abcdefgh"), 2, "20260101-000000-abcdefgh.json", "delete it")


def test_debug_adds_the_traceback(cli: Cli) -> None:
    result = cli("--debug", "deploy-job", "--profile", "nope", "--job-config", str(EXAMPLE))
    assert result.returncode == 2
    assert "Traceback" in result.stderr and "error: unknown profile 'nope'" in result.stderr


def test_unreachable_storage_exits_3_and_submits_no_job(cli: Cli, workspace_args: list, tmp_path: Path) -> None:
    profile = tmp_path / "s3gone.yaml"
    profile.write_text("name: s3gone\nbackend: local\nstorage_backend: boto3\ndefault_s3_prefix: s3://bucket/jobs/\n"
                       f"endpoint_url: http://127.0.0.1:{closed_port()}\ndefault_images: {{cpu: 'runner:1.0'}}\n")
    result = cli("--profile-file", str(profile), "submit-workspace", *workspace_args,
                 env={"AWS_ACCESS_KEY_ID": "test-key-id", "AWS_SECRET_ACCESS_KEY": "test-secret-value"})
    assert_one_line_error(result, 3, "cannot reach the storage endpoint", "127.0.0.1")
    assert "test-secret-value" not in result.stderr
    _nothing_created(cli)
