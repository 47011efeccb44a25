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
  SPIKEBATCH_CPU_LIMIT                  whole CPUs the job may use (the local backend
                   sets it; in a cluster pod the runner reads the limit from its cgroup)

Before anything loads NumPy, the runner bounds the threads of NumPy/BLAS, OpenMP,
numexpr, numba and joblib to the job's CPU limit rounded up (``domain.cpu_limit``),
and when sorting SpikeInterface's global ``n_jobs`` too: a pod limited to 2 CPUs on a
64-core node would otherwise start 64 threads and be throttled to 2 CPUs' worth of
time. A variable the Job's env sets is left as it is, and job kwargs given in a
sorter's own parameters still win over the global ones.

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
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import List, Mapping, MutableMapping, Optional

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
from ..domain.cpu_limit import CPU_LIMIT_ENV, thread_env, whole_cpus
from ..domain.errors import SpikebatchError
from ..domain.scratch import keep_work_dir

#: Where a container's cgroup says its CPU limit: v2, then v1 (quota and period in µs).
CGROUP_V2_CPU_MAX = Path("/sys/fs/cgroup/cpu.max")
CGROUP_V1_CPU_FOLDERS = (Path("/sys/fs/cgroup/cpu,cpuacct"), Path("/sys/fs/cgroup/cpu"))


def cgroup_cpu_limit() -> Optional[Decimal]:
    """The CPU limit of the cgroup this process runs in (a pod's container: its
    limits.cpu), in CPUs; None when it has none or there is no cgroup to read."""
    try:
        quota, period = CGROUP_V2_CPU_MAX.read_text(encoding="ascii").split()[:2]
        return Decimal(quota) / Decimal(period) if quota != "max" and Decimal(period) > 0 else None
    except (OSError, ValueError, InvalidOperation):
        pass  # no cgroup v2 here: try v1
    for folder in CGROUP_V1_CPU_FOLDERS:
        try:
            quota_us = int((folder / "cpu.cfs_quota_us").read_text(encoding="ascii"))
            period_us = int((folder / "cpu.cfs_period_us").read_text(encoding="ascii"))
        except (OSError, ValueError):
            continue
        return Decimal(quota_us) / period_us if quota_us > 0 and period_us > 0 else None  # -1: no limit
    return None


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def job_cpus(env: Mapping[str, str]) -> Optional[int]:
    """The whole CPUs the job may use: SPIKEBATCH_CPU_LIMIT (the local backend's, which
    has no cgroup), else the cgroup's limit rounded up; None when there is no limit."""
    given = (env.get(CPU_LIMIT_ENV) or "").strip()
    if given.isdigit() and int(given) > 0:
        return int(given)
    limit = cgroup_cpu_limit()
    return whole_cpus(limit, _usable_cores()) if limit is not None else None


def bound_threads(env: MutableMapping[str, str]) -> Optional[int]:
    """Set each thread variable ``env`` does not set to the job's CPUs (``job_cpus``);
    returns them (None: no CPU limit, nothing set). Must run before NumPy loads: BLAS
    reads its variable once, then."""
    cpus = job_cpus(env)
    if cpus is None:
        return None
    for name, value in {**thread_env(cpus), CPU_LIMIT_ENV: str(cpus)}.items():
        env.setdefault(name, value)
    return cpus


def bound_sorter_jobs(cpus: int) -> bool:
    """SpikeInterface's global n_jobs = ``cpus`` (what a sorter uses unless its own
    job_kwargs say otherwise); False when SpikeInterface is not installed."""
    try:
        import spikeinterface
    except ImportError:
        return False
    spikeinterface.set_global_job_kwargs(n_jobs=cpus)
    return True


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
    cpus = bound_threads(os.environ)  # first: nothing may have loaded NumPy yet
    if cpus is not None:
        bounded = "NumPy/BLAS threads"
        if mode == "sorting" and bound_sorter_jobs(cpus):
            bounded += " and SpikeInterface n_jobs"
        print(f"spikebatch runner: {bounded} bounded to the job's {cpus} CPU{'s' if cpus != 1 else ''} "
              f"(limits.cpu; OMP_NUM_THREADS={os.environ['OMP_NUM_THREADS']})", flush=True)
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
