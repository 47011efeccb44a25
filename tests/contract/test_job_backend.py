"""The JobBackend contract, run against every adapter.

* ``kubernetes`` (the official client) and ``kubectl`` (the real binary) against the
  test environment's real control plane: its job controller drives the Jobs, kwok
  plays the node (pods succeed, or fail when labelled), RBAC limits the second user.
* ``local``: real subprocesses run by the local backend's supervisor.

Scenarios that need a cluster (another user's rights, an API-server restart) are
parametrised over the cluster adapters only; the local adapter has its own section
at the end (deadline, secrets, a second process reading the state).
"""
from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from spikebatch.errors import (
    BackendAuthError,
    BackendUnavailableError,
    InvalidManifestError,
    JobConflictError,
    JobNotFoundError,
    NamespaceMismatchError,
)
from spikebatch.domain.manifest import manifest_to_yaml
from spikebatch.domain.naming import MANAGED_BY_LABEL, MANAGED_BY_VALUE, RUN_ID_LABEL, new_run_id
from spikebatch.ports.backend import JobBackend, JobState

from contract.backend_harness import (
    ADAPTERS,
    CLUSTER_ADAPTERS,
    JOB_TIMEOUT,
    Harness,
    make_backend,
    printing_command,
    wait_for,
)


def _params(adapters):
    return [pytest.param(a, marks=[pytest.mark.integration] if a in CLUSTER_ADAPTERS else [], id=a)
            for a in adapters]


@pytest.fixture
def harness(request, tmp_path):
    adapter = request.param
    if adapter == "local":
        yield Harness(adapter, make_backend("local", "contract", state_root=tmp_path / "state"), "contract",
                      state_root=tmp_path / "state")
        return
    cluster = request.getfixturevalue("kube_cluster")
    namespace = request.getfixturevalue("kube_namespace")
    backend = make_backend(adapter, namespace, kubeconfig=cluster.admin_kubeconfig)
    yield Harness(adapter, backend, namespace, log_lines=list(cluster.pod_log_lines), cluster=cluster)
    if adapter == "kubernetes":
        backend.close()


every_adapter = pytest.mark.parametrize("harness", _params(ADAPTERS), indirect=True)
cluster_adapters = pytest.mark.parametrize("harness", _params(CLUSTER_ADAPTERS), indirect=True)
local_adapter = pytest.mark.parametrize("harness", _params(["local"]), indirect=True)


def watch_to_end(backend, names, timeout=JOB_TIMEOUT):
    events = list(backend.watch(job_names=names, timeout_seconds=timeout))
    last = {}
    for ev in events:
        last[ev.job_name] = ev.state
    assert all(s.is_terminal for s in last.values()) and set(last) == set(names), (
        f"watch ended without every job terminal: {events}")
    return events


# ------------------------------------------------------------------ the scenarios

@every_adapter
def test_backend_satisfies_the_port(harness):
    assert isinstance(harness.backend, JobBackend)
    assert harness.backend.namespace == harness.namespace


@every_adapter
def test_job_that_completes(harness):
    b = harness.backend
    name = b.apply_manifest(manifest_to_yaml(harness.job(harness.name("ok"))))  # YAML text

    events = watch_to_end(b, [name])

    assert events[0].kind == "ADDED"
    assert events[-1].state is JobState.COMPLETE
    assert b.job_status(name) == "Complete"
    [pod] = b.pods_for_job(name)
    assert list(b.stream_job_logs(name)) == harness.log_lines
    # one pod's log, as the reference's stream_logs(pod_name, follow=True) gives it
    assert list(b.stream_logs(pod, follow=False)) == harness.log_lines
    assert list(b.stream_logs(pod)) == harness.log_lines  # followed: the pod has ended, so it returns
    [info] = [j for j in b.list_jobs({RUN_ID_LABEL: harness.run_id}) if j.name == name]
    assert (info.state, info.run_id, info.namespace) == (JobState.COMPLETE, harness.run_id, harness.namespace)
    assert info.labels[MANAGED_BY_LABEL] == MANAGED_BY_VALUE


@every_adapter
def test_job_that_fails_after_its_retries(harness):
    b = harness.backend
    name = b.apply_manifest(harness.job(harness.name("doomed"), outcome="fail", backoff_limit=1))

    events = watch_to_end(b, [name])

    states = [e.state for e in events]
    # The first pod's failure left a retry: the Job stayed Running, Failed came last.
    assert JobState.FAILED not in states[:-1]
    assert JobState.RUNNING in states
    assert states[-1] is JobState.FAILED
    assert "BackoffLimitExceeded" in events[-1].message
    assert b.job_status(name) is JobState.FAILED
    pods = b.pods_for_job(name)
    assert len(pods) == 2  # backoffLimit 1: the first attempt and one retry
    # both attempts' logs, oldest first; and each pod's own
    assert list(b.stream_job_logs(name)) == harness.log_lines * 2
    assert [list(b.stream_logs(pod, follow=False)) for pod in pods] == [harness.log_lines] * 2
    report = b.job_report(name)
    assert report.state is JobState.FAILED
    if harness.on_cluster:
        # kwok's fail stage writes the pod's terminated state itself (no container ran):
        # the report passes on what the pod says
        assert (report.reason, report.exit_code, report.message) == ("containerFailed", 1, "container failed")
    else:
        # the process really exited 3: its code and last log line explain the failure
        assert (report.reason, report.exit_code, report.message) == ("Error", 3, harness.log_lines[-1])


@every_adapter
def test_pending_job_deleted_while_pending(harness):
    b = harness.backend
    name = b.apply_manifest(harness.job(harness.name("waits"), outcome="pending"))
    if harness.on_cluster:
        # the scheduler has seen its pod and can place it nowhere
        wait_for(lambda: b.pods_for_job(name), 30, "the Job's pod to be created")
    time.sleep(1)

    assert b.job_status(name) is JobState.PENDING
    assert b.delete_job(name) is True

    with pytest.raises(JobNotFoundError, match=name):
        b.job_status(name)
    assert b.delete_job(name) is False
    wait_for(lambda: not harness.remaining_pods(name), 30, "the pending pod to go with its Job")


@every_adapter
def test_logs_streamed_with_follow(harness):
    b = harness.backend
    name = b.apply_manifest(harness.job(harness.name("talks")))

    started = time.monotonic()
    lines = list(b.stream_job_logs(name, follow=True))  # returns by itself once the Job has ended

    assert lines == harness.log_lines
    assert b.job_status(name) is JobState.COMPLETE
    assert time.monotonic() - started < JOB_TIMEOUT


@every_adapter
def test_one_pods_log_followed_by_its_name(harness):
    b = harness.backend
    name = b.apply_manifest(harness.job(harness.name("podlog")))
    [pod] = wait_for(lambda: b.pods_for_job(name), JOB_TIMEOUT, "the Job's pod to be created")

    assert list(b.stream_logs(pod, follow=True)) == harness.log_lines  # returns once the pod has ended

    for missing in (f"{name}-zzzzz", "no-such-pod"):
        with pytest.raises(JobNotFoundError, match=missing):
            b.stream_logs(missing)  # at the call, not at the first line
    assert b.delete_job(name) is True and b.delete_job(name) is False


@every_adapter
def test_followed_logs_include_retried_pods_in_order(harness):
    b = harness.backend
    name = b.apply_manifest(harness.job(harness.name("retries"), outcome="fail", backoff_limit=1))

    lines = list(b.stream_job_logs(name, follow=True))

    assert lines == harness.log_lines * 2
    assert b.job_status(name) is JobState.FAILED


@every_adapter
def test_duplicate_name_is_a_conflict(harness, tmp_path):
    b = harness.backend
    job = harness.job(harness.name("twice"), outcome="suspended")
    path = tmp_path / "job.yaml"
    path.write_text(manifest_to_yaml(job))
    name = b.apply_manifest(path)  # a Path

    with pytest.raises(JobConflictError, match=f"{name}.*already exists"):
        b.apply_manifest(str(path))  # a path string

    assert [j.name for j in b.list_jobs()] == [name]


@every_adapter
def test_invalid_manifest_is_refused_with_field_causes(harness):
    b = harness.backend
    bad = harness.job(harness.name("bad"))
    bad["spec"]["template"]["spec"]["restartPolicy"] = "Always"  # a Job's pods may not restart forever
    bad["spec"]["template"]["spec"]["containers"][0]["name"] = "Not_A_DNS_Label"

    with pytest.raises(InvalidManifestError) as err:
        b.apply_manifest(bad)

    fields = [c.split(":", 1)[0] for c in err.value.causes]
    assert "spec.template.spec.restartPolicy" in fields
    assert "spec.template.spec.containers[0].name" in fields
    assert "\n" not in str(err.value)
    assert b.list_jobs() == []  # nothing was created


@every_adapter
def test_dry_run_checks_everything_and_creates_nothing(harness):
    b = harness.backend
    name = harness.name("dry")
    assert b.apply_manifest(harness.job(name), dry_run=True) == name
    assert [j.name for j in b.list_jobs()] == []  # nothing was created ...
    with pytest.raises(JobNotFoundError):
        b.job_status(name)

    bad = harness.job(harness.name("dry-bad"))
    bad["spec"]["template"]["spec"]["containers"][0]["name"] = "Not_A_DNS_Label"
    with pytest.raises(InvalidManifestError) as err:  # ... but an invalid Job is still refused
        b.apply_manifest(bad, dry_run=True)
    assert "spec.template.spec.containers[0].name" in [c.split(":", 1)[0] for c in err.value.causes]

    taken = b.apply_manifest(harness.job(harness.name("taken"), outcome="suspended"))
    with pytest.raises(JobConflictError, match=f"{taken}.*already exists"):  # and so is a taken name
        b.apply_manifest(harness.job(taken, outcome="suspended"), dry_run=True)
    assert [j.name for j in b.list_jobs()] == [taken]


@cluster_adapters
def test_dry_run_of_the_limited_user_outside_its_namespace_is_refused(harness):
    cluster = harness.cluster
    outsider = make_backend(harness.adapter, harness.namespace, kubeconfig=cluster.user_kubeconfig)
    with pytest.raises(BackendAuthError, match="403"):
        outsider.apply_manifest(harness.job(harness.name("dry-nope")), dry_run=True)


@every_adapter
def test_manifest_for_another_namespace_is_refused(harness):
    job = harness.job(harness.name("elsewhere"), outcome="suspended")
    job["metadata"]["namespace"] = "someone-else"

    with pytest.raises(NamespaceMismatchError, match="someone-else"):
        harness.backend.apply_manifest(job)

    assert harness.backend.list_jobs() == []


@every_adapter
def test_list_jobs_by_run_id_label(harness):
    b = harness.backend
    run_a, run_b = new_run_id(), new_run_id()
    a1 = b.apply_manifest(harness.job(harness.name("a1"), outcome="suspended", run_id=run_a))
    a2 = b.apply_manifest(harness.job(harness.name("a2"), outcome="suspended", run_id=run_a))
    other = b.apply_manifest(harness.job(harness.name("b1"), outcome="suspended", run_id=run_b))

    assert sorted(j.name for j in b.list_jobs({RUN_ID_LABEL: run_a})) == sorted([a1, a2])
    assert [j.name for j in b.list_jobs({RUN_ID_LABEL: run_b, MANAGED_BY_LABEL: MANAGED_BY_VALUE})] == [other]
    assert b.list_jobs({RUN_ID_LABEL: "no-such-run"}) == []
    assert {j.state for j in b.list_jobs()} == {JobState.PENDING}  # suspended


@every_adapter
def test_delete_is_idempotent(harness):
    b = harness.backend
    assert b.delete_job("never-existed") is False
    name = b.apply_manifest(harness.job(harness.name("short")))
    watch_to_end(b, [name])

    assert b.delete_job(name) is True
    assert b.delete_job(name) is False
    with pytest.raises(JobNotFoundError):
        b.pods_for_job(name)
    assert name not in [j.name for j in b.list_jobs()]


@every_adapter
def test_watch_of_a_missing_job_says_so(harness):
    with pytest.raises(JobNotFoundError, match="ghost"):
        list(harness.backend.watch(job_names=["ghost"], timeout_seconds=5))


@every_adapter
def test_watch_times_out_quietly_on_a_job_that_does_not_end(harness):
    b = harness.backend
    name = b.apply_manifest(harness.job(harness.name("stuck"), outcome="suspended"))

    started = time.monotonic()
    events = list(b.watch(job_names=[name], timeout_seconds=3))

    assert [(e.job_name, e.state) for e in events] == [(name, JobState.PENDING)]
    assert 2.5 <= time.monotonic() - started < 20


# ------------------------------------------------------------------ cluster only

@cluster_adapters
def test_limited_user_is_refused_in_another_namespace(harness):
    cluster = harness.cluster
    # The limited user may use Jobs only in its own namespace; harness.namespace is not it.
    outsider = make_backend(harness.adapter, harness.namespace, kubeconfig=cluster.user_kubeconfig)

    with pytest.raises(BackendAuthError) as err:
        outsider.apply_manifest(harness.job(harness.name("nope")))
    message = str(err.value)
    assert "403" in message and "create" in message and "jobs" in message and harness.namespace in message
    assert "\n" not in message and cluster.user_token not in message

    with pytest.raises(BackendAuthError, match=f"list.*jobs.*{harness.namespace}"):
        outsider.list_jobs()
    # ... while in its own namespace the same credentials work.
    assert isinstance(make_backend(harness.adapter, cluster.user_namespace,
                                   kubeconfig=cluster.user_kubeconfig).list_jobs(), list)


@cluster_adapters
def test_watch_survives_an_api_server_restart(harness):
    b = harness.backend
    done_before = b.apply_manifest(harness.job(harness.name("before")))
    held = b.apply_manifest(harness.job(harness.name("held"), outcome="suspended"))
    events, errors = [], []

    def consume():
        try:
            events.extend(b.watch(job_names=[done_before, held], timeout_seconds=JOB_TIMEOUT * 2))
        except BaseException as exc:  # reported to the test thread below
            errors.append(exc)

    watcher = threading.Thread(target=consume, daemon=True)
    watcher.start()
    wait_for(lambda: any(e.job_name == done_before and e.state.is_terminal for e in events), JOB_TIMEOUT,
             "the first Job to complete")

    downtime = harness.cluster.restart_apiserver()
    harness.admin_patch_job(held, {"spec": {"suspend": False}})  # changes only after the restart
    watcher.join(JOB_TIMEOUT * 2)

    assert not watcher.is_alive(), f"the watch did not end: {events}"
    assert errors == []
    assert downtime > 0
    final = {e.job_name: e.state for e in events}
    assert final == {done_before: JobState.COMPLETE, held: JobState.COMPLETE}
    # held was reported once as Pending (suspended) before it ran, and only once Complete
    assert [e.state for e in events if e.job_name == held][0] is JobState.PENDING
    assert [e.state for e in events if e.job_name == held].count(JobState.COMPLETE) == 1
    # the watch really was re-established (a new connection / kubectl process)
    assert b.requests_by_kind["watch"] >= 2, b.requests_by_kind


@cluster_adapters
def test_unreachable_api_server_is_one_line(harness, tmp_path):
    cfg = Path(harness.cluster.admin_kubeconfig).read_text()
    # Same credentials, a port nothing listens on (loopback only).
    dead = tmp_path / "dead.kubeconfig"
    dead.write_text(cfg.replace(harness.cluster.server, "https://127.0.0.1:9"))
    b = make_backend(harness.adapter, harness.namespace, kubeconfig=str(dead))
    if harness.adapter == "kubernetes":
        b.request_timeout = (3.0, 3.0)

    with pytest.raises(BackendUnavailableError) as err:
        b.job_status("anything")

    assert "127.0.0.1:9" in str(err.value) or "refused" in str(err.value)
    assert "\n" not in str(err.value) and harness.cluster.admin_token not in str(err.value)


@pytest.mark.parametrize("harness", _params(["kubernetes"]), indirect=True)
def test_client_counts_its_requests(harness):
    b = harness.backend
    before = b.request_count
    name = b.apply_manifest(harness.job(harness.name("counted")))
    watch_to_end(b, [name])

    used = b.request_count - before
    # one create, one list, then one or a few watch connections -- not a poll loop
    assert 3 <= used <= 6, b.requests_by_kind
    assert b.requests_by_kind["create"] >= 1 and b.requests_by_kind["watch"] >= 1


# ------------------------------------------------------------------ local only

@local_adapter
def test_local_state_is_seen_from_another_process(harness):
    b = harness.backend
    name = b.apply_manifest(harness.job(harness.name("shared"), command=printing_command(["x"], pause=1.5)))

    probe = ("import sys; from spikebatch.adapters.local.backend import LocalProcessBackend as B; "
             "b = B(namespace=sys.argv[1], state_dir=sys.argv[2]); print(b.job_status(sys.argv[3]), "
             "b.pods_for_job(sys.argv[3]))")
    running = subprocess.run([sys.executable, "-c", probe, harness.namespace, str(harness.state_root), name],
                             capture_output=True, text=True, timeout=60, check=True).stdout

    assert running.startswith("Running")
    watch_to_end(b, [name])
    done = subprocess.run([sys.executable, "-c", probe, harness.namespace, str(harness.state_root), name],
                          capture_output=True, text=True, timeout=60, check=True).stdout
    assert done.startswith("Complete") and b.pods_for_job(name)[0] in done


@local_adapter
def test_local_deadline_kills_the_process_and_fails_the_job(harness, tmp_path):
    b = harness.backend
    marker = tmp_path / "pid"
    code = f"import os, time; open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    name = b.apply_manifest(harness.job(harness.name("late"), command=["python", "-c", code], deadline=1,
                                        backoff_limit=3))

    events = watch_to_end(b, [name], timeout=30)

    assert events[-1].state is JobState.FAILED and "DeadlineExceeded" in events[-1].message
    assert len(b.pods_for_job(name)) == 1  # a deadline is not retried
    assert b.job_report(name).reason == "DeadlineExceeded"
    pid = int(marker.read_text())
    wait_for(lambda: _gone_or_zombie(pid), 10, "the killed process to disappear")


@local_adapter
def test_local_delete_kills_the_process_group(harness, tmp_path):
    b = harness.backend
    marker = tmp_path / "pids"
    # a parent and the child it spawned, both in the Job's process group
    code = ("import os, subprocess, sys, time; "
            "c = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            f"open({str(marker)!r}, 'w').write(f'{{os.getpid()}} {{c.pid}}'); time.sleep(60)")
    name = b.apply_manifest(harness.job(harness.name("killme"), command=["python", "-c", code]))
    pids = [int(p) for p in wait_for(lambda: marker.exists() and marker.read_text().split(), 30, "the pids")]

    assert b.job_status(name) is JobState.RUNNING
    assert b.delete_job(name) is True

    wait_for(lambda: all(_gone_or_zombie(p) for p in pids), 15, "both processes to be killed")
    assert b.list_jobs() == []


@local_adapter
def test_local_secret_env_is_refused_before_anything_starts(harness, tmp_path):
    job = harness.job(harness.name("secret"))
    job["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": "AWS_SECRET_ACCESS_KEY", "valueFrom": {"secretKeyRef": {"name": "s3-creds", "key": "secret"}}}]

    with pytest.raises(InvalidManifestError) as err:
        harness.backend.apply_manifest(job)

    assert "AWS_SECRET_ACCESS_KEY" in str(err.value) and "s3-creds" in str(err.value)
    assert "\n" not in str(err.value)
    assert harness.backend.list_jobs() == []


@local_adapter
def test_local_env_values_reach_the_process(harness):
    job = harness.job(harness.name("env"), command=[
        "python", "-c", "import os, sys; print(os.environ['GREETING'], sys.argv[1])", "$(GREETING)-arg"])
    job["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "GREETING", "value": "hello there"}]
    name = harness.backend.apply_manifest(job)

    watch_to_end(harness.backend, [name], timeout=30)

    # $(VAR) in args expands as the kubelet does; python is this interpreter
    assert list(harness.backend.stream_job_logs(name)) == ["hello there hello there-arg"]


# ------------------------------------------------------------------ local: each pod's TMPDIR

#: What a job leaves in its pod's temporary folder: a sorter's scratch, as SpikeInterface
#: makes it, and the runner's work folder (inputs, outputs).
_SCRATCH_CODE = ("import os, sys, tempfile, time; "
                 "sort = tempfile.mkdtemp(prefix='spikebatch-sort-'); "
                 "run = tempfile.mkdtemp(prefix='spikebatch-run-'); "
                 "open(os.path.join(run, 'input.bin'), 'wb').write(b'x' * 100000); "
                 "print(os.environ['TMPDIR'], sort, run, sep='\\n', flush=True); ")


def _spikebatch_entries(folder: Path) -> list[str]:
    """What of spikebatch lies in ``folder`` (other processes may use it too)."""
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("spikebatch-")) if folder.is_dir() else []


@pytest.fixture
def temp_root(tmp_path, monkeypatch) -> Path:
    """The job's temp root: TMPDIR, which the supervisor inherits from the applying process."""
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setenv("TMPDIR", str(root))
    monkeypatch.delenv("SPIKEBATCH_KEEP_WORK_DIR", raising=False)
    return root


@local_adapter
@pytest.mark.parametrize("exit_code", [0, 3])
def test_local_pod_temp_folder_is_removed_when_the_job_ends(harness, temp_root, exit_code):
    b = harness.backend
    name = b.apply_manifest(harness.job(harness.name("scratch"), outcome="succeed", command=[
        "python", "-c", _SCRATCH_CODE + f"sys.exit({exit_code})"]))

    events = watch_to_end(b, [name], timeout=60)

    assert events[-1].state is (JobState.COMPLETE if exit_code == 0 else JobState.FAILED)
    pod_tmp, sort_dir, run_dir = list(b.stream_job_logs(name))
    # the job's temporary files lay in a folder of its own pod, under the temp root
    assert Path(pod_tmp).parent == temp_root and Path(pod_tmp).name.startswith(f"spikebatch-pod-{name}-")
    assert Path(sort_dir).parent == Path(run_dir).parent == Path(pod_tmp)
    # ... and were gone by the time the Job was seen to end, success or failure
    assert not Path(pod_tmp).exists()
    assert _spikebatch_entries(temp_root) == []


@local_adapter
def test_local_keep_env_keeps_the_pod_folder_until_the_job_is_deleted(harness, temp_root):
    b = harness.backend
    job = harness.job(harness.name("kept"), command=["python", "-c", _SCRATCH_CODE])
    job["spec"]["template"]["spec"]["containers"][0]["env"] = [{"name": "SPIKEBATCH_KEEP_WORK_DIR", "value": "1"}]
    name = b.apply_manifest(job)

    watch_to_end(b, [name], timeout=60)

    notice, pod_tmp, sort_dir, run_dir = list(b.stream_job_logs(name))
    assert "kept" in notice and pod_tmp in notice and "job-delete" in notice
    assert Path(sort_dir).is_dir() and (Path(run_dir) / "input.bin").stat().st_size == 100000
    assert b.delete_job(name) is True
    assert not Path(pod_tmp).exists() and _spikebatch_entries(temp_root) == []


@local_adapter
@pytest.mark.parametrize("kill_supervisor", [False, True], ids=["running", "supervisor-killed"])
def test_local_delete_of_a_running_job_removes_its_temp_folder(harness, temp_root, tmp_path, kill_supervisor):
    import json
    import os
    import signal

    b = harness.backend
    marker = tmp_path / "started"
    code = _SCRATCH_CODE + f"open({str(marker)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    name = b.apply_manifest(harness.job(harness.name("killed"), command=["python", "-c", code]))
    pid = int(wait_for(lambda: marker.exists() and marker.read_text(), 30, "the job to start"))
    pod_tmp = Path(list(b.stream_job_logs(name))[0])
    assert pod_tmp.is_dir()
    if kill_supervisor:
        # the supervisor dies without a word (OOM killer, kill -9): only delete can clean up
        supervisor = json.loads((harness.state_root / harness.namespace / name / "supervisor.json").read_text())
        os.kill(supervisor["pid"], signal.SIGKILL)
        wait_for(lambda: _gone_or_zombie(supervisor["pid"]), 15, "the supervisor to die")
        assert pod_tmp.is_dir()

    assert b.delete_job(name) is True

    assert not pod_tmp.exists() and _spikebatch_entries(temp_root) == []
    wait_for(lambda: _gone_or_zombie(pid), 15, "the job's process to be killed")


@local_adapter
@pytest.mark.parametrize(("where", "value", "expected"), [
    ("env", "x" * (5 * 1024 * 1024), "env BIG of Job .* is 5.0 MiB, over the 128 KiB a local process takes"),
    ("env", "a\x00b", "env BIG of Job .* holds a NUL byte"),
    ("args", "a\x00b", r"args\[0\] of Job .* holds a NUL byte"),
    ("args", "y" * (200 * 1024), r"args\[0\] of Job .* is 200 KiB, over the 128 KiB"),
])
def test_local_values_no_process_can_receive_are_refused_before_anything_starts(harness, temp_root, where,
                                                                                value, expected):
    job = harness.job(harness.name("huge"), command=["python", "-c", "print(1)"])
    container = job["spec"]["template"]["spec"]["containers"][0]
    if where == "env":
        container["env"] = [{"name": "BIG", "value": value}]
    else:
        container["args"] = [value]

    for dry_run in (True, False):
        with pytest.raises(InvalidManifestError, match=expected) as err:
            harness.backend.apply_manifest(job, dry_run=dry_run)
        assert "\n" not in str(err.value) and ("file" in str(err.value) or "remove it" in str(err.value))

    assert harness.backend.list_jobs() == []
    assert not (harness.state_root / harness.namespace / job["metadata"]["name"]).exists()
    assert _spikebatch_entries(temp_root) == []


@local_adapter
def test_local_arguments_and_environment_over_arg_max_are_refused(harness, monkeypatch):
    import os

    limit = os.sysconf("SC_ARG_MAX")
    job = harness.job(harness.name("many"), command=["python", "-c", "print(1)"])
    # each value under the per-value cap, all of them over the system's limit
    count = limit // (100 * 1024) + 1
    job["spec"]["template"]["spec"]["containers"][0]["env"] = [
        {"name": f"PART_{i}", "value": "z" * (100 * 1024)} for i in range(count)]

    with pytest.raises(InvalidManifestError, match=r"over this system's limit .* \(ARG_MAX") as err:
        harness.backend.apply_manifest(job)

    assert "PART_" in str(err.value) and "\n" not in str(err.value)
    assert harness.backend.list_jobs() == []


def _gone_or_zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


# ------------------------------------------------------------------ the client's configuration

def test_kubernetes_backend_falls_back_to_kubectl_without_client_configuration(tmp_path, monkeypatch):
    from spikebatch.adapters.kubernetes.backend import KubernetesBatchJobBackend
    from spikebatch.adapters.kubectl.backend import KubectlBackend

    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)

    b = KubernetesBatchJobBackend(namespace="lab")
    assert isinstance(b.fallback, KubectlBackend) and b.fallback.namespace == "lab"

    # Built without any configuration (as the reference's); the first call says why.
    strict = KubernetesBatchJobBackend(namespace="lab", use_kubectl_fallback=False)
    assert strict.request_count == 0
    with pytest.raises(BackendUnavailableError, match="no Kubernetes client configuration.*fallback disabled") as err:
        strict.job_status("anything")
    assert "\n" not in str(err.value)
    # a kubeconfig path that names nothing is reported as such, not handed to kubectl
    typo = KubernetesBatchJobBackend(namespace="lab", kubeconfig=str(tmp_path / "typo.yaml"))
    with pytest.raises(BackendUnavailableError, match=r"kubeconfig '.*typo.yaml' does not exist; pass the path"):
        typo.pods_for_job("anything")
    with pytest.raises(BackendUnavailableError, match="does not exist"):
        typo.apply_manifest({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"}})


def test_kubernetes_backend_without_a_usable_kubeconfig_uses_kubectl_which_reports_one_line(tmp_path):
    from spikebatch.adapters.kubernetes.backend import KubernetesBatchJobBackend

    broken = tmp_path / "broken.kubeconfig"
    broken.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")

    b = KubernetesBatchJobBackend(namespace="lab", kubeconfig=str(broken))

    assert b.fallback is not None and "did not load" in b.fallback_reason
    with pytest.raises(BackendUnavailableError) as err:  # kubectl has no server to talk to either
        b.job_status("anything")
    assert "\n" not in str(err.value) and b.request_count == 1
