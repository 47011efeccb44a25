"""Cluster policy preflight checks for job specs.

Thresholds are read from the active ClusterProfile (``profile.policy``) so that
different clusters can enforce different rules. Every finding is PASS, WARN or BLOCK;
the session refuses a BLOCK unless the user passes allow_policy_risk. This module is
pure: it inspects the spec and the profile and never runs or reads anything.
"""

from __future__ import annotations

import posixpath
import re
import shlex
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Dict, List, Optional, Sequence, Tuple

from .effective import effective_argv, effective_env, effective_image, effective_resources, image_build_hint
from .models import ClusterProfile, JobSpec, ResourceSpec
from .quantity import parse_quantity
from .redaction import credential_shape, is_sensitive_key

PASS, WARN, BLOCK = "PASS", "WARN", "BLOCK"
LEVELS = (PASS, WARN, BLOCK)
_SEVERITY = {PASS: 0, WARN: 1, BLOCK: 2}

# Finding codes.
POLICY_OK = "POLICY_OK"
IDLE_SLEEP_INFINITY = "IDLE_SLEEP_INFINITY"
IDLE_SLEEP_BARE = "IDLE_SLEEP_BARE"
IDLE_SLEEP_LONG = "IDLE_SLEEP_LONG"
IDLE_TAIL_DEV_NULL = "IDLE_TAIL_DEV_NULL"
IDLE_INFINITE_LOOP = "IDLE_INFINITE_LOOP"
SLEEP_DURATION_UNKNOWN = "SLEEP_DURATION_UNKNOWN"
SHELL_SCRIPT_UNPARSEABLE = "SHELL_SCRIPT_UNPARSEABLE"
GPU_OVER_INTERACTIVE_LIMIT = "GPU_OVER_INTERACTIVE_LIMIT"
REQUEST_LIMIT_MISMATCH = "REQUEST_LIMIT_MISMATCH"
LIMIT_FAR_ABOVE_REQUEST = "LIMIT_FAR_ABOVE_REQUEST"
LIMIT_BELOW_REQUEST = "LIMIT_BELOW_REQUEST"
DEADLINE_OVER_MAX_RUNTIME = "DEADLINE_OVER_MAX_RUNTIME"
NO_ACTIVE_DEADLINE = "NO_ACTIVE_DEADLINE"
GPU_JOB_ON_CPU_IMAGE = "GPU_JOB_ON_CPU_IMAGE"
GPU_IMAGE_WITHOUT_GPU = "GPU_IMAGE_WITHOUT_GPU"
IMAGE_TAG_NOT_PINNED = "IMAGE_TAG_NOT_PINNED"
IMAGE_MISSING = "IMAGE_MISSING"
PLAIN_SECRET_ENV = "PLAIN_SECRET_ENV"

_CODE = re.compile(r"^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$")
_RISK = "or pass allow_policy_risk"


@dataclass(frozen=True)
class PolicyFinding:
    """One preflight result: a stable UPPER_SNAKE code, a level and a one-line message."""

    code: str
    level: str
    message: str

    def __post_init__(self) -> None:
        if self.level not in LEVELS:
            raise ValueError(f"policy level {self.level!r} must be one of {', '.join(LEVELS)}")
        if not _CODE.match(self.code):
            raise ValueError(f"policy code {self.code!r} must be UPPER_SNAKE_CASE")
        # Findings end up on one CLI line each; a script's newlines must not split them.
        object.__setattr__(self, "message", " ".join(str(self.message).split()))


@dataclass(frozen=True)
class PreflightSummary:
    """The verdict over a list of findings, for the CLI and for SubmitResult metadata."""

    level: str
    blocked: bool
    counts: Dict[str, int]
    lines: List[str]
    findings: List[PolicyFinding] = field(default_factory=list)

    def to_dict(self) -> Dict[str, object]:
        return {
            "level": self.level,
            "blocked": self.blocked,
            "counts": dict(self.counts),
            "lines": list(self.lines),
            "findings": [
                {"code": f.code, "level": f.level, "message": f.message} for f in self.findings
            ],
        }


def summarize_preflight(findings: Sequence[PolicyFinding]) -> PreflightSummary:
    """Worst level, BLOCK flag, per-level counts and 'LEVEL CODE: message' lines, worst first."""
    ordered = sorted(findings, key=lambda f: -_SEVERITY[f.level])  # stable within a level
    counts = {level: sum(1 for f in findings if f.level == level) for level in LEVELS}
    worst = ordered[0].level if ordered else PASS
    return PreflightSummary(
        level=worst,
        blocked=worst == BLOCK,
        counts=counts,
        lines=[f"{f.level} {f.code}: {f.message}" for f in ordered],
        findings=list(ordered),
    )


# --- idle placeholder detection -------------------------------------------------------

_SHELLS = {"sh", "bash", "dash", "zsh", "ash", "ksh", "mksh"}
# Words that run the rest of the line as the real command.
_WRAPPERS = {"exec", "nohup", "command", "builtin", "time", "busybox", "do", "then",
             "else", "elif", "if", "{", "}", "!"}
_ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
_OPERATOR_CHARS = ";&|()<>\n"
# GNU sleep: a number (decimals, exponent, inf/infinity) with an optional s/m/h/d unit.
_DURATION = re.compile(
    r"^(?P<num>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|(?i:inf(?:inity)?))(?P<unit>[smhd]?)$"
)
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}
_NOOPS = {":", "true"}
_MAX_NESTING = 8

_Hit = Tuple[str, str]  # (code, description) of one idle pattern found in a command


def _show(argv: Sequence[str]) -> str:
    text = " ".join(" ".join(argv).split())
    return text if len(text) <= 80 else text[:77] + "..."


def _fmt_seconds(value: Decimal) -> str:
    return f"{value.normalize():f}" if value == value.to_integral_value() else f"{value:f}"


def _sleep_seconds(args: Sequence[str]) -> Optional[Decimal]:
    """Total GNU sleep duration in seconds (sums its operands), or None if not literal."""
    total = Decimal(0)
    for arg in args:
        if arg == "--":
            continue
        match = _DURATION.match(arg)
        if not match:
            return None
        total += Decimal(match.group("num")) * _UNIT_SECONDS[match.group("unit")]
    return total


def _strip_wrappers(argv: List[str]) -> List[str]:
    while argv:
        head = posixpath.basename(argv[0])
        if head in _WRAPPERS or _ASSIGNMENT.match(argv[0]):
            argv = argv[1:]
        elif head == "env":
            argv = argv[1:]
            while argv and (argv[0].startswith("-") or _ASSIGNMENT.match(argv[0])):
                takes_value = argv[0] in ("-u", "--unset", "-C", "--chdir")
                argv = argv[2:] if takes_value else argv[1:]
        else:
            return argv
    return argv


def _shell_script(args: Sequence[str]) -> Optional[str]:
    """The script of `sh -c SCRIPT` (also -lc, -ec, -o pipefail -c ...), else None."""
    in_c_mode, rest = False, list(args)
    while rest:
        arg = rest.pop(0)
        if arg in ("-o", "+o"):
            rest = rest[1:]  # its option name
        elif arg.startswith(("-", "+")) and not arg.startswith("--"):
            in_c_mode = in_c_mode or "c" in arg[1:]
        elif not arg.startswith("--"):
            return arg if in_c_mode else None  # no -c: a script file we cannot read
    return None


def _shell_segments(script: str) -> List[List[str]]:
    """Split a shell script into simple commands on ; && || | & ( ) and newlines.

    Raises ValueError (from shlex) on unbalanced quotes.
    """
    # Line continuations join lines; an fd number glued to a redirection ("2>") is not
    # an operand; newlines are doubled because shlex swallows the one ending a comment.
    text = script.replace("\\\n", " ")
    text = re.sub(r"(^|[\s;&|()])\d+(?=[<>])", r"\1", text)
    text = text.replace("\n", "\n\n")
    lexer = shlex.shlex(text, posix=True, punctuation_chars=_OPERATOR_CHARS)
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    tokens = iter(lexer)
    segments: List[List[str]] = [[]]
    for token in tokens:
        if not (token and set(token) <= set(_OPERATOR_CHARS)):
            segments[-1].append(token)
        elif "<" in token or ">" in token:
            next(tokens, None)  # a redirection's target is not an argument
        else:
            segments.append([])
    return [segment for segment in segments if segment]


def _loop_hits(segments: List[List[str]]) -> List[_Hit]:
    """`while true` / `while :` / `until false` / `while sleep N` loops that idle forever."""
    hits: List[_Hit] = []
    for start, segment in enumerate(segments):
        segment = _strip_wrappers(segment)
        if not segment:
            continue
        head, cond = segment[0], _strip_wrappers(segment[1:])
        forever = (head == "while" and cond and (cond[0] in _NOOPS or cond[0] == "sleep")) or (
            head == "until" and cond[:1] == ["false"]
        )
        if not forever:
            continue
        depth, body = 1, []
        for inner in map(_strip_wrappers, segments[start + 1:]):
            if inner[:1] and inner[0] in ("while", "until", "for", "select"):
                depth += 1
            elif inner[:1] == ["done"]:
                depth -= 1
                if depth == 0:
                    break
            body.append(inner)
        names = {posixpath.basename(cmd[0]) for cmd in body if cmd}
        if cond[0] == "sleep" or "sleep" in names or names <= _NOOPS:
            hits.append((IDLE_INFINITE_LOOP, f"loops forever ('{_show(segment)} ...')"))
    return hits


def _idle_hits(argv: List[str], threshold: int, depth: int = 0) -> List[_Hit]:
    argv = _strip_wrappers(list(argv))
    if not argv or depth > _MAX_NESTING:
        return []
    name, args = posixpath.basename(argv[0]), argv[1:]
    shown = _show(argv)
    if name == "sleep":
        if not [a for a in args if a != "--"]:
            return [(IDLE_SLEEP_BARE, f"runs a bare 'sleep' ('{shown}')")]
        seconds = _sleep_seconds(args)
        if seconds is None:
            return [(SLEEP_DURATION_UNKNOWN, f"runs '{shown}' whose duration is not a literal")]
        if seconds.is_infinite():
            return [(IDLE_SLEEP_INFINITY, f"runs '{shown}'")]
        if seconds > threshold:
            return [(IDLE_SLEEP_LONG, f"runs '{shown}' ({_fmt_seconds(seconds)} s, over the "
                                      f"{threshold} s idle threshold)")]
        return []
    if name == "tail" and "/dev/null" in args:
        follows = any(a.startswith("--follow") or
                      (a.startswith("-") and not a.startswith("--") and set(a[1:]) & {"f", "F"})
                      for a in args)
        return [(IDLE_TAIL_DEV_NULL, f"runs '{shown}'")] if follows else []
    if name in _SHELLS:
        script = _shell_script(args)
        if script is None:
            return []
        try:
            segments = _shell_segments(script)
        except ValueError as exc:  # shlex: unbalanced quotes
            return [(SHELL_SCRIPT_UNPARSEABLE, f"{name} -c script cannot be parsed ({exc})")]
        hits = _loop_hits(segments)
        for segment in segments:
            hits.extend(_idle_hits(segment, threshold, depth + 1))
        return hits
    return []


def _idle_findings(job_spec: JobSpec, profile: ClusterProfile) -> List[PolicyFinding]:
    policy = profile.policy
    level = BLOCK if policy.block_sleep_infinity else WARN
    findings: List[PolicyFinding] = []
    for code, detail in _idle_hits(effective_argv(job_spec, profile), policy.sleep_threshold_seconds):
        if code == SLEEP_DURATION_UNKNOWN:
            findings.append(PolicyFinding(code, WARN, f"command {detail}; the policy cannot "
                                          "check it for an idle placeholder; use a literal duration"))
        elif code == SHELL_SCRIPT_UNPARSEABLE:
            findings.append(PolicyFinding(code, WARN, f"the {detail}; the shell will likely "
                                          "reject it too; fix the quoting"))
        else:
            override = f", {_RISK}" if level == BLOCK else ""
            findings.append(PolicyFinding(code, level, f"command {detail}, an idle placeholder "
                                          "that holds cluster resources without doing work; run the "
                                          f"analysis command itself{override}"))
    return findings


# --- resources, runtime, images -------------------------------------------------------


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
    gpus = resources.gpus
    if gpus > policy.max_interactive_gpus:
        level = BLOCK if policy.block_gpus_over_interactive_limit else WARN
        findings.append(PolicyFinding(GPU_OVER_INTERACTIVE_LIMIT, level, (
            f"job requests {gpus} GPUs, over this cluster's limit of "
            f"{policy.max_interactive_gpus}; request at most {policy.max_interactive_gpus}"
            + (f", {_RISK}" if level == BLOCK else ""))))
    return findings


def _runtime_findings(job_spec: JobSpec, profile: ClusterProfile) -> List[PolicyFinding]:
    limit = profile.policy.max_runtime_seconds
    deadline = job_spec.active_deadline_seconds
    if limit is None:
        return []
    if deadline is None:
        return [PolicyFinding(NO_ACTIVE_DEADLINE, WARN, (
            f"job has no active_deadline_seconds, so a hung job runs until someone deletes it; "
            f"set active_deadline_seconds (this cluster allows at most {limit})"))]
    if deadline > limit:
        return [PolicyFinding(DEADLINE_OVER_MAX_RUNTIME, BLOCK, (
            f"active_deadline_seconds {deadline} is over this cluster's maximum runtime of "
            f"{limit} s; lower it to {limit} or less, {_RISK}"))]
    return []


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


def evaluate_policy(job_spec: JobSpec, profile: ClusterProfile) -> List[PolicyFinding]:
    """All findings for a job on a cluster; a single PASS finding when nothing is wrong."""
    resources = effective_resources(job_spec, profile)
    findings = (
        _idle_findings(job_spec, profile)
        + _resource_findings(resources, profile)
        + _runtime_findings(job_spec, profile)
        + _image_findings(job_spec, profile, resources.gpus)
        + _secret_env_findings(job_spec, profile)
    )
    unique = list(dict.fromkeys(findings))  # `sleep inf; sleep inf` is one problem, not two
    if not unique:
        return [PolicyFinding(POLICY_OK, PASS, "no policy findings; the job fits this cluster's policy")]
    return unique
