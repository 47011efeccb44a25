"""The runner image's build context, made in a temporary folder from what this spikebatch is.

Run from a source checkout (``src/spikebatch`` next to a ``pyproject.toml`` naming
spikebatch), the context holds that source (pyproject.toml, README.md, the licence and
``src/``) and the dependency list read from its pyproject.toml: the image installs the
dependencies in one layer and spikebatch itself in the next, so a change to the code
rebuilds only the small layer. Installed from a package index, the context holds no
source and the image installs ``spikebatch[runner]==<this version>`` from the index.

The Dockerfile is package data (``spikebatch/images/runner.Dockerfile``), so a user who
installed spikebatch with pip can build the image too.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
import re
import shutil
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Optional

from ...domain.errors import ConfigError

DISTRIBUTION = "spikebatch"
#: The extra that holds what jobs use inside the container.
RUNNER_EXTRA = "runner"
#: Files of the project root that the package build may read (README, licences).
ROOT_FILES = ("pyproject.toml", "README.md", "README.rst", "README.txt", "LICENSE", "LICENSE.txt", "LICENCE",
              "COPYING", "NOTICE", "setup.cfg", "MANIFEST.in")
_IGNORED = shutil.ignore_patterns("__pycache__", "*.pyc", "*.pyo", "*.egg-info", ".pytest_cache", ".mypy_cache",
                                  ".ruff_cache", "build", "dist")
_REQUIREMENT = re.compile(r"^\s*(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[(?P<extras>[^\]]*)\])?\s*(?P<rest>.*)$")


def dockerfile_text() -> str:
    return importlib.resources.files(DISTRIBUTION).joinpath("images", "runner.Dockerfile").read_text(encoding="utf-8")


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _load_toml(path: Path) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        try:
            import tomli as tomllib
        except ImportError:
            raise ConfigError(f"reading {path} needs Python 3.11 or the tomli package (pip install tomli)") from None
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}; fix the file or reinstall spikebatch") from None


def source_root(package_dir: Path) -> Optional[Path]:
    """The checkout ``package_dir`` belongs to (``<root>/src/spikebatch``, with a
    pyproject.toml naming spikebatch), or None for an installed package."""
    if package_dir.parent.name != "src":
        return None
    root = package_dir.parent.parent
    pyproject = root / "pyproject.toml"
    if not pyproject.is_file():
        return None
    name = _load_toml(pyproject).get("project", {}).get("name", "")
    return root if _canonical(str(name)) == DISTRIBUTION else None


def expand_requirements(project: dict[str, Any], extras: list[str]) -> list[str]:
    """The project's dependencies plus those of ``extras``; an extra naming the project
    itself (``spikebatch[sorting,spikelab]``) is expanded in place. Order kept, no repeats."""
    name = _canonical(str(project.get("name", "")))
    optional = project.get("optional-dependencies", {}) or {}
    found: list[str] = []
    seen_extras: set[str] = set()

    def add(requirement: str) -> None:
        match = _REQUIREMENT.match(requirement)
        if match and _canonical(match["name"]) == name:
            if match["rest"].strip():
                raise ConfigError(f"pyproject.toml: the self-reference {requirement!r} has a version or marker; "
                                  "list the extras' requirements instead")
            for extra in (match["extras"] or "").split(","):
                add_extra(extra.strip())
        elif requirement.strip() and requirement.strip() not in found:
            found.append(requirement.strip())

    def add_extra(extra: str) -> None:
        if not extra or extra in seen_extras:
            return
        if extra not in optional:
            raise ConfigError(f"pyproject.toml has no optional-dependencies {extra!r}; the runner image needs it")
        seen_extras.add(extra)
        for requirement in optional[extra]:
            add(requirement)

    for requirement in project.get("dependencies", []) or []:
        add(requirement)
    for extra in extras:
        add_extra(extra)
    return found


class RunnerBuildContext:
    """The build context of the runner image for the spikebatch that is running."""

    def __init__(self, package_dir: Optional[Path] = None, installed_version: Optional[str] = None) -> None:
        package_dir = Path(package_dir) if package_dir else Path(__file__).resolve().parents[2]
        self.root = source_root(package_dir)
        if self.root is not None:
            self.pyproject = _load_toml(self.root / "pyproject.toml")
            project = self.pyproject["project"]
            self.version = str(project.get("version") or installed_version or importlib.metadata.version(DISTRIBUTION))
            self.origin = f"the source tree at {self.root}"
        else:
            self.pyproject = None
            self.version = installed_version or importlib.metadata.version(DISTRIBUTION)
            self.origin = f"{DISTRIBUTION}[{RUNNER_EXTRA}]=={self.version} from the package index"

    def requirements(self) -> list[str]:
        """What the image's dependency layer installs."""
        if self.pyproject is None:
            return [f"{DISTRIBUTION}[{RUNNER_EXTRA}]=={self.version}"]
        return expand_requirements(self.pyproject["project"], [RUNNER_EXTRA])

    def build_requirements(self) -> list[str]:
        """The build backend, installed beside the dependencies (the package layer then
        needs no network)."""
        if self.pyproject is None:
            return []
        return list(self.pyproject.get("build-system", {}).get("requires", ["setuptools", "wheel"]))

    @contextmanager
    def materialize(self) -> Iterator[Path]:
        folder = Path(tempfile.mkdtemp(prefix="spikebatch-image-"))
        try:
            self._fill(folder)
            yield folder
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _fill(self, folder: Path) -> None:
        (folder / "Dockerfile").write_text(dockerfile_text(), encoding="utf-8")
        # Only the requirements themselves: this file's content is the cache key of the
        # image's dependency layer (the same from any checkout, whatever its path).
        (folder / "requirements.txt").write_text(_listing(
            "the dependencies of spikebatch's runner image", self.requirements()))
        (folder / "build-requirements.txt").write_text(_listing(
            "the build backend of spikebatch's source", self.build_requirements()))
        source = folder / "source"
        source.mkdir()
        if self.root is None:
            return
        for name in ROOT_FILES:
            if (self.root / name).is_file():
                shutil.copy2(self.root / name, source / name)
        shutil.copytree(self.root / "src", source / "src", ignore=_IGNORED)


def _listing(title: str, lines: list[str]) -> str:
    return "".join([f"# {title}\n", *(f"{line}\n" for line in lines)])
