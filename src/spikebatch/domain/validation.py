"""Validation of raw job-spec payloads into models, with one line per problem."""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple, Type, TypeVar

from pydantic import BaseModel, ValidationError

from .validation_error import JobSpecValidationError
from .models import JobSpec, _Model

M = TypeVar("M", bound=BaseModel)

#: Core-schema nodes that only wrap another schema: they add nothing to an error's ``loc``.
_WRAPPERS = {"default": "schema", "nullable": "schema", "function-before": "schema",
             "function-after": "schema", "function-wrap": "schema", "model": "schema",
             "json-or-python": "python_schema", "lax-or-strict": "lax_schema"}
_ITEMS = {"list", "set", "frozenset", "generator"}


def _location(loc: Iterable[Any]) -> str:
    parts: List[str] = []
    for item in loc:
        if isinstance(item, int):
            parts.append(f"[{item}]")
        elif parts:
            parts.append(f".{item}")
        else:
            parts.append(str(item))
    return "".join(parts) or "(top level)"


def _choice_label(choice: Any, defs: Dict[str, Any]) -> Tuple[Optional[str], Any]:
    """(label pydantic puts in ``loc`` for this union member, its schema)."""
    if isinstance(choice, tuple):
        return choice[1], choice[0]
    node = choice
    while node.get("type") == "definition-ref" and node.get("schema_ref") in defs:
        node = defs[node["schema_ref"]]
    if node.get("type") == "model":
        return node["cls"].__name__, choice
    if "schema" not in node and "choices" not in node:  # a plain type: str, int, ...
        return node.get("type"), choice
    return None, choice


def _walk(schema: Any, loc: Sequence[Any]) -> Tuple[List[Any], List[Tuple[int, str]]]:
    """Follow ``loc`` through a model's core schema, dropping union-member tags.

    Returns the location a user reads (fields, keys and indexes only) and, for each union
    the error went through, (length of that location at the union, member tag). Where the
    schema cannot be followed the rest of ``loc`` is kept as it is.
    """
    clean: List[Any] = []
    unions: List[Tuple[int, str]] = []
    defs: Dict[str, Any] = {}
    node, i = schema, 0
    while node is not None and i < len(loc):
        kind = node.get("type")
        if kind == "definitions":
            defs.update({d["ref"]: d for d in node.get("definitions", []) if "ref" in d})
            node = node["schema"]
        elif kind == "definition-ref":
            node = defs.get(node.get("schema_ref"))
        elif kind in _WRAPPERS:
            node = node.get(_WRAPPERS[kind])
        elif kind == "model-fields":
            field = node["fields"].get(loc[i]) if isinstance(loc[i], str) else None
            if field is None:
                break
            clean.append(loc[i])
            node, i = field["schema"], i + 1
        elif kind == "dict":
            clean.append(loc[i])
            node, i = node.get("values_schema"), i + 1
            if i < len(loc) and loc[i] == "[key]":
                break
        elif kind in _ITEMS and isinstance(loc[i], int):
            clean.append(loc[i])
            node, i = node.get("items_schema"), i + 1
        elif kind == "union":
            tag = str(loc[i])
            unions.append((len(clean), tag))
            labelled = [_choice_label(choice, defs) for choice in node["choices"]]
            node, i = next((s for label, s in labelled if label == tag), None), i + 1
        elif kind == "tagged-union":
            unions.append((len(clean), str(loc[i])))
            node, i = node["choices"].get(loc[i]), i + 1
        else:
            break
    return clean + list(loc[i:]), unions


def _message(problem: Mapping[str, Any]) -> str:
    if problem["type"] == "extra_forbidden":
        return "unknown field; remove it or check its spelling"
    if problem["type"] == "missing":
        return "required field is missing"
    return str(problem["msg"]).removeprefix("Value error, ")


_Item = Tuple[List[Any], List[Tuple[int, str]], str]


def _pick_union_members(items: List[_Item], level: int) -> List[Tuple[List[Any], str]]:
    """One report per union: the errors of the member the value was meant as.

    A member with an error inside the value (a field of a mapping, say) is the one the
    user meant; its errors are kept. When every member rejects the value as a whole
    (wrong type), their messages become one line at the union's location.
    """
    # In pydantic's order: (None, (loc, message)) for a plain error, (site, None) for a union.
    order: List[Tuple[Optional[Tuple[Any, ...]], Any]] = []
    sites: Dict[Tuple[Any, ...], Dict[str, List[_Item]]] = {}
    for item in items:
        loc, unions, message = item
        if len(unions) <= level:
            order.append((None, (loc, message)))
            continue
        depth, tag = unions[level]
        site = tuple(loc[:depth])
        if site not in sites:
            sites[site] = {}
            order.append((site, None))
        sites[site].setdefault(tag, []).append(item)
    out: List[Tuple[List[Any], str]] = []
    for site, line in order:
        if site is None:
            out.append(line)
            continue
        members = sites[site]
        inside = [tag for tag, errs in members.items() if any(len(loc) > len(site) for loc, _, _ in errs)]
        if inside:
            out.extend(_pick_union_members(members[inside[0]], level + 1))
        else:
            messages = list(dict.fromkeys(m for errs in members.values() for _, _, m in errs))
            out.append((list(site), "; or ".join(messages)))
    return out


def _find_model(title: str) -> Optional[Type[BaseModel]]:
    pending: List[type] = [_Model]
    while pending:
        cls = pending.pop()
        if cls.__name__ == title:
            return cls
        pending.extend(cls.__subclasses__())
    return None


def _problems(
    error: ValidationError, model: Optional[Type[BaseModel]] = None
) -> List[Tuple[List[Any], str, str]]:
    """(location, pydantic error type, message) per problem, union tags dropped."""
    model = model or _find_model(error.title)
    schema = getattr(model, "__pydantic_core_schema__", None)
    items: List[_Item] = []
    kinds: Dict[Tuple[Any, ...], str] = {}
    for problem in error.errors(include_url=False):
        loc, unions = _walk(schema, problem["loc"]) if schema else (list(problem["loc"]), [])
        items.append((loc, unions, _message(problem)))
        kinds.setdefault(tuple(loc), problem["type"])
    return [(loc, kinds.get(tuple(loc), "value_error"), message) for loc, message in _pick_union_members(items, 0)]


def summarize_validation_errors(
    error: ValidationError, root: str = "", model: Optional[Type[BaseModel]] = None
) -> List[str]:
    """``field.path: what is wrong`` for each problem pydantic found.

    Union-member tags pydantic adds to a location (``env.X.str``, ``env.X.SecretEnvRef``)
    are not fields: they are dropped, and a value that fits no member of a union is one
    problem, not one per member.
    """
    if isinstance(error, JobSpecValidationError):
        return list(error.problems)
    lines = []
    for loc, _, message in _problems(error, model):
        line = f"{_location([root, *loc] if root else loc)}: {message}"
        if line not in lines:
            lines.append(line)
    return lines


def summarize_validation_error(exc: ValidationError) -> str:
    """The reference's summary of a validation error: an ``Invalid job config:`` header
    and one ``  - field.path: what is wrong`` line per problem (just the header when
    there is none). Takes our JobSpecValidationError or any pydantic ValidationError."""
    lines = summarize_validation_errors(exc)
    if not lines:
        return "Invalid job config"
    return "Invalid job config:\n  - " + "\n  - ".join(lines)


def _invalid(exc: ValidationError, root: str, model: Type[BaseModel]) -> JobSpecValidationError:
    problems = _problems(exc, model)
    lines: List[str] = []
    details = []
    for loc, kind, message in problems:
        line = f"{_location([root, *loc] if root else loc)}: {message}"
        if line not in lines:
            lines.append(line)
            details.append((tuple([root, *loc] if root else loc), kind, message))
    return JobSpecValidationError(lines, details, model.__name__)


def validate_model(model: Type[M], payload: Any, root: str = "") -> M:
    """Validate ``payload`` as ``model``; raise JobSpecValidationError naming each field."""
    if isinstance(payload, model):
        return payload
    if not isinstance(payload, Mapping):
        where = f"{root}: " if root else ""
        message = f"expected a mapping of fields, got {type(payload).__name__}"
        raise JobSpecValidationError(
            [f"{where}{message}"], [((root,) if root else (), "model_type", message)], model.__name__
        )
    try:
        return model.model_validate(dict(payload))
    except JobSpecValidationError:
        raise
    except ValidationError as exc:
        raise _invalid(exc, root, model) from None


def validate_job_spec(payload: Any) -> JobSpec:
    """Parse and validate a raw job spec payload (e.g. a loaded YAML mapping).

    Raises JobSpecValidationError, which is also a pydantic ``ValidationError``."""
    return validate_model(JobSpec, payload)
