"""What the local backend takes from Indexed Jobs and pod failure policies before
anything runs: the plan's fields and defaults, the per-attempt command, the API
server's refusals, and which failure rule an attempt matches (pure: no process)."""

from __future__ import annotations

import sys
from typing import Any

import pytest

from spikebatch.adapters.local.completion_plan import UNLIMITED_BACKOFF
from spikebatch.adapters.local.launch_plan import attempt_command, job_field_causes, launch_plan
from spikebatch.adapters.local.pod_failure_policy import matching_rule
from spikebatch.domain.batch import indexed_job, per_recording_jobs
from spikebatch.domain.errors import InvalidManifestError
from spikebatch.domain.manifest import render_job_manifest
from spikebatch.domain.models import ClusterProfile, ContainerSpec, JobSpec


def job(**spec: Any) -> dict[str, Any]:
    """A minimal Job whose container echoes its index from env and args."""
    body: dict[str, Any] = {
        "apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "plan"},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{
            "name": "main", "command": ["python", "-c", "pass", "$(JOB_COMPLETION_INDEX)", "$(GREETING)"],
            "env": [{"name": "GREETING", "value": "hi"}]}]}}},
    }
    body["spec"].update(spec)
    return body


def rendered() -> dict[str, Any]:
    spec = JobSpec(name_prefix="batch", container=ContainerSpec(image="img", command=["python", "-c", "pass"]))
    return render_job_manifest("batch", spec, ClusterProfile(name="p", namespace="default"), "20260101-000000-abcd1234")


def refusal(body: dict[str, Any]) -> str:
    with pytest.raises(InvalidManifestError) as caught:
        launch_plan(body, "/")
    return "; ".join(caught.value.causes) if getattr(caught.value, "causes", None) else str(caught.value)


def test_an_indexed_plan_carries_the_controller_fields_with_their_defaults() -> None:
    plan = launch_plan(job(completionMode="Indexed", completions=5, parallelism=2, backoffLimitPerIndex=1,
                           maxFailedIndexes=2), "/")
    assert (plan["completionMode"], plan["completions"], plan["parallelism"]) == ("Indexed", 5, 2)
    assert (plan["backoffLimitPerIndex"], plan["maxFailedIndexes"]) == (1, 2)
    assert plan["backoffLimit"] == UNLIMITED_BACKOFF  # per-index retries alone limit it
    assert launch_plan(job(completionMode="Indexed", completions=3), "/")["parallelism"] == 1
    assert launch_plan(job(completionMode="Indexed", completions=3), "/")["backoffLimit"] == 6
    assert launch_plan(job(completionMode="Indexed", completions=3, backoffLimit=2,
                           backoffLimitPerIndex=0), "/")["backoffLimit"] == 2


def test_each_attempt_gets_its_index_in_env_and_expanded_args() -> None:
    plan = launch_plan(job(completionMode="Indexed", completions=12), "/")
    argv, env = attempt_command(plan, 11, "plan")
    assert argv == [sys.executable, "-c", "pass", "11", "hi"]
    assert env["JOB_COMPLETION_INDEX"] == "11" and env["GREETING"] == "hi"
    # A container that sets the variable itself keeps its value, as on a cluster.
    own = job(completionMode="Indexed", completions=2)
    own["spec"]["template"]["spec"]["containers"][0]["env"].append({"name": "JOB_COMPLETION_INDEX", "value": "7"})
    assert attempt_command(launch_plan(own, "/"), 1, "plan")[1]["JOB_COMPLETION_INDEX"] == "7"


def test_a_non_indexed_plan_is_as_before() -> None:
    plan = launch_plan(job(), "/")
    assert plan["completionMode"] == "NonIndexed" and plan["backoffLimit"] == 6
    argv, env = attempt_command(plan, None)
    assert argv == [sys.executable, "-c", "pass", "$(JOB_COMPLETION_INDEX)", "hi"]  # undefined: left as written
    assert "JOB_COMPLETION_INDEX" not in env
    assert "needs a Kubernetes backend" in str(pytest.raises(InvalidManifestError, launch_plan,
                                                             job(completions=2), "/").value)


@pytest.mark.parametrize(("spec", "cause"), [
    ({"completionMode": "Indexed"}, "spec.completions: Required value"),
    ({"completionMode": "Sideways"}, "spec.completionMode: Unsupported value"),
    ({"backoffLimitPerIndex": 1}, "spec.backoffLimitPerIndex: Forbidden: requires indexed completion mode"),
    ({"completionMode": "Indexed", "completions": 3, "maxFailedIndexes": 1}, "spec.maxFailedIndexes: Forbidden"),
    ({"completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": 0, "maxFailedIndexes": 4},
     "spec.maxFailedIndexes: Invalid value: 4"),
    ({"completionMode": "Indexed", "completions": 3, "backoffLimitPerIndex": -1},
     "spec.backoffLimitPerIndex: Invalid value: -1"),
    ({"podReplacementPolicy": "Sometimes"}, "spec.podReplacementPolicy: Unsupported value"),
    ({"completionMode": "Indexed", "completions": 3,
      "podFailurePolicy": {"rules": [{"action": "FailIndex", "onExitCodes": {"operator": "In", "values": [2]}}]}},
     "rules[0].action: Forbidden"),
    ({"podFailurePolicy": {"rules": [{"action": "Panic", "onExitCodes": {"operator": "In", "values": [2]}}]}},
     "rules[0].action: Unsupported value: 'Panic'"),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [3, 2]}}]}},
     "rules[0].onExitCodes.values[1]: Invalid value: 2: must be ordered"),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [0]}}]}},
     "must not be 0 for the In operator"),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "Is", "values": [1]}}]}},
     "rules[0].onExitCodes.operator: Unsupported value"),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"containerName": "sidecar",
                                                                           "operator": "In", "values": [1]}}]}},
     "containerName: Invalid value: 'sidecar'"),
    ({"podFailurePolicy": {"rules": [{"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}],
                                      "onExitCodes": {"operator": "In", "values": [1]}}]}},
     "specifying both OnExitCodes and OnPodConditions is not supported"),
    ({"podFailurePolicy": {"rules": [{"action": "FailJob", "onExitCodes": {"operator": "In", "values": [1]}}]},
      "podReplacementPolicy": "TerminatingOrFailed"}, "spec.podReplacementPolicy: Unsupported value"),
])
def test_what_the_api_server_refuses_is_refused_before_anything_runs(spec: dict[str, Any], cause: str) -> None:
    assert cause in refusal(job(**spec))


def test_a_failure_policy_needs_restart_policy_never() -> None:
    body = job(podFailurePolicy={"rules": [{"action": "Count", "onExitCodes": {"operator": "In", "values": [1]}}]})
    body["spec"]["template"]["spec"]["restartPolicy"] = "OnFailure"
    assert any(c.startswith("spec.template.spec.restartPolicy: Invalid value: 'OnFailure'")
               for c in job_field_causes(body))


def test_success_policy_is_refused_locally() -> None:
    assert "successPolicy" in str(pytest.raises(InvalidManifestError, launch_plan, job(
        completionMode="Indexed", completions=2, successPolicy={"rules": [{"succeededCount": 1}]}), "/").value)


def test_the_product_s_batch_jobs_are_accepted() -> None:
    batch = launch_plan(indexed_job(rendered(), recording_indexes=[0, 1, 2], parallelism=2, retries_per_index=1,
                                    max_failed_indexes=1), "/")
    assert (batch["completions"], batch["parallelism"], batch["backoffLimitPerIndex"]) == (3, 2, 1)
    assert [r["action"] for r in batch["podFailureRules"]] == ["Ignore", "FailIndex"]
    for fallback in per_recording_jobs(rendered(), recording_indexes=[4, 5], retries_per_index=2):
        plan = launch_plan(fallback, "/")
        assert plan["completionMode"] == "NonIndexed" and plan["backoffLimit"] == 2
        assert attempt_command(plan, None)[1]["JOB_COMPLETION_INDEX"] == "0"


def test_the_first_matching_rule_decides() -> None:
    rules = [
        {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},  # never matches locally
        {"action": "FailIndex", "onExitCodes": {"containerName": "main", "operator": "In", "values": [2]}},
        {"action": "Ignore", "onExitCodes": {"containerName": "other", "operator": "In", "values": [3]}},
        {"action": "FailJob", "onExitCodes": {"operator": "NotIn", "values": [1, 2, 3]}},
        {"action": "Count", "onExitCodes": {"operator": "In", "values": [1]}},
    ]
    assert matching_rule(rules, "main", 2) == (1, "FailIndex")
    assert matching_rule(rules, "main", 3) is None  # the Ignore rule names another container
    assert matching_rule(rules, "main", 137) == (3, "FailJob")
    assert matching_rule(rules, "main", 1) == (4, "Count")
    assert matching_rule(rules, "main", 0) is None  # an exit code 0 never matches, not even NotIn
    assert matching_rule([], "main", 1) is None
