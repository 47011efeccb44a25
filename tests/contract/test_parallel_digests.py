"""Hashing and staging many files at once (issue 13, item 3), against every store
(local, and boto3 / minio on the suite's real MinIO: conftest's ``store_env``):

* ``blob_digests`` gives the sha256 of each file, the files read by worker processes
  (not this one) once there is enough to hash, one progress over all of them;
* a file whose digest is cached is not read again;
* ``has_blob`` says whether ``put_blob`` would skip a file;
* staging N recordings reports what it sent, and a second staging of the same
  recordings sends none of them (0 bytes uploaded).

Plus the hashing workers themselves (``file_hashing.hash_files``): files are read at the
same time by different processes (shown with FIFOs that only open when a reader is
there), and stopping them leaves no process behind.
"""

from __future__ import annotations

import errno
import hashlib
import os
import sys
import threading
import time
from pathlib import Path
from typing import Dict, List

import pytest

from spikebatch.adapters.files.digests import PARALLEL_HASH_MIN_BYTES
from spikebatch.adapters.files.file_hashing import hash_files
from spikebatch.application.bundling import BundlePlanner
from spikebatch.application.staging import stage_plan
from spikebatch.errors import InvalidURIError

MiB = 1024 * 1024
#: The longest a test waits for a condition; only a broken implementation reaches it.
DEADLINE_SECONDS = 60


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def aged(path: Path, seconds: float = 3600) -> Path:
    """Date the file back: the digest cache does not keep digests of files modified in
    the last 2 s (their mtime may not yet reveal a second write)."""
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class ProgressLog(list):
    def __call__(self, done: int, total: int) -> None:
        self.append((done, total))

    def check_covers(self, total: int) -> None:
        """One progress over everything: same total throughout, never back, ending full."""
        assert self and {t for _, t in self} == {total}
        assert [d for d, _ in self] == sorted(d for d, _ in self)
        assert self[-1] == (total, total)


# Opens of watched paths by *this* process (an audit hook sees no other process's).
_OPENED_HERE: Dict[str, int] = {}


def _count_opens(event: str, args: tuple) -> None:
    if event == "open" and _OPENED_HERE and args and isinstance(args[0], (str, os.PathLike)):
        path = os.fspath(args[0])
        if path in _OPENED_HERE:
            _OPENED_HERE[path] += 1


sys.addaudithook(_count_opens)


def recordings(folder: Path, sizes: List[int]) -> List[Path]:
    folder.mkdir(exist_ok=True)
    return [aged(random_file(folder / f"rec{index}.bin", size)) for index, size in enumerate(sizes)]


# --- blob_digests ----------------------------------------------------------------------
def test_blob_digests_reads_the_files_in_worker_processes(store_env) -> None:
    sizes = [24 * MiB, 16 * MiB, 12 * MiB, 8 * MiB, 6 * MiB, 4 * MiB]
    assert sum(sizes) >= PARALLEL_HASH_MIN_BYTES  # enough to start the workers
    files = recordings(store_env.tmp / "recs", sizes)
    expected = [sha256_of(f) for f in files]
    store = store_env.store()
    progress = ProgressLog()
    _OPENED_HERE.update({os.path.realpath(f): 0 for f in files})
    try:
        assert store.blob_digests(files, progress=progress) == expected
        assert set(_OPENED_HERE.values()) == {0}  # read by the workers, not here
    finally:
        _OPENED_HERE.clear()
    progress.check_covers(sum(sizes))
    assert (store.digest_cache.files_hashed, store.digest_cache.bytes_hashed) == (6, sum(sizes))
    # The digests were cached: another client of the same cache reads nothing.
    other = store_env.store()
    assert other.blob_digests(files) == expected and other.digest_cache.files_hashed == 0


def test_a_file_named_twice_is_read_once(store_env) -> None:
    files = recordings(store_env.tmp / "recs", [3000, 5000])
    store = store_env.store()
    progress = ProgressLog()
    assert store.blob_digests([files[0], files[1], files[0]], progress) == [
        sha256_of(files[0]), sha256_of(files[1]), sha256_of(files[0])]
    assert store.digest_cache.files_hashed == 2
    progress.check_covers(3000 + 5000 + 3000)


def test_cached_digests_are_not_read_again(store_env) -> None:
    files = recordings(store_env.tmp / "recs", [5 * MiB, 3 * MiB, 2 * MiB])
    store = store_env.store()
    first = store.blob_digests(files)
    # Rewrite the first file in place (same inode, same size) and put its mtime back:
    # for the cache it is unchanged, so only a re-read could notice the new bytes.
    identity = os.stat(files[0])
    with open(files[0], "r+b") as handle:
        handle.write(os.urandom(5 * MiB))
    os.utime(files[0], ns=(identity.st_atime_ns, identity.st_mtime_ns))
    progress = ProgressLog()
    assert store.blob_digests(files, progress) == first  # the cached digest: not re-read
    assert store.digest_cache.files_hashed == 3
    progress.check_covers(10 * MiB)
    # A new mtime is noticed: that file alone is read again.
    aged(files[0], 60)
    assert store.blob_digests(files) == [sha256_of(files[0]), first[1], first[2]]
    assert store.digest_cache.files_hashed == 4


def test_every_path_is_checked_before_any_file_is_read(store_env) -> None:
    files = recordings(store_env.tmp / "recs", [1000, 2000])
    store = store_env.store()
    with pytest.raises(Exception, match="does not exist or is not a regular file"):
        store.blob_digests([files[0], store_env.tmp / "missing.bin", files[1]])
    assert store.digest_cache.files_hashed == 0


# --- has_blob --------------------------------------------------------------------------
def test_has_blob_says_whether_put_blob_would_skip(store_env) -> None:
    store = store_env.store()
    src = aged(random_file(store_env.tmp / "rec.bin", 3 * MiB))
    digest = sha256_of(src)
    assert not store.has_blob(digest, 3 * MiB)
    store.put_blob(src)
    assert store.has_blob(digest, 3 * MiB)
    assert not store.has_blob(digest, 3 * MiB + 1)
    assert not store.has_blob("0" * 64, 3 * MiB)
    with pytest.raises(InvalidURIError, match="must be a lower-case sha256 hex digest"):
        store.has_blob("not-a-digest", 10)


def test_has_blob_is_false_for_an_object_without_its_digest(store_env) -> None:
    """Same bytes under the blob's key but no recorded sha256 (put_blob then stores it
    again, repairing it): not the blob yet."""
    store = store_env.store()
    src = random_file(store_env.tmp / "rec.bin", 1000)
    store_env.inspect.put(store_env.uri("blobs/sha256/" + sha256_of(src)), src.read_bytes())
    assert not store.has_blob(sha256_of(src), 1000)


# --- staging ---------------------------------------------------------------------------
def test_staging_reports_uploaded_then_already_stored(store_env) -> None:
    sizes = [6 * MiB, 3 * MiB, 2 * MiB, 1 * MiB, 512 * 1024]
    files = recordings(store_env.tmp / "recs", sizes)
    store = store_env.store()

    def stage(run_id: str):
        plan = BundlePlanner(store).plan_sorting(run_id=run_id, recording_paths=files, sorter_name="kilosort4",
                                                 sorter_config={})
        scratch = store_env.tmp / f"scratch-{run_id}"
        scratch.mkdir()
        progress = ProgressLog()
        summary = stage_plan(plan, store, scratch, progress, uploads=3)
        progress.check_covers(plan.total_bytes)
        return summary

    first = stage("run-1")
    assert (first.uploaded_files, first.uploaded_bytes) == (5, sum(sizes))
    assert (first.stored_files, first.stored_bytes) == (0, 0)
    assert first.bundle_uri == store.build_uri(run_id="run-1", filename="bundle.zip")
    blobs = [store_env.uri("blobs/sha256/" + sha256_of(f)) for f in files]
    for uri, file in zip(blobs, files):
        assert store_env.inspect.sha256(uri) == sha256_of(file)
    stamps = [store_env.inspect.write_stamp(uri) for uri in blobs]

    again = stage("run-2")
    assert (again.uploaded_files, again.uploaded_bytes) == (0, 0)
    assert (again.stored_files, again.stored_bytes) == (5, sum(sizes))
    assert [store_env.inspect.write_stamp(uri) for uri in blobs] == stamps  # nothing rewritten
    assert store.exists(again.bundle_uri)


# --- the hashing workers ---------------------------------------------------------------
def _open_for_writing_once_read(fifo: Path) -> int:
    """A FIFO's write end, opened once a reader has it open (until then a non-blocking
    open fails with ENXIO)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while True:
        try:
            return os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        except OSError as exc:
            if exc.errno != errno.ENXIO or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def _in_thread(call):
    outcome: dict = {}

    def run() -> None:
        try:
            outcome["value"] = call()
        except BaseException as exc:  # handed to the test below
            outcome["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, outcome


def _hashing_children() -> List[int]:
    """Processes of this one running the hashing worker (Linux /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue  # exited meanwhile
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        if parent == os.getpid() and b"hashing_worker.py" in cmdline:
            found.append(int(entry))
    return found


def test_worker_processes_read_files_at_the_same_time(tmp_path: Path) -> None:
    fifos = [tmp_path / "a.fifo", tmp_path / "b.fifo"]
    for fifo in fifos:
        os.mkfifo(fifo)
    thread, outcome = _in_thread(lambda: hash_files([str(f) for f in fifos], processes=2))
    # Both write ends open only while both files are being read: one at a time would
    # leave the second open waiting until the deadline.
    ends = [_open_for_writing_once_read(fifo) for fifo in fifos]
    for end, data in zip(ends, (b"first", b"second")):
        os.write(end, data)
        os.close(end)
    thread.join(DEADLINE_SECONDS)
    assert "error" not in outcome, outcome.get("error")
    hashed = outcome["value"]
    assert [h.sha256 for h in hashed] == [hashlib.sha256(b"first").hexdigest(), hashlib.sha256(b"second").hexdigest()]
    assert len({h.pid for h in hashed}) == 2 and os.getpid() not in {h.pid for h in hashed}
    assert _hashing_children() == []


def test_a_file_that_cannot_be_read_stops_the_other_workers(tmp_path: Path) -> None:
    """One worker is given a folder (an error at once) while the other waits for ever
    on a FIFO nobody writes to: hash_files raises the error, having stopped it."""
    fifo = tmp_path / "never-written.fifo"
    os.mkfifo(fifo)
    folder = tmp_path / "a-folder"
    folder.mkdir()
    with pytest.raises(IsADirectoryError) as caught:
        hash_files([str(fifo), str(folder)], processes=2)
    assert caught.value.filename == str(folder)
    assert _hashing_children() == []


class Cancelled(Exception):
    pass


def test_a_progress_callback_that_raises_stops_the_workers(tmp_path: Path) -> None:
    files = [random_file(tmp_path / f"rec{index}.bin", 40 * MiB) for index in range(3)]

    def cancel_once_bytes_arrive(done: int, total: int) -> None:
        if done:
            raise Cancelled()

    with pytest.raises(Cancelled):
        hash_files([str(f) for f in files], processes=2, progress=cancel_once_bytes_arrive)
    assert _hashing_children() == []


def test_a_worker_that_dies_is_an_error_saying_why(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from spikebatch.adapters.files import file_hashing

    files = [str(random_file(tmp_path / f"rec{index}.bin", 1000)) for index in range(2)]
    monkeypatch.setattr(file_hashing, "_worker_command", lambda: [
        sys.executable, "-c", "import sys; sys.stderr.write('MemoryError: out of memory\\n'); sys.exit(3)"])
    with pytest.raises(file_hashing.HashingWorkerError, match=r"rec\d.bin exited with code 3 before it was done: "
                                                              r"MemoryError: out of memory"):
        hash_files(files, processes=2)
    assert _hashing_children() == []
