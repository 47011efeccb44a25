"""The RunRecords port on its file adapter (real files in a temporary state folder):
what `wait RUN_ID`, `list-jobs --offline` and shell completion read back."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikebatch.adapters.records.submission_files import FileRunRecords
from spikebatch.models import SubmitResult
from spikebatch.ports.records import RunRecords


def result(run_id: str, job_name: str) -> SubmitResult:
    return SubmitResult(job_name=job_name, manifest_yaml="kind: Job\n", run_id=run_id, uploaded_input_uri="",
                        output_prefix=f"file:///data/outputs/{run_id}/", logs_prefix=f"file:///data/logs/{run_id}/",
                        job_type="workspace", namespace="default", profile_name="local")


@pytest.fixture
def records(tmp_path: Path) -> FileRunRecords:
    return FileRunRecords(tmp_path / "submissions")


def test_the_adapter_implements_the_port(records) -> None:
    assert isinstance(records, RunRecords)


def test_a_saved_submission_is_found_by_run_id_and_by_job_name(records) -> None:
    first = records.save(result("20261130-101500-aaaa1111", "analysis-x1"), profile_file="/lab/p.yaml", kubeconfig="/k/config")
    records.save(result("20261130-101501-bbbb2222", "analysis-x1"), profile_file=None, kubeconfig=None)
    assert records.find("20261130-101500-aaaa1111").result == first.result
    found = records.find("analysis-x1")
    assert found.result.run_id == "20261130-101501-bbbb2222"  # the newest run of that job name
    assert records.find("nope") is None and records.find("../../etc/passwd") is None
    again = records.find("20261130-101500-aaaa1111")
    assert (again.profile_file, again.kubeconfig, again.last_state) == ("/lab/p.yaml", "/k/config", None)
    assert again.profile_hint == {"profile_name": "local", "profile_file": "/lab/p.yaml"}
    assert again.submitted is not None


def test_states_are_remembered_and_records_listed_oldest_first(records) -> None:
    for n in range(3):
        records.save(result(f"20261130-10150{n}-cccc000{n}", f"job-{n}"), profile_file=None, kubeconfig=None)
    records.update_state(records.find("job-1"), "Complete")
    listed = records.all()
    assert [r.result.job_name for r in listed] == ["job-0", "job-1", "job-2"]
    assert [r.last_state for r in listed] == [None, "Complete", None]


def test_an_unreadable_record_is_reported_and_left_out(records) -> None:
    records.save(result("20261130-101500-dddd4444", "good"), profile_file=None, kubeconfig=None)
    (records.folder / "20261130-101501-eeee5555.json").write_text("{not json")
    problems: list = []
    assert [r.result.job_name for r in records.all(on_error=problems.append)] == ["good"]
    assert len(problems) == 1 and "is not valid JSON" in problems[0] and "delete it" in problems[0]


def test_a_record_is_private_and_holds_the_kubeconfig_as_a_path_only(records, tmp_path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("users: [{user: {token: secret-token-value}}]\n")
    saved = records.save(result("20261130-101500-ffff6666", "private"), profile_file=None, kubeconfig=str(kubeconfig))
    path = Path(saved.location)
    assert path.stat().st_mode & 0o077 == 0
    text = path.read_text()
    assert "secret-token-value" not in text
    assert json.loads(text)["record"]["kubeconfig"] == str(kubeconfig)
