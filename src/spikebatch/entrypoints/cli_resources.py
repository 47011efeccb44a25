"""--gpus, --cpus and --memory: a job's resources from the command line (submit-workspace,
submit-sorting, deploy-job), each set as request = limit.

The options take text and are checked here rather than by click, so that a mistake is
one line naming the option and the fix ("--gpus '1.5' must be a whole number of GPUs")
instead of click's "'1.5' is not a valid integer". Only typer and the standard library
are imported at load time (this module is loaded for ``--help``).
"""

from __future__ import annotations

from typing import Annotated, Any, Dict, Optional

import typer

GpusOpt = Annotated[
    Optional[str],
    typer.Option("--gpus", metavar="N", help="GPUs (nvidia.com/gpu), a whole number; request = limit. With no "
                                             "--image / --image-profile, picks the profile's gpu image (0: its cpu one)."),
]
CpusOpt = Annotated[
    Optional[str], typer.Option("--cpus", metavar="C", help="CPU cores, e.g. 2 or 500m; request = limit.")
]
MemoryOpt = Annotated[
    Optional[str], typer.Option("--memory", metavar="M", help="Memory, e.g. 8Gi or 512Mi; request = limit.")
]

#: Less memory than this is taken for a missing unit ("--memory 4" is four bytes, not
#: four gigabytes): no job starts in under a mebibyte.
SMALLEST_MEMORY_BYTES = 1024 * 1024


def resource_options(gpus: Optional[str], cpus: Optional[str], memory: Optional[str]) -> Dict[str, Any]:
    """The options given, checked: ``{"gpus": int, "cpu": str, "memory": str}`` (the
    keyword arguments of ``apply_resource_choice``); a ConfigError naming the option
    and the fix for the first one that is wrong."""
    from ..domain.errors import ConfigError
    from ..domain.quantity import cpu_quantity, memory_quantity, parse_quantity

    chosen: Dict[str, Any] = {}
    if gpus is not None:
        text = gpus.strip()
        if not (text.isascii() and text.isdigit()):
            raise ConfigError(f"--gpus {gpus!r} must be a whole number of GPUs (0, 1, 2, ...): "
                              "Kubernetes hands out whole GPUs only")
        chosen["gpus"] = int(text)
    if cpus is not None:
        try:
            parse_quantity(cpus)
        except ValueError:
            raise ConfigError(f"--cpus {cpus!r} is not an amount of CPU; use cores ('2', '0.5') "
                              "or millicores ('500m')") from None
        try:
            chosen["cpu"] = cpu_quantity(cpus)
        except ValueError as exc:
            raise ConfigError(f"--cpus: {exc}") from None
    if memory is not None:
        try:
            size = parse_quantity(memory)
        except ValueError:
            raise ConfigError(f"--memory {memory!r} is not an amount of memory; use e.g. '8Gi', '512Mi' "
                              "or '2G'") from None
        try:
            chosen["memory"] = memory_quantity(memory)
        except ValueError as exc:
            raise ConfigError(f"--memory: {exc}") from None
        if size < SMALLEST_MEMORY_BYTES:
            number = memory.strip() if memory.strip().isdigit() else "4"
            raise ConfigError(f"--memory {memory!r} is only {int(size)} bytes; give a unit, "
                              f"e.g. {number}Gi or {number}Mi")
    return chosen
