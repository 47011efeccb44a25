"""spikebatch.session.RunSession as code written for spikelab.batch_jobs.session calls it,
on the local profile (the real local backend and store)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from spikebatch.session import RunSession




def test_the_attributes_the_reference_users_touch(session: RunSession) -> None:
    assert session.storage is session.storage_client
    assert session.profile.name == "local" and session.backend.namespace == "default"
    assert hasattr(session, "credentials")


def test_a_session_built_by_hand_resolves_its_credentials(monkeypatch) -> None:
    # The reference's RunSession(credentials=None) resolves them from the environment.
    from spikebatch.backend_k8s import KubernetesBatchJobBackend
    from spikebatch.profiles import load_profile_from_name
    from spikebatch.storage_s3 import S3StorageClient

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example-secret-value-0001")
    monkeypatch.setenv("KUBECONFIG", "/nonexistent/kubeconfig")
    profile = load_profile_from_name("defaults")
    session = RunSession(profile=profile, backend=KubernetesBatchJobBackend(namespace=profile.namespace),
                         storage_client=S3StorageClient(prefix="s3://bucket/x/"))
    creds = session.credentials
    assert (creds.kubeconfig, creds.aws_access_key_id) == ("/nonexistent/kubeconfig", "AKIAEXAMPLEKEY000001")
    assert "example-secret-value-0001" not in repr(creds)


def test_render_manifest_returns_yaml_text(session: RunSession) -> None:
    spec = {"name_prefix": "compat", "container": {"command": ["python", "-c", "print('x: \"y\"')"]}}
    text = session.render_manifest(job_name="compat-1", job_spec=spec, run_id="run-1")
    assert isinstance(text, str)
    job = yaml.safe_load(text)
    assert job["kind"] == "Job" and job["metadata"]["name"] == "compat-1"
    assert job["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "-c", "print('x: \"y\"')"]
    assert session.render_manifest_dict(job_name="compat-1", job_spec=spec, run_id="run-1") == job


def test_wait_for_completion_takes_the_reference_parameters_and_says_complete(session: RunSession) -> None:
    result = session.submit_prepared_job(job_spec={"name_prefix": "compat",
                                                   "container": {"command": ["python", "-c", "print('done')"]}})
    state = session.wait_for_completion(job_name=result.job_name, max_wait_seconds=120, poll_interval_seconds=1,
                                        max_consecutive_failures=3, max_backoff_seconds=5)
    assert state == "Complete"
    result = session.submit_prepared_job(job_spec={"name_prefix": "compat",
                                                   "container": {"command": ["python", "-c", "raise SystemExit(3)"]}})
    assert session.wait_for_completion(job_name=result.job_name, max_wait_seconds=120) == "Failed"


def test_a_job_that_does_not_exist_or_is_deleted_is_failed(session: RunSession) -> None:
    assert session.wait_for_completion(job_name="no-such-job-1234", max_wait_seconds=30) == "Failed"
    result = session.submit_prepared_job(job_spec={"name_prefix": "compat", "active_deadline_seconds": 600,
                                                   "container": {"command": ["python", "-c",
                                                                             "import time; time.sleep(300)"]}})
    session.delete_job(result.job_name)
    assert session.wait_for_completion(job_name=result.job_name, max_wait_seconds=60) == "Failed"


@pytest.mark.parametrize("preset, sorter", [("KILOSORT2", "spikelab"), ("rt_sort_mea", "spikelab"),
                                            ("spykingcircus2", "spikeinterface")])
def test_a_spikelab_preset_name_runs_spikelab_s_sorter(session: RunSession, tmp_path: Path, preset, sorter) -> None:
    recording = tmp_path / "rec1.raw"
    recording.write_bytes(b"not a recording")
    result = session.submit_sorting_job(recording_paths=[str(recording)], config=preset,
                                        job_spec={"name_prefix": "compat"})
    session.wait_for_completion(job_name=result.job_name, max_wait_seconds=300)
    logs = "\n".join(session.stream_logs(result.job_name))
    assert f"sorting rec1.raw with {sorter}" in logs, logs[-2000:]


def test_run_ids_the_reference_accepts_are_accepted(session: RunSession) -> None:
    # A lab names its runs after recordings: capitals, '_' and '.' are label-safe.
    for run_id in ("Run1", "exp_2024.01"):
        result = session.submit_prepared_job(job_spec={"container": {"command": ["python", "-c", "print(1)"]}},
                                             run_id=run_id)
        assert result.run_id == run_id and result.output_prefix.endswith(f"/outputs/{run_id}/")
        assert session.wait_for_completion(job_name=result.job_name, max_wait_seconds=120) == "Complete"
        labels = yaml.safe_load(result.manifest_yaml)["metadata"]["labels"]
        assert labels["spikebatch.io/run-id"] == run_id
    # What could leave its storage prefix, or is no label value, is refused before anything runs.
    before = {job.name for job in session.list_jobs()}
    for run_id in ("dry run/1", "..", "a/b"):
        with pytest.raises(ValueError, match="run_id|run id"):
            session.submit_prepared_job(job_spec={"container": {"command": ["python"]}}, run_id=run_id)
    assert {job.name for job in session.list_jobs()} == before
