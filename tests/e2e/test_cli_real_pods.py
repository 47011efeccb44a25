"""The command line against the real node: a user's profile file, their S3 keys in the
environment, a workspace job that runs in a real container and comes back, and a failing
job whose reason reaches the one-line error."""

from __future__ import annotations

import yaml
import pytest
from cli_support import Cli, cli, write_workspace  # noqa: F401
from test_cluster_jobs import CREDENTIALS_DIR, SECRET, create_s3_secret

pytestmark = pytest.mark.integration


@pytest.fixture
def real_cli(request, cli: Cli, real_cluster, kube_namespace, minio_server, s3_bucket) -> Cli:
    """``cli`` with a profile for the real node; the storage adapter is the test's
    parameter (indirect), MinIO's SDK unless it says otherwise."""
    storage = getattr(request, "param", "minio")
    create_s3_secret(real_cluster.cluster, kube_namespace, minio_server)
    profile = {
        "name": "realnode", "backend": "kubernetes", "storage_backend": storage, "namespace": kube_namespace,
        "default_s3_prefix": f"s3://{s3_bucket}/lab/", "endpoint_url": minio_server.endpoint_url,
        "region_name": minio_server.region, "default_images": {"cpu": real_cluster.image},
        "host_network": True, "tolerations": list(real_cluster.node.tolerations),
        "resources": {"requests_cpu": "500m", "requests_memory": "1Gi", "limits_cpu": "2", "limits_memory": "2Gi",
                      "node_selector": dict(real_cluster.node.node_selector)},
        "namespace_hooks": {kube_namespace: {
            "required_volumes": [{"name": "s3-credentials", "mount_path": CREDENTIALS_DIR, "secret_name": SECRET}],
            "env_defaults": {"AWS_SHARED_CREDENTIALS_FILE": f"{CREDENTIALS_DIR}/credentials"}}},
    }
    path = cli.root / "realnode.yaml"
    path.write_text(yaml.safe_dump(profile))
    cli.profile_args = ["--profile-file", str(path), "--kubeconfig", real_cluster.cluster.admin_kubeconfig]
    cli.env.update(AWS_ACCESS_KEY_ID=minio_server.access_key, AWS_SECRET_ACCESS_KEY=minio_server.secret_key)
    cli.secret = minio_server.secret_key
    return cli


def test_submit_workspace_waits_and_retrieves_from_a_real_pod(real_cli: Cli) -> None:
    cli = real_cli
    ws = write_workspace(cli.root / "ws", values=[1.0, 2.0, 3.0])
    script = cli.root / "analysis.py"
    script.write_text("vals = workspace.get('in', 'values')\nprint('summing', len(vals))\n"
                      "workspace.store('out', 'total', {'sum': float(sum(vals))})\n")
    result = cli(*cli.profile_args, "submit-workspace", "--workspace", str(ws), "--script", str(script),
                 "--retrieve-to", str(cli.root / "back"), "--max-wait-seconds", "300", timeout=400)
    assert result.returncode == 0, result.stderr
    assert result.keys["FINAL_STATUS"] == "Complete"
    from spikebatch.workspace import DirectoryWorkspace

    assert DirectoryWorkspace(str(cli.root / "back" / "workspace")).get("out", "total") == {"sum": 6.0}
    logs = cli(*cli.profile_args, "job-logs", result.keys["RUN_ID"])
    assert "summing 3" in logs.stdout
    assert cli.secret not in result.stdout + result.stderr + logs.stdout + logs.stderr


def test_a_failing_job_exits_1_with_its_reason(real_cli: Cli) -> None:
    cli = real_cli
    config = cli.root / "doomed.yaml"
    config.write_text("name_prefix: doomed\ncontainer:\n  command: [python, -c, \"raise SystemExit('bad input: no spikes')\"]\n")
    result = cli(*cli.profile_args, "deploy-job", "--job-config", str(config), "--wait", "--max-wait-seconds", "180",
                 timeout=300)
    assert result.returncode == 1, result.stderr
    assert result.keys["FINAL_STATUS"] == "Failed"
    errors = [line for line in result.error_lines if line.startswith("error:")]
    assert len(errors) == 1
    assert "Error (exit code 1)" in errors[0] and "bad input: no spikes" in errors[0], errors[0]
    status = cli(*cli.profile_args, "job-status", result.keys["RUN_ID"])
    assert status.keys["JOB_STATUS"] == "Failed"
    assert (status.keys["REASON"], status.keys["EXIT_CODE"]) == ("Error", "1")
    assert status.keys["MESSAGE"] == "bad input: no spikes"


@pytest.mark.parametrize("real_cli", ["boto3"], indirect=True)
def test_a_small_sorting_batch_runs_as_one_indexed_job_in_real_pods(real_cli: Cli) -> None:
    import json

    import spikeinterface.core as si

    cli = real_cli
    for name, seed in (("rec7", 5), ("rec8", 6)):
        # Short: this checks the batch's mechanics in real pods; sorting quality is
        # test_batch_local's and test_sorting_job_runs_in_a_real_pod's.
        recording, _truth = si.generate_ground_truth_recording(durations=[5.0], num_channels=4, num_units=3, seed=seed)
        recording.save(folder=cli.root / name, verbose=False)
    result = cli(*cli.profile_args, "submit-sorting", "--recording", str(cli.root / "rec*"), "--preset", "tridesclous2",
                 "--parallel", "2", "--retrieve-to", str(cli.root / "sorted"), "--max-wait-seconds", "600", timeout=700)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.keys["FINAL_STATUS"] == "Complete" and result.keys["RECORDINGS"] == "2"
    assert result.keys["RETRIEVED_TO"] == str((cli.root / "sorted").resolve())
    assert sorted(result.keys["SUCCEEDED"].split(",")) == ["rec7", "rec8"]
    # the summary of what came back names each recording's namespace and its units
    summary = next(line for line in result.stderr.splitlines() if "workspace in" in line)
    assert "rec7:" in summary and "rec8:" in summary and "unit_ids" in summary, summary
    shown = cli(*cli.profile_args, "status", result.keys["RUN_ID"], "--output", "json")
    assert shown.returncode == 0, shown.stderr
    rows = json.loads(shown.stdout)["recordings"]
    assert [(r["recording"], r["state"], r["attempts"]) for r in rows] == [("rec7", "succeeded", 1),
                                                                          ("rec8", "succeeded", 1)]
    assert all(r["units"] >= 1 and r["run_seconds"] > 0 for r in rows)
    status = cli(*cli.profile_args, "job-status", result.keys["RUN_ID"])
    assert status.keys["JOB_STATUS"] == "Complete" and "REASON" not in status.keys
