"""Load cluster profile presets for job execution (built-in YAML files live here)."""

from ..adapters.profile_files import (
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
