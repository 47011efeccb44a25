"""Sorter adapter over SpikeLab's sorting pipeline (``spikelab.spike_sorting``).

Configs are SpikeLab's ``SortingPipelineConfig``: pass an instance, a preset name
(the upper-case ``SortingPipelineConfig`` constants of ``spikelab.spike_sorting.config``
in lower case: kilosort2, kilosort2_docker, kilosort4, kilosort4_docker, rt_sort_mea,
rt_sort_neuropixels), or None for SpikeLab's defaults (Kilosort2). Overrides are
SpikeLab's flat keywords (``fr_min``, ``snr_min``, ``n_jobs``, …) applied with
``SortingPipelineConfig.override``, each first checked against the type of the value
it replaces (``parameter_checks``). The resolved config is the nested
``dataclasses.asdict`` form, which travels in the bundle as JSON and is rebuilt in the
job.

Recordings are what SpikeLab's pipeline reads: one Maxwell ``.h5`` or ``.nwb`` file.
The sorters behind it need their own runtime in the job image (Kilosort2: MATLAB or
Docker; Kilosort4 and RT-Sort: PyTorch, ideally a GPU).

SpikeLab writes its intermediate files and pickles into a temporary folder; into
``output_dir`` go the shared open formats (units.npz, metadata, figures, the curated
SpikeData as a SpikeLab HDF5 workspace) and, under ``spikelab/``, SpikeLab's own
reports (JSON, Markdown, figures, logs), never its pickles.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Mapping, Optional

from ...domain.errors import ConfigError, SpikebatchError
from ...ports.sorter import SortingOutcome
from .parameter_checks import check_override

INSTALL_HINT = "pip install spikelab"
#: SpikeLab's own report files worth keeping (never its .pkl results).
REPORT_SUFFIXES = {".json", ".md", ".png", ".pdf", ".log", ".txt"}
REPORT_DIR = "spikelab"
RECORDING_SUFFIXES = (".h5", ".nwb")


def _config_module():
    try:
        import spikelab.spike_sorting.config as config_module
    except ImportError as exc:
        raise ConfigError(f"the spikelab sorter needs SpikeLab: {INSTALL_HINT} ({exc})") from exc
    return config_module


def presets() -> dict:
    """Preset name (lower case) -> SortingPipelineConfig, as SpikeLab defines them."""
    module = _config_module()
    return {name.lower(): value for name, value in vars(module).items()
            if name.isupper() and isinstance(value, module.SortingPipelineConfig)}


def config_from_dict(data: Mapping) -> Any:
    """Rebuild a SortingPipelineConfig from its ``dataclasses.asdict`` form; unknown
    sections or fields (a config from another SpikeLab version) raise ConfigError."""
    module = _config_module()
    sections = {f.name: f.default_factory for f in dataclasses.fields(module.SortingPipelineConfig)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"unknown SpikeLab config section {unknown[0]!r}; valid sections: {', '.join(sections)}")
    built = {}
    for section, values in data.items():
        cls = sections[section]
        if not isinstance(values, Mapping):
            raise ConfigError(f"SpikeLab config section {section!r} must be an object")
        names = {f.name for f in dataclasses.fields(cls)}
        extra = sorted(set(values) - names)
        if extra:
            raise ConfigError(f"unknown SpikeLab config field {section}.{extra[0]}; valid fields: {', '.join(sorted(names))}")
        built[section] = cls(**values)
    return module.SortingPipelineConfig(**built)


def _flat_keys(module: Any) -> list[str]:
    # SpikeLab 0.1.2 keeps its flat-keyword table in this static method; it is the
    # only list of the names ``override`` accepts.
    return sorted(module.SortingPipelineConfig._build_flat_map())


def _check_readable_by_spikelab(recording_path: Path) -> None:
    if not recording_path.is_file() or not recording_path.name.lower().endswith(RECORDING_SUFFIXES):
        raise ConfigError(f"recording {recording_path.name}: the spikelab sorter reads one Maxwell .h5 or "
                          f".nwb file (use the spikeinterface sorter for other formats)")


class SpikeLabSorter:
    """Sorter port over ``spikelab.spike_sorting.sort_recording``."""

    name = "spikelab"

    def resolve_config(self, config: Any = None, overrides: Optional[Mapping[str, Any]] = None) -> dict:
        module = _config_module()
        if config is None:
            base = module.SortingPipelineConfig()
        elif isinstance(config, str):
            known = presets()
            base = known.get(config.lower())
            if base is None:
                raise ConfigError(f"unknown SpikeLab preset {config!r}; valid presets: {', '.join(sorted(known))}")
        elif isinstance(config, module.SortingPipelineConfig):
            base = config
        elif isinstance(config, Mapping):
            base = config_from_dict(config)
        else:
            raise ConfigError(f"a SpikeLab sorting config is a SortingPipelineConfig, a preset name or None, "
                              f"not {type(config).__name__}")
        if overrides:
            if not isinstance(overrides, Mapping):
                raise ConfigError(f"config_overrides must be a dict, not {type(overrides).__name__}")
            valid = _flat_keys(module)
            flat_map = module.SortingPipelineConfig._build_flat_map()
            for key, value in overrides.items():
                if key not in valid:
                    raise ConfigError(f"unknown SpikeLab config override {key!r}; valid keys: {', '.join(valid)}")
                # Checked against the value it replaces, as SpikeInterface's are: a
                # wrong type would otherwise surface inside the job, after the upload.
                section, field = flat_map[key]
                check_override(key, value, getattr(getattr(base, section), field), sorter_name="SpikeLab")
            # override() deep-copies: the module-level preset objects stay untouched.
            base = base.override(**dict(overrides))
        resolved = dataclasses.asdict(base)
        try:
            json.dumps(resolved)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"the SpikeLab config must hold JSON values only (it travels in the bundle): {exc}") from exc
        return resolved

    def describe(self, recording_path: Path) -> dict:
        """The recording as SpikeLab's pipeline will read it (through SpikeInterface's
        Maxwell and NWB readers)."""
        from .spikeinterface import describe_recording

        recording_path = Path(recording_path)
        _check_readable_by_spikelab(recording_path)
        return describe_recording(recording_path)

    def sort(self, recording_path: Path, config: Mapping[str, Any], output_dir: Path) -> SortingOutcome:
        """Run SpikeLab's pipeline on one recording file and write the results."""
        from . import outputs

        recording_path = Path(recording_path)
        _check_readable_by_spikelab(recording_path)
        pipeline_config = config_from_dict(config)
        from spikelab.spike_sorting._exceptions import SpikeSortingClassifiedError
        from spikelab.spike_sorting.pipeline import SortRunReport, sort_recording

        output_dir = Path(output_dir)
        output_dir.mkdir(parents=True, exist_ok=True)
        started = time.monotonic()
        report = SortRunReport()
        with tempfile.TemporaryDirectory(prefix="spikebatch-spikelab-") as scratch:
            results = Path(scratch) / "results"
            try:
                spikedatas = sort_recording([str(recording_path)], config=pipeline_config,
                                            intermediate_folders=[Path(scratch) / "intermediate"],
                                            results_folders=[results], out_report=report)
            except SpikeSortingClassifiedError as exc:
                # SpikeLab's own diagnosis (preflight: missing sorter package, no GPU,
                # no disk...) already says what to fix; pass it on as one line.
                raise SpikebatchError(f"SpikeLab {pipeline_config.sorter.sorter_name} could not sort "
                                      f"{recording_path.name}: {type(exc).__name__}: {exc}") from exc
            reports = _keep_reports(results, output_dir / REPORT_DIR)
        elapsed = time.monotonic() - started
        sorter_name = pipeline_config.sorter.sorter_name
        failed = report.failed
        if failed:
            record = failed[0]
            raise SpikebatchError(f"SpikeLab {sorter_name} failed on {recording_path.name} ({record.status}): "
                                  f"{record.error_class}: {record.error_message}")
        if len(spikedatas) != 1:
            raise SpikebatchError(f"SpikeLab returned {len(spikedatas)} SpikeData for {recording_path.name}; "
                                  "spikebatch writes one per recording (leave rec_chunks / rec_chunks_s unset)")
        spikedata = spikedatas[0]
        units = units_from_spikedata(spikedata)
        duration = _duration_s(spikedata, units.sampling_frequency)
        metadata = {
            "sorter": self.name, "sorter_name": sorter_name, "params": dict(config),
            "versions": outputs.package_versions("spikebatch", "spikelab", "spikeinterface", "numpy"),
            "recording": recording_path.name, "unit_count": len(units.unit_ids), "duration_s": duration,
            "channel_count": _channel_count(spikedata), "sampling_frequency": units.sampling_frequency,
            "elapsed_s": round(elapsed, 3),
        }
        units_path, metadata_path, figures, extras = outputs.write_all(
            output_dir, recording_path.name, units, metadata, duration, spikedata=spikedata)
        return SortingOutcome(recording=recording_path.name, unit_count=len(units.unit_ids), units_path=units_path,
                              metadata_path=metadata_path, figure_paths=figures, extra_paths=[*extras, *reports])


def units_from_spikedata(spikedata: Any) -> Any:
    """Units (ids, spike times in seconds, sampling rate) of a SpikeLab SpikeData.
    Unit ids are the sorter's (neuron attribute ``unit_id``) when every unit has one,
    else the unit's position; the rate is ``metadata["fs_Hz"]`` (NaN if unknown)."""
    import numpy as np

    from .outputs import Units

    attributes = spikedata.neuron_attributes or []
    ids = [a.get("unit_id") for a in attributes] if len(attributes) == spikedata.N else []
    if not ids or any(u is None for u in ids) or len(set(map(str, ids))) != len(ids):
        ids = list(range(spikedata.N))
    ids = [u.item() if hasattr(u, "item") else u for u in ids]
    times = {u: np.asarray(train, dtype=np.float64) / 1000.0 for u, train in zip(ids, spikedata.train)}
    fs = float((spikedata.metadata or {}).get("fs_Hz", float("nan")))
    return Units(ids, times, fs)


def _channel_count(spikedata: Any) -> Optional[int]:
    """Channels of the sorted recording: SpikeLab records their locations."""
    locations = (spikedata.metadata or {}).get("channel_locations")
    return len(locations) if locations is not None else None


def _duration_s(spikedata: Any, fs: float) -> float:
    """The recording's length: its sample count when SpikeLab recorded it (the
    SpikeData's own length may end at the last spike), else the SpikeData's length."""
    samples = (spikedata.metadata or {}).get("n_samples")
    if samples is not None and fs > 0:
        return int(samples) / fs
    return float(spikedata.length) / 1000.0


def _keep_reports(results: Path, target: Path) -> list[Path]:
    """Copy SpikeLab's report files (not its pickles) from ``results`` to ``target``."""
    kept = []
    if not results.is_dir():
        return kept
    for path in sorted(results.rglob("*")):
        if path.is_file() and not path.is_symlink() and path.suffix.lower() in REPORT_SUFFIXES:
            dest = target / path.relative_to(results)
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, dest)
            kept.append(dest)
    return kept
