"""deploy-job, job-status, job-logs, job-delete and list-jobs against the test control
plane (a real kube-apiserver and job controller; kwok plays the node and completes or
fails the pods)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from cli_support import Cli, assert_one_line_error, cli  # noqa: F401

pytestmark = pytest.mark.integration

RUNNER_IMAGE = "registry.example.org/lab/runner:1.0"


@pytest.fixture
def cluster_cli(cli: Cli, kube_cluster, kube_namespace: str) -> Cli:
    """``cli`` with a profile for the test namespace and the admin kubeconfig."""
    kube_cluster.require("pod_log_lines", "fail_label")
    profile = cli.root / "testcluster.yaml"
    profile.write_text(
        "name: testcluster\nbackend: kubernetes\nstorage_backend: local\n"
        f"namespace: {kube_namespace}\n"
        f"default_images: {{cpu: '{RUNNER_IMAGE}', gpu: '{RUNNER_IMAGE}-gpu'}}\n"
    )
    cli.profile_args = ["--profile-file", str(profile), "--kubeconfig", kube_cluster.admin_kubeconfig]
    cli.cluster = kube_cluster
    cli.namespace = kube_namespace
    return cli


def _job_config(cli: Cli, name: str = "Organoid Analysis", extra: str = "") -> Path:
    config = cli.root / f"{name.replace(' ', '_')}.yaml"
    config.write_text(f"name_prefix: {name}\ncontainer:\n  command: [python, analysis.py]\nbackoff_limit: 0\n{extra}")
    return config


def _read_job(cluster, namespace: str, name: str):
    from kubernetes import client
    from kubernetes.client.rest import ApiException

    with cluster.admin_api() as api:
        try:
            return client.BatchV1Api(api).read_namespaced_job(name, namespace)
        except ApiException as exc:
            if exc.status == 404:
                return None
            raise


def test_deploy_wait_status_logs_list_delete(cluster_cli: Cli) -> None:
    cli = cluster_cli
    deployed = cli(*cli.profile_args, "deploy-job", "--job-config", str(_job_config(cli)), "--wait",
                   "--max-wait-seconds", "120")
    assert deployed.returncode == 0, deployed.stderr
    job, run_id = deployed.keys["JOB_NAME"], deployed.keys["RUN_ID"]
    assert job.startswith("organoid-analysis-") and deployed.keys["FINAL_STATUS"] == "Complete"

    submitted = _read_job(cli.cluster, cli.namespace, job)
    assert submitted is not None
    assert submitted.metadata.labels["spikebatch.io/run-id"] == run_id
    assert submitted.spec.template.spec.containers[0].image == RUNNER_IMAGE

    # the record remembers profile file and kubeconfig: the run id alone is enough
    status = cli("job-status", run_id)
    assert status.returncode == 0, status.stderr
    assert status.keys == {"JOB_NAME": job, "RUN_ID": run_id, "JOB_STATUS": "Complete"}
    by_name = cli(*cli.profile_args, "job-status", job, "-o", "json")
    assert by_name.json()["job_status"] == "Complete"

    logs = cli(*cli.profile_args, "job-logs", job)
    assert logs.returncode == 0, logs.stderr
    assert logs.stdout.splitlines() == cli.cluster.pod_log_lines
    followed = cli("job-logs", run_id, "--follow")
    assert followed.returncode == 0, followed.stderr
    assert followed.stdout.splitlines() == cli.cluster.pod_log_lines

    listed = cli(*cli.profile_args, "list-jobs", "-o", "json").json()
    (entry,) = listed["jobs"]
    assert entry["name"] == job and entry["state"] == "Complete" and entry["run_id"] == run_id
    assert entry["job_type"] == "prepared" and entry["namespace"] == cli.namespace

    deleted = cli(*cli.profile_args, "job-delete", job)
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.keys["DELETED_JOB"] == job
    deadline = time.monotonic() + 30
    while _read_job(cli.cluster, cli.namespace, job) is not None:
        assert time.monotonic() < deadline, f"job {job} still exists after job-delete"
        time.sleep(0.2)
    assert_one_line_error(cli(*cli.profile_args, "job-status", job), 2, job)


def test_deploy_follow_logs_prints_the_pod_log_to_stderr(cluster_cli: Cli) -> None:
    cli = cluster_cli
    result = cli(*cli.profile_args, "deploy-job", "--job-config", str(_job_config(cli, "follow me")), "--follow-logs",
                 "--max-wait-seconds", "120")
    assert result.returncode == 0, result.stderr
    assert result.keys["FINAL_STATUS"] == "Complete"
    for line in cli.cluster.pod_log_lines:
        assert line in result.stderr
        assert line not in result.stdout


def test_a_failing_pod_makes_deploy_wait_exit_1(cluster_cli: Cli) -> None:
    cli = cluster_cli
    key, value = cli.cluster.fail_label
    config = _job_config(cli, "doomed", extra=f"labels: {{'{key}': '{value}'}}\n")
    result = cli(*cli.profile_args, "deploy-job", "--job-config", str(config), "--wait", "--max-wait-seconds", "120")
    assert result.returncode == 1, result.stderr
    assert result.keys["FINAL_STATUS"] == "Failed"
    errors = [line for line in result.error_lines if line.startswith("error:")]
    assert len(errors) == 1 and "failed" in errors[0] and result.keys["JOB_NAME"] in errors[0]
    status = cli("job-status", result.keys["RUN_ID"])
    assert status.keys["JOB_STATUS"] == "Failed"
    waited = cli("wait", result.keys["RUN_ID"])
    assert waited.returncode == 1 and waited.keys["FINAL_STATUS"] == "Failed"
    # The reason, from the pod's status as the API server reports it, in every place
    # that reports the job: list-jobs (live and from the record) and show.
    listed = cli(*cli.profile_args, "list-jobs", "-o", "json").json()
    (row,) = [job for job in listed["jobs"] if job["name"] == result.keys["JOB_NAME"]]
    assert row["reason_code"] == "containerFailed" and "exit code 1" in row["reason"], row
    offline = cli("list-jobs", "--offline", "-o", "json").json()
    (kept,) = [job for job in offline["jobs"] if job["name"] == result.keys["JOB_NAME"]]
    assert kept["reason_code"] == "containerFailed", kept
    shown = cli("show", result.keys["RUN_ID"])
    assert shown.returncode == 0 and shown.keys["STATE"] == "Failed" and "containerFailed" in shown.keys["REASON"]


def test_render_only_and_blocked_policy_create_nothing_on_the_cluster(cluster_cli: Cli) -> None:
    cli = cluster_cli
    rendered = cli(*cli.profile_args, "deploy-job", "--job-config", str(_job_config(cli)), "--render-only")
    assert rendered.returncode == 0, rendered.stderr
    idle = _job_config(cli, "idle", extra="")
    idle.write_text("container:\n  command: [sleep, infinity]\n")
    blocked = cli(*cli.profile_args, "deploy-job", "--job-config", str(idle))
    assert_one_line_error(blocked, 2, "sleep_in_batch_job")
    listed = cli(*cli.profile_args, "list-jobs", "-o", "json").json()
    assert listed["jobs"] == []
    assert cli.records() == []
