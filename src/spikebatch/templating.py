"""Job manifests from a template context (spec module ``templating``).

``build_template_context`` gathers the values of a Job (the JobSpec merged with its
profile) into a dict with the spec's keys; ``render_job_manifest(context)`` returns
the Job as YAML text. The text is made by a YAML library from data built out of the
context (never by text templating), so any value -- quotes, newlines, colons -- comes
back unchanged when the YAML is parsed, and a context you edited is rendered as edited.

    context = build_template_context(job_name=name, job_spec=spec, profile=profile,
                                     extra_labels={"spikebatch.io/run-id": run_id})
    text = render_job_manifest(context)   # what RunSession.render_manifest returns

The library's own ``spikebatch.render_job_manifest(job_name, job_spec, profile, run_id)``
(the manifest as a dict) is another function and keeps working.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

from .domain.errors import ConfigError
from .domain.job_context import job_context, manifest_from_context
from .domain.manifest import job_labels, manifest_to_yaml
from .domain.models import ClusterProfile, JobSpec
from .domain.naming import is_rfc1123_label, label_key_problem, label_value_problem

__all__ = ["build_template_context", "render_job_manifest"]


def _checked(extra_labels: Optional[Mapping[str, str]]) -> Dict[str, str]:
    labels = {str(key): str(value) for key, value in (extra_labels or {}).items()}
    for key, value in labels.items():
        problem = label_key_problem(key) or label_value_problem(value)
        if problem:
            raise ConfigError(f"extra_labels: {problem}")
    return labels


def build_template_context(
    *,
    job_name: str,
    job_spec: Any,
    profile: Any,
    extra_labels: Optional[Dict[str, str]] = None,
) -> Dict[str, Any]:
    """The values of the Job ``job_name`` as a dict: job_name, namespace, labels
    (profile's, job's, ours, then ``extra_labels``), container (image, image_pull_policy,
    command, args, env, ...), resources, volume_mounts, pod_volumes, affinity (and
    affinity_yaml), tolerations (and tolerations_yaml), ttl_seconds_after_finished,
    backoff_limit, active_deadline_seconds, image_pull_secrets, plus ours:
    host_network, automount_service_account_token, pod_security_context.

    ``job_spec`` is a JobSpec or its dict form; ``profile`` a ClusterProfile or its dict
    form. Values are the merged ones (profile defaults, namespace hook, the job's own)."""
    spec = job_spec if isinstance(job_spec, JobSpec) else JobSpec.model_validate(job_spec)
    cluster = profile if isinstance(profile, ClusterProfile) else ClusterProfile.model_validate(profile)
    if not isinstance(job_name, str) or not is_rfc1123_label(job_name):
        raise ConfigError(f"job_name {job_name!r} must be an RFC 1123 label of at most 63 characters "
                          "(lower-case letters, digits, '-')")
    return job_context(job_name, spec, cluster, job_labels(spec, cluster, _checked(extra_labels)))


def render_job_manifest(context: Dict[str, Any]) -> str:
    """The Job of ``context`` (from ``build_template_context``, edited or not) as YAML
    text. A context missing job_name or namespace raises ConfigError (a ValueError)."""
    if not isinstance(context, Mapping):
        raise ConfigError(f"render_job_manifest takes the dict from build_template_context, "
                          f"not {type(context).__name__}")
    return manifest_to_yaml(manifest_from_context(context))
