"""spikelab.batch_jobs.policy -> spikebatch.policy: code that filters findings by the
reference's codes and levels, unpacks ``summarize_preflight`` and sets PolicyConfig's
fields keeps working with only the import root changed.

The installed reference is the oracle for names, signatures and PolicyConfig's fields
and defaults; the behaviours below are the reference's, written out as expectations.
"""

from __future__ import annotations

import inspect

import pytest

from spikebatch.models import ClusterProfile, ContainerSpec, JobSpec, PolicyConfig, ResourceSpec
from spikebatch.policy import PolicyFinding, evaluate_policy, summarize_preflight

EQUAL = {"requests_cpu": "1", "limits_cpu": "1", "requests_memory": "2Gi", "limits_memory": "2Gi"}


def profile(**policy) -> ClusterProfile:
    return ClusterProfile(name="lab", namespace="lab", policy=PolicyConfig(**policy))


def job(command=("python", "run.py"), args=(), gpus=0, deadline=None, **resources) -> JobSpec:
    return JobSpec(
        name_prefix="analysis",
        container=ContainerSpec(image="ghcr.io/lab/analysis:1.4.0", command=list(command), args=list(args)),
        resources=ResourceSpec(**{**EQUAL, **resources, "requests_gpu": gpus, "limits_gpu": gpus}),
        active_deadline_seconds=deadline,
    )


def pairs(findings) -> list:
    return [(f.code, f.level) for f in findings]


# --- names and signatures, against the reference ----------------------------------------


def test_every_public_name_of_the_reference_module_is_importable():
    import spikelab.batch_jobs.policy as reference

    import spikebatch.policy as ours

    public = [name for name in vars(reference) if not name.startswith("_")
              and name not in ("annotations", "math", "dataclass", "Iterable", "List", "Literal", "Sequence")]
    assert {"PolicyFinding", "evaluate_policy", "summarize_preflight", "PolicyConfig", "Level"} <= set(public)
    assert [name for name in public if not hasattr(ours, name)] == []


@pytest.mark.parametrize("name", ["evaluate_policy", "summarize_preflight"])
def test_functions_take_the_reference_parameters(name):
    import spikelab.batch_jobs.policy as reference

    import spikebatch.policy as ours

    def shape(function):
        return [(p.name, p.kind, p.default) for p in inspect.signature(function).parameters.values()]

    assert shape(getattr(ours, name)) == shape(getattr(reference, name))


def test_policy_config_has_the_reference_fields_and_defaults():
    from spikelab.batch_jobs.models import PolicyConfig as Reference

    ours = PolicyConfig()
    for name, field in Reference.model_fields.items():
        assert getattr(ours, name) == field.default, name
    assert (ours.max_runtime_seconds, ours.sleep_duration_threshold_s) == (1_209_600, 86_400)
    # spikebatch's own, off unless a profile asks for them
    assert (ours.block_long_runtime, ours.warn_missing_deadline, ours.block_gpus_over_interactive_limit) == (
        False, False, False)


@pytest.mark.parametrize("field, value", [("max_runtime_seconds", 0), ("sleep_duration_threshold_s", 0),
                                          ("max_interactive_gpus", -1)])
def test_policy_config_refuses_what_the_reference_refuses(field, value):
    with pytest.raises(ValueError, match=field):
        PolicyConfig(**{field: value})


def test_policy_config_also_accepts_no_runtime_limit():
    assert PolicyConfig(max_runtime_seconds=None).max_runtime_seconds is None
    assert evaluate_policy(job(deadline=10**9), profile(max_runtime_seconds=None)) == []


def test_the_old_sleep_threshold_name_is_refused_with_the_new_one():
    with pytest.raises(ValueError, match="renamed sleep_duration_threshold_s"):
        PolicyConfig.model_validate({"sleep_threshold_seconds": 600})


def test_policy_finding_is_built_positionally_with_the_reference_codes():
    finding = PolicyFinding("interactive_gpu_limit", "WARN", "too many GPUs")
    assert (finding.code, finding.level, finding.message) == ("interactive_gpu_limit", "WARN", "too many GPUs")
    assert finding == PolicyFinding(code="interactive_gpu_limit", level="WARN", message="too many GPUs")
    for code in ("sleep_in_batch_job", "request_limit_mismatch", "long_runtime"):
        for level in ("PASS", "WARN", "BLOCK"):
            assert PolicyFinding(code, level, "m").code == code


# --- evaluate_policy ------------------------------------------------------------------


def test_a_compliant_job_has_no_findings():
    assert evaluate_policy(job(), profile()) == []
    assert evaluate_policy(job(deadline=3600), profile(), include_passes=False) == []


def test_include_passes_gives_one_pass_per_check_in_the_reference_order():
    findings = evaluate_policy(job(deadline=3600), profile(), include_passes=True)
    assert pairs(findings) == [("interactive_gpu_limit", "PASS"), ("sleep_in_batch_job", "PASS"),
                               ("request_limit_mismatch", "PASS"), ("long_runtime", "PASS")]
    assert all(f.message for f in findings)


def test_gpus_over_the_interactive_limit_warn():
    assert evaluate_policy(job(gpus=2), profile()) == []
    assert pairs(evaluate_policy(job(gpus=3), profile())) == [("interactive_gpu_limit", "WARN")]
    assert pairs(evaluate_policy(job(gpus=1), profile(max_interactive_gpus=0))) == [("interactive_gpu_limit", "WARN")]


@pytest.mark.parametrize("command, args", [
    (["sleep", "infinity"], []),
    (["sleep", "inf"], []),
    (["sleep"], []),
    (["sleep", "86400"], []),  # the threshold itself is idle
    (["sleep"], ["999999"]),
    (["sh", "-c", "sleep infinity"], []),
    (["sh", "-c"], ["python prep.py && sleep inf"]),
])
def test_sleep_blocks_or_warns_as_the_profile_says(command, args):
    assert pairs(evaluate_policy(job(command, args), profile())) == [("sleep_in_batch_job", "BLOCK")]
    relaxed = profile(block_sleep_infinity=False)
    assert pairs(evaluate_policy(job(command, args), relaxed)) == [("sleep_in_batch_job", "WARN")]


def test_sleep_threshold_is_sleep_duration_threshold_s():
    assert evaluate_policy(job(["sleep", "86399"]), profile()) == []
    assert evaluate_policy(job(["sleep", "59"]), profile(sleep_duration_threshold_s=60)) == []
    assert pairs(evaluate_policy(job(["sleep", "60"]), profile(sleep_duration_threshold_s=60))) == [
        ("sleep_in_batch_job", "BLOCK")]


def test_the_word_sleep_as_an_argument_is_not_a_sleep():
    assert evaluate_policy(job(["python", "-c", "sleep"]), profile()) == []


def test_requests_differing_from_limits_warn_unless_the_profile_says_not_to():
    differing = job(requests_cpu="1", limits_cpu="2")
    [finding] = evaluate_policy(differing, profile())
    assert (finding.code, finding.level) == ("request_limit_mismatch", "WARN")
    assert evaluate_policy(differing, profile(warn_request_limit_mismatch=False)) == []
    memory = evaluate_policy(job(requests_memory="1Gi", limits_memory="2Gi"), profile())
    assert pairs(memory) == [("request_limit_mismatch", "WARN")]


def test_a_deadline_over_the_maximum_warns_and_no_deadline_passes():
    assert evaluate_policy(job(deadline=1_209_600), profile()) == []
    [over] = evaluate_policy(job(deadline=1_209_601), profile())
    assert (over.code, over.level) == ("long_runtime", "WARN")
    assert "1209601" in over.message and "1209600" in over.message
    assert pairs(evaluate_policy(job(deadline=7200), profile(max_runtime_seconds=3600))) == [("long_runtime", "WARN")]
    assert evaluate_policy(job(deadline=None), profile(max_runtime_seconds=60)) == []
    [audit] = evaluate_policy(job(deadline=None), profile(), include_passes=True)[3:]
    assert (audit.code, audit.level) == ("long_runtime", "PASS")


def test_a_profile_may_make_a_long_runtime_block_and_a_missing_deadline_warn():
    strict = profile(max_runtime_seconds=3600, block_long_runtime=True, warn_missing_deadline=True)
    assert pairs(evaluate_policy(job(deadline=7200), strict)) == [("long_runtime", "BLOCK")]
    assert pairs(evaluate_policy(job(deadline=None), strict)) == [("no_active_deadline", "WARN")]


def test_several_problems_come_in_the_reference_order():
    findings = evaluate_policy(job(["sleep", "inf"], gpus=4, deadline=2_000_000, requests_cpu="1", limits_cpu="2"),
                               profile())
    assert pairs(findings) == [("interactive_gpu_limit", "WARN"), ("sleep_in_batch_job", "BLOCK"),
                               ("request_limit_mismatch", "WARN"), ("long_runtime", "WARN")]


def test_codes_are_lower_snake_case_everywhere():
    findings = evaluate_policy(
        JobSpec(container=ContainerSpec(image="lab/x:latest", command=["sh", "-c", "tail -f /dev/null"],
                                        env={"API_TOKEN": "hunter2hunter2"}),
                resources=ResourceSpec(requests_memory="4Gi", limits_memory="2Gi")),
        profile(), include_passes=True)
    assert {f.code for f in findings} >= {"idle_tail_dev_null", "limit_below_request", "image_tag_not_pinned",
                                          "plain_secret_env"}
    assert all(f.code == f.code.lower() and " " not in f.code for f in findings)


# --- summarize_preflight --------------------------------------------------------------


def test_summary_of_nothing_is_pass_and_empty_text():
    status, text = summarize_preflight([])
    assert (status, text) == ("PASS", "")
    assert summarize_preflight(evaluate_policy(job(), profile())) == ("PASS", "")


def test_summary_unpacks_as_the_worst_level_and_one_line_per_finding_in_order():
    findings = [
        PolicyFinding("request_limit_mismatch", "WARN", "tune requests"),
        PolicyFinding("sleep_in_batch_job", "BLOCK", "no sleeping"),
        PolicyFinding("interactive_gpu_limit", "PASS", "fine"),
    ]
    status, text = summarize_preflight(findings)
    assert status == "BLOCK"
    assert text == ("[WARN] request_limit_mismatch: tune requests\n"
                    "[BLOCK] sleep_in_batch_job: no sleeping\n"
                    "[PASS] interactive_gpu_limit: fine")
    assert summarize_preflight(findings[:1])[0] == "WARN"
    assert summarize_preflight(findings[2:]) == ("PASS", "[PASS] interactive_gpu_limit: fine")
    assert len(summarize_preflight(findings)) == 2


def test_summary_takes_any_iterable_of_findings():
    findings = [PolicyFinding("long_runtime", "WARN", "too long")]
    assert summarize_preflight(iter(findings)) == ("WARN", "[WARN] long_runtime: too long")
    assert summarize_preflight(f for f in findings) == ("WARN", "[WARN] long_runtime: too long")


def test_the_reference_preflight_pattern_blocks_on_block():
    """RunSession._preflight in the reference: unpack, compare with "BLOCK", raise."""
    status, summary = summarize_preflight(evaluate_policy(job(["sleep", "infinity"]), profile()))
    assert status == "BLOCK" and summary.startswith("[BLOCK] sleep_in_batch_job: ")
    status, summary = summarize_preflight(evaluate_policy(job(), profile()))
    assert status != "BLOCK"


def test_summary_keeps_spikebatch_attributes():
    summary = summarize_preflight(evaluate_policy(job(["sleep", "inf"], requests_cpu="1", limits_cpu="2"), profile()))
    assert summary.level == "BLOCK" and summary.blocked is True
    assert summary.counts == {"PASS": 0, "WARN": 1, "BLOCK": 1}
    assert summary.lines == summary.text.splitlines()
    assert [f.code for f in summary.findings] == ["sleep_in_batch_job", "request_limit_mismatch"]
    assert summary.to_dict()["lines"] == summary.lines and summary.to_dict()["blocked"] is True
