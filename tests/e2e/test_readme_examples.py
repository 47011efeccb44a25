"""Every example in README.md, run for real, from the README's current text.

Each fenced block is found by a fingerprint (``EXAMPLES``) and run as a user would: bash
lines through ``python -m spikebatch`` on the local profile in a scratch folder (with
``examples/`` copied in), python blocks as scripts through the library. Output the README
shows is compared by shape: ``KEY=VALUE`` lines by key (and order), other lines with
numbers, paths and ``...`` as wildcards. Examples naming a cluster profile (``mylab``,
``nrp``, ``my-cluster``) run against the test control plane with its real node and MinIO,
under a profile of the same name and shape (the README's own profile with the bucket,
endpoint, image and node placement of the test environment). ``test_every_block_is_run``
fails when a block is added, changed past its fingerprint or removed, so no example
goes untested.

Not run, on purpose (checked statically instead): ``pip install ...`` (it would change
the environment running the tests; the package name, extra and scripts are checked) and
``python -m pytest -rs`` (it is this suite).
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Dict, Optional

import pytest
import yaml

from cli_support import Cli, Result, cli  # noqa: F401
from nwb_recordings import write_nwb
from readme_blocks import (REPO, Block, Command, assert_shown_keys_printed, assert_shown_lines_printed, commands,
                           expand, keys_of, readme_blocks, shape)

# fingerprint (text the block holds) -> the test that runs it
EXAMPLES: Dict[str, str] = {
    'pip install -e ".[test]"': "test_install_lines",
    "```python examples/quickstart.py```": "test_quickstart_prints_what_the_readme_shows",
    "JOB_NAME=quickstart-": "test_quickstart_prints_what_the_readme_shows",
    "session = RunSession.from_profile(\"local\")": "test_library_workspace_job",
    "result = session.submit_sorting_job(": "test_library_sorting_job",
    "pip install spikebatch\nspikebatch image build": "test_image_build_lines (+ test_install_lines)",
    "name: mylab\nextends: defaults": "test_render_lines_and_the_error_line, test_the_same_job_on_a_cluster",
    "kubectl -n mylab create secret": "test_the_same_job_on_a_cluster",
    "spikebatch --profile mylab submit-workspace": "test_the_same_job_on_a_cluster",
    "spikebatch render-job --job-config examples/job.yaml": "test_render_lines_and_the_error_line",
    "$ spikebatch render-job --profile nope": "test_render_lines_and_the_error_line",
    "spikebatch --profile nrp submit-sorting --recording 'data/*.nwb' --preset kilosort4":
        "test_sorting_lines_on_a_cluster",
    "RECORDING   INDEX  STATE": "test_library_batch_and_the_status_table",
    "batch = session.submit_sorting_batch(": "test_library_batch_and_the_status_table",
    "--profile my-cluster submit-sorting": "test_sorting_lines_on_a_cluster",
    "spikebatch submit-workspace --workspace ./organoid-ws": "test_a_day_on_the_laptop (+ test_sorting_lines_on_a_cluster)",
    "python -m pytest -rs": "test_install_lines (not run: it is this suite)",
    "spikebatch-workspace.json      the index": "test_directory_workspace_lines",
    "spikebatch workspace init organoid-ws": "test_directory_workspace_lines",
    'workspace = DirectoryWorkspace("organoid-ws")': "test_directory_workspace_lines",
    "NAME                 STATE     AGE  RUN ID": "test_a_day_on_the_laptop",
    "name_prefix: Spike Analysis": "test_job_config_and_profile_yaml",
    "name: mylab\nextends: nrp": "test_job_config_and_profile_yaml",
    "entrypoints/ (cli, in-job runner)": "(the architecture diagram: not an example)",
    'profile = load_cluster_profile("nrp.yaml")': "tests/compat/test_readme_porting.py",
}


def _matches(fingerprint: str, block: Block) -> bool:
    if fingerprint.startswith("```") and fingerprint.endswith("```"):
        return block.text.strip() == fingerprint.strip("`")
    return fingerprint in block.text


def block(fingerprint: str) -> Block:
    found = [b for b in readme_blocks() if _matches(fingerprint, b)]
    assert len(found) == 1, f"README.md: {len(found)} blocks match {fingerprint!r}, expected one"
    return found[0]


def test_every_block_is_run() -> None:
    blocks = readme_blocks()
    for b in blocks:
        owners = [f for f in EXAMPLES if _matches(f, b)]
        assert len(owners) == 1, f"{b.where()} is run by no test here (or by several: {owners}); add it to EXAMPLES"
    for fingerprint in EXAMPLES:
        assert sum(_matches(fingerprint, b) for b in blocks) == 1, f"no README block (or several) holds {fingerprint!r}"


# --- running what a block says ---------------------------------------------------------
def run(cli: Cli, command: Command, replace: Optional[Dict[str, str]] = None, env: Optional[dict] = None,
        timeout: float = 300) -> Result:
    """One README command as the user types it: ``spikebatch`` is ``python -m spikebatch``,
    ``python`` this interpreter, anything else the program of that name; ``replace`` puts
    real values where the README has placeholders (RUN_ID)."""
    line = command.line
    for old, new in (replace or {}).items():
        line = line.replace(old, new)
    argv = Command(expand(line, {**cli.env, **(env or {})})).argv
    if argv[0] == "spikebatch":
        return cli(*argv[1:], env=env, timeout=timeout)
    if argv[0] == "python":
        return cli(*argv[1:], env=env, timeout=timeout, program=[sys.executable])
    return cli(*argv[1:], env=env, timeout=timeout, program=[argv[0]])


def ok(result: Result, where: str) -> Result:
    assert result.returncode == 0, f"{where}: exit {result.returncode}\n{result.stderr[-3000:]}"
    assert "Traceback" not in result.stderr, f"{where}:\n{result.stderr[-3000:]}"
    return result


def run_python_block(cli: Cli, b: Block, prelude: str = "", epilogue: str = "", timeout: float = 600) -> Result:
    """A python block as a script in the scratch folder; ``prelude`` supplies the names the
    README's fragment takes from its surroundings, ``epilogue`` checks what it did."""
    script = cli.root / f"readme_{b.line}.py"
    script.write_text(textwrap.dedent(prelude) + "\n# --- README.md:%d ---\n" % b.line + b.text + "\n# --- end ---\n"
                      + textwrap.dedent(epilogue))
    return ok(cli(env={"PYTHONPATH": os.environ.get("PYTHONPATH", "")}, timeout=timeout,
                  program=[sys.executable, str(script)]), b.where())


def with_examples(cli: Cli) -> Cli:
    shutil.copytree(REPO / "examples", cli.root / "examples")
    return cli


def write_quickstart_workspace(folder: Path) -> Path:
    """The workspace examples/analysis.py reads (what examples/quickstart.py builds)."""
    import numpy as np

    from spikebatch.workspace import DirectoryWorkspace

    spikes = np.sort(np.random.default_rng(0).uniform(0, 30.0, size=360))
    workspace = DirectoryWorkspace(str(folder))
    workspace.store("recording", "spike_times_s", spikes)
    workspace.store("recording", "info", {"duration_s": 30.0, "channels": 1})
    return folder


@pytest.fixture(scope="module")
def recordings(tmp_path_factory) -> Dict[str, Path]:
    """Small recordings in the formats the README names: a SpikeInterface folder and NWB files."""
    import warnings

    import spikeinterface.core as si

    root = tmp_path_factory.mktemp("readme-recordings")
    made: Dict[str, Path] = {}
    recording, _ = si.generate_ground_truth_recording(durations=[5.0], num_channels=4, num_units=3, seed=11)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        recording.save(folder=root / "rec1", verbose=False)
    made["rec1"] = root / "rec1"
    for name, seed in (("rec2.nwb", 12), ("rec3.nwb", 13)):
        recording, _ = si.generate_ground_truth_recording(durations=[5.0], num_channels=4, num_units=3, seed=seed)
        write_nwb(recording, root / name, identifier=name, description="readme")
        made[name] = root / name
    return made


def place_recordings(cli: Cli, recordings: Dict[str, Path]) -> None:
    """rec1/ and rec2.nwb in the scratch folder, data/*.nwb beside them (copies: a user's own files)."""
    shutil.copytree(recordings["rec1"], cli.root / "rec1")
    shutil.copy(recordings["rec2.nwb"], cli.root / "rec2.nwb")
    (cli.root / "data").mkdir(exist_ok=True)  # also the CLI's data folder here: only *.nwb are globbed
    for name in ("rec2.nwb", "rec3.nwb"):
        shutil.copy(recordings[name], cli.root / "data" / name)


# --- Install ---------------------------------------------------------------------------
def test_install_lines() -> None:
    """``pip install -e ".[test]"`` / ``pip install spikebatch``: the package, its extra and
    its two program names are what the README says (not installed again here)."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    local = commands(block('pip install -e ".[test]"'))
    assert [c.argv for c in local] == [["pip", "install", "-e", ".[test]"]]
    assert "test" in project["optional-dependencies"]
    assert {"spikebatch", "spikebatch-batch-jobs"} <= set(project["scripts"])
    assert "spikelab-batch-jobs" not in project["scripts"]  # SpikeLab's own program name
    assert project["requires-python"].replace(" ", "") == ">=3.10"
    (pypi, *_builds) = commands(block("pip install spikebatch\nspikebatch image build"))
    assert pypi.argv == ["pip", "install", project["name"]]
    assert [c.argv for c in commands(block("python -m pytest -rs"))] == [["python", "-m", "pytest", "-rs"]]
    assert (REPO / "tests").is_dir()


# --- Run a job --------------------------------------------------------------------------
def test_quickstart_prints_what_the_readme_shows(cli: Cli) -> None:
    with_examples(cli)
    (command,) = commands(block("```python examples/quickstart.py```"))
    result = ok(run(cli, command, env={"TMPDIR": str(cli.root)}, timeout=600), "python examples/quickstart.py")
    shown = block("JOB_NAME=quickstart-")
    shown_lines = shown.text.splitlines()
    assert_shown_keys_printed(keys_of(shown.text), result.stdout, shown.where())
    others = [line for line in shown_lines if not keys_of(line) and line.strip() != "..."]
    assert_shown_lines_printed(others, result.stdout, shown.where())


def test_library_workspace_job(cli: Cli) -> None:
    """The README's library example, with the files it takes from its surroundings:
    the organoid-ws workspace folder and examples/analysis.py as analysis.py."""
    with_examples(cli)
    shutil.copy(cli.root / "examples" / "analysis.py", cli.root / "analysis.py")
    write_quickstart_workspace(cli.root / "organoid-ws")
    b = block('session = RunSession.from_profile("local")')
    run_python_block(cli, b, epilogue="""
        assert state == "Complete", state
        summary = workspace.get("analysis", "summary")
        assert summary["spike_count"] == 360, summary
        """)
    assert (cli.root / "results").is_dir()
    (record,) = cli.records()
    assert record["job_name"].startswith("my-analysis-")


def test_library_sorting_job(cli: Cli, recordings) -> None:
    """``submit_sorting_job`` with the README's recordings (a folder and an .nwb) and its
    nested ``config_overrides``, sorted for real by spykingcircus2 on the local profile."""
    place_recordings(cli, recordings)
    b = block("result = session.submit_sorting_job(")
    run_python_block(cli, b, prelude="""
        from spikebatch.session import RunSession
        session = RunSession.from_profile("local")
        """, epilogue="""
        state = session.wait_for_completion(result.job_name, max_wait_seconds=600)
        assert state == "Complete", (state, session.job_report(result.job_name))
        workspace = session.retrieve_result(result, "sorted/")
        print("NAMESPACES=" + ",".join(sorted(workspace.list_keys())))
        """, timeout=700)


def test_library_batch_and_the_status_table(cli: Cli, recordings) -> None:
    """The batch API example as written (kilosort4, which this machine lacks, so every
    recording fails with that reason: the example's retry branch runs too), then
    ``spikebatch status RUN`` against the README's table. Its recordings: data/*.nwb."""
    place_recordings(cli, recordings)
    b = block("batch = session.submit_sorting_batch(")
    result = run_python_block(cli, b, prelude="""
        from spikebatch.session import RunSession
        session = RunSession.from_profile("local")
        """, epilogue="""
        print(f"RUN={batch.run_id}")
        assert state == "Failed" and len(report.rows) == 2, (state, report.rows)
        assert all("kilosort4 is not installed" in row.why() for row in report.rows), [r.why() for r in report.rows]
        assert sorted(result.failed) and not result.succeeded, result
        # the retry the example started: wait for it, so nothing outlives the test
        again, _ = session.wait_for_batch(batch.run_id, max_wait_seconds=300)
        assert again == "Failed", again
        """)
    run_id = next(line.split("=", 1)[1] for line in result.stdout.splitlines() if line.startswith("RUN="))
    status = ok(cli("status", run_id), "spikebatch status RUN")
    table = block("RECORDING   INDEX  STATE")
    shown_header, *shown_rows = table.text.splitlines()
    printed_header, *printed_rows = status.stdout.splitlines()
    assert printed_header.split() == shown_header.split(), (printed_header, shown_header)
    assert len(printed_rows) == 2
    for row in printed_rows:  # recording, index, state, attempts first, as in the README's rows
        recording, index, state, attempts = row.split()[:4]
        assert index.isdigit() and attempts.isdigit() and state == "failed", row


# --- The same job on a cluster: the image ------------------------------------------------
STUB_ENGINE = """#!/bin/sh
# A container engine that records what it is asked to do.
echo "$0 $*" >> "$ENGINE_LOG"
case "$1" in
  version) echo 27.0.0 ;;
  build) while [ $# -gt 0 ]; do if [ "$1" = --iidfile ]; then echo sha256:0123456789abcdef > "$2"; fi; shift; done
         echo "STEP 1/1: done" ;;
  push) echo "pushed $2" ;;
esac
"""


def test_image_build_lines(cli: Cli) -> None:
    """``spikebatch image build ... --push`` as written, with docker replaced by a stub that
    records its arguments (a real build takes minutes and a push needs the registry; the
    real build is tests/e2e/test_image_build.py's)."""
    stubs = cli.root / "bin"
    stubs.mkdir()
    for name in ("docker", "podman"):
        (stubs / name).write_text(STUB_ENGINE)
        (stubs / name).chmod(stat.S_IRWXU)
    env = {"PATH": f"{stubs}{os.pathsep}{os.environ['PATH']}", "ENGINE_LOG": str(cli.root / "engine.log")}
    (_pip, cpu, gpu) = commands(block("pip install spikebatch\nspikebatch image build"))
    for command, suffix in ((cpu, "0.1.0"), (gpu, "0.1.0-gpu")):
        result = ok(run(cli, command, env=env), command.line)
        tag = f"registry.example.org/lab/spikebatch-runner:{suffix}"
        assert result.keys["IMAGE"] == tag and result.keys["PUSHED"] == "true", result.stdout
        assert_shown_lines_printed(command.shown_other, result.stdout + result.stderr, command.line)
    log = (cli.root / "engine.log").read_text().splitlines()
    assert any(" build " in line and "--tag registry.example.org/lab/spikebatch-runner:0.1.0 " in line for line in log)
    assert any(line.endswith(" push registry.example.org/lab/spikebatch-runner:0.1.0-gpu") for line in log), log


# --- Render, the error line, the job config and the profiles -----------------------------
def install_profile(cli: Cli, text: str, name: str) -> Path:
    folder = Path(cli.env["XDG_CONFIG_HOME"]) / "spikebatch" / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(text)
    return path


def test_render_lines_and_the_error_line(cli: Cli) -> None:
    with_examples(cli)
    # first, with no profile of the user's own (the README lists the built-ins)
    error_block = block("$ spikebatch render-job --profile nope")
    typed, shown_error = error_block.text.splitlines()  # "$ command", then what it prints
    failing = Command(typed.removeprefix("$ "))
    result = run(cli, failing)
    assert result.returncode == 2 and len(result.error_lines) == 1, result.stderr
    assert shape(shown_error).fullmatch(result.error_lines[0]), (shown_error, result.error_lines[0])

    profile = install_profile(cli, block("name: mylab\nextends: defaults").text, "mylab")
    ok(cli("profiles", "validate", str(profile)), "profiles validate (README's mylab)")
    local, cluster = commands(block("spikebatch render-job --job-config examples/job.yaml"))
    rendered = ok(run(cli, local), local.line)
    assert yaml.safe_load(rendered.stdout)["kind"] == "Job"
    written = ok(run(cli, cluster), cluster.line)
    assert_shown_keys_printed(cluster.shown_keys, written.stdout, cluster.line)
    manifest = yaml.safe_load(Path(written.keys["MANIFEST_PATH"]).read_text())
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    assert container["image"] == "registry.example.org/lab/spikebatch-runner:0.1.0-gpu"
    assert manifest["metadata"]["namespace"] == "mylab"


def test_job_config_and_profile_yaml(cli: Cli) -> None:
    """The job config shown under "The job config" checks and renders; the full profile
    under "Profiles" validates and renders a job."""
    config = cli.root / "job.yaml"
    config.write_text(block("name_prefix: Spike Analysis").text)
    checked = cli("policy-check", "--job-config", str(config))
    assert checked.returncode == 0, checked.stdout + checked.stderr
    rendered = ok(cli("render-job", "--job-config", str(config)), "render-job of the README's job config")
    manifest = yaml.safe_load(rendered.stdout)
    assert manifest["metadata"]["name"].startswith("spike-analysis-")
    (container,) = manifest["spec"]["template"]["spec"]["containers"]
    secret = next(e for e in container["env"] if e["name"] == "AWS_SECRET_ACCESS_KEY")
    assert secret["valueFrom"]["secretKeyRef"] == {"name": "s3-credentials", "key": "secret-access-key"}

    profile = cli.root / "mylab.yaml"
    profile.write_text(block("name: mylab\nextends: nrp").text)
    ok(cli("profiles", "validate", str(profile)), "profiles validate of the README's full profile")
    with_examples(cli)
    manifest = yaml.safe_load(ok(cli("--profile-file", str(profile), "render-job", "--job-config",
                                      "examples/job.yaml"), "render-job on the README's full profile").stdout)
    assert manifest["metadata"]["namespace"] == "mylab"


# --- A day's work on the laptop ----------------------------------------------------------
def test_a_day_on_the_laptop(cli: Cli) -> None:
    """The local lines of "A day's work on the laptop" (the ``--profile nrp`` one runs in
    test_sorting_lines_on_a_cluster); ``job-logs RUN --follow`` follows the run just made."""
    with_examples(cli)
    shutil.copy(cli.root / "examples" / "analysis.py", cli.root / "analysis.py")
    write_quickstart_workspace(cli.root / "organoid-ws")
    submit, _nrp, logs, listing, *more = commands(block("spikebatch submit-workspace --workspace ./organoid-ws"))
    submitted = ok(run(cli, submit), submit.line)
    assert_shown_keys_printed(submit.shown_keys, submitted.stdout, submit.line)
    assert submitted.keys["FINAL_STATUS"] == "Complete"
    assert Path(submitted.keys["RETRIEVED_TO"]) == (cli.root / "results").resolve()
    run_id = submitted.keys["RUN_ID"]
    followed = ok(run(cli, logs, replace={logs.argv[2]: run_id}), logs.line)
    assert "running analysis.py on a directory workspace" in followed.stdout
    listed = ok(run(cli, listing), listing.line)
    assert run_id in listed.stdout and submitted.keys["JOB_NAME"] in listed.stdout
    table = block("NAME                 STATE     AGE  RUN ID").text.splitlines()
    # the table is plain `list-jobs` (live states; --offline heads its column LAST STATE)
    live = ok(cli("list-jobs"), "spikebatch list-jobs")
    printed_header = live.stdout.splitlines()[0]
    assert printed_header.split() == table[0].split(), (printed_header, table[0])
    for command in more:  # spikebatch show RUN
        shown = ok(run(cli, command, replace={command.argv[2]: run_id}), command.line)
        assert run_id in shown.stdout and "analysis.py" in shown.stdout, shown.stdout


def test_directory_workspace_lines(cli: Cli) -> None:
    """The workspace commands as written, the Python two-liner, and the layout shown."""
    import numpy as np

    np.save(cli.root / "spike_times.npy", np.arange(5, dtype=float))
    (cli.root / "info.json").write_text('{"duration_s": 30.0}')
    for command in commands(block("spikebatch workspace init organoid-ws")):
        ok(run(cli, command), command.line)
    layout = block("spikebatch-workspace.json      the index").text.splitlines()
    root = layout[0].strip().rstrip("/")
    for line in layout[1:]:
        relative = line.split()[0]
        if not relative.endswith("notes.bin"):  # raw bytes: no command of the block adds one
            assert (cli.root / root / relative).is_file(), (line, sorted(p.name for p in (cli.root / root).rglob("*")))
    shutil.rmtree(cli.root / root)
    run_python_block(cli, block('workspace = DirectoryWorkspace("organoid-ws")'), epilogue="""
        assert workspace.get("rec1", "spike_times").tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]
        """)
    assert (cli.root / root / "spikebatch-workspace.json").is_file()


# --- Examples naming a cluster: the test control plane, its real node and MinIO ---------
def _on_the_test_node(profile: dict, real_cluster, minio_server, bucket: str, image: str) -> dict:
    """A README profile pointed at the test environment: its bucket and endpoint, the
    test image, and the placement the real node needs; everything else as the README has it."""
    profile = dict(profile)
    profile.update(default_s3_prefix=f"s3://{bucket}/spikebatch/", endpoint_url=minio_server.endpoint_url,
                   region_name=minio_server.region, host_network=True,
                   tolerations=list(real_cluster.node.tolerations),
                   resources={"requests_cpu": "500m", "requests_memory": "1Gi", "limits_cpu": "500m",
                              "limits_memory": "1Gi", "node_selector": dict(real_cluster.node.node_selector)})
    profile["default_images"] = {**(profile.get("default_images") or {}), "cpu": image}
    return profile


def _create_namespace(real_cluster, name: str) -> None:
    from kubernetes import client

    with real_cluster.cluster.admin_api() as api:
        client.CoreV1Api(api).create_namespace({"metadata": {"name": name}})


@pytest.fixture
def cluster_user(cli: Cli, real_cluster, minio_server, s3_bucket) -> Cli:
    """A user with a kubeconfig for the test cluster and MinIO keys in ~/.aws/credentials."""
    aws = cli.home / ".aws"
    aws.mkdir()
    (aws / "credentials").write_text(f"[default]\naws_access_key_id = {minio_server.access_key}\n"
                                     f"aws_secret_access_key = {minio_server.secret_key}\n")
    cli.env["KUBECONFIG"] = str(real_cluster.cluster.admin_kubeconfig)
    cli.bucket = s3_bucket
    return with_examples(cli)


@pytest.mark.integration
def test_the_same_job_on_a_cluster(cluster_user: Cli, real_cluster, minio_server) -> None:
    """Steps 2-4 of "The same job on a cluster" as written: the README's mylab profile
    (pointed at MinIO, the test image and the real node), the kubectl line creating the
    secret in namespace mylab, submit-workspace with --retrieve-to, job-status RUN_ID and
    examples/quickstart.py mylab, in real containers."""
    cli = cluster_user
    readme_profile = yaml.safe_load(block("name: mylab\nextends: defaults").text)
    install_profile(cli, yaml.safe_dump(_on_the_test_node(readme_profile, real_cluster, minio_server, cli.bucket,
                                                          real_cluster.image)), "mylab")
    _create_namespace(real_cluster, "mylab")
    (secret,) = commands(block("kubectl -n mylab create secret"))
    ok(run(cli, secret), secret.line)

    shutil.copy(cli.root / "examples" / "analysis.py", cli.root / "analysis.py")
    write_quickstart_workspace(cli.root / "ws")
    submit, status, quickstart = commands(block("spikebatch --profile mylab submit-workspace"))
    submitted = ok(run(cli, submit, timeout=400), submit.line)
    assert submitted.keys["FINAL_STATUS"] == "Complete"
    assert (cli.root / "results").is_dir()
    shown = ok(run(cli, status, replace={"RUN_ID": submitted.keys["RUN_ID"]}), status.line)
    assert shown.keys["JOB_STATUS"] == "Complete"
    started = ok(run(cli, quickstart, env={"TMPDIR": str(cli.root)}, timeout=400), quickstart.line)
    assert "FINAL_STATUS=Complete" in started.stdout.splitlines()


@pytest.mark.integration
def test_sorting_lines_on_a_cluster(cluster_user: Cli, real_cluster, minio_server, recordings) -> None:
    """The cluster sorting lines, on the real node: ``--profile nrp`` is a user profile
    nrp.yaml extending the built-in nrp (its namespace braingeneers and credentials secret
    made here), ``--profile my-cluster`` the README's mylab profile under that name.
    The kilosort4 batch runs in real pods (the test image has no Kilosort, so each
    recording fails with that reason: the README's failed-batch output); the GPU line is
    submitted (its note checked) and deleted, the test node having no GPU."""
    from test_cluster_jobs import create_s3_secret

    cli = cluster_user
    place_recordings(cli, recordings)
    _create_namespace(real_cluster, "braingeneers")
    secret = "prp-s3-credentials"
    create_s3_secret(real_cluster.cluster, "braingeneers", minio_server)  # named s3-credentials
    subprocess.run(["kubectl", "-n", "braingeneers", "create", "secret", "generic", secret,
                    f"--from-file=credentials={cli.home / '.aws' / 'credentials'}"], check=True, env=cli.env,
                   capture_output=True)
    # The built-in nrp under the same name (a user nrp.yaml cannot extend the built-in nrp:
    # that is a loop, nrp -> nrp), pointed at the test environment.
    builtin = yaml.safe_load((REPO / "src" / "spikebatch" / "profiles" / "nrp.yaml").read_text())
    nrp = _on_the_test_node(builtin, real_cluster, minio_server, cli.bucket, real_cluster.image)
    hooks = nrp["namespace_hooks"]["braingeneers"]
    hooks["env_defaults"]["S3_ENDPOINT_URL"] = minio_server.endpoint_url
    hooks["image_pull_policy"] = "IfNotPresent"  # the test image is imported into the node, not in a registry
    install_profile(cli, yaml.safe_dump(nrp), "nrp")

    (batch,) = commands(block("spikebatch --profile nrp submit-sorting --recording 'data/*.nwb' --preset kilosort4"))
    result = run(cli, batch, timeout=300)
    assert result.returncode == 1, result.stderr[-3000:]
    assert result.keys["FINAL_STATUS"] == "Failed" and result.keys["RECORDINGS"] == "2"
    assert_shown_keys_printed([k for k in batch.shown_keys if k not in ("RETRIEVED_TO", "SUCCEEDED")],
                              result.stdout, batch.line)
    errors = [line for line in result.error_lines if line.startswith("error: batch")]
    assert len(errors) == 1 and "2 of 2 recordings failed" in errors[0] and "kilosort" in errors[0], result.stderr

    laptop = commands(block("spikebatch submit-workspace --workspace ./organoid-ws"))[1]
    sorted_ = ok(run(cli, laptop, timeout=300), laptop.line)
    assert sorted_.keys["RECORDINGS"] == "2" and sorted_.keys["JOB_NAME"].startswith("sort-tridesclous2-")
    ok(cli("job-delete", sorted_.keys["RUN_ID"]), "job-delete")

    cluster = yaml.safe_load(block("name: mylab\nextends: defaults").text)
    cluster["name"] = "my-cluster"
    cluster["namespace"] = "braingeneers"
    cluster.pop("namespace_hooks")
    install_profile(cli, yaml.safe_dump(_on_the_test_node(cluster, real_cluster, minio_server, cli.bucket,
                                                          real_cluster.image)), "my-cluster")
    (gpu,) = commands(block("--profile my-cluster submit-sorting"))
    submitted = ok(run(cli, gpu, timeout=300), gpu.line)
    assert_shown_lines_printed(gpu.shown_other, submitted.stderr, gpu.line)
    ok(cli("job-delete", submitted.keys["RUN_ID"]), "job-delete")
