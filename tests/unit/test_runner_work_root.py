"""The runner's work folder after a run: removed (what the runner made), kept on request."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikebatch.application.runner import check_work_root, prepare_work_root, release_work_root
from spikebatch.domain.scratch import keep_work_dir


def _fill(root: Path) -> None:
    for name in ("work", "output"):
        (root / name / "sub").mkdir(parents=True)
        (root / name / "sub" / "data.bin").write_bytes(b"x" * 1000)
    (root / "runner.log").write_text("log")
    (root / "bundle.zip").write_bytes(b"zip")


def test_a_folder_the_runner_made_is_removed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path))
    root = prepare_work_root(None)
    _fill(root)
    (root / "work" / "sub" / "data.bin").chmod(0o444)  # a linked recording is read-only
    release_work_root(root, None, keep=False)
    assert list(tmp_path.iterdir()) == []


def test_a_given_folder_keeps_only_what_was_there_and_takes_the_next_run(tmp_path: Path) -> None:
    given = tmp_path / "emptydir"
    given.mkdir()
    (given / "lost+found").mkdir()  # not the runner's: stays
    root = prepare_work_root(str(given))
    _fill(root)
    release_work_root(root, str(given), keep=False)
    assert sorted(p.name for p in given.iterdir()) == ["lost+found"]
    check_work_root(given)  # a restarted container may run again in the same folder


def test_keep_keeps_everything(tmp_path: Path) -> None:
    root = prepare_work_root(str(tmp_path / "w"))
    _fill(root)
    release_work_root(root, None, keep=True)
    assert sorted(p.name for p in root.iterdir()) == ["bundle.zip", "output", "runner.log", "work"]


@pytest.mark.parametrize(("value", "kept"), [("1", True), ("true", True), ("YES", True), ("on", True),
                                             ("0", False), ("", False), ("no", False)])
def test_keep_switch(value: str, kept: bool) -> None:
    assert keep_work_dir({"SPIKEBATCH_KEEP_WORK_DIR": value}) is kept
    assert keep_work_dir({}) is False
