"""Hostile YAML and JSON through the real command line: YAML bombs, deep nesting and
huge integers in profiles, job configs, ``--set`` values and workspace indexes end in
exit 2 and one ``error:`` line naming the input, with nothing written, uploaded or
submitted; random and hostile documents never end in exit 70 (issue 15, items 1, 6).

Every run here has its address space capped (512 MiB) and the size of any file it
writes (64 MiB): a bomb that got through would end in a MemoryError or SIGXFSZ and
fail the test, instead of filling the machine's memory or disk."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path
from typing import List

import pytest
import yaml
from cli_support import EXAMPLE, Cli, Result, assert_one_line_error, cli, write_workspace  # noqa: F401
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_documents import (
    HOSTILE_JSON,
    HOSTILE_SET_VALUE,
    HOSTILE_YAML,
    as_file_bytes,
    deep_flow_yaml,
    deep_json,
    laughs_flow,
    laughs_yaml,
)

MiB = 1024 * 1024
#: python -c: the CLI as `python -m spikebatch` runs it, under resource limits.
LIMITED = [sys.executable, "-c", (
    "import resource, runpy, sys\n"
    f"resource.setrlimit(resource.RLIMIT_AS, ({512 * MiB}, {512 * MiB}))\n"
    f"resource.setrlimit(resource.RLIMIT_FSIZE, ({64 * MiB}, {64 * MiB}))\n"
    "sys.argv[0] = 'spikebatch'\n"
    "runpy.run_module('spikebatch', run_name='__main__', alter_sys=True)\n"
)]
#: A job config the policy blocks (limit below request): a submission that gets past
#: reading its inputs stops at the policy check, before anything is uploaded.
BLOCKED = "container: {command: [python, -c, pass]}\nresources: {requests_cpu: '2', limits_cpu: '1'}\n"


def run(cli: Cli, *args: str) -> Result:
    return cli(*args, program=LIMITED, timeout=120)


def nothing_written(cli: Cli, *paths: Path) -> None:
    assert cli.data_files() == [], "something was uploaded"
    assert cli.local_jobs() == [], "a job was created"
    assert cli.records() == [], "a submission was recorded"
    for path in paths:
        assert not path.exists(), f"{path} was written"


def bomb_profile(cli: Cli) -> Path:
    path = cli.root / "bomb.yaml"
    path.write_text("name: bomb\nextends: local\naffinity:\n" + laughs_yaml(9, 9))  # 387,420,489 nodes
    return path


# --- the defects of the issue -------------------------------------------------------------------
@pytest.mark.parametrize("command", [["deploy-job", "--render-only"], ["deploy-job", "--render-only", "-o", "json"],
                                     ["render-job"]])
def test_billion_laughs_in_a_profile_affinity_is_refused_before_anything_is_written(cli: Cli, command: List[str]) -> None:
    profile, manifest = bomb_profile(cli), cli.root / "manifest.yaml"
    result = run(cli, *command, "--profile-file", str(profile), "--job-config", str(EXAMPLE),
                 "--output-manifest", str(manifest))
    assert_one_line_error(result, 2, str(profile), "aliases expand to more than 10,000 nodes", "repeat them less")
    assert result.stdout == ""
    nothing_written(cli, manifest)


def test_billion_laughs_in_a_named_profile_is_refused(cli: Cli) -> None:
    folder = cli.root / "xdg-config" / "spikebatch" / "profiles"
    folder.mkdir(parents=True)
    (folder / "lab.yaml").write_text(bomb_profile(cli).read_text())
    result = run(cli, "--profile", "lab", "deploy-job", "--render-only", "--job-config", str(EXAMPLE))
    assert_one_line_error(result, 2, str(folder / "lab.yaml"), "aliases expand")
    assert result.stdout == ""
    nothing_written(cli)


def test_billion_laughs_set_value_for_submit_sorting(cli: Cli) -> None:
    recording = cli.root / "rec.nwb"
    recording.write_bytes(b"\0")
    result = run(cli, "submit-sorting", "--recording", str(recording), "--preset", "tridesclous2",
                 "--set", "detection=" + laughs_flow(9, 9))
    assert_one_line_error(result, 2, "--set detection: line 1, column", "aliases expand to more than 10,000 nodes")
    nothing_written(cli)


@pytest.mark.parametrize("where", ["job config", "profile"])
def test_yaml_nested_1000_deep_is_one_error(cli: Cli, where: str) -> None:
    path = cli.root / "deep.yaml"
    if where == "job config":
        path.write_text("labels: " + deep_flow_yaml(1000) + "\n")
        args = ["render-job", "--job-config", str(path)]
    else:
        path.write_text("name: deep\nextends: local\naffinity: " + deep_flow_yaml(1000) + "\n")
        args = ["render-job", "--profile-file", str(path), "--job-config", str(EXAMPLE)]
    result = run(cli, *args)
    assert_one_line_error(result, 2, str(path), "column", "nested more than 100 levels deep", "flatten")
    nothing_written(cli)


def test_workspace_index_nested_100000_deep_is_one_error(cli: Cli) -> None:
    workspace = write_workspace(cli.root / "ws", x=1)
    index = workspace / "spikebatch-workspace.json"
    index.write_text('{"format": "spikebatch-directory-workspace", "version": 1, "namespaces": '
                     + deep_json(100_000) + "}")
    script = cli.root / "analysis.py"
    script.write_text("print(1)\n")
    result = run(cli, "submit-workspace", "--workspace", str(workspace), "--script", str(script))
    assert_one_line_error(result, 2, str(index), "not a readable workspace index", "nested 100,001 levels deep")
    nothing_written(cli)


def test_set_integer_of_5000_digits_is_one_error(cli: Cli) -> None:
    recording = cli.root / "rec.nwb"
    recording.write_bytes(b"\0")
    result = run(cli, "submit-sorting", "--recording", str(recording), "--set", "threshold=" + "1" * 5000)
    assert_one_line_error(result, 2, "--set threshold", "an integer with more than 4,300 digits", "quote it")
    nothing_written(cli)


def test_ordinary_anchors_in_a_profile_still_work(cli: Cli) -> None:
    profile = cli.root / "anchors.yaml"
    profile.write_text(
        "name: anchors\nextends: local\n"
        "affinity:\n  nodeAffinity:\n    requiredDuringSchedulingIgnoredDuringExecution:\n"
        "      nodeSelectorTerms:\n"
        "        - matchExpressions: &zone [{key: zone, operator: In, values: [a, b]}]\n"
        "        - matchExpressions: *zone\n")
    result = run(cli, "render-job", "--profile-file", str(profile), "--job-config", str(EXAMPLE))
    assert result.returncode == 0, result.stderr
    terms = yaml.safe_load(result.stdout)["spec"]["template"]["spec"]["affinity"]["nodeAffinity"][
        "requiredDuringSchedulingIgnoredDuringExecution"]["nodeSelectorTerms"]
    assert terms == [{"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a", "b"]}]}] * 2


# --- fuzz: every reader, through the command line ------------------------------------------------
def _start(root: Path, *args: str) -> subprocess.Popen:
    cli = Cli(root)
    return subprocess.Popen([*LIMITED, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=cli.env, cwd=root)


def _judge(process: subprocess.Popen, what: str) -> None:
    out, err = process.communicate(timeout=120)
    lines = [line for line in err.decode(errors="replace").splitlines() if line.strip()]
    assert process.returncode in (0, 2), (what, process.returncode, lines[-3:])
    if process.returncode == 2:
        errors = [line for line in lines if line.startswith("error: ")]
        assert len(errors) == 1, (what, lines)
        assert "Traceback" not in err.decode(errors="replace"), what


@settings(max_examples=6, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(profile=as_file_bytes(HOSTILE_YAML), job=as_file_bytes(HOSTILE_YAML), value=HOSTILE_SET_VALUE,
       index=as_file_bytes(HOSTILE_JSON), key=st.sampled_from(["detection", "freq_min", "x"]))
def test_fuzz_every_reader_through_the_cli(profile: bytes, job: bytes, value: str, index: bytes, key: str) -> None:
    """A random or hostile profile, job config, --set value and workspace index, each
    given to the command that reads it (four processes at once): exit 0 or 2, and on 2
    exactly one ``error:`` line; never 70, never a traceback, within the memory cap."""
    with tempfile.TemporaryDirectory(prefix="spikebatch-fuzz-") as scratch:
        root = Path(scratch)
        blocked = root / "blocked.yaml"
        blocked.write_text(BLOCKED)
        (root / "profile.yaml").write_bytes(profile)
        (root / "job.yaml").write_bytes(job)
        workspace = root / "ws"
        workspace.mkdir()
        (workspace / "spikebatch-workspace.json").write_bytes(index)
        (root / "analysis.py").write_text("print(1)\n")
        (root / "rec.nwb").write_bytes(b"\0")
        runs = {
            "profile": _start(root / "p", "render-job", "--profile-file", str(root / "profile.yaml"),
                              "--job-config", str(EXAMPLE)),
            "job config": _start(root / "j", "render-job", "--job-config", str(root / "job.yaml")),
            "--set": _start(root / "s", "submit-sorting", "--recording", str(root / "rec.nwb"),
                            "--job-config", str(blocked), "--set", f"{key}={value}"),
            "workspace index": _start(root / "w", "submit-workspace", "--workspace", str(workspace),
                                      "--script", str(root / "analysis.py"), "--job-config", str(blocked)),
        }
        for what, process in runs.items():
            _judge(process, what)
