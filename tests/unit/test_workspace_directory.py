"""DirectoryWorkspace: the workspace a script sees when SpikeLab is not installed.

Checked from the user's side: values come back as stored, the folder holds plain files
any tool can read (JSON, raw bytes, .npy without pickle), names cannot escape the
folder, and a failed write never damages what was there.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from spikebatch.adapters.workspaces import directory_values
from spikebatch.adapters.workspaces.directory import INDEX_NAME, DirectoryWorkspace
from spikebatch.errors import ConfigError, SpikebatchError, UnsafePathError


@pytest.fixture
def ws(tmp_path: Path) -> DirectoryWorkspace:
    return DirectoryWorkspace(tmp_path / "ws", name="analysis")


def all_files(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def test_values_round_trip_and_survive_reopening(ws: DirectoryWorkspace) -> None:
    summary = {"rate_hz": 12.5, "units": 3, "ok": True, "label": "rec-1", "none": None, "nested": {"xs": [1, 2.0]}}
    ws.store("rec1", "summary", summary, note="first pass")
    ws.store("rec1", "raw", b"\x00\xffbinary")
    ws.store("rec1", "rates", np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4))
    ws.store("rec1", "mask", np.array([True, False]))
    ws.store("rec2", "count", 7)

    # Stored values are on disk at once: a new object on the folder sees them all.
    again = DirectoryWorkspace(ws.path)
    assert again.get("rec1", "summary") == summary
    assert again.get("rec1", "raw") == b"\x00\xffbinary"
    rates = again.get("rec1", "rates")
    assert rates.dtype == np.float32 and rates.shape == (3, 4)
    np.testing.assert_array_equal(rates, np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4))
    np.testing.assert_array_equal(again.get("rec1", "mask"), [True, False])
    assert again.get("rec2", "count") == 7
    # a missing item is an error naming it, unless a default is asked for
    assert again.get("rec1", "missing", None) is None and again.get("nope", "summary", None) is None
    with pytest.raises(KeyError, match="no item 'missing' in namespace 'rec1'"):
        again.get("rec1", "missing")
    assert again.name == "analysis" and again.workspace_id == ws.workspace_id


def test_numpy_scalars_and_tuples_become_plain_json(ws: DirectoryWorkspace) -> None:
    ws.store("a", "stats", {"mean": np.float64(1.5), "n": np.int64(4), "pair": (1, 2), "flag": np.bool_(True)})
    got = DirectoryWorkspace(ws.path).get("a", "stats")
    assert got == {"mean": 1.5, "n": 4, "pair": [1, 2], "flag": True}
    assert type(got["n"]) is int and type(got["flag"]) is bool


def test_folder_is_plain_files_readable_without_spikebatch(ws: DirectoryWorkspace) -> None:
    ws.store("rec1", "summary", {"x": 1})
    ws.store("rec1", "raw", b"abc")
    ws.store("rec1", "spikes", np.arange(5, dtype=np.int64))
    assert all_files(ws.path) == {INDEX_NAME, "items/rec1/summary.json", "items/rec1/raw.bin", "items/rec1/spikes.npy"}
    assert json.loads((ws.path / "items/rec1/summary.json").read_text()) == {"x": 1}
    assert (ws.path / "items/rec1/raw.bin").read_bytes() == b"abc"
    np.testing.assert_array_equal(np.load(ws.path / "items/rec1/spikes.npy", allow_pickle=False), np.arange(5))
    index = json.loads((ws.path / INDEX_NAME).read_text())
    assert list(index["namespaces"]["rec1"]["items"]) == ["summary", "raw", "spikes"]


@pytest.mark.parametrize("value, needle", [
    (np.array([{"a": 1}], dtype=object), "pickle"),
    ({1: "int key"}, "not a str"),
    ({"arr": np.zeros(2)}, "own key"),
    ({1, 2}, "set"),
    (object(), "object"),
])
def test_values_that_would_not_round_trip_are_refused_and_nothing_is_written(ws, value, needle) -> None:
    ws.store("a", "kept", 1)
    before = all_files(ws.path)
    with pytest.raises(TypeError, match=needle):
        ws.store("a", "bad", value)
    assert all_files(ws.path) == before
    assert ws.list_keys("a") == ["kept"]


@pytest.mark.parametrize("name", ["..", ".", "../up", "a/b", "a\\b", "/abs", "", ".hidden", "x\x00y", "tab\there",
                                  "trailing.", "trailing ", "c:drive", "q?", "x" * 201])
def test_names_that_could_leave_the_folder_are_refused(tmp_path: Path, name: str) -> None:
    ws = DirectoryWorkspace(tmp_path / "ws")
    for args in ((name, "key"), ("ns", name)):
        with pytest.raises(UnsafePathError):
            ws.store(*args, 1)
    assert all_files(tmp_path) == {f"ws/{INDEX_NAME}"}
    assert ws.list_namespaces() == []


def test_tampered_index_cannot_point_outside(tmp_path: Path) -> None:
    ws = DirectoryWorkspace(tmp_path / "ws")
    ws.store("rec1", "x", 1)
    (tmp_path / "secret.json").write_text('"secret"')
    index = json.loads((ws.path / INDEX_NAME).read_text())
    index["namespaces"]["rec1"]["dir"] = ".."
    index["namespaces"]["rec1"]["items"]["x"]["stem"] = "../../secret"
    (ws.path / INDEX_NAME).write_text(json.dumps(index))
    with pytest.raises(UnsafePathError):
        DirectoryWorkspace.load(ws.path)


def test_symlinked_namespace_folder_is_not_followed_out(tmp_path: Path) -> None:
    ws = DirectoryWorkspace(tmp_path / "ws")
    ws.store("rec1", "x", 1)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = ws.path / "items" / "rec1"
    for f in target.iterdir():
        f.unlink()
    target.rmdir()
    target.symlink_to(outside, target_is_directory=True)
    with pytest.raises(UnsafePathError):
        ws.store("rec1", "y", 2)
    with pytest.raises(UnsafePathError):
        ws.get("rec1", "x")
    assert list(outside.iterdir()) == []


def test_names_differing_only_by_case_get_separate_files(ws: DirectoryWorkspace) -> None:
    ws.store("Rec", "Spikes", 1)
    ws.store("rec", "spikes", 2)
    ws.store("rec", "SPIKES", 3)
    again = DirectoryWorkspace(ws.path)
    assert (again.get("Rec", "Spikes"), again.get("rec", "spikes"), again.get("rec", "SPIKES")) == (1, 2, 3)
    # On a case-insensitive disk (macOS, Windows) these files must not overwrite each other.
    names = [p.relative_to(ws.path).as_posix().casefold() for p in ws.path.rglob("*")]
    assert len(names) == len(set(names))


def test_failed_write_keeps_the_previous_value_and_leaves_no_temp_file(ws, monkeypatch) -> None:
    ws.store("rec1", "spikes", np.arange(3))
    before = all_files(ws.path)

    def crash_midway(kind, payload, path):
        path.write_bytes(b"half a file")
        raise OSError("disk full")

    monkeypatch.setattr(directory_values, "write_payload", crash_midway)
    with pytest.raises(OSError, match="disk full"):
        ws.store("rec1", "spikes", np.arange(10))
    monkeypatch.undo()
    assert all_files(ws.path) == before
    np.testing.assert_array_equal(DirectoryWorkspace(ws.path).get("rec1", "spikes"), np.arange(3))


def test_replacing_a_value_with_another_kind_leaves_one_file(ws: DirectoryWorkspace) -> None:
    ws.store("rec1", "v", np.arange(3))
    ws.store("rec1", "v", "now text")
    assert all_files(ws.path) == {INDEX_NAME, "items/rec1/v.json"}
    assert DirectoryWorkspace(ws.path).get("rec1", "v") == "now text"


def test_listing_info_notes_and_rename(ws: DirectoryWorkspace) -> None:
    ws.store("rec2", "a", 1)
    ws.store("rec1", "arr", np.zeros((2, 5), dtype=np.int16), note="zeros")
    ws.store("rec1", "blob", b"1234")
    assert ws.list_namespaces() == ["rec2", "rec1"]
    assert ws.list_keys() == {"rec2": ["a"], "rec1": ["arr", "blob"]}
    assert ws.list_keys("rec1") == ["arr", "blob"] and ws.list_keys("none") == []
    info = ws.get_info("rec1", "arr")
    assert (info["type"], info["shape"], info["dtype"], info["note"]) == ("ndarray", [2, 5], "int16", "zeros")
    assert ws.get_info("rec1", "blob")["size"] == 4 and ws.get_info("rec1", "nope") is None
    ws.add_note("rec1", "blob", "raw bytes")
    assert DirectoryWorkspace(ws.path).describe()["rec1"]["blob"]["note"] == "raw bytes"
    with pytest.raises(KeyError):
        ws.add_note("rec1", "nope", "x")

    assert ws.rename("rec1", "blob", "bytes") is True
    assert ws.list_keys("rec1") == ["arr", "bytes"] and ws.get("rec1", "bytes") == b"1234"
    with pytest.warns(UserWarning, match="already exists"):
        assert ws.rename("rec1", "arr", "bytes") is False
    assert ws.rename("rec1", "arr", "bytes", overwrite=True) is True
    assert ws.list_keys("rec1") == ["bytes"] and ws.get("rec1", "bytes").shape == (2, 5)
    with pytest.raises(KeyError):
        ws.rename("rec1", "gone", "x")
    assert all_files(ws.path) == {INDEX_NAME, "items/rec2/a.json", "items/rec1/bytes.npy"}


def test_delete_item_and_namespace(ws: DirectoryWorkspace) -> None:
    ws.store("rec1", "a", 1)
    ws.store("rec1", "b", 2)
    ws.store("rec2", "c", 3)
    ws.delete("rec1", "a")
    assert ws.list_keys("rec1") == ["b"]
    ws.delete("rec1", "b")  # an emptied namespace disappears
    assert ws.list_namespaces() == ["rec2"]
    ws.delete("rec2")
    assert ws.list_namespaces() == [] and all_files(ws.path) == {INDEX_NAME}
    assert not (ws.path / "items" / "rec1").exists()
    with pytest.raises(KeyError):
        ws.delete("rec2")
    with pytest.raises(KeyError):
        ws.delete("rec9", "x")


def test_save_copies_and_replaces_an_older_copy(ws: DirectoryWorkspace, tmp_path: Path) -> None:
    ws.store("rec1", "arr", np.arange(4))
    ws.store("rec1", "old", "dropped later")
    copy_dir = tmp_path / "copy"
    ws.save(copy_dir)
    ws.delete("rec1", "old")
    ws.store("rec1", "new", {"v": 2})
    ws.save(copy_dir)
    copy = DirectoryWorkspace.load(copy_dir)
    assert copy.list_keys() == {"rec1": ["arr", "new"]} and copy.workspace_id == ws.workspace_id
    assert all_files(copy_dir) == {INDEX_NAME, "items/rec1/arr.npy", "items/rec1/new.json"}
    assert DirectoryWorkspace.load_item(copy_dir, "rec1", "new") == {"v": 2}
    # The copy is independent of the original.
    copy.store("rec1", "only-in-copy", 1)
    assert ws.get("rec1", "only-in-copy", None) is None


def test_empty_workspace_saves_into_a_new_nested_folder(tmp_path: Path) -> None:
    DirectoryWorkspace(tmp_path / "empty").save(tmp_path / "new" / "deep")
    assert DirectoryWorkspace.load(tmp_path / "new" / "deep").list_namespaces() == []


def test_save_leaves_unrelated_files_and_refuses_foreign_items(ws: DirectoryWorkspace, tmp_path: Path) -> None:
    ws.store("a", "k", 1)
    bundle = tmp_path / "bundle"
    bundle.mkdir()
    (bundle / "script.py").write_text("print('hi')")
    ws.save(bundle)
    assert (bundle / "script.py").read_text() == "print('hi')"
    assert DirectoryWorkspace.load(bundle).get("a", "k") == 1

    foreign = tmp_path / "foreign"
    (foreign / "items").mkdir(parents=True)
    with pytest.raises(SpikebatchError, match="no spikebatch-workspace.json"):
        ws.save(foreign)
    with pytest.raises(SpikebatchError):
        DirectoryWorkspace(foreign)


def test_merge_from(ws: DirectoryWorkspace, tmp_path: Path) -> None:
    other = DirectoryWorkspace(tmp_path / "other")
    ws.store("rec1", "x", 1)
    other.store("rec1", "x", 100, note="theirs")
    other.store("rec2", "y", np.ones(2))
    assert ws.merge_from(other) == {"merged": 1, "skipped": 1, "skipped_keys": [("rec1", "x")]}
    assert ws.get("rec1", "x") == 1 and ws.get("rec2", "y").tolist() == [1.0, 1.0]
    assert ws.merge_from(other, overwrite=True)["merged"] == 2
    assert ws.get("rec1", "x") == 100 and ws.get_info("rec1", "x")["note"] == "theirs"


def test_loading_where_there_is_no_workspace(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no spikebatch directory workspace"):
        DirectoryWorkspace.load(tmp_path / "nothing")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / INDEX_NAME).write_text("{not json")
    with pytest.raises(SpikebatchError, match="not a readable workspace index"):
        DirectoryWorkspace.load(tmp_path / "bad")
    assert DirectoryWorkspace.comparison_namespace("rec1", "rec2") == "C_rec1_rec2"
    assert not os.path.exists(tmp_path / "nothing")
