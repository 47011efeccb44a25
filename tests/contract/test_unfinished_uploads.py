"""ArtifactStore contract, uploads that never finished (issue 15, item 2): every adapter
(local, boto3, minio -- the S3 ones against the real MinIO).

A process killed mid-upload (SIGKILL, a lost machine) leaves a multipart upload on an S3
server -- invisible to object listings, its parts kept (and billed) until aborted -- or a
partial file in the local store. The next successful upload of that object aborts them;
``list_incomplete_uploads`` / ``abort_incomplete_upload`` find and remove the rest.

What is stored is checked without the adapter under test: plain boto3 multipart calls on
the bucket, or the local store's folder (see ``Unfinished``).
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from spikebatch.errors import InvalidURIError

MiB = 1024 * 1024
#: A condition that has not come true by then never will (the machine is stuck).
DEADLINE = 120


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    past = time.time() - 3600  # older than the digest cache's racy window
    os.utime(path, (past, past))
    return path


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


class Unfinished:
    """Plants and finds unfinished uploads behind the adapter's back: a multipart upload
    created and given parts but never completed (exactly what a SIGKILLed upload
    leaves), or a local partial file ``.<name>.<8 hex>.spikebatch-part``."""

    def __init__(self, env) -> None:
        self.env = env
        self.local = env.adapter == "local"

    def _key(self, uri: str) -> str:
        return uri.split("/", 3)[3]

    def start(self, uri: str, sizes=(MiB,), age_seconds: float = 0) -> str:
        """Begin an upload of ``uri`` holding parts of ``sizes``; its id. (An S3 start
        time cannot be set: ``age_seconds`` dates back local partial files only.)"""
        if self.local:
            path = Path(uri.removeprefix("file://"))
            path.parent.mkdir(parents=True, exist_ok=True)
            partial = path.parent / f".{path.name}.{secrets.token_hex(4)}.spikebatch-part"
            partial.write_bytes(os.urandom(sum(sizes)))
            past = time.time() - age_seconds
            os.utime(partial, (past, past))
            return partial.name
        client, bucket = self.env.inspect.client, self.env.inspect.bucket
        upload_id = client.create_multipart_upload(Bucket=bucket, Key=self._key(uri))["UploadId"]
        for number, size in enumerate(sizes, start=1):
            client.upload_part(Bucket=bucket, Key=self._key(uri), UploadId=upload_id, PartNumber=number,
                               Body=os.urandom(size))
        return upload_id

    def of(self, uri: str) -> list[str]:
        """Ids of the unfinished uploads of exactly the object ``uri``."""
        if self.local:
            path = Path(uri.removeprefix("file://"))
            if not path.parent.is_dir():
                return []
            return sorted(p.name for p in path.parent.iterdir()
                          if p.name.startswith(f".{path.name}.") and p.name.endswith(".spikebatch-part"))
        listing = self.env.inspect.client.list_multipart_uploads(Bucket=self.env.inspect.bucket, Prefix=self._key(uri))
        return sorted(u["UploadId"] for u in listing.get("Uploads", []) if u["Key"] == self._key(uri))

    def stored_bytes(self, uri: str) -> int:
        """Bytes the unfinished uploads of ``uri`` hold."""
        if self.local:
            path = Path(uri.removeprefix("file://"))
            return sum((path.parent / name).stat().st_size for name in self.of(uri))
        client, bucket = self.env.inspect.client, self.env.inspect.bucket
        return sum(part["Size"] for upload in self.of(uri)
                   for part in client.list_parts(Bucket=bucket, Key=self._key(uri), UploadId=upload).get("Parts", []))


@pytest.fixture
def unfinished(store_env) -> Unfinished:
    return Unfinished(store_env)


# --- what a killed upload leaves, the next upload removes ------------------------------
_KILLED_UPLOAD = r"""
import json, sys, threading
from pathlib import Path

spec = json.loads(sys.argv[1])
adapter = spec.pop("adapter")
src, uri, marker = spec.pop("src"), spec.pop("uri"), Path(spec.pop("marker"))
if adapter == "local":
    from spikebatch.adapters.files.local_store import LocalFileStorage as Store
elif adapter == "boto3":
    from boto3.s3.transfer import TransferConfig
    from spikebatch.adapters.s3.boto3_store import S3StorageClient as Store
    spec["transfer_config"] = TransferConfig(multipart_threshold=8 << 20, multipart_chunksize=8 << 20,
                                             max_concurrency=2)
else:
    from spikebatch.adapters.s3.minio_store import MinioStorageClient as Store
    spec.update(part_size=8 << 20, parallel_uploads=2)


def progress(done, total):
    if done >= total // 2:
        marker.touch()
        threading.Event().wait()  # the upload stops here until the process is killed


Store(**spec).upload_file(local_path=src, s3_uri=uri, progress=progress)
"""


def _killed_upload(env, src: Path, uri: str, unfinished: Unfinished) -> None:
    """Upload ``src`` to ``uri`` in another process with the adapter under test, and
    SIGKILL it half-way, once the store holds some of what it sent."""
    marker = env.tmp / "half-way"
    spec = {"adapter": env.adapter, "src": str(src), "uri": uri, "marker": str(marker), "prefix": env.prefix}
    if env.adapter == "local":
        spec["root"] = str(env.tmp / "store")
    else:
        server = env.server
        spec.update(endpoint_url=server.endpoint_url, region_name=server.region,
                    aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)
    proc = subprocess.Popen([sys.executable, "-c", _KILLED_UPLOAD, json.dumps(spec)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + DEADLINE
        while not (marker.exists() and unfinished.stored_bytes(uri) > 0):
            if proc.poll() is not None:
                pytest.fail(f"the upload process ended ({proc.returncode}) before it was killed: {proc.stderr.read()}")
            assert time.monotonic() < deadline, "the upload never reached half-way"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.communicate()


def test_the_next_upload_of_an_object_aborts_what_a_killed_upload_of_it_left(store_env, unfinished) -> None:
    store = store_env.store()
    src = random_file(store_env.tmp / "rec.bin", 64 * MiB)
    uri = store_env.uri("inputs/r1/rec.bin")
    _killed_upload(store_env, src, uri, unfinished)
    left = unfinished.of(uri)
    assert len(left) == 1 and unfinished.stored_bytes(uri) >= 8 * MiB, "the killed upload left nothing to clean"
    assert not store.exists(uri)

    assert store.upload_file(local_path=src, s3_uri=uri) == uri
    assert unfinished.of(uri) == []
    assert store_env.inspect.sha256(uri) == sha256_of(src)
    assert store.list_incomplete_uploads(store_env.prefix) == []


def test_put_blob_aborts_the_unfinished_uploads_of_its_blob_and_no_other(store_env, unfinished) -> None:
    store = store_env.store()
    src = random_file(store_env.tmp / "rec.bin", 6 * MiB)  # one PUT for both SDKs
    blob = store_env.uri("blobs/sha256/" + sha256_of(src))
    other = store_env.uri("blobs/sha256/" + "0" * 64)
    for _ in range(2):
        unfinished.start(blob, sizes=(5 * MiB, MiB))
    kept = unfinished.start(other)

    assert store.put_blob(src) == blob
    assert unfinished.of(blob) == []
    assert unfinished.of(other) == [kept]
    # Also when the blob is already there and nothing is sent (a process killed while
    # it uploaded the same bytes as one that finished).
    unfinished.start(blob)
    stamp = store_env.inspect.write_stamp(blob)
    assert store.put_blob(src) == blob
    assert store_env.inspect.write_stamp(blob) == stamp
    assert unfinished.of(blob) == []


def test_an_upload_ended_by_a_concurrent_upload_of_the_same_bytes_succeeds(store_env, unfinished) -> None:
    """Two submissions of one recording: the one that finishes first aborts the other's
    upload, which then finds its bytes stored and succeeds."""
    store = store_env.small_part_store()
    src = random_file(store_env.tmp / "rec.bin", 64 * MiB)
    digest = sha256_of(src)
    uri = store_env.uri("blobs/sha256/" + digest)
    seen = {"done": False}

    def the_other_submission_finishes(done: int, total: int) -> None:
        if not seen["done"] and done >= total // 2 and unfinished.stored_bytes(uri) > 0:
            seen["done"] = True
            store_env.inspect.put(uri, src.read_bytes(), sha256=digest)
            for upload_id in unfinished.of(uri):
                if store_env.adapter == "local":
                    (Path(uri.removeprefix("file://")).parent / upload_id).unlink()
                else:
                    store_env.inspect.client.abort_multipart_upload(
                        Bucket=store_env.inspect.bucket, Key=uri.split("/", 3)[3], UploadId=upload_id)

    assert store.upload_file(local_path=src, s3_uri=uri, progress=the_other_submission_finishes) == uri
    assert seen["done"], "the upload ended before the other one could finish"
    assert store_env.inspect.sha256(uri) == digest
    assert unfinished.of(uri) == []


# --- list_incomplete_uploads / abort_incomplete_upload ---------------------------------
def test_unfinished_uploads_under_a_prefix_are_listed_with_their_size_and_aborted(store_env, unfinished) -> None:
    store = store_env.store()
    blob, bundle = store_env.uri("blobs/sha256/" + "a" * 64), store_env.uri("inputs/r1/bundle.zip")
    blob_id = unfinished.start(blob, sizes=(5 * MiB, 1000))
    bundle_id = unfinished.start(bundle, sizes=(2000,))
    if store_env.adapter == "local":
        outside = store_env.tmp / "elsewhere" / "x.bin"
        outside_uri = "file://" + str(outside)
    else:
        outside_uri = f"s3://{store_env.inspect.bucket}/not-spikebatch/x.bin"
    outside_id = unfinished.start(outside_uri)
    before = datetime.now(timezone.utc)

    found = store.list_incomplete_uploads(store_env.prefix)
    assert [(u.uri, u.upload_id, u.size) for u in found] == [(blob, blob_id, 5 * MiB + 1000),
                                                             (bundle, bundle_id, 2000)]
    for upload in found:
        assert upload.initiated.tzinfo is not None and upload.initiated.utcoffset() == timedelta(0)
        assert abs(upload.initiated - before) < timedelta(minutes=10), "start time off (time zone?)"
    # A narrower prefix (MinIO answers only a whole object name or no prefix at all).
    assert [u.uri for u in store.list_incomplete_uploads(store_env.uri("inputs/"))] == [bundle]
    assert store.list_incomplete_uploads(store_env.uri("outputs/")) == []

    assert store.abort_incomplete_upload(found[0]) is True
    assert unfinished.of(blob) == [] and unfinished.of(bundle) == [bundle_id]
    assert store.abort_incomplete_upload(found[0]) is False  # already gone
    assert [u.upload_id for u in store.list_incomplete_uploads(store_env.prefix)] == [bundle_id]
    assert unfinished.of(outside_uri) == [outside_id]
    # No object was made by any of it (a local partial file is not an object).
    assert [k for k in store_env.inspect.keys(store_env.prefix) if not k.endswith(".spikebatch-part")] == []


def test_listing_an_empty_or_missing_prefix_finds_nothing(store_env) -> None:
    assert store_env.store().list_incomplete_uploads(store_env.uri("nothing/here/")) == []
    assert store_env.store().list_incomplete_uploads(store_env.prefix) == []


def test_local_partial_files_of_sidecars_count_and_nothing_else_can_be_removed(tmp_path, monkeypatch) -> None:
    from spikebatch.adapters.files.local_store import META_DIR, LocalFileStorage
    from spikebatch.ports.storage import IncompleteUpload

    monkeypatch.setenv("SPIKEBATCH_CACHE_DIR", str(tmp_path / "cache"))
    root = tmp_path / "store"
    store = LocalFileStorage(root=root)
    kept = store.write_bytes(store.build_uri(run_id="r1", filename="m.json"), b"{}")
    sidecar_partial = root / META_DIR / "inputs" / "r1" / ".m.json.json.0123abcd.spikebatch-part"
    sidecar_partial.write_text("{")
    found = store.list_incomplete_uploads(store.prefix)
    assert [(u.uri, u.upload_id, u.size) for u in found] == [
        (f"file://{root}/{META_DIR}/inputs/r1/m.json.json", sidecar_partial.name, 1)]

    # Only a partial file of the named object, inside the root, is ever removed.
    other = root / "inputs" / "r1" / ".n.json.0123abcd.spikebatch-part"
    other.write_text("x")
    when = datetime.now(timezone.utc)
    for uri, upload_id in [(kept, "m.json"), (kept, ".n.json.0123abcd.spikebatch-part"),
                           (kept, "../../" + sidecar_partial.name),
                           (f"file://{tmp_path}/x", ".x.0123abcd.spikebatch-part")]:
        with pytest.raises(InvalidURIError):
            store.abort_incomplete_upload(IncompleteUpload(uri=uri, upload_id=upload_id, initiated=when))
    assert store.read_bytes(kept) == b"{}" and other.exists() and sidecar_partial.exists()
    assert store.abort_incomplete_upload(found[0]) is True and not sidecar_partial.exists()
