"""Every YAML and JSON document spikebatch reads is parsed within limits: size, nesting
depth, alias expansion, integer digits. A hostile document is refused with one line
(a ConfigError, exit 2) naming where it came from, never a RecursionError, a
ValueError or a MemoryError; and every reader the CLI uses holds to that for random
and hostile input (the hypothesis tests at the end)."""

from __future__ import annotations

import json
import tempfile
import tracemalloc
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hostile_documents import (
    HOSTILE_JSON,
    HOSTILE_SET_VALUE,
    HOSTILE_YAML,
    as_file_bytes,
    deep_block_yaml,
    deep_flow_yaml,
    deep_json,
    laughs_flow,
    laughs_yaml,
)
from spikebatch.adapters.config.job_config_file import load_job_config
from spikebatch.adapters.config.profile_files import load_cluster_profile, load_profile_from_name
from spikebatch.adapters.jobs.manifest import load_manifest
from spikebatch.adapters.workspaces.directory import INDEX_NAME, DirectoryWorkspace
from spikebatch.adapters.workspaces.opening import workspace_at
from spikebatch.domain.documents import (
    YAML_LIMITS,
    DocumentLimits,
    parse_json_text,
    parse_yaml_documents,
    parse_yaml_text,
)
from spikebatch.domain.errors import ConfigError, InvalidManifestError, SpikebatchError
from spikebatch.entrypoints.cli_common import parse_key_values

MiB = 1024 * 1024


def refused(parse, *args, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        parse(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message and info.value.exit_code == 2
    return message


# --- YAML: aliases ---------------------------------------------------------------------------
def test_billion_laughs_is_refused_while_composing_with_little_memory() -> None:
    text = "v:\n" + laughs_yaml(9, 9)  # 387,420,489 scalars once expanded
    tracemalloc.start()
    try:
        message = refused(parse_yaml_text, text, "bomb.yaml")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert message.startswith("bomb.yaml: line ")
    assert "aliases expand to more than 10,000 nodes" in message and "repeat them less" in message
    assert peak < 5 * MiB, f"refusing the bomb took {peak} bytes"


def test_the_alias_budget_counts_every_node_an_alias_stands_for() -> None:
    # *a stands for 100 nodes (the list and its 99 items): 100 of them are 10,000.
    block = "a: &a [" + ", ".join(["x"] * 99) + "]\n"
    at_budget = parse_yaml_text(block + "b: [" + ", ".join(["*a"] * 100) + "]\n", "ok.yaml")
    assert len(at_budget["b"]) == 100 and at_budget["b"][0] == ["x"] * 99
    message = refused(parse_yaml_text, block + "b: [" + ", ".join(["*a"] * 101) + "]\n", "over.yaml")
    assert message.startswith("over.yaml: line 2, column ") and "aliases expand" in message


def test_ordinary_reuse_of_anchors_is_accepted_unchanged() -> None:
    text = (
        "defaults: &defaults {cpu: '1', memory: 2Gi, tolerations: [{key: gpu, operator: Exists}]}\n"
        "small: {<<: *defaults, cpu: '2'}\n"
        "large: {<<: *defaults, memory: 8Gi}\n"
        "three: " + laughs_flow(3, 9) + "\n"
    )
    assert parse_yaml_text(text, "ok.yaml") == yaml.safe_load(text)


@pytest.mark.parametrize("text", ["&a [*a]", "&a {k: *a}", "a: &a\n  b: [1, *a]\n"])
def test_an_alias_inside_its_own_anchor_is_refused(text: str) -> None:
    assert "refers to a node that contains it" in refused(parse_yaml_text, text, "loop.yaml")


def test_the_alias_budget_spans_every_document_of_a_stream() -> None:
    # 6,000 nodes through aliases per document: one is fine, two are over the budget.
    one = "a: &a [" + ", ".join(["x"] * 99) + "]\nb: [" + ", ".join(["*a"] * 60) + "]\n"
    assert len(parse_yaml_documents(one, "one")) == 1
    assert "aliases expand" in refused(parse_yaml_documents, one + "---\n" + one, "two")


# --- YAML: nesting, size ---------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["map", "list"])
def test_nesting_is_limited_to_100_levels(kind: str) -> None:
    assert parse_yaml_text(deep_flow_yaml(100, kind), "ok.yaml") is not None
    message = refused(parse_yaml_text, deep_flow_yaml(101, kind), "deep.yaml")
    assert message.startswith("deep.yaml: line 1, column ")
    assert "nested more than 100 levels deep; flatten the structure" in message


@pytest.mark.parametrize("text", [deep_flow_yaml(1000), deep_flow_yaml(50_000, "list"), deep_block_yaml(700)])
def test_yaml_nested_thousands_deep_is_one_error_not_a_recursion_error(text: str) -> None:
    assert "nested more than 100 levels deep" in refused(parse_yaml_text, text, "deep.yaml")


def test_nesting_reached_through_aliases_counts_too() -> None:
    # Each anchor wraps the previous one 60 levels deeper: a few hundred nodes, but
    # 600 levels once expanded, which recursive code walking the value would not survive.
    lines = ["a0: &a0 x"] + [f"a{i}: &a{i} " + "[" * 60 + f"*a{i - 1}" + "]" * 60 for i in range(1, 11)]
    message = refused(parse_yaml_text, "\n".join(lines), "deep.yaml")
    assert message.startswith("deep.yaml: line 3, column ") and "nested more than 100 levels deep" in message
    assert parse_yaml_text("\n".join(lines[:2]), "ok.yaml")["a0"] == "x"
    inner = "[" * 60 + "x" + "]" * 60
    assert parse_yaml_text(f"a: &a {inner}\nb: " + "[" * 39 + "*a" + "]" * 39, "ok.yaml")
    assert "nested more than 100" in refused(parse_yaml_text, f"a: &a {inner}\nb: " + "[" * 40 + "*a" + "]" * 40, "d")


def test_documents_over_256_kib_are_refused_before_parsing() -> None:
    limit = YAML_LIMITS.max_bytes
    assert limit == 256 * 1024
    assert parse_yaml_text("x: '" + "a" * (limit - 10) + "'", "ok.yaml")["x"]
    message = refused(parse_yaml_text, "x: '" + "a" * limit + "'", "big.yaml")
    assert message == "big.yaml: more than 256 KiB (262,144 bytes), the limit for a YAML document; make it smaller"
    # Bytes, not characters: 'é' is two bytes in UTF-8.
    assert "256 KiB" in refused(parse_yaml_text, "x: '" + "é" * (limit // 2) + "'", "wide.yaml")


# --- YAML: scalars -----------------------------------------------------------------------------
def test_integers_are_limited_to_4300_digits() -> None:
    assert parse_yaml_text("9" * 4300, "ok") == int("9" * 4300)
    for text in ["1" * 4301, "1" * 5000, "-" + "7" * 4301, "0x" + "f" * 4000, "0b" + "1" * 20_000, "1:" * 3000 + "1",
                 "1_" * 5000 + "1"]:
        message = refused(parse_yaml_text, text, "--set x")
        assert message == "--set x: line 1, column 1: an integer with more than 4,300 digits; quote it if it is text"
    assert parse_yaml_text("'" + "1" * 5000 + "'", "ok") == "1" * 5000


@pytest.mark.parametrize(
    "text, kind",
    [("2001-13-45", "date or time"), ("d: 2001-02-30", "date or time"), ("!!timestamp never", "date or time"),
     ("!!float abc", "number"), ("!!float ._", "number"), ("!!int abc", "integer"), ("0x_", "integer"), ("0b_", "integer"),
     ("!!bool maybe", "boolean")],
)
def test_scalars_pyyaml_cannot_convert_are_one_error_at_their_line(text: str, kind: str) -> None:
    message = refused(parse_yaml_text, text, "odd.yaml")
    assert message.startswith("odd.yaml: line 1, column ")
    assert f"is not a valid {kind}; quote it if it is text" in message


@pytest.mark.parametrize(
    "text, fragment",
    [("a: [1, 2", "while parsing a flow sequence, expected ',' or ']'"),
     ("*nothing", "found undefined alias 'nothing'"), ("!!python/name:os.system", "could not determine a constructor"),
     ("? [a]\n: b", "found unhashable key"),
     ("a: &x 1\nb: &x 2", "line 2, column 4: found duplicate anchor 'x' (first at line 1); fix the YAML syntax"),
     ("a: 1\n---\nb: 2", "expected a single document in the stream, but found another document"),
     ("\x00", "character #x0000 at position 0 is not allowed in YAML; remove it"),
     ("a: \udcff", "character #xdcff at position 3 is not allowed in YAML")],
)
def test_malformed_yaml_is_one_config_error(text: str, fragment: str) -> None:
    message = refused(parse_yaml_text, text, "bad.yaml")
    assert message.startswith("bad.yaml: ") and fragment in message


def test_valid_yaml_reads_as_yaml_safe_load_does() -> None:
    text = Path(__file__).resolve().parents[2].joinpath("examples", "job.yaml").read_text()
    assert parse_yaml_text(text, "job.yaml") == yaml.safe_load(text)
    assert parse_yaml_text("", "empty") is None and parse_yaml_text("# only a comment\n", "c") is None


# --- JSON ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("kind", ["list", "dict"])
def test_json_nested_100000_deep_is_one_error(kind: str) -> None:
    message = refused(parse_json_text, deep_json(100_000, kind), "index.json")
    assert message == "index.json: nested 100,000 levels deep, more than the 100 allowed; flatten the structure"


def test_json_nesting_is_counted_outside_strings_only() -> None:
    assert parse_json_text(deep_json(100), "ok") is not None
    assert "nested 101 levels" in refused(parse_json_text, deep_json(101), "deep")
    text = json.dumps({"note": "[" * 5000 + '\\"{' * 500, "list": [[["x"]]]})
    assert parse_json_text(text, "ok")["list"] == [[["x"]]]


def test_json_integers_are_limited_to_4300_digits() -> None:
    assert parse_json_text("[" + "9" * 4300 + "]", "ok") == [int("9" * 4300)]
    message = refused(parse_json_text, '{"created_at": ' + "1" * 5000 + "}", "index.json")
    assert message == "index.json: an integer with more than 4,300 digits; write it as text or a float"
    assert parse_json_text("1" * 5000 + ".0", "ok") == float("inf")


def test_json_lone_surrogates_are_refused_and_pairs_kept() -> None:
    assert parse_json_text('"\\ud83d\\ude00"', "ok") == "\U0001f600"
    for text in ['"\\ud800"', '{"\\udc00": 1}', '["a", {"b": ["x\\udbff"]}]']:
        assert "lone UTF-16 surrogate; remove it" in refused(parse_json_text, text, "index.json")


def test_json_size_and_syntax_errors() -> None:
    small = DocumentLimits(max_bytes=10, max_depth=5)
    assert refused(parse_json_text, "[" + "1," * 10 + "1]", "x", limits=small) == (
        "x: more than 10 bytes, the limit for a JSON document; make it smaller")
    assert refused(parse_json_text, '{"a": ', "index.json").startswith("index.json: line 1, column 7: Expecting value")


# --- the readers -------------------------------------------------------------------------------
def test_profile_with_a_billion_laughs_affinity_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "bomb.yaml"
    path.write_text("name: bomb\nextends: local\naffinity:\n" + laughs_yaml())
    message = refused(load_cluster_profile, path, env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert message.startswith(f"{path}: line ") and "aliases expand" in message
    folder = tmp_path / "spikebatch" / "profiles"
    folder.mkdir(parents=True)
    (folder / "named.yaml").write_text(path.read_text())
    (folder / "child.yaml").write_text("extends: named\n")
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert refused(load_profile_from_name, "named", env=env).startswith(f"{folder / 'named.yaml'}: line ")
    assert refused(load_profile_from_name, "child", env=env).startswith(f"{folder / 'named.yaml'}: line ")


def test_profile_that_is_not_utf8_or_too_big(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert refused(load_cluster_profile, path) == (
        f"{path}: byte 0xe9 at offset 9 is not UTF-8 text; save the file as UTF-8")
    huge = tmp_path / "huge.yaml"
    with open(huge, "wb") as fh:
        fh.truncate(5 * 1024 * MiB)  # sparse: reading it whole would take 5 GiB
    assert "more than 256 KiB" in refused(load_cluster_profile, huge)


def test_job_config_nested_1000_deep_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    path.write_text("labels: " + deep_flow_yaml(1000) + "\n")
    message = refused(load_job_config, path)
    assert message.startswith(f"job config {str(path)!r}: line 1, column ")
    assert "nested more than 100 levels deep" in message


def test_set_values_are_read_within_the_limits() -> None:
    assert parse_key_values(["a=5", "b=[1, 2]", "c=&x {k: 1}"], "--set", yaml_values=True) == {
        "a": 5, "b": [1, 2], "c": {"k": 1}}
    bomb = refused(parse_key_values, ["detection=" + laughs_flow()], "--set", yaml_values=True)
    assert bomb.startswith("--set detection: line 1, column ") and "aliases expand" in bomb
    digits = refused(parse_key_values, ["n=" + "1" * 5000], "--set", yaml_values=True)
    assert digits == "--set n: line 1, column 1: an integer with more than 4,300 digits; quote it if it is text"
    deep = refused(parse_key_values, ["d=" + deep_flow_yaml(1000)], "--set", yaml_values=True)
    assert deep.startswith("--set d: line 1, column ") and "nested more than 100" in deep


def test_workspace_index_nested_100000_deep_names_the_index(tmp_path: Path) -> None:
    (tmp_path / INDEX_NAME).write_text('{"namespaces": ' + deep_json(100_000) + "}")
    with pytest.raises(SpikebatchError) as info:
        DirectoryWorkspace.load(tmp_path)
    assert info.value.exit_code == 2
    assert str(info.value) == (f"{tmp_path / INDEX_NAME} (not a readable workspace index): nested 100,001 levels "
                               "deep, more than the 100 allowed; flatten the structure")


@pytest.mark.parametrize("created_at", ['"yesterday"', "[1]", "true", "1e400", "1" * 400, "-1e300"])
def test_workspace_index_with_a_bad_time_is_refused(tmp_path: Path, created_at: str) -> None:
    DirectoryWorkspace(tmp_path).store("in", "x", 1)
    index = tmp_path / INDEX_NAME
    index.write_text(index.read_text().replace('"created_at": ', '"created_at": ' + created_at + ', "was": ', 1))
    with pytest.raises(SpikebatchError, match="'created_at' must be a time in seconds since the epoch"):
        DirectoryWorkspace.load(tmp_path)


def test_workspace_index_with_an_unhashable_kind_is_refused(tmp_path: Path) -> None:
    DirectoryWorkspace(tmp_path).store("in", "x", 1)
    index = tmp_path / INDEX_NAME
    index.write_text(index.read_text().replace('"kind": "json"', '"kind": ["json"]'))
    with pytest.raises(SpikebatchError, match=r"has unknown kind \['json'\]"):
        DirectoryWorkspace.load(tmp_path)


def test_manifest_text_is_read_within_the_limits(tmp_path: Path) -> None:
    with pytest.raises(InvalidManifestError, match="manifest text: line .*aliases expand"):
        load_manifest("apiVersion: batch/v1\nkind: Job\nmetadata:\n" + laughs_yaml())
    path = tmp_path / "job.yaml"
    path.write_bytes(b"kind: \xff\n")
    with pytest.raises(InvalidManifestError, match="not UTF-8 text"):
        load_manifest(path)


# --- fuzz: every reader the CLI uses -----------------------------------------------------------
FUZZ = settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def _value_or_one_line_error(read, *args, **kwargs) -> None:
    """``read`` returns, or raises what the CLI turns into one line and exit 2: a
    SpikebatchError with exit code 2, or an OSError about a path the input named."""
    try:
        read(*args, **kwargs)
    except SpikebatchError as exc:
        assert exc.exit_code == 2, (exc.exit_code, str(exc))
        assert str(exc) and "\n" not in str(exc)
    except OSError:
        pass  # reported by the CLI as one line, exit 2 (run_guarded)


@FUZZ
@given(data=as_file_bytes(HOSTILE_YAML))
def test_fuzz_profile_and_job_config_readers(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        env = {"XDG_CONFIG_HOME": str(root / "config"), "HOME": str(root)}
        path = root / "doc.yaml"
        path.write_bytes(data)
        _value_or_one_line_error(load_cluster_profile, path, env=env)
        _value_or_one_line_error(load_job_config, path)
        named = root / "config" / "spikebatch" / "profiles"
        named.mkdir(parents=True)
        (named / "mine.yaml").write_bytes(data)
        _value_or_one_line_error(load_profile_from_name, "mine", env=env)


@FUZZ
@given(value=HOSTILE_SET_VALUE)
def test_fuzz_set_value_parser(value: str) -> None:
    _value_or_one_line_error(parse_key_values, [f"key={value}"], "--set", yaml_values=True)


@FUZZ
@given(text=HOSTILE_YAML)
def test_fuzz_yaml_text_parsers(text: str) -> None:
    _value_or_one_line_error(parse_yaml_text, text, "doc")
    _value_or_one_line_error(parse_yaml_documents, text, "doc")


@FUZZ
@given(data=as_file_bytes(HOSTILE_JSON))
def test_fuzz_workspace_index_reader(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        (folder / INDEX_NAME).write_bytes(data)
        _value_or_one_line_error(workspace_at, folder)
        try:
            workspace = DirectoryWorkspace.load(folder)
        except SpikebatchError:
            return
        workspace.describe()
        _value_or_one_line_error(workspace.files)


@settings(max_examples=60)
@given(levels=st.integers(2, 14), width=st.integers(2, 14))
def test_fuzz_bombs_of_any_shape_are_refused_exactly_when_over_budget(levels: int, width: int) -> None:
    size, through_aliases = 1 + width, 0  # level 1: a list of `width` scalars
    for _ in range(levels - 1):  # every next level: a list of `width` aliases to the previous one
        through_aliases += width * size
        size = 1 + width * size
    text = "v: " + laughs_flow(levels, width)
    if through_aliases > 10_000:
        assert "aliases expand to more than 10,000 nodes" in refused(parse_yaml_text, text, "bomb")
    else:
        assert parse_yaml_text(text, "bomb") == yaml.safe_load(text)
