"""RunSession with in-memory fakes: what it uploads, what it submits, and that bad input
leaves nothing behind."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pytest

from fakes import JsonFileCodec, MemoryStore, RecordingSorter, ScriptedBackend, unavailable
from spikebatch.errors import ConfigError, JobFailedError, ObjectNotFoundError, PolicyBlockedError
from spikebatch.models import ClusterProfile
from spikebatch.domain.naming import RUN_ID_LABEL, is_rfc1123_label
from spikebatch import JobState
from spikebatch.session import RunSession

PROFILE = ClusterProfile(
    name="unit",
    default_images={"cpu": "runner:1", "gpu": "runner:1-gpu"},
    endpoint_url="http://127.0.0.1:9000",
    region_name="us-east-1",
)


class Secrets:
    secret_values = ["AKIAUNITTESTKEY", "unit-secret-value-123"]


@pytest.fixture
def store() -> MemoryStore:
    return MemoryStore()


@pytest.fixture
def backend() -> ScriptedBackend:
    return ScriptedBackend()


@pytest.fixture
def session(store: MemoryStore, backend: ScriptedBackend) -> RunSession:
    return RunSession(
        profile=PROFILE,
        backend=backend,
        storage_client=store,
        credentials=Secrets(),
        workspace_codecs=[JsonFileCodec()],
        sorter_factory=lambda name: RecordingSorter(),
    )


@pytest.fixture
def script(tmp_path: Path) -> Path:
    path = tmp_path / "analysis.py"
    path.write_text("workspace['answer'] = 42\n")
    return path


def bundle_manifest(store: MemoryStore, uri: str) -> dict:
    with zipfile.ZipFile(io.BytesIO(store.objects[uri])) as bundle:
        return json.loads(bundle.read("manifest.json"))


def test_workspace_job_uploads_bundle_and_submits_runner_job(session, store, backend, script, tmp_path) -> None:
    data = tmp_path / "params.json"
    data.write_text('{"bin_ms": 5}')
    result = session.submit_workspace_job(
        workspace={"start": 1}, script=str(script), job_spec={"name_prefix": "My Analysis"},
        bundle_input_paths=[str(data)], metadata={"experiment": "e1"},
    )
    assert result.job_type == "workspace"
    assert is_rfc1123_label(result.job_name) and result.job_name.startswith("my-analysis-")
    assert result.uploaded_input_uri == f"s3://unit-bucket/jobs/inputs/{result.run_id}/bundle.zip"
    assert result.output_prefix == f"s3://unit-bucket/jobs/outputs/{result.run_id}/"
    assert result.logs_prefix == f"s3://unit-bucket/jobs/logs/{result.run_id}/"

    manifest = bundle_manifest(store, result.uploaded_input_uri)
    assert manifest["run_id"] == result.run_id and manifest["job_type"] == "workspace"
    assert manifest["format"] == "jsonfile" and manifest["script"] == "analysis.py"
    assert manifest["metadata"] == {"experiment": "e1"}
    paths = {f["path"]: f for f in manifest["files"]}
    assert set(paths) == {"script/analysis.py", "inputs/params.json", "workspace/ws.json"}
    assert paths["inputs/params.json"]["size"] == len('{"bin_ms": 5}')
    assert len(paths["script/analysis.py"]["sha256"]) == 64

    [job] = backend.applied
    assert job["metadata"]["labels"][RUN_ID_LABEL] == result.run_id
    container = job["spec"]["template"]["spec"]["containers"][0]
    assert container["command"] == ["python", "-m", "spikebatch.entrypoints.runner", "workspace"]
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["INPUT_URI"] == result.uploaded_input_uri
    assert env["OUTPUT_PREFIX"] == result.output_prefix
    assert env["LOGS_PREFIX"] == result.logs_prefix
    assert env["SCRIPT_NAME"] == "analysis.py"
    assert env["S3_ENDPOINT_URL"] == "http://127.0.0.1:9000"
    assert env["AWS_DEFAULT_REGION"] == "us-east-1"


def test_names_and_run_ids_are_unique(session, script) -> None:
    a = session.submit_workspace_job(workspace={}, script=str(script), job_spec={})
    b = session.submit_workspace_job(workspace={}, script=str(script), job_spec={})
    assert a.job_name != b.job_name and a.run_id != b.run_id


def test_large_inputs_are_blobs_and_never_uploaded_twice(session, store, script, tmp_path) -> None:
    big = tmp_path / "big.bin"
    big.write_bytes(b"\x01" * (9 * 1024 * 1024))
    first = session.submit_workspace_job(workspace={}, script=str(script), job_spec={}, bundle_input_paths=[str(big)])
    entry = {f["path"]: f for f in bundle_manifest(store, first.uploaded_input_uri)["files"]}["inputs/big.bin"]
    assert entry["source"] == "blob" and entry["uri"].startswith("s3://unit-bucket/jobs/blobs/sha256/")
    # the zip does not carry the big file
    assert len(store.objects[first.uploaded_input_uri]) < 1024 * 1024
    uploads_before = [u for u in store.uploads if "/blobs/" in u]
    session.submit_workspace_job(workspace={}, script=str(script), job_spec={}, bundle_input_paths=[str(big)])
    assert [u for u in store.uploads if "/blobs/" in u] == uploads_before


def test_policy_block_stops_before_any_upload(session, store, backend, script) -> None:
    spec = {"container": {"command": ["sh", "-c", "sleep infinity"]}}
    with pytest.raises(PolicyBlockedError, match="sleep_in_batch_job") as info:
        session.submit_workspace_job(workspace={}, script=str(script), job_spec=spec)
    assert "allow_policy_risk" in str(info.value)
    assert store.uploads == [] and backend.applied == []


def test_allow_policy_risk_submits_anyway(session, backend, script) -> None:
    spec = {"container": {"command": ["sh", "-c", "sleep infinity"]}}
    session.submit_workspace_job(workspace={}, script=str(script), job_spec=spec, allow_policy_risk=True)
    assert len(backend.applied) == 1
    assert session.last_preflight.blocked


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"job_spec": {"container": {"imagee": "x"}}}, "container.imagee"),
        ({"job_spec": {"image_profile": "tpu"}}, "image_profile 'tpu'"),
        ({"job_spec": {"namespace": "elsewhere"}}, "differs from the backend"),
        ({"script": "/no/such/script.py"}, "does not exist"),
        ({"bundle_input_paths": ["/no/such/input.csv"]}, "does not exist"),
        ({"metadata": {"when": object()}}, "JSON values"),
    ],
)
def test_bad_input_is_rejected_before_any_side_effect(session, store, backend, script, bad, message) -> None:
    kwargs = {"workspace": {}, "script": str(script), "job_spec": {}, **bad}
    with pytest.raises(ConfigError, match=message):
        session.submit_workspace_job(**kwargs)
    assert store.uploads == [] and backend.applied == []


def test_duplicate_and_reserved_input_names_are_rejected(session, store, backend, script, tmp_path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    for folder in ("a", "b"):
        (tmp_path / folder / "data.csv").write_text(folder)
    with pytest.raises(ConfigError, match="share the basename 'data.csv'"):
        session.submit_workspace_job(workspace={}, script=str(script), job_spec={},
                                     bundle_input_paths=[str(tmp_path / "a" / "data.csv"), str(tmp_path / "b" / "data.csv")])
    reserved = tmp_path / "manifest.json"
    reserved.write_text("{}")
    with pytest.raises(ConfigError, match="reserved name"):
        session.submit_workspace_job(workspace={}, script=str(script), job_spec={}, bundle_input_paths=[str(reserved)])
    assert store.uploads == [] and backend.applied == []


def test_unknown_workspace_kind_is_rejected(session, store, script) -> None:
    with pytest.raises(ConfigError, match="AnalysisWorkspace"):
        session.submit_workspace_job(workspace=42, script=str(script), job_spec={})
    assert store.uploads == []


def test_submit_result_manifest_is_redacted(session, backend, script) -> None:
    spec = {"container": {"env": {"AWS_SECRET_ACCESS_KEY": "unit-secret-value-123", "NOTE": "key AKIAUNITTESTKEY"}}}
    result = session.submit_workspace_job(workspace={}, script=str(script), job_spec=spec)
    assert "unit-secret-value-123" not in result.manifest_yaml
    assert "AKIAUNITTESTKEY" not in result.manifest_yaml
    assert "***REDACTED***" in result.manifest_yaml
    # the submitted Job itself carries what the user asked for
    env = {e["name"]: e["value"] for e in backend.applied[0]["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["AWS_SECRET_ACCESS_KEY"] == "unit-secret-value-123"


def test_sorting_job_stages_recordings_as_blobs(session, store, backend, tmp_path) -> None:
    rec = tmp_path / "rec1.raw"
    rec.write_bytes(b"\x00\x01" * 1000)
    folder = tmp_path / "rec2"
    folder.mkdir()
    (folder / "traces.raw").write_bytes(b"\x02" * 200_000)
    (folder / "binary.json").write_text("{}")
    result = session.submit_sorting_job(recording_paths=[str(rec), str(folder)], config="tridesclous2",
                                        config_overrides={"detect_threshold": 6}, job_spec={})
    manifest = bundle_manifest(store, result.uploaded_input_uri)
    assert [r["name"] for r in manifest["recordings"]] == ["rec1.raw", "rec2"]
    assert manifest["sorting"] == {"sorter": "spikeinterface", "config": {"sorter_name": "tridesclous2", "params": {"detect_threshold": 6}}}
    files = {f["path"]: f for f in manifest["files"]}
    assert files["recordings/rec1.raw"]["source"] == "blob"
    assert files["recordings/rec2/traces.raw"]["source"] == "blob"
    assert files["recordings/rec2/binary.json"]["source"] == "bundle"
    container = backend.applied[0]["spec"]["template"]["spec"]["containers"][0]
    assert container["command"][-1] == "sorting"


@pytest.mark.parametrize(
    "paths, overrides, message",
    [
        ([], None, "recording_paths is empty"),
        (["/no/such/rec.h5"], None, "does not exist"),
        (None, {"not_an_option": 1}, "unknown sorting option"),
    ],
)
def test_bad_sorting_input_uploads_nothing(session, store, backend, tmp_path, paths, overrides, message) -> None:
    rec = tmp_path / "rec.raw"
    rec.write_bytes(b"x")
    with pytest.raises(ConfigError, match=message):
        session.submit_sorting_job(recording_paths=paths if paths is not None else [str(rec)], config_overrides=overrides, job_spec={})
    assert store.uploads == [] and backend.applied == []


def test_prepared_job_submits_without_bundle(session, store, backend) -> None:
    result = session.submit_prepared_job(job_spec={"container": {"command": ["python", "-c", "print(1)"]}}, run_id="20260101-000000-abcdefgh")
    assert result.job_type == "prepared" and result.uploaded_input_uri == ""
    assert result.run_id == "20260101-000000-abcdefgh"
    assert backend.applied[0]["metadata"]["labels"][RUN_ID_LABEL] == result.run_id
    assert backend.applied[0]["spec"]["template"]["spec"]["containers"][0]["command"] == ["python", "-c", "print(1)"]
    assert store.uploads == []


@pytest.mark.parametrize(
    "script, expected",
    [
        ([JobState.PENDING, JobState.RUNNING, JobState.COMPLETE], "Complete"),
        ([JobState.RUNNING, JobState.FAILED], "Failed"),
        ([unavailable(), unavailable(), JobState.COMPLETE], "Complete"),
    ],
)
def test_wait_for_completion(store, script, expected) -> None:
    backend = ScriptedBackend(script=script)
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    seen = []
    assert session.wait_for_completion("job-1", max_wait_seconds=10, on_state=seen.append, poll_interval_seconds=0.01) == expected
    assert seen[-1].value == expected


def test_wait_times_out_when_the_job_never_ends(store) -> None:
    backend = ScriptedBackend(script=[JobState.RUNNING, "drop"])
    backend.status = JobState.RUNNING
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    assert session.wait_for_completion("job-1", max_wait_seconds=0.5) == "Timeout"


def test_wait_reports_backend_unavailable_after_that_many_failed_calls_in_a_row(store) -> None:
    backend = ScriptedBackend(script=[unavailable() for _ in range(100)])
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    assert session.wait_for_completion("job-1", max_wait_seconds=60, poll_interval_seconds=0.01,
                                       max_consecutive_failures=3) == "Backend unavailable"
    assert backend.watch_calls == 3  # it retried, and gave up at the third failure in a row


def test_a_successful_call_resets_the_count_of_failures(store) -> None:
    backend = ScriptedBackend(script=[unavailable(), unavailable(), JobState.RUNNING, "drop",
                                      unavailable(), unavailable(), JobState.COMPLETE])
    backend.status = JobState.RUNNING
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    assert session.wait_for_completion("job-1", max_wait_seconds=60, poll_interval_seconds=0.01,
                                       max_consecutive_failures=3) == "Complete"


def test_the_cli_wait_retries_until_the_deadline(store) -> None:
    backend = ScriptedBackend(script=[unavailable() for _ in range(100)])
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    assert session.wait_for_outcome("job-1", max_wait_seconds=0.3, retry_initial_seconds=0.01) == "Backend unavailable"
    assert backend.watch_calls >= 2  # it retried


@pytest.mark.parametrize("field, value", [("poll_interval_seconds", 0), ("max_backoff_seconds", -1),
                                          ("max_consecutive_failures", 0), ("poll_interval_seconds", "10")])
def test_wait_refuses_bad_parameters_naming_them(store, field, value) -> None:
    session = RunSession(profile=PROFILE, backend=ScriptedBackend(), storage_client=store)
    with pytest.raises(ConfigError, match=field):
        session.wait_for_completion("job-1", **{field: value})


def test_retrieve_result_returns_the_workspace(session, store, script, tmp_path) -> None:
    result = session.submit_workspace_job(workspace={"a": 1}, script=str(script), job_spec={})
    store.objects[result.output_prefix + "workspace/ws.json"] = b'{"a": 1, "answer": 42}'
    store.objects[result.output_prefix + "result.json"] = json.dumps({"status": "succeeded", "format": "jsonfile"}).encode()
    assert session.retrieve_result(result, str(tmp_path / "out")) == {"a": 1, "answer": 42}


def test_retrieve_result_of_a_failed_run_says_where_the_log_is(session, store, script, tmp_path) -> None:
    result = session.submit_workspace_job(workspace={}, script=str(script), job_spec={})
    store.objects[result.output_prefix + "result.json"] = json.dumps({"status": "failed", "reason": "script raised ValueError: bad", "format": "jsonfile"}).encode()
    with pytest.raises(JobFailedError, match="script raised ValueError: bad.*" + result.logs_prefix):
        session.retrieve_result(result, str(tmp_path / "out"))


def test_retrieve_before_outputs_exist(session, script, tmp_path) -> None:
    result = session.submit_workspace_job(workspace={}, script=str(script), job_spec={})
    with pytest.raises(ObjectNotFoundError, match="wait_for_completion"):
        session.retrieve_result(result, str(tmp_path / "out"))


def test_unreachable_backend_fails_before_anything_is_uploaded(store, script) -> None:
    from spikebatch.errors import BackendUnavailableError

    backend = ScriptedBackend()
    backend.refuse = unavailable()
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store, workspace_codecs=[JsonFileCodec()])
    with pytest.raises(BackendUnavailableError, match="unreachable"):
        session.submit_workspace_job(workspace={}, script=str(script), job_spec={})
    assert store.uploads == [] and backend.applied == []


@pytest.mark.parametrize("submit", ["workspace", "sorting"])
def test_a_job_the_cluster_would_refuse_uploads_nothing(store, script, tmp_path, submit) -> None:
    from spikebatch.errors import BackendAuthError, InvalidManifestError

    rec = tmp_path / "rec.raw"
    rec.write_bytes(b"x")
    for refusal in (
        InvalidManifestError("admission webhook denied the Job", ["spec.template.spec.containers[0].resources: limits required"]),
        BackendAuthError("403 Forbidden: create jobs.batch in namespace default"),
    ):
        backend = ScriptedBackend()
        backend.refuse = refusal
        session = RunSession(profile=PROFILE, backend=backend, storage_client=store,
                             workspace_codecs=[JsonFileCodec()], sorter_factory=lambda name: RecordingSorter())
        with pytest.raises(type(refusal)):
            if submit == "workspace":
                session.submit_workspace_job(workspace={}, script=str(script), job_spec={})
            else:
                session.submit_sorting_job(recording_paths=[str(rec)], job_spec={})
        assert store.uploads == [] and backend.applied == []


def test_the_dry_run_checks_the_manifest_that_is_then_submitted(session, backend, script) -> None:
    session.submit_workspace_job(workspace={}, script=str(script), job_spec={})
    assert backend.dry_runs == backend.applied and len(backend.applied) == 1


def test_hashing_progress_covers_every_input_byte(session, script, tmp_path) -> None:
    data = tmp_path / "data.bin"
    data.write_bytes(b"\x07" * 5000)
    calls = []
    session.hash_progress = lambda done, total: calls.append((done, total))
    session.submit_workspace_job(workspace={"k": 1}, script=str(script), job_spec={}, bundle_input_paths=[str(data)])
    total = script.stat().st_size + 5000 + len('{"k": 1}')  # script, input, saved workspace
    # the total is known from the first call; the last call says everything was hashed
    assert calls[0][1] == total
    assert calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_a_watch_cut_short_is_watched_again(store) -> None:
    # First watch ends after "Running" (connection dropped); the job then completes.
    backend = ScriptedBackend(script=[JobState.RUNNING, "drop", JobState.COMPLETE])
    backend.status = JobState.RUNNING
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    assert session.wait_for_completion("job-1", max_wait_seconds=10, poll_interval_seconds=0.01) == "Complete"
    assert backend.watch_calls == 2


def test_a_job_that_ended_between_watches_is_reported(store) -> None:
    backend = ScriptedBackend(script=[JobState.RUNNING, "drop"])
    backend.status = JobState.FAILED
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    seen = []
    assert session.wait_for_completion("job-1", max_wait_seconds=10, on_state=seen.append) == "Failed"
    assert seen == [JobState.RUNNING, JobState.FAILED]


def test_runner_jobs_keep_what_the_user_left_to_the_namespace_hook(store, script) -> None:
    from spikebatch.models import NamespaceHookSpec

    hooked = PROFILE.model_copy(update={"namespace_hooks": {"default": NamespaceHookSpec(image_pull_policy="Always")}})
    backend = ScriptedBackend()
    session = RunSession(profile=hooked, backend=backend, storage_client=store, workspace_codecs=[JsonFileCodec()])
    session.submit_workspace_job(workspace={}, script=str(script), job_spec={})
    session.submit_workspace_job(workspace={}, script=str(script), job_spec={"container": {"image_pull_policy": "Never"}})
    policies = [job["spec"]["template"]["spec"]["containers"][0]["imagePullPolicy"] for job in backend.applied]
    # the hook fills in what the user left unset, and never overrides what they chose
    assert policies == ["Always", "Never"]


@pytest.mark.parametrize("submit", ["workspace", "sorting", "prepared"])
def test_each_submission_runs_the_preflight_once_before_anything_is_uploaded(session, store, backend, script, tmp_path, submit) -> None:
    rec = tmp_path / "rec.raw"
    rec.write_bytes(b"x")
    seen = []
    # What a person sees first: the findings, before a single byte is uploaded or a Job created.
    session.on_preflight = lambda summary: seen.append((summary.level, list(store.uploads), list(backend.applied)))
    if submit == "workspace":
        session.submit_workspace_job(workspace={}, script=str(script), job_spec={})
    elif submit == "sorting":
        session.submit_sorting_job(recording_paths=[str(rec)], job_spec={})
    else:
        session.submit_prepared_job(job_spec={"container": {"command": ["python", "-c", "print(1)"]}})
    assert len(seen) == 1
    level, uploads_then, applied_then = seen[0]
    assert level in ("PASS", "WARN") and uploads_then == [] and applied_then == []
    assert len(backend.applied) == 1


def test_a_blocked_submission_is_refused_without_reporting_it_as_going_ahead(session, store, backend, script) -> None:
    seen = []
    session.on_preflight = seen.append
    with pytest.raises(PolicyBlockedError):
        session.submit_workspace_job(workspace={}, script=str(script),
                                     job_spec={"container": {"command": ["sleep", "infinity"]}})
    assert seen == [] and store.uploads == [] and backend.applied == []


def test_wait_tells_about_an_image_pull_problem_and_gives_up_when_the_pod_is_stuck(store) -> None:
    from spikebatch.domain.job_report import JobReport

    backend = ScriptedBackend(script=[JobState.PENDING, "drop", "drop", "drop"])
    backend.status = JobState.PENDING
    backend.reports = [
        JobReport("job-1", JobState.PENDING, "ErrImagePull", None, "failed to pull image \"nope:1\""),
        JobReport("job-1", JobState.PENDING, "ErrImagePull", None, "failed to pull image \"nope:1\""),
        JobReport("job-1", JobState.PENDING, "ImagePullBackOff", None, "Back-off pulling image \"nope:1\"", stuck=True),
    ]
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    problems = []
    final = session.wait_for_completion("job-1", max_wait_seconds=30, on_problem=problems.append,
                                        poll_interval_seconds=0.01)
    assert final == "Stuck"
    # told once per distinct problem, not once per look
    assert [p.reason for p in problems] == ["ErrImagePull", "ImagePullBackOff"]
    assert backend.report_calls == 3


def test_wait_ends_when_the_report_between_two_watch_windows_is_terminal(store) -> None:
    from spikebatch.domain.job_report import JobReport

    backend = ScriptedBackend(script=[JobState.RUNNING, "drop"])
    backend.reports = [JobReport("job-1", JobState.FAILED, "OOMKilled", 137)]
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    seen = []
    assert session.wait_for_completion("job-1", max_wait_seconds=30, on_state=seen.append,
                                       poll_interval_seconds=0.01) == "Failed"
    assert seen == [JobState.RUNNING, JobState.FAILED]


def test_runner_scratch_is_sized_from_the_inputs(session, backend, script, tmp_path) -> None:
    data = tmp_path / "big.bin"
    data.write_bytes(b"\x00" * (5 * 1024 * 1024))
    session.submit_workspace_job(workspace={}, script=str(script), job_spec={}, bundle_input_paths=[str(data)])
    [job] = backend.applied
    assert backend.dry_runs == backend.applied  # the sized manifest is the one admitted
    limits = {v["name"]: v["emptyDir"].get("sizeLimit") for v in job["spec"]["template"]["spec"]["volumes"]}
    # 3 x (5 MiB + the script and workspace bytes) + 1Gi, rounded up to Mi
    assert limits["spikebatch-work"] == limits["spikebatch-tmp"] and limits["spikebatch-work"].endswith("Mi")
    assert 1024 + 15 <= int(limits["spikebatch-work"][:-2]) <= 1024 + 16


def test_wait_for_completion_says_failed_for_a_job_that_does_not_exist(store) -> None:
    from spikebatch.errors import JobNotFoundError

    backend = ScriptedBackend(script=[JobNotFoundError("job job-1 not found in namespace default")])
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    assert session.wait_for_completion("job-1", max_wait_seconds=10, poll_interval_seconds=0.01) == "Failed"
    # the CLI's wait tells the two apart
    backend.script = [JobNotFoundError("job job-1 not found in namespace default")]
    with pytest.raises(JobNotFoundError):
        session.wait_for_outcome("job-1", max_wait_seconds=10)


def test_wait_for_completion_says_failed_for_a_job_deleted_while_waited_on(store) -> None:
    from spikebatch.domain.job_state import JobEvent

    def script():
        return [JobState.RUNNING, JobEvent(job_name="job-1", state=JobState.RUNNING, kind="DELETED")]

    backend = ScriptedBackend(script=script())
    session = RunSession(profile=PROFILE, backend=backend, storage_client=store)
    assert session.wait_for_completion(job_name="job-1", max_wait_seconds=10, poll_interval_seconds=0.01) == "Failed"
    backend.script = script()
    assert session.wait_for_outcome("job-1", max_wait_seconds=10) == "Deleted"


def test_render_manifest_is_yaml_text_and_the_dict_form_has_its_own_name(store) -> None:
    import yaml

    session = RunSession(profile=PROFILE, backend=ScriptedBackend(), storage_client=store)
    spec = {"container": {"command": ["python", "-c", "print('a: \"b\"\\n')"]}}
    text = session.render_manifest(job_name="job-1", job_spec=spec, run_id="run-1")
    assert isinstance(text, str)
    as_dict = session.render_manifest_dict(job_name="job-1", job_spec=spec, run_id="run-1")
    assert yaml.safe_load(text) == as_dict
    assert as_dict["spec"]["template"]["spec"]["containers"][0]["command"][2] == "print('a: \"b\"\\n')"


def test_storage_is_the_storage_client(store) -> None:
    session = RunSession(profile=PROFILE, backend=ScriptedBackend(), storage_client=store)
    assert session.storage is store is session.storage_client
    other = MemoryStore()
    session.storage = other
    assert session.storage_client is other


@pytest.mark.parametrize("config, expected", [
    ("kilosort4", "spikeinterface"), ("mountainsort5", "spikeinterface"),   # ours, in our spelling
    ("KILOSORT4", "spikelab"), ("Kilosort4", "spikelab"),                   # SpikeLab's spelling
    ("kilosort2", "spikelab"), ("RT_SORT_MEA", "spikelab"),                 # only SpikeLab has them
    ("nosuchsorter", "spikeinterface"), (None, "spikeinterface"), ({}, "spikeinterface"),
])
def test_a_preset_name_goes_to_the_sorter_that_knows_it(config, expected) -> None:
    from spikebatch.application.sorter_choice import sorter_name_for

    ours = {"kilosort4", "mountainsort5", "spykingcircus2", "tridesclous2"}
    spikelab = {"kilosort2", "kilosort4", "rt_sort_mea"}

    def knows(sorter: str, name: str) -> bool:
        return name in ours if sorter == "spikeinterface" else name.lower() in spikelab

    assert sorter_name_for(config, knows) == expected


def test_without_spikelab_its_preset_names_stay_with_our_sorter() -> None:
    from spikebatch.application.sorter_choice import sorter_name_for

    assert sorter_name_for("KILOSORT2", lambda sorter, name: False) == "spikeinterface"
