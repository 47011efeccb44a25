"""Render a batch/v1 Job manifest from a JobSpec and a ClusterProfile.

The manifest is built as a plain dict and serialised by PyYAML, never by text
templating, so any string a user writes (env values, args, labels, image) comes back
byte-identical when the YAML is parsed.

The merged values (image, command, env, volumes, resources) come from ``effective``,
which the policy engine shares, so policy judges exactly the job that is rendered. They
are gathered into a template context first (``job_context``), and the manifest is
built from that context alone: the spec's ``templating`` module renders the same way.

Least privilege, for every Job: its container never gains privileges and drops every
capability; the pod runs as the profile's ``pod_security`` user (uid 1000 unless the
profile says otherwise) and gets no service account token unless the profile asks.
A JobSpec asking for a read-only root filesystem (the runner's jobs do) gets it, with
its writable places on the emptyDir volumes it names.
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional

import yaml

from .errors import ConfigError
from .job_context import CONTAINER_NAME, GPU_RESOURCE, job_context, manifest_from_context
from .models import ClusterProfile, JobSpec
from .naming import JOB_TYPE_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, RUN_ID_LABEL, is_rfc1123_label, run_id_problem

__all__ = ["CONTAINER_NAME", "GPU_RESOURCE", "job_labels", "manifest_to_yaml", "render_job_manifest"]


def job_labels(job_spec: JobSpec, profile: ClusterProfile, extra: Mapping[str, str]) -> Dict[str, str]:
    """The profile's labels, the job's, ours (managed-by), then ``extra`` (a run id...)."""
    return {**profile.labels, **job_spec.labels, MANAGED_BY_LABEL: MANAGED_BY_VALUE, **extra}


def render_job_manifest(
    job_name: str,
    job_spec: JobSpec,
    profile: ClusterProfile,
    run_id: str,
    *,
    job_type: Optional[str] = None,
) -> Dict[str, Any]:
    """A batch/v1 Job as a dict, ready for the API server or ``manifest_to_yaml``."""
    if not is_rfc1123_label(job_name):
        raise ConfigError(f"job name {job_name!r} must be an RFC 1123 label of at most 63 characters")
    problem = run_id_problem(run_id)
    if problem:
        raise ConfigError(problem)

    labels = job_labels(job_spec, profile, {RUN_ID_LABEL: run_id, **({JOB_TYPE_LABEL: job_type} if job_type else {})})
    return manifest_from_context(job_context(job_name, job_spec, profile, labels))


_OTHER_BREAKS = frozenset("\r\x85\u2028\u2029")


class _ManifestDumper(yaml.SafeDumper):
    """SafeDumper that writes multi-line strings (inline scripts) as literal blocks."""


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    # "|" is only a preference: PyYAML's emitter falls back to a quoted style by itself
    # when a literal block could not carry the string exactly (trailing spaces, control
    # characters). Unicode line breaks other than "\n" are the exception: PyYAML would
    # emit them raw in a block, plain or single-quoted scalar and the parser would read
    # them back as "\n", so such strings are forced into double quotes, which escape them.
    if _OTHER_BREAKS.intersection(value):
        style = '"'
    elif "\n" in value:
        style = "|"
    else:
        style = None
    return dumper.represent_scalar("tag:yaml.org,2002:str", value, style=style)


_ManifestDumper.add_representer(str, _represent_str)


def manifest_to_yaml(manifest: Dict[str, Any]) -> str:
    """Serialise with PyYAML (safe representers, key order kept, unicode as is)."""
    return yaml.dump(
        manifest,
        Dumper=_ManifestDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=2**31 - 1,
    )
