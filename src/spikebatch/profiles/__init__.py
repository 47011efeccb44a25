"""Load cluster profile presets for job execution (spec module ``profiles``; the
built-in profile YAML files live in this folder)."""

from ..adapters.config.profile_files import (  # noqa: F401 - re-exported public API
    PROFILE_PATH_ENV,
    available_profiles,
    builtin_profile_names,
    load_cluster_profile,
    load_profile_from_name,
    user_profile_dirs,
)

__all__ = [
    "PROFILE_PATH_ENV",
    "available_profiles",
    "builtin_profile_names",
    "load_cluster_profile",
    "load_profile_from_name",
    "user_profile_dirs",
]
