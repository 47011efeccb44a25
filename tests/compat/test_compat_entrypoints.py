"""The in-container modules run reference-style bundles for real: the bundle is made by
``package_analysis_bundle`` and put into MinIO as the reference's host does (boto3), and
our local backend runs ``python -m spikebatch.entrypoints.workspace`` / ``.sorting`` as
the Job's command with the reference's environment variables."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from spikebatch.artifact_packager import package_analysis_bundle
from spikebatch.session import RunSession




def s3_env(minio_server, bucket: str, run_id: str) -> dict:
    return {"INPUT_URI": f"s3://{bucket}/inputs/{run_id}/{run_id}.zip", "OUTPUT_PREFIX": f"s3://{bucket}/outputs/{run_id}/",
            "S3_ENDPOINT_URL": minio_server.endpoint_url, "AWS_DEFAULT_REGION": minio_server.region,
            "AWS_ACCESS_KEY_ID": minio_server.access_key, "AWS_SECRET_ACCESS_KEY": minio_server.secret_key}


def run_job(session: RunSession, module: str, env: dict) -> tuple[str, str]:
    result = session.submit_prepared_job(job_spec={"name_prefix": "compat-entry", "container": {
        "command": ["python", "-m", module], "env": env}}, allow_policy_risk=True)
    state = session.wait_for_completion(job_name=result.job_name, max_wait_seconds=300)
    return state, "\n".join(session.stream_logs(result.job_name))


def test_a_workspace_bundle_runs_and_its_workspace_comes_back(session, minio_server, s3_bucket, tmp_path) -> None:
    from spikelab.workspace import AnalysisWorkspace

    workspace = AnalysisWorkspace(name="compat")
    workspace.store("inputs", "values", np.arange(5.0))
    workspace.save(str(tmp_path / "my_session"))  # any base name: found by its content
    script = tmp_path / "analysis.py"
    script.write_text(textwrap.dedent("""
        workspace.store("results", "doubled", workspace.get("inputs", "values") * 2)
        print("analysis done")
    """))
    bundle = package_analysis_bundle(input_paths=[str(tmp_path / "my_session.h5"), str(tmp_path / "my_session.json"),
                                                  str(script)], run_id="wsrun1", output_dir=str(tmp_path / "out"),
                                     output_format="workspace")
    client = minio_server.boto3_client()
    client.upload_file(bundle, s3_bucket, "inputs/wsrun1/wsrun1.zip")
    state, logs = run_job(session, "spikebatch.entrypoints.workspace",
                          {**s3_env(minio_server, s3_bucket, "wsrun1"), "SCRIPT_NAME": "analysis.py"})
    assert state == "Complete", logs[-3000:]
    assert "analysis done" in logs and "Workspace job completed successfully." in logs
    for name in ("workspace.h5", "workspace.json"):
        client.download_file(s3_bucket, f"outputs/wsrun1/{name}", str(tmp_path / name))
    back = AnalysisWorkspace.load(str(tmp_path / "workspace"))
    assert np.array_equal(back.get("results", "doubled"), np.arange(5.0) * 2)


def test_a_failing_script_fails_the_job_and_uploads_nothing(session, minio_server, s3_bucket, tmp_path) -> None:
    from spikelab.workspace import AnalysisWorkspace

    AnalysisWorkspace(name="compat").save(str(tmp_path / "ws"))
    script = tmp_path / "analysis.py"
    script.write_text("raise RuntimeError('bad analysis')\n")
    bundle = package_analysis_bundle(input_paths=[str(tmp_path / "ws.h5"), str(tmp_path / "ws.json"), str(script)],
                                     run_id="wsrun2", output_dir=str(tmp_path / "out"), output_format="workspace")
    client = minio_server.boto3_client()
    client.upload_file(bundle, s3_bucket, "inputs/wsrun2/wsrun2.zip")
    state, logs = run_job(session, "spikebatch.entrypoints.workspace",
                          {**s3_env(minio_server, s3_bucket, "wsrun2"), "SCRIPT_NAME": "analysis.py"})
    assert state == "Failed"
    assert "WORKSPACE_SCRIPT_FAILED: RuntimeError: bad analysis" in logs
    assert client.list_objects_v2(Bucket=s3_bucket, Prefix="outputs/wsrun2/").get("KeyCount") == 0


def test_a_sorting_bundle_sorts_only_the_declared_recordings_and_reports(session, minio_server, s3_bucket, tmp_path) -> None:
    # Our SpikeInterface sorter's config; the recording cannot be read, so the job
    # fails with the recording named in the reports (a real sort is test_local_jobs').
    config = tmp_path / "sorting_config.json"
    config.write_text(json.dumps({"sorter_name": "spykingcircus2", "preset": "spykingcircus2", "params": {},
                                  "overrides": {}}))
    (tmp_path / "rec1.raw").write_bytes(b"not a recording")
    (tmp_path / "probe.json").write_text("{}")
    bundle = package_analysis_bundle(input_paths=[str(config), str(tmp_path / "rec1.raw"), str(tmp_path / "probe.json")],
                                     run_id="sortrun1", output_dir=str(tmp_path / "out"), output_format="sorting",
                                     recording_files=["rec1.raw"])
    client = minio_server.boto3_client()
    client.upload_file(bundle, s3_bucket, "inputs/sortrun1/sortrun1.zip")
    state, logs = run_job(session, "spikebatch.entrypoints.sorting", s3_env(minio_server, s3_bucket, "sortrun1"))
    assert state == "Failed", logs[-3000:]
    assert "sorting 1 recording(s) with spykingcircus2" in logs and "probe.json failed" not in logs
    report = json.loads(client.get_object(Bucket=s3_bucket, Key="outputs/sortrun1/sorting_report.json")["Body"].read())
    assert report == {"n_recordings": 1, "n_results": 0, "recording_names": ["rec1"], "sorter": "spykingcircus2",
                      "all_succeeded": False, "n_succeeded": 0, "n_failed": 1}
    records = json.loads(client.get_object(Bucket=s3_bucket, Key="outputs/sortrun1/sort_run_report.json")["Body"].read())
    assert [(r["rec_path"], r["status"]) for r in records["records"]] == [("rec1.raw", "failed")]


@pytest.mark.parametrize("module", ["spikebatch.entrypoints.workspace", "spikebatch.entrypoints.sorting"])
def test_a_missing_variable_is_one_line_and_exit_2(module, tmp_path) -> None:
    env = {"PATH": os.environ["PATH"], "OUTPUT_PREFIX": f"file://{tmp_path}/out/"}
    if os.environ.get("PYTHONPATH"):  # a worktree's sources, as the test process runs them
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    done = subprocess.run([sys.executable, "-m", module], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: environment variable INPUT_URI is not set; the Job must set it"
