"""Submission records keep what a run is and why it failed (issue 16 items 1, 2)."""

from __future__ import annotations

from pathlib import Path

from spikebatch.adapters.records.submission_files import FileRunRecords
from spikebatch.application.runs import remember
from spikebatch.domain.models import SubmitResult
from spikebatch.domain.records import RunDetails

RUN_ID = "20261130-101500-abcd1234"


def _result(job_name: str = "sort-kilosort4-x7k2qd") -> SubmitResult:
    return SubmitResult(job_name=job_name, manifest_yaml="", run_id=RUN_ID, uploaded_input_uri="",
                        output_prefix="file:///out/", logs_prefix="file:///logs/", job_type="sorting")


def test_details_and_reason_survive_a_round_trip(tmp_path: Path) -> None:
    records = FileRunRecords(tmp_path)
    details = RunDetails("sorting", preset="kilosort4", recordings=("a.nwb", "b.nwb", "c.nwb"),
                         overrides={"detection": {"detect_threshold": 6}, "min_firing_rate": 0.1})
    record = records.save(_result(), profile_file=None, kubeconfig=None, details=details)
    records.update_state(record, "Failed", "OOMKilled (exit code 137)")
    again = records.find(RUN_ID)
    assert again.details == details and again.last_state == "Failed"
    assert again.last_reason == "OOMKilled (exit code 137)"
    assert details.recordings_text() == "a.nwb,b.nwb+1"
    assert details.overrides_text() == "detection.detect_threshold=6,min_firing_rate=0.1"


def test_a_second_record_of_a_run_keeps_its_details(tmp_path: Path) -> None:
    records = FileRunRecords(tmp_path)
    remember(records, _result(), profile_file=None, kubeconfig=None, warn=print,
             details=RunDetails("sorting", preset="mountainsort5"))
    remember(records, _result("sort-mountainsort5-retry1"), profile_file="/p.yaml", kubeconfig=None, warn=print)
    again = records.find(RUN_ID)
    assert again.details.preset == "mountainsort5" and again.profile_file == "/p.yaml"
    assert again.result.job_name == "sort-mountainsort5-retry1"


def test_an_old_record_without_details_reads_as_its_kind(tmp_path: Path) -> None:
    records = FileRunRecords(tmp_path)
    record = records.save(_result(), profile_file=None, kubeconfig=None)
    assert records.find(RUN_ID).details is None and record.run_details == RunDetails("sorting")
