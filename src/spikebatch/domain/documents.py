"""Parsing the YAML and JSON documents users hand spikebatch, within limits.

Profiles, job configs and ``--set`` values are YAML; the directory workspace index is
JSON. A small hostile document must not cost unbounded time or memory, nor crash the
process with a RecursionError or ValueError, so every document is parsed here:

- size: more than ``max_bytes`` (UTF-8) is refused before parsing;
- nesting: a collection nested deeper than ``max_depth`` levels is refused while the
  document is composed (YAML) or before it is decoded (JSON), so no parser recursion
  ever gets near Python's recursion limit;
- aliases (YAML): PyYAML composes an alias as a reference to the anchored node, so a
  "billion laughs" document is small in memory but expands to hundreds of millions of
  nodes in everything that walks it (merging, validating, rendering a manifest). The
  nodes each alias stands for are counted as the document is composed; more than
  ``max_alias_nodes`` in all is refused at once, as is an alias to a node that
  contains it (a cycle);
- integers: more than ``max_int_digits`` digits is refused (Python's own limit for
  turning an int into text; beyond it the value could not be printed anyway);
- scalars PyYAML fails to convert (``2001-13-45``, ``!!float abc``) are refused with
  their line instead of escaping as ValueError.

Every refusal is a ConfigError: one line naming the source, where in it, and the fix.
Parsing text is pure; reading files (bounded by the same ``max_bytes``) is the
adapters' job.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import accumulate
from typing import Any, Callable, Iterator, List, Optional

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from .errors import ConfigError
from .redaction import credential_shape, is_sensitive_key


@dataclass(frozen=True)
class DocumentLimits:
    """How big a document may be. ``max_bytes`` None: no size limit."""

    max_bytes: Optional[int]
    max_depth: int
    max_alias_nodes: int = 10_000
    max_int_digits: int = 4300


#: Profiles, job configs and --set values: hand-written, a few KB. 256 KiB leaves room
#: for a long inline script and bounds the pure-Python parse to about a second; 100
#: levels is ten times what a Kubernetes affinity needs and far from the recursion
#: limit of the code that walks the result (merge, validation, YAML dump); 10,000
#: nodes repeated through aliases is far more than any reuse of a block needs.
YAML_LIMITS = DocumentLimits(max_bytes=256 * 1024, max_depth=100, max_alias_nodes=10_000)
#: A Job manifest handed to a backend as YAML text or a file: 3 MiB is the API server's
#: request size limit, so nothing larger could be submitted anyway.
MANIFEST_LIMITS = DocumentLimits(max_bytes=3 * 1024 * 1024, max_depth=100, max_alias_nodes=10_000)
#: The directory workspace index: one small entry per item, written by spikebatch; 64
#: MiB is hundreds of thousands of items and decodes in well under a second.
JSON_INDEX_LIMITS = DocumentLimits(max_bytes=64 * 1024 * 1024, max_depth=100)

_SHOWN = 40  # characters of an offending value shown in a message


def _shown(text: str) -> str:
    return repr(text if len(text) <= _SHOWN else text[:_SHOWN] + "...")


def _size(count: int) -> str:
    for unit, name in ((1024 * 1024, "MiB"), (1024, "KiB")):
        if count >= unit and count % unit == 0:
            return f"{count // unit} {name} ({count:,} bytes)"
    return f"{count:,} bytes"


def check_document_size(byte_count: int, source: str, limits: DocumentLimits, kind: str) -> None:
    """ConfigError when a ``kind`` document (YAML, JSON) of ``byte_count`` bytes is
    over ``limits.max_bytes``. File readers call it before decoding what they read."""
    if limits.max_bytes is not None and byte_count > limits.max_bytes:
        raise ConfigError(
            f"{source}: more than {_size(limits.max_bytes)}, the limit for a {kind} document; make it smaller"
        )


def _check_text_size(text: str, source: str, limits: DocumentLimits, kind: str) -> None:
    if limits.max_bytes is None:
        return
    # Cheap bounds first: a character is 1 to 4 UTF-8 bytes.
    if len(text) > limits.max_bytes:
        check_document_size(len(text), source, limits, kind)
    if len(text) * 4 > limits.max_bytes:
        check_document_size(len(text.encode("utf-8", "surrogatepass")), source, limits, kind)


@lru_cache(maxsize=None)
def _int_bound(digits: int) -> int:
    return 10**digits


# --- YAML -----------------------------------------------------------------------------------
class _LimitExceeded(yaml.MarkedYAMLError):
    """A document over a limit; ``problem`` carries its own fix."""

    def __init__(self, problem: str, mark: Any) -> None:
        super().__init__(problem=problem, problem_mark=mark)


class _BoundedLoader(yaml.SafeLoader):
    """PyYAML's SafeLoader that measures while it composes. Every finished node gets
    its expanded size (nodes) and height (levels of collections), aliases counted as
    what they stand for; an anchor's node is finished before an alias can name it,
    unless the alias lies inside it (a cycle). So the nesting depth is checked before
    a collection is entered, and an alias is checked for the nodes it adds and for
    the depth it reaches where it stands."""

    def __init__(self, text: str, limits: DocumentLimits) -> None:
        super().__init__(text)
        self.limits = limits
        self._depth = 0  # collections open around the node being composed
        self._alias_nodes = 0
        self._shapes: dict[int, tuple[int, int]] = {}  # id(node) -> (size, height)
        #: id() of the values of secret-named keys (DB_PASSWORD: ...): never quoted in
        #: an error message.
        self.secret_nodes: set[int] = set()

    def compose_document(self) -> Any:
        self._shapes = {}  # anchors are per document; node ids may be reused after one
        self.secret_nodes = set()
        return super().compose_document()

    def compose_node(self, parent: Any, index: Any) -> Any:
        node = self._compose_measured(parent, index)
        if isinstance(index, yaml.ScalarNode) and is_sensitive_key(str(index.value)):
            self.secret_nodes.add(id(node))
        return node

    def _compose_measured(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self._count_alias(self.peek_event())
            return super().compose_node(parent, index)  # an undefined alias fails there
        collection = self.check_event(yaml.SequenceStartEvent, yaml.MappingStartEvent)
        if collection:
            if self._depth >= self.limits.max_depth:
                raise self._too_deep(self.peek_event().start_mark)
            self._depth += 1
        try:
            node = super().compose_node(parent, index)
        finally:
            if collection:
                self._depth -= 1
        shapes = [self._shapes[id(child)] for child in _children(node)]
        self._shapes[id(node)] = (1 + sum(size for size, _ in shapes),
                                  (1 + max((height for _, height in shapes), default=0)) if collection else 0)
        return node

    def _count_alias(self, event: Any) -> None:
        target = self.anchors.get(event.anchor)
        if target is None:
            return
        shape = self._shapes.get(id(target))
        if shape is None:
            raise _LimitExceeded(
                f"alias *{event.anchor} refers to a node that contains it; remove the recursive alias",
                event.start_mark)
        size, height = shape
        if self._depth + height > self.limits.max_depth:
            raise self._too_deep(event.start_mark)
        self._alias_nodes += size
        if self._alias_nodes > self.limits.max_alias_nodes:
            raise _LimitExceeded(
                f"aliases expand to more than {self.limits.max_alias_nodes:,} nodes (a YAML bomb?); "
                "write the repeated values out or repeat them less",
                event.start_mark)

    def _too_deep(self, mark: Any) -> _LimitExceeded:
        return _LimitExceeded(f"nested more than {self.limits.max_depth} levels deep; flatten the structure", mark)

    def construct_yaml_int(self, node: Any) -> int:
        text = self.construct_scalar(node)
        too_long = _LimitExceeded(
            f"an integer with more than {self.limits.max_int_digits:,} digits; quote it if it is text",
            node.start_mark)
        if sum(ch.isdigit() for ch in text) > self.limits.max_int_digits:
            raise too_long
        value = _converted(SafeConstructor.construct_yaml_int, self, node, "integer")
        if abs(value) >= _int_bound(self.limits.max_int_digits):  # 0x / 0b / base 60 spellings
            raise too_long
        return value

    def construct_yaml_float(self, node: Any) -> float:
        return _converted(SafeConstructor.construct_yaml_float, self, node, "number")

    def construct_yaml_bool(self, node: Any) -> bool:
        return _converted(SafeConstructor.construct_yaml_bool, self, node, "boolean")

    def construct_yaml_timestamp(self, node: Any) -> Any:
        return _converted(SafeConstructor.construct_yaml_timestamp, self, node, "date or time")


def _children(node: Any) -> Iterator[Any]:
    if isinstance(node, yaml.SequenceNode):
        yield from node.value
    elif isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield key
            yield value


def _converted(convert: Callable[[Any, Any], Any], loader: Any, node: Any, kind: str) -> Any:
    """PyYAML's converter for a scalar; what its converters raise on a malformed one
    (int() / float() / datetime() ValueError, a bool's KeyError, a timestamp regex that
    did not match) becomes an error at the scalar's line."""
    try:
        return convert(loader, node)
    except (ValueError, KeyError, AttributeError, OverflowError):
        text = str(node.value)
        # The value of a secret-named key, or one that looks like a credential, is not
        # quoted: the line and column say where it is.
        secret = id(node) in getattr(loader, "secret_nodes", ()) or credential_shape(text)
        raise ConstructorError(
            None, None, f"{'the value' if secret else _shown(text)} is not a valid {kind}; quote it if it is text",
            node.start_mark) from None


for _tag, _method in (("int", "construct_yaml_int"), ("float", "construct_yaml_float"),
                      ("bool", "construct_yaml_bool"), ("timestamp", "construct_yaml_timestamp")):
    _BoundedLoader.add_constructor(f"tag:yaml.org,2002:{_tag}", getattr(_BoundedLoader, _method))


def _where(mark: Any) -> str:
    return f" line {mark.line + 1}, column {mark.column + 1}:" if mark is not None else ""


def _yaml_error(exc: yaml.YAMLError, source: str, syntax_fix: str) -> ConfigError:
    if isinstance(exc, _LimitExceeded):
        return ConfigError(f"{source}:{_where(exc.problem_mark)} {exc.problem}")
    if isinstance(exc, yaml.reader.ReaderError):
        character = exc.character if isinstance(exc.character, int) else ord(exc.character)
        return ConfigError(
            f"{source}: character #x{character:04x} at position {exc.position} is not allowed in YAML; remove it")
    problem = str(getattr(exc, "problem", None) or "malformed YAML")
    context = getattr(exc, "context", None)
    first = getattr(exc, "context_mark", None)
    if context and context.endswith("; first occurrence") and first is not None:  # a duplicate anchor
        problem = f"{context[:-len('; first occurrence')]} (first at line {first.line + 1})"
    elif context:  # "while parsing a flow sequence", "expected a single document in the stream"
        problem = f"{context}, {problem}"
    if len(problem) > 200:
        problem = problem[:200] + "..."
    return ConfigError(f"{source}:{_where(getattr(exc, 'problem_mark', None))} {problem}; {syntax_fix}")


def parse_yaml_text(text: str, source: str, *, limits: DocumentLimits = YAML_LIMITS,
                    syntax_fix: str = "fix the YAML syntax") -> Any:
    """The one YAML document in ``text`` (None when empty), like ``yaml.safe_load``
    but within ``limits``. Errors are ConfigErrors naming ``source``, the line and the
    column; a syntax error ends with ``syntax_fix``."""
    _check_text_size(text, source, limits, "YAML")
    try:
        loader = _BoundedLoader(text, limits)  # checks the characters at once
        try:
            return loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source, syntax_fix) from None


def parse_yaml_documents(text: str, source: str, *, limits: DocumentLimits = YAML_LIMITS,
                         syntax_fix: str = "fix the YAML syntax") -> List[Any]:
    """Every document in ``text`` (like ``yaml.safe_load_all``), within ``limits``
    (aliases counted over the whole stream)."""
    _check_text_size(text, source, limits, "YAML")
    documents: List[Any] = []
    try:
        loader = _BoundedLoader(text, limits)  # checks the characters at once
        try:
            while loader.check_data():
                documents.append(loader.get_data())
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        raise _yaml_error(exc, source, syntax_fix) from None
    return documents


# --- JSON -----------------------------------------------------------------------------------
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NOT_BRACKET = re.compile(r"[^\[\]{}]+")
_BRACKET_STEP = {"[": 1, "{": 1, "]": -1, "}": -1}
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")


def _json_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON ``text``, counted on the
    brackets outside strings (in C, by the regular expressions and accumulate)."""
    brackets = _NOT_BRACKET.sub("", _JSON_STRING.sub("", text))
    return max(accumulate(map(_BRACKET_STEP.__getitem__, brackets)), default=0)


def _lone_surrogate(value: Any) -> Optional[str]:
    """A string (key or value) in ``value`` holding half of a UTF-16 surrogate pair."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return item
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return None


def parse_json_text(text: str, source: str, *, limits: DocumentLimits = JSON_INDEX_LIMITS) -> Any:
    """The JSON document in ``text`` within ``limits``: its size, its nesting depth
    (checked before decoding, so no RecursionError), its integers' digits, and no
    string holding a lone UTF-16 surrogate (``"\\ud800"``), which no file name or
    UTF-8 text can carry."""
    _check_text_size(text, source, limits, "JSON")
    depth = _json_depth(text)
    if depth > limits.max_depth:
        raise ConfigError(f"{source}: nested {depth:,} levels deep, more than the {limits.max_depth} allowed; "
                          "flatten the structure")

    def bounded_int(digits: str) -> int:
        if len(digits.lstrip("-")) > limits.max_int_digits:
            raise ConfigError(f"{source}: an integer with more than {limits.max_int_digits:,} digits; "
                              "write it as text or a float")
        return int(digits)

    try:
        value = json.loads(text, parse_int=bounded_int)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{source}: line {exc.lineno}, column {exc.colno}: {exc.msg}; fix the JSON") from None
    if _SURROGATE_ESCAPE.search(text):
        bad = _lone_surrogate(value)
        if bad is not None:
            raise ConfigError(f"{source}: the string {_shown(bad)} holds a lone UTF-16 surrogate; remove it")
    return value
