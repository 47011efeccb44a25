"""Render a batch/v1 Job manifest from a JobSpec and a ClusterProfile.

The manifest is built as a plain dict and serialised by PyYAML, never by text
templating, so any string a user writes (env values, args, labels, image) comes back
byte-identical when the YAML is parsed.

The merged values (image, command, env, volumes, resources) come from ``effective``,
which the policy engine shares, so policy judges exactly the job that is rendered.

Least privilege, for every Job: its container never gains privileges and drops every
capability; the pod runs as the profile's ``pod_security`` user (uid 1000 unless the
profile says otherwise) and gets no service account token unless the profile asks.
A JobSpec asking for a read-only root filesystem (the runner's jobs do) gets it, with
its writable places on the emptyDir volumes it names.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional

import yaml

from .errors import ConfigError
from .effective import (
    effective_command,
    effective_env,
    effective_pull_policy,
    effective_resources,
    effective_volumes,
    resolve_image,
    target_namespace,
)
from .models import ClusterProfile, EnvValue, JobSpec, SecretEnvRef, VolumeMountSpec
from .naming import JOB_TYPE_LABEL, MANAGED_BY_LABEL, MANAGED_BY_VALUE, RUN_ID_LABEL, is_rfc1123_label

GPU_RESOURCE = "nvidia.com/gpu"
CONTAINER_NAME = "main"


def _env_entry(name: str, value: EnvValue) -> Dict[str, Any]:
    if isinstance(value, SecretEnvRef):
        ref: Dict[str, Any] = {"name": value.secret_name, "key": value.key}
        if value.optional:
            ref["optional"] = True
        return {"name": name, "valueFrom": {"secretKeyRef": ref}}
    return {"name": name, "value": value}


def _resources_block(job_spec: JobSpec, profile: ClusterProfile) -> Dict[str, Dict[str, Any]]:
    res = effective_resources(job_spec, profile)
    requests: Dict[str, Any] = {"cpu": res.requests_cpu, "memory": res.requests_memory}
    limits: Dict[str, Any] = {"cpu": res.limits_cpu, "memory": res.limits_memory}
    if res.limits_gpu:
        requests[GPU_RESOURCE] = str(res.requests_gpu)
        limits[GPU_RESOURCE] = str(res.limits_gpu)
    return {"requests": requests, "limits": limits}


def job_labels(job_spec: JobSpec, profile: ClusterProfile, run_id: str, job_type: Optional[str]) -> Dict[str, str]:
    labels = {**profile.labels, **job_spec.labels}
    labels[MANAGED_BY_LABEL] = MANAGED_BY_VALUE
    labels[RUN_ID_LABEL] = run_id
    if job_type:
        labels[JOB_TYPE_LABEL] = job_type
    return labels


def _volume_mounts(volumes: List[VolumeMountSpec]) -> List[Dict[str, Any]]:
    mounts = []
    for volume in volumes:
        mount: Dict[str, Any] = {"name": volume.name, "mountPath": volume.mount_path, "readOnly": volume.read_only}
        if volume.sub_path:
            mount["subPath"] = volume.sub_path
        mounts.append(mount)
    return mounts


def _pod_volume(volume: VolumeMountSpec) -> Dict[str, Any]:
    if volume.secret_name:
        return {"name": volume.name, "secret": {"secretName": volume.secret_name}}
    if volume.pvc_name:
        return {"name": volume.name,
                "persistentVolumeClaim": {"claimName": volume.pvc_name, "readOnly": volume.read_only}}
    empty_dir: Dict[str, Any] = {"sizeLimit": volume.size_limit} if volume.size_limit else {}
    return {"name": volume.name, "emptyDir": empty_dir}


def _container_security(job_spec: JobSpec) -> Dict[str, Any]:
    """What every container is denied: gaining privileges (setuid binaries, file
    capabilities) and every Linux capability; plus a read-only image filesystem when
    the JobSpec asks for one (the runner's jobs do)."""
    context: Dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if job_spec.container.read_only_root_filesystem:
        context["readOnlyRootFilesystem"] = True
    return context


def _pod_security(profile: ClusterProfile) -> Dict[str, Any]:
    """The pod's securityContext from the profile's pod_security (empty when null)."""
    security = profile.pod_security
    if security is None:
        return {}
    context: Dict[str, Any] = {}
    if security.run_as_non_root:
        context["runAsNonRoot"] = True
    for key, value in (("runAsUser", security.run_as_user), ("runAsGroup", security.run_as_group),
                       ("fsGroup", security.fs_group)):
        if value is not None:
            context[key] = value
    return context


def _container(job_spec: JobSpec, profile: ClusterProfile, volumes: List[VolumeMountSpec]) -> Dict[str, Any]:
    """The Job's one container: image, command, args, env, resources, mounts, security."""
    container: Dict[str, Any] = {"name": CONTAINER_NAME}
    image = resolve_image(job_spec, profile)
    if image:  # None only for a backend that runs no images (the local one)
        container["image"] = image
    container["imagePullPolicy"] = effective_pull_policy(job_spec, profile)
    if job_spec.container.working_dir:
        container["workingDir"] = job_spec.container.working_dir
    command = effective_command(job_spec, profile)
    if command:
        container["command"] = command
    if job_spec.container.args:
        container["args"] = list(job_spec.container.args)
    env = effective_env(job_spec, profile)
    if env:
        container["env"] = [_env_entry(name, value) for name, value in env.items()]
    container["resources"] = _resources_block(job_spec, profile)
    if volumes:
        container["volumeMounts"] = _volume_mounts(volumes)
    container["securityContext"] = _container_security(job_spec)
    # A failed container's status then carries the tail of its log (at most 2 KiB): the
    # exception line a user needs is in `job-status` without digging through logs.
    container["terminationMessagePolicy"] = "FallbackToLogsOnError"
    return container


def _pod_spec(job_spec: JobSpec, profile: ClusterProfile) -> Dict[str, Any]:
    """The pod template's spec: the container plus where and how the pod may run."""
    volumes = effective_volumes(job_spec, profile)
    pod_spec: Dict[str, Any] = {"restartPolicy": "Never"}
    if profile.host_network:
        # Without ClusterFirstWithHostNet a hostNetwork pod resolves names with the
        # node's resolver and cannot find cluster services.
        pod_spec["hostNetwork"] = True
        pod_spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    pod_spec["automountServiceAccountToken"] = profile.automount_service_account_token
    security = _pod_security(profile)
    if security:
        pod_spec["securityContext"] = security
    pod_spec["containers"] = [_container(job_spec, profile, volumes)]
    node_selector = dict(effective_resources(job_spec, profile).node_selector)
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if profile.affinity:
        pod_spec["affinity"] = profile.affinity
    if profile.tolerations:
        pod_spec["tolerations"] = list(profile.tolerations)
    if profile.image_pull_secrets:
        pod_spec["imagePullSecrets"] = [{"name": name} for name in profile.image_pull_secrets]
    if volumes:
        pod_spec["volumes"] = [_pod_volume(v) for v in volumes]
    return pod_spec


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
    if not is_rfc1123_label(run_id.lower()) or run_id != run_id.lower():
        raise ConfigError(f"run id {run_id!r} must be lower-case letters, digits and '-'")

    labels = job_labels(job_spec, profile, run_id, job_type)
    job_spec_block: Dict[str, Any] = {"backoffLimit": job_spec.backoff_limit}
    if job_spec.ttl_seconds_after_finished is not None:
        job_spec_block["ttlSecondsAfterFinished"] = job_spec.ttl_seconds_after_finished
    if job_spec.active_deadline_seconds is not None:
        job_spec_block["activeDeadlineSeconds"] = job_spec.active_deadline_seconds
    job_spec_block["template"] = {"metadata": {"labels": dict(labels)}, "spec": _pod_spec(job_spec, profile)}

    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": job_name, "namespace": target_namespace(job_spec, profile), "labels": labels},
        "spec": job_spec_block,
    }


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
