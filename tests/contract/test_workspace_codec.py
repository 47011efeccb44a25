"""Contract of the WorkspaceCodec port, run against every codec (directory, spikelab).

The journey of a workspace job: the user's workspace is saved into the bundle folder,
the job opens it, the script stores results, the job commits it, and retrieve_result
loads what came back. Each codec must carry JSON values, byte payloads and arrays
through that journey, keep every file inside the folder it was given, and refuse names
that could escape the folder or break the saved format.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import spikelab.workspace as spikelab_workspace  # test extras: a missing SpikeLab fails, never skips

from spikebatch.adapters.workspaces.directory import DirectoryWorkspace, DirectoryWorkspaceCodec
from spikebatch.adapters.workspaces.spikelab import SpikeLabWorkspaceCodec
from spikebatch.errors import ConfigError, UnsafePathError
from spikebatch.ports.workspace import WorkspaceCodec


@dataclass
class CodecEnv:
    codec: WorkspaceCodec
    #: A fresh, empty workspace of the codec's kind, as a user would create it.
    new_workspace: Callable[[Path], Any]
    #: Save a workspace the way its user does and return what they would pass on
    #: (a folder for the directory workspace, a base path for SpikeLab).
    saved_path: Callable[[Any, Path], str]
    #: How a byte payload is held: bytes, or for SpikeLab a uint8 array (its
    #: AnalysisWorkspace stores arrays and dicts, not bare bytes).
    as_stored_bytes: Callable[[bytes], Any]
    other_kind: Callable[[Path], Any]


def _directory_env() -> CodecEnv:
    def saved(ws, where):
        ws.save(where / "saved_ws")
        return str(where / "saved_ws")

    return CodecEnv(DirectoryWorkspaceCodec(), lambda p: DirectoryWorkspace(p / "user_ws"), saved,
                    lambda b: b, lambda p: spikelab_workspace.AnalysisWorkspace())


def _spikelab_env() -> CodecEnv:
    def saved(ws, where):
        ws.save(str(where / "saved_ws"))
        return str(where / "saved_ws")

    return CodecEnv(SpikeLabWorkspaceCodec(), lambda p: spikelab_workspace.AnalysisWorkspace(name="user"), saved,
                    lambda b: np.frombuffer(b, dtype=np.uint8).copy(), lambda p: DirectoryWorkspace(p / "other"))


@pytest.fixture(params=["directory", "spikelab"])
def env(request) -> CodecEnv:
    return _directory_env() if request.param == "directory" else _spikelab_env()


SUMMARY = {"recording": "rec1", "threshold_uv": -42.5, "units": 9, "curated": True, "comment": None,
           "filter": {"low_hz": 300, "high_hz": 6000}}
PAYLOAD = b"\x89PNG\r\n\x1a\n\x00binary"
RATES = np.arange(24, dtype=np.float64).reshape(4, 6) / 7
IDS = np.array([3, 1, 4, 1, 5], dtype=np.int32)


def _fill(env: CodecEnv, ws: Any, namespace: str) -> None:
    ws.store(namespace, "summary", SUMMARY)
    ws.store(namespace, "payload", env.as_stored_bytes(PAYLOAD))
    ws.store(namespace, "rates", RATES)
    ws.store(namespace, "ids", IDS)


def _check(env: CodecEnv, ws: Any, namespace: str) -> None:
    assert ws.get(namespace, "summary") == SUMMARY
    payload = ws.get(namespace, "payload")
    assert bytes(payload) == PAYLOAD if isinstance(payload, bytes) else payload.tobytes() == PAYLOAD
    rates, ids = ws.get(namespace, "rates"), ws.get(namespace, "ids")
    np.testing.assert_array_equal(rates, RATES)
    np.testing.assert_array_equal(ids, IDS)
    assert (rates.dtype, ids.dtype) == (RATES.dtype, IDS.dtype)


def _files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


def test_codec_satisfies_the_port(env: CodecEnv) -> None:
    assert isinstance(env.codec, WorkspaceCodec)
    assert env.codec.name in ("directory", "spikelab")


def test_job_round_trip(env: CodecEnv, tmp_path: Path) -> None:
    user_ws = env.new_workspace(tmp_path)
    _fill(env, user_ws, "input")

    bundle = tmp_path / "bundle"
    written = env.codec.save(user_ws, bundle)
    assert written and all(p.is_file() and p.resolve().is_relative_to(bundle.resolve()) for p in written)

    # Inside the job: open, let the "script" read inputs and store results, commit.
    live = env.codec.open(bundle)
    _check(env, live, "input")
    _fill(env, live, "rec1")
    live.store("rec1", "summary", {**SUMMARY, "units": 10})
    committed = env.codec.commit(live, bundle)
    assert committed and all(p.is_file() and p.resolve().is_relative_to(bundle.resolve()) for p in committed)

    # Home again: only the committed files travel (as the runner uploads them).
    home = tmp_path / "retrieved"
    for path in committed:
        target = home / path.relative_to(bundle)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(path.read_bytes())
    result = env.codec.load_result(home)
    assert sorted(result.list_namespaces()) == ["input", "rec1"]
    _check(env, result, "input")
    assert result.get("rec1", "summary")["units"] == 10
    np.testing.assert_array_equal(result.get("rec1", "rates"), RATES)
    # The user's own workspace was not touched by the job.
    assert user_ws.list_namespaces() == ["input"]


def test_saved_workspace_path_is_accepted(env: CodecEnv, tmp_path: Path) -> None:
    ws = env.new_workspace(tmp_path)
    _fill(env, ws, "rec1")
    path = env.saved_path(ws, tmp_path)
    assert env.codec.can_handle(path)
    env.codec.save(path, tmp_path / "bundle")
    _check(env, env.codec.open(tmp_path / "bundle"), "rec1")


def test_can_handle_only_its_own_kind(env: CodecEnv, tmp_path: Path) -> None:
    assert env.codec.can_handle(env.new_workspace(tmp_path))
    assert not env.codec.can_handle(env.other_kind(tmp_path))
    assert not env.codec.can_handle(str(tmp_path / "does-not-exist"))
    assert not env.codec.can_handle({"not": "a workspace"})


@pytest.mark.parametrize("namespace, key", [("../escape", "k"), ("ns", "../../k"), ("a/b", "k"), ("ns", "x/y"),
                                            ("..", "k"), ("ns", ".")])
def test_unsafe_names_are_refused_and_nothing_lands_outside(env: CodecEnv, tmp_path: Path, namespace, key) -> None:
    bundle = tmp_path / "jobs" / "bundle"
    env.codec.save(env.new_workspace(tmp_path), bundle)
    live = env.codec.open(bundle)
    outside_before = _files_under(tmp_path) - _files_under(bundle)
    # Refused when stored (directory workspace) or at the latest when committed
    # (SpikeLab stores anything in memory; the commit checks before writing).
    with pytest.raises(UnsafePathError):
        live.store(namespace, key, {"v": 1})
        env.codec.commit(live, bundle)
    assert _files_under(tmp_path) - _files_under(bundle) == outside_before
    assert "escape" not in os.listdir(tmp_path / "jobs")


def test_empty_folder_opens_a_new_workspace_but_is_no_result(env: CodecEnv, tmp_path: Path) -> None:
    # A sorting job starts its result workspace by opening an empty folder.
    fresh = env.codec.open(tmp_path / "results")
    assert fresh.list_namespaces() == []
    fresh.store("rec1", "ids", IDS)
    env.codec.commit(fresh, tmp_path / "results")
    np.testing.assert_array_equal(env.codec.load_result(tmp_path / "results").get("rec1", "ids"), IDS)
    # Retrieving from a folder where no workspace came back is an error, not an empty result.
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError):
        env.codec.load_result(tmp_path / "empty")


def test_folder_with_other_files_is_not_taken_for_a_workspace(env: CodecEnv, tmp_path: Path) -> None:
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("not a workspace")
    with pytest.raises(ConfigError):
        env.codec.open(tmp_path / "other")
    assert (tmp_path / "other" / "notes.txt").read_text() == "not a workspace"


def test_spikelab_workspace_carries_spikedata(tmp_path: Path) -> None:
    """A real SpikeLab AnalysisWorkspace with SpikeLab's own data class survives the trip."""
    from spikelab.spikedata import SpikeData

    codec = SpikeLabWorkspaceCodec()
    ws = spikelab_workspace.AnalysisWorkspace(name="experiment")
    trains = [np.array([1.0, 5.5, 20.0]), np.array([2.0, 3.0])]
    ws.store("rec1", "spikedata", SpikeData(trains, length=30.0), note="sorted")
    codec.save(ws, tmp_path / "bundle")
    live = codec.open(tmp_path / "bundle")
    live.store("rec1", "burst_count", {"count": 2})
    codec.commit(live, tmp_path / "bundle")
    result = codec.load_result(tmp_path / "bundle")
    assert isinstance(result, spikelab_workspace.AnalysisWorkspace) and result.name == "experiment"
    sd = result.get("rec1", "spikedata")
    assert sd.N == 2 and sd.length == 30.0
    np.testing.assert_allclose(sd.train[0], trains[0])
    assert result.get_info("rec1", "spikedata")["note"] == "sorted"
    assert result.get("rec1", "burst_count") == {"count": 2}
    assert sorted(p.name for p in (tmp_path / "bundle").iterdir()) == ["workspace.h5", "workspace.json"]


def test_spikelab_base_path_may_name_the_h5_file(tmp_path: Path) -> None:
    ws = spikelab_workspace.AnalysisWorkspace()
    ws.store("rec1", "ids", IDS)
    ws.save(str(tmp_path / "mine"))
    codec = SpikeLabWorkspaceCodec()
    assert codec.can_handle(str(tmp_path / "mine.h5"))
    codec.save(str(tmp_path / "mine.h5"), tmp_path / "bundle")
    np.testing.assert_array_equal(codec.load_result(tmp_path / "bundle").get("rec1", "ids"), IDS)
