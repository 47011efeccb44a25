"""A Job as plain data: the template context, and the manifest built from it.

``job_context`` gathers every value a Job manifest needs (the JobSpec merged with its
profile through ``effective``) into a dict with the keys the spec's
``templating.build_template_context`` documents (job_name, namespace, labels,
container, resources, volume_mounts, pod_volumes, affinity, tolerations, ...) plus a
few of ours (the pod's security context, host networking, the service-account token).

``manifest_from_context`` builds the batch/v1 Job as a dict from such a context and
from nothing else, so a context a user edited is rendered as edited. Nothing here is
text templating: the manifest is data, serialised later by a YAML library.
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional

import yaml

from .effective import (
    effective_command,
    effective_env,
    effective_pull_policy,
    effective_resources,
    effective_volumes,
    pod_volumes,
    resolve_image,
    target_namespace,
)
from .errors import ConfigError
from .models import ClusterProfile, EnvValue, JobSpec, SecretEnvRef, VolumeMountSpec

GPU_RESOURCE = "nvidia.com/gpu"
CONTAINER_NAME = "main"
#: A failed container's status then carries the tail of its log (at most 2 KiB): the
#: exception line a user needs is in `job-status` without digging through logs.
TERMINATION_MESSAGE_POLICY = "FallbackToLogsOnError"


def _env_value(value: EnvValue) -> Any:
    if isinstance(value, SecretEnvRef):
        return value.model_dump()
    return value


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


def _pod_volumes(volumes: List[VolumeMountSpec]) -> List[Dict[str, Any]]:
    """One pod volume per volume name (the first mount of a name says its source)."""
    return [{"name": v.name, "secret_name": v.secret_name, "pvc_name": v.pvc_name, "read_only": v.read_only,
             "empty_dir": v.empty_dir, "size_limit": v.size_limit} for v in pod_volumes(volumes)]


def job_context(job_name: str, job_spec: JobSpec, profile: ClusterProfile, labels: Mapping[str, str]) -> Dict[str, Any]:
    """Every value of the Job ``job_name`` runs, as plain data (see the module doc)."""
    volumes = effective_volumes(job_spec, profile)
    affinity = dict(profile.affinity or {})
    tolerations = list(profile.tolerations or [])
    container = {
        "name": CONTAINER_NAME,
        "image": resolve_image(job_spec, profile),
        "image_pull_policy": effective_pull_policy(job_spec, profile),
        "command": effective_command(job_spec, profile),
        "args": list(job_spec.container.args),
        "env": {name: _env_value(value) for name, value in effective_env(job_spec, profile).items()},
        "working_dir": job_spec.container.working_dir,
        "read_only_root_filesystem": job_spec.container.read_only_root_filesystem,
    }
    return {
        "job_name": job_name,
        "namespace": target_namespace(job_spec, profile),
        "labels": dict(labels),
        "container": container,
        "resources": effective_resources(job_spec, profile).model_dump(),
        "volume_mounts": [volume.model_dump() for volume in volumes],
        "pod_volumes": _pod_volumes(volumes),
        "affinity": affinity,
        # The spec's context also carries these two as YAML text; the manifest is built
        # from ``affinity`` and ``tolerations`` (edit those), never from the text.
        "affinity_yaml": yaml.safe_dump(affinity, sort_keys=False).rstrip() if affinity else "",
        "tolerations": tolerations,
        "tolerations_yaml": yaml.safe_dump(tolerations, sort_keys=False).rstrip() if tolerations else "",
        "ttl_seconds_after_finished": job_spec.ttl_seconds_after_finished,
        "backoff_limit": job_spec.backoff_limit,
        "active_deadline_seconds": job_spec.active_deadline_seconds,
        "image_pull_secrets": list(profile.image_pull_secrets),
        "host_network": profile.host_network,
        "automount_service_account_token": profile.automount_service_account_token,
        "pod_security_context": _pod_security(profile),
    }


# --- the manifest from a context ------------------------------------------------------
def _required(context: Mapping[str, Any], key: str) -> Any:
    if key not in context or context[key] is None:
        raise ConfigError(f"template context has no {key!r}; build it with build_template_context")
    return context[key]


def _mapping(context: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = context.get(key) or {}
    if not isinstance(value, Mapping):
        raise ConfigError(f"template context {key!r} must be a mapping, not {type(value).__name__}")
    return value


def _env_entry(name: str, value: Any) -> Dict[str, Any]:
    if isinstance(value, SecretEnvRef):
        value = value.model_dump()
    if isinstance(value, Mapping):
        if not value.get("secret_name") or not value.get("key"):
            raise ConfigError(f"template context env {name!r}: a secret reference needs secret_name and key")
        ref: Dict[str, Any] = {"name": value["secret_name"], "key": value["key"]}
        if value.get("optional"):
            ref["optional"] = True
        return {"name": name, "valueFrom": {"secretKeyRef": ref}}
    return {"name": name, "value": value if isinstance(value, str) else str(value)}


def _resources_block(resources: Mapping[str, Any]) -> Dict[str, Dict[str, Any]]:
    requests: Dict[str, Any] = {"cpu": resources.get("requests_cpu"), "memory": resources.get("requests_memory")}
    limits: Dict[str, Any] = {"cpu": resources.get("limits_cpu"), "memory": resources.get("limits_memory")}
    gpus = resources.get("limits_gpu") or 0
    if gpus:
        requests[GPU_RESOURCE] = str(resources.get("requests_gpu") or gpus)
        limits[GPU_RESOURCE] = str(gpus)
    return {"requests": requests, "limits": limits}


def _mount_entry(volume: Mapping[str, Any]) -> Dict[str, Any]:
    mount: Dict[str, Any] = {"name": volume["name"], "mountPath": volume["mount_path"],
                             "readOnly": bool(volume.get("read_only", True))}
    if volume.get("sub_path"):
        mount["subPath"] = volume["sub_path"]
    return mount


def _pod_volume_entry(volume: Mapping[str, Any]) -> Dict[str, Any]:
    if volume.get("secret_name") and volume.get("pvc_name"):
        raise ConfigError(f"volume {volume['name']!r} names both a secret and a PVC; give each its own volume")
    if volume.get("secret_name"):
        return {"name": volume["name"], "secret": {"secretName": volume["secret_name"]}}
    if volume.get("pvc_name"):
        return {"name": volume["name"], "persistentVolumeClaim": {
            "claimName": volume["pvc_name"], "readOnly": bool(volume.get("read_only", True))}}
    empty_dir: Dict[str, Any] = {"sizeLimit": volume["size_limit"]} if volume.get("size_limit") else {}
    return {"name": volume["name"], "emptyDir": empty_dir}


def _container_security(container: Mapping[str, Any]) -> Dict[str, Any]:
    """What every container is denied: gaining privileges (setuid binaries, file
    capabilities) and every Linux capability; plus a read-only image filesystem when
    the job asks for one (the runner's jobs do)."""
    context: Dict[str, Any] = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}
    if container.get("read_only_root_filesystem"):
        context["readOnlyRootFilesystem"] = True
    return context


def _container(context: Mapping[str, Any]) -> Dict[str, Any]:
    spec = _mapping(context, "container")
    container: Dict[str, Any] = {"name": spec.get("name") or CONTAINER_NAME}
    if spec.get("image"):  # None only for a backend that runs no images (the local one)
        container["image"] = spec["image"]
    container["imagePullPolicy"] = spec.get("image_pull_policy") or "IfNotPresent"
    if spec.get("working_dir"):
        container["workingDir"] = spec["working_dir"]
    if spec.get("command"):
        container["command"] = [str(part) for part in spec["command"]]
    if spec.get("args"):
        container["args"] = [str(part) for part in spec["args"]]
    env = spec.get("env") or {}
    if env:
        container["env"] = [_env_entry(name, value) for name, value in env.items()]
    container["resources"] = _resources_block(_mapping(context, "resources"))
    mounts = context.get("volume_mounts") or []
    if mounts:
        container["volumeMounts"] = [_mount_entry(volume) for volume in mounts]
    container["securityContext"] = _container_security(spec)
    container["terminationMessagePolicy"] = TERMINATION_MESSAGE_POLICY
    return container


def _pod_spec(context: Mapping[str, Any]) -> Dict[str, Any]:
    pod_spec: Dict[str, Any] = {"restartPolicy": "Never"}
    if context.get("host_network"):
        # Without ClusterFirstWithHostNet a hostNetwork pod resolves names with the
        # node's resolver and cannot find cluster services.
        pod_spec["hostNetwork"] = True
        pod_spec["dnsPolicy"] = "ClusterFirstWithHostNet"
    pod_spec["automountServiceAccountToken"] = bool(context.get("automount_service_account_token", False))
    security = dict(_mapping(context, "pod_security_context"))
    if security:
        pod_spec["securityContext"] = security
    pod_spec["containers"] = [_container(context)]
    node_selector = dict(_mapping(context, "resources").get("node_selector") or {})
    if node_selector:
        pod_spec["nodeSelector"] = node_selector
    if context.get("affinity"):
        pod_spec["affinity"] = dict(context["affinity"])
    if context.get("tolerations"):
        pod_spec["tolerations"] = list(context["tolerations"])
    if context.get("image_pull_secrets"):
        pod_spec["imagePullSecrets"] = [{"name": name} for name in context["image_pull_secrets"]]
    volumes = context.get("pod_volumes") or []
    if volumes:
        pod_spec["volumes"] = [_pod_volume_entry(volume) for volume in volumes]
    return pod_spec


def manifest_from_context(context: Mapping[str, Any]) -> Dict[str, Any]:
    """The batch/v1 Job of ``context`` as a dict (see the module doc)."""
    labels = {str(k): str(v) for k, v in _mapping(context, "labels").items()}
    spec: Dict[str, Any] = {"backoffLimit": context.get("backoff_limit") or 0}
    ttl: Optional[int] = context.get("ttl_seconds_after_finished")
    if ttl is not None:
        spec["ttlSecondsAfterFinished"] = ttl
    if context.get("active_deadline_seconds") is not None:
        spec["activeDeadlineSeconds"] = context["active_deadline_seconds"]
    spec["template"] = {"metadata": {"labels": dict(labels)}, "spec": _pod_spec(context)}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": _required(context, "job_name"), "namespace": _required(context, "namespace"),
                     "labels": labels},
        "spec": spec,
    }
