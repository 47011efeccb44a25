"""Every public name of spikelab.batch_jobs 0.1.2 exists under the ``spikebatch``
import root, and can be called the way code written for the reference calls it.

The installed reference package is the oracle: its modules are imported and walked,
so a name or a parameter it has and we lack fails here by name. For each callable:
every reference parameter exists here with the same name, a positional parameter at
the same position, a default where the reference has one (the same value when it is a
plain value), and nothing required here that the reference does not require. For each
pydantic model: every reference field exists with the same default. Deliberate
differences are listed below with their reason, and each must be in the README's
porting section.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import re
from pathlib import Path
from typing import Any, Iterator

import pytest
from pydantic import BaseModel

REFERENCE_ROOT = "spikelab.batch_jobs"
#: The reference's modules, by their name under the root.
MODULES = [
    "models", "policy", "profiles", "session", "backend_k8s", "storage_s3", "artifact_packager",
    "templating", "credentials", "validation", "cli", "entrypoints.workspace", "entrypoints.sorting",
]

#: (module, qualified name, parameter or field) we deliberately differ on -> why. Each
#: must appear in the README's "Porting from spikelab.batch_jobs" section.
DELIBERATE = {
    # A job config without an image takes the profile's default image (ours); the
    # reference requires one in the config.
    ("models", "ContainerSpec", "image"): "container.image may be omitted: the profile's image is used",
}

README = Path(__file__).resolve().parents[2] / "README.md"
_PLAIN = (type(None), bool, int, float, str, bytes, tuple)


def _public(module: Any) -> Iterator[tuple[str, Any]]:
    for name, value in vars(module).items():
        if name.startswith("_") or inspect.ismodule(value):
            continue
        if getattr(value, "__module__", None) == module.__name__ or (name.isupper() and not callable(value)):
            yield name, value


def _reference_items() -> list[tuple[str, str, Any]]:
    items = []
    for short in MODULES:
        module = importlib.import_module(f"{REFERENCE_ROOT}.{short}")
        items += [(short, name, value) for name, value in _public(module)]
    return items


REFERENCE_ITEMS = _reference_items()


def _ours(short: str) -> Any:
    return importlib.import_module(f"spikebatch.{short}")


def _signature_problems(where: str, ref: Any, ours: Any, skip_first: bool = False) -> list[str]:
    """What a call written against ``ref`` would trip on when made to ``ours``."""
    ref_params = list(inspect.signature(ref).parameters.values())
    our_params = list(inspect.signature(ours).parameters.values())
    if skip_first:
        ref_params, our_params = ref_params[1:], our_params[1:]
    ours_by_name = {p.name: p for p in our_params}
    takes_any_keyword = any(p.kind is p.VAR_KEYWORD for p in our_params)
    positional = [p for p in our_params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    problems = []
    for index, p in enumerate(ref_params):
        if (where.split(".")[0], where.split(".", 1)[-1], p.name) in DELIBERATE:
            continue
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            if not any(q.kind is p.kind for q in our_params):
                problems.append(f"{where}: takes no {p}")
            continue
        q = ours_by_name.get(p.name)
        if q is None:
            if not (takes_any_keyword and p.kind is p.KEYWORD_ONLY):
                problems.append(f"{where}: no parameter {p.name!r}")
            continue
        if p.kind is p.POSITIONAL_OR_KEYWORD and (index >= len(positional) or positional[index].name != p.name):
            problems.append(f"{where}: {p.name!r} is not positional parameter {index}")
        if q.kind is q.POSITIONAL_ONLY:
            problems.append(f"{where}: {p.name!r} cannot be passed by keyword")
        if p.default is not p.empty:
            if q.default is q.empty:
                problems.append(f"{where}: {p.name!r} has no default (reference: {p.default!r})")
            elif isinstance(p.default, _PLAIN) and p.default != q.default:
                problems.append(f"{where}: {p.name!r} defaults to {q.default!r} (reference: {p.default!r})")
    ref_names = {p.name for p in ref_params}
    for q in our_params:
        if q.name not in ref_names and q.default is q.empty and q.kind not in (q.VAR_POSITIONAL, q.VAR_KEYWORD):
            problems.append(f"{where}: requires {q.name!r}, which the reference does not")
    return problems


def _field_default(field: Any) -> Any:
    if field.default_factory is not None:
        return field.default_factory()
    return field.default


def _model_problems(where: str, ref: type, ours: type) -> list[str]:
    problems = []
    for name, ref_field in ref.model_fields.items():
        if (where.split(".")[0], where.split(".", 1)[-1], name) in DELIBERATE:
            continue
        our_field = ours.model_fields.get(name)
        if our_field is None:
            problems.append(f"{where}: no field {name!r}")
            continue
        if ref_field.is_required():
            continue  # ours may require it too, or default it
        if our_field.is_required():
            problems.append(f"{where}.{name}: required (reference default {_field_default(ref_field)!r})")
            continue
        ref_default, our_default = _field_default(ref_field), _field_default(our_field)
        if isinstance(ref_default, BaseModel):
            ref_default, our_default = ref_default.model_dump(), getattr(our_default, "model_dump", lambda: our_default)()
            our_default = {k: v for k, v in our_default.items() if k in ref_default}
        if ref_default != our_default:
            problems.append(f"{where}.{name}: defaults to {our_default!r} (reference {ref_default!r})")
    return problems


def _class_problems(short: str, name: str, ref: type, ours: type) -> list[str]:
    where = f"{short}.{name}"
    if not isinstance(ours, type):
        return [f"{where}: is not a class"]
    problems = []
    if issubclass(ref, BaseModel):
        if not issubclass(ours, BaseModel):
            return [f"{where}: is not a pydantic model"]
        problems += _model_problems(where, ref, ours)
    elif dataclasses.is_dataclass(ref) or "__init__" in vars(ref):
        problems += _signature_problems(f"{where}.__init__", ref.__init__, ours.__init__, skip_first=True)
    for attr, value in vars(ref).items():
        if attr.startswith("_"):
            continue
        if not hasattr(ours, attr):
            problems.append(f"{where}: no attribute {attr!r}")
        elif inspect.isfunction(value):
            problems += _signature_problems(f"{where}.{attr}", value, getattr(ours, attr), skip_first=True)
        elif isinstance(value, _PLAIN) and getattr(ours, attr) != value:
            problems.append(f"{where}.{attr} is {getattr(ours, attr)!r} (reference {value!r})")
    return problems


@pytest.mark.parametrize("short,name,ref", REFERENCE_ITEMS, ids=[f"{m}.{n}" for m, n, _ in REFERENCE_ITEMS])
def test_each_public_name_is_there_and_callable_the_same_way(short: str, name: str, ref: Any) -> None:
    module = _ours(short)
    assert hasattr(module, name), f"spikebatch.{short} has no {name} (spikelab.batch_jobs.{short} has)"
    ours = getattr(module, name)
    if inspect.isclass(ref):
        problems = _class_problems(short, name, ref, ours)
    elif callable(ref):
        problems = _signature_problems(f"{short}.{name}", ref, ours)
    else:
        problems = [] if ours == ref else [f"{short}.{name} is {ours!r} (reference {ref!r})"]
    assert not problems, "\n".join(problems)


def test_the_reference_list_is_not_empty() -> None:
    # The walk above depends on the installed reference: it must find what the spec names.
    found = {(m, n) for m, n, _ in REFERENCE_ITEMS}
    assert {("session", "RunSession"), ("backend_k8s", "KubernetesBatchJobBackend"),
            ("storage_s3", "S3StorageClient"), ("cli", "main"), ("templating", "render_job_manifest")} <= found


def test_the_top_level_exports_match() -> None:
    reference = importlib.import_module(REFERENCE_ROOT)
    import spikebatch

    missing = [n for n in reference.__all__ if n not in spikebatch.__all__ or not hasattr(spikebatch, n)]
    assert not missing, f"spikebatch does not export {missing}"
    for name in reference.__all__:
        ref_value, our_value = getattr(reference, name), getattr(spikebatch, name)
        assert our_value.__name__ == ref_value.__name__


def test_every_deliberate_difference_is_in_the_readme_porting_section() -> None:
    text = README.read_text(encoding="utf-8")
    match = re.search(r"^## Porting from spikelab\.batch_jobs\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, "README has no '## Porting from spikelab.batch_jobs' section"
    section = match.group(1)
    for (short, qualname, param) in DELIBERATE:
        assert param in section and qualname.split(".")[0] in section, (
            f"README porting section does not mention {short}.{qualname} {param!r}")
