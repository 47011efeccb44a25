"""Sorter adapter over SpikeInterface's ``run_sorter``.

Presets are SpikeInterface sorters by name, each starting from that sorter's defaults
(``spikeinterface.sorters.get_default_sorter_params``): kilosort4 and mountainsort5
need their own packages in the job image (``pip install kilosort`` /
``mountainsort5``); spykingcircus2 and tridesclous2 are built into SpikeInterface and
need nothing else. With no preset, spykingcircus2 is used: it runs on any CPU.

The resolved config is ``{"sorter_name", "preset", "params", "overrides"}`` where
``params`` are the defaults with the overrides applied. Overrides are keyword
arguments of ``run_sorter``; a dict value is merged into a dict default
(``{"detection": {"method_kwargs": {"detect_threshold": 6}}}`` changes one entry).
Unknown keys are refused, at any depth, except inside ``*_kwargs`` and empty
defaults, which SpikeInterface passes on unchecked; every value is checked against
the type of the default it replaces (``parameter_checks``).

``preset_catalog`` and ``preset_parameters`` describe the presets for a person
choosing one (``spikebatch sorters``): what each needs, and its parameters.

Recordings (``sort``'s ``recording_path``):

- a folder written by SpikeInterface (``recording.save(folder=...)``, binary or
  ``format="zarr"``), loaded with ``spikeinterface.load``;
- ``.nwb`` (``read_nwb_recording``), Maxwell ``.h5`` / ``.raw.h5`` (``read_maxwell``)
  and Intan ``.rhd`` / ``.rhs`` (``read_intan``) files.

The sorter works in a temporary folder (``$TMPDIR``); only the open-format results of
``sorting.outputs`` land in ``output_dir``.
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any, Mapping, Optional

from ...domain.errors import ConfigError, InputFileNotFoundError, SpikebatchError
from ...ports.sorter import SortingOutcome
from .parameter_checks import flatten_parameters, merge_overrides

PRESETS = ("kilosort4", "mountainsort5", "spykingcircus2", "tridesclous2")
DEFAULT_PRESET = "spykingcircus2"
INSTALL_HINT = 'pip install "spikeinterface[full]"'

_CONFIG_KEYS = {"sorter_name", "preset", "params", "overrides"}

# PyPI package of the sorters that are not built into SpikeInterface.
_PACKAGES = {"kilosort4": "kilosort", "mountainsort5": "mountainsort5"}
# What a person choosing a preset should know beyond its package.
_ADVICE = {"kilosort4": "PyTorch comes with it; an NVIDIA GPU makes it practical (--gpus 1)"}
# SpikeInterface's ``gpu_capability`` of a sorter class, in words.
_GPU_USE = {"not-supported": "no", "nvidia-optional": "optional", "nvidia-required": "required"}

# File suffix -> name of the spikeinterface.extractors reader for it.
_FILE_READERS = {
    ".nwb": "read_nwb_recording",
    ".h5": "read_maxwell",
    ".rhd": "read_intan",
    ".rhs": "read_intan",
}


def _sorters_module():
    try:
        import spikeinterface.sorters as sorters
    except ImportError as exc:
        raise ConfigError(f"the spikeinterface sorter needs SpikeInterface: {INSTALL_HINT} ({exc})") from exc
    return sorters


def _defaults(sorter_name: str) -> tuple[dict, Optional[str]]:
    """The sorter's default params, and a hint when they are incomplete here (the
    sorter's own package is missing, so SpikeInterface cannot list its parameters)."""
    sorters = _sorters_module()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        params = sorters.get_default_sorter_params(sorter_name)
    hint = None
    if caught and not sorters.sorter_dict[sorter_name].is_installed():
        hint = (f"{sorter_name} is not installed on this machine, so only SpikeInterface's generic "
                f"parameters are known; pip install {_PACKAGES.get(sorter_name, sorter_name)} here to set its own")
    return copy.deepcopy(params), hint


def _check_json(value: Any, sorter_name: str) -> None:
    try:
        json.dumps(value)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{sorter_name} parameters must be JSON values (they travel in the bundle): {exc}") from exc


class SpikeInterfaceSorter:
    """Sorter port over ``spikeinterface.sorters.run_sorter``."""

    name = "spikeinterface"

    def resolve_config(self, config: Any = None, overrides: Optional[Mapping[str, Any]] = None) -> dict:
        """``config``: a preset name, None (spykingcircus2), or a dict with
        ``sorter_name`` and ``overrides`` (as this method returns) or ``params``;
        ``overrides`` are applied on top."""
        base_overrides: dict = {}
        if config is None:
            sorter_name = DEFAULT_PRESET
        elif isinstance(config, str):
            sorter_name = config
        elif isinstance(config, Mapping) and isinstance(config.get("sorter_name"), str):
            unknown = sorted(set(config) - _CONFIG_KEYS)
            if unknown:
                raise ConfigError(f"unknown spikeinterface config key {unknown[0]!r}; valid keys: {', '.join(sorted(_CONFIG_KEYS))}")
            sorter_name = config["sorter_name"]
            # A resolved config is re-resolved from its overrides (the job's own defaults
            # may differ from the submitter's); a hand-written one may give params only.
            base_overrides = dict(config["overrides"] if "overrides" in config else config.get("params") or {})
        else:
            raise ConfigError(
                f"the spikeinterface sorter takes a preset name ({', '.join(PRESETS)}), None or a resolved "
                f"config dict, not {type(config).__name__}; a SortingPipelineConfig needs the spikelab sorter"
            )
        if sorter_name not in PRESETS:
            raise ConfigError(f"unknown spikeinterface preset {sorter_name!r}; valid presets: {', '.join(PRESETS)}")
        if overrides is not None and not isinstance(overrides, Mapping):
            raise ConfigError(f"config_overrides must be a dict, not {type(overrides).__name__}")
        all_overrides = {**base_overrides, **dict(overrides or {})}
        _check_json(all_overrides, sorter_name)
        defaults, hint = _defaults(sorter_name)
        params = merge_overrides(defaults, all_overrides, sorter_name=sorter_name, hint=hint)
        return {"sorter_name": sorter_name, "preset": sorter_name, "params": params, "overrides": all_overrides}

    def preset_catalog(self) -> list[dict]:
        """Every preset with what it needs: ``preset``, ``default`` (the one used when
        none is named), ``gpu`` (no / optional / required), ``installed`` (on this
        machine; a job needs it in its image), ``install`` (the pip command, None for
        the sorters built into SpikeInterface) and ``needs`` (one line for a person)."""
        sorters = _sorters_module()
        return [_preset_entry(sorters, name) for name in PRESETS]

    def preset_parameters(self, preset: str) -> dict:
        """A preset's entry of ``preset_catalog`` plus its parameters: ``defaults``
        (nested, as ``--set`` / config_overrides change them), ``parameters`` (one row
        per parameter, nested ones by dotted name: ``name``, ``default``,
        ``description`` on the first row of each top-level parameter) and ``note``
        (why the list is incomplete here, or None)."""
        if preset not in PRESETS:
            raise ConfigError(f"unknown spikeinterface preset {preset!r}; valid presets: {', '.join(PRESETS)}")
        sorters = _sorters_module()
        defaults, hint = _defaults(preset)
        defaults = json.loads(json.dumps(defaults, default=str))  # as they travel: JSON values
        with warnings.catch_warnings():
            # Asked of a sorter that is not installed, SpikeInterface warns and lists
            # the generic parameters only; ``note`` says so in words.
            warnings.simplefilter("ignore")
            descriptions = dict(sorters.get_sorter_params_description(preset))
        rows, described = [], set()
        for name, default in flatten_parameters(defaults):
            top = name.split(".", 1)[0]
            text = descriptions.get(top) if top not in described else None
            described.add(top)
            rows.append({"name": name, "default": default, "description": " ".join(str(text).split()) if text else None})
        return {**_preset_entry(sorters, preset), "defaults": defaults, "parameters": rows, "note": hint}

    def describe(self, recording_path: Path) -> dict:
        """Format, channels, duration and sampling rate, read as ``sort`` reads them."""
        return describe_recording(Path(recording_path))

    def sort(self, recording_path: Path, config: Mapping[str, Any], output_dir: Path) -> SortingOutcome:
        """Sort one recording with the configured SpikeInterface sorter and write the
        open-format results into ``output_dir``."""
        from . import outputs

        sorters = _sorters_module()
        recording_path = Path(recording_path)
        resolved = self.resolve_config(dict(config))
        sorter_name = resolved["sorter_name"]
        # Re-resolved here, so params are the job's own defaults (its SpikeInterface
        # version, its installed sorter) plus the user's overrides; an override the job's
        # version does not know fails here, by name, rather than deep inside the sorter.
        params = resolved["params"]
        if not sorters.sorter_dict[sorter_name].is_installed():
            raise SpikebatchError(f"sorter {sorter_name} is not installed in this environment: "
                                  f"{sorters.sorter_dict[sorter_name].installation_mesg}")
        recording = load_recording(recording_path)
        started = time.monotonic()
        with tempfile.TemporaryDirectory(prefix="spikebatch-sort-") as scratch:
            sorter_folder = Path(scratch) / "sorter"
            try:
                sorting = sorters.run_sorter(sorter_name, recording, folder=str(sorter_folder),
                                             remove_existing_folder=True, verbose=False, raise_error=True, **params)
            except Exception as exc:
                # SpikeInterface's message points at a log in this temporary folder,
                # which is gone once the job ends: the trace goes to the job's own log
                # (kept with its outputs), the real exception into the error.
                raise SorterFailed(sorter_name, recording_path.name, _sorter_trace(sorter_folder), exc) from None
            units = _units_of(sorting, recording)
        elapsed = time.monotonic() - started
        duration = sum(recording.get_num_samples(s) for s in range(recording.get_num_segments())) / recording.get_sampling_frequency()
        metadata = {
            "sorter": self.name, "sorter_name": sorter_name, "preset": resolved["preset"],
            "params": params, "overrides": resolved["overrides"],
            "versions": {**outputs.package_versions("spikebatch", "spikeinterface", "numpy"),
                         f"sorter:{sorter_name}": _sorter_version(sorters, sorter_name)},
            "recording": recording_path.name, "unit_count": len(units.unit_ids),
            "duration_s": duration, "channel_count": int(recording.get_num_channels()),
            "sampling_frequency": float(recording.get_sampling_frequency()),
            "segment_count": int(recording.get_num_segments()), "elapsed_s": round(elapsed, 3),
        }
        units_path, metadata_path, figures, extras = outputs.write_all(
            Path(output_dir), recording_path.name, units, metadata, duration)
        return SortingOutcome(recording=recording_path.name, unit_count=len(units.unit_ids), units_path=units_path,
                              metadata_path=metadata_path, figure_paths=figures, extra_paths=extras)


def _preset_entry(sorters: Any, name: str) -> dict:
    sorter_class = sorters.sorter_dict[name]
    package = _PACKAGES.get(name)
    needs = f"pip install {package} in the job's image" if package else "nothing: built into SpikeInterface"
    if name in _ADVICE:
        needs += f"; {_ADVICE[name]}"
    capability = str(getattr(sorter_class, "gpu_capability", "not-supported"))
    return {"preset": name, "default": name == DEFAULT_PRESET, "gpu": _GPU_USE.get(capability, capability),
            "installed": bool(sorter_class.is_installed()), "install": f"pip install {package}" if package else None,
            "needs": needs}


class SorterFailed(RuntimeError):
    """The sorter raised while sorting a recording: its own exception line, and its
    trace printed where the job's log keeps it. Not a SpikebatchError: a crash may be
    transient (a node's memory, a GPU), so the Job retries it."""

    def __init__(self, sorter_name: str, recording: str, trace: list[str], cause: BaseException) -> None:
        lines = [line.strip() for line in trace if line.strip()]
        if lines:
            print(f"{sorter_name} failed on {recording}; its trace:", flush=True)
            for line in trace:
                print(line, flush=True)
        detail = lines[-1] if lines else f"{type(cause).__name__}: {cause}"
        super().__init__(f"{sorter_name} failed on {recording}: {detail}")


def _sorter_trace(sorter_folder: Path) -> list[str]:
    """The error trace SpikeInterface wrote to ``spikeinterface_log.json``, if any."""
    try:
        log = json.loads((sorter_folder / "spikeinterface_log.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return []
    trace = log.get("error_trace") if isinstance(log, dict) else None
    return [str(line) for line in trace] if isinstance(trace, list) else []


def _sorter_version(sorters: Any, sorter_name: str) -> str:
    return str(sorters.sorter_dict[sorter_name].get_sorter_version())


def load_recording(path: Path) -> Any:
    """A SpikeInterface recording from a saved folder or a supported file."""
    try:
        import spikeinterface as si
        import spikeinterface.extractors as extractors
    except ImportError as exc:
        raise ConfigError(f"reading recordings needs SpikeInterface: {INSTALL_HINT} ({exc})") from exc
    path = Path(path)
    if not path.exists():
        raise InputFileNotFoundError(f"recording {path} does not exist; check the path")
    if path.is_dir():
        markers = ("si_folder.json", "binary.json", ".zattrs", "zarr.json")
        if not any((path / m).is_file() for m in markers):
            raise ConfigError(f"recording folder {path} was not saved by SpikeInterface (none of {', '.join(markers)}); "
                              f"supported: a SpikeInterface folder or {', '.join(sorted(_FILE_READERS))} files")
        return si.load(path)
    reader = _FILE_READERS.get(path.suffix.lower())
    if reader is None:
        raise ConfigError(f"recording {path.name}: unsupported format {path.suffix!r}; supported: a SpikeInterface "
                          f"folder or {', '.join(sorted(_FILE_READERS))} files")
    return getattr(extractors, reader)(path)


def describe_recording(path: Path) -> dict:
    """What a user checks before sorting: the format and the recording's shape. Any
    error of the reader (a damaged header, a file of another kind) is a ConfigError
    naming the recording: the batch is refused before anything is uploaded."""
    try:
        recording = load_recording(path)
        fs = float(recording.get_sampling_frequency())
        samples = sum(recording.get_num_samples(s) for s in range(recording.get_num_segments()))
        channels = int(recording.get_num_channels())
    except ConfigError:
        raise
    except Exception as exc:  # whatever the format's reader raises on a bad file
        raise ConfigError(f"recording {path.name} cannot be opened ({type(exc).__name__}: {exc}); "
                          "check that it is complete and in a supported format") from None
    if path.is_dir():
        fmt = "spikeinterface-zarr" if any((path / m).is_file() for m in (".zattrs", "zarr.json")) else "spikeinterface-binary"
    else:
        fmt = path.suffix.lower().lstrip(".")
    return {"format": fmt, "channels": channels, "duration_s": round(samples / fs, 3) if fs else 0.0,
            "sampling_frequency": fs}


def _units_of(sorting: Any, recording: Any) -> Any:
    """Spike times in seconds per unit; segments are laid end to end, each starting
    where the previous one ended."""
    from .outputs import Units
    import numpy as np

    fs = float(sorting.get_sampling_frequency())
    offsets, total = [], 0
    for seg in range(recording.get_num_segments()):
        offsets.append(total)
        total += recording.get_num_samples(seg)
    unit_ids = [u.item() if hasattr(u, "item") else u for u in sorting.unit_ids]
    times = {}
    for raw, unit in zip(sorting.unit_ids, unit_ids):
        frames = [np.asarray(sorting.get_unit_spike_train(raw, segment_index=seg), dtype=np.int64) + offsets[seg]
                  for seg in range(sorting.get_num_segments())]
        times[unit] = np.sort(np.concatenate(frames)) / fs if frames else np.zeros(0)
    return Units(unit_ids, times, fs)
