"""What the local backend takes from a Job manifest, checked before anything starts:
the first container's command + args (``$(VAR)`` expanded as the kubelet does, and
``python``/``python3`` replaced by this interpreter), its plain env values, the Job's
limits, the container's memory and CPU limits (``resource_limits``), and for an
Indexed Job its completions, parallelism, per-index limits and pod failure policy
(``completion_plan``, ``pod_failure_policy``). Field errors read like
the API server's (``<field path>: <problem>``).

An Indexed Job's attempts differ by ``JOB_COMPLETION_INDEX`` only, which the command
may name as ``$(JOB_COMPLETION_INDEX)``: its plan keeps the command unexpanded and
``attempt_command`` expands it for each index."""

from __future__ import annotations

import os
import re
import sys
from typing import Any, Mapping, Optional

from ...domain.errors import InvalidManifestError
from ...domain.naming import is_dns_subdomain, is_rfc1123_label
from .completion_plan import (
    INDEXED,
    backoff_limit,
    completion_field_causes,
    completion_fields,
    refuse_what_runs_only_on_a_cluster,
    with_completion_index,
)
from .pod_failure_policy import policy_field_causes, policy_rules
from .resource_limits import resource_limits

_PYTHON = re.compile(r"^python(3(\.\d+)?)?$")
_VAR_REF = re.compile(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_.-]*)\)")
#: Local stand-in for terminationGracePeriodSeconds when the manifest sets none
#: (Kubernetes waits 30 s; a laptop user deleting a job wants it gone now).
DEFAULT_GRACE_SECONDS = 5.0

POD_SPEC = "spec.template.spec"


def expand_var_refs(text: str, env: Mapping[str, str]) -> str:
    """Kubernetes' ``$(VAR)`` expansion in command/args: a defined VAR is replaced,
    an undefined one is left as written, ``$$`` is a literal ``$``."""
    def repl(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1)
        return env[name] if name in env else m.group(0)

    return _VAR_REF.sub(repl, text)


def job_field_causes(body: Mapping[str, Any]) -> list[str]:
    """Problems the API server would also refuse (a subset of its Job validation)."""
    causes: list[str] = []
    name = (body.get("metadata") or {}).get("name", "")
    if not is_dns_subdomain(name) or len(name) > 63:
        causes.append(f"metadata.name: Invalid value: {name!r}: must be a lowercase RFC 1123 "
                      "subdomain of at most 63 characters")
    spec = body.get("spec")
    if not isinstance(spec, Mapping):
        return causes + ["spec: Required value"]
    for key in ("backoffLimit", "activeDeadlineSeconds", "completions", "parallelism"):
        value = spec.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 0
                                  or (key == "activeDeadlineSeconds" and value == 0)):
            causes.append(f"spec.{key}: Invalid value: {value!r}: must be "
                          f"{'greater than 0' if key == 'activeDeadlineSeconds' else 'a non-negative integer'}")
    causes += completion_field_causes(spec)
    pod = (spec.get("template") or {}).get("spec")
    if not isinstance(pod, Mapping):
        return causes + [f"{POD_SPEC}: Required value"]
    causes += policy_field_causes(spec, pod)
    policy = pod.get("restartPolicy")
    if policy is None:
        causes.append(f'{POD_SPEC}.restartPolicy: Required value: valid values: "OnFailure", "Never"')
    elif policy not in ("OnFailure", "Never"):
        causes.append(f'{POD_SPEC}.restartPolicy: Unsupported value: {policy!r}: supported values: '
                      '"OnFailure", "Never"')
    containers = pod.get("containers")
    if not containers or not isinstance(containers, list):
        return causes + [f"{POD_SPEC}.containers: Required value"]
    for i, c in enumerate(containers):
        c = c if isinstance(c, Mapping) else {}
        cname = c.get("name")
        if not cname:
            causes.append(f"{POD_SPEC}.containers[{i}].name: Required value")
        elif not is_rfc1123_label(str(cname)):
            causes.append(f"{POD_SPEC}.containers[{i}].name: Invalid value: {cname!r}: a lowercase "
                          "RFC 1123 label must consist of lower case alphanumeric characters or '-'")
    return causes


def launch_plan(body: Mapping[str, Any], cwd: str) -> dict[str, Any]:
    """argv, env overrides, cwd and limits (retries, deadline, memory and CPU) for the
    supervisor. Raises InvalidManifestError (with field causes) for what cannot run
    locally."""
    name = (body.get("metadata") or {}).get("name", "?")
    causes = job_field_causes(body)
    if causes:
        raise InvalidManifestError(f"Job {name!r} is invalid: {'; '.join(causes)}", causes)
    spec = body["spec"]
    pod = spec["template"]["spec"]
    refuse_what_runs_only_on_a_cluster(spec, name)
    container = pod["containers"][0]
    completion = completion_fields(spec)
    limits = resource_limits(container, name)
    env = plain_env(container, name)
    indexed = completion["completionMode"] == INDEXED
    # An Indexed Job is checked with its widest index, the longest its env and a
    # $(JOB_COMPLETION_INDEX) in its arguments get.
    checked_env = with_completion_index(env, max(completion["completions"] - 1, 0)) if indexed else env
    argv = local_argv(container, checked_env, name)
    env.setdefault("PYTHONUNBUFFERED", "1")  # so a followed log shows lines as they happen
    checked_env.setdefault("PYTHONUNBUFFERED", "1")
    refuse_what_exec_cannot_take(container, argv, {**limits["limitEnv"], **checked_env}, name, os.environ)
    plan: dict[str, Any] = {
        "argv": argv,
        "env": env,
        "cwd": working_dir(container, cwd),
        "containerName": str(container.get("name") or ""),
        "podFailureRules": policy_rules(spec),
        **completion,
        **job_limits(spec, pod),
        **limits,
    }
    if indexed:
        plan["argv"] = None  # made per attempt by attempt_command
        plan["commandTemplate"] = {"name": container.get("name"), "command": list(container.get("command") or []),
                                   "args": list(container.get("args") or [])}
    return plan


def attempt_command(plan: Mapping[str, Any], completion_index: Optional[int],
                    job_name: str = "?") -> tuple[list[str], dict[str, str]]:
    """argv and env overrides of one attempt: as planned for a NonIndexed Job; for an
    Indexed Job with ``JOB_COMPLETION_INDEX`` set and ``$(...)`` in command and args
    expanded against it, as the job controller and the kubelet do."""
    # The job's own env laid over what its CPU limit calls for: a variable it sets wins.
    env = {**(plan.get("limitEnv") or {}), **(plan.get("env") or {})}
    if completion_index is None or plan.get("commandTemplate") is None:
        return list(plan["argv"]), env
    env = with_completion_index(env, completion_index)
    return local_argv(plan["commandTemplate"], env, job_name), env


def plain_env(container: Mapping[str, Any], name: str) -> dict[str, str]:
    """The container's env values, each ``$(VAR)``-expanded against those before it.
    Values from secrets, config maps or the downward API (valueFrom, envFrom) exist
    only in a cluster and are refused."""
    env: dict[str, str] = {}
    for i, item in enumerate(container.get("env") or []):
        var = item.get("name", "")
        if "valueFrom" in item:
            value_from = item.get("valueFrom") or {}
            source = next(iter(value_from), "valueFrom")
            ref = value_from.get(source) or {}
            what = f"secret {ref.get('name')!r} key {ref.get('key')!r}" if source == "secretKeyRef" else source
            raise InvalidManifestError(
                f"env {var} of Job {name!r} comes from {what} (valueFrom.{source}), which the local "
                "backend cannot resolve; give it a plain value or submit to a Kubernetes backend",
                [f"{POD_SPEC}.containers[0].env[{i}].valueFrom: Unsupported value: {source}"])
        env[var] = expand_var_refs(str(item.get("value", "")), env)
    if container.get("envFrom"):
        raise InvalidManifestError(
            f"Job {name!r} uses envFrom, which the local backend cannot resolve; list the "
            "variables under env with plain values", [f"{POD_SPEC}.containers[0].envFrom: Unsupported value"])
    return env


def local_argv(container: Mapping[str, Any], env: Mapping[str, str], name: str) -> list[str]:
    """command + args with ``$(VAR)`` expanded, ``python``/``python3`` replaced by this
    interpreter. A container without a command is refused: there is no image whose
    entrypoint could run."""
    command = list(container.get("command") or [])
    if not command:
        raise InvalidManifestError(
            f"Job {name!r}: container {container.get('name')!r} has no command; the local backend cannot "
            "run an image's entrypoint, so give the command explicitly",
            [f"{POD_SPEC}.containers[0].command: Required value (local backend)"])
    argv = [expand_var_refs(str(a), env) for a in command + list(container.get("args") or [])]
    if _PYTHON.match(os.path.basename(argv[0])):
        argv[0] = sys.executable  # the image's python is this interpreter locally
    return argv


#: The longest single argument or ``NAME=value`` string Linux's execve takes
#: (MAX_ARG_STRLEN: 32 pages of 4 KiB, with its final NUL). Other systems have no such
#: per-string limit; the local backend applies it everywhere, so a job that runs on one
#: laptop runs on the next.
MAX_ARG_STRLEN = 32 * 4096
#: Kept free under the system's ARG_MAX for what is added when the pod starts: the
#: program's path, the pod's TMPDIR, alignment.
EXEC_MARGIN = 16 * 1024
_POINTER = 8


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.1f} MiB" if n >= 1024 * 1024 else f"{n / 1024:.0f} KiB" if n >= 1024 else f"{n} B"


def _encoded(text: str, what: str, field: str, name: str) -> bytes:
    try:
        return os.fsencode(text)
    except UnicodeEncodeError:
        raise InvalidManifestError(
            f"{what} of Job {name!r} holds characters this system cannot encode; use plain UTF-8 text",
            [f"{field}: Invalid value: not encodable"]) from None


def arg_max() -> Optional[int]:
    """The system's limit on a new process's arguments + environment (bytes), or None
    where it cannot be asked."""
    try:
        value = os.sysconf("SC_ARG_MAX")
    except (AttributeError, ValueError, OSError):
        return None
    return value if value > 0 else None


def refuse_what_exec_cannot_take(container: Mapping[str, Any], argv: list[str], env: Mapping[str, str],
                                 name: str, inherited: Mapping[str, str]) -> None:
    """Refuse, before anything starts, an argument or env value no process could be
    started with: one holding a NUL byte (C strings end there), one longer than
    MAX_ARG_STRLEN, or all of them (with the environment the pod inherits from this
    process) over the system's ARG_MAX less EXEC_MARGIN. Each refusal is one line
    naming the argument or variable and the fix."""
    fix = "put the data in a file and pass the file's path instead"
    command_len = len(container.get("command") or [])
    sizes: list[tuple[int, str]] = []
    for i, arg in enumerate(argv):
        key, pos = ("command", i) if i < command_len else ("args", i - command_len)
        field = f"{POD_SPEC}.containers[0].{key}[{pos}]"
        what = f"{key}[{pos}]"
        data = _encoded(arg, what, field, name)
        if b"\0" in data:
            raise InvalidManifestError(
                f"{what} of Job {name!r} holds a NUL byte, which no process can receive as an argument; "
                "remove it (binary data goes in a file)", [f"{field}: Invalid value: contains a NUL byte"])
        if len(data) + 1 > MAX_ARG_STRLEN:
            raise InvalidManifestError(
                f"{what} of Job {name!r} is {_size(len(data))}, over the {_size(MAX_ARG_STRLEN)} a local process "
                f"takes per argument (Linux MAX_ARG_STRLEN); {fix}",
                [f"{field}: Invalid value: {_size(len(data))} long"])
        sizes.append((len(data) + 1 + _POINTER, what))
    positions = {item.get("name"): i for i, item in enumerate(container.get("env") or [])}
    for var, value in env.items():
        field = f"{POD_SPEC}.containers[0].env[{positions.get(var, 0)}]"
        what = f"env {var}"
        entry = _encoded(f"{var}={value}", what, field, name)
        if not var or "=" in var or "\0" in var:
            raise InvalidManifestError(
                f"env name {var!r} of Job {name!r} is not a valid variable name (empty, or holding '=' or a "
                "NUL byte); rename it", [f"{field}.name: Invalid value: {var!r}"])
        if b"\0" in entry:
            raise InvalidManifestError(
                f"{what} of Job {name!r} holds a NUL byte, which no process can receive in its environment; "
                "remove it (binary data goes in a file)", [f"{field}.value: Invalid value: contains a NUL byte"])
        if len(entry) + 1 > MAX_ARG_STRLEN:
            raise InvalidManifestError(
                f"{what} of Job {name!r} is {_size(len(entry) - len(var) - 1)}, over the {_size(MAX_ARG_STRLEN)} a "
                f"local process takes per environment variable (Linux MAX_ARG_STRLEN); {fix}",
                [f"{field}.value: Invalid value: {_size(len(entry) - len(var) - 1)} long"])
        sizes.append((len(entry) + 1 + _POINTER, what))
    limit = arg_max()
    if limit is None:
        return
    own = sum(size for size, _ in sizes)
    inherited_size = sum(len(os.fsencode(f"{k}={v}")) + 1 + _POINTER
                         for k, v in inherited.items() if k not in env)
    total = own + inherited_size + _POINTER * 2
    if total > limit - EXEC_MARGIN:
        largest_size, largest = max(sizes)
        raise InvalidManifestError(
            f"the arguments and environment of Job {name!r} take {_size(total)} ({_size(inherited_size)} of it "
            f"inherited from this process's environment), over this system's limit of {_size(limit - EXEC_MARGIN)} "
            f"(ARG_MAX less {_size(EXEC_MARGIN)}); the largest is {largest} ({_size(largest_size)}): {fix}",
            [f"{POD_SPEC}.containers[0]: Invalid value: arguments and environment of {_size(total)}"])


def working_dir(container: Mapping[str, Any], cwd: str) -> str:
    # An image's workingDir rarely exists on the laptop; then the caller's folder
    # stands in, so relative paths in args mean what the user typed.
    workdir = container.get("workingDir")
    return workdir if workdir and os.path.isdir(workdir) else cwd


def job_limits(spec: Mapping[str, Any], pod: Mapping[str, Any]) -> dict[str, Any]:
    """Retries, deadline, termination grace and suspension, with Kubernetes' defaults
    (backoffLimit 6, unlimited beside backoffLimitPerIndex) and the local grace default."""
    grace = pod.get("terminationGracePeriodSeconds")
    return {
        "backoffLimit": backoff_limit(spec),
        "activeDeadlineSeconds": spec.get("activeDeadlineSeconds"),
        "gracePeriodSeconds": float(grace) if grace is not None else DEFAULT_GRACE_SECONDS,
        "suspend": bool(spec.get("suspend")),
    }
