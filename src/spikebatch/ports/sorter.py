"""The Sorter port: spike sorting of one recording inside the job."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Optional, Protocol, runtime_checkable


@dataclass(frozen=True)
class SortingOutcome:
    """What sorting one recording produced (paths inside the output folder)."""

    recording: str
    unit_count: int
    #: units.npz: ``unit_ids`` and, per unit, its spike times in seconds
    #: (``spike_times_<unit_id>``), plus ``sampling_frequency``.
    units_path: Path
    metadata_path: Path
    figure_paths: list[Path] = field(default_factory=list)
    extra_paths: list[Path] = field(default_factory=list)


@runtime_checkable
class Sorter(Protocol):
    #: Short name recorded in the bundle manifest ("spikeinterface", "spikelab").
    name: str

    def resolve_config(self, config: Any = None, overrides: Optional[Mapping[str, Any]] = None) -> dict:
        """A JSON-serialisable sorting config from a preset name / config object / None
        plus flat overrides. Unknown keys are rejected with ConfigError naming them.
        Runs on the submitting machine, before anything is uploaded."""

    def describe(self, recording_path: Path) -> dict:
        """Open the recording as the sorter will and describe it: ``format``,
        ``channels``, ``duration_s``, ``sampling_frequency`` (JSON values). Runs on
        the submitting machine before anything is uploaded; a recording the sorter
        cannot read raises ConfigError naming it and the formats it reads."""

    def sort(self, recording_path: Path, config: Mapping[str, Any], output_dir: Path) -> SortingOutcome:
        """Sort one recording (a file or a folder) into ``output_dir``."""
