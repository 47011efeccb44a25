"""How many threads a job's libraries may start, from the job's CPU limit.

NumPy's BLAS, OpenMP, numexpr, numba and joblib each start one thread (or process) per
core they see, and a container sees every core of its node: a job limited to 2 CPUs on
a 64-core node starts 64 BLAS threads, which the kernel then throttles to 2 CPUs' worth
of time. The same job on a laptop starts as many threads as the laptop has cores and
looks fast, then crawls on the cluster. Bounding the thread counts to the CPU limit
makes both run alike. Both halves use this module: the local backend sets the variables
in a local job's environment, and the runner (in a cluster pod) sets those the pod's
env does not already set. A variable the job's own env sets explicitly always wins.
"""

from __future__ import annotations

import math
from decimal import Decimal

#: Whole CPUs the job may use (its limits.cpu rounded up, at most the cores there
#: are), as the job sees it: set by the local backend, which has no cgroup for the
#: runner to read the limit from.
CPU_LIMIT_ENV = "SPIKEBATCH_CPU_LIMIT"

#: The variables that bound the thread (or worker process) counts of the libraries a
#: spike-sorting job uses, each read once, when its library loads.
THREAD_ENV_VARS = (
    "OMP_NUM_THREADS",  # OpenMP: OpenBLAS built with OpenMP, MKL, PyTorch, libgomp users
    "OPENBLAS_NUM_THREADS",  # NumPy / SciPy's usual BLAS
    "MKL_NUM_THREADS",  # NumPy / SciPy built against MKL
    "BLIS_NUM_THREADS",
    "VECLIB_MAXIMUM_THREADS",  # macOS Accelerate
    "NUMEXPR_NUM_THREADS",
    "NUMEXPR_MAX_THREADS",  # numexpr's pool size (it warns and uses 8 when unset)
    "NUMBA_NUM_THREADS",
    "LOKY_MAX_CPU_COUNT",  # joblib's process pools
    "PYTHON_CPU_COUNT",  # Python >= 3.13: what os.cpu_count() / os.process_cpu_count() say
)


def whole_cpus(limit_cores: Decimal, available_cores: int) -> int:
    """The thread count for a CPU limit of ``limit_cores`` (e.g. Decimal("0.5")): the
    limit rounded up (half a CPU still runs one thread), at most the cores there are
    (more threads than cores only take turns), at least 1."""
    return max(1, min(math.ceil(limit_cores), max(1, available_cores)))


def thread_env(cpus: int) -> dict[str, str]:
    """Every THREAD_ENV_VARS variable set to ``cpus``."""
    return {name: str(cpus) for name in THREAD_ENV_VARS}
