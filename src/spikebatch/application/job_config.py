"""Applying a user's image choices (--image, --image-profile) to a JobSpec."""

from __future__ import annotations

from typing import Any, Optional

from ..domain.models import JobSpec


def apply_image_choice(job_spec: JobSpec, *, image: Optional[str] = None, image_profile: Optional[str] = None) -> JobSpec:
    """The JobSpec with --image / --image-profile applied (an explicit image wins)."""
    update: dict[str, Any] = {}
    if image_profile:
        update["image_profile"] = image_profile
    if image:
        update["container"] = job_spec.container.model_copy(update={"image": image})
        # model_copy skips validation; validate the image the user typed.
        type(job_spec.container).model_validate(update["container"].model_dump(exclude_unset=True))
    if not update:
        return job_spec
    copied = job_spec.model_copy(update=update)
    # keep "explicitly set" bookkeeping (profile merges depend on it)
    copied.__pydantic_fields_set__ = set(job_spec.model_fields_set) | set(update)
    return copied
