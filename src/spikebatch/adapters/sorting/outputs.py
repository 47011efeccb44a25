"""What every Sorter adapter writes for one recording, in open formats:

- ``units.npz``: ``unit_ids``, ``sampling_frequency`` and, per unit, ``spike_times_<id>``
  (seconds, float64). Plain arrays only, so ``np.load(..., allow_pickle=False)`` reads it.
- ``sorting_metadata.json``: sorter, parameters, versions, counts, durations, timing.
- ``figures/firing_rates.png`` and ``figures/raster.png``: quick QC plots (matplotlib's
  Agg canvas, no display and no global backend switch).
- ``spikedata.h5`` + ``spikedata.json`` when SpikeLab is importable: a SpikeLab
  AnalysisWorkspace holding the recording's SpikeData at (<recording>, "spikedata").
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ...domain.errors import SpikebatchError
from ..files.atomic import atomic_path, write_text_atomically
from ..workspaces.spikelab import spikelab_available

UNITS_FILE = "units.npz"
METADATA_FILE = "sorting_metadata.json"
FIGURES_DIR = "figures"
SPIKEDATA_BASENAME = "spikedata"
SPIKEDATA_KEY = "spikedata"
#: The raster shows at most this many seconds, so it stays readable and quick to draw.
RASTER_WINDOW_S = 60.0


@dataclass(frozen=True)
class Units:
    """The content of a units.npz."""

    unit_ids: list
    spike_times: dict  # unit id -> spike times in seconds
    sampling_frequency: float


def _id_label(unit_id: Any) -> str:
    label = str(unit_id)
    if not label or "/" in label or label != label.strip():
        raise SpikebatchError(f"unit id {unit_id!r} cannot name an array in {UNITS_FILE}")
    return label


def write_units(output_dir: Path, unit_ids: Sequence, spike_times: Mapping, sampling_frequency: float) -> Path:
    ids = list(unit_ids)
    all_int = all(isinstance(u, (int, np.integer)) and not isinstance(u, bool) for u in ids)
    id_array = np.asarray([int(u) for u in ids], dtype=np.int64) if all_int else np.asarray([str(u) for u in ids], dtype=str)
    arrays = {"unit_ids": id_array, "sampling_frequency": np.float64(sampling_frequency)}
    for u in ids:
        arrays[f"spike_times_{_id_label(u)}"] = np.asarray(spike_times[u], dtype=np.float64)
    target = Path(output_dir) / UNITS_FILE
    with atomic_path(target) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, **arrays)
    return target


def read_units(path: Path) -> Units:
    """Units from a units.npz written by write_units (ids come back as int or str)."""
    with np.load(path, allow_pickle=False) as data:
        ids = data["unit_ids"].tolist()
        times = {u: data[f"spike_times_{u}"] for u in ids}
        return Units(ids, times, float(data["sampling_frequency"]))


def package_versions(*names: str) -> dict:
    """Installed versions of ``names`` (absent packages are left out) plus Python's."""
    found = {"python": platform.python_version()}
    for name in names:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def write_metadata(output_dir: Path, metadata: Mapping) -> Path:
    target = Path(output_dir) / METADATA_FILE
    # default=str: a sorter parameter that is not JSON (a Path, a dtype) is recorded by
    # its text, which is what a reader of the metadata needs.
    write_text_atomically(target, json.dumps(dict(metadata), indent=2, default=str))
    return target


def write_figures(output_dir: Path, recording: str, units: Units, duration_s: float) -> list[Path]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    folder = Path(output_dir) / FIGURES_DIR
    folder.mkdir(parents=True, exist_ok=True)
    labels = [str(u) for u in units.unit_ids]
    rates = [len(units.spike_times[u]) / duration_s if duration_s > 0 else 0.0 for u in units.unit_ids]

    rate_fig = Figure(figsize=(max(4.0, 0.3 * len(labels) + 2), 3.5))
    ax = rate_fig.add_subplot()
    if labels:
        ax.bar(range(len(labels)), rates, color="tab:blue")
        ax.set_xticks(range(len(labels)), labels, rotation=90 if len(labels) > 20 else 0, fontsize=7)
    else:
        ax.text(0.5, 0.5, "no units found", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("unit")
    ax.set_ylabel("firing rate (Hz)")
    ax.set_title(f"{recording}: {len(labels)} units, {duration_s:.1f} s")

    window = min(duration_s, RASTER_WINDOW_S)
    raster_fig = Figure(figsize=(8, max(2.5, 0.15 * len(labels) + 1.5)))
    ax = raster_fig.add_subplot()
    trains = [t[t < window] for t in (np.asarray(units.spike_times[u]) for u in units.unit_ids)]
    if trains:
        ax.eventplot(trains, linelengths=0.8, linewidths=0.5, colors="black")
        ax.set_yticks(range(len(labels)), labels, fontsize=6)
    else:
        ax.text(0.5, 0.5, "no units found", ha="center", va="center", transform=ax.transAxes)
    ax.set_xlim(0, window if window > 0 else 1)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("unit")
    ax.set_title(f"{recording}: raster, first {window:.0f} s")

    written = []
    for fig, name in ((rate_fig, "firing_rates.png"), (raster_fig, "raster.png")):
        FigureCanvasAgg(fig)
        fig.tight_layout()
        target = folder / name
        with atomic_path(target) as tmp:
            fig.savefig(tmp, format="png", dpi=100)
        written.append(target)
    return written


def spikedata_from_units(units: Units, duration_s: float, metadata: Mapping) -> Any:
    """A SpikeLab SpikeData of ``units`` (times in ms, as SpikeData counts them)."""
    from spikelab.spikedata import SpikeData

    return SpikeData(
        [np.asarray(units.spike_times[u], dtype=float) * 1000.0 for u in units.unit_ids],
        N=len(units.unit_ids),
        length=duration_s * 1000.0,
        neuron_attributes=[{"unit_id": str(u)} for u in units.unit_ids],
        metadata=dict(metadata),
    )


def write_spikedata(output_dir: Path, recording: str, spikedata: Any) -> list[Path]:
    """Save ``spikedata`` as a SpikeLab workspace (no pickle: SpikeLab's HDF5 format)."""
    from spikelab.workspace import AnalysisWorkspace

    workspace = AnalysisWorkspace(name=f"sorting of {recording}")
    workspace.store(recording, SPIKEDATA_KEY, spikedata)
    base = Path(output_dir) / SPIKEDATA_BASENAME
    workspace.save(str(base))
    return [base.with_name(SPIKEDATA_BASENAME + ".h5"), base.with_name(SPIKEDATA_BASENAME + ".json")]


def write_all(output_dir: Path, recording: str, units: Units, metadata: dict, duration_s: float,
              spikedata: Any = None) -> tuple[Path, Path, list[Path], list[Path]]:
    """units.npz, metadata, figures and (SpikeLab present) the SpikeData workspace.
    ``spikedata`` is the sorter's own SpikeData when it made one; otherwise one is
    built from ``units``. Returns (units, metadata, figures, extras)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    units_path = write_units(output_dir, units.unit_ids, units.spike_times, units.sampling_frequency)
    figures = write_figures(output_dir, recording, units, duration_s)
    extras: list[Path] = []
    if spikedata is None and spikelab_available():
        spikedata = spikedata_from_units(units, duration_s, {"recording": recording, "sorter": metadata.get("sorter")})
    if spikedata is not None:
        extras = write_spikedata(output_dir, recording, spikedata)
    metadata = {**metadata, "outputs": [p.relative_to(output_dir).as_posix() for p in [units_path, *figures, *extras]]}
    return units_path, write_metadata(output_dir, metadata), figures, extras
