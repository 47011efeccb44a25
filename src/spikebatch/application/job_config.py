"""Applying a user's image choices (--image, --image-profile) to a JobSpec."""

from __future__ import annotations

from typing import Any, Optional

from ..domain.model_base import with_changes
from ..domain.models import JobSpec


def apply_image_choice(job_spec: JobSpec, *, image: Optional[str] = None, image_profile: Optional[str] = None) -> JobSpec:
    """The JobSpec with --image / --image-profile applied (an explicit image wins)."""
    changes: dict[str, Any] = {}
    if image_profile:
        changes["image_profile"] = image_profile
    if image:
        changes["container"] = with_changes(job_spec.container, image=image)
    return with_changes(job_spec, **changes) if changes else job_spec
