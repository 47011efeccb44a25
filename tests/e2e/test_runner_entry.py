"""The in-job runner as the Job's container starts it: its refusals before any work."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def run_runner(env: dict, mode: str = "workspace") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spikebatch.entrypoints.runner", mode],
                          env={"PATH": os.environ["PATH"], **env}, capture_output=True, text=True, timeout=120)


def test_a_work_folder_holding_an_earlier_run_is_refused(tmp_path: Path) -> None:
    work = tmp_path / "work-dir"
    (work / "work").mkdir(parents=True)
    (work / "work" / "script").symlink_to("/etc")  # what an earlier run (or anyone) left there
    done = run_runner({
        "INPUT_URI": f"file://{tmp_path}/store/inputs/r/bundle.zip",
        "OUTPUT_PREFIX": f"file://{tmp_path}/store/outputs/r/",
        "SPIKEBATCH_STORAGE_ROOT": str(tmp_path / "store"),
        "SPIKEBATCH_WORK_DIR": str(work),
    })
    assert done.returncode == 2, done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("SPIKEBATCH_RESULT status=failed reason=config error=")
    assert "already holds work from an earlier run" in last and "SPIKEBATCH_WORK_DIR" in last
    assert not (tmp_path / "store").exists()  # nothing written anywhere


def test_a_missing_variable_is_named(tmp_path: Path) -> None:
    done = run_runner({"OUTPUT_PREFIX": f"file://{tmp_path}/out/"}, mode="sorting")
    assert done.returncode == 2
    assert "environment variable INPUT_URI is not set" in done.stdout


def test_a_bundle_whose_manifest_fails_validation_exits_2_with_the_reason(tmp_path: Path) -> None:
    import json
    import zipfile

    store = tmp_path / "store"
    bundle = store / "inputs" / "r" / "bundle.zip"
    bundle.parent.mkdir(parents=True)
    with zipfile.ZipFile(bundle, "w") as zf:
        zf.writestr("manifest.json", json.dumps({"job_type": "workspace", "files": "not a list"}))
    done = run_runner({
        "INPUT_URI": f"file://{bundle}",
        "OUTPUT_PREFIX": f"file://{store}/outputs/r/",
        "LOGS_PREFIX": f"file://{store}/logs/r/",
        "SPIKEBATCH_STORAGE_ROOT": str(store),
        "SPIKEBATCH_WORK_DIR": str(tmp_path / "work-dir"),
    })
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Traceback" not in done.stdout + done.stderr
    last = done.stdout.strip().splitlines()[-1]
    assert last.startswith("SPIKEBATCH_RESULT status=failed") and "invalid manifest.json" in last, last
