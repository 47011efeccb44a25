"""The local profile holds a job to its resources as a cluster does, so a job that passes
on a laptop does not die on the cluster: over ``limits.memory`` it ends OOMKilled (exit
code 137, the reason in job-status, wait and a batch's status), and ``limits.cpu``
bounds NumPy/BLAS threads (the job's own env winning). Also what the command line
does around a wait: Ctrl-C says how to pick the run up again (exit 130), and
``--quiet`` is accepted after the command name. Real processes throughout, through the
CLI on the local profile."""

from __future__ import annotations

import json
import textwrap
import warnings
from pathlib import Path

import pytest

from cli_support import Cli, assert_one_line_error, cli, write_workspace  # noqa: F401

#: Holds 20 MB more every 50 ms, up to 2 GB (far past any limit below, far below the
#: machine), then says it survived: only a kill stops it before.
GREEDY = textwrap.dedent("""\
    import time
    held = []
    for step in range(100):
        held.append(b"x" * 20_000_000)
        print("holding", 20 * (step + 1), "MB", flush=True)
        time.sleep(0.05)
    print("survived")
""")

#: Prints the thread variables and the thread pools NumPy's BLAS has, as one JSON line.
THREADS_REPORT = textwrap.dedent("""\
    import json, os
    import numpy, threadpoolctl
    names = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_MAX_THREADS",
             "NUMBA_NUM_THREADS", "LOKY_MAX_CPU_COUNT", "SPIKEBATCH_CPU_LIMIT")
    pools = {pool["internal_api"]: pool["num_threads"] for pool in threadpoolctl.threadpool_info()}
    print("THREADS " + json.dumps({"env": {name: os.environ.get(name) for name in names}, "pools": pools}))
""")


def _job_config(cli: Cli, name: str, script: str, resources: dict, env: dict | None = None) -> Path:
    """A job config running ``script`` with ``resources`` (requests = limits, so the
    policy's checks pass as they would for a real job)."""
    config = {"name_prefix": name, "container": {"command": ["python", "-c", script], "env": env or {}},
              "resources": resources}
    path = cli.root / f"{name}.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


def _threads_line(logs: str) -> dict:
    (line,) = [line for line in logs.splitlines() if line.startswith("THREADS ")]
    return json.loads(line[len("THREADS "):])


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0))


def test_a_job_over_its_memory_limit_ends_oomkilled(cli: Cli) -> None:
    config = _job_config(cli, "greedy", GREEDY, {"requests_memory": "150Mi", "limits_memory": "150Mi"})
    waited = cli("deploy-job", "--job-config", str(config), "--wait")
    assert waited.returncode == 1, waited.stderr
    assert waited.keys["FINAL_STATUS"] == "Failed"
    (error,) = [line for line in waited.error_lines if line.startswith("error:")]
    assert "OOMKilled (exit code 137)" in error and "over its memory limit of 150.0 MiB" in error, error
    assert "--memory" in error  # the fix is named
    run_id, job = waited.keys["RUN_ID"], waited.keys["JOB_NAME"]

    status = cli("job-status", run_id)
    assert status.returncode == 0, status.stderr
    assert status.keys["JOB_STATUS"] == "Failed"
    assert status.keys["REASON"] == "OOMKilled" and status.keys["EXIT_CODE"] == "137"
    assert "resources.limits.memory" in status.keys["MESSAGE"]
    assert cli("job-status", run_id, "-o", "json").json()["reason"] == "OOMKilled"

    again = cli("wait", run_id)
    assert again.returncode == 1 and again.keys["FINAL_STATUS"] == "Failed"
    (error,) = [line for line in again.error_lines if line.startswith("error:")]
    assert "OOMKilled (exit code 137)" in error, again.stderr

    logs = cli("job-logs", job).stdout.splitlines()
    assert "survived" not in logs  # killed on the way, not after
    assert logs[-1].startswith("spikebatch: killed: the job held ")
    held = [int(line.split()[1]) for line in logs if line.startswith("holding ")]
    assert held and max(held) < 400, held  # caught within a few samples of passing 150 MiB


def test_a_job_within_its_memory_limit_is_left_alone(cli: Cli) -> None:
    script = "data = b'x' * 50_000_000\nprint('held', len(data) // 1_000_000, 'MB')\n"
    config = _job_config(cli, "modest", script, {"requests_memory": "200Mi", "limits_memory": "200Mi"})
    waited = cli("deploy-job", "--job-config", str(config), "--wait")
    assert waited.returncode == 0, waited.stderr
    assert "held 50 MB" in cli("job-logs", waited.keys["RUN_ID"]).stdout


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small SpikeInterface recording folder."""
    import spikeinterface.core as si

    folder = tmp_path_factory.mktemp("rec") / "organoid_rec"
    rec, _ = si.generate_ground_truth_recording(durations=[2.0], num_channels=4, num_units=2, seed=7)
    with warnings.catch_warnings():  # a generated recording has no provenance to save; that is fine here
        warnings.filterwarnings("ignore", message="The extractor is not serializable")
        rec.save(folder=folder, verbose=False)
    return folder


def test_a_sorting_batch_over_its_memory_limit_shows_oomkilled_per_recording(cli: Cli, recording: Path) -> None:
    # 64 MiB: less than loading SpikeInterface's sorters takes, so the pod of index 0
    # is killed on its way, whatever the machine.
    config = cli.root / "small.yaml"
    config.write_text("resources: {requests_memory: 64Mi, limits_memory: 64Mi}\n")
    waited = cli("submit-sorting", "--recording", str(recording), "--preset", "tridesclous2", "--job-config",
                 str(config), "--retries-per-recording", "0", "--wait")
    assert waited.returncode == 1, waited.stderr
    assert "rec" in waited.stderr and "OOMKilled (exit code 137)" in waited.stderr
    run_id = waited.keys["RUN_ID"]
    table = cli("status", run_id, "-o", "json")
    assert table.returncode == 0, table.stderr
    (row,) = table.json()["recordings"]
    assert row["state"] == "failed"
    assert row["reason"] == "OOMKilled" and row["exit_code"] == 137, row


def test_numpy_threads_follow_the_cpu_limit(cli: Cli) -> None:
    # 500m rounds up to one CPU: one BLAS thread where NumPy would start one per core.
    config = _job_config(cli, "threads", THREADS_REPORT, {"requests_cpu": "500m", "limits_cpu": "500m"})
    waited = cli("deploy-job", "--job-config", str(config), "--wait")
    assert waited.returncode == 0, waited.stderr
    seen = _threads_line(cli("job-logs", waited.keys["RUN_ID"]).stdout)
    assert set(seen["env"].values()) == {"1"}, seen
    assert seen["pools"] and set(seen["pools"].values()) == {1}, seen


def test_the_jobs_own_thread_env_wins_over_the_cpu_limit(cli: Cli) -> None:
    expected = str(min(2, _cores()))  # 1.5 CPUs rounds up to 2, but no more than there are cores
    config = _job_config(cli, "own-threads", THREADS_REPORT, {"requests_cpu": "1500m", "limits_cpu": "1500m"},
                         env={"OMP_NUM_THREADS": "3"})
    waited = cli("deploy-job", "--job-config", str(config), "--wait")
    assert waited.returncode == 0, waited.stderr
    seen = _threads_line(cli("job-logs", waited.keys["RUN_ID"]).stdout)
    assert seen["env"]["OMP_NUM_THREADS"] == "3"  # set by the job: left alone
    assert {k: v for k, v in seen["env"].items() if k != "OMP_NUM_THREADS"} == {
        "OPENBLAS_NUM_THREADS": expected, "MKL_NUM_THREADS": expected, "NUMEXPR_MAX_THREADS": expected,
        "NUMBA_NUM_THREADS": expected, "LOKY_MAX_CPU_COUNT": expected, "SPIKEBATCH_CPU_LIMIT": expected}


def test_a_workspace_script_runs_with_the_threads_of_its_cpu_limit(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=1)
    script = cli.root / "threads.py"
    script.write_text(THREADS_REPORT)
    done = cli("submit-workspace", "--workspace", str(workspace), "--script", str(script), "--wait")
    assert done.returncode == 0, done.stderr
    logs = cli("job-logs", done.keys["RUN_ID"]).stdout
    seen = _threads_line(logs)  # the local profile's limits_cpu is 1
    assert set(seen["env"].values()) == {"1"} and set(seen["pools"].values()) == {1}, seen
    assert "spikebatch runner: NumPy/BLAS threads bounded to the job's 1 CPU" in logs


def test_ctrl_c_while_waiting_to_retrieve_says_how_to_retrieve_later(cli: Cli) -> None:
    # The script sleeps until the job is deleted: it cannot end before the interrupt.
    workspace = write_workspace(cli.root / "ws", x=1)
    script = cli.root / "slow.py"
    script.write_text("import time\ntime.sleep(86400)\n")
    target = cli.root / "results here"
    waiting = cli.start("submit-workspace", "--workspace", str(workspace), "--script", str(script),
                        "--retrieve-to", str(target))
    job = None
    try:
        seen = []
        while True:  # up to the first status line of the wait ("job NAME: Running")
            line = waiting.next_stderr_line()
            assert line, f"stderr ended before the wait began: {''.join(seen)}"
            seen.append(line)
            if line.startswith("job ") and ": " in line:
                job = line.split()[1].rstrip(":")
                break
        waiting.interrupt()
        ended = waiting.finish()
        assert ended.returncode == 130, ended.stderr
        run_id = ended.keys["RUN_ID"]
        errors = [line for line in ended.stderr.splitlines() if line.startswith("error:")]
        assert len(errors) == 1, ended.stderr
        assert "keeps running" in errors[0] and f"spikebatch wait {run_id}" in errors[0]
        assert f"spikebatch retrieve {run_id} --to '{target.resolve()}'" in errors[0], errors[0]
        assert f"spikebatch job-delete {job}" in errors[0]
        assert "Traceback" not in ended.stderr
        assert cli("job-status", run_id).keys["JOB_STATUS"] in ("Pending", "Running")
    finally:
        if job is not None:
            cli("job-delete", job)


def test_quiet_is_accepted_after_the_command_name(cli: Cli) -> None:
    config = _job_config(cli, "hello", "print('hello')", {})
    loud = cli("deploy-job", "--job-config", str(config), "--wait")
    assert loud.returncode == 0 and "submitted" in loud.stderr
    for flag in ("--quiet", "-q"):
        quiet = cli("deploy-job", "--job-config", str(config), "--wait", flag)
        assert quiet.returncode == 0, quiet.stderr
        assert quiet.stderr == "" and quiet.keys["FINAL_STATUS"] == "Complete"
    status = cli("job-status", quiet.keys["RUN_ID"], "--quiet")
    assert status.returncode == 0 and status.keys["JOB_STATUS"] == "Complete"
    # errors still show, one line
    assert_one_line_error(cli("job-status", "no-such-job", "--quiet"), 2, "no-such-job")
    assert "--quiet" in cli("wait", "--help").stdout
