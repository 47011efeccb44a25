"""The library refuses the inputs the CLI refuses (issue 15, item 4): RunSession's
submit_* check every file they are given before reading any of it -- names a bundle
cannot carry, FIFOs, sockets, empty recordings, links out of their folder -- and then
nothing is hashed, uploaded or submitted. Plus the pure helpers the messages use."""

from __future__ import annotations

import os
import socket
import stat
from pathlib import Path
from typing import Callable, List

import pytest

from fakes import JsonFileCodec, MemoryStore, RecordingSorter, ScriptedBackend
from spikebatch.domain.bundle import bundle_name_problem
from spikebatch.domain.local_files import file_kind, shown_path
from spikebatch.errors import ConfigError
from spikebatch.models import ClusterProfile
from spikebatch.session import RunSession

PROFILE = ClusterProfile(name="unit", default_images={"cpu": "runner:1", "gpu": "runner:1-gpu"})


class Watched:
    def __init__(self) -> None:
        self.store, self.backend = MemoryStore(), ScriptedBackend()
        self.hashed: List[int] = []
        self.session = RunSession(profile=PROFILE, backend=self.backend, storage_client=self.store,
                                  workspace_codecs=[JsonFileCodec()], sorter_factory=lambda name: RecordingSorter(),
                                  hash_progress=lambda done, total: self.hashed.append(done))

    def sort(self, *recordings: Path):
        return self.session.submit_sorting_job(recording_paths=[str(r) for r in recordings], job_spec={})

    def refused(self, submit: Callable[[], object], *fragments: str) -> str:
        with pytest.raises(ConfigError) as caught:
            submit()
        message = caught.value.message
        for fragment in fragments:
            assert fragment in message, (fragment, message)
        assert "\n" not in message
        assert self.hashed == [], "a file was read before every input was checked"
        assert self.store.uploads == [] and self.backend.dry_runs == [] and self.backend.applied == []
        return message


@pytest.fixture
def watched() -> Watched:
    return Watched()


def recording_folder(root: Path, name: str = "rec") -> Path:
    folder = root / name
    folder.mkdir()
    (folder / "traces_cached_seg0.raw").write_bytes(os.urandom(100_000))
    (folder / "binary.json").write_text("{}")
    return folder


def test_backslash_and_non_utf8_member_names(watched: Watched, tmp_path: Path) -> None:
    folder = recording_folder(tmp_path)
    (folder / "x\\y.json").write_text("{}")
    watched.refused(lambda: watched.sort(folder), f"'{folder}/x\\y.json'", "backslash", "rename")

    (folder / "x\\y.json").unlink()
    nested = folder / "probe"
    nested.mkdir()
    with open(os.path.join(os.fsencode(nested), b"map\xe9.json"), "wb") as handle:
        handle.write(b"{}")
    watched.refused(lambda: watched.sort(folder), f"'{nested}/map\\xe9.json'", "not valid UTF-8")


def test_a_control_character_in_a_member_name(watched: Watched, tmp_path: Path) -> None:
    folder = recording_folder(tmp_path)
    (folder / "notes\n.txt").write_text("x")
    watched.refused(lambda: watched.sort(folder), "notes\\x0a.txt", "control character")


def test_special_files_as_recordings_and_inside_them(watched: Watched, tmp_path: Path) -> None:
    fifo = tmp_path / "stream.raw"
    os.mkfifo(fifo)
    watched.refused(lambda: watched.sort(recording_folder(tmp_path), fifo), str(fifo), "a FIFO (named pipe)",
                    "not a file or folder")
    folder = tmp_path / "rec"
    os.mkfifo(folder / "pipe")
    watched.refused(lambda: watched.sort(folder), str(folder / "pipe"), "FIFO", "remove it")
    os.unlink(folder / "pipe")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "daq.sock"))
        watched.refused(lambda: watched.sort(folder), str(folder / "daq.sock"), "a socket")


def test_a_link_to_a_fifo_is_a_fifo(watched: Watched, tmp_path: Path) -> None:
    folder = recording_folder(tmp_path)
    os.mkfifo(folder / "real.pipe")
    (folder / "link").symlink_to("real.pipe")
    watched.refused(lambda: watched.sort(folder), "FIFO")


def test_empty_recordings(watched: Watched, tmp_path: Path) -> None:
    empty = tmp_path / "rec.nwb"
    empty.touch()
    watched.refused(lambda: watched.sort(empty), str(empty), "empty (0 bytes)")
    folder = tmp_path / "blank"
    (folder / "sub").mkdir(parents=True)
    watched.refused(lambda: watched.sort(folder), str(folder), "is empty")
    (folder / "sub" / "traces.raw").touch()
    watched.refused(lambda: watched.sort(folder), str(folder), "only empty files")


def test_links_out_of_their_folder_broken_or_to_folders(watched: Watched, tmp_path: Path) -> None:
    outside = tmp_path / "outside.raw"
    outside.write_bytes(b"secret")
    folder = recording_folder(tmp_path)
    (folder / "extra.raw").symlink_to(outside)
    watched.refused(lambda: watched.sort(folder), str(folder / "extra.raw"), "links outside its folder", str(outside))
    (folder / "extra.raw").unlink()
    (folder / "gone.raw").symlink_to(folder / "missing.raw")
    watched.refused(lambda: watched.sort(folder), str(folder / "gone.raw"), "broken link")
    (folder / "gone.raw").unlink()
    (folder / "sub").mkdir()
    (folder / "again").symlink_to("sub", target_is_directory=True)
    watched.refused(lambda: watched.sort(folder), str(folder / "again"), "link to a folder")


def test_a_named_link_must_stay_in_its_own_folder(watched: Watched, tmp_path: Path) -> None:
    script = tmp_path / "analysis.py"
    script.write_text("print(1)\n")
    secret = tmp_path / "home" / "credentials"
    secret.parent.mkdir()
    secret.write_text("aws_secret_access_key = x")
    link = tmp_path / "project" / "params.json"
    link.parent.mkdir()
    link.symlink_to(secret)

    def submit(**kw):
        return watched.session.submit_workspace_job(workspace={"a": 1}, job_spec={}, **{"script": str(script), **kw})

    watched.refused(lambda: submit(bundle_input_paths=[str(link)]), "bundle input", str(link),
                    "links outside its folder", str(secret), "give that file's own path")
    script_link = tmp_path / "project" / "run.py"
    script_link.symlink_to(script)
    watched.refused(lambda: submit(script=str(script_link)), "script", "links outside its folder")
    # A recording named directly may link anywhere (a shared drive): its target is sent.
    recording_link = tmp_path / "project" / "rec.raw"
    recording_link.symlink_to(secret)
    shared_drive = Watched()
    shared_drive.sort(recording_link)
    assert any(data == secret.read_bytes() for data in shared_drive.store.objects.values())
    fifo = tmp_path / "params.fifo"
    os.mkfifo(fifo)
    watched.refused(lambda: submit(bundle_input_paths=[str(fifo)]), "bundle input", "FIFO", "not a regular file")


def test_inputs_are_checked_before_the_workspace_is_saved(tmp_path: Path) -> None:
    saved: List[Path] = []

    class Codec(JsonFileCodec):
        def save(self, workspace, folder):
            saved.append(folder)
            return super().save(workspace, folder)

    watched = Watched()
    watched.session.workspace_codecs = [Codec()]
    script = tmp_path / "analysis.py"
    script.write_text("print(1)\n")
    fifo = tmp_path / "in.fifo"
    os.mkfifo(fifo)
    watched.refused(lambda: watched.session.submit_workspace_job(
        workspace={"a": 1}, script=str(script), job_spec={}, bundle_input_paths=[str(fifo)]), "FIFO")
    assert saved == []


def test_a_workspace_file_the_manifest_cannot_hold_is_refused_before_upload(tmp_path: Path) -> None:
    # Whatever writes the files (here a workspace codec), a planned path the manifest
    # would refuse is refused while planning, not after the blobs went up.
    class Codec(JsonFileCodec):
        def save(self, workspace, folder):
            big = folder / "arrays\\spikes.bin"
            big.write_bytes(os.urandom(9 * 1024 * 1024))  # above the blob threshold
            return [*super().save(workspace, folder), big]

    watched = Watched()
    watched.session.workspace_codecs = [Codec()]
    script = tmp_path / "analysis.py"
    script.write_text("print(1)\n")
    watched.refused(lambda: watched.session.submit_workspace_job(workspace={"a": 1}, script=str(script), job_spec={}),
                    "arrays\\spikes.bin", "backslash")


def test_what_is_still_accepted(watched: Watched, tmp_path: Path) -> None:
    # Hidden members (zarr's .zattrs), empty members beside data, links that stay in the
    # folder, non-ASCII UTF-8 names, and a named link to a file beside it.
    folder = recording_folder(tmp_path, "enregistrement-é")
    (folder / ".zattrs").write_text("{}")
    (folder / "empty.marker").touch()
    (folder / "nested").mkdir()
    (folder / "nested" / "alias.raw").symlink_to("../traces_cached_seg0.raw")
    single = tmp_path / "single.nwb"
    single.write_bytes(b"\x89HDF")
    beside = tmp_path / "latest.nwb"
    beside.symlink_to("single.nwb")
    result = watched.sort(folder, beside)
    assert result.job_type == "sorting" and len(watched.backend.applied) == 1
    assert watched.hashed


# --- the pure helpers ----------------------------------------------------------------------
def test_bundle_name_problem() -> None:
    assert bundle_name_problem("traces.raw") is None and bundle_name_problem("é.json") is None
    assert "backslash" in bundle_name_problem("x\\y.json")
    assert "UTF-8" in bundle_name_problem(os.fsdecode(b"a\xff"))
    assert "control character" in bundle_name_problem("a\tb")
    assert "control character" in bundle_name_problem("a\x00b")


def test_shown_path_is_one_line_and_shows_bytes() -> None:
    assert shown_path("/data/rec.raw") == "'/data/rec.raw'"
    assert shown_path(os.fsdecode(b"/d/a\xffb")) == "'/d/a\\xffb'"
    assert shown_path("x\\y.json") == "'x\\y.json'"
    assert shown_path("a\nb\u2028c") == "'a\\x0ab\\u2028c'"
    assert shown_path("é") == "'é'"


def test_file_kind_names_every_kind() -> None:
    assert file_kind(stat.S_IFIFO | 0o644) == "a FIFO (named pipe)"
    assert file_kind(stat.S_IFSOCK) == "a socket"
    assert file_kind(stat.S_IFCHR) == "a character device"
    assert file_kind(stat.S_IFBLK) == "a block device"
    assert file_kind(stat.S_IFDIR) == "a folder"
    assert file_kind(stat.S_IFREG) == "a regular file"
    assert file_kind(stat.S_IFLNK) == "a symbolic link"
