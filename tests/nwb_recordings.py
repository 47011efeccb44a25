"""NWB files as an acquisition system writes them (pynwb), for tests that need a
recording in the format labs hand over."""

from __future__ import annotations

import datetime
from pathlib import Path
from typing import Any


def write_nwb(recording: Any, path: Path, identifier: str, description: str = "test") -> Path:
    """``recording`` (a SpikeInterface recording) as an NWB file at ``path``: one
    electrode per channel at its location, the traces (in uV) as the acquisition's
    ElectricalSeries."""
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ecephys import ElectricalSeries

    nwb = NWBFile(session_description=description, identifier=identifier,
                  session_start_time=datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc))
    device = nwb.create_device(name="probe")
    group = nwb.create_electrode_group(name="shank", description="shank", location="ctx", device=device)
    for x, y in recording.get_channel_locations():
        nwb.add_electrode(group=group, location="ctx", rel_x=float(x), rel_y=float(y))
    region = nwb.create_electrode_table_region(list(range(recording.get_num_channels())), "all electrodes")
    nwb.add_acquisition(ElectricalSeries(name="ElectricalSeries", electrodes=region, conversion=1e-6,
                                         data=recording.get_traces(return_in_uV=True).astype("float32"),
                                         rate=recording.get_sampling_frequency()))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path
