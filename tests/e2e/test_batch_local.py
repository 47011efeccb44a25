"""A sorting batch on the local profile, through the CLI, with real sorting: three
ground-truth recordings sorted in parallel, one of which opens fine but cannot be
read to the end (its compressed data chunks were cut short). The two good ones come
back with the ground truth's units, the bad one is reported with its reason, a re-run
reuses both results, and ``retry`` sorts only the bad one again with nothing uploaded.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from cli_support import Cli, cli  # noqa: F401

SEEDS = {"rec_a": 31, "rec_b": 32, "rec_bad": 33}


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory) -> dict:
    """Three 8-channel recordings of 4 known units (20 s; rec_bad 5 s), saved as
    SpikeInterface zarr folders; rec_bad's compressed trace chunks are then truncated to
    a third (its header, channels and duration still read fine)."""
    import spikeinterface.core as si

    root = tmp_path_factory.mktemp("batch-gt")
    found = {}
    for name, seed in SEEDS.items():
        # The bad one is cut short below, so its length only costs time.
        seconds = 5.0 if name == "rec_bad" else 20.0
        recording, truth = si.generate_ground_truth_recording(durations=[seconds], num_channels=8, num_units=4, seed=seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="The extractor is not serializable")
            recording.save(folder=root / name, format="zarr", verbose=False)
        (folder,) = root.glob(f"{name}*.zarr") if not (root / name).exists() else [root / name]
        found[name] = (folder, truth)
    bad = found["rec_bad"][0]
    chunks = [p for p in (bad / "traces_seg0").iterdir() if p.name[0].isdigit()]
    assert chunks
    for chunk in chunks:
        with open(chunk, "r+b") as handle:
            handle.truncate(chunk.stat().st_size // 3)
    return found


def _matched_units(truth, unit_ids, spike_times, fs: float) -> int:
    """Ground-truth units found with an agreement of at least 0.8."""
    import spikeinterface.core as si
    from spikeinterface.comparison import compare_sorter_to_ground_truth

    found = si.NumpySorting.from_unit_dict(
        {u: np.round(np.asarray(spike_times[u]) * fs).astype(np.int64) for u in unit_ids}, fs)
    comparison = compare_sorter_to_ground_truth(truth, found, exhaustive_gt=True)
    return int((comparison.agreement_scores.max(axis=1) >= 0.8).sum())


def test_a_local_batch_returns_the_good_recordings_and_names_the_bad_one(cli: Cli, ground_truth: dict) -> None:
    from spikebatch.adapters.sorting.outputs import read_units
    from spikebatch.container import default_named_adapters

    folders = [str(ground_truth[name][0]) for name in SEEDS]
    args = ["submit-sorting", "--recording", folders[0], "--recording", folders[1], "--recording", folders[2],
            "--preset", "tridesclous2", "--parallel", "3", "--retries-per-recording", "1"]
    first = cli(*args, "--retrieve-to", str(cli.root / "sorted"), "--max-wait-seconds", "900", timeout=1000)

    # The batch failed as a whole (exit 1), naming the bad recording and why, and still
    # brought home the two good ones.
    assert first.returncode == 1, first.stderr[-3000:]
    bad_name = Path(folders[2]).name
    error = [line for line in first.error_lines if line.startswith("error:")]
    assert len(error) == 1 and "1 of 3 recordings failed" in error[0] and bad_name in error[0], error
    assert "blosc" in error[0] and "spikebatch retry" in error[0]
    assert first.keys["FINAL_STATUS"] == "Failed" and first.keys["RECORDINGS"] == "3"
    assert sorted(first.keys["SUCCEEDED"].split(",")) == sorted(Path(f).name for f in folders[:2])
    assert first.keys["FAILED"] == bad_name
    run_id = first.keys["RUN_ID"]

    # One workspace with a namespace per good recording (SpikeLab's when it is
    # installed, else the built-in one), and each recording's own files beside it.
    fmt = json.loads((cli.root / "sorted" / "recordings" / "rec_a.zarr" / "result.json").read_text())["format"]
    codec = next(c for c in default_named_adapters()[0] if c.name == fmt)
    workspace = codec.load_result(cli.root / "sorted" / "workspace")
    assert sorted(workspace.list_keys()) == sorted(Path(f).name for f in folders[:2])
    assert not (cli.root / "sorted" / "recordings" / bad_name).exists()
    for name in ("rec_a", "rec_b"):
        folder, truth = ground_truth[name]
        ns = folder.name
        unit_ids = [u.item() if hasattr(u, "item") else u for u in np.asarray(workspace.get(ns, "unit_ids")).tolist()]
        times = {u: np.asarray(workspace.get(ns, f"spike_times_{u}")) for u in unit_ids}
        units = read_units(cli.root / "sorted" / "recordings" / ns / ns / "units.npz")
        assert sorted(units.unit_ids) == sorted(unit_ids)
        assert _matched_units(truth, unit_ids, times, units.sampling_frequency) >= 3, ns

    # The status table: one row per recording, from the Job's indexes and its attempts.
    shown = cli("status", run_id, "--output", "json")
    assert shown.returncode == 0, shown.stderr
    doc = json.loads(shown.stdout)
    rows = {r["recording"]: r for r in doc["recordings"]}
    assert doc["state"] == "Failed" and doc["counts"] == {"succeeded": 2, "failed": 1}
    for name in ("rec_a", "rec_b"):
        row = rows[ground_truth[name][0].name]
        assert row["state"] == "succeeded" and row["attempts"] == 1 and row["units"] >= 3 and row["run_seconds"] > 0
    bad = rows[bad_name]
    assert (bad["state"], bad["attempts"], bad["reason"], bad["exit_code"]) == ("failed", 2, "Error", 1)
    assert "blosc" in bad["message"]
    table = cli("status", run_id)
    assert table.returncode == 0 and table.stdout.splitlines()[0].split()[:4] == ["RECORDING", "INDEX", "STATE", "ATTEMPTS"]
    assert any(line.split()[0] == bad_name and "failed" in line.split() for line in table.stdout.splitlines()[1:])

    # Retry sorts only the failed recording, reading the bundle already stored.
    again = cli("retry", run_id, "--wait", "--max-wait-seconds", "600", timeout=700)
    assert again.returncode == 1, again.stderr[-2000:]
    assert again.keys["SUBMITTED"] == "1" and again.keys["UPLOADED_BYTES"] == "0"
    assert f"retrying 1 recording(s) of batch {run_id}: {bad_name}" in again.stderr
    after = {r["recording"]: r for r in json.loads(cli("status", run_id, "--output", "json").stdout)["recordings"]}
    assert after[bad_name]["attempts"] == 4 and after[bad_name]["state"] == "failed"
    assert after[ground_truth["rec_a"][0].name]["attempts"] == 1  # the good ones were not run again

    # A new submission of the same recordings reuses both results and sorts only the third.
    rerun = cli(*args, "--wait", "--max-wait-seconds", "600", timeout=700)
    assert rerun.returncode == 1, rerun.stderr[-2000:]
    assert (rerun.keys["CACHED"], rerun.keys["SUBMITTED"], rerun.keys["UPLOADED_BYTES"]) == ("2", "1", "0")
    assert "0 B uploaded, 1 recording already stored, 2 reused from the cache" in rerun.stderr
    rerun_rows = {r["recording"]: r for r in
                  json.loads(cli("status", rerun.keys["RUN_ID"], "--output", "json").stdout)["recordings"]}
    assert rerun_rows[ground_truth["rec_a"][0].name]["state"] == "cached"
    assert rerun_rows[ground_truth["rec_a"][0].name]["units"] == rows[ground_truth["rec_a"][0].name]["units"]
    assert rerun_rows[bad_name]["state"] == "failed"
