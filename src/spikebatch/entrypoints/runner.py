"""The program inside the job container: ``python -m spikebatch.entrypoints.runner MODE``.

MODE is ``workspace`` (run the user's script against the workspace) or ``sorting``
(sort each recording). Configured by the environment the rendered Job sets:

  INPUT_URI        the bundle (s3://... or file://...)
  OUTPUT_PREFIX    where outputs go (ends with "/")
  LOGS_PREFIX      where runner.log goes (default: OUTPUT_PREFIX)
  SCRIPT_NAME      the script's file name (workspace mode; default: the bundle's)
  S3_ENDPOINT_URL, AWS_DEFAULT_REGION   the S3 endpoint, when the URIs are s3://
  SPIKEBATCH_STORAGE_ROOT               the local store's folder, when they are file://
  SPIKEBATCH_WORK_DIR                   scratch folder (default: a temporary one)
  SPIKEBATCH_KEEP_WORK_DIR              1 keeps the work folder after the run (debugging)
  SPIKEBATCH_BATCH_INDEXES, JOB_COMPLETION_INDEX
                   a pod of a sorting batch: sort only the recording they name
                   (see ``spikebatch.application.batch_runner``)

The runner removes what it put into its work folder when the run ends, success or
failure (the whole folder when it made it; see ``release_work_root``). A work folder it
made itself also holds the run's temporary files: ``$TMPDIR`` points into it, so a
sorter's scratch goes with it.

In a cluster the rendered Job gives the runner a read-only root filesystem: the work
folder and /tmp (also HOME and the working directory) are its only writable places,
each an emptyDir volume (see ``spikebatch.application.submission``).

The local backend runs this same program as a subprocess, so a laptop run and a
cluster run take one code path. Exit codes and the last line it prints are described
in ``spikebatch.application.runner``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import List, Optional

from ..application.runner import (
    MODES,
    prepare_work_root,
    release_work_root,
    report_config_failure,
    run_in_job,
    settings_from_env,
)
from ..application.batch_runner import batch_position, run_batch_recording
from ..container import in_job_adapters
from ..domain.errors import SpikebatchError
from ..domain.scratch import keep_work_dir


def _temp_files_inside(work_root: Path) -> None:
    """Point this process's temporary files (and its children's: ``$TMPDIR``) into
    ``work_root``, so they are removed with it."""
    scratch = work_root / "tmp"
    scratch.mkdir(mode=0o700)
    os.environ["TMPDIR"] = str(scratch)
    tempfile.tempdir = str(scratch)


def run(mode: str) -> int:
    if mode not in MODES:
        print(f"usage: python -m spikebatch.entrypoints.runner {{{'|'.join(MODES)}}}", file=sys.stderr)
        return 2
    try:
        settings = settings_from_env(mode, os.environ)
        position = batch_position(os.environ) if mode == "sorting" else None
        adapters = in_job_adapters(settings.input_uri, os.environ)
        given = os.environ.get("SPIKEBATCH_WORK_DIR") or None
        work_root = prepare_work_root(given)
    except SpikebatchError as exc:
        return report_config_failure(exc.message)
    keep = keep_work_dir(os.environ)
    if keep:  # said first: the result marker stays the last line
        print(f"spikebatch runner: the work folder {work_root} is kept after the run (SPIKEBATCH_KEEP_WORK_DIR)",
              flush=True)
    try:
        if given is None:
            # A folder the runner made: its temporary files go in it too. A given one (a
            # pod's emptyDir) leaves $TMPDIR alone: the pod's /tmp is a volume of its own,
            # sized for a sorter's scratch.
            _temp_files_inside(work_root)
        if position is not None:
            return run_batch_recording(settings, adapters, work_root, position)
        return run_in_job(settings, adapters, work_root)
    finally:
        release_work_root(work_root, given, keep)


def main(argv: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    sys.exit(run(args[0] if args else ""))


if __name__ == "__main__":
    main()
