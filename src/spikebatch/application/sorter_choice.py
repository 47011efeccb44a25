"""Which sorter adapter serves a sorting config."""

from __future__ import annotations

from typing import Any


def sorter_name_for(config: Any) -> str:
    """SpikeLab's sorter for a SpikeLab config object, SpikeInterface otherwise."""
    module = type(config).__module__ if config is not None and not isinstance(config, (str, dict)) else ""
    return "spikelab" if module.startswith("spikelab") else "spikeinterface"
