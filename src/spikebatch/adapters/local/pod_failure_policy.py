"""A Job's ``spec.podFailurePolicy`` as the local backend applies it: which rule, if
any, a failed attempt matches, and what the API server would refuse in the rules.

The job controller looks at a failed pod's rules in order and takes the first that
matches:

- ``onExitCodes``: a terminated container (the one named by ``containerName``, else
  any) whose non-zero exit code is ``In`` / ``NotIn`` the rule's values;
- ``onPodConditions``: a pod condition such as ``DisruptionTarget`` (eviction,
  preemption, node drain). A local attempt has no such conditions (nothing evicts a
  local process), so these rules are accepted and never match.

The matched rule's action: ``FailJob`` fails the whole Job (reason
``PodFailurePolicy``), ``FailIndex`` fails the attempt's completion index without
further retries, ``Ignore`` does not count the failure at all (not in
``status.failed``, not against any back-off limit), ``Count`` counts it as usual, which
is also what happens when no rule matches.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Sequence

FAIL_JOB, FAIL_INDEX, IGNORE, COUNT = "FailJob", "FailIndex", "Ignore", "Count"
ACTIONS = (COUNT, FAIL_INDEX, FAIL_JOB, IGNORE)
#: The Job condition reason of a Job a FailJob rule failed.
POD_FAILURE_POLICY_REASON = "PodFailurePolicy"
#: The API server's limits on the rules (the same numbers as its validation).
MAX_RULES = 20
MAX_EXIT_CODE_VALUES = 255
_CONDITION_STATUSES = ("True", "False", "Unknown")

FIELD = "spec.podFailurePolicy"


def policy_rules(spec: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The rules of ``spec.podFailurePolicy`` (none when it is not set)."""
    policy = spec.get("podFailurePolicy")
    if not isinstance(policy, Mapping):
        return []
    rules = policy.get("rules")
    return [dict(r) for r in rules if isinstance(r, Mapping)] if isinstance(rules, list) else []


def policy_field_causes(spec: Mapping[str, Any], pod: Mapping[str, Any]) -> list[str]:
    """What the API server refuses in a pod failure policy (a subset of its checks),
    each as ``<field path>: <problem>``."""
    policy = spec.get("podFailurePolicy")
    if policy is None:
        return []
    if not isinstance(policy, Mapping) or not isinstance(policy.get("rules"), list):
        return [f"{FIELD}.rules: Required value"]
    causes: list[str] = []
    restart = pod.get("restartPolicy")
    if restart is not None and restart != "Never":
        causes.append(f'spec.template.spec.restartPolicy: Invalid value: {restart!r}: only "Never" is supported '
                      "when podFailurePolicy is specified")
    rules = policy["rules"]
    if len(rules) > MAX_RULES:
        causes.append(f"{FIELD}.rules: Too many: {len(rules)}: must have at most {MAX_RULES} items")
    names = {str(c.get("name")) for c in pod.get("containers") or [] if isinstance(c, Mapping)}
    names |= {str(c.get("name")) for c in pod.get("initContainers") or [] if isinstance(c, Mapping)}
    per_index = spec.get("backoffLimitPerIndex") is not None
    for i, rule in enumerate(rules):
        causes += _rule_causes(f"{FIELD}.rules[{i}]", rule, names, per_index)
    return causes


def _rule_causes(path: str, rule: Any, container_names: set[str], per_index: bool) -> list[str]:
    if not isinstance(rule, Mapping):
        return [f"{path}: Invalid value: must be an object"]
    causes: list[str] = []
    action = rule.get("action")
    if action is None:
        causes.append(f"{path}.action: Required value")
    elif action not in ACTIONS:
        supported = ", ".join(f'"{a}"' for a in ACTIONS)
        causes.append(f"{path}.action: Unsupported value: {action!r}: supported values: {supported}")
    elif action == FAIL_INDEX and not per_index:
        causes.append(f"{path}.action: Forbidden: the 'FailIndex' action can only be used when "
                      "backoffLimitPerIndex is set")
    on_exit, on_conditions = rule.get("onExitCodes"), rule.get("onPodConditions")
    if on_exit is not None and on_conditions is not None:
        causes.append(f"{path}: Invalid value: specifying both OnExitCodes and OnPodConditions is not supported")
    elif on_exit is None and on_conditions is None:
        causes.append(f"{path}: Invalid value: specifying one of OnExitCodes and OnPodConditions is required")
    elif on_exit is not None:
        causes += _exit_code_causes(f"{path}.onExitCodes", on_exit, container_names)
    else:
        causes += _condition_causes(f"{path}.onPodConditions", on_conditions)
    return causes


def _exit_code_causes(path: str, on_exit: Any, container_names: set[str]) -> list[str]:
    if not isinstance(on_exit, Mapping):
        return [f"{path}: Invalid value: must be an object"]
    causes: list[str] = []
    container = on_exit.get("containerName")
    if container is not None and str(container) not in container_names:
        causes.append(f"{path}.containerName: Invalid value: {container!r}: must be one of the container or "
                      "initContainer names in the pod template")
    operator = on_exit.get("operator")
    if operator not in ("In", "NotIn"):
        causes.append(f'{path}.operator: Unsupported value: {operator!r}: supported values: "In", "NotIn"')
    values = on_exit.get("values")
    if not isinstance(values, list) or not values:
        return causes + [f"{path}.values: Required value"]
    if len(values) > MAX_EXIT_CODE_VALUES:
        causes.append(f"{path}.values: Too many: {len(values)}: must have at most {MAX_EXIT_CODE_VALUES} items")
    seen: set[int] = set()
    for j, value in enumerate(values):
        where = f"{path}.values[{j}]"
        if not isinstance(value, int) or isinstance(value, bool):
            causes.append(f"{where}: Invalid value: {value!r}: must be an integer")
            continue
        if value == 0 and operator == "In":
            causes.append(f"{where}: Invalid value: 0: must not be 0 for the In operator")
        if value in seen:
            causes.append(f"{where}: Duplicate value: {value}")
        elif j and isinstance(values[j - 1], int) and values[j - 1] > value:
            causes.append(f"{where}: Invalid value: {value}: must be ordered")
        seen.add(value)
    return causes


def _condition_causes(path: str, conditions: Any) -> list[str]:
    if not isinstance(conditions, list) or not conditions:
        return [f"{path}: Required value"]
    causes: list[str] = []
    for j, cond in enumerate(conditions):
        if not isinstance(cond, Mapping) or not cond.get("type"):
            causes.append(f"{path}[{j}].type: Required value")
        elif cond.get("status", "True") not in _CONDITION_STATUSES:
            causes.append(f'{path}[{j}].status: Unsupported value: {cond.get("status")!r}: supported values: '
                          '"False", "True", "Unknown"')
    return causes


def matching_rule(rules: Sequence[Mapping[str, Any]], container_name: str,
                  exit_code: Optional[int]) -> Optional[tuple[int, str]]:
    """(rule index, action) of the first rule a failed attempt matches: its one
    container, ``container_name``, exited with ``exit_code``. None when no rule
    matches (the failure then counts as usual)."""
    if exit_code is None or exit_code == 0:
        return None  # the controller never matches a container that exited 0
    for i, rule in enumerate(rules):
        on_exit = rule.get("onExitCodes")
        if not isinstance(on_exit, Mapping):
            continue  # onPodConditions: no disruption conditions on a local attempt
        wanted = on_exit.get("containerName")
        if wanted is not None and wanted != container_name:
            continue
        listed = exit_code in set(on_exit.get("values") or ())
        if (on_exit.get("operator") == "In") == listed:
            return i, str(rule.get("action"))
    return None


def fail_job_message(container_name: str, namespace: str, pod_name: str, exit_code: int, rule_index: int) -> str:
    """The Job condition message of a FailJob match, worded as the controller's."""
    return (f"Container {container_name} for pod {namespace}/{pod_name} failed with exit code {exit_code} "
            f"matching {FAIL_JOB} rule at index {rule_index}")
