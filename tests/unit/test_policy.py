"""The policy engine: every rule at each level, thresholds from the profile, shell nesting."""

from __future__ import annotations

import dataclasses
import json
import shlex
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spikebatch.models import (
    ClusterProfile,
    ContainerSpec,
    JobSpec,
    NamespaceHookSpec,
    PolicyConfig,
    ResourceSpec,
)
from spikebatch.domain.policy import (
    BLOCK,
    PASS,
    WARN,
    PolicyFinding,
    effective_resources,
    evaluate_policy,
    summarize_preflight,
)

CPU_IMAGE = "ghcr.io/lab/analysis-cpu:1.4.0"
GPU_IMAGE = "ghcr.io/lab/analysis-gpu:1.4.0"


def make_profile(*, resources=None, images=None, hooks=None, namespace="default", **policy) -> ClusterProfile:
    # An hour rather than the reference's default day keeps the idle-sleep cases short.
    policy.setdefault("sleep_duration_threshold_s", 3600)
    return ClusterProfile(
        name="test",
        namespace=namespace,
        default_images={"cpu": CPU_IMAGE, "gpu": GPU_IMAGE} if images is None else images,
        namespace_hooks=hooks or {},
        resources=resources or ResourceSpec(),
        policy=PolicyConfig(**policy),
    )


def make_job(command=None, args=None, **fields) -> JobSpec:
    container = fields.pop("container", None) or ContainerSpec(command=command or [], args=args or [])
    return JobSpec(container=container, **fields)


def found(job: JobSpec, profile: ClusterProfile) -> dict:
    """code -> level, which is what a user reads off the preflight output."""
    findings = evaluate_policy(job, profile)
    return {f.code: f.level for f in findings}


def gpu_resources(n: int) -> ResourceSpec:
    return ResourceSpec(requests_gpu=n, limits_gpu=n)


# --- a clean job ----------------------------------------------------------------------


def test_clean_job_gets_no_findings():
    findings = evaluate_policy(make_job(["python", "analyze.py"]), make_profile())
    assert findings == []
    summary = summarize_preflight(findings)
    assert summary.level == PASS and not summary.blocked
    assert tuple(summary) == (PASS, "")


def test_include_passes_records_each_reference_check_that_passed():
    job = make_job(["python", "analyze.py"], active_deadline_seconds=600)
    findings = evaluate_policy(job, make_profile(), include_passes=True)
    assert [(f.code, f.level) for f in findings] == [
        ("interactive_gpu_limit", PASS), ("sleep_in_batch_job", PASS),
        ("request_limit_mismatch", PASS), ("long_runtime", PASS)]
    assert "600" in findings[3].message and "1209600" in findings[3].message
    # A check that found something has no PASS beside it; spikebatch's own checks add none.
    found_some = evaluate_policy(make_job(container=ContainerSpec(image="lab/x", command=["sleep", "inf"])),
                                 make_profile(), include_passes=True)
    assert [(f.code, f.level) for f in found_some] == [
        ("interactive_gpu_limit", PASS), ("sleep_in_batch_job", BLOCK), ("request_limit_mismatch", PASS),
        ("long_runtime", PASS), ("image_tag_not_pinned", WARN)]


# --- idle placeholders ----------------------------------------------------------------

IDLE_COMMANDS = [
    (["sleep", "infinity"], "sleep_in_batch_job"),
    (["sleep", "inf"], "sleep_in_batch_job"),
    (["sleep", "INFINITY"], "sleep_in_batch_job"),
    (["/bin/sleep", "infinity"], "sleep_in_batch_job"),
    (["sleep"], "sleep_in_batch_job"),
    (["sleep", "7200"], "sleep_in_batch_job"),
    (["sleep", "1h", "1s"], "sleep_in_batch_job"),
    (["sleep", "0.5d"], "sleep_in_batch_job"),
    (["sleep", "61m"], "sleep_in_batch_job"),
    (["tail", "-f", "/dev/null"], "idle_tail_dev_null"),
    (["tail", "-F", "/dev/null"], "idle_tail_dev_null"),
    (["tail", "--follow=name", "/dev/null"], "idle_tail_dev_null"),
    (["env", "FOO=1", "sleep", "inf"], "sleep_in_batch_job"),
    (["sh", "-c", "sleep infinity"], "sleep_in_batch_job"),
    (["bash", "-lc", "sleep inf"], "sleep_in_batch_job"),
    (["/bin/bash", "-ec", "python prep.py && sleep infinity"], "sleep_in_batch_job"),
    (["bash", "-o", "pipefail", "-c", "pip install x; exec sleep inf"], "sleep_in_batch_job"),
    (["sh", "-c", "python a.py || sleep infinity"], "sleep_in_batch_job"),
    (["sh", "-c", "sleep infinity & wait"], "sleep_in_batch_job"),
    (["sh", "-c", "echo ready | tee /tmp/x; (sleep inf)"], "sleep_in_batch_job"),
    (["sh", "-c", "echo starting\nsleep infinity\n"], "sleep_in_batch_job"),
    (["sh", "-c", "# keep the pod up for debugging\nsleep infinity"], "sleep_in_batch_job"),
    (["sh", "-c", "python a.py  # prepare\nsleep infinity"], "sleep_in_batch_job"),
    (["sh", "-c", "sleep \\\n  infinity"], "sleep_in_batch_job"),
    (["sh", "-c", "FOO=1 sleep 2h"], "sleep_in_batch_job"),
    (["sh", "-c", "sleep"], "sleep_in_batch_job"),
    (["sh", "-c", "tail -f /dev/null"], "idle_tail_dev_null"),
    (["sh", "-c", "while true; do sleep 30; done"], "idle_infinite_loop"),
    (["bash", "-lc", "while :; do sleep 1; done"], "idle_infinite_loop"),
    (["sh", "-c", "while true\ndo\n  date\n  sleep 60\ndone"], "idle_infinite_loop"),
    (["sh", "-c", "until false; do sleep 5; done"], "idle_infinite_loop"),
    (["sh", "-c", "while sleep 60; do :; done"], "idle_infinite_loop"),
    (["sh", "-c", "while :; do :; done"], "idle_infinite_loop"),
    (["bash", "-lc", "sh -c 'sleep infinity'"], "sleep_in_batch_job"),
    (["sh", "-c", "bash -lc \"sh -c 'tail -f /dev/null'\""], "idle_tail_dev_null"),
]


@pytest.mark.parametrize("argv, code", IDLE_COMMANDS, ids=[shlex.join(a) for a, _ in IDLE_COMMANDS])
def test_idle_placeholder_blocks_by_default(argv, code):
    findings = evaluate_policy(make_job(argv), make_profile())
    assert {(f.code, f.level) for f in findings} == {(code, BLOCK)}
    assert "allow_policy_risk" in findings[0].message
    assert summarize_preflight(findings).blocked


@pytest.mark.parametrize("argv, code", IDLE_COMMANDS, ids=[shlex.join(a) for a, _ in IDLE_COMMANDS])
def test_idle_placeholder_only_warns_when_the_profile_allows_it(argv, code):
    result = found(make_job(argv), make_profile(block_sleep_infinity=False))
    assert result == {code: WARN}


@pytest.mark.parametrize(
    "argv",
    [
        ["sleep", "3599"],  # just under the threshold
        ["sleep", "59m", "59s"],  # sums to just under the threshold
        ["sleep", "0.5"],
        ["sleep", "59.9m"],
        ["sh", "-c", "python prep.py && sleep 10 && python run.py"],
        ["sh", "-c", "sleep 30 2>/dev/null"],  # a redirection is not a sleep operand
        ["sh", "-c", "sleep 30 >> /tmp/log"],
        ["sh", "-c", "sleep 10  # wait for the sidecar"],
        ["echo", "use sleep infinity"],
        ["sh", "-c", "echo 'use sleep infinity'"],
        ["bash", "-lc", 'echo "do not run sleep infinity here"; python run.py'],
        ["sh", "-c", "# sleep infinity\npython run.py"],
        ["python", "-c", "print('sleep infinity')"],
        ["grep", "sleep infinity", "notes.txt"],
        ["timeout", "60", "sleep", "infinity"],  # bounded by timeout
        ["tail", "-f", "/var/log/app.log"],  # following a real log
        ["tail", "-n", "5", "/dev/null"],  # not following
        ["sh", "run_forever.sh"],  # a script file, not -c: nothing to inspect
        ["sh", "-c", "for i in 1 2 3; do sleep 1; done"],
        ["sh", "-c", "while read line; do echo $line; done < input.txt"],
    ],
    ids=shlex.join,
)
def test_commands_that_are_not_idle_placeholders_pass(argv):
    assert found(make_job(argv), make_profile()) == {}


def test_sleep_given_as_command_with_its_duration_in_args():
    assert found(make_job(["sleep"], ["infinity"]), make_profile()) == {"sleep_in_batch_job": BLOCK}
    assert found(make_job(["sleep"], ["20"]), make_profile()) == {}
    assert found(make_job(["sh", "-c"], ["sleep inf"]), make_profile()) == {"sleep_in_batch_job": BLOCK}


def test_args_without_a_command_are_inspected_as_the_command():
    # No command and no namespace hook: the args become the process of an image
    # without an entrypoint.
    assert found(make_job(args=["sleep", "infinity"]), make_profile()) == {"sleep_in_batch_job": BLOCK}


def test_sleep_threshold_comes_from_the_profile():
    job = make_job(["sleep", "2h"])
    assert found(job, make_profile(sleep_duration_threshold_s=3600)) == {"sleep_in_batch_job": BLOCK}
    assert found(job, make_profile(sleep_duration_threshold_s=7201)) == {}
    # A sleep of exactly the threshold is idle (the reference's ">=").
    assert found(job, make_profile(sleep_duration_threshold_s=7200)) == {"sleep_in_batch_job": BLOCK}
    assert found(make_job(["sleep", "1"]), make_profile(sleep_duration_threshold_s=1)) == {"sleep_in_batch_job": BLOCK}


def test_long_sleep_message_names_the_duration_and_threshold():
    (finding,) = evaluate_policy(make_job(["sleep", "1h", "1s"]), make_profile())
    assert "3601 s" in finding.message and "3600 s" in finding.message
    assert "run the analysis command itself" in finding.message


def test_repeated_placeholder_is_reported_once():
    findings = evaluate_policy(make_job(["sh", "-c", "sleep inf; sleep inf"]), make_profile())
    assert [f.code for f in findings] == ["sleep_in_batch_job"]


def test_sleep_with_a_non_literal_duration_warns():
    assert found(make_job(["sh", "-c", "sleep $DELAY"]), make_profile()) == {"sleep_duration_unknown": WARN}


def test_unbalanced_quotes_in_a_shell_script_warn_instead_of_crashing():
    result = found(make_job(["sh", "-c", "echo 'unterminated"]), make_profile())
    assert result == {"shell_script_unparseable": WARN}


# --- namespace hooks ------------------------------------------------------------------


def hooked_profile(default_command, namespace="lab") -> ClusterProfile:
    return make_profile(
        namespace=namespace, hooks={"lab": NamespaceHookSpec(default_command=default_command)}
    )


def test_hook_default_command_is_checked_when_the_job_has_no_command():
    profile = hooked_profile(["sleep", "infinity"])
    assert found(make_job(namespace="lab"), profile) == {"sleep_in_batch_job": BLOCK}
    # The job runs in the profile's namespace when it names none, so the hook applies.
    assert found(make_job(), profile) == {"sleep_in_batch_job": BLOCK}


def test_job_args_follow_the_hook_default_command():
    profile = hooked_profile(["sh", "-c"])
    assert found(make_job(args=["sleep inf"], namespace="lab"), profile) == {"sleep_in_batch_job": BLOCK}


def test_job_command_replaces_the_hook_default_command():
    profile = hooked_profile(["sleep", "infinity"])
    assert found(make_job(["python", "run.py"], namespace="lab"), profile) == {}


def test_hook_of_another_namespace_does_not_apply():
    profile = hooked_profile(["sleep", "infinity"])
    assert found(make_job(["python", "run.py"], namespace="other"), profile) == {}
    assert found(make_job(namespace="other"), profile) == {}


# --- GPUs -----------------------------------------------------------------------------


def test_gpus_over_the_interactive_limit_warn_or_block():
    job = make_job(["python", "train.py"], resources=gpu_resources(3), image_profile="gpu")
    assert found(job, make_profile(max_interactive_gpus=2)) == {"interactive_gpu_limit": WARN}
    blocked = evaluate_policy(job, make_profile(max_interactive_gpus=2, block_gpus_over_interactive_limit=True))
    assert [(f.code, f.level) for f in blocked] == [("interactive_gpu_limit", BLOCK)]
    assert "3 GPUs" in blocked[0].message and "at most 2" in blocked[0].message


def test_gpu_limit_comes_from_the_profile():
    job = make_job(["python", "train.py"], resources=gpu_resources(2), image_profile="gpu")
    assert found(job, make_profile(max_interactive_gpus=2)) == {}
    assert found(job, make_profile(max_interactive_gpus=1)) == {"interactive_gpu_limit": WARN}


# --- requests and limits --------------------------------------------------------------


def resources_job(**resources) -> JobSpec:
    return make_job(["python", "run.py"], resources=ResourceSpec(**resources))


def test_request_limit_mismatch_warns_and_the_flag_silences_it():
    job = resources_job(requests_cpu="1", limits_cpu="2")
    findings = evaluate_policy(job, make_profile())
    assert [(f.code, f.level) for f in findings] == [("request_limit_mismatch", WARN)]
    assert "cpu" in findings[0].message
    assert found(job, make_profile(warn_request_limit_mismatch=False)) == {}


def test_memory_mismatch_is_reported_separately_from_cpu():
    job = resources_job(requests_cpu="1", limits_cpu="2", requests_memory="1Gi", limits_memory="2Gi")
    messages = [f.message for f in evaluate_policy(job, make_profile())]
    assert len(messages) == 2
    assert messages[0].startswith("cpu") and messages[1].startswith("memory")


def test_equal_quantities_in_different_units_are_not_a_mismatch():
    job = resources_job(requests_cpu="1", limits_cpu="1000m", requests_memory="2Gi", limits_memory="2048Mi")
    assert found(job, make_profile()) == {}


def test_limit_below_request_blocks_even_with_mismatch_warnings_off():
    job = resources_job(requests_memory="4Gi", limits_memory="2Gi")
    for profile in (make_profile(), make_profile(warn_request_limit_mismatch=False)):
        assert found(job, profile) == {"limit_below_request": BLOCK}


def test_limit_far_above_request_warns_by_the_profile_ratio():
    job = resources_job(requests_cpu="500m", limits_cpu="4")  # 8x
    assert found(job, make_profile(max_limit_request_ratio=4)) == {"limit_far_above_request": WARN}
    assert found(job, make_profile(max_limit_request_ratio=4, warn_request_limit_mismatch=False)) == {
        "limit_far_above_request": WARN
    }
    # Under a laxer ratio it is only an ordinary mismatch.
    assert found(job, make_profile(max_limit_request_ratio=10)) == {"request_limit_mismatch": WARN}


def test_limit_exactly_at_the_ratio_is_only_a_mismatch():
    job = resources_job(requests_memory="1Gi", limits_memory="4Gi")
    assert found(job, make_profile(max_limit_request_ratio=4)) == {"request_limit_mismatch": WARN}


def test_profile_default_resources_are_checked_when_the_job_sets_none():
    profile = make_profile(resources=ResourceSpec(requests_cpu="2", limits_cpu="1"))
    assert found(make_job(["python", "run.py"]), profile) == {"limit_below_request": BLOCK}


# --- effective_resources --------------------------------------------------------------


def test_effective_resources_overlays_only_the_fields_the_job_set():
    profile = make_profile(resources=ResourceSpec(
        requests_cpu="4", limits_cpu="4", requests_memory="16Gi", limits_memory="16Gi",
        node_selector={"pool": "analysis"}))
    job = JobSpec.model_validate({"resources": {"requests_memory": "8Gi", "limits_memory": "8Gi"}})
    merged = effective_resources(job, profile)
    assert (merged.requests_cpu, merged.limits_cpu) == ("4", "4")
    assert (merged.requests_memory, merged.limits_memory) == ("8Gi", "8Gi")
    assert merged.node_selector == {"pool": "analysis"}


def test_effective_resources_is_the_profile_default_when_the_job_sets_nothing():
    profile = make_profile(resources=ResourceSpec(requests_cpu="3", limits_cpu="3"))
    assert effective_resources(make_job(), profile) == profile.resources


def test_effective_resources_takes_the_gpu_pair_together():
    profile = make_profile(resources=gpu_resources(1))
    zero = JobSpec.model_validate({"resources": {"requests_gpu": 0}})
    assert effective_resources(zero, profile).gpus == 0
    assert effective_resources(make_job(), profile).gpus == 1


def test_effective_resources_sees_fields_set_by_assignment():
    job = make_job()
    job.resources.limits_cpu = "2"
    job.resources.requests_cpu = "2"
    assert effective_resources(job, make_profile()).limits_cpu == "2"


# --- runtime --------------------------------------------------------------------------


def test_active_deadline_rules_follow_max_runtime():
    def runtime_job(deadline):
        return make_job(["python", "run.py"], active_deadline_seconds=deadline)

    assert found(runtime_job(None), make_profile()) == {}  # the reference: no deadline passes
    assert found(runtime_job(1_209_600), make_profile()) == {}  # the default maximum, 14 days
    assert found(runtime_job(1_209_601), make_profile()) == {"long_runtime": WARN}
    limited = make_profile(max_runtime_seconds=3600)
    assert found(runtime_job(None), limited) == {}
    assert found(runtime_job(3600), limited) == {}
    assert found(runtime_job(7200), limited) == {"long_runtime": WARN}
    assert found(runtime_job(7200), make_profile(max_runtime_seconds=86400)) == {}
    assert found(runtime_job(10**9), make_profile(max_runtime_seconds=None)) == {}  # no limit


def test_a_profile_may_block_long_runtimes_and_ask_for_a_deadline():
    strict = make_profile(max_runtime_seconds=3600, block_long_runtime=True, warn_missing_deadline=True)
    [over] = evaluate_policy(make_job(["python", "run.py"], active_deadline_seconds=7200), strict)
    assert (over.code, over.level) == ("long_runtime", BLOCK)
    assert "7200" in over.message and "3600" in over.message and "allow_policy_risk" in over.message
    [missing] = evaluate_policy(make_job(["python", "run.py"]), strict)
    assert (missing.code, missing.level) == ("no_active_deadline", WARN)
    assert "set active_deadline_seconds" in missing.message and "3600" in missing.message


# --- images ---------------------------------------------------------------------------


def test_gpu_job_on_the_cpu_image_warns():
    job = make_job(["python", "train.py"], resources=gpu_resources(1))  # default profile: cpu
    assert found(job, make_profile()) == {"gpu_job_on_cpu_image": WARN}
    explicit = make_job(resources=gpu_resources(1), container=ContainerSpec(image=CPU_IMAGE, command=["x"]))
    assert found(explicit, make_profile()) == {"gpu_job_on_cpu_image": WARN}
    assert found(make_job(["x"], resources=gpu_resources(1), image_profile="gpu"), make_profile()) == {
}


def test_gpu_image_without_gpus_warns():
    assert found(make_job(["python", "run.py"], image_profile="gpu"), make_profile()) == {
        "gpu_image_without_gpu": WARN
    }


def test_one_image_for_both_profiles_says_nothing_about_gpus():
    profile = make_profile(images={"cpu": CPU_IMAGE, "gpu": CPU_IMAGE})
    assert found(make_job(["x"], resources=gpu_resources(1)), profile) == {}


@pytest.mark.parametrize(
    "image, ok",
    [
        ("python:3.11-slim", True),
        ("registry.local:5000/lab/analysis:2.0", True),
        ("ghcr.io/lab/analysis@sha256:" + "a" * 64, True),
        ("python:latest", False),
        ("python", False),
        ("registry.local:5000/lab/analysis", False),  # the port is not a tag
    ],
)
def test_unpinned_images_warn(image, ok):
    job = make_job(container=ContainerSpec(image=image, command=["python", "run.py"]))
    result = found(job, make_profile())
    assert result == ({} if ok else {"image_tag_not_pinned": WARN})


def test_unpinned_default_image_warns_too():
    profile = make_profile(images={"cpu": "lab/analysis:latest"})
    assert found(make_job(["python", "run.py"]), profile) == {"image_tag_not_pinned": WARN}


def test_missing_image_blocks():
    findings = evaluate_policy(make_job(["python", "run.py"]), make_profile(images={}))
    assert [(f.code, f.level) for f in findings] == [("image_missing", BLOCK)]
    assert "container.image" in findings[0].message
    only_cpu = make_profile(images={"cpu": CPU_IMAGE})
    assert found(make_job(["x"], image_profile="gpu"), only_cpu) == {"image_missing": BLOCK}


def test_missing_image_message_says_how_to_get_one():
    [finding] = evaluate_policy(make_job(["python", "run.py"]), make_profile(images={}))
    # one line that names the field and the fix
    assert "\n" not in finding.message
    assert "default_images.cpu" in finding.message
    assert "spikebatch image build --tag <registry>/spikebatch-runner:<version> --push" in finding.message
    assert "put the default_images line it prints in the profile" in finding.message
    [gpu] = evaluate_policy(make_job(["python", "run.py"], image_profile="gpu"), make_profile(images={}))
    assert "default_images.gpu" in gpu.message
    assert "spikebatch image build --gpu --tag <registry>/spikebatch-runner:<version>-gpu --push" in gpu.message


@pytest.mark.parametrize("name", ["defaults", "nrp"])
def test_builtin_cluster_profiles_block_a_job_without_image_with_the_fix(name):
    from spikebatch.profiles import load_profile_from_name

    profile = load_profile_from_name(name, env={})
    job = make_job(["python", "run.py"], namespace=profile.namespace)
    assert found(job, profile)["image_missing"] == BLOCK


def test_a_local_backend_needs_no_image():
    # The local backend runs the command with this machine's interpreter.
    local = ClusterProfile(name="laptop", backend="local", storage_backend="local")
    assert found(make_job(["python", "run.py"]), local) == {}


# --- several rules at once, and the summary -------------------------------------------


def test_all_problems_of_one_job_are_reported_together():
    job = make_job(
        ["sh", "-c", "sleep infinity"],
        resources=ResourceSpec(requests_cpu="1", limits_cpu="2", requests_gpu=4, limits_gpu=4),
        active_deadline_seconds=10**6,
        container=ContainerSpec(image="lab/gpu:latest", command=["sleep", "inf"]),
    )
    result = found(job, make_profile(max_runtime_seconds=3600))
    assert result == {
        "sleep_in_batch_job": BLOCK,
        "request_limit_mismatch": WARN,
        "interactive_gpu_limit": WARN,
        "long_runtime": WARN,
        "image_tag_not_pinned": WARN,
    }


def test_summary_keeps_the_given_order_and_counts_levels():
    findings = [
        PolicyFinding("image_tag_not_pinned", WARN, "image x is untagged; pin it"),
        PolicyFinding("sleep_in_batch_job", BLOCK, "command runs 'sleep infinity'; run the analysis"),
        PolicyFinding("request_limit_mismatch", WARN, "cpu differ; set equal"),
    ]
    summary = summarize_preflight(findings)
    assert summary.level == BLOCK and summary.blocked
    assert summary.counts == {"PASS": 0, "WARN": 2, "BLOCK": 1}
    assert summary.lines == [
        "[WARN] image_tag_not_pinned: image x is untagged; pin it",
        "[BLOCK] sleep_in_batch_job: command runs 'sleep infinity'; run the analysis",
        "[WARN] request_limit_mismatch: cpu differ; set equal",
    ]
    level, text = summary
    assert (level, text.splitlines()) == (BLOCK, summary.lines) and summary.text == text
    assert summary.findings == findings
    as_dict = json.loads(json.dumps(summary.to_dict()))
    assert as_dict["level"] == "BLOCK" and as_dict["blocked"] is True
    assert as_dict["counts"] == {"PASS": 0, "WARN": 2, "BLOCK": 1}
    assert as_dict["lines"] == summary.lines
    assert as_dict["findings"][0] == {
        "code": "image_tag_not_pinned", "level": "WARN", "message": "image x is untagged; pin it"
    }


def test_summary_of_warnings_only_is_not_blocked():
    summary = summarize_preflight(evaluate_policy(make_job(["sleep", "inf"]), make_profile(block_sleep_infinity=False)))
    assert summary.level == WARN and not summary.blocked
    assert summary.counts == {"PASS": 0, "WARN": 1, "BLOCK": 0}


def test_summary_of_a_clean_job():
    summary = summarize_preflight(evaluate_policy(make_job(["python", "run.py"]), make_profile()))
    assert summary.level == PASS and not summary.blocked
    assert summary.counts == {"PASS": 0, "WARN": 0, "BLOCK": 0}
    assert summary.lines == [] and summary.text == ""


def test_summary_of_no_findings_is_pass():
    summary = summarize_preflight([])
    assert (summary.level, summary.blocked, summary.lines) == (PASS, False, [])


def test_finding_is_frozen_and_validated():
    finding = PolicyFinding("image_missing", BLOCK, "no image;\nset one")
    assert finding.message == "no image; set one"  # one CLI line, always
    with pytest.raises(dataclasses.FrozenInstanceError):
        finding.level = WARN  # type: ignore[misc]
    with pytest.raises(ValueError, match="level"):
        PolicyFinding("image_missing", "ERROR", "x")
    for bad in ("image-missing", "IMAGE_MISSING", "_x", "x__y", ""):
        with pytest.raises(ValueError, match="lower_snake_case"):
            PolicyFinding(bad, BLOCK, "x")


def test_every_message_is_one_line_with_a_fix():
    job = make_job(
        ["sh", "-c", "python a.py\nsleep infinity\n"],
        resources=ResourceSpec(requests_memory="4Gi", limits_memory="2Gi", requests_gpu=1, limits_gpu=1),
    )
    findings = evaluate_policy(job, make_profile(max_runtime_seconds=60, max_interactive_gpus=0,
                                                 warn_missing_deadline=True))
    assert len(findings) == 5
    for finding in findings:
        assert "\n" not in finding.message
        assert any(word in finding.message for word in ("set ", "raise ", "request at most", "run the analysis"))


# --- properties -----------------------------------------------------------------------

UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
operand = st.tuples(
    st.integers(min_value=0, max_value=5000),
    st.one_of(st.none(), st.integers(min_value=0, max_value=999)),
    st.sampled_from(sorted(UNIT_SECONDS)),
)


@settings(max_examples=150, deadline=None)
@given(operands=st.lists(operand, min_size=1, max_size=4), threshold=st.integers(min_value=1, max_value=200_000))
def test_sleep_duration_is_the_gnu_sum_of_its_operands(operands, threshold):
    args, total = [], Fraction(0)
    for whole, fraction, unit in operands:
        number = f"{whole}.{fraction}" if fraction is not None else str(whole)
        args.append(number + unit)
        total += Fraction(number) * UNIT_SECONDS[unit]
    profile = make_profile(sleep_duration_threshold_s=threshold)
    expected = {"sleep_in_batch_job": BLOCK} if total >= threshold else {}
    argv = ["sleep", *args]
    assert found(make_job(argv), profile) == expected
    # The same sleep inside a shell string gets the same verdict.
    assert found(make_job(["sh", "-c", shlex.join(argv)]), profile) == expected
    assert found(make_job(["bash", "-lc", f"python prep.py && {shlex.join(argv)}"]), profile) == expected


@settings(max_examples=150, deadline=None)
@given(text=st.text(max_size=60))
def test_text_that_is_only_echoed_never_counts_as_idle(text):
    text = "sleep infinity " + text
    for argv in (["echo", text], ["sh", "-c", "echo " + shlex.quote(text)],
                 ["bash", "-lc", "printf '%s\\n' " + shlex.quote(text) + " && python run.py"]):
        codes = set(found(make_job(argv), make_profile()))
        assert not codes & {"sleep_in_batch_job", "idle_tail_dev_null", "idle_infinite_loop"}, argv


finding_strategy = st.builds(
    PolicyFinding,
    code=st.sampled_from(["long_runtime", "sleep_in_batch_job", "image_missing", "no_active_deadline"]),
    level=st.sampled_from([PASS, WARN, BLOCK]),
    message=st.text(alphabet="abc ;:'", min_size=1, max_size=20),
)


@given(findings=st.lists(finding_strategy, max_size=8))
def test_summary_level_is_the_worst_finding(findings):
    summary = summarize_preflight(findings)
    rank = {PASS: 0, WARN: 1, BLOCK: 2}
    assert summary.level == max((f.level for f in findings), key=rank.__getitem__, default=PASS)
    assert summary.blocked == any(f.level == BLOCK for f in findings)
    assert sum(summary.counts.values()) == len(summary.lines) == len(findings)
    assert summary.lines == [f"[{f.level}] {f.code}: {f.message}" for f in findings]  # the given order
    assert tuple(summary) == (summary.level, "\n".join(summary.lines))
