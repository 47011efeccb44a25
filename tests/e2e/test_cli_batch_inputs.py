"""How submit-sorting is told which recordings to sort (globs, --recordings-from) and
what it refuses before anything is uploaded or submitted."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

from cli_support import Cli, assert_one_line_error, cli  # noqa: F401


@pytest.fixture(scope="module")
def saved_recordings(tmp_path_factory) -> list[Path]:
    """Three small SpikeInterface binary folders with different data."""
    from spikeinterface.generation import NoiseGeneratorRecording

    root = tmp_path_factory.mktemp("recs")
    folders = []
    for seed in (1, 2, 3):
        recording = NoiseGeneratorRecording(num_channels=2, sampling_frequency=10000.0, durations=[1.0], seed=seed)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore")
            recording.save(folder=root / f"day{seed}", verbose=False)
        folders.append(root / f"day{seed}")
    return folders


def nothing_left(cli: Cli) -> bool:
    return cli.data_files() == [] and cli.local_jobs() == [] and cli.records() == []


def test_recordings_from_a_list_file_and_a_glob_make_one_batch(cli: Cli, saved_recordings) -> None:
    root = saved_recordings[0].parent
    listing = root / "list.txt"
    listing.write_text("# this week's recordings\nday1\n\n" + str(saved_recordings[1]) + "  # absolute\n")
    result = cli("submit-sorting", "--recordings-from", str(listing), "--recording", str(root / "day3*"),
                 "--preset", "tridesclous2", "--output", "json")
    try:
        assert result.returncode == 0, result.stderr
        doc = json.loads(result.stdout)
        # --recording ones first (a glob's matches sorted), then the list's, in its order
        assert doc["recordings"] == ["day3", "day1", "day2"] and doc["submitted"] == doc["recordings"]
        assert doc["job_name"].startswith("sort-tridesclous2-") and doc["indexed"] is True
        assert cli.local_jobs() == [doc["job_name"]]  # what the refusals below check is empty
        # each recording was opened before staging, and what was read of it is said
        assert "opened: day3 (spikeinterface-binary, 2 channels, 1.0 s at 10000 Hz)" in result.stderr
        shown = json.loads(cli("status", doc["run_id"], "--output", "json").stdout)
        assert [r["recording"] for r in shown["recordings"]] == ["day3", "day1", "day2"]
    finally:
        if result.returncode == 0:
            for name in json.loads(result.stdout)["job_names"]:
                cli("job-delete", name)


@pytest.mark.parametrize("make_args, fragment", [
    (lambda root: ["--recording", str(root / "nothing*")], "matches no file or folder"),
    (lambda root: [], "no recordings given"),
    (lambda root: ["--recordings-from", str(root / "absent.txt")], "--recordings-from"),
    (lambda root: ["--recording", str(root / "day1"), "--recording", str(root / "day1")], "given twice"),
    (lambda root: ["--recording", str(root / "day1"), "--parallel", "0"], "--parallel"),
])
def test_bad_recording_lists_are_refused_before_anything(cli: Cli, saved_recordings, make_args, fragment) -> None:
    root = saved_recordings[0].parent
    result = cli("submit-sorting", *make_args(root), "--preset", "tridesclous2")
    assert_one_line_error(result, 2, fragment)
    assert nothing_left(cli)


def test_a_file_that_is_no_recording_is_refused_before_upload(cli: Cli, saved_recordings) -> None:
    script = saved_recordings[0].parent / "analysis.py"
    script.write_text("print('not a recording')\n")
    result = cli("submit-sorting", "--recording", str(saved_recordings[0]), "--recording", str(script))
    assert_one_line_error(result, 2, "analysis.py", "unsupported format")
    assert nothing_left(cli)
