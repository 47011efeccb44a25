"""Hostile YAML and JSON documents, and hypothesis strategies that mix them with random
text: what the unit and end-to-end tests feed every reader the CLI uses."""

from __future__ import annotations

import json

from hypothesis import strategies as st


def laughs_yaml(levels: int = 9, width: int = 9, *, indent: str = "  ") -> str:
    """A block mapping whose last key expands to ``width ** levels`` scalars
    (387,420,489 for the defaults) while the text stays under 1 KB."""
    names = [chr(ord("a") + i) for i in range(levels)]
    lines = [f"{indent}{names[0]}: &{names[0]} [{', '.join(['lol'] * width)}]"]
    for prev, name in zip(names, names[1:]):
        lines.append(f"{indent}{name}: &{name} [{', '.join([f'*{prev}'] * width)}]")
    return "\n".join(lines) + "\n"


def laughs_flow(levels: int = 9, width: int = 9) -> str:
    """The same bomb as one line of flow YAML (a ``--set`` value)."""
    names = [chr(ord("a") + i) for i in range(levels)]
    parts = [f"{names[0]}: &{names[0]} [{', '.join(['lol'] * width)}]"]
    for prev, name in zip(names, names[1:]):
        parts.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * width)}]")
    return "{" + ", ".join(parts) + "}"


def deep_flow_yaml(depth: int, kind: str = "map") -> str:
    """A flow collection nested ``depth`` levels deep (small text, deep structure)."""
    if kind == "map":
        return "{k: " * depth + "x" + "}" * depth
    return "[" * depth + "]" * depth


def deep_block_yaml(depth: int) -> str:
    """A block mapping nested ``depth`` levels, one space of indent per level."""
    return "".join(f"{' ' * i}k:\n" for i in range(depth)) + " " * depth + "x\n"


def deep_json(depth: int, kind: str = "list") -> str:
    if kind == "list":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


# --- strategies -----------------------------------------------------------------------------
ODD_TEXT = st.text(
    alphabet=st.one_of(
        st.characters(codec="utf-8"),
        st.sampled_from(["\x00", "\udcff", "\udc80", "\ufeff", "\u2028", "\u2029", "\x85", "\u202e", "\u0301", "\U0001f600",
                         "\t", "\r", "\n", ":", "-", "&", "*", "!", "|", ">", "{", "}", "[", "]", "#", "%", "@", "`"]),
    ),
    max_size=80,
)

YAML_ODDITIES = st.sampled_from([
    "2001-13-45", "2001-02-30 25:61:61", "!!float abc", "!!int abc", "!!bool maybe", "!!timestamp never",
    "._", "0b_", "0x_", "0o", "!!binary '***'", "!!python/object/apply:os.system [echo hi]",
    "!!python/name:os.system", "<<: 1", "{<<: [1, 2]}", "? [a, b]\n: c", "? {a: 1}\n: c", "&a [*a]",
    "&a {k: *a}", "*undefined", "a: 1\n---\nb: 2", "--- !!set {a, b}", "{a: 1, a: 2}", "!!omap [a]",
    "!!pairs {a: 1}", "%YAML 1.1\n---\na", "%TAG ! tag:x,2000:\n--- !y a", "!<tag:yaml.org,2002:int> 12x",
    ".nan", "-.inf", "~", "", "---", "...", "- - - -", "'unterminated", '"\\x00"', '"\\ud800"', "\x00", "a\x00b",
    "\ufeffa: 1", "a: &x 1\nb: *x\nc: *x", "[&a 1, *a, *a]", "!!str [list]", "{a: !!int [1]}", "0x" + "f" * 4000,
    "1" * 5000, "-" + "9" * 4301, "0b" + "1" * 20000, "1:" * 3000 + "1", "1" * 400 + ".5", "1e999999",
])


def _hostile_yaml_piece() -> st.SearchStrategy[str]:
    return st.one_of(
        ODD_TEXT,
        YAML_ODDITIES,
        st.builds(lambda levels, width: "v: " + laughs_flow(levels, width),
                  st.integers(2, 12), st.integers(2, 12)),
        st.builds(lambda levels, width: "v:\n" + laughs_yaml(levels, width),
                  st.integers(2, 12), st.integers(2, 12)),
        st.builds(deep_flow_yaml, st.integers(1, 3000), st.sampled_from(["map", "list"])),
        st.builds(deep_block_yaml, st.integers(1, 400)),
        st.builds(lambda digits, prefix: prefix + "7" * digits, st.integers(1, 6000),
                  st.sampled_from(["", "-", "+", "0x", "0b", "0o", "0"])),
        st.builds(lambda value: json.dumps(value),
                  st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                               lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
                               max_leaves=20)),
    )


#: A whole YAML document: hostile pieces, alone, as a field value, or stacked as
#: several documents.
HOSTILE_YAML = st.one_of(
    _hostile_yaml_piece(),
    st.builds(lambda field, piece: f"{field}: {piece}" if "\n" not in piece else f"{field}:\n" + "\n".join(
        "  " + line for line in piece.splitlines()),
        st.sampled_from(["affinity", "labels", "name", "namespace", "extends", "policy", "container", "env",
                         "resources", "tolerations", "default_images", "name_prefix", "active_deadline_seconds"]),
        _hostile_yaml_piece()),
    st.lists(_hostile_yaml_piece(), min_size=2, max_size=4).map("\n---\n".join),
    st.lists(_hostile_yaml_piece(), min_size=2, max_size=4).map("\n".join),
)

#: A ``--set`` value: one command-line argument (no NUL: a process argument cannot hold one).
HOSTILE_SET_VALUE = HOSTILE_YAML.map(lambda text: text.replace("\x00", "")).filter(lambda text: len(text) < 100_000)

_INDEX = {"format": "spikebatch-directory-workspace", "version": 1, "workspace_id": "w", "name": "n",
          "created_at": 1.0, "namespaces": {"in": {"dir": "in", "items": {"x": {"stem": "x", "kind": "json"}}}}}

_JSON_ODDITIES = st.sampled_from([
    '"abc"', "[]", "null", "1e400", "NaN", "-Infinity", '"\\ud800"', '"\\udc00\\ud800"', '"\\u0000"', "true",
    '{"a": 1, "a": 2}', "{", "[1,", '"\\x"', "\ufeff{}", "{}\x00", "1" * 5000, "-" + "1" * 4301, '"' + "a" * 1000 + '"',
    '"../x"', '".."', '"x/y"', '"con:"', '"' + "é" * 150 + '"', '["json"]', '"npy"', "1e308", "-1e400", "253402300801",
])


def _json_value() -> st.SearchStrategy[str]:
    return st.one_of(
        _JSON_ODDITIES,
        st.builds(deep_json, st.integers(1, 200_000), st.sampled_from(["list", "dict"])),
        st.builds(json.dumps, st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
            lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
            max_leaves=20)),
    )


def _index_with(path: tuple, value: str) -> str:
    """The valid index above with the field at ``path`` replaced by the JSON ``value``."""
    marker = "\x01MARK\x01"
    document = json.loads(json.dumps(_INDEX))
    target = document
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = marker
    return json.dumps(document).replace(json.dumps(marker), value)


#: The text of a workspace index: random text, hostile JSON, or a valid index with one
#: field made hostile.
HOSTILE_JSON = st.one_of(
    ODD_TEXT,
    _json_value(),
    st.builds(_index_with, st.sampled_from([
        ("format",), ("version",), ("workspace_id",), ("name",), ("created_at",), ("namespaces",),
        ("namespaces", "in"), ("namespaces", "in", "dir"), ("namespaces", "in", "items"),
        ("namespaces", "in", "items", "x"), ("namespaces", "in", "items", "x", "stem"),
        ("namespaces", "in", "items", "x", "kind"), ("namespaces", "in", "items", "x", "note"),
    ]), _json_value()),
)

#: Bytes for a file: hostile text as UTF-8, or arbitrary (often not UTF-8) bytes.
def as_file_bytes(texts: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    return st.one_of(texts.map(lambda text: text.encode("utf-8", "surrogatepass")), st.binary(max_size=200))
