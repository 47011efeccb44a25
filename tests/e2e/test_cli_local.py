"""Every workflow command on the embedded ``local`` profile, as a user runs it: jobs
are real local processes, artifacts real files under a temporary data folder."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from cli_support import Cli, assert_one_line_error, cli, write_workspace  # noqa: F401  (cli is a fixture)

DOUBLER = 'x = workspace.get("in", "x")\nprint("doubling", x)\nworkspace.store("out", "y", x * 2)\n'
CRASHER = 'print("about to fail")\nraise ValueError("bad electrode map")\n'


def _script(cli: Cli, text: str, name: str = "analysis.py") -> Path:
    path = cli.root / name
    path.write_text(text)
    return path


def _retrieved(folder: Path):
    from spikebatch.workspace import DirectoryWorkspace

    return DirectoryWorkspace(folder, create=False)


def test_submit_workspace_wait_retrieve_then_every_follow_up_command(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=21)
    script = _script(cli, DOUBLER)
    out = cli.root / "results"
    submitted = cli("submit-workspace", "--workspace", str(workspace), "--script", str(script),
                    "--metadata", "experiment=organoid-7", "--wait", "--retrieve-to", str(out))
    assert submitted.returncode == 0, submitted.stderr
    keys = submitted.keys
    run_id, job = keys["RUN_ID"], keys["JOB_NAME"]
    assert re.fullmatch(r"analysis-[a-z0-9]{6}", job)  # named after its script, analysis.py
    assert keys["FINAL_STATUS"] == "Complete"
    assert keys["OUTPUT_PREFIX"].startswith("file://") and run_id in keys["OUTPUT_PREFIX"]
    assert keys["RETRIEVED_TO"] == str(out.resolve())
    assert _retrieved(out / "workspace").get("out", "y") == 42
    # human output went to stderr, plain (not a terminal): no escape codes, no bars
    assert f"job {job}: Complete" in submitted.stderr
    assert "\x1b[" not in submitted.stderr

    # the local record is the SubmitResult, findable by run id
    (record,) = cli.records()
    assert record["run_id"] == run_id and record["job_name"] == job and record["job_type"] == "workspace"
    assert record["profile_name"] == "local" and record["record"]["last_state"] == "Complete"
    assert (cli.state / "submissions" / f"{run_id}.json").is_file()

    waited = cli("wait", run_id)
    assert waited.returncode == 0, waited.stderr
    assert waited.keys == {"JOB_NAME": job, "RUN_ID": run_id, "FINAL_STATUS": "Complete"}

    status = cli("job-status", run_id)
    assert status.returncode == 0 and status.keys["JOB_STATUS"] == "Complete" and status.keys["JOB_NAME"] == job

    logs = cli("job-logs", run_id)
    assert logs.returncode == 0, logs.stderr
    assert "doubling 21" in logs.stdout.splitlines()

    again = cli.root / "again"
    retrieved = cli("retrieve", run_id, "--to", str(again))
    assert retrieved.returncode == 0, retrieved.stderr
    assert retrieved.keys["RETRIEVED_TO"] == str(again.resolve())
    assert _retrieved(again / "workspace").get("out", "y") == 42

    by_name = cli("-o", "json", "job-status", job)
    assert by_name.returncode == 0
    assert by_name.json() == {"job_name": job, "run_id": run_id, "job_status": "Complete"}

    listed = cli("list-jobs")
    assert listed.returncode == 0, listed.stderr
    header, *rows = listed.stdout.splitlines()
    assert header.split()[:3] == ["NAME", "STATE", "AGE"]
    assert [row.split()[0] for row in rows] == [job]
    assert rows[0].split()[1] == "Complete" and run_id in rows[0] and "workspace" in rows[0]

    as_json = cli("list-jobs", "--output", "json").json()
    (entry,) = as_json["jobs"]
    assert entry["name"] == job and entry["state"] == "Complete" and entry["run_id"] == run_id
    assert isinstance(entry["age_seconds"], int)


def test_a_failing_script_exits_1_and_its_error_is_in_the_logs(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=1)
    failed = cli("submit-workspace", "--workspace", str(workspace), "--script", str(_script(cli, CRASHER)), "--wait")
    assert failed.returncode == 1, failed.stderr
    assert failed.keys["FINAL_STATUS"] == "Failed"
    error = [line for line in failed.error_lines if line.startswith("error: ")]
    assert len(error) == 1 and "failed" in error[0] and "job-logs" in error[0]
    assert "Traceback" not in failed.stderr  # the script's traceback stays in the job's log
    logs = cli("job-logs", failed.keys["RUN_ID"])
    assert "about to fail" in logs.stdout
    assert "ValueError: bad electrode map" in logs.stdout
    retrieve = cli("retrieve", failed.keys["RUN_ID"], "--to", str(cli.root / "out"))
    assert_one_line_error(retrieve, 1, "did not succeed")


def test_json_output_is_one_document_with_the_same_keys(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=5)
    result = cli("submit-workspace", "--workspace", str(workspace), "--script", str(_script(cli, DOUBLER)),
                 "--wait", "--output", "json")
    assert result.returncode == 0, result.stderr
    document = result.json()
    assert document["final_status"] == "Complete"
    assert document["job_type"] == "workspace" and document["namespace"] == "default"
    assert set(document) >= {"job_name", "run_id", "output_prefix", "logs_prefix"}
    logs = cli("job-logs", document["run_id"], "-o", "json").json()
    assert "doubling 5" in logs["lines"]


def test_quiet_leaves_stderr_empty_on_success(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=2)
    result = cli("--quiet", "submit-workspace", "--workspace", str(workspace), "--script",
                 str(_script(cli, DOUBLER)), "--wait")
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.keys["FINAL_STATUS"] == "Complete"


def test_progress_bars_and_colours_on_a_terminal(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=3)
    big = cli.root / "weights.bin"
    big.write_bytes(b"\x01" * (3 * 1024 * 1024))
    result = cli.with_tty_stderr("submit-workspace", "--workspace", str(workspace), "--script",
                                 str(_script(cli, DOUBLER)), "--input", str(big), "--wait",
                                 "--retrieve-to", str(cli.root / "out"))
    assert result.returncode == 0, result.stderr
    screen = result.stderr
    assert "uploading inputs" in screen and "downloading outputs" in screen
    assert re.search(r"3\.\d+/3\.\d+ MB", screen)  # bytes done / total
    assert "\x1b[" in screen  # colour and cursor control: it is a terminal
    assert "Complete" in screen
    assert result.keys["FINAL_STATUS"] == "Complete"  # stdout stays plain KEY=VALUE


def test_deploy_job_follow_logs_then_delete(cli: Cli) -> None:
    config = cli.root / "job.yaml"
    config.write_text("name_prefix: Hello\ncontainer:\n  command: [python, -c, \"print('hello from the job')\"]\n")
    deployed = cli("deploy-job", "--job-config", str(config), "--follow-logs")
    assert deployed.returncode == 0, deployed.stderr
    job = deployed.keys["JOB_NAME"]
    assert job.startswith("hello-") and deployed.keys["FINAL_STATUS"] == "Complete"
    assert "RUN_ID" in deployed.keys
    assert "hello from the job" in deployed.stderr  # logs are for a person: stderr
    assert "hello from the job" not in deployed.stdout
    deleted = cli("job-delete", job)
    assert deleted.returncode == 0 and deleted.keys["DELETED_JOB"] == job
    assert job not in cli.local_jobs()
    (record,) = cli.records()
    assert record["record"]["last_state"] == "Deleted"  # what list-jobs --offline shows
    assert_one_line_error(cli("job-status", job), 2, job)
    assert_one_line_error(cli("job-delete", job), 2, "does not exist")


def test_deploy_job_output_manifest_writes_the_submitted_manifest(cli: Cli) -> None:
    import yaml

    config = cli.root / "job.yaml"
    config.write_text("container:\n  command: [python, -c, \"print(1)\"]\n")
    target = cli.root / "submitted.yaml"
    result = cli("deploy-job", "--job-config", str(config), "--output-manifest", str(target), "--wait")
    assert result.returncode == 0, result.stderr
    assert result.keys["MANIFEST_PATH"] == str(target.resolve())
    manifest = yaml.safe_load(target.read_text())
    assert manifest["metadata"]["name"] == result.keys["JOB_NAME"]
    assert manifest["metadata"]["labels"]["spikebatch.io/run-id"] == result.keys["RUN_ID"]


def test_deploy_job_render_only_submits_nothing(cli: Cli) -> None:
    import yaml

    config = cli.root / "job.yaml"
    config.write_text("container:\n  command: [python, -c, \"print(1)\"]\n")
    result = cli("deploy-job", "--job-config", str(config), "--render-only")
    assert result.returncode == 0, result.stderr
    assert yaml.safe_load(result.stdout)["kind"] == "Job"
    assert cli.local_jobs() == [] and cli.records() == []


def test_wait_timeout_exits_4_and_the_job_keeps_running(cli: Cli) -> None:
    config = cli.root / "slow.yaml"
    config.write_text("container:\n  command: [python, -c, \"import time; time.sleep(60)\"]\n")
    result = cli("deploy-job", "--job-config", str(config), "--wait", "--max-wait-seconds", "1")
    try:
        assert result.returncode == 4, result.stderr
        assert result.keys["FINAL_STATUS"] == "Timeout"
        assert [line for line in result.error_lines if line.startswith("error:")][0].count("keeps running") == 1
        status = cli("job-status", result.keys["RUN_ID"])
        assert status.keys["JOB_STATUS"] in ("Pending", "Running")
        waited = cli("wait", result.keys["RUN_ID"], "--max-wait-seconds", "1")
        assert waited.returncode == 4 and waited.keys["FINAL_STATUS"] == "Timeout"
    finally:
        assert cli("job-delete", result.keys["JOB_NAME"]).returncode == 0


def test_list_jobs_offline_reads_only_the_local_records(cli: Cli, tmp_path: Path) -> None:
    config = cli.root / "job.yaml"
    config.write_text("container:\n  command: [python, -c, \"print(1)\"]\n")
    first = cli("deploy-job", "--job-config", str(config), "--wait")
    second = cli("deploy-job", "--job-config", str(config))
    assert first.returncode == 0 and second.returncode == 0
    # a profile whose cluster does not exist: --offline must not try to reach it
    unreachable = tmp_path / "gone.yaml"
    unreachable.write_text("name: gone\nbackend: kubernetes\nstorage_backend: local\n")
    offline = cli("--kubeconfig", str(tmp_path / "no-such-kubeconfig"), "list-jobs", "--offline",
                  "--profile-file", str(unreachable))
    assert offline.returncode == 0, offline.stderr
    header, *rows = offline.stdout.splitlines()
    assert "LAST STATE" in header
    by_name = {row.split()[0]: row for row in rows}
    assert set(by_name) == {first.keys["JOB_NAME"], second.keys["JOB_NAME"]}
    assert "Complete" in by_name[first.keys["JOB_NAME"]]
    assert first.keys["RUN_ID"] in by_name[first.keys["JOB_NAME"]]
    document = cli("list-jobs", "--offline", "-o", "json").json()
    assert document["source"] == "local records"
    assert {job["run_id"] for job in document["jobs"]} == {first.keys["RUN_ID"], second.keys["RUN_ID"]}


def test_list_jobs_offline_warns_about_an_unreadable_record(cli: Cli) -> None:
    folder = cli.state / "submissions"
    folder.mkdir(parents=True)
    (folder / "20260101-000000-broken00.json").write_text("{not json")
    result = cli("list-jobs", "--offline")
    assert result.returncode == 0
    assert "warning:" in result.stderr and "20260101-000000-broken00.json" in result.stderr


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SpikeInterface recording folder with ground truth units."""
    import spikeinterface.core as si

    folder = tmp_path_factory.mktemp("rec") / "organoid_rec"
    import warnings

    rec, _ = si.generate_ground_truth_recording(durations=[2.0], num_channels=4, num_units=2, seed=7)
    with warnings.catch_warnings():  # a generated recording has no provenance to save; that is fine here
        warnings.filterwarnings("ignore", message="The extractor is not serializable")
        rec.save(folder=folder, verbose=False)
    return folder


def test_submit_sorting_sends_the_preset_and_typed_overrides(cli: Cli, recording: Path) -> None:
    import zipfile

    result = cli("submit-sorting", "--recording", str(recording), "--preset", "tridesclous2",
                 "--set", "apply_preprocessing=false", "--set", "freq_min=250", "--metadata", "sample=organoid-7")
    try:
        assert result.returncode == 0, result.stderr
        run_id = result.keys["RUN_ID"]
        bundle = cli.data / "inputs" / run_id / "bundle.zip"
        with zipfile.ZipFile(bundle) as archive:
            manifest = json.loads(archive.read("manifest.json"))
        config = manifest["sorting"]["config"]
        assert config["preset"] == "tridesclous2"
        assert config["overrides"] == {"apply_preprocessing": False, "freq_min": 250}  # YAML scalars, typed
        assert manifest["metadata"] == {"sample": "organoid-7"}
        assert [r["name"] for r in manifest["recordings"]] == ["organoid_rec"]
        (record,) = cli.records()
        assert record["job_type"] == "sorting" and record["run_id"] == run_id
    finally:
        if result.returncode == 0:
            cli("job-delete", result.keys["JOB_NAME"])


def test_submit_sorting_unknown_parameter_uploads_nothing(cli: Cli, recording: Path) -> None:
    result = cli("submit-sorting", "--recording", str(recording), "--preset", "tridesclous2", "--set", "no_such_knob=1")
    assert_one_line_error(result, 2, "no_such_knob")
    assert cli.data_files() == [] and cli.local_jobs() == [] and cli.records() == []


def test_ctrl_c_while_waiting_leaves_the_job_running(cli: Cli) -> None:
    # Each step waits for a condition, not a moment: the job runs until it is deleted
    # (it cannot end first), SIGINT goes once `wait` has printed its first status line
    # (the wait is under way), to a process whose SIGINT is at its default even when the
    # suite was started in the background, and the end of the process is waited for.
    config = cli.root / "slow.yaml"
    config.write_text("container:\n  command: [python, -c, \"import time; time.sleep(86400)\"]\n")
    deployed = cli("deploy-job", "--job-config", str(config))
    assert deployed.returncode == 0, deployed.stderr
    run_id, job = deployed.keys["RUN_ID"], deployed.keys["JOB_NAME"]
    try:
        waiting = cli.start("wait", run_id)
        first = waiting.next_stderr_line()  # "job NAME: Running" once the wait is under way
        assert first.startswith(f"job {job}: "), first
        waiting.interrupt()
        ended = waiting.finish()
        assert ended.returncode == 130, ended.stderr
        rest = ended.stderr[len(first):]
        errors = [line for line in rest.splitlines() if line.strip()]
        assert len(errors) == 1 and "keeps running" in errors[0] and f"spikebatch wait {run_id}" in errors[0], rest
        assert "Traceback" not in rest and ended.stdout == ""
        assert cli("job-status", run_id).keys["JOB_STATUS"] in ("Pending", "Running")
    finally:
        cli("job-delete", job)


def test_job_logs_of_a_deleted_job_come_from_the_saved_runner_log(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=4)
    done = cli("submit-workspace", "--workspace", str(workspace), "--script", str(_script(cli, DOUBLER)), "--wait")
    assert done.returncode == 0, done.stderr
    assert cli("job-delete", done.keys["RUN_ID"]).returncode == 0
    logs = cli("job-logs", done.keys["RUN_ID"])
    assert logs.returncode == 0, logs.stderr
    assert "doubling 4" in logs.stdout.splitlines()
    assert "gone from the backend" in logs.stderr and done.keys["LOGS_PREFIX"] in logs.stderr
