"""Staging a planned bundle: the large files as content-addressed blobs, several at
once, each skipped when the store already holds it, then one small zip with
manifest.json. The StagingSummary says what was sent and what was already stored.
"""

from __future__ import annotations

import contextlib
import os
import threading
import zipfile
from concurrent.futures import FIRST_EXCEPTION, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

from ..domain.bundle import BUNDLE_FILENAME, MANIFEST_NAME, BundleFile, BundleManifest
from ..domain.errors import IntegrityError
from ..domain.local_files import shown_path
from ..ports.storage import PARALLEL_UPLOADS, ArtifactStore, ProgressCallback
from .bundling import BundlePlan, PlannedFile


@dataclass(frozen=True)
class StagingSummary:
    """What staging one plan did: which blobs were sent now and which the store already
    held (a re-submission of the same recordings sends none of them)."""

    bundle_uri: str
    #: Blobs sent to the store by this staging, and their bytes.
    uploaded_files: int
    uploaded_bytes: int
    #: Blobs the store already held (same sha256 and size): not sent again.
    stored_files: int
    stored_bytes: int
    #: Small files that travel inside the bundle zip, and the zip's own size (the zip
    #: is uploaded every time: its manifest names the run).
    bundled_files: int = 0
    bundle_bytes: int = 0
    #: The bundle paths (``PlannedFile.path``) of the blobs sent now and of those
    #: already stored, in plan order: which recordings cost an upload.
    uploaded_paths: Tuple[str, ...] = ()
    stored_paths: Tuple[str, ...] = ()


#: How long the calling thread blocks at a time while uploads run (see
#: _wait_for_all_or_a_failure).
WAKE_UP_SECONDS = 0.25


class StagingStopped(Exception):
    """Raised inside an upload worker when another upload failed or the caller was
    interrupted: the transfer stops at its next progress report (the store then
    removes what it had sent, as for any failed upload)."""


class _Staging:
    """What the upload threads of one staging share: one ``progress(bytes_done, total)``
    over the whole plan, and the stop request.

    Progress calls are serialised, so a progress bar needs no locking. Every transfer
    checks ``stopped`` on each report, so a stop request ends it at its next chunk; the
    uploads under way are counted, so the caller can wait until the last has ended (a
    thread pool's own bookkeeping cannot promise that: a Ctrl-C landing while it starts
    a thread leaves that thread out of what its shutdown joins)."""

    def __init__(self, callback: Optional[ProgressCallback], total: int) -> None:
        self.callback = callback
        self.total = total
        self.done = 0
        self.stopped = False
        self._per_file: Dict[int, int] = {}
        self._progress_lock = threading.Lock()
        self._active = 0
        self._state = threading.Condition()

    def set_file(self, key: int, done: int) -> None:
        """File ``key`` (its index) has ``done`` bytes sent."""
        with self._progress_lock:
            self.done += done - self._per_file.get(key, 0)
            self._per_file[key] = done
            if self.callback is not None:
                self.callback(self.done, self.total)

    def for_file(self, key: int) -> ProgressCallback:
        """One file's ``progress(bytes_sent, size)``; a transfer may report fewer bytes
        than before (a part re-sent after a retry)."""
        def report(done: int, _size: int) -> None:
            if self.stopped:
                raise StagingStopped()
            self.set_file(key, done)

        return report

    @contextlib.contextmanager
    def upload(self) -> Iterator[None]:
        """One upload under way; none starts once a stop was requested, and one that
        fails requests it (before its thread takes another file)."""
        with self._state:
            if self.stopped:
                raise StagingStopped()
            self._active += 1
        try:
            yield
        except BaseException:
            self.stop()
            raise
        finally:
            with self._state:
                self._active -= 1
                self._state.notify_all()

    def stop(self) -> None:
        with self._state:
            self.stopped = True

    def stop_and_wait(self) -> None:
        """Request the stop, and return once no upload is under way any more."""
        with self._state:
            self.stopped = True
            self._state.wait_for(lambda: self._active == 0)


def _stage_blob(index: int, planned: PlannedFile, store: ArtifactStore, staging: _Staging) -> Tuple[str, bool]:
    """Store one planned file as a blob unless the store holds it: (URI, sent now)."""
    with staging.upload():
        report = staging.for_file(index)
        expected = store.build_uri(run_id="", filename=planned.sha256, category="blobs")
        stored = store.has_blob(planned.sha256, planned.size)
        # put_blob all the same: for bytes already stored it sends nothing, and it
        # aborts the unfinished uploads a killed earlier submission left of them.
        uri = store.put_blob(planned.local_path, progress=report)
        if uri != expected:
            # put_blob hashed the file anew (or the cache saw it change): the manifest
            # would name bytes that are not those stored.
            raise IntegrityError(
                f"{shown_path(os.fspath(planned.local_path))} changed after it was hashed "
                f"(planned sha256 {planned.sha256}); wait until it is completely written, "
                "then submit again"
            )
        # Counted whole whatever the transfer reported last (a store that found the
        # blob stored meanwhile may report nothing), so the bar ends at the total.
        staging.set_file(index, planned.size)
        return uri, not stored


def _wait_for_all_or_a_failure(futures: List[Future[Tuple[str, bool]]]) -> None:
    """Return once every future is done or one has failed.

    Waits a while at a time rather than at once: CPython runs a signal handler only
    between bytecodes, so a Ctrl-C landing just as the calling thread starts to block
    would otherwise be noticed only when the next upload ends."""
    while True:
        done, not_done = wait(futures, timeout=WAKE_UP_SECONDS, return_when=FIRST_EXCEPTION)
        if not not_done or any(not f.cancelled() and f.exception() is not None for f in done):
            return


def _stage_blobs(blobs: List[PlannedFile], store: ArtifactStore, staging: _Staging,
                 uploads: int) -> List[Tuple[str, bool]]:
    """Every blob staged, ``uploads`` at once; (URI, sent now) in the order given.

    The first failure (or a Ctrl-C in the calling thread) stops the other transfers at
    their next chunk and drops the files not started; it is raised once they have
    stopped, so no upload runs on after the call returns."""
    if uploads <= 1 or len(blobs) <= 1:
        return [_stage_blob(index, planned, store, staging) for index, planned in enumerate(blobs)]
    with ThreadPoolExecutor(max_workers=min(uploads, len(blobs)), thread_name_prefix="spikebatch-upload") as pool:
        futures: List[Future[Tuple[str, bool]]] = []
        try:
            # Submitted inside the try: a Ctrl-C while the first uploads already run
            # must stop them too.
            for index, planned in enumerate(blobs):
                futures.append(pool.submit(_stage_blob, index, planned, store, staging))
            _wait_for_all_or_a_failure(futures)
        except BaseException:
            for future in futures:
                future.cancel()
            staging.stop_and_wait()
            raise
        failures = [future.exception() for future in futures
                    if future.done() and not future.cancelled() and future.exception() is not None]
        if failures:
            for future in futures:
                future.cancel()
            staging.stop_and_wait()
            # The error that stopped the others, not one of their StagingStopped.
            raise next((exc for exc in failures if not isinstance(exc, StagingStopped)), failures[0])
        return [future.result() for future in futures]


def stage_plan(
    plan: BundlePlan,
    store: ArtifactStore,
    scratch_dir: Path,
    progress: Optional[ProgressCallback] = None,
    uploads: int = PARALLEL_UPLOADS,
) -> StagingSummary:
    """Upload the plan's blobs (``uploads`` files at once, each skipped when the store
    already holds it), then the zip holding manifest.json and the small files.

    ``progress(bytes_done, total)`` follows the whole plan, whatever thread a transfer
    reports from: ``total`` is ``plan.total_bytes``, blobs already stored count at once,
    and the small files count once the zip is stored."""
    blobs = [planned for planned in plan.files if planned.as_blob]
    staging = _Staging(progress, plan.total_bytes)
    staged = iter(_stage_blobs(blobs, store, staging, uploads))
    entries: List[BundleFile] = []
    uploaded: List[PlannedFile] = []
    stored: List[PlannedFile] = []
    for planned in plan.files:
        if not planned.as_blob:
            entries.append(BundleFile(path=planned.path, sha256=planned.sha256, size=planned.size))
            continue
        uri, sent = next(staged)
        entries.append(BundleFile(path=planned.path, sha256=planned.sha256, size=planned.size, source="blob", uri=uri))
        (uploaded if sent else stored).append(planned)

    manifest = BundleManifest(
        run_id=plan.run_id,
        job_type=plan.job_type,  # type: ignore[arg-type]
        format=plan.format,
        script=plan.script,
        files=entries,
        metadata=plan.metadata,
        recordings=plan.recordings,
        sorting=plan.sorting,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    zip_path = scratch_dir / BUNDLE_FILENAME
    bundled = [planned for planned in plan.files if not planned.as_blob]
    with zipfile.ZipFile(zip_path, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        bundle.writestr(MANIFEST_NAME, manifest.model_dump_json(indent=2))
        for planned in bundled:
            bundle.write(planned.local_path, arcname=planned.path)
    bundle_bytes = zip_path.stat().st_size
    bundle_uri = store.upload_bundle(local_zip=zip_path, run_id=plan.run_id)
    os.unlink(zip_path)
    # The small files arrived with the zip; this last report also completes the bar
    # when every blob was already stored.
    staging.set_file(len(blobs), sum(planned.size for planned in bundled))
    return StagingSummary(
        bundle_uri=bundle_uri,
        uploaded_files=len(uploaded),
        uploaded_bytes=sum(planned.size for planned in uploaded),
        stored_files=len(stored),
        stored_bytes=sum(planned.size for planned in stored),
        bundled_files=len(bundled),
        bundle_bytes=bundle_bytes,
        uploaded_paths=tuple(planned.path for planned in uploaded),
        stored_paths=tuple(planned.path for planned in stored),
    )


def stage_bundle(
    plan: BundlePlan,
    store: ArtifactStore,
    scratch_dir: Path,
    progress: Optional[ProgressCallback] = None,
    uploads: int = PARALLEL_UPLOADS,
) -> str:
    """``stage_plan``, for callers that need only the bundle's URI."""
    return stage_plan(plan, store, scratch_dir, progress, uploads).bundle_uri
