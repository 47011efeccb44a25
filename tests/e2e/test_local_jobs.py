"""The product on a laptop: the `local` profile runs real jobs end to end through the
library — bundle, local storage, the runner as a subprocess, waiting, retrieval."""

from __future__ import annotations

import json
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

from spikebatch.workspace import DirectoryWorkspace
from spikebatch.errors import JobFailedError
from spikebatch.session import RunSession


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Keep jobs, artifacts and caches of these tests out of the user's folders, and
    their temporary files in a temp root of their own (TMPDIR, which the local backend's
    jobs inherit)."""
    for var, sub in (("SPIKEBATCH_STATE_DIR", "state"), ("SPIKEBATCH_DATA_DIR", "data"), ("SPIKEBATCH_CACHE_DIR", "cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.delenv("SPIKEBATCH_KEEP_WORK_DIR", raising=False)
    return tmp_path


def left_in_temp(tmp_path: Path) -> list[str]:
    """What spikebatch left in the test's temp root (work folders, sorter scratch)."""
    return sorted(str(p.relative_to(tmp_path / "tmp")) for p in (tmp_path / "tmp").rglob("spikebatch-*"))


def write_script(folder: Path, body: str, name: str = "analysis.py") -> Path:
    path = folder / name
    path.write_text(textwrap.dedent(body))
    return path


def test_directory_workspace_job_runs_and_comes_back(tmp_path: Path) -> None:
    ws = DirectoryWorkspace(str(tmp_path / "ws"))
    ws.store("inputs", "values", np.arange(6.0))
    ws.store("inputs", "label", {"experiment": "organoid-7"})
    ws.store("inputs", "raw", b"\x00\x01\x02")
    params = tmp_path / "params.json"
    params.write_text(json.dumps({"scale": 3}))
    script = write_script(tmp_path, """
        import json, os
        import numpy as np
        scale = json.load(open(os.path.join(inputs_dir, "params.json")))["scale"]
        values = workspace.get("inputs", "values")
        workspace.store("results", "scaled", values * scale)
        workspace.store("results", "summary", {"sum": float(values.sum()), "who": workspace.get("inputs", "label")["experiment"], "run": metadata["run"]})
        workspace.store("results", "raw_len", len(workspace.get("inputs", "raw")))
        open(os.path.join(output_dir, "note.txt"), "w").write("extra output")
        print("analysis finished with scale", scale)
    """)
    session = RunSession.from_profile("local")
    result = session.submit_workspace_job(
        workspace=ws, script=str(script), job_spec={"name_prefix": "e2e workspace"},
        bundle_input_paths=[str(params)], metadata={"run": "r1"},
    )
    assert session.wait_for_completion(result.job_name, max_wait_seconds=180) == "Complete"
    assert left_in_temp(tmp_path) == []  # the job's work folder went when it ended
    logs = "\n".join(session.stream_logs(result.job_name))
    assert "analysis finished with scale 3" in logs
    assert "SPIKEBATCH_RESULT status=succeeded" in logs

    out = session.retrieve_result(result, str(tmp_path / "retrieved"))
    assert isinstance(out, DirectoryWorkspace)
    np.testing.assert_array_equal(out.get("results", "scaled"), np.arange(6.0) * 3)
    assert out.get("results", "summary") == {"sum": 15.0, "who": "organoid-7", "run": "r1"}
    assert out.get("results", "raw_len") == 3
    # the input namespace travelled both ways untouched
    assert out.get("inputs", "raw") == b"\x00\x01\x02"
    assert (tmp_path / "retrieved" / "outputs" / "note.txt").read_text() == "extra output"
    # the runner's log is stored under the logs prefix
    log_files = session.storage_client.list_outputs(result.logs_prefix)
    assert [u.rsplit("/", 1)[-1] for u in log_files] == ["runner.log"]


def test_spikelab_workspace_job(tmp_path: Path) -> None:
    from spikelab.workspace import AnalysisWorkspace

    ws = AnalysisWorkspace(name="lab")
    ws.store("rec1", "rates", np.array([1.0, 2.0, 4.0]))
    script = write_script(tmp_path, """
        rates = workspace.get("rec1", "rates")
        workspace.store("rec1", "mean_rate", {"value": float(rates.mean())})
        workspace.store("rec1", "normalised", rates / rates.max())
    """)
    session = RunSession.from_profile("local")
    result = session.submit_workspace_job(workspace=ws, script=str(script), job_spec={})
    assert session.wait_for_completion(result.job_name, max_wait_seconds=180) == "Complete"
    out = session.retrieve_result(result, str(tmp_path / "retrieved"))
    assert type(out).__name__ == "AnalysisWorkspace"
    np.testing.assert_allclose(out.get("rec1", "normalised"), [0.25, 0.5, 1.0])
    assert float(np.asarray(out.get("rec1", "mean_rate")["value"])) == pytest.approx(7 / 3)


def test_a_script_that_raises_fails_with_its_error_in_the_logs(tmp_path: Path) -> None:
    ws = DirectoryWorkspace(str(tmp_path / "ws"))
    ws.store("inputs", "x", {"v": 1})
    script = write_script(tmp_path, """
        raise ValueError("electrode map does not match the recording")
    """, name="broken.py")
    session = RunSession.from_profile("local")
    result = session.submit_workspace_job(workspace=ws, script=str(script), job_spec={})
    assert session.wait_for_completion(result.job_name, max_wait_seconds=180) == "Failed"
    logs = "\n".join(session.stream_logs(result.job_name))
    assert "ValueError: electrode map does not match the recording" in logs
    assert "SPIKEBATCH_RESULT status=failed" in logs
    with pytest.raises(JobFailedError, match="electrode map does not match"):
        session.retrieve_result(result, str(tmp_path / "retrieved"))


def test_a_5_mb_env_value_is_refused_at_submission_and_nothing_starts(tmp_path: Path) -> None:
    from spikebatch.errors import InvalidManifestError

    session = RunSession.from_profile("local")
    spec = {"container": {"command": ["python", "-c", "print(1)"], "env": {"BIG_VALUE": "x" * (5 * 1024 * 1024)}}}
    with pytest.raises(InvalidManifestError, match="env BIG_VALUE .* is 5.0 MiB") as err:
        session.submit_prepared_job(job_spec=spec)
    assert "\n" not in str(err.value)
    ws = DirectoryWorkspace(str(tmp_path / "ws"))
    ws.store("inputs", "x", {"v": 1})
    script = write_script(tmp_path, "print(1)\n")
    spec["container"] = {"env": {"BIG_VALUE": "a\x00b"}}
    with pytest.raises(InvalidManifestError, match="env BIG_VALUE .* holds a NUL byte"):
        session.submit_workspace_job(workspace=ws, script=str(script), job_spec=spec)
    assert session.list_jobs() == []
    assert not (tmp_path / "data").exists() or not any(p.is_file() for p in (tmp_path / "data").rglob("*"))


@pytest.fixture(scope="module")
def ground_truth(tmp_path_factory: pytest.TempPathFactory):
    import spikeinterface.core as si

    recording, sorting = si.generate_ground_truth_recording(durations=[60.0], num_channels=16, num_units=10, seed=7)
    folder = tmp_path_factory.mktemp("gt") / "organoid_rec"
    saved = recording.save(folder=folder, verbose=False)
    return saved, sorting, folder


def test_sorting_job_finds_the_ground_truth_units(tmp_path: Path, ground_truth) -> None:
    import spikeinterface.comparison as sc
    from spikeinterface.core import NumpySorting

    _recording, truth, folder = ground_truth
    session = RunSession.from_profile("local")
    result = session.submit_sorting_job(
        recording_paths=[str(folder)],
        config="spykingcircus2",
        job_spec={"name_prefix": "sort", "resources": {"limits_cpu": "2", "requests_cpu": "2"}},
    )
    state = session.wait_for_completion(result.job_name, max_wait_seconds=900)
    logs = "\n".join(session.stream_logs(result.job_name))
    assert state == "Complete", logs[-3000:]
    # neither the work folder with the recording nor the sorter's scratch is left
    assert left_in_temp(tmp_path) == []

    out = session.retrieve_result(result, str(tmp_path / "retrieved"))
    assert "organoid_rec" in out.list_namespaces()
    unit_ids = list(np.asarray(out.get("organoid_rec", "unit_ids")).tolist())
    fs = float(np.asarray(out.get("organoid_rec", "sampling_frequency")))
    times = {u: np.asarray(out.get("organoid_rec", f"spike_times_{u}")) for u in unit_ids}
    found = NumpySorting.from_unit_dict([{u: np.round(t * fs).astype(np.int64) for u, t in times.items()}], sampling_frequency=fs)
    comparison = sc.compare_sorter_to_ground_truth(truth, found, exhaustive_gt=True)
    well_detected = comparison.get_well_detected_units(well_detected_score=0.8)
    assert len(well_detected) >= 7, f"only {len(well_detected)} of 10 true units recovered; sorted {len(unit_ids)} units"
    # SpikeLab is installed in the test extras, so the result is its AnalysisWorkspace
    # with the recording's SpikeData at "spikedata", as the reference promises.
    assert type(out).__name__ == "AnalysisWorkspace"
    spikedata = out.get("organoid_rec", "spikedata")
    assert type(spikedata).__name__ == "SpikeData" and spikedata.N == len(unit_ids)
    # per-recording outputs beside the workspace: units, metadata, QC figures
    rec_dir = tmp_path / "retrieved" / "organoid_rec"
    assert (rec_dir / "units.npz").is_file()
    assert json.loads((rec_dir / "sorting_metadata.json").read_text())["unit_count"] == len(unit_ids)
    assert any(p.suffix == ".png" for p in rec_dir.rglob("*"))
