"""Contract of the Sorter port, for the SpikeInterface and the SpikeLab adapters.

Config resolution runs on the submitting machine for both adapters. The real sort is
one SpikeInterface spykingcircus2 run of a 60 s, 16-channel ground-truth recording
(session-scoped, ~25-50 s on 2 cores), checked against the ground truth the way a
scientist would: how many true units were found. SpikeLab's sorters (Kilosort2/4,
RT-Sort) need MATLAB, Docker or PyTorch, none of which is on this machine: its sort is
checked up to SpikeLab's own preflight refusal, and its output stage on a real SpikeData.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import spikeinterface as si  # test extras: missing packages fail, never skip
import spikelab.spike_sorting.config as spikelab_config
from spikeinterface.comparison import compare_sorter_to_ground_truth
from spikelab.workspace import AnalysisWorkspace

from spikebatch.adapters.sorting import outputs
from spikebatch.adapters.sorting.spikeinterface import PRESETS, SpikeInterfaceSorter, load_recording
from spikebatch.adapters.sorting.spikelab import SpikeLabSorter, units_from_spikedata
from spikebatch.errors import ConfigError, SpikebatchError
from spikebatch.ports.sorter import Sorter

from nwb_recordings import write_nwb

GT_SEED = 2205
KILOSORT_INSTALLED = importlib.util.find_spec("kilosort") is not None


# --- fixtures ---------------------------------------------------------------------------
@pytest.fixture(scope="session")
def ground_truth(tmp_path_factory):
    """A saved 60 s, 16-channel recording of 10 known units, and their true spike trains."""
    folder = tmp_path_factory.mktemp("gt") / "gt_recording"
    recording, truth = si.generate_ground_truth_recording(durations=[60], num_channels=16, num_units=10, seed=GT_SEED)
    recording.save(folder=folder, verbose=False)
    return folder, truth


@pytest.fixture(scope="session")
def sorted_gt(ground_truth, tmp_path_factory):
    folder, truth = ground_truth
    sorter = SpikeInterfaceSorter()
    out = tmp_path_factory.mktemp("sorted") / "gt_recording"
    started = time.monotonic()
    outcome = sorter.sort(folder, sorter.resolve_config("spykingcircus2"), out)
    return outcome, out, truth, time.monotonic() - started


@pytest.fixture(scope="session")
def small_nwb(tmp_path_factory) -> Path:
    """A 5 s, 4-channel NWB file written with pynwb, as an acquisition system would."""
    recording, _ = si.generate_ground_truth_recording(durations=[5], num_channels=4, num_units=3, seed=7)
    return write_nwb(recording, tmp_path_factory.mktemp("nwb") / "session.nwb", identifier="test")


# --- config resolution, both adapters ---------------------------------------------------
@pytest.mark.parametrize("sorter", [SpikeInterfaceSorter(), SpikeLabSorter()], ids=["spikeinterface", "spikelab"])
def test_resolved_config_is_json_and_stable(sorter) -> None:
    assert isinstance(sorter, Sorter)
    resolved = sorter.resolve_config(None)
    assert json.loads(json.dumps(resolved)) == resolved
    # A resolved config travels in the bundle and is resolved again in the job.
    assert sorter.resolve_config(resolved) == resolved


@pytest.mark.parametrize("sorter, preset, bad_key", [
    (SpikeInterfaceSorter(), "tridesclous2", "detect_treshold"),
    (SpikeLabSorter(), "kilosort4", "fr_mni"),
], ids=["spikeinterface", "spikelab"])
def test_unknown_override_names_the_key_and_lists_valid_ones(sorter, preset, bad_key) -> None:
    with pytest.raises(ConfigError) as info:
        sorter.resolve_config(preset, {bad_key: 1})
    message = str(info.value)
    assert bad_key in message and "valid keys" in message and "\n" not in message
    assert ("detect_threshold" in message) if sorter.name == "spikeinterface" else ("fr_min" in message)


@pytest.mark.parametrize("sorter, bad", [(SpikeInterfaceSorter(), "kilosort9"), (SpikeLabSorter(), "kilosort9")],
                         ids=["spikeinterface", "spikelab"])
def test_unknown_preset_lists_the_presets(sorter, bad) -> None:
    with pytest.raises(ConfigError, match="valid presets: .*kilosort4"):
        sorter.resolve_config(bad)
    with pytest.raises(ConfigError):
        sorter.resolve_config(12345)


# --- SpikeInterface adapter -------------------------------------------------------------
@pytest.mark.parametrize("preset", PRESETS)
def test_spikeinterface_presets_start_from_the_sorters_defaults(preset) -> None:
    import spikeinterface.sorters as ss

    resolved = SpikeInterfaceSorter().resolve_config(preset)
    assert resolved["sorter_name"] == preset and resolved["overrides"] == {}
    assert resolved["params"] == ss.get_default_sorter_params(preset)


def test_spikeinterface_default_is_spykingcircus2_and_overrides_apply() -> None:
    sorter = SpikeInterfaceSorter()
    assert sorter.resolve_config()["sorter_name"] == "spykingcircus2"
    resolved = sorter.resolve_config("spykingcircus2", {
        "seed": 7, "detection": {"method_kwargs": {"detect_threshold": 6}}, "job_kwargs": {"n_jobs": 2}})
    detection = resolved["params"]["detection"]
    # A nested override changes one entry and keeps its siblings.
    assert detection["method_kwargs"] == {"peak_sign": "neg", "detect_threshold": 6}
    assert detection["method"] == "matched_filtering"
    assert resolved["params"]["seed"] == 7 and resolved["params"]["job_kwargs"] == {"n_jobs": 2}
    with pytest.raises(ConfigError, match="'detection.methd'.*valid keys under detection: method"):
        sorter.resolve_config("spykingcircus2", {"detection": {"methd": "x"}})


def test_spikeinterface_hand_written_config_dict() -> None:
    sorter = SpikeInterfaceSorter()
    resolved = sorter.resolve_config({"sorter_name": "tridesclous2", "params": {"detect_threshold": 4.0}})
    assert resolved["params"]["detect_threshold"] == 4.0 and resolved["overrides"] == {"detect_threshold": 4.0}
    with pytest.raises(ConfigError, match="unknown spikeinterface config key 'sorter'"):
        sorter.resolve_config({"sorter_name": "tridesclous2", "sorter": "x"})


def test_spikeinterface_kilosort4_parameters_depend_on_kilosort_being_installed() -> None:
    sorter = SpikeInterfaceSorter()
    if KILOSORT_INSTALLED:
        assert sorter.resolve_config("kilosort4", {"Th_universal": 10})["params"]["Th_universal"] == 10
    else:
        # Here SpikeInterface cannot list Kilosort's own parameters, and the error says why.
        with pytest.raises(ConfigError, match="pip install kilosort"):
            sorter.resolve_config("kilosort4", {"Th_universal": 10})
    assert sorter.resolve_config("kilosort4", {"n_jobs": 2})["params"]["n_jobs"] == 2


def test_spikeinterface_missing_says_how_to_install(monkeypatch) -> None:
    monkeypatch.setitem(sys.modules, "spikeinterface.sorters", None)  # import now fails
    with pytest.raises(ConfigError, match=r'pip install "spikeinterface\[full\]"'):
        SpikeInterfaceSorter().resolve_config("tridesclous2")


def test_recording_formats(small_nwb, tmp_path) -> None:
    nwb = load_recording(small_nwb)
    assert (nwb.get_num_channels(), nwb.get_sampling_frequency(), nwb.get_total_duration()) == (4, 25000.0, 5.0)
    recording, _ = si.generate_ground_truth_recording(durations=[1], num_channels=3, num_units=2, seed=1)
    recording.save(folder=tmp_path / "as_zarr.zarr", format="zarr", verbose=False)
    assert load_recording(tmp_path / "as_zarr.zarr").get_num_channels() == 3
    (tmp_path / "plain").mkdir()
    (tmp_path / "plain" / "data.bin").write_bytes(b"\0" * 16)
    (tmp_path / "rec.dat").write_bytes(b"\0" * 16)
    for bad, needle in [(tmp_path / "plain", "not saved by SpikeInterface"), (tmp_path / "rec.dat", "unsupported format"),
                        (tmp_path / "absent.nwb", "does not exist")]:
        with pytest.raises(ConfigError, match=needle):
            load_recording(bad)


def test_unreadable_recording_fails_before_writing_anything(tmp_path) -> None:
    (tmp_path / "rec.dat").write_bytes(b"\0" * 16)
    sorter = SpikeInterfaceSorter()
    with pytest.raises(ConfigError, match="unsupported format"):
        sorter.sort(tmp_path / "rec.dat", sorter.resolve_config("tridesclous2"), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_spykingcircus2_finds_the_ground_truth_units(sorted_gt) -> None:
    outcome, out, truth, elapsed = sorted_gt
    print(f"spykingcircus2 sort of 60 s x 16 channels took {elapsed:.1f} s")
    assert outcome.recording == "gt_recording" and outcome.units_path == out / "units.npz"
    with np.load(outcome.units_path, allow_pickle=False) as data:
        unit_ids = data["unit_ids"].tolist()
        fs = float(data["sampling_frequency"])
        trains = {u: data[f"spike_times_{u}"] for u in unit_ids}
    assert fs == 25000.0 and len(unit_ids) == outcome.unit_count
    assert all(np.all(np.diff(t) >= 0) and t.min() >= 0 and t.max() <= 60 for t in trains.values() if len(t))

    found = si.NumpySorting.from_unit_dict({u: np.round(t * fs).astype(np.int64) for u, t in trains.items()}, fs)
    comparison = compare_sorter_to_ground_truth(truth, found, exhaustive_gt=True)
    best_agreement = comparison.agreement_scores.max(axis=1)
    assert (best_agreement >= 0.8).sum() >= 7, best_agreement.to_dict()


def test_sort_metadata_figures_and_nothing_else(sorted_gt) -> None:
    outcome, out, _, elapsed = sorted_gt
    metadata = json.loads(outcome.metadata_path.read_text())
    assert (metadata["sorter"], metadata["sorter_name"]) == ("spikeinterface", "spykingcircus2")
    assert metadata["params"]["seed"] == 42 and metadata["versions"]["spikeinterface"] == si.__version__
    assert "sorter:spykingcircus2" in metadata["versions"] and "numpy" in metadata["versions"]
    assert (metadata["unit_count"], metadata["duration_s"], metadata["channel_count"]) == (outcome.unit_count, 60.0, 16)
    assert 0 < metadata["elapsed_s"] <= elapsed

    assert [p.name for p in outcome.figure_paths] == ["firing_rates.png", "raster.png"]
    for figure in outcome.figure_paths:
        assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and figure.stat().st_size > 5000

    # SpikeLab is installed here, so the SpikeData comes too, readable by SpikeLab.
    assert [p.name for p in outcome.extra_paths] == ["spikedata.h5", "spikedata.json"]
    spikedata = AnalysisWorkspace.load(str(out / "spikedata")).get("gt_recording", "spikedata")
    assert spikedata.N == outcome.unit_count and spikedata.length == 60000.0

    # The sorter's working folder and any pickle stay out of the uploaded outputs.
    written = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert written == {"units.npz", "sorting_metadata.json", "figures/firing_rates.png", "figures/raster.png",
                       "spikedata.h5", "spikedata.json"}
    assert sorted(metadata["outputs"]) == sorted(written - {"sorting_metadata.json"})


# --- SpikeLab adapter -------------------------------------------------------------------
def test_spikelab_presets_and_overrides() -> None:
    sorter = SpikeLabSorter()
    assert sorter.resolve_config()["sorter"]["sorter_name"] == "kilosort2"
    for preset, name in [("kilosort4", "kilosort4"), ("KILOSORT2_DOCKER", "kilosort2"), ("rt_sort_mea", "rt_sort")]:
        assert sorter.resolve_config(preset)["sorter"]["sorter_name"] == name
    resolved = sorter.resolve_config("kilosort4", {"fr_min": 0.5, "n_jobs": 2, "use_docker": True})
    assert resolved["curation"]["fr_min"] == 0.5 and resolved["execution"]["n_jobs"] == 2
    assert resolved["sorter"]["use_docker"] is True
    # The preset object SpikeLab shares between callers is left untouched.
    assert spikelab_config.KILOSORT4.curation.fr_min == 0.05 and spikelab_config.KILOSORT4.sorter.use_docker is False


def test_spikelab_accepts_a_config_object() -> None:
    custom = spikelab_config.KILOSORT4.override(snr_min=3.0)
    resolved = SpikeLabSorter().resolve_config(custom, {"fr_min": 0.2})
    assert resolved["curation"]["snr_min"] == 3.0 and resolved["curation"]["fr_min"] == 0.2
    with pytest.raises(ConfigError, match="unknown SpikeLab config field curation.snr_max"):
        SpikeLabSorter().resolve_config({**resolved, "curation": {**resolved["curation"], "snr_max": 1}})


def test_spikelab_sort_refuses_formats_its_pipeline_cannot_read(ground_truth, tmp_path) -> None:
    folder, _ = ground_truth
    with pytest.raises(ConfigError, match="one Maxwell .h5 or .nwb file"):
        SpikeLabSorter().sort(folder, SpikeLabSorter().resolve_config("kilosort4"), tmp_path / "out")


@pytest.mark.skipif(KILOSORT_INSTALLED, reason="checks the refusal when Kilosort is missing; it is installed here")
def test_spikelab_sort_without_kilosort_reports_spikelabs_diagnosis(small_nwb, tmp_path) -> None:
    sorter = SpikeLabSorter()
    with pytest.raises(SpikebatchError, match="could not sort session.nwb.*kilosort"):
        sorter.sort(small_nwb, sorter.resolve_config("kilosort4", {"n_jobs": 1}), tmp_path / "out")
    assert not list((tmp_path / "out").rglob("*.pkl"))


def test_spikelab_output_stage_writes_the_shared_formats(ground_truth, tmp_path) -> None:
    """What SpikeLabSorter.sort writes once SpikeLab's pipeline hands back its SpikeData."""
    from spikelab.spikedata import SpikeData

    _, truth = ground_truth
    fs = truth.get_sampling_frequency()
    ids = [int(u) for u in truth.unit_ids]
    spikedata = SpikeData([truth.get_unit_spike_train(str(u)) / fs * 1000.0 for u in ids], length=60000.0,
                          neuron_attributes=[{"unit_id": u, "snr": 9.0} for u in ids],
                          metadata={"fs_Hz": fs, "n_samples": 60 * int(fs), "channel_locations": np.zeros((16, 2))})
    units = units_from_spikedata(spikedata)
    assert units.unit_ids == ids and units.sampling_frequency == fs
    units_path, metadata_path, figures, extras = outputs.write_all(
        tmp_path, "rec.nwb", units, {"sorter": "spikelab"}, 60.0, spikedata=spikedata)
    back = outputs.read_units(units_path)
    assert back.unit_ids == ids
    np.testing.assert_allclose(back.spike_times[ids[0]], truth.get_unit_spike_train(str(ids[0])) / fs)
    stored = AnalysisWorkspace.load(str(tmp_path / "spikedata")).get("rec.nwb", "spikedata")
    assert stored.N == 10 and [a["snr"] for a in stored.neuron_attributes] == [9.0] * 10
    assert len(figures) == 2 and json.loads(metadata_path.read_text())["sorter"] == "spikelab"
