"""Start-up: ``spikebatch --help`` imports no cloud client (nor rich or pydantic, which
only the commands that use them load), shell completion works, the benchmark runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
from cli_support import REPO, Cli, cli  # noqa: F401

CLOUD_CLIENTS = ("boto3", "botocore", "kubernetes", "minio")
#: Loaded by the commands that need them, never for help.
HEAVY = (*CLOUD_CLIENTS, "rich", "yaml", "dependency_injector")


def _imported_modules(*args: str) -> set[str]:
    proc = subprocess.run([sys.executable, "-X", "importtime", "-m", "spikebatch", *args],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    names = set()
    for line in proc.stderr.splitlines():
        match = re.match(r"import time:\s+\d+ \|\s+\d+ \|\s+(\S+)", line)
        if match:
            names.add(match.group(1))
    assert "spikebatch.entrypoints.cli" in names  # the measurement did see our imports
    return names


@pytest.mark.parametrize("args", [("--help",), ("deploy-job", "--help"), ("profiles", "--help")])
def test_help_imports_no_cloud_client(args: tuple) -> None:
    names = _imported_modules(*args)
    # typer itself loads pydantic to describe a command's parameters; the top-level
    # --help (the one typed most) must not pay for it.
    heavy = HEAVY + (("pydantic",) if args == ("--help",) else ())
    loaded = sorted(name for name in names if name.split(".")[0] in heavy)
    assert loaded == [], f"spikebatch {' '.join(args)} imported {loaded}"


def test_help_lists_every_command_and_the_exit_codes(cli: Cli) -> None:
    result = cli("--help")
    assert result.returncode == 0
    for command in ("deploy-job", "render-job", "job-status", "job-logs", "job-delete", "submit-workspace",
                    "submit-sorting", "retrieve", "wait", "list-jobs", "profiles", "policy-check"):
        assert re.search(rf"^\s+{command}\s", result.stdout, re.M), command
    assert "Exit codes: 0 ok, 1 job failed, 2 usage/config/policy error" in result.stdout
    bare = cli()
    assert bare.returncode == 0 and "Commands:" in bare.stdout


def _complete(cli: Cli, words: str, cword: int) -> list[str]:
    exe = Path(sys.executable).parent / "spikebatch"
    result = cli(env={"_SPIKEBATCH_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(cword)},
                 program=[str(exe)])
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


def test_shell_completion_of_commands_profiles_and_run_ids(cli: Cli) -> None:
    assert _complete(cli, "spikebatch job-", 1) == ["job-status", "job-logs", "job-delete"]
    assert _complete(cli, "spikebatch --profile n", 2) == ["nrp"]
    config = cli.root / "job.yaml"
    config.write_text("container:\n  command: [python, -c, 'print(1)']\n")
    deployed = cli("deploy-job", "--job-config", str(config), "--wait")
    assert deployed.returncode == 0, deployed.stderr
    assert set(_complete(cli, "spikebatch wait ", 2)) == {deployed.keys["JOB_NAME"], deployed.keys["RUN_ID"]}
    script = cli("--show-completion", "bash", env={"SHELL": "/bin/bash"},
                 program=[str(Path(sys.executable).parent / "spikebatch")])
    assert "_SPIKEBATCH_COMPLETE=complete_bash" in script.stdout


def test_startup_benchmark_prints_both_times_and_the_ratio() -> None:
    proc = subprocess.run([sys.executable, str(REPO / "benchmarks" / "bench_cli_startup.py"), "--runs", "3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"spikebatch --help\s+median\s+[\d.]+ ms", proc.stdout)
    assert re.search(r'python -c "import pydantic"\s+median\s+[\d.]+ ms', proc.stdout)
    assert re.search(r"ratio spikebatch --help / import pydantic: [\d.]+x", proc.stdout)
