"""Run an analysis job end to end on this computer, with no cluster and no credentials.

    python examples/quickstart.py

It builds a small workspace, submits examples/analysis.py as a job on the `local`
profile (the runner runs as a local process; artifacts go under
~/.local/share/spikebatch), waits for it, prints its log and the retrieved results.
Pass a profile name (e.g. a cluster profile) as the first argument to run the same job
there instead.
"""

import sys
import tempfile
from pathlib import Path

import numpy as np

from spikebatch.workspace import DirectoryWorkspace
from spikebatch.session import RunSession

HERE = Path(__file__).resolve().parent


def main() -> int:
    profile = sys.argv[1] if len(sys.argv) > 1 else "local"
    scratch = Path(tempfile.mkdtemp(prefix="spikebatch-quickstart-"))

    # A toy recording: 30 s of Poisson spiking at ~12 Hz.
    rng = np.random.default_rng(0)
    spikes = np.sort(rng.uniform(0, 30.0, size=360))
    workspace = DirectoryWorkspace(str(scratch / "workspace"))
    workspace.store("recording", "spike_times_s", spikes)
    workspace.store("recording", "info", {"duration_s": 30.0, "channels": 1})

    session = RunSession.from_profile(profile)
    result = session.submit_workspace_job(
        workspace=workspace,
        script=str(HERE / "analysis.py"),
        job_spec={"name_prefix": "quickstart"},
        metadata={"experiment": "quickstart"},
    )
    print(f"JOB_NAME={result.job_name}")
    print(f"RUN_ID={result.run_id}")
    print(f"OUTPUT_PREFIX={result.output_prefix}")

    state = session.wait_for_completion(result.job_name, max_wait_seconds=600)
    print(f"FINAL_STATUS={state}")
    print("--- job log ---")
    for line in session.stream_logs(result.job_name):
        print(line)
    if state != "Complete":
        return 1

    out = session.retrieve_result(result, str(scratch / "results"))
    print("--- retrieved ---")
    print("summary:", out.get("analysis", "summary"))
    print("isi histogram:", out.get("analysis", "isi_histogram").tolist())
    print(f"files under {scratch / 'results'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
