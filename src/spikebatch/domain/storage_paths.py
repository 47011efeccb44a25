"""Where a run's artifacts live: the profile's storage path templates."""

from __future__ import annotations

import string
from typing import Optional

from pydantic import model_validator

from .errors import ConfigError
from .model_base import StrictModel

STORAGE_CATEGORIES = ("inputs", "outputs", "logs", "blobs")
_PLACEHOLDERS = {"prefix", "run_id", "filename"}


class StoragePathTemplates(StrictModel):
    """Python format-string templates for artifact paths.

    Available placeholders: ``{prefix}``, ``{run_id}``, ``{filename}``. ``blobs`` holds
    content-addressed inputs; its ``{filename}`` is the file's sha256 hex digest.
    """

    inputs: str = "{prefix}inputs/{run_id}/{filename}"
    outputs: str = "{prefix}outputs/{run_id}/"
    logs: str = "{prefix}logs/{run_id}/"
    blobs: str = "{prefix}blobs/sha256/{filename}"

    @model_validator(mode="after")
    def _placeholders(self) -> "StoragePathTemplates":
        required = {
            "inputs": {"run_id", "filename"},
            "outputs": {"run_id"},
            "logs": {"run_id"},
            "blobs": {"filename"},
        }
        for category, needed in required.items():
            template = getattr(self, category)
            try:
                used = {name for _, name, _, _ in string.Formatter().parse(template) if name is not None}
            except ValueError as exc:  # e.g. "{run_id/": expected '}' before end of string
                raise ValueError(f"storage template {category!r} is malformed: {exc}") from None
            unknown = used - _PLACEHOLDERS
            if unknown:
                raise ValueError(
                    f"storage template {category!r} uses unknown placeholder(s) "
                    f"{sorted(unknown)}; only {{prefix}}, {{run_id}}, {{filename}} exist"
                )
            missing = needed - used
            if missing:
                raise ValueError(
                    f"storage template {category!r} must contain "
                    + ", ".join("{" + m + "}" for m in sorted(missing))
                )
            try:  # conversions and format specs ("{run_id!x}") only fail when rendered
                template.format(prefix="s3://b/", run_id="r", filename="f")
            except (ValueError, KeyError, IndexError, AttributeError) as exc:
                raise ValueError(f"storage template {category!r} is malformed: {exc}") from None
        for category in ("outputs", "logs"):
            if not getattr(self, category).endswith("/"):
                raise ValueError(f"storage template {category!r} must end with '/'")
        return self

    def render(self, category: str, *, prefix: Optional[str], run_id: str = "", filename: str = "") -> str:
        """Expand one category's template. ``prefix`` is the storage root URI."""
        if category not in STORAGE_CATEGORIES:
            raise ConfigError(
                f"unknown storage category {category!r}; use one of {', '.join(STORAGE_CATEGORIES)}"
            )
        if not prefix:
            raise ConfigError(
                "storage prefix is not set; set default_s3_prefix in the profile "
                "(e.g. 's3://my-bucket/spikebatch/') or pass prefix="
            )
        if not prefix.endswith("/"):
            prefix += "/"
        return getattr(self, category).format(prefix=prefix, run_id=run_id, filename=filename)
