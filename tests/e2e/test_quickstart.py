"""The README's main command: examples/quickstart.py on the embedded `local` default."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_quickstart_runs_a_real_job_with_no_cluster_and_no_credentials(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        # no credentials and no kubeconfig: the local default needs none
        if not key.startswith(("AWS_", "KUBECONFIG"))
    }
    env.update(
        SPIKEBATCH_DATA_DIR=str(tmp_path / "data"),
        SPIKEBATCH_STATE_DIR=str(tmp_path / "state"),
        SPIKEBATCH_CACHE_DIR=str(tmp_path / "cache"),
        HOME=str(tmp_path / "home"),
        TMPDIR=str(tmp_path),
    )
    run = subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert "FINAL_STATUS=Complete" in lines
    assert "SPIKEBATCH_RESULT status=succeeded" in lines
    assert "summary: {'spike_count': 360, 'rate_hz': 12.0, 'median_isi_ms': 62.215, 'experiment': 'quickstart'}" in lines
    # the job's artifacts went to the local store, not anywhere else
    outputs = list((tmp_path / "data" / "outputs").glob("*/outputs/summary.json"))
    assert len(outputs) == 1
