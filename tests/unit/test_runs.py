"""Finding a submitted job again (by run id or job name) and what it produced, with
in-memory fakes of the ports: what `wait`, `retrieve` and `job-logs` rely on."""

from __future__ import annotations

import pytest

from fakes import MemoryStore, ScriptedBackend
from spikebatch.application.runs import locate_job, note_state, remember, saved_runner_log, submit_result_for
from spikebatch.domain.records import SubmissionRecord
from spikebatch.errors import ConfigError, JobNotFoundError
from spikebatch.models import ClusterProfile, SubmitResult
from spikebatch.ports.backend import JobInfo, JobState
from spikebatch.session import RunSession

PROFILE = ClusterProfile(name="unit", namespace="lab", default_images={"cpu": "runner:1"})
RUN_ID = "20261130-101500-abcd1234"


def labels(run_id: str, job_type: str) -> dict:
    return {"spikebatch.io/run-id": run_id, "spikebatch.io/job-type": job_type, "app.kubernetes.io/managed-by": "spikebatch"}


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend(namespace="lab")


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def session(backend, store) -> RunSession:
    return RunSession(profile=PROFILE, backend=backend, storage_client=store)


def result(namespace: str = "lab", **changes) -> SubmitResult:
    fields = dict(job_name="sort-x7k2qd", manifest_yaml="", run_id=RUN_ID, uploaded_input_uri="",
                  output_prefix=f"s3://unit-bucket/jobs/outputs/{RUN_ID}/", logs_prefix=f"s3://unit-bucket/jobs/logs/{RUN_ID}/",
                  job_type="sorting", namespace=namespace, profile_name="unit")
    fields.update(changes)
    return SubmitResult(**fields)


def record(**changes) -> SubmissionRecord:
    return SubmissionRecord(result(**changes), "2026-11-30T10:15:00+00:00", None, None, None, "/records/r.json")


class Records:
    """RunRecords in memory; ``fail`` makes writes raise like a read-only disk."""

    def __init__(self, fail: bool = False) -> None:
        self.saved: list = []
        self.states: list = []
        self.fail = fail

    def save(self, result, *, profile_file, kubeconfig, details=None):
        if self.fail:
            raise OSError(30, "Read-only file system")
        self.saved.append(result)
        return SubmissionRecord(result, None, profile_file, kubeconfig, None, "/records/x.json", details=details)

    def find(self, ref):
        return None

    def update_state(self, record, state, reason=None):
        if self.fail:
            raise OSError(30, "Read-only file system")
        self.states.append(state)


def test_a_recorded_run_is_found_by_its_record(session) -> None:
    target = locate_job(RUN_ID, session, record())
    assert (target.job_name, target.run_id) == ("sort-x7k2qd", RUN_ID)
    assert submit_result_for(target) is target.record.result


def test_a_record_from_another_namespace_needs_its_profile(session) -> None:
    with pytest.raises(ConfigError, match="submitted to namespace 'other'.*targets 'lab'"):
        locate_job(RUN_ID, session, record(namespace="other"))


def test_a_run_id_without_a_record_is_found_by_its_label(session, backend) -> None:
    backend.jobs = [
        JobInfo("sort-old111", "lab", JobState.FAILED, labels(RUN_ID, "sorting")),
        JobInfo("sort-new222", "lab", JobState.COMPLETE, labels(RUN_ID, "sorting")),
        JobInfo("other-333333", "lab", JobState.COMPLETE, labels("20261130-101500-zzzz9999", "workspace")),
    ]
    target = locate_job(RUN_ID, session, None)
    assert target.job_name == "sort-new222"  # the newest Job of that run
    rebuilt = submit_result_for(target)
    # rebuilt from the labels and the profile's storage layout (submitted elsewhere)
    assert rebuilt.output_prefix == f"s3://unit-bucket/jobs/outputs/{RUN_ID}/"
    assert rebuilt.logs_prefix == f"s3://unit-bucket/jobs/logs/{RUN_ID}/"
    assert (rebuilt.job_type, rebuilt.namespace) == ("sorting", "lab")


def test_an_unknown_run_id_says_where_it_looked(session) -> None:
    with pytest.raises(JobNotFoundError, match=f"no job with run id {RUN_ID} in namespace 'lab'"):
        locate_job(RUN_ID, session, None)


def test_a_job_name_is_taken_as_it_is_and_its_labels_read_when_needed(session, backend) -> None:
    target = locate_job("my-job-abc123", session, None)
    assert target.job_name == "my-job-abc123" and target.run_id is None
    with pytest.raises(JobNotFoundError, match="'my-job-abc123' not found in namespace 'lab'"):
        submit_result_for(target)
    backend.jobs = [JobInfo("my-job-abc123", "lab", JobState.COMPLETE, {"team": "ephys"})]
    with pytest.raises(ConfigError, match="not submitted by spikebatch"):
        submit_result_for(target)


def test_records_that_cannot_be_written_only_warn(session) -> None:
    warnings: list = []
    assert remember(Records(fail=True), result(), profile_file=None, kubeconfig=None, warn=warnings.append) is None
    note_state(Records(fail=True), record(), "Complete", warnings.append)
    assert len(warnings) == 2
    assert "was submitted, but its local record could not be written" in warnings[0]
    assert "/records/r.json" in warnings[1]
    records = Records()
    remember(records, result(), profile_file="/p.yaml", kubeconfig=None, warn=warnings.append)
    note_state(records, record(), "Failed", warnings.append)
    assert [r.run_id for r in records.saved] == [RUN_ID] and records.states == ["Failed"]


def test_the_runner_log_outlives_the_job(session, store) -> None:
    target = locate_job(RUN_ID, session, record())
    assert saved_runner_log(target) is None  # nothing stored yet
    store.objects[f"s3://unit-bucket/jobs/logs/{RUN_ID}/runner.log"] = b"start\nsorted rec1: 9 units\n"
    where, lines = saved_runner_log(target)
    assert where == f"s3://unit-bucket/jobs/logs/{RUN_ID}/runner.log"
    assert lines == ["start", "sorted rec1: 9 units"]
