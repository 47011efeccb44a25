"""Cluster policy preflight checks for job specs.

Thresholds are read from the active ClusterProfile (``profile.policy``) so that
different clusters can enforce different rules. Every finding is PASS, WARN or BLOCK
with a lower-case snake code; the session refuses a BLOCK unless the user passes
allow_policy_risk. The four checks of spikelab.batch_jobs keep its codes
(``interactive_gpu_limit``, ``sleep_in_batch_job``, ``request_limit_mismatch``,
``long_runtime``) and its levels; spikebatch's extra checks have codes of their own in
the same style. This module is pure: it inspects the spec and the profile and never
runs or reads anything.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal
from typing import Callable, Dict, Iterable, List, Literal, Optional, Tuple

from . import idle_commands as idle
from .effective import effective_argv, effective_env, effective_image, effective_resources, image_build_hint
from .models import ClusterProfile, JobSpec, ResourceSpec
from .quantity import parse_quantity
from .redaction import credential_shape, is_sensitive_key

Level = Literal["PASS", "WARN", "BLOCK"]
PASS, WARN, BLOCK = "PASS", "WARN", "BLOCK"
LEVELS = (PASS, WARN, BLOCK)
_SEVERITY = {PASS: 0, WARN: 1, BLOCK: 2}

# The reference's checks, with its codes.
INTERACTIVE_GPU_LIMIT = "interactive_gpu_limit"
SLEEP_IN_BATCH_JOB = "sleep_in_batch_job"
REQUEST_LIMIT_MISMATCH = "request_limit_mismatch"
LONG_RUNTIME = "long_runtime"
REFERENCE_CHECKS = (INTERACTIVE_GPU_LIMIT, SLEEP_IN_BATCH_JOB, REQUEST_LIMIT_MISMATCH, LONG_RUNTIME)
# spikebatch's own.
IDLE_TAIL_DEV_NULL = "idle_tail_dev_null"
IDLE_INFINITE_LOOP = "idle_infinite_loop"
SLEEP_DURATION_UNKNOWN = "sleep_duration_unknown"
SHELL_SCRIPT_UNPARSEABLE = "shell_script_unparseable"
LIMIT_FAR_ABOVE_REQUEST = "limit_far_above_request"
LIMIT_BELOW_REQUEST = "limit_below_request"
NO_ACTIVE_DEADLINE = "no_active_deadline"
GPU_JOB_ON_CPU_IMAGE = "gpu_job_on_cpu_image"
GPU_IMAGE_WITHOUT_GPU = "gpu_image_without_gpu"
IMAGE_TAG_NOT_PINNED = "image_tag_not_pinned"
IMAGE_MISSING = "image_missing"
PLAIN_SECRET_ENV = "plain_secret_env"

_CODE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")
_RISK = "or pass allow_policy_risk"


@dataclass(frozen=True)
class PolicyFinding:
    """One preflight result: a stable lower_snake code, a level and a one-line message
    (``PolicyFinding(code, level, message)``, as spikelab.batch_jobs)."""

    code: str
    level: Level
    message: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"policy level {self.level!r} must be one of {', '.join(LEVELS)}")
        if not isinstance(self.code, str) or not _CODE.match(self.code):
            raise ValueError(f"policy code {self.code!r} must be lower_snake_case, e.g. 'sleep_in_batch_job'")
        # Findings end up on one CLI line each; a script's newlines must not split them.
        object.__setattr__(self, "message", " ".join(str(self.message).split()))

    @property
    def line(self) -> str:
        """``[LEVEL] code: message``, the form every output of findings uses."""
        return f"[{self.level}] {self.code}: {self.message}"


class PreflightSummary(Tuple[str, str]):
    """The verdict over a list of findings: a ``(level, text)`` pair as
    spikelab.batch_jobs' ``summarize_preflight`` returns (``level, text = summary``),
    which also carries ``.level``, ``.text``, ``.blocked``, ``.counts``, ``.lines``,
    ``.findings`` and ``.to_dict()`` for the CLI and SubmitResult metadata."""

    def __new__(cls, findings: Iterable[PolicyFinding] = ()) -> "PreflightSummary":
        kept = tuple(findings)
        worst = max((f.level for f in kept), key=_SEVERITY.__getitem__, default=PASS)
        self = super().__new__(cls, (worst, "\n".join(f.line for f in kept)))
        self._findings = kept
        return self

    def __getnewargs__(self) -> Tuple[Tuple[PolicyFinding, ...]]:  # copy and pickle
        return (self._findings,)

    @property
    def level(self) -> str:
        """The worst level: BLOCK, else WARN, else PASS (also for no findings)."""
        return self[0]

    @property
    def text(self) -> str:
        """One ``[LEVEL] code: message`` line per finding, in the given order ("" for none)."""
        return self[1]

    @property
    def blocked(self) -> bool:
        return self[0] == BLOCK

    @property
    def findings(self) -> List[PolicyFinding]:
        return list(self._findings)

    @property
    def counts(self) -> Dict[str, int]:
        return {level: sum(1 for f in self._findings if f.level == level) for level in LEVELS}

    @property
    def lines(self) -> List[str]:
        return [f.line for f in self._findings]

    def to_dict(self) -> Dict[str, object]:
        return {
            "level": self.level,
            "blocked": self.blocked,
            "counts": self.counts,
            "lines": self.lines,
            "findings": [{"code": f.code, "level": f.level, "message": f.message} for f in self._findings],
        }

    def __repr__(self) -> str:
        return f"PreflightSummary(level={self.level!r}, findings={list(self._findings)!r})"


def summarize_preflight(findings: Iterable[PolicyFinding]) -> PreflightSummary:
    """The worst level and one ``[LEVEL] code: message`` line per finding, in the given
    order: unpacks as ``(level, text)``; ``("PASS", "")`` for no findings."""
    return PreflightSummary(findings)


# --- idle placeholders ----------------------------------------------------------------


def _idle_findings(job_spec: JobSpec, profile: ClusterProfile) -> List[PolicyFinding]:
    policy = profile.policy
    level = BLOCK if policy.block_sleep_infinity else WARN
    codes = {idle.TAIL_DEV_NULL: IDLE_TAIL_DEV_NULL, idle.INFINITE_LOOP: IDLE_INFINITE_LOOP}
    findings: List[PolicyFinding] = []
    for kind, detail in idle.idle_hits(effective_argv(job_spec, profile), policy.sleep_duration_threshold_s):
        if kind == idle.SLEEP_UNKNOWN:
            findings.append(PolicyFinding(SLEEP_DURATION_UNKNOWN, WARN, f"command {detail}; the policy cannot "
                                          "check it for an idle placeholder; use a literal duration"))
        elif kind == idle.UNPARSEABLE:
            findings.append(PolicyFinding(SHELL_SCRIPT_UNPARSEABLE, WARN, f"the {detail}; the shell will likely "
                                          "reject it too; fix the quoting"))
        else:
            fix = f", {_RISK}" if level == BLOCK else ""
            if level == WARN:
                fix += " (block_sleep_infinity is off in this profile: the job may run)"
            code = SLEEP_IN_BATCH_JOB if kind in idle.SLEEPS else codes[kind]
            findings.append(PolicyFinding(code, level, f"command {detail}, an idle placeholder that holds "
                                          f"cluster resources without doing work; run the analysis command itself{fix}"))
    return findings


# --- resources, runtime, images -------------------------------------------------------


def _gpu_findings(resources: ResourceSpec, profile: ClusterProfile) -> List[PolicyFinding]:
    policy, gpus = profile.policy, resources.gpus
    if gpus <= policy.max_interactive_gpus:
        return []
    level = BLOCK if policy.block_gpus_over_interactive_limit else WARN
    return [PolicyFinding(INTERACTIVE_GPU_LIMIT, level, (
        f"job requests {gpus} GPUs, over this cluster's interactive limit of "
        f"{policy.max_interactive_gpus}; request at most {policy.max_interactive_gpus}"
        + (f", {_RISK}" if level == BLOCK else "")))]


def _resource_findings(resources: ResourceSpec, profile: ClusterProfile) -> List[PolicyFinding]:
    policy = profile.policy
    findings: List[PolicyFinding] = []
    for kind in ("cpu", "memory"):
        req_text, lim_text = getattr(resources, f"requests_{kind}"), getattr(resources, f"limits_{kind}")
        request, limit = parse_quantity(req_text), parse_quantity(lim_text)
        pair = f"{kind} limit {lim_text} and request {req_text}"
        # The stronger finding replaces the weaker: a limit below or far above its
        # request is also a mismatch, and saying so twice is noise.
        if limit < request:
            findings.append(PolicyFinding(LIMIT_BELOW_REQUEST, BLOCK, (
                f"{pair}: the limit is below the request and Kubernetes rejects the Job; "
                f"raise limits_{kind} to at least requests_{kind}")))
        elif limit > request * Decimal(str(policy.max_limit_request_ratio)):
            findings.append(PolicyFinding(LIMIT_FAR_ABOVE_REQUEST, WARN, (
                f"{pair}: the limit is more than {policy.max_limit_request_ratio:g}x the request, "
                f"so the node may be overcommitted; raise requests_{kind} or lower limits_{kind}")))
        elif limit != request and policy.warn_request_limit_mismatch:
            findings.append(PolicyFinding(REQUEST_LIMIT_MISMATCH, WARN, (
                f"{pair} differ, so the pod is not Guaranteed QoS and may be throttled or "
                f"evicted; set requests_{kind} equal to limits_{kind}")))
    return findings


def _runtime_findings(job_spec: JobSpec, profile: ClusterProfile) -> List[PolicyFinding]:
    policy = profile.policy
    limit, deadline = policy.max_runtime_seconds, job_spec.active_deadline_seconds
    if not deadline:
        if not policy.warn_missing_deadline:
            return []
        allowed = f" (this cluster allows at most {limit})" if limit is not None else ""
        return [PolicyFinding(NO_ACTIVE_DEADLINE, WARN, (
            f"job has no active_deadline_seconds, so a hung job runs until someone deletes it; "
            f"set active_deadline_seconds{allowed}"))]
    if limit is None or deadline <= limit:
        return []
    level = BLOCK if policy.block_long_runtime else WARN
    return [PolicyFinding(LONG_RUNTIME, level, (
        f"active_deadline_seconds {deadline} is over this cluster's maximum runtime of "
        f"{limit} s; lower it to {limit} or less" + (f", {_RISK}" if level == BLOCK else "")))]


def _image_tag(image: str) -> Optional[str]:
    """The tag of an image reference (None when untagged); a digest counts as pinned."""
    if "@" in image:
        return "@digest"
    last = image.rsplit("/", 1)[-1]  # a registry port ("host:5000/x") is not a tag
    return last.split(":", 1)[1] if ":" in last else None


def _image_findings(job_spec: JobSpec, profile: ClusterProfile, gpus: int) -> List[PolicyFinding]:
    image = effective_image(job_spec, profile)
    if not image:
        if not profile.runs_containers:
            return []  # the local backend runs the command with this interpreter, no image
        key = job_spec.image_profile or profile.default_image_profile
        return [PolicyFinding(IMAGE_MISSING, BLOCK, (
            f"no container image: container.image is unset and profile {profile.name!r} has no "
            f"default_images.{key}; {image_build_hint(key)} (or set container.image)"))]
    findings: List[PolicyFinding] = []
    cpu_image, gpu_image = profile.default_images.get("cpu"), profile.default_images.get("gpu")
    if cpu_image != gpu_image:  # one image for both profiles says nothing about GPUs
        if gpus > 0 and image == cpu_image:
            # Each fix names the job config's field and the command line's option.
            fix = ("set image_profile: gpu (--image-profile gpu) or a GPU image (--image)" if gpu_image else
                   f"profile {profile.name!r} has no default_images.gpu: {image_build_hint('gpu')}, "
                   "or name a GPU image (--image)")
            findings.append(PolicyFinding(GPU_JOB_ON_CPU_IMAGE, WARN, (
                f"job requests {gpus} GPUs but runs the CPU image {image}, which likely lacks CUDA; {fix}")))
        if gpus == 0 and image == gpu_image:
            findings.append(PolicyFinding(GPU_IMAGE_WITHOUT_GPU, WARN, (
                f"job runs the GPU image {image} with no GPUs requested; set requests_gpu and "
                "limits_gpu (--gpus N), or use image_profile: cpu (--image-profile cpu)")))
    tag = _image_tag(image)
    if tag is None or tag == "latest":
        findings.append(PolicyFinding(IMAGE_TAG_NOT_PINNED, WARN, (
            f"image {image} is {'untagged' if tag is None else 'tagged :latest'}, so a rerun may "
            "use different code and the analysis is not reproducible; pin a version tag or digest")))
    return findings


# --- credentials in plain env values ---------------------------------------------------


def _secret_env_findings(job_spec: JobSpec, profile: ClusterProfile) -> List[PolicyFinding]:
    """A WARN for each plain env value that is likely a credential, by its variable's
    name (MY_API_TOKEN, DB_PASSWORD) or by the value's shape (an AWS access key id, a
    long random token). A plain value is written into the Job, where anyone who may
    read Jobs in the namespace sees it; a secret reference is not. The message names
    the variable, never the value."""
    from_job = set(job_spec.container.env)
    findings: List[PolicyFinding] = []
    for name, value in effective_env(job_spec, profile).items():
        if not isinstance(value, str) or not value.strip():
            continue  # a secret reference, or nothing to hide
        shape = credential_shape(value)
        if not shape and not is_sensitive_key(name):
            continue
        source = "" if name in from_job else " (from the profile's namespace hook env_defaults)"
        why = f"looks like {shape}" if shape else "is named like a secret"
        findings.append(PolicyFinding(PLAIN_SECRET_ENV, WARN, (
            f"environment variable {name}{source} has a plain value that {why}; a plain value is written "
            "into the Job, where anyone who may read Jobs in the namespace sees it: store it in a "
            f"Kubernetes secret and reference it instead, {name}: {{secret_name: <secret>, key: <key>}}")))
    return findings


# --- the checks, in the reference's order, then spikebatch's own --------------------


def _pass_message(code: str, job_spec: JobSpec, profile: ClusterProfile, resources: ResourceSpec) -> str:
    policy = profile.policy
    if code == INTERACTIVE_GPU_LIMIT:
        return (f"job requests {resources.gpus} GPUs, within this cluster's interactive limit of "
                f"{policy.max_interactive_gpus}")
    if code == SLEEP_IN_BATCH_JOB:
        return "no idle placeholder (sleep infinity, a long sleep, tail -f /dev/null, an endless loop) in the command"
    if code == REQUEST_LIMIT_MISMATCH:
        return "CPU and memory requests and limits fit this cluster's policy"
    deadline, limit = job_spec.active_deadline_seconds, policy.max_runtime_seconds
    if not deadline:
        return "no active_deadline_seconds set; the cluster's own limits apply"
    if limit is None:
        return f"active_deadline_seconds {deadline}; this cluster sets no maximum runtime"
    return f"active_deadline_seconds {deadline} is within this cluster's maximum runtime of {limit} s"


def evaluate_policy(job_spec: JobSpec, profile: ClusterProfile, *,
                    include_passes: bool = False) -> List[PolicyFinding]:
    """The WARN and BLOCK findings for a job on a cluster: ``[]`` when the job fits the
    policy. ``include_passes=True`` adds a PASS finding for each of the reference's
    checks that found nothing (an audit record that it ran)."""
    resources = effective_resources(job_spec, profile)
    groups: List[Tuple[Optional[str], Callable[[], List[PolicyFinding]]]] = [
        (INTERACTIVE_GPU_LIMIT, lambda: _gpu_findings(resources, profile)),
        (SLEEP_IN_BATCH_JOB, lambda: _idle_findings(job_spec, profile)),
        (REQUEST_LIMIT_MISMATCH, lambda: _resource_findings(resources, profile)),
        (LONG_RUNTIME, lambda: _runtime_findings(job_spec, profile)),
        (None, lambda: _image_findings(job_spec, profile, resources.gpus)),
        (None, lambda: _secret_env_findings(job_spec, profile)),
    ]
    findings: List[PolicyFinding] = []
    for check, run in groups:
        found = run()
        if not found and include_passes and check is not None:
            found = [PolicyFinding(check, PASS, _pass_message(check, job_spec, profile, resources))]
        findings.extend(found)
    return list(dict.fromkeys(findings))  # `sleep inf; sleep inf` is one problem, not two
