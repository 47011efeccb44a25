"""What one sorted recording contributes to a sorting job's result workspace.

Both workspace kinds get the same keys in the recording's namespace:
``unit_ids`` and ``spike_times_<id>`` (arrays, seconds), ``sampling_frequency`` and
``sorting_metadata``; SpikeLab's also gets ``spikedata`` (the recording's SpikeData).
SpikeLab's AnalysisWorkspace saves only arrays, dicts and its own data classes, so
scalars go in as 0-d arrays and the metadata as a JSON string under {"json": ...}.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

import numpy as np

from ...ports.sorter import SortingOutcome
from .outputs import SPIKEDATA_BASENAME, SPIKEDATA_KEY, read_units


def _is_spikelab(workspace: Any) -> bool:
    return type(workspace).__module__.startswith("spikelab")


def result_items(outcome: SortingOutcome, workspace: Any) -> Dict[str, Any]:
    units = read_units(outcome.units_path)
    metadata = json.loads(Path(outcome.metadata_path).read_text(encoding="utf-8"))
    spikelab = _is_spikelab(workspace)
    items: Dict[str, Any] = {"unit_ids": np.asarray(units.unit_ids)}
    for unit_id in units.unit_ids:
        items[f"spike_times_{unit_id}"] = np.asarray(units.spike_times[unit_id], dtype=np.float64)
    if spikelab:
        items["sampling_frequency"] = np.array(units.sampling_frequency, dtype=np.float64)  # 0-d ndarray, not a numpy scalar
        items["sorting_metadata"] = {"json": json.dumps(metadata)}
        saved = [p for p in outcome.extra_paths if Path(p).name == SPIKEDATA_BASENAME + ".h5"]
        if saved:
            from spikelab.workspace import AnalysisWorkspace

            base = str(Path(saved[0]).with_suffix(""))
            items[SPIKEDATA_KEY] = AnalysisWorkspace.load(base).get(outcome.recording, SPIKEDATA_KEY)
    else:
        items["sampling_frequency"] = float(units.sampling_frequency)
        items["sorting_metadata"] = metadata
    return items
