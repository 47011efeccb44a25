"""Spike sorting: the Sorter adapters over SpikeInterface and SpikeLab, the open-format
files both write for a recording, and what a sorted recording puts in a result
workspace."""
