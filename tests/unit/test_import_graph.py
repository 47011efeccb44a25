"""The layers import only inward, read from the source (every import, also those inside
functions): domain <- ports <- application <- container / entrypoints, and adapters
(which implement the ports) reach only the domain and the ports.

    domain        nothing outside itself (and no I/O: test_domain_purity.py)
    ports         domain
    application   domain, ports
    adapters      domain, ports, other adapters
    container     anything but the entrypoints
    public        the spec's module names at the package top: thin re-exports of the
                  layers below; only ``spikebatch.session`` (the library's entry) may
                  use the container
    entrypoints   the container, the public modules, application, ports, domain:
                  every adapter they use comes from the container

Besides: ports and application import no client library (kubernetes, boto3, minio,
typer, rich, YAML, ...) and no importlib (an import by name would hide an edge), and
every adapter the container names by string exists.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Iterator, Optional

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "spikebatch"
INNER_LAYERS = ("domain", "ports", "application", "adapters", "entrypoints")

ALLOWED = {
    "domain": {"domain"},
    "ports": {"domain", "ports"},
    "application": {"domain", "ports", "application"},
    "adapters": {"domain", "ports", "adapters"},
    "container": {"domain", "ports", "application", "adapters", "container", "public"},
    "public": {"domain", "ports", "application", "adapters", "public"},
    "entrypoints": {"domain", "ports", "application", "container", "public", "entrypoints"},
}
#: Libraries that do I/O or presentation: the use cases and their ports reach them
#: only through adapters or the entrypoints.
CLIENT_LIBRARIES = {"kubernetes", "boto3", "botocore", "minio", "urllib3", "requests", "typer", "rich", "yaml",
                    "dependency_injector", "importlib", "subprocess", "spikeinterface", "spikelab"}
#: The library's entry: RunSession.from_profile asks the composition root for adapters.
MAY_USE_CONTAINER = {"spikebatch.session"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def layer_of(module: str) -> str:
    """The layer of a spikebatch module name (public: the spec's top-level modules)."""
    parts = module.split(".")
    if len(parts) == 1:
        return "public"  # the package itself: lazy re-exports
    if parts[1] in INNER_LAYERS:
        return parts[1]
    if parts[1] == "container":
        return "container"
    if parts[1] in ("__main__", "cli"):
        return "entrypoints"
    return "public"


def imported_modules(source: str, importer: str, is_package: bool) -> Iterator[tuple[int, str]]:
    """(line, absolute module) of every spikebatch import in ``source``."""
    package = importer if is_package else importer.rsplit(".", 1)[0]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "spikebatch":
                    yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                base: Optional[str] = node.module
            else:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([node.module] if node.module else []))
            if not base or base.split(".")[0] != "spikebatch":
                continue
            # "from . import x" / "from .adapters import x" may name submodules.
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                yield node.lineno, candidate if _is_module(candidate) else base


def _is_module(name: str) -> bool:
    path = PACKAGE.parent.joinpath(*name.split("."))
    return path.with_suffix(".py").is_file() or (path / "__init__.py").is_file()


def client_library_imports(source: str) -> Iterator[tuple[int, str]]:
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        for name in names:
            if name.split(".")[0] in CLIENT_LIBRARIES:
                yield node.lineno, name


def violations(source: str, importer: str, is_package: bool = False) -> list[str]:
    found = []
    source_layer = layer_of(importer)
    if source_layer in ("ports", "application"):
        for line, name in client_library_imports(source):
            found.append(f"{importer} line {line}: the {source_layer} layer imports the library {name}")
    for line, target in imported_modules(source, importer, is_package):
        target_layer = layer_of(target)
        if target_layer == "container" and importer not in MAY_USE_CONTAINER and source_layer != "entrypoints":
            if source_layer != "container":
                found.append(f"{importer} line {line}: imports the composition root {target}")
            continue
        if target_layer not in ALLOWED[source_layer] and target_layer != "container":
            found.append(f"{importer} line {line}: the {source_layer} layer imports {target} ({target_layer})")
    return found


def package_modules() -> list[Path]:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) > 40, "spikebatch sources not found where expected"
    return files


@pytest.mark.parametrize("path", package_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_imports_only_what_its_layer_may(path: Path) -> None:
    problems = violations(path.read_text(encoding="utf-8"), module_name(path), path.name == "__init__.py")
    assert not problems, "; ".join(problems)


def test_every_layer_is_where_the_rules_expect_it() -> None:
    for layer in INNER_LAYERS:
        assert (PACKAGE / layer / "__init__.py").is_file(), layer
    assert (PACKAGE / "container.py").is_file()


@pytest.mark.parametrize(
    "importer, source, expected",
    [
        ("spikebatch.domain.models", "from ..ports.backend import JobState\n", "the domain layer imports spikebatch.ports.backend"),
        ("spikebatch.ports.storage", "from ..application import session\n", "the ports layer imports spikebatch.application.session"),
        ("spikebatch.application.session", "def f():\n    from ..adapters.files import atomic\n", "the application layer imports spikebatch.adapters.files.atomic"),
        ("spikebatch.application.session", "from ..container import build_container\n", "imports the composition root"),
        ("spikebatch.application.session", "from ..profiles import load_profile_from_name\n", "imports spikebatch.profiles (public)"),
        ("spikebatch.adapters.local.backend", "from ...application.runner import run_in_job\n", "the adapters layer imports spikebatch.application.runner"),
        ("spikebatch.adapters.s3.boto3_store", "import spikebatch.session\n", "the adapters layer imports spikebatch.session (public)"),
        ("spikebatch.models", "from .container import build_container\n", "imports the composition root"),
        ("spikebatch.entrypoints.cli_jobs", "from ..adapters.files.atomic import atomic_path\n", "the entrypoints layer imports spikebatch.adapters.files.atomic"),
        ("spikebatch.application.waiting", "import boto3\n", "the application layer imports the library boto3"),
        ("spikebatch.application.waiting", "def f():\n    import importlib\n", "the application layer imports the library importlib"),
        ("spikebatch.ports.storage", "from yaml import safe_load\n", "the ports layer imports the library yaml"),
    ],
)
def test_a_forbidden_import_is_caught(importer: str, source: str, expected: str) -> None:
    # The checker must be able to fail: each of these breaks one rule.
    found = " ".join(violations(source, importer))
    assert expected in found, found


def test_the_container_names_only_adapters_that_exist() -> None:
    # container.py names its adapters as "module:name" strings (imported on first use);
    # a typo would only show when that profile is used, so resolve every one here.
    import importlib

    import spikebatch.container as container

    source = (PACKAGE / "container.py").read_text(encoding="utf-8")
    targets = [node.args[0].value for node in ast.walk(ast.parse(source))
               if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "_lazy"
               and node.args and isinstance(node.args[0], ast.Constant)]
    assert len(targets) >= 15, targets
    for target in targets:
        module, _, name = target.partition(":")
        assert callable(getattr(importlib.import_module(f"{container._ADAPTERS}.{module}"), name)), target


def test_every_top_level_name_resolves() -> None:
    import spikebatch

    for name in spikebatch.__all__:
        assert getattr(spikebatch, name) is not None, name


def test_allowed_imports_pass() -> None:
    assert violations("from ..domain.models import JobSpec\nfrom ..ports.storage import ArtifactStore\n",
                      "spikebatch.application.session") == []
    assert violations("from ..files.atomic import atomic_path\n", "spikebatch.adapters.records.submission_files") == []
    assert violations("from .container import open_session\n", "spikebatch.session") == []
