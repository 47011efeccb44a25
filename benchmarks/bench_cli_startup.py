"""Benchmark: cold start of ``spikebatch --help`` beside ``python -c "import pydantic"``.

Each sample is a fresh interpreter (what a person typing the command waits for); the
commands are run interleaved, so a busy machine slows all of them alike, and the
median of N runs is reported with the ratio. Target: spikebatch --help under 1.5x
the pydantic import. ``python -c pass`` is shown as the floor (interpreter start-up).

    python benchmarks/bench_cli_startup.py            # 21 runs each
    python benchmarks/bench_cli_startup.py --runs 51
    python benchmarks/bench_cli_startup.py --script   # the installed console script instead of -m

Not a test: it asserts nothing, it measures.
"""
from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path
from typing import Dict, List

TARGET_RATIO = 1.5


def _console_script() -> List[str]:
    # The script pip installed next to this interpreter, not a shell shim in front of it
    # (pyenv's shims add a bash process and tens of milliseconds that are not ours).
    candidate = Path(sysconfig.get_path("scripts")) / "spikebatch"
    if candidate.is_file():
        return [str(candidate)]
    found = shutil.which("spikebatch")
    if not found:
        sys.exit("spikebatch is not installed as a console script; run pip install -e .")
    return [found]


def _time_once(argv: List[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True,
                   env={**os.environ, "PYTHONDONTWRITEBYTECODE": os.environ.get("PYTHONDONTWRITEBYTECODE", "")})
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=21, help="samples per command (median is reported)")
    parser.add_argument("--script", action="store_true", help="time the console script instead of python -m spikebatch")
    args = parser.parse_args()

    spikebatch = (_console_script() if args.script else [sys.executable, "-m", "spikebatch"]) + ["--help"]
    commands: Dict[str, List[str]] = {
        "spikebatch --help": spikebatch,
        'python -c "import pydantic"': [sys.executable, "-c", "import pydantic"],
        'python -c "pass"': [sys.executable, "-c", "pass"],
    }
    for argv in commands.values():  # warm-up: compile .pyc files, fill the page cache
        _time_once(argv)
    samples: Dict[str, List[float]] = {name: [] for name in commands}
    for _ in range(args.runs):
        for name, argv in commands.items():
            samples[name].append(_time_once(argv))

    print(f"python {sys.version.split()[0]} on {os.cpu_count()} cores, {args.runs} interleaved runs each "
          f"({'console script' if args.script else 'python -m spikebatch'})")
    width = max(map(len, commands))
    for name, values in samples.items():
        print(f"  {name:<{width}}  median {statistics.median(values) * 1000:7.1f} ms"
              f"  (min {min(values) * 1000:.1f}, max {max(values) * 1000:.1f})")
    ratio = statistics.median(samples["spikebatch --help"]) / statistics.median(samples['python -c "import pydantic"'])
    best = min(samples["spikebatch --help"]) / min(samples['python -c "import pydantic"'])
    verdict = "met" if ratio < TARGET_RATIO else "NOT met"
    print(f"ratio spikebatch --help / import pydantic: {ratio:.2f}x of medians (target < {TARGET_RATIO}x: {verdict}); "
          f"{best:.2f}x of minimums (less sensitive to a busy machine)")


if __name__ == "__main__":
    main()
