"""Indexed Jobs on the local backend, run as real processes with the job controller's
semantics: parallelism, per-index retries, the failed-index limit, the pod failure
policy, the deadline, delete, and the Job and Pod objects a batch report reads.

Every attempt appends ``start``/``end`` marks (with its index and pid) to a file the
test reads; a "gated" attempt waits until the test creates ``release-<index>``, so what
ran at once is read from the marks, never from timing.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import pytest
from contract.backend_harness import wait_for

from spikebatch.adapters.local.backend import LocalProcessBackend
from spikebatch.adapters.local.processes import process_alive
from spikebatch.domain.batch import (
    COMPLETION_INDEX_LABEL,
    BatchDescription,
    BatchRecording,
    indexed_job,
)
from spikebatch.domain.batch_report import FAILED, SUCCEEDED, report_batch
from spikebatch.domain.errors import JobNotFoundError
from spikebatch.domain.job_state import JobState
from spikebatch.domain.manifest import render_job_manifest
from spikebatch.domain.models import ClusterProfile, ContainerSpec, JobSpec
from spikebatch.domain.naming import RUN_ID_LABEL, new_run_id

TIMEOUT = 60.0
CRASH_LINE = "RuntimeError: sorter crashed on purpose"

#: What each attempt runs: argv[1] the marks folder, argv[2] how indexes behave (JSON:
#: "exit" index -> exit code, "gate" wait for release-<index>), argv[3] the index as
#: the command's $(JOB_COMPLETION_INDEX) expanded.
ATTEMPT = r'''
import json, os, sys, time
marks, behaviour, from_args = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
index = os.environ["JOB_COMPLETION_INDEX"]

def mark(what):
    with open(os.path.join(marks, "marks.log"), "a") as fh:
        fh.write(f"{what} {index} {os.getpid()} {from_args}\n")

mark("start")
if behaviour.get("gate"):
    release = os.path.join(marks, f"release-{index}")
    give_up = time.monotonic() + 120  # never outlive a broken test by much
    while not os.path.exists(release) and time.monotonic() < give_up:
        time.sleep(0.02)
code = int(behaviour.get("exit", {}).get(index, 0))
if code:
    print(f"index {index} fails with exit code {code}", flush=True)
    print("RuntimeError: sorter crashed on purpose", flush=True)
mark("end")
sys.exit(code)
'''


@dataclass
class Marks:
    folder: Path

    def lines(self) -> list[tuple[str, int, int, str]]:
        try:
            text = (self.folder / "marks.log").read_text()
        except FileNotFoundError:
            return []
        found = []
        for line in text.splitlines():
            what, index, pid, from_args = line.split()
            found.append((what, int(index), int(pid), from_args))
        return found

    def started(self) -> list[int]:
        return sorted(index for what, index, _, _ in self.lines() if what == "start")

    def ended(self) -> list[int]:
        return sorted(index for what, index, _, _ in self.lines() if what == "end")

    def pids(self) -> list[int]:
        return [pid for what, _, pid, _ in self.lines() if what == "start"]

    def attempts(self, index: int) -> int:
        return self.started().count(index)

    def release(self, *indexes: int) -> None:
        for index in indexes:
            (self.folder / f"release-{index}").write_text("go")

    def most_at_once(self) -> int:
        """The most attempts between their start and end marks at any point."""
        running = most = 0
        for what, _, _, _ in self.lines():
            running += 1 if what == "start" else -1
            most = max(most, running)
        return most


@pytest.fixture
def marks(tmp_path: Path) -> Marks:
    folder = tmp_path / "marks"
    folder.mkdir()
    return Marks(folder)


@pytest.fixture
def backend(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[LocalProcessBackend]:
    """A backend in a fresh state folder; its attempts' temp folders under the test's
    own TMPDIR. Every Job it still has is deleted afterwards, so no attempt outlives a
    failed test."""
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    monkeypatch.delenv("SPIKEBATCH_KEEP_WORK_DIR", raising=False)
    # "default", as the manifests say: the state folder is the test's own anyway.
    backend = LocalProcessBackend(namespace="default", state_dir=tmp_path / "state")
    yield backend
    for info in backend.list_jobs():
        backend.delete_job(info.name)


def runner_manifest(name: str, marks: Marks, behaviour: dict[str, Any], run_id: str,
                    deadline: Optional[int] = None) -> dict[str, Any]:
    """A one-container Job rendered as the product renders them, running ATTEMPT."""
    spec = JobSpec(name_prefix=name, backoff_limit=0, active_deadline_seconds=deadline,
                   container=ContainerSpec(image="python:3.11-slim",
                                           command=["python", "-c", ATTEMPT, str(marks.folder), json.dumps(behaviour),
                                                    "$(JOB_COMPLETION_INDEX)"]))
    return render_job_manifest(name, spec, ClusterProfile(name="local-test", namespace="default"), run_id)


def indexed(manifest: dict[str, Any], completions: int, parallelism: int, **fields: Any) -> dict[str, Any]:
    """``manifest`` as a plain Indexed Job with the given spec fields."""
    spec = manifest["spec"]
    spec.update(completionMode="Indexed", completions=completions, parallelism=parallelism, **fields)
    if "backoffLimitPerIndex" in fields:
        spec.pop("backoffLimit", None)
    return manifest


def job_object(backend: LocalProcessBackend, run_id: str, name: str) -> dict[str, Any]:
    jobs, _ = backend.run_objects(run_id)
    (job,) = [j for j in jobs if j["metadata"]["name"] == name]
    return job


def wait_until_ended(backend: LocalProcessBackend, name: str) -> JobState:
    return wait_for(lambda: backend.job_status(name) if backend.job_status(name).is_terminal else None,
                    TIMEOUT, f"job {name} to end")


def condition(job: dict[str, Any], kind: str) -> dict[str, Any]:
    (found,) = [c for c in job["status"]["conditions"] if c["type"] == kind]
    return found


def pods_by_index(backend: LocalProcessBackend, run_id: str) -> dict[int, list[dict[str, Any]]]:
    _, pods = backend.run_objects(run_id)
    found: dict[int, list[dict[str, Any]]] = {}
    for pod in pods:
        found.setdefault(int(pod["metadata"]["labels"][COMPLETION_INDEX_LABEL]), []).append(pod)
    return found


# --------------------------------------------------------------------------- tests
def test_indexes_run_lowest_first_and_at_most_parallelism_at_once(backend: LocalProcessBackend,
                                                                  marks: Marks) -> None:
    run_id = new_run_id()
    name = backend.apply_manifest(indexed(runner_manifest("six", marks, {"gate": True}, run_id), 6, 3))

    # Gated: nothing ends until released, so three started means three run at once.
    wait_for(lambda: len(marks.started()) >= 3, TIMEOUT, "three attempts to start")
    assert marks.started() == [0, 1, 2]
    wait_for(lambda: job_object(backend, run_id, name)["status"].get("active") == 3, TIMEOUT, "active == 3")

    marks.release(1)  # a slot frees: the lowest waiting index takes it
    wait_for(lambda: len(marks.started()) >= 4, TIMEOUT, "a fourth attempt to start")
    assert marks.started() == [0, 1, 2, 3] and marks.ended() == [1]
    status = job_object(backend, run_id, name)["status"]
    assert status["completedIndexes"] == "1" and status["succeeded"] == 1

    marks.release(0, 2, 3)
    wait_for(lambda: len(marks.started()) >= 6, TIMEOUT, "the last attempts to start")
    marks.release(4, 5)
    assert wait_until_ended(backend, name) is JobState.COMPLETE

    job = job_object(backend, run_id, name)
    status = job["status"]
    assert (status["completedIndexes"], status["succeeded"], status["failed"]) == ("0-5", 6, 0)
    assert (status["active"], status["ready"]) == (0, 0)
    assert status["startTime"] and status["completionTime"]
    assert condition(job, "Complete")["reason"] == "CompletionsReached"
    assert condition(job, "SuccessCriteriaMet")["status"] == "True"
    assert marks.started() == [0, 1, 2, 3, 4, 5]  # one attempt each
    assert marks.most_at_once() == 3
    # JOB_COMPLETION_INDEX in the env and $(JOB_COMPLETION_INDEX) in the args agree.
    assert all(str(index) == from_args for _, index, _, from_args in marks.lines())


def test_failing_indexes_are_retried_on_their_own_and_fail_the_job_at_the_end(backend: LocalProcessBackend,
                                                                              marks: Marks) -> None:
    run_id = new_run_id()
    behaviour = {"exit": {"1": 1, "4": 1}}
    manifest = indexed(runner_manifest("retries", marks, behaviour, run_id), 6, 3, backoffLimitPerIndex=1)
    name = backend.apply_manifest(manifest)
    assert wait_until_ended(backend, name) is JobState.FAILED

    assert [marks.attempts(i) for i in range(6)] == [1, 2, 1, 1, 2, 1]  # R + 1 = 2 for the failing ones
    job = job_object(backend, run_id, name)
    status = job["status"]
    assert status["failedIndexes"] == "1,4"
    assert status["completedIndexes"] == "0,2-3,5"
    assert (status["succeeded"], status["failed"]) == (4, 4)
    failed = condition(job, "Failed")
    assert (failed["reason"], failed["message"]) == ("FailedIndexes", "Job has failed indexes")
    assert condition(job, "FailureTarget")["reason"] == "FailedIndexes"
    assert "completionTime" not in status
    report = backend.job_report(name)
    assert (report.reason, report.exit_code, report.message) == ("Error", 1, CRASH_LINE)
    # The pods of a retried index say how often it had failed before them.
    failure_counts = [p["metadata"]["annotations"]["batch.kubernetes.io/job-index-failure-count"]
                      for p in pods_by_index(backend, run_id)[4]]
    assert failure_counts == ["0", "1"]


def test_bad_input_exit_code_fails_its_index_after_one_attempt(backend: LocalProcessBackend, marks: Marks) -> None:
    """The batch Job the product renders (domain.batch.indexed_job): its FailIndex rule
    on exit code 2 stops retries at once, while exit code 1 is retried."""
    run_id = new_run_id()
    behaviour = {"exit": {"2": 2, "3": 1}}
    job = indexed_job(runner_manifest("badinput", marks, behaviour, run_id), recording_indexes=[0, 1, 2, 3],
                      parallelism=2, retries_per_index=2, max_failed_indexes=None)
    name = backend.apply_manifest(job)
    assert wait_until_ended(backend, name) is JobState.FAILED

    assert [marks.attempts(i) for i in range(4)] == [1, 1, 1, 3]
    status = job_object(backend, run_id, name)["status"]
    assert (status["failedIndexes"], status["completedIndexes"]) == ("2-3", "0-1")
    assert status["failed"] == 4
    assert condition(job_object(backend, run_id, name), "Failed")["reason"] == "FailedIndexes"


def test_more_failed_indexes_than_allowed_fail_the_job_early(backend: LocalProcessBackend, marks: Marks) -> None:
    run_id = new_run_id()
    # Index 0 fails at once; index 1 runs until stopped; 2-5 must never start.
    behaviour = {"gate": True, "exit": {"0": 1}}
    marks.release(0)
    manifest = indexed(runner_manifest("maxfailed", marks, behaviour, run_id), 6, 2,
                       backoffLimitPerIndex=0, maxFailedIndexes=0)
    name = backend.apply_manifest(manifest)
    assert wait_until_ended(backend, name) is JobState.FAILED

    job = job_object(backend, run_id, name)
    failed = condition(job, "Failed")
    assert failed["reason"] == "MaxFailedIndexesExceeded"
    assert failed["message"] == "Job has exceeded the specified maximal number of failed indexes"
    assert job["status"]["failedIndexes"] == "0"
    assert "completedIndexes" not in job["status"]
    pods = pods_by_index(backend, run_id)
    assert sorted(pods) == [0, 1]  # no attempt of 2-5 ever started
    assert set(marks.started()) <= {0, 1}
    (stopped,) = pods[1]
    terminated = stopped["status"]["containerStatuses"][0]["state"]["terminated"]
    assert stopped["status"]["phase"] == "Failed"
    assert (terminated["reason"], terminated["exitCode"]) == ("MaxFailedIndexesExceeded", 143)  # SIGTERM
    assert job["status"]["failed"] == 2  # the failed attempt and the stopped one, as on a cluster
    assert not any(process_alive(pid, None) for pid in marks.pids())


def test_fail_job_rule_fails_an_indexed_job_at_once(backend: LocalProcessBackend, marks: Marks) -> None:
    run_id = new_run_id()
    rules = {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In",
                                                             "values": [3]}}]}
    manifest = indexed(runner_manifest("failjob", marks, {"exit": {"1": 3}}, run_id), 4, 1,
                       backoffLimitPerIndex=2, podFailurePolicy=rules, podReplacementPolicy="Failed")
    name = backend.apply_manifest(manifest)
    assert wait_until_ended(backend, name) is JobState.FAILED

    assert marks.started() == [0, 1]  # index 1 once, indexes 2 and 3 never
    job = job_object(backend, run_id, name)
    failed = condition(job, "Failed")
    (pod,) = pods_by_index(backend, run_id)[1]
    assert failed["reason"] == "PodFailurePolicy"
    assert failed["message"] == (f"Container main for pod {backend.namespace}/{pod['metadata']['name']} failed "
                                 "with exit code 3 matching FailJob rule at index 0")
    assert job["status"]["completedIndexes"] == "0"


def test_a_non_indexed_job_honours_ignore_and_fail_job_rules(backend: LocalProcessBackend, tmp_path: Path) -> None:
    """The first attempt exits 5 (Ignore: not counted), the second exits 2 (FailJob)
    although backoffLimit would allow three more."""
    run_id = new_run_id()
    counter = tmp_path / "attempts"
    code = ("import pathlib, sys\n"
            f"path = pathlib.Path({str(counter)!r})\n"
            "n = len(path.read_text()) if path.exists() else 0\n"
            "path.write_text('x' * (n + 1))\n"
            "sys.exit(5 if n == 0 else 2)\n")
    spec = JobSpec(name_prefix="plain", backoff_limit=3,
                   container=ContainerSpec(image="python:3.11-slim", command=["python", "-c", code]))
    manifest = render_job_manifest("plain", spec, ClusterProfile(name="local-test", namespace="default"), run_id)
    manifest["spec"]["podFailurePolicy"] = {"rules": [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        {"action": "Ignore", "onExitCodes": {"operator": "In", "values": [5]}},
        {"action": "FailJob", "onExitCodes": {"containerName": "main", "operator": "In", "values": [2]}},
    ]}
    name = backend.apply_manifest(manifest)
    assert wait_until_ended(backend, name) is JobState.FAILED

    assert counter.read_text() == "xx"
    job = job_object(backend, run_id, name)
    assert job["status"]["failed"] == 1  # the ignored attempt is not counted
    assert condition(job, "Failed")["reason"] == "PodFailurePolicy"
    assert "rule at index 2" in condition(job, "Failed")["message"]
    assert len(backend.pods_for_job(name)) == 2


def test_run_objects_are_what_the_batch_report_reads(backend: LocalProcessBackend, marks: Marks) -> None:
    run_id = new_run_id()
    behaviour = {"exit": {"1": 1, "2": 2}}
    job = indexed_job(runner_manifest("report", marks, behaviour, run_id), recording_indexes=[0, 1, 2, 3],
                      parallelism=4, retries_per_index=1, max_failed_indexes=None)
    name = backend.apply_manifest(job)
    # A Job of another run in the same namespace: neither it nor its pods belong.
    other = runner_manifest("other", marks, {}, new_run_id())
    other["spec"]["suspend"] = True
    backend.apply_manifest(other)
    assert wait_until_ended(backend, name) is JobState.FAILED

    jobs, pods = backend.run_objects(run_id)
    assert [j["metadata"]["name"] for j in jobs] == [name]
    uid = jobs[0]["metadata"]["uid"]
    assert len(pods) == 5  # index 1 twice, the others once
    for pod in pods:
        meta = pod["metadata"]
        index = meta["labels"][COMPLETION_INDEX_LABEL]
        assert meta["annotations"][COMPLETION_INDEX_LABEL] == index
        assert meta["labels"][RUN_ID_LABEL] == run_id and meta["labels"]["job-name"] == name
        assert meta["ownerReferences"] == [{"apiVersion": "batch/v1", "kind": "Job", "name": name, "uid": uid,
                                            "controller": True, "blockOwnerDeletion": True}]
        assert meta["name"].startswith(f"{name}-{index}-")
        terminated = pod["status"]["containerStatuses"][0]["state"]["terminated"]
        assert pod["status"]["startTime"] and terminated["startedAt"] and terminated["finishedAt"]
    assert [p["metadata"]["creationTimestamp"] for p in pods] == sorted(p["metadata"]["creationTimestamp"]
                                                                        for p in pods)

    names = ["rec-a", "rec-b", "rec-c", "rec-d"]
    description = BatchDescription(
        run_id=run_id, sorter="kilosort4", output_prefix="file:///out/", logs_prefix="file:///logs/",
        recordings=[BatchRecording(index=i, name=n, size=1, sha256="0" * 64, cache_key="1" * 64)
                    for i, n in enumerate(names)])
    rows = {row.recording: row for row in report_batch(description, jobs, pods, {}, {}).rows}
    assert (rows["rec-a"].state, rows["rec-a"].attempts) == (SUCCEEDED, 1)
    assert rows["rec-a"].run_seconds is not None and rows["rec-a"].job_name == name
    assert (rows["rec-b"].state, rows["rec-b"].attempts, rows["rec-b"].reason, rows["rec-b"].exit_code,
            rows["rec-b"].message) == (FAILED, 2, "Error", 1, CRASH_LINE)
    assert (rows["rec-c"].state, rows["rec-c"].attempts, rows["rec-c"].exit_code) == (FAILED, 1, 2)
    assert (rows["rec-d"].state, rows["rec-d"].attempts) == (SUCCEEDED, 1)


def test_the_deadline_stops_an_indexed_job(backend: LocalProcessBackend, marks: Marks) -> None:
    run_id = new_run_id()
    manifest = indexed(runner_manifest("deadline", marks, {"gate": True}, run_id, deadline=2), 3, 2)
    name = backend.apply_manifest(manifest)
    assert wait_until_ended(backend, name) is JobState.FAILED

    job = job_object(backend, run_id, name)
    assert condition(job, "Failed")["reason"] == "DeadlineExceeded"
    pods = pods_by_index(backend, run_id)
    assert sorted(pods) == [0, 1]
    reasons = [p["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] for i in (0, 1) for p in pods[i]]
    assert reasons == ["DeadlineExceeded", "DeadlineExceeded"]
    assert job["status"]["failed"] == 2


def test_delete_stops_every_running_attempt(backend: LocalProcessBackend, marks: Marks) -> None:
    run_id = new_run_id()
    name = backend.apply_manifest(indexed(runner_manifest("deleted", marks, {"gate": True}, run_id), 5, 3))
    wait_for(lambda: len(marks.started()) >= 3, TIMEOUT, "three attempts to start")
    pids = marks.pids()
    assert all(process_alive(pid, None) for pid in pids)

    assert backend.delete_job(name) is True
    wait_for(lambda: not any(process_alive(pid, None) for pid in pids), TIMEOUT, "every attempt to end")
    with pytest.raises(JobNotFoundError):
        backend.job_status(name)
    assert marks.started() == [0, 1, 2] and marks.ended() == []
    assert os.listdir(Path(tempfile.gettempdir())) == []  # the attempts' temp folders went too
