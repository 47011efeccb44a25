"""Resource limits before anything runs: what the local backend's launch plan takes from
the container's resources (memory limit, thread variables, the API server's refusals),
and how the runner finds the CPU limit in a cluster pod (its cgroup) and bounds the
thread variables and SpikeInterface's n_jobs to it. The processes themselves are in
tests/e2e/test_local_limits.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from spikebatch.adapters.local.launch_plan import attempt_command, launch_plan
from spikebatch.adapters.local.memory_limit import group_members, process_memory_bytes
from spikebatch.domain.cpu_limit import THREAD_ENV_VARS
from spikebatch.domain.errors import InvalidManifestError
from spikebatch.entrypoints import runner


def job(resources: Any, env: list[dict[str, str]] | None = None) -> dict[str, Any]:
    container: dict[str, Any] = {"name": "main", "command": ["python", "-c", "pass"], "env": env or []}
    if resources is not None:
        container["resources"] = resources
    return {"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "limits"},
            "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [container]}}}}


def refusal(body: dict[str, Any]) -> tuple[str, str]:
    with pytest.raises(InvalidManifestError) as caught:
        launch_plan(body, "/")
    return str(caught.value), "; ".join(caught.value.causes)


def test_the_plan_carries_the_memory_limit_in_bytes_and_the_thread_env() -> None:
    plan = launch_plan(job({"limits": {"memory": "1.5Gi", "cpu": "250m"}, "requests": {"memory": "1Gi"}}), "/")
    assert plan["memoryLimitBytes"] == 3 * 2**29
    assert plan["cpuLimit"] == "250m"
    assert {name: plan["limitEnv"][name] for name in THREAD_ENV_VARS} == {name: "1" for name in THREAD_ENV_VARS}
    argv, env = attempt_command(plan, None)
    assert env["OPENBLAS_NUM_THREADS"] == "1" and env["SPIKEBATCH_CPU_LIMIT"] == "1"


def test_without_limits_nothing_is_bounded() -> None:
    for resources in (None, {}, {"requests": {"cpu": "2", "memory": "1Gi"}}):
        plan = launch_plan(job(resources), "/")
        assert (plan["memoryLimitBytes"], plan["cpuLimit"], plan["limitEnv"]) == (None, None, {})


def test_the_jobs_own_env_wins_over_the_thread_env() -> None:
    plan = launch_plan(job({"limits": {"cpu": "1"}}, env=[{"name": "OMP_NUM_THREADS", "value": "8"}]), "/")
    _, env = attempt_command(plan, None)
    assert env["OMP_NUM_THREADS"] == "8" and env["MKL_NUM_THREADS"] == "1"


def test_more_cpus_than_cores_give_one_thread_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("spikebatch.adapters.local.resource_limits.available_cores", lambda: 4)
    assert launch_plan(job({"limits": {"cpu": "64"}}), "/")["limitEnv"]["OMP_NUM_THREADS"] == "4"
    assert launch_plan(job({"limits": {"cpu": "2.5"}}), "/")["limitEnv"]["OMP_NUM_THREADS"] == "3"


@pytest.mark.parametrize("resources, field", [
    ({"limits": {"memory": "lots"}}, "resources.limits.memory: Invalid value: 'lots'"),
    ({"limits": {"cpu": "0"}}, "resources.limits.cpu: Invalid value: '0': must be greater than zero"),
    ({"requests": {"memory": "2Gi"}, "limits": {"memory": "1Gi"}}, "resources.requests: Invalid value: '2Gi'"),
    ({"limits": ["cpu"]}, "resources.limits: Invalid value: must be a mapping"),
])
def test_malformed_resources_are_refused_with_the_field(resources: dict, field: str) -> None:
    message, causes = refusal(job(resources))
    assert field in causes
    assert "\n" not in message and "limits" in message  # one line naming the field


def test_this_process_is_found_in_its_group_with_its_memory() -> None:
    import os

    group = os.getpgrp()
    members = group_members([group])
    assert os.getpid() in members[group]
    assert process_memory_bytes(os.getpid()) > 1024 * 1024
    assert process_memory_bytes(2**22 + 12345) == 0  # no such process: nothing held


def test_where_memory_cannot_be_measured_each_pod_log_says_the_limit_is_not_applied(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from spikebatch.adapters.local import memory_limit

    monkeypatch.setattr(memory_limit, "supported", lambda: False)
    limit = memory_limit.MemoryLimit(512 * 2**20)
    assert not limit.applies
    assert "memory limit (512.0 MiB, resources.limits.memory) is not applied here" in (limit.note() or "")
    assert memory_limit.MemoryLimit(None).note() is None


# --- the runner in a cluster pod -------------------------------------------------------
@pytest.fixture
def cgroup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The cgroup files the runner reads, under tmp_path (none written yet)."""
    monkeypatch.setattr(runner, "CGROUP_V2_CPU_MAX", tmp_path / "v2" / "cpu.max")
    monkeypatch.setattr(runner, "CGROUP_V1_CPU_FOLDERS", (tmp_path / "v1",))
    monkeypatch.setattr(runner, "_usable_cores", lambda: 8)
    return tmp_path


def test_the_runner_reads_a_cgroup_v2_limit_and_sets_what_the_env_does_not(cgroup: Path) -> None:
    (cgroup / "v2").mkdir()
    (cgroup / "v2" / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs
    env = {"MKL_NUM_THREADS": "5"}
    assert runner.bound_threads(env) == 2
    assert env["OMP_NUM_THREADS"] == "2" and env["SPIKEBATCH_CPU_LIMIT"] == "2"
    assert env["MKL_NUM_THREADS"] == "5"  # the pod's own value wins


def test_the_runner_reads_a_cgroup_v1_limit(cgroup: Path) -> None:
    (cgroup / "v1").mkdir()
    (cgroup / "v1" / "cpu.cfs_quota_us").write_text("400000\n")
    (cgroup / "v1" / "cpu.cfs_period_us").write_text("100000\n")
    assert runner.job_cpus({}) == 4


@pytest.mark.parametrize("v2, quota", [("max 100000\n", None), (None, "-1\n"), (None, None)])
def test_without_a_cpu_limit_the_runner_sets_nothing(cgroup: Path, v2: str | None, quota: str | None) -> None:
    if v2 is not None:
        (cgroup / "v2").mkdir()
        (cgroup / "v2" / "cpu.max").write_text(v2)
    if quota is not None:
        (cgroup / "v1").mkdir()
        (cgroup / "v1" / "cpu.cfs_quota_us").write_text(quota)
        (cgroup / "v1" / "cpu.cfs_period_us").write_text("100000\n")
    env: dict[str, str] = {}
    assert runner.bound_threads(env) is None and env == {}


def test_the_local_backends_cpu_count_comes_before_the_cgroup(cgroup: Path) -> None:
    (cgroup / "v2").mkdir()
    (cgroup / "v2" / "cpu.max").write_text("800000 100000\n")
    assert runner.job_cpus({"SPIKEBATCH_CPU_LIMIT": "1"}) == 1


def test_spikeinterface_sorters_get_the_cpus_as_their_global_n_jobs() -> None:
    import spikeinterface

    before = dict(spikeinterface.get_global_job_kwargs())
    try:
        assert runner.bound_sorter_jobs(3) is True
        assert spikeinterface.get_global_job_kwargs()["n_jobs"] == 3
    finally:
        spikeinterface.set_global_job_kwargs(**before)
