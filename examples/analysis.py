"""An analysis script as spikebatch runs it inside a job.

The runner gives it these globals:
  workspace   the workspace (SpikeLab's AnalysisWorkspace, or spikebatch's built-in
              DirectoryWorkspace): get(namespace, key) / store(namespace, key, value)
  inputs_dir  folder holding the files passed as bundle inputs
  output_dir  folder whose files are uploaded with the results
  metadata    the metadata dict given at submission
"""

import json
import os

import numpy as np

spike_times = workspace.get("recording", "spike_times_s")  # noqa: F821 - set by the runner
duration = workspace.get("recording", "info")["duration_s"]  # noqa: F821

rate_hz = len(spike_times) / duration
isi = np.diff(np.sort(spike_times))
summary = {
    "spike_count": int(len(spike_times)),
    "rate_hz": round(float(rate_hz), 3),
    "median_isi_ms": round(float(np.median(isi) * 1000), 3),
    "experiment": metadata.get("experiment"),  # noqa: F821
}
workspace.store("analysis", "summary", summary)  # noqa: F821
workspace.store("analysis", "isi_histogram", np.histogram(isi, bins=20, range=(0, 0.2))[0])  # noqa: F821

with open(os.path.join(output_dir, "summary.json"), "w") as handle:  # noqa: F821
    json.dump(summary, handle, indent=2)
print("summary:", summary)
