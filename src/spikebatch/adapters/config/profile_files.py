"""Cluster profiles from YAML files: built-ins shipped in ``spikebatch/profiles`` and
user profiles found on a search path.

Search order for a name (first hit wins, so a user can shadow a built-in):
  1. each folder in $SPIKEBATCH_PROFILE_PATH (os.pathsep-separated),
  2. the user's config folder: $XDG_CONFIG_HOME/spikebatch/profiles
     (default ~/.config/spikebatch/profiles),
  3. the built-in profiles.
A profile may say ``extends: <name>`` to start from another profile; mappings are
merged key by key, everything else (lists, scalars) is replaced.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from ...domain.errors import ConfigError, JobSpecValidationError, ProfileNotFoundError
from ...domain.models import ClusterProfile
from ...domain.validation import validate_model
from .yaml_reader import check_user_file, parse_yaml, read_user_text

PROFILE_PATH_ENV = "SPIKEBATCH_PROFILE_PATH"
_SUFFIXES = (".yaml", ".yml")
#: The reference's other names of built-in profiles (used when no profile has the name).
PROFILE_ALIASES: Dict[str, str] = {"default": "defaults", "nautilus": "nrp"}


def user_profile_dirs(env: Optional[Dict[str, str]] = None) -> List[Path]:
    env = os.environ if env is None else env
    dirs = [Path(p).expanduser() for p in env.get(PROFILE_PATH_ENV, "").split(os.pathsep) if p]
    config_home = Path(env.get("XDG_CONFIG_HOME") or Path.home() / ".config").expanduser()
    dirs.append(config_home / "spikebatch" / "profiles")
    return dirs


def _builtin_dir():
    return resources.files("spikebatch") / "profiles"


def builtin_profile_names() -> List[str]:
    return sorted(
        entry.name.rsplit(".", 1)[0]
        for entry in _builtin_dir().iterdir()
        if entry.name.endswith(_SUFFIXES)
    )


def available_profiles(env: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """Every profile name that can be loaded, with where it comes from."""
    found: Dict[str, str] = {name: "built-in" for name in builtin_profile_names()}
    for folder in reversed(user_profile_dirs(env)):
        if folder.is_dir():
            for path in sorted(folder.iterdir()):
                if path.suffix in _SUFFIXES:
                    found[path.stem] = str(path)
    return dict(sorted(found.items()))


def _read_yaml(text: str, source: str) -> Dict[str, Any]:
    data = parse_yaml(text, source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: a profile must be a YAML mapping of fields, got {type(data).__name__}")
    return data


def _file_identity(path: Path) -> str:
    """What makes two profile sources the same file, however they were reached."""
    return f"file:{path.resolve()}"


def _candidates(name: str) -> List[str]:
    """The names ``name`` may mean, in order: as written (trimmed), lower-cased, and the
    built-in profile a reference alias stands for."""
    trimmed = str(name).strip()
    folded = trimmed.casefold()
    return list(dict.fromkeys(n for n in (trimmed, folded, PROFILE_ALIASES.get(folded)) if n))


def _find(name: str, env: Optional[Dict[str, str]]) -> Tuple[str, str, str, str]:
    """(yaml text, source description, source identity, the name found) for a profile
    name (trimmed, case-folded or a reference alias when the name as written is not
    found)."""
    for candidate in _candidates(name):
        found = _find_exact(candidate, env)
        if found is not None:
            return (*found, candidate)
    known = ", ".join(available_profiles(env))
    aliases = ", ".join(f"{alias} -> {target}" for alias, target in PROFILE_ALIASES.items())
    raise ProfileNotFoundError(
        f"unknown profile {name!r}; known profiles: {known} (user profiles go in ${PROFILE_PATH_ENV} "
        f"or ~/.config/spikebatch/profiles/<name>.yaml; aliases: {aliases})"
    )


def _find_exact(name: str, env: Optional[Dict[str, str]]) -> Optional[Tuple[str, str, str]]:
    if "/" in name or "\\" in name or name in (".", ".."):
        return None  # a name, never a path
    for folder in user_profile_dirs(env):
        for suffix in _SUFFIXES:
            path = folder / f"{name}{suffix}"
            if path.is_file():
                return read_user_text(path, str(path)), str(path), _file_identity(path)
    for suffix in _SUFFIXES:
        entry = _builtin_dir() / f"{name}{suffix}"
        if entry.is_file():
            return entry.read_text(encoding="utf-8"), f"built-in profile {name!r}", f"built-in:{name}"
    return None


def _deep_merge(base: Dict[str, Any], override: Dict[str, Any]) -> Dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _resolve(
    data: Dict[str, Any], source: str, env: Optional[Dict[str, str]], seen: Tuple[Tuple[str, str], ...]
) -> Dict[str, Any]:
    """Merge ``data`` onto the profile it extends. ``seen`` holds (identity, name) of each
    profile on the chain so far: a loop is the same *source* twice (a file ./nrp.yaml may
    extend the built-in nrp), not the same name."""
    parent = data.pop("extends", None)
    if parent is None:
        return data
    if not isinstance(parent, str):
        raise ConfigError(f"{source}: extends must be a profile name")
    text, parent_source, identity, parent = _find(parent, env)
    if identity in {seen_identity for seen_identity, _ in seen}:
        names = [name for _, name in seen]
        raise ConfigError(f"{source}: profiles extend each other in a loop ({' -> '.join([*names, parent])})")
    base = _resolve(_read_yaml(text, parent_source), parent_source, env, (*seen, (identity, parent)))
    base.pop("name", None)
    return _deep_merge(base, data)


def _to_profile(data: Dict[str, Any], source: str, default_name: str) -> ClusterProfile:
    data.setdefault("name", default_name)
    try:
        return validate_model(ClusterProfile, data)
    except JobSpecValidationError as exc:
        raise ConfigError(f"{source}: invalid profile: {exc.message}") from None


def load_cluster_profile(path: str | os.PathLike, env: Optional[Dict[str, str]] = None) -> ClusterProfile:
    """Load a profile from an explicit YAML path."""
    file = Path(path).expanduser()
    check_user_file(file, "profile file", "--profile-file")
    data = _read_yaml(read_user_text(file, str(file)), str(file))
    seen = ((_file_identity(file), file.stem),)
    return _to_profile(_resolve(data, str(file), env, seen), str(file), file.stem)


def load_profile_from_name(name: str, env: Optional[Dict[str, str]] = None) -> ClusterProfile:
    """Load a built-in or user profile by name; an unknown name lists the known ones.

    The name is trimmed; when no profile has it as written, its lower-case form and the
    reference's aliases (``default`` -> defaults, ``nautilus`` -> nrp) are tried. An
    unknown name is a ProfileNotFoundError (the reference falls back to defaults)."""
    text, source, identity, name = _find(name, env)
    data = _read_yaml(text, source)
    return _to_profile(_resolve(data, source, env, ((identity, name),)), source, name)
