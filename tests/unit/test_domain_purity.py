"""The domain stays pure: no cloud clients, no processes, no environment, no files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

DOMAIN = Path(__file__).resolve().parents[2] / "src" / "spikebatch" / "domain"
FORBIDDEN_MODULES = {"kubernetes", "boto3", "botocore", "minio", "subprocess", "urllib3", "requests", "shutil", "tempfile", "socket"}
# Attribute uses that read the environment or touch the filesystem.
FORBIDDEN_CALLS = {
    ("os", "environ"), ("os", "getenv"), ("os", "listdir"), ("os", "remove"), ("os", "makedirs"),
    ("os", "scandir"), ("os", "walk"), ("os", "stat"), ("os", "path"),
}
FORBIDDEN_NAMES = {"open", "Path", "PurePath"}


def domain_files() -> list[Path]:
    files = sorted(DOMAIN.glob("*.py"))
    assert len(files) >= 8, "domain package not found where expected"
    return files


def impurities(source: str) -> list[str]:
    tree = ast.parse(source)
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in FORBIDDEN_MODULES | {"os", "pathlib"}:
                    problems.append(f"line {node.lineno}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            if node.module.split(".")[0] in FORBIDDEN_MODULES | {"os", "pathlib"}:
                problems.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.ImportFrom) and node.level > 0 and node.module and node.module.split(".")[0] in {"adapters", "application", "entrypoints", "ports"}:
            problems.append(f"line {node.lineno}: domain imports the outer layer {node.module}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN_CALLS:
                problems.append(f"line {node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES and isinstance(node.ctx, ast.Load):
            problems.append(f"line {node.lineno}: uses {node.id}")
    return problems


@pytest.mark.parametrize("path", domain_files(), ids=lambda p: p.name)
def test_domain_module_is_pure(path: Path) -> None:
    problems = impurities(path.read_text(encoding="utf-8"))
    assert not problems, f"{path.name} is not pure: " + "; ".join(problems)


def test_purity_check_catches_an_impure_module() -> None:
    # The scanner must be able to fail: feed it a module that breaks every rule.
    bad = (
        "import subprocess\nfrom boto3 import client\nfrom ..adapters import x\n"
        "import os\nvalue = os.environ['HOME']\nwith open('x') as f: pass\n"
    )
    found = " ".join(impurities(bad))
    for expected in ("import subprocess", "from boto3", "outer layer adapters", "os.environ", "uses open"):
        assert expected in found
