"""The effective job: a JobSpec merged with its profile and its namespace's hook.

Policy and manifest rendering both judge the job that will really run, so both take
their merged values from here. Merge order, later wins:
  profile defaults  <  namespace hook of the target namespace  <  the JobSpec itself
(the hook only fills what the JobSpec leaves unset: env defaults, a default command,
the pull policy; its required volumes are always mounted).
"""

from __future__ import annotations

from typing import Dict, List, Optional

from .errors import ConfigError
from .models import ClusterProfile, EnvValue, JobSpec, NamespaceHookSpec, ResourceSpec, VolumeMountSpec


def target_namespace(job_spec: JobSpec, profile: ClusterProfile) -> str:
    """The JobSpec's namespace when it sets one (not ""), else the profile's."""
    if "namespace" in job_spec.model_fields_set and job_spec.namespace:
        return job_spec.namespace
    return profile.namespace


def namespace_hook(job_spec: JobSpec, profile: ClusterProfile) -> Optional[NamespaceHookSpec]:
    return profile.namespace_hooks.get(target_namespace(job_spec, profile))


def image_build_hint(image_profile: str) -> str:
    """How to get an image for ``image_profile``: build the runner image and name it in
    the profile (``spikebatch image build`` prints the line to add)."""
    gpu = image_profile == "gpu"
    return (
        f"build and push one with `spikebatch image build {'--gpu ' if gpu else ''}"
        f"--tag <registry>/spikebatch-runner:<version>{'-gpu' if gpu else ''} --push` and put the "
        f"default_images line it prints in the profile"
    )


def resolve_image(job_spec: JobSpec, profile: ClusterProfile) -> Optional[str]:
    """The image that will run; a clear error when none can be had. None only for a
    profile whose backend runs no images (the local backend) and a job naming none."""
    image_profile = job_spec.image_profile or profile.default_image_profile
    if not job_spec.container.image and profile.default_images and image_profile not in profile.default_images:
        raise ConfigError(
            f"image_profile {image_profile!r} is not defined by profile {profile.name!r}; "
            f"use one of: {', '.join(sorted(profile.default_images))}"
        )
    image = effective_image(job_spec, profile)
    if not image and profile.runs_containers:
        raise ConfigError(
            f"no container image: profile {profile.name!r} has no default_images.{image_profile}; "
            f"{image_build_hint(image_profile)} (or set container.image in the job config, or pass --image)"
        )
    return image


def effective_command(job_spec: JobSpec, profile: ClusterProfile) -> List[str]:
    """The container command: the JobSpec's, else the namespace hook's default."""
    if job_spec.container.command:
        return list(job_spec.container.command)
    hook = namespace_hook(job_spec, profile)
    return list(hook.default_command) if hook else []


def effective_pull_policy(job_spec: JobSpec, profile: ClusterProfile) -> str:
    hook = namespace_hook(job_spec, profile)
    if "image_pull_policy" not in job_spec.container.model_fields_set and hook and hook.image_pull_policy:
        return hook.image_pull_policy
    return job_spec.container.image_pull_policy


def effective_env(job_spec: JobSpec, profile: ClusterProfile) -> Dict[str, EnvValue]:
    hook = namespace_hook(job_spec, profile)
    env: Dict[str, EnvValue] = dict(hook.env_defaults) if hook else {}
    env.update(job_spec.container.env)
    return env


def effective_volumes(job_spec: JobSpec, profile: ClusterProfile) -> List[VolumeMountSpec]:
    """The mounts of the job: profile defaults, then the hook's required volumes, then
    the JobSpec's. Entries of one name are mounts of one volume (one secret mounted
    twice with ``sub_path``, say); a later layer that names a volume replaces every
    earlier mount of that name (the job knows best)."""
    hook = namespace_hook(job_spec, profile)
    merged: Dict[str, List[VolumeMountSpec]] = {}
    for layer in (profile.default_volumes, hook.required_volumes if hook else [], job_spec.volumes):
        named: Dict[str, List[VolumeMountSpec]] = {}
        for volume in layer:
            named.setdefault(volume.name, []).append(volume)
        merged.update(named)
    mounts = [volume for entries in merged.values() for volume in entries]
    mount_paths: Dict[str, str] = {}
    for volume in mounts:
        other = mount_paths.setdefault(volume.mount_path, volume.name)
        if other != volume.name:
            raise ConfigError(
                f"volumes {other!r} and {volume.name!r} both mount at {volume.mount_path!r}; "
                "give one of them another mount_path"
            )
    return mounts


def pod_volumes(mounts: List[VolumeMountSpec]) -> List[VolumeMountSpec]:
    """One entry per volume name (the first mount of each): the pod's ``volumes``."""
    first: Dict[str, VolumeMountSpec] = {}
    for volume in mounts:
        first.setdefault(volume.name, volume)
    return list(first.values())


def effective_image(job_spec: JobSpec, profile: ClusterProfile) -> Optional[str]:
    """The image that will run, or None when neither the job nor the profile names one."""
    if job_spec.container.image:
        return job_spec.container.image
    return profile.default_images.get(job_spec.image_profile or profile.default_image_profile)


def effective_argv(job_spec: JobSpec, profile: ClusterProfile) -> List[str]:
    """Command + args as the container will run them."""
    command = effective_command(job_spec, profile)
    # With no command, args go to the image's entrypoint; most analysis images have
    # none, so the args are what runs.
    return command + list(job_spec.container.args)


_GPU_FIELDS = {"requests_gpu", "limits_gpu"}


def effective_resources(job_spec: JobSpec, profile: ClusterProfile) -> ResourceSpec:
    """profile.resources overlaid with the fields the JobSpec's resources set explicitly."""
    explicit = set(job_spec.resources.model_fields_set)
    if explicit & _GPU_FIELDS:
        # The JobSpec validated its GPU pair as equal; taking half of it from the
        # profile could produce a request/limit pair Kubernetes rejects.
        explicit |= _GPU_FIELDS
    merged = profile.resources.model_dump()
    merged.update({name: getattr(job_spec.resources, name) for name in explicit})
    return ResourceSpec.model_validate(merged)
