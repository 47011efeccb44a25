"""What local jobs leave on the laptop's disk, and what they cannot be started with.

A local job's temporary files (the runner's work folder ``spikebatch-run-*`` with its
inputs and outputs, a sorter's ``spikebatch-sort-*`` scratch) lie in a folder of the
job's own pod, which goes when the pod ends or the job is deleted; recordings the
local store holds are linked into the job, not copied. Each test gives the CLI (and so
its jobs) a temp root of its own through TMPDIR, so what another process leaves in
/tmp does not matter.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import List

import pytest
from cli_support import Cli, assert_one_line_error, cli, write_workspace  # noqa: F401  (cli is a fixture)
from contract.backend_harness import wait_for


DOUBLER = 'x = workspace.get("in", "x")\nworkspace.store("out", "y", x * 2)\n'
CRASHER = 'raise ValueError("bad electrode map")\n'
#: Marks that the job runs (a file among its outputs), then waits to be deleted.
SLEEPER = ('import os, time\nopen(os.path.join(output_dir, "started"), "w").write("yes")\n'
           'time.sleep(300)\n')


@pytest.fixture
def temp_root(cli: Cli) -> Path:
    root = cli.root / "tmp"
    root.mkdir()
    cli.env["TMPDIR"] = str(root)
    cli.env.pop("SPIKEBATCH_KEEP_WORK_DIR", None)
    return root


def spikebatch_entries(root: Path) -> List[str]:
    """Everything spikebatch made under ``root``, at any depth."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("spikebatch-*"))


def _script(cli: Cli, text: str, name: str = "analysis.py") -> Path:
    path = cli.root / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(("script", "code", "state"), [(DOUBLER, 0, "Complete"), (CRASHER, 1, "Failed")],
                         ids=["succeeds", "fails"])
def test_a_workspace_job_leaves_nothing_in_the_temp_folder(cli: Cli, temp_root: Path, script: str, code: int,
                                                          state: str) -> None:
    workspace = write_workspace(cli.root / "ws", x=21)
    big_input = cli.root / "weights.bin"
    big_input.write_bytes(os.urandom(9 * 1024 * 1024))  # a blob: downloaded into the work folder
    done = cli("submit-workspace", "--workspace", str(workspace), "--script", str(_script(cli, script)),
               "--input", str(big_input), "--wait")
    assert done.returncode == code, done.stderr
    assert done.keys["FINAL_STATUS"] == state
    assert spikebatch_entries(temp_root) == []
    logs = cli("job-logs", done.keys["RUN_ID"])
    assert "fetched" in logs.stdout  # the job did download its inputs into a work folder


def test_keep_work_dir_keeps_the_job_folder_until_job_delete(cli: Cli, temp_root: Path) -> None:
    workspace = write_workspace(cli.root / "ws", x=2)
    done = cli("submit-workspace", "--workspace", str(workspace), "--script", str(_script(cli, DOUBLER)), "--wait",
               env={"SPIKEBATCH_KEEP_WORK_DIR": "1"})
    assert done.returncode == 0, done.stderr
    job = done.keys["JOB_NAME"]
    (pod,) = [p for p in temp_root.iterdir()]
    assert pod.name.startswith(f"spikebatch-pod-{job}-")
    (work,) = pod.glob("spikebatch-run-*")
    assert (work / "work" / "workspace").is_dir() and (work / "output" / "workspace").is_dir()
    logs = cli("job-logs", done.keys["RUN_ID"]).stdout
    assert f"the work folder {work} is kept" in logs
    assert logs.strip().splitlines()[-1].startswith("SPIKEBATCH_RESULT status=succeeded")  # still the last line

    assert cli("job-delete", done.keys["RUN_ID"]).returncode == 0
    assert spikebatch_entries(temp_root) == []


def test_job_delete_of_a_running_job_removes_its_work_folder(cli: Cli, temp_root: Path) -> None:
    workspace = write_workspace(cli.root / "ws", x=3)
    submitted = cli("submit-workspace", "--workspace", str(workspace), "--script", str(_script(cli, SLEEPER)))
    assert submitted.returncode == 0, submitted.stderr
    started = wait_for(lambda: list(temp_root.rglob("spikebatch-run-*/output/outputs/started")),
                       120, "the job's script to start")
    assert cli("job-status", submitted.keys["RUN_ID"]).keys["JOB_STATUS"] == "Running"

    deleted = cli("job-delete", submitted.keys["RUN_ID"])

    assert deleted.returncode == 0, deleted.stderr
    assert not started[0].exists()
    assert spikebatch_entries(temp_root) == []


@pytest.mark.parametrize("value", ['"a\\0b"', "x" * (200 * 1024)], ids=["NUL byte", "200 KiB"])
def test_an_env_value_no_process_can_receive_is_refused_with_one_line(cli: Cli, temp_root: Path,
                                                                     value: str) -> None:
    config = cli.root / "job.yaml"
    config.write_text(f"container:\n  command: [python, -c, \"print(1)\"]\n  env:\n    BIG_VALUE: {value}\n")
    deployed = cli("deploy-job", "--job-config", str(config))
    assert_one_line_error(deployed, 2, "env BIG_VALUE")
    assert "NUL byte" in deployed.stderr or "over the 128 KiB" in deployed.stderr
    # a runner job is refused before anything is uploaded
    workspace = write_workspace(cli.root / "ws", x=1)
    submitted = cli("submit-workspace", "--workspace", str(workspace), "--script", str(_script(cli, DOUBLER)),
                    "--job-config", str(config))
    assert_one_line_error(submitted, 2, "env BIG_VALUE")
    assert cli.local_jobs() == [] and cli.records() == [] and cli.data_files() == []
    assert spikebatch_entries(temp_root) == []


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import warnings

    import spikeinterface.core as si

    folder = tmp_path_factory.mktemp("rec") / "organoid_rec"
    rec, _ = si.generate_ground_truth_recording(durations=[2.0], num_channels=4, num_units=2, seed=7)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The extractor is not serializable")
        rec.save(folder=folder, verbose=False)
    return folder


def test_a_sorting_job_links_the_stored_recording_and_leaves_nothing(cli: Cli, temp_root: Path,
                                                                    recording: Path) -> None:
    done = cli("submit-sorting", "--recording", str(recording), "--preset", "tridesclous2", "--wait",
               "--max-wait-seconds", "600", env={"SPIKEBATCH_KEEP_WORK_DIR": "1"}, timeout=660)
    assert done.returncode == 0, done.stderr
    (data,) = temp_root.glob("spikebatch-pod-*/spikebatch-run-*/work/recordings/organoid_rec/traces_cached_seg0.raw")
    (blob,) = [p for p in (cli.data / "blobs").rglob("*") if p.is_file()]
    # the job read the local store's copy in place: no second copy of the recording
    assert data.is_symlink() or os.stat(data).st_ino == os.stat(blob).st_ino
    assert os.stat(blob).st_mode & 0o222 == 0  # and could not write to it
    assert (recording / "traces_cached_seg0.raw").read_bytes() == blob.read_bytes()  # the user's file: untouched

    assert cli("job-delete", done.keys["RUN_ID"]).returncode == 0
    assert spikebatch_entries(temp_root) == []
    assert blob.read_bytes() == (recording / "traces_cached_seg0.raw").read_bytes()  # the store keeps it
