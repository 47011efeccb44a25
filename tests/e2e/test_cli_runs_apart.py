"""Runs you can tell apart and failures that say why (issue 16 items 1, 2, 5), through
the CLI on the local profile: job names say what runs, list-jobs / show / the records
carry kind, script, state and reason, retrieve of a failed run names the reason, a
re-submission says nothing was uploaded, and library submissions are recorded too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from cli_support import Cli, assert_one_line_error, cli, write_workspace  # noqa: F401  (cli is a fixture)

DEADLINE_JOB = 'container:\n  command: [sleep, "60"]\nactive_deadline_seconds: 2\n'


def _script(cli: Cli, name: str, text: str) -> Path:
    path = cli.root / name
    path.write_text(text)
    return path


def test_a_deadline_failure_is_named_by_list_jobs_show_retrieve_and_the_record(cli: Cli) -> None:
    config = cli.root / "slow.yaml"
    config.write_text(DEADLINE_JOB)
    failed = cli("deploy-job", "--job-config", str(config), "--name", "Slow Sleep", "--wait")
    assert failed.returncode == 1, failed.stderr
    job, run_id = failed.keys["JOB_NAME"], failed.keys["RUN_ID"]
    assert job.startswith("slow-sleep-")
    assert "DeadlineExceeded" in failed.stderr

    (record,) = cli.records()
    assert record["record"]["last_state"] == "Failed"
    assert record["record"]["last_reason"].startswith("DeadlineExceeded")
    assert record["record"]["details"]["kind"] == "prepared"

    for offline in ([], ["--offline"]):
        listed = cli("list-jobs", *offline)
        assert listed.returncode == 0, listed.stderr
        header, row = listed.stdout.splitlines()
        assert "REASON" in header.split() and "DeadlineExceeded" in row.split()
        (entry,) = cli("list-jobs", *offline, "-o", "json").json()["jobs"]
        assert entry["reason"].startswith("DeadlineExceeded") and entry["state"] == "Failed"

    shown = cli("show", run_id)
    assert shown.returncode == 0, shown.stderr
    assert shown.keys["STATE"] == "Failed" and shown.keys["REASON"].startswith("DeadlineExceeded")
    assert shown.keys["KIND"] == "prepared" and shown.keys["JOB_NAME"] == job
    as_json = cli("show", job, "-o", "json").json()
    assert as_json["live"]["reason"].startswith("DeadlineExceeded") and as_json["run_id"] == run_id


def test_workspace_jobs_are_named_by_their_script_and_a_failed_run_says_why_on_retrieve(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=1)
    script = _script(cli, "count_units.py", 'workspace.get("rec1", "no_such_key")\n')
    failed = cli("submit-workspace", "--workspace", str(workspace), "--script", str(script), "--wait")
    assert failed.returncode == 1, failed.stderr
    job, run_id = failed.keys["JOB_NAME"], failed.keys["RUN_ID"]
    assert job.startswith("count-units-")
    # the missing key is named (with the keys there), not a silent None
    assert "no_such_key" in failed.stderr and "MissingItemError" in failed.stderr

    retrieved = cli("retrieve", run_id, "--to", str(cli.root / "out"))
    assert_one_line_error(retrieved, 1, job, "no_such_key")

    shown = cli("show", run_id).keys
    assert shown["SCRIPT"] == "count_units.py" and shown["STATE"] == "Failed" and "no_such_key" in shown["REASON"]
    assert shown["OUTPUT_PREFIX"].startswith("file://")
    (row,) = cli("list-jobs", "--offline").stdout.splitlines()[1:]
    assert row.split()[0] == job and "count_units.py" in row.split() and "Error" in row.split()


def test_a_resubmission_says_it_uploaded_nothing(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=1)
    big = cli.root / "traces.npy"
    np.save(big, np.zeros(2_000_000))  # 16 MB: a blob, not a file inside the bundle
    script = _script(cli, "noop.py", "pass\n")
    args = ("submit-workspace", "--workspace", str(workspace), "--script", str(script), "--input", str(big))
    first = cli(*args)
    assert first.returncode == 0, first.stderr
    assert "staged: 16.0 MB uploaded" in first.stderr
    again = cli(*args)
    assert again.returncode == 0, again.stderr
    staged = [line for line in again.stderr.splitlines() if line.startswith("staged:")]
    assert staged == ["staged: 0 B uploaded, 1 input already stored (16.0 MB)"]
    assert "uploading inputs:" not in again.stderr  # no summary claiming the full size at an absurd rate


def test_submissions_through_the_library_appear_in_list_jobs_offline(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=1)
    script = _script(cli, "library_run.py", "pass\n")
    program = (
        "from spikebatch.session import RunSession\n"
        "from spikebatch.workspace import DirectoryWorkspace\n"
        "session = RunSession.from_profile('local')\n"
        f"result = session.submit_workspace_job(workspace=DirectoryWorkspace({str(workspace)!r}), "
        f"script={str(script)!r}, job_spec={{}})\n"
        "print(result.job_name)\n"
    )
    ran = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, env=cli.env,
                         cwd=cli.root, timeout=180)
    assert ran.returncode == 0, ran.stderr
    job = ran.stdout.strip()
    assert job.startswith("library-run-")
    (entry,) = cli("list-jobs", "--offline", "-o", "json").json()["jobs"]
    assert entry["name"] == job and entry["script"] == "library_run.py" and entry["job_type"] == "workspace"
    waited = cli("wait", entry["run_id"])  # the record finds the job again, like a CLI one
    assert waited.returncode == 0, waited.stderr


def test_a_bad_name_is_refused_before_anything_is_submitted(cli: Cli) -> None:
    config = cli.root / "job.yaml"
    config.write_text('container:\n  command: [python, -c, "print(1)"]\n')
    refused = cli("deploy-job", "--job-config", str(config), "--name", "***")
    assert_one_line_error(refused, 2, "--name", "***")
    assert cli.local_jobs() == [] and cli.records() == []
    assert os.path.isdir(cli.root)
