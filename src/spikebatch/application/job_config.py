"""Applying a user's choices on the command line (--image, --image-profile, --gpus,
--cpus, --memory) to a JobSpec."""

from __future__ import annotations

from typing import Any, Optional

from ..domain.model_base import with_changes
from ..domain.models import ClusterProfile, JobSpec


def apply_image_choice(job_spec: JobSpec, *, image: Optional[str] = None, image_profile: Optional[str] = None) -> JobSpec:
    """The JobSpec with --image / --image-profile applied (an explicit image wins)."""
    changes: dict[str, Any] = {}
    if image_profile:
        changes["image_profile"] = image_profile
    if image:
        changes["container"] = with_changes(job_spec.container, image=image)
    return with_changes(job_spec, **changes) if changes else job_spec


def apply_resource_choice(job_spec: JobSpec, profile: ClusterProfile, *, gpus: Optional[int] = None,
                          cpu: Optional[str] = None, memory: Optional[str] = None) -> JobSpec:
    """The JobSpec with --gpus / --cpus / --memory applied, each as request = limit
    (the values are validated quantities; they win over the job config's).

    The image follows the GPUs when the job leaves the choice open (no image, no image
    profile): GPUs pick the profile's ``gpu`` image and ``--gpus 0`` its ``cpu`` one, so
    ``--gpus 1`` alone runs a GPU job on a GPU image. A profile without that image
    keeps its default, and the policy's GPU_JOB_ON_CPU_IMAGE / GPU_IMAGE_WITHOUT_GPU
    findings say what to do."""
    resources: dict[str, Any] = {}
    if cpu is not None:
        resources.update(requests_cpu=cpu, limits_cpu=cpu)
    if memory is not None:
        resources.update(requests_memory=memory, limits_memory=memory)
    if gpus is not None:
        resources.update(requests_gpu=gpus, limits_gpu=gpus)
    if not resources:
        return job_spec
    changes: dict[str, Any] = {"resources": with_changes(job_spec.resources, **resources)}
    wanted = None if gpus is None else ("gpu" if gpus > 0 else "cpu")
    if wanted and not job_spec.container.image and not job_spec.image_profile and wanted in profile.default_images:
        changes["image_profile"] = wanted
    return with_changes(job_spec, **changes)
