"""Staging a plan (issue 13, item 3): blobs uploaded several at once with one progress
over the whole plan, a StagingSummary of what was sent and what the store already held,
and a failed upload or a Ctrl-C stopping every other upload before the call returns.

The store is the in-memory fake, its put_blob made to report progress in steps, to note
how many uploads run at once, and to do what a test asks for chosen files. Against the
real stores: tests/contract/test_parallel_digests.py."""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import signal
import threading
import time
import zipfile
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List

import pytest

from fakes import MemoryStore
from spikebatch.application.bundling import BundlePlan, BundlePlanner, PlannedFile
from spikebatch.application.staging import StagingStopped, stage_bundle, stage_plan
from spikebatch.domain.bundle import RecordingEntry
from spikebatch.errors import IntegrityError, StorageError

#: The longest any test waits for a condition (a thread to arrive somewhere): a
#: deadline that only a broken implementation reaches, never a pause.
DEADLINE_SECONDS = 60


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class UploadingStore(MemoryStore):
    """MemoryStore whose blob uploads report progress in four steps, counted while they
    run; ``behaviour[name](progress, size)`` runs first for the file called ``name``."""

    def __init__(self) -> None:
        super().__init__()
        self.lock = threading.Lock()
        self.running = 0
        self.most_running = 0
        #: Names of the files whose upload began (bytes not yet stored), in order.
        self.started: List[str] = []
        self.behaviour: Dict[str, Callable[[Any, int], None]] = {}
        #: Every ``blob_digests`` call: the paths it was given.
        self.digest_calls: List[List[Path]] = []

    def blob_digests(self, paths: Any, progress: Any = None) -> List[str]:
        files = [Path(p) for p in paths]
        self.digest_calls.append(files)
        total, done, digests = sum(f.stat().st_size for f in files), 0, []
        for file in files:
            digests.append(sha256_of(file))
            done += file.stat().st_size
            if progress is not None:
                progress(done, total)
        return digests

    def put_blob(self, local_path: Any, progress: Any = None) -> str:
        path = Path(local_path)
        size = path.stat().st_size
        if self.has_blob(sha256_of(path), size):  # like the adapters: stored bytes are not sent
            return self.build_uri(run_id="", filename=sha256_of(path), category="blobs")
        with self.lock:
            self.started.append(path.name)
            self.running += 1
            self.most_running = max(self.most_running, self.running)
        try:
            special = self.behaviour.get(path.name)
            if special is not None:
                special(progress, size)
            for step in range(1, 5):
                if progress is not None:
                    progress(size * step // 4, size)
            return super().put_blob(local_path)
        finally:
            with self.lock:
                self.running -= 1

    def bundles(self) -> List[str]:
        return [uri for uri in self.uploads if uri.endswith("/bundle.zip")]


def make_plan(tmp_path: Path, blob_sizes: List[int], small_sizes: List[int] = ()) -> BundlePlan:  # type: ignore[assignment]
    """A sorting plan of recordings rec0.bin, rec1.bin, ... (blobs) and small sidecar
    files side0.json, ... (carried in the zip)."""
    files: List[PlannedFile] = []
    for index, size in enumerate(blob_sizes):
        path = tmp_path / f"rec{index}.bin"
        path.write_bytes(os.urandom(size))
        files.append(PlannedFile(local_path=path, path=f"recordings/{path.name}", sha256=sha256_of(path),
                                 size=size, as_blob=True))
    for index, size in enumerate(small_sizes):
        path = tmp_path / f"side{index}.json"
        path.write_bytes(b"x" * size)
        files.append(PlannedFile(local_path=path, path=f"recordings/{path.name}", sha256=sha256_of(path),
                                 size=size, as_blob=False))
    recordings = [RecordingEntry(name=f"rec{index}.bin", path=f"recordings/rec{index}.bin")
                  for index in range(len(blob_sizes))]
    return BundlePlan(run_id="run-1", job_type="sorting", format="fake-sorter", files=files,
                      recordings=recordings, sorting={"sorter": "fake-sorter", "config": {}})


def scratch(tmp_path: Path) -> Path:
    folder = tmp_path / "scratch"
    folder.mkdir(exist_ok=True)
    return folder


class ProgressLog:
    def __init__(self) -> None:
        self.calls: List[tuple[int, int]] = []
        self.threads: set[str] = set()

    def __call__(self, done: int, total: int) -> None:
        self.calls.append((done, total))
        self.threads.add(threading.current_thread().name)


def upload_threads() -> List[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("spikebatch-upload")]


def test_blobs_go_several_at_once_under_one_progress(tmp_path: Path) -> None:
    store = UploadingStore()
    plan = make_plan(tmp_path, [3000, 5000, 7000, 11000, 13000, 17000], small_sizes=[100, 200])
    # Each upload waits until three run together: a staging that sent them one after
    # another would break the barrier instead of passing it.
    together = threading.Barrier(3, timeout=DEADLINE_SECONDS)
    for planned in plan.files[:6]:
        store.behaviour[planned.local_path.name] = lambda progress, size: together.wait()
    log = ProgressLog()

    summary = stage_plan(plan, store, scratch(tmp_path), log, uploads=3)

    assert store.most_running == 3
    blob_bytes = 3000 + 5000 + 7000 + 11000 + 13000 + 17000
    assert (summary.uploaded_files, summary.uploaded_bytes) == (6, blob_bytes)
    assert (summary.stored_files, summary.stored_bytes) == (0, 0)
    assert summary.bundled_files == 2 and summary.bundle_bytes > 0
    assert summary.bundle_uri == store.build_uri(run_id="run-1", filename="bundle.zip") == store.bundles()[0]
    # One progress over the plan: the same total throughout, never going back, ending
    # at the total (the small files count once the zip is stored).
    assert {total for _, total in log.calls} == {plan.total_bytes}
    assert [done for done, _ in log.calls] == sorted(done for done, _ in log.calls)
    assert log.calls[-1] == (plan.total_bytes, plan.total_bytes)
    assert len(log.threads) > 1  # reported from the upload threads
    # The manifest lists the files in plan order, each blob by its content address.
    with zipfile.ZipFile(io.BytesIO(store.objects[summary.bundle_uri])) as bundle:
        manifest = json.loads(bundle.read("manifest.json"))
        assert sorted(bundle.namelist()) == ["manifest.json", "recordings/side0.json", "recordings/side1.json"]
    assert [f["path"] for f in manifest["files"]] == [p.path for p in plan.files]
    for entry, planned in zip(manifest["files"], plan.files):
        if planned.as_blob:
            assert entry["uri"] == store.build_uri(run_id="", filename=planned.sha256, category="blobs")
            assert store.objects[entry["uri"]] == planned.local_path.read_bytes()
    assert upload_threads() == []


def test_stored_blobs_are_not_sent_again(tmp_path: Path) -> None:
    store = UploadingStore()
    plan = make_plan(tmp_path, [4000, 5000, 6000, 7000])
    store.put_blob(plan.files[1].local_path)
    store.put_blob(plan.files[3].local_path)
    store.started.clear()
    log = ProgressLog()

    first = stage_plan(plan, store, scratch(tmp_path), log, uploads=4)
    assert sorted(store.started) == ["rec0.bin", "rec2.bin"]
    assert (first.uploaded_files, first.uploaded_bytes) == (2, 4000 + 6000)
    assert (first.stored_files, first.stored_bytes) == (2, 5000 + 7000)
    assert first.uploaded_paths == ("recordings/rec0.bin", "recordings/rec2.bin")
    assert first.stored_paths == ("recordings/rec1.bin", "recordings/rec3.bin")
    assert log.calls[-1] == (plan.total_bytes, plan.total_bytes)

    # A re-submission of the same recordings: nothing but the zip is sent.
    log = ProgressLog()
    again = stage_plan(plan, store, scratch(tmp_path), log, uploads=4)
    assert sorted(store.started) == ["rec0.bin", "rec2.bin"]
    assert (again.uploaded_files, again.uploaded_bytes) == (0, 0)
    assert (again.stored_files, again.stored_bytes) == (4, plan.total_bytes)
    assert log.calls[-1] == (plan.total_bytes, plan.total_bytes)
    assert len(store.bundles()) == 2


def test_one_at_a_time_when_asked(tmp_path: Path) -> None:
    store = UploadingStore()
    plan = make_plan(tmp_path, [1000, 2000, 3000])
    uri = stage_bundle(plan, store, scratch(tmp_path), uploads=1)
    assert uri == store.bundles()[0]
    assert store.most_running == 1 and store.started == ["rec0.bin", "rec1.bin", "rec2.bin"]


def report_until_stopped(progress: Any, size: int) -> None:
    """An upload that goes on until staging tells it to stop (its progress raises)."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        progress(1, size)  # raises StagingStopped once staging stops
    raise AssertionError("staging never stopped this upload")


def test_a_failed_upload_stops_the_others_and_starts_no_more(tmp_path: Path) -> None:
    store = UploadingStore()
    plan = make_plan(tmp_path, [1000] * 6)
    second_running = threading.Event()
    stopped: List[BaseException] = []

    def fail_once_the_second_runs(progress: Any, size: int) -> None:
        assert second_running.wait(DEADLINE_SECONDS)
        raise StorageError("cannot write s3://unit-bucket/...: disk full")

    def run_until_stopped(progress: Any, size: int) -> None:
        second_running.set()
        try:
            report_until_stopped(progress, size)
        except StagingStopped as exc:
            stopped.append(exc)
            raise

    store.behaviour.update({"rec0.bin": fail_once_the_second_runs, "rec1.bin": run_until_stopped})
    with pytest.raises(StorageError, match="disk full"):
        stage_plan(plan, store, scratch(tmp_path), uploads=2)
    assert len(stopped) == 1  # the other upload was stopped, not left running
    assert store.started == ["rec0.bin", "rec1.bin"] or store.started == ["rec1.bin", "rec0.bin"]
    assert store.uploads == []  # no blob finished, and no bundle names the run
    assert store.running == 0  # none runs on after staging returned


@contextlib.contextmanager
def ctrl_c_raises(delivered: threading.Event) -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt in the main thread, as in a terminal (even when
    this process inherited SIGINT ignored: a suite started in the background), and
    ``delivered`` is set the moment the main thread handles it."""
    def handler(signum: int, frame: Any) -> None:
        delivered.set()
        signal.default_int_handler(signum, frame)

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def test_ctrl_c_stops_every_upload_before_staging_returns(tmp_path: Path) -> None:
    store = UploadingStore()
    plan = make_plan(tmp_path, [1000] * 4)
    both_running = threading.Barrier(2, timeout=DEADLINE_SECONDS)
    delivered = threading.Event()
    stopped: List[str] = []

    def interrupt_then_run(progress: Any, size: int) -> None:
        if both_running.wait() == 0:
            # One of the two, from its upload thread, presses Ctrl-C for the user.
            signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)  # type: ignore[arg-type]
            assert delivered.wait(DEADLINE_SECONDS), "the main thread never handled SIGINT"
        try:
            report_until_stopped(progress, size)
        except StagingStopped:
            stopped.append(threading.current_thread().name)
            raise

    store.behaviour.update({"rec0.bin": interrupt_then_run, "rec1.bin": interrupt_then_run})
    with ctrl_c_raises(delivered), pytest.raises(KeyboardInterrupt):
        stage_plan(plan, store, scratch(tmp_path), uploads=2)
    assert len(stopped) == 2  # both uploads were stopped before the interrupt went on
    assert sorted(store.started) == ["rec0.bin", "rec1.bin"]
    assert store.uploads == []
    assert store.running == 0  # none runs on after staging returned


def test_a_file_changed_after_planning_is_refused(tmp_path: Path) -> None:
    store = UploadingStore()
    plan = make_plan(tmp_path, [1000, 2000])
    plan.files[1].local_path.write_bytes(os.urandom(2000))
    with pytest.raises(IntegrityError, match="rec1.bin' changed after it was hashed"):
        stage_plan(plan, store, scratch(tmp_path), uploads=2)
    assert store.bundles() == []


def test_the_planner_hashes_a_whole_plan_in_one_call(tmp_path: Path) -> None:
    store = UploadingStore()
    hashed: List[tuple[int, int]] = []
    planner = BundlePlanner(store, hash_progress=lambda done, total: hashed.append((done, total)))
    files = []
    for index, size in enumerate([3000, 1000, 2000]):
        files.append(tmp_path / f"rec{index}.bin")
        files[-1].write_bytes(os.urandom(size))
    folder = tmp_path / "rec-folder"
    folder.mkdir()
    (folder / "traces.raw").write_bytes(os.urandom(500))
    (folder / "probe.json").write_text("{}")

    plan = planner.plan_sorting(run_id="run-1", recording_paths=[*files, folder], sorter_name="fake-sorter",
                                sorter_config={})

    assert len(store.digest_calls) == 1
    assert sorted(p.name for p in store.digest_calls[0]) == ["probe.json", "rec0.bin", "rec1.bin", "rec2.bin", "traces.raw"]
    assert {p.path: p.sha256 for p in plan.files} == {p.path: sha256_of(p.local_path) for p in plan.files}
    assert hashed[-1] == (6500 + 2, 6500 + 2)  # four data files and "{}"
