"""Which sorter adapter serves a sorting config.

- A SpikeLab config object (``SortingPipelineConfig``): SpikeLab's sorter.
- A preset name: our own presets keep their lower-case spelling (``kilosort4``,
  ``mountainsort5``, ``spykingcircus2``, ``tridesclous2``: SpikeInterface's sorters).
  A name SpikeLab knows (its ``spikelab.spike_sorting.config`` constants, matched as the
  spec does, case-folded: ``KILOSORT2``, ``KILOSORT4``, ``RT_SORT_MEA``, ...) goes to
  SpikeLab's sorter when it is written with any upper-case letter, or when it is not
  one of ours (``kilosort2``, ``rt_sort_mea``). So ``"kilosort4"`` is ours and
  ``"KILOSORT4"`` is SpikeLab's. SpikeLab must be installed for its names.
- Anything else (None, a dict): SpikeInterface's sorter.
"""

from __future__ import annotations

from typing import Any, Callable, Optional

#: ``knows(sorter_name, preset)``: whether that sorter takes that preset name here.
PresetCheck = Callable[[str, str], bool]


def sorter_name_for(config: Any, knows: Optional[PresetCheck] = None) -> str:
    """"spikelab" or "spikeinterface" for ``config`` (see the module doc). Without
    ``knows`` a preset name goes to SpikeInterface's sorter."""
    if isinstance(config, str):
        if knows is None:
            return "spikeinterface"
        name = config.strip()
        if name == name.lower() and knows("spikeinterface", name):
            return "spikeinterface"
        return "spikelab" if knows("spikelab", name) else "spikeinterface"
    module = type(config).__module__ if config is not None and not isinstance(config, dict) else ""
    return "spikelab" if module.startswith("spikelab") else "spikeinterface"
