"""Two ways a job config or a Job stops being there: a Job too large for the API server
is bad input (exit 2, one line, nothing created), and a Job deleted while ``wait`` /
``--wait`` or ``job-logs --follow`` watch it is an outcome of its own (exit 5, one
line saying so). Against the test control plane (kwok plays the node; a pod that
cannot be scheduled keeps its Job Pending for as long as the test needs) and on the
local profile (real processes)."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, List

import pytest
import yaml
from cli_support import Cli, assert_one_line_error, cli, write_workspace  # noqa: F401  (cli is a fixture)

from spikebatch.domain.errors import JobTooLargeError
from spikebatch.domain.manifest import render_job_manifest
from spikebatch.models import ClusterProfile, JobSpec

RUNNER_IMAGE = "registry.example.org/lab/runner:1.0"
EXIT_DELETED = 5
#: The API server's limit on a request body (kube-apiserver's MaxRequestBodyBytes).
API_SERVER_REQUEST_LIMIT = 3 * 1024 * 1024


class Running:
    """A ``spikebatch`` subprocess whose stderr is read as it comes, so a test can wait
    for a line (a condition) instead of a moment."""

    def __init__(self, cli: Cli, *args: str) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", "spikebatch", *args], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True, env=cli.env, cwd=cli.root)
        self.err_lines: List[str] = []
        self.out_chunks: List[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()
        self._out_reader = threading.Thread(target=lambda: self.out_chunks.append(self.proc.stdout.read()),
                                            daemon=True)
        self._out_reader.start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            with self._changed:
                self.err_lines.append(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for_stderr(self, wanted: Callable[[str], bool], timeout: float = 120) -> str:
        """The first stderr line ``wanted`` accepts; fails if the process ends first."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                for line in self.err_lines:
                    if wanted(line):
                        return line
                if not self._reader.is_alive():
                    raise AssertionError(f"the process ended first: {''.join(self.err_lines)!r}")
                left = deadline - time.monotonic()
                assert left > 0, f"no such line within {timeout} s: {''.join(self.err_lines)!r}"
                self._changed.wait(left)

    def stop(self) -> None:
        """Kill the process if it still runs (a failed test must not leave it)."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()

    def finish(self, timeout: float = 120) -> tuple[int, str, str]:
        """Wait for the process to end (killed, and the test failed, if it does not
        within ``timeout``): (exit code, stdout, stderr)."""
        try:
            code = self.proc.wait(timeout=timeout)
        finally:
            self.stop()
        self._reader.join(timeout=10)
        self._out_reader.join(timeout=10)
        return code, "".join(self.out_chunks), "".join(self.err_lines)


@pytest.fixture
def start(cli: Cli):
    """``start(*args)``: a Running ``spikebatch``, killed at teardown if still running."""
    started: List[Running] = []

    def run(*args: str) -> Running:
        started.append(Running(cli, *args))
        return started[-1]

    yield run
    for running in started:
        running.stop()


# --- the test cluster ----------------------------------------------------------------


@pytest.fixture(params=["kubernetes", "kubectl"])
def cluster_cli(request, cli: Cli, kube_cluster, kube_namespace: str) -> Cli:
    """``cli`` with a profile for the test namespace (each cluster backend) and the
    admin kubeconfig."""
    profile = cli.root / "testcluster.yaml"
    profile.write_text(
        f"name: testcluster\nbackend: {request.param}\nstorage_backend: local\nnamespace: {kube_namespace}\n"
        f"default_images: {{cpu: '{RUNNER_IMAGE}', gpu: '{RUNNER_IMAGE}-gpu'}}\n")
    cli.args = ["--kubeconfig", kube_cluster.admin_kubeconfig, "--profile-file", str(profile)]
    cli.cluster, cli.namespace, cli.backend = kube_cluster, kube_namespace, request.param
    return cli


def _jobs_in(cluster, namespace: str) -> List[str]:
    from kubernetes import client

    with cluster.admin_api() as api:
        return [j.metadata.name for j in client.BatchV1Api(api).list_namespaced_job(namespace).items]


def _delete_job(cluster, namespace: str, name: str) -> None:
    """Out of band: the admin deletes the Job through the API, as another user would."""
    from kubernetes import client

    with cluster.admin_api() as api:
        client.BatchV1Api(api).delete_namespaced_job(name, namespace, propagation_policy="Background")


def _pending_job_config(cli: Cli) -> Path:
    """A Job whose pod no node accepts: it stays Pending until it is deleted."""
    config = cli.root / "pending.yaml"
    config.write_text(yaml.safe_dump({
        "name_prefix": "never scheduled", "container": {"command": ["python", "analysis.py"]},
        "resources": {"node_selector": {"spikebatch.io/no-such-node": "true"}}}))
    return config


def _big_job_config(cli: Cli, total_bytes: int) -> Path:
    """A job config of a few hundred KiB (inside the job-config size limit) whose env
    value, repeated through YAML aliases, makes a Job of ``total_bytes``."""
    chunk = 200 * 1024
    copies = -(-total_bytes // chunk)
    aliases = ", ".join(["*big"] * (copies - 1))
    config = cli.root / "big.yaml"
    config.write_text(
        "name_prefix: too big\ncontainer:\n  command: [python, analysis.py]\n"
        f"  args: [&big '{'x' * chunk}', {aliases}]\n")
    assert config.stat().st_size < 256 * 1024
    return config


@pytest.mark.integration
@pytest.mark.parametrize("size", [4 * 1024 * 1024, 2 * 1024 * 1024])
def test_a_job_too_large_for_the_api_server_is_bad_input(cluster_cli: Cli, size: int) -> None:
    cli = cluster_cli
    config = _big_job_config(cli, size)
    result = cli(*cli.args, "deploy-job", "--job-config", str(config))
    assert_one_line_error(result, 2, "too large", "inline data")
    assert result.stdout == ""
    assert _jobs_in(cli.cluster, cli.namespace) == []
    assert cli.records() == []
    # a workspace job of that size is refused before a byte is uploaded
    workspace = write_workspace(cli.root / "ws", x=1)
    script = cli.root / "analysis.py"
    script.write_text("print('hi')\n")
    submitted = cli(*cli.args, "submit-workspace", "--workspace", str(workspace), "--script", str(script),
                    "--job-config", str(config))
    assert_one_line_error(submitted, 2, "too large")
    assert _jobs_in(cli.cluster, cli.namespace) == [] and cli.data_files() == []


@pytest.mark.integration
@pytest.mark.parametrize("backend", ["kubernetes", "kubectl"])
def test_the_api_servers_413_is_a_too_large_error(kube_cluster, kube_namespace: str, backend: str) -> None:
    """With spikebatch's own size check off, the API server itself refuses a Job over
    its request limit (HTTP 413, kubectl: RequestEntityTooLarge): the same one-line
    bad-input error, dry run or not, and nothing is created."""
    if backend == "kubernetes":
        from spikebatch.adapters.kubernetes.backend import KubernetesBatchJobBackend as Backend
    else:
        from spikebatch.adapters.kubectl.backend import KubectlBackend as Backend
    profile = ClusterProfile(name="t", namespace=kube_namespace, default_images={"cpu": RUNNER_IMAGE})
    spec = JobSpec(name_prefix="big", container={"command": ["python"], "env": {"BIG": "x" * (API_SERVER_REQUEST_LIMIT + 1024)}})
    manifest = render_job_manifest("big-413", spec, profile, "20260101-000000-abcdefgh")
    job_backend = Backend(namespace=kube_namespace, kubeconfig=kube_cluster.admin_kubeconfig)
    job_backend.max_job_bytes = None
    for dry_run in (True, False):
        with pytest.raises(JobTooLargeError) as caught:
            job_backend.apply_manifest(manifest, dry_run=dry_run)
        assert caught.value.exit_code == 2
        assert "Request entity too large" in caught.value.message and "\n" not in caught.value.message
    assert _jobs_in(kube_cluster, kube_namespace) == []


@pytest.mark.integration
def test_a_job_deleted_while_wait_runs_is_reported_as_deleted(cluster_cli: Cli, start) -> None:
    cli = cluster_cli
    deployed = cli(*cli.args, "deploy-job", "--job-config", str(_pending_job_config(cli)))
    assert deployed.returncode == 0, deployed.stderr
    job, run_id = deployed.keys["JOB_NAME"], deployed.keys["RUN_ID"]

    waiting = start("wait", run_id, "--max-wait-seconds", "600")
    # the wait has seen the Job (its first watch event): now it is watching
    waiting.wait_for_stderr(lambda line: line.startswith(f"job {job}: Pending"))
    _delete_job(cli.cluster, cli.namespace, job)
    code, out, err = waiting.finish()

    assert code == EXIT_DELETED, err
    assert "FINAL_STATUS=Deleted" in out.splitlines()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"job {job} was deleted while waiting" in errors[0]
    assert "Traceback" not in err
    (record,) = cli.records()
    assert record["record"]["last_state"] == "Deleted"


@pytest.mark.integration
def test_a_job_deleted_during_deploy_wait_is_reported_as_deleted(cluster_cli: Cli, start) -> None:
    cli = cluster_cli
    waiting = start(*cli.args, "deploy-job", "--job-config", str(_pending_job_config(cli)), "--wait",
                      "--max-wait-seconds", "600")
    line = waiting.wait_for_stderr(lambda text: text.startswith("job ") and text.rstrip().endswith(": Pending"))
    job = line.split()[1].rstrip(":")
    _delete_job(cli.cluster, cli.namespace, job)
    code, out, err = waiting.finish()
    assert code == EXIT_DELETED, err
    assert "FINAL_STATUS=Deleted" in out.splitlines()
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"job {job} was deleted while waiting" in errors[0]
    assert "Traceback" not in err


@pytest.mark.integration
def test_job_logs_follow_says_the_job_was_deleted(cluster_cli: Cli, start) -> None:
    cli = cluster_cli
    deployed = cli(*cli.args, "deploy-job", "--job-config", str(_pending_job_config(cli)))
    assert deployed.returncode == 0, deployed.stderr
    job, run_id = deployed.keys["JOB_NAME"], deployed.keys["RUN_ID"]

    following = start("job-logs", run_id, "--follow")
    following.wait_for_stderr(lambda line: line.startswith(f"following the log of job {job}"))
    _delete_job(cli.cluster, cli.namespace, job)
    code, out, err = following.finish()

    assert code == EXIT_DELETED, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"job {job} was deleted while its logs were followed" in errors[0]
    assert "Traceback" not in err


# --- the local profile ---------------------------------------------------------------


def _local_sleeper(cli: Cli) -> Path:
    """A local job that prints a line, then runs until it is stopped."""
    config = cli.root / "sleeper.yaml"
    config.write_text(yaml.safe_dump({
        "name_prefix": "sleeper",
        "container": {"command": [sys.executable, "-c",
                                  "import time\nprint('sleeper started', flush=True)\nwhile True: time.sleep(1)\n"]}}))
    return config


def test_local_wait_and_follow_report_a_job_deleted_meanwhile(cli: Cli, start, request) -> None:
    deployed = cli("deploy-job", "--job-config", str(_local_sleeper(cli)))
    assert deployed.returncode == 0, deployed.stderr
    job, run_id = deployed.keys["JOB_NAME"], deployed.keys["RUN_ID"]
    request.addfinalizer(lambda: cli("job-delete", job))  # a failed test leaves no sleeper behind

    waiting = start("wait", run_id, "--max-wait-seconds", "600")
    following = start("job-logs", job, "--follow")
    waiting.wait_for_stderr(lambda line: line.startswith(f"job {job}: Running"))
    following.wait_for_stderr(lambda line: line.startswith(f"following the log of job {job}"))
    deleted = cli("job-delete", job)
    assert deleted.returncode == 0, deleted.stderr

    code, out, err = waiting.finish()
    assert code == EXIT_DELETED, err
    assert "FINAL_STATUS=Deleted" in out.splitlines()
    assert [line for line in err.splitlines() if line.startswith("error:")] == [
        f"error: job {job} was deleted while waiting (by someone else, job-delete or its TTL); it did not end by "
        "itself and its pods are gone: submit it again to run it"]

    code, out, err = following.finish()
    assert code == EXIT_DELETED, err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and f"job {job} was deleted while its logs were followed" in errors[0]


def test_waiting_for_a_job_that_never_existed_is_still_a_usage_error(cli: Cli) -> None:
    assert_one_line_error(cli("wait", "no-such-job-q1"), 2, "no-such-job-q1")
