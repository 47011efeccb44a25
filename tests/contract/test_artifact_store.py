"""ArtifactStore contract: every adapter (local, boto3, minio) behaves the same.

The S3 adapters run against the real MinIO of the test environment -- the binary and the
same binary in a container started by testcontainers through podman's Docker API -- and
the effects are checked through an independent client (see conftest.py).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import resource
import signal
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

from spikebatch.errors import (
    BucketNotFoundError,
    ConfigError,
    IntegrityError,
    InvalidURIError,
    ObjectNotFoundError,
    StorageAccessDeniedError,
    StorageUnavailableError,
    UnsafePathError,
)
from spikebatch.models import StoragePathTemplates
from spikebatch.ports.storage import ArtifactStore

MiB = 1024 * 1024
GiB = 1024 * MiB


def random_file(path: Path, size: int) -> Path:
    path.write_bytes(os.urandom(size))
    return path


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 * MiB), b""):
            digest.update(block)
    return digest.hexdigest()


def age(path: Path, seconds: float = 3600) -> Path:
    """Date the file back: the digest cache does not keep digests of files modified in
    the last 2 s (their mtime may not yet reveal a second write)."""
    past = time.time() - seconds
    os.utime(path, (past, past))
    return path


class Cancelled(Exception):
    """What a progress callback raises to stop a transfer."""


def cancel_after(limit: int, exc: type[BaseException] = Cancelled):
    def callback(done: int, total: int) -> None:
        if done >= limit:
            raise exc()
    return callback


# --- the MinIO the S3 cases run against ------------------------------------------------
# Every S3 case runs against the MinIO binary of the test cache (ids boto3, minio) and
# against the same binary in a container started by testcontainers through podman's
# Docker API (ids boto3-container, minio-container; tests/infra/container_services.py).
# The values are the adapter names conftest's fixtures know; the s3_service mark picks
# the server (minio_server below), so conftest's store_env / s3_env build the case.
def _on_container(adapter: str):
    return pytest.param(adapter, id=f"{adapter}-container",
                        marks=[pytest.mark.integration, pytest.mark.s3_service("container")])


_LOCAL_CASE = pytest.param("local", id="local")
_BINARY_S3_CASES = [pytest.param("boto3", id="boto3", marks=pytest.mark.integration),
                    pytest.param("minio", id="minio", marks=pytest.mark.integration)]
_S3_CASES = [*_BINARY_S3_CASES, _on_container("boto3"), _on_container("minio")]


@pytest.fixture(params=[_LOCAL_CASE, *_S3_CASES])
def store_env(store_env):
    """conftest's ``store_env`` (it receives the same param), over the cases above."""
    return store_env


@pytest.fixture(params=_S3_CASES)
def s3_env(s3_env):
    """conftest's ``s3_env`` (it receives the same param), over the cases above."""
    return s3_env


@pytest.fixture
def minio_server(request):
    """The session MinIO, or the container one for a case marked s3_service("container");
    conftest asks for ``minio_server`` (and ``s3_bucket`` makes its bucket on it)."""
    mark = request.node.get_closest_marker("s3_service")
    if mark is not None and mark.args == ("container",):
        return request.getfixturevalue("minio_container")
    return request.getfixturevalue("minio_server")  # the overridden one: infra.pytest_plugin's


def test_each_s3_case_runs_against_the_minio_it_names(s3_env, request) -> None:
    from infra.container_services import ContainerMinioServer

    in_container = request.node.get_closest_marker("s3_service") is not None
    assert isinstance(s3_env.server, ContainerMinioServer) == in_container
    assert s3_env.inspect.client.meta.endpoint_url == s3_env.server.endpoint_url


# --- layout and URIs -------------------------------------------------------------------
def test_adapters_implement_the_port(store_env) -> None:
    assert isinstance(store_env.store(), ArtifactStore)


def test_layout_follows_the_path_templates(store_env) -> None:
    store = store_env.store()
    p = store_env.prefix
    assert store.build_uri(run_id="r1", filename="bundle.zip") == p + "inputs/r1/bundle.zip"
    # outputs / logs templates carry no {filename}: the run's prefix, as the reference's
    assert store.build_uri(run_id="r1", filename="fig.png", category="outputs") == p + "outputs/r1/"
    assert store.build_uri(run_id="r1", filename="", category="logs") == p + "logs/r1/"
    assert store.output_prefix_for_run("r1") == p + "outputs/r1/"
    assert store.logs_prefix_for_run("r1") == p + "logs/r1/"
    assert store.build_uri(run_id="", filename="a" * 64, category="blobs") == p + "blobs/sha256/" + "a" * 64

    custom = store_env.store(path_templates=StoragePathTemplates(
        inputs="{prefix}runs/{run_id}/in/{filename}", outputs="{prefix}runs/{run_id}/out/",
        logs="{prefix}runs/{run_id}/log/", blobs="{prefix}cas/{filename}"))
    assert custom.output_prefix_for_run("r2") == p + "runs/r2/out/"
    assert custom.logs_prefix_for_run("r2") == p + "runs/r2/log/"
    bundle = random_file(store_env.tmp / "bundle.zip", 1000)
    uri = custom.upload_bundle(local_zip=bundle, run_id="r2")
    assert uri == p + "runs/r2/in/bundle.zip"
    assert store_env.inspect.keys(p) == [uri]


def test_unknown_category_is_a_clear_error(store_env) -> None:
    with pytest.raises(InvalidURIError, match=r"unknown storage category 'bogus'.*inputs, outputs, logs, blobs"):
        store_env.store().build_uri(run_id="r1", filename="x", category="bogus")


@pytest.mark.parametrize("unset", [None, ""])
def test_unset_prefix_is_a_clear_error(s3_env, unset) -> None:
    store = s3_env.store(prefix=unset)
    assert store.prefix is None
    for call in (lambda: store.build_uri(run_id="r1", filename="x"),
                 lambda: store.put_blob(random_file(s3_env.tmp / "f", 10)),
                 lambda: store.download_output(run_id="r1", filename="x", local_dir=s3_env.tmp)):
        with pytest.raises(InvalidURIError, match="storage prefix is not set.*; set default_s3_prefix"):
            call()
    # The run's prefixes are "" and it lists nothing (the reference's answers).
    assert store.output_prefix_for_run("r1") == store.logs_prefix_for_run("r1") == ""
    assert store.list_output_files("r1") == []
    # Full URIs still work without a prefix (the runner's case).
    assert store.write_bytes(s3_env.uri("x.txt"), b"x") == s3_env.uri("x.txt")


def test_local_store_defaults_to_the_user_data_folder(tmp_path, monkeypatch) -> None:
    from spikebatch.adapters.files.local_store import LocalFileStorage

    monkeypatch.setenv("SPIKEBATCH_DATA_DIR", str(tmp_path / "data"))
    store = LocalFileStorage()
    assert store.prefix == f"file://{tmp_path}/data/"
    uri = store.write_bytes(store.build_uri(run_id="r1", filename="m.json"), b"{}")
    assert (tmp_path / "data" / "inputs" / "r1" / "m.json").read_bytes() == b"{}"
    with pytest.raises(InvalidURIError, match="outside the storage root"):
        store.read_bytes(f"file://{tmp_path}/elsewhere.txt")
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "data" / "inputs" / "link").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symlink"):
        store.write_bytes(uri.replace("r1/m.json", "link/x"), b"x")
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize("bad", ["s3:/b/k", "s3://Bad_Bucket/k", "http://x/y", "file://host/x", "s3://bkt/a/../b"])
def test_malformed_uris_are_rejected_by_every_method(store_env, bad) -> None:
    store = store_env.store()
    src = random_file(store_env.tmp / "f", 10)
    calls = [lambda: store.exists(bad), lambda: store.read_bytes(bad), lambda: store.write_bytes(bad, b"x"),
             lambda: store.upload_file(local_path=src, s3_uri=bad),
             lambda: store.download_file(s3_uri=bad, local_path=store_env.tmp / "out"),
             lambda: store.list_outputs(bad)]
    for call in calls:
        with pytest.raises(InvalidURIError) as caught:
            call()
        assert bad in str(caught.value)
    assert not (store_env.tmp / "out").exists()


def test_uri_of_the_other_scheme_names_the_right_backend(store_env) -> None:
    other = "file:///tmp/x" if store_env.adapter != "local" else "s3://bucket/x"
    wanted = "s3://" if store_env.adapter != "local" else "file://"
    with pytest.raises(InvalidURIError, match=f"this store handles {wanted} URIs"):
        store_env.store().exists(other)


# --- transfers ---------------------------------------------------------------------
def test_round_trip_with_progress_and_sha256_metadata(store_env) -> None:
    store = store_env.store()
    src = random_file(store_env.tmp / "rec.bin", 20 * MiB + 123)
    size = src.stat().st_size
    up: list[tuple[int, int]] = []
    uri = store.upload_file(local_path=src, s3_uri=store_env.uri("inputs/r1/rec.bin"), progress=lambda d, t: up.append((d, t)))
    assert uri == store_env.uri("inputs/r1/rec.bin")
    assert store_env.inspect.sha256(uri) == sha256_of(src)
    down: list[tuple[int, int]] = []
    dest = store.download_file(s3_uri=uri, local_path=store_env.tmp / "back" / "rec.bin",
                               progress=lambda d, t: down.append((d, t)))
    assert isinstance(dest, str) and Path(dest).read_bytes() == src.read_bytes()
    for calls in (up, down):
        assert calls[-1] == (size, size)
        assert {t for _, t in calls} == {size}
        assert all(a[0] <= b[0] for a, b in zip(calls, calls[1:]))
    # An existing folder as local_path keeps the object's name.
    (store_env.tmp / "dir").mkdir()
    assert store.download_file(s3_uri=uri, local_path=store_env.tmp / "dir") == str(store_env.tmp / "dir" / "rec.bin")


def test_small_objects_and_missing_objects(store_env) -> None:
    store = store_env.store()
    uri = store_env.uri("logs/r1/runner.log")
    assert not store.exists(uri)
    assert store.write_bytes(uri, b"line 1\n") == uri
    assert store.exists(uri) and store.read_bytes(uri) == b"line 1\n"
    assert store_env.inspect.sha256(uri) == hashlib.sha256(b"line 1\n").hexdigest()
    empty = store_env.uri("logs/r1/empty.log")
    store.upload_file(local_path=random_file(store_env.tmp / "empty.log", 0), s3_uri=empty)
    assert store.read_bytes(empty) == b""
    assert Path(store.download_file(s3_uri=empty, local_path=store_env.tmp / "e" / "empty.log")).read_bytes() == b""
    missing = store_env.uri("logs/r1/nope.log")
    for call in (lambda: store.read_bytes(missing),
                 lambda: store.download_file(s3_uri=missing, local_path=store_env.tmp / "nope.log")):
        with pytest.raises(ObjectNotFoundError, match="nope.log"):
            call()
    assert not (store_env.tmp / "nope.log").exists()
    with pytest.raises(ObjectNotFoundError, match="does not exist"):
        store.upload_file(local_path=store_env.tmp / "absent.bin", s3_uri=uri)


def test_list_and_download_outputs(store_env) -> None:
    store = store_env.store()
    files = {"a.txt": b"alpha", "sub/b.bin": os.urandom(3 * MiB)}
    for rel, data in files.items():
        store.write_bytes(store.output_prefix_for_run("r1") + rel, data)
    store.write_bytes(store.output_prefix_for_run("r10") + "other.txt", b"x")
    prefix = store.output_prefix_for_run("r1")
    expected = [prefix + "a.txt", prefix + "sub/b.bin"]
    assert store.list_outputs(prefix) == expected
    assert store.list_outputs(prefix.rstrip("/")) == expected  # never matches r10
    seen: list[tuple[int, int]] = []
    paths = store.download_outputs(output_prefix=prefix, local_dir=store_env.tmp / "out",
                                   progress=lambda d, t: seen.append((d, t)))
    assert sorted(p.relative_to(store_env.tmp / "out").as_posix() for p in paths) == sorted(files)
    for rel, data in files.items():
        assert (store_env.tmp / "out" / rel).read_bytes() == data
    total = sum(len(d) for d in files.values())
    assert seen[-1] == (total, total)
    with pytest.raises(ObjectNotFoundError, match="no objects under .*outputs/r2/"):
        store.download_outputs(output_prefix=store.output_prefix_for_run("r2"), local_dir=store_env.tmp / "o2")


def test_run_addressed_outputs_as_the_reference_calls_them(store_env) -> None:
    store = store_env.store()
    prefix = store.output_prefix_for_run("r1")
    store.write_bytes(prefix + "a.txt", b"alpha")
    store.write_bytes(prefix + "sub/b.txt", b"beta")
    store.write_bytes(store.output_prefix_for_run("r10") + "other.txt", b"x")
    keys = store.list_output_files("r1")
    # object keys: no scheme, no bucket (for the local store: the file's path)
    assert [k.rsplit("outputs/", 1)[1] for k in keys] == ["r1/a.txt", "r1/sub/b.txt"]
    assert all(not k.startswith(("s3://", "file://")) and prefix.endswith(k.rsplit("r1/", 1)[0].lstrip("/") + "r1/")
               for k in keys)
    assert store.DEFAULT_LIST_OUTPUT_LIMIT == 10_000
    assert store.list_output_files("r1", max_keys=2) == keys
    with pytest.raises(ConfigError, match="more than max_keys=1 objects under .*outputs/r1/"):
        store.list_output_files("r1", max_keys=1)
    assert store.list_output_files("r2") == []

    got = store.download_output(run_id="r1", filename="sub/b.txt", local_dir=store_env.tmp / "dl")
    assert isinstance(got, str) and got == str((store_env.tmp / "dl" / "sub" / "b.txt").absolute())
    assert Path(got).read_bytes() == b"beta"
    for bad in ("../escape.txt", "/etc/passwd", "sub/../../x"):
        with pytest.raises(InvalidURIError, match="is refused"):
            store.download_output(run_id="r1", filename=bad, local_dir=store_env.tmp / "dl2")
    assert not (store_env.tmp / "dl2").exists()
    with pytest.raises(ObjectNotFoundError, match="missing.txt"):
        store.download_output(run_id="r1", filename="missing.txt", local_dir=store_env.tmp / "dl3")


def test_download_is_verified_against_the_recorded_sha256(store_env) -> None:
    store = store_env.store()
    uri = store_env.uri("outputs/r1/result.npy")
    store_env.inspect.put(uri, b"tampered bytes", sha256="0" * 64)
    with pytest.raises(IntegrityError, match="result.npy.*sha256"):
        store.download_file(s3_uri=uri, local_path=store_env.tmp / "result.npy")
    assert not (store_env.tmp / "result.npy").exists()
    with pytest.raises(IntegrityError):
        store.read_bytes(uri)


def test_download_can_demand_the_content_the_caller_expects(store_env) -> None:
    # The runner passes the bundle manifest's sha256 of each blob: other bytes under the
    # same key are refused while streaming, and nothing is left at the target.
    store = store_env.store()
    source = store_env.tmp / "rec.bin"
    source.write_bytes(b"recording bytes" * 1000)
    uri = store.upload_file(local_path=source, s3_uri=store_env.uri("outputs/r1/rec.bin"))
    right = hashlib.sha256(source.read_bytes()).hexdigest()
    assert Path(store.download_file(s3_uri=uri, local_path=store_env.tmp / "ok.bin", expected_sha256=right)).read_bytes() == source.read_bytes()
    with pytest.raises(IntegrityError, match=f"rec.bin has sha256 {right}, not the expected {'1' * 64}"):
        store.download_file(s3_uri=uri, local_path=store_env.tmp / "bad.bin", expected_sha256="1" * 64)
    assert not (store_env.tmp / "bad.bin").exists()


def test_read_only_download_of_a_blob_links_the_local_object_instead_of_copying(store_env) -> None:
    # What the runner asks for a recording: the file is only read. A remote store writes
    # a copy; the local store places its own object without writing its bytes again.
    store = store_env.store()
    src = random_file(store_env.tmp / "rec.raw", 4 * MiB)
    digest = sha256_of(src)
    uri = store.put_blob(src)
    work = store_env.tmp / "work" / "recordings"

    placed = store.download_file(s3_uri=uri, local_path=work / "rec.raw", expected_sha256=digest, read_only=True)

    assert placed == str(work / "rec.raw") and sha256_of(placed) == digest
    placed = Path(placed)
    if store_env.adapter == "local":
        stored = Path(uri.removeprefix("file://"))
        assert placed.is_symlink() or os.stat(placed).st_ino == os.stat(stored).st_ino  # not a copy
        assert stored.stat().st_mode & 0o222 == 0  # a blob never changes: nobody may write it
        assert sorted(os.listdir(work)) == ["rec.raw"]  # no temporary file left
    placed.unlink()  # what removing the job's work folder does
    assert sha256_of(store.download_file(s3_uri=uri, local_path=store_env.tmp / "again.raw")) == digest
    assert store.put_blob(src) == uri  # still recorded as those bytes: nothing to send again
    # other bytes than the caller expects are refused, and nothing is left at the target
    with pytest.raises(IntegrityError):
        store.download_file(s3_uri=uri, local_path=work / "bad.raw", expected_sha256="1" * 64, read_only=True)
    assert not (work / "bad.raw").exists() and sorted(os.listdir(work)) == []


@pytest.mark.parametrize("store_env", [_LOCAL_CASE], indirect=True)
def test_a_local_blob_written_through_a_link_is_refused_then_stored_again(store_env) -> None:
    # A process that ignores permissions (root) may still write through a link: the
    # object then no longer matches its record, every later read-only download refuses
    # it, and the next put_blob of those bytes stores them again.
    store = store_env.store()
    src = random_file(store_env.tmp / "rec.raw", 64 * 1024)
    digest = sha256_of(src)
    uri = store.put_blob(src)
    placed = Path(store.download_file(s3_uri=uri, local_path=store_env.tmp / "w" / "rec.raw",
                                      expected_sha256=digest, read_only=True))
    stored = Path(uri.removeprefix("file://"))
    os.chmod(stored, 0o644)
    with open(stored, "r+b") as handle:
        handle.write(b"scribbled")
    placed.unlink()

    with pytest.raises(IntegrityError, match="re-submit"):
        store.download_file(s3_uri=uri, local_path=store_env.tmp / "w" / "rec.raw", expected_sha256=digest,
                            read_only=True)
    assert store.put_blob(src) == uri
    assert sha256_of(stored) == digest
    again = store.download_file(s3_uri=uri, local_path=store_env.tmp / "w" / "rec.raw", expected_sha256=digest,
                                read_only=True)
    assert sha256_of(again) == digest and sha256_of(src) == digest  # the user's file was never touched


def test_download_is_atomic(store_env) -> None:
    store = store_env.store()
    uri = store.upload_file(local_path=random_file(store_env.tmp / "big.bin", 64 * MiB),
                            s3_uri=store_env.uri("outputs/r1/big.bin"))
    folder = store_env.tmp / "dl"
    folder.mkdir()
    (folder / "big.bin").write_bytes(b"previous version")
    for target in ("big.bin", "fresh.bin"):
        with pytest.raises(Cancelled):
            store.download_file(s3_uri=uri, local_path=folder / target, progress=cancel_after(16 * MiB))
    # The old file is intact, no truncated file appeared, no temporary file is left.
    assert (folder / "big.bin").read_bytes() == b"previous version"
    assert sorted(os.listdir(folder)) == ["big.bin"]


# The 1 GiB case measures the adapters' memory, not the server: it runs against the
# binary MinIO only (the container one would add ~35 s for nothing new).
@pytest.mark.large
@pytest.mark.parametrize("store_env", [_LOCAL_CASE, *_BINARY_S3_CASES], indirect=True)
def test_one_gib_round_trip_streams_in_flat_memory(store_env) -> None:
    store = store_env.store()
    src = store_env.tmp / "recording.dat"
    with open(src, "wb") as handle:  # sparse: fast to write, yet not uniform
        handle.truncate(GiB)
        for offset in range(0, GiB, 64 * MiB):
            handle.seek(offset)
            handle.write(os.urandom(MiB))
    digest = sha256_of(src)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    calls: list[tuple[int, int]] = []
    uri = store.put_blob(src, progress=lambda d, t: calls.append((d, t)))
    assert uri == store_env.uri(f"blobs/sha256/{digest}")
    assert calls[-1] == (GiB, GiB) and store_env.inspect.sha256(uri) == digest
    back = Path(store.download_file(s3_uri=uri, local_path=store_env.tmp / "back.dat"))
    try:
        assert back.stat().st_size == GiB and sha256_of(back) == digest
        growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - rss_before
        assert growth < 200 * MiB, f"peak memory grew by {growth / MiB:.0f} MiB for a 1 GiB transfer"
    finally:
        back.unlink()
        src.unlink()


# --- content-addressed blobs -----------------------------------------------------------
def test_put_blob_uploads_unchanged_bytes_only_once(store_env) -> None:
    store = store_env.store()
    src = age(random_file(store_env.tmp / "rec.bin", 12 * MiB))
    uri = store.put_blob(src)
    assert uri == store_env.uri("blobs/sha256/" + sha256_of(src))
    stamp = store_env.inspect.write_stamp(uri)
    again: list[tuple[int, int]] = []
    assert store.put_blob(src, progress=lambda d, t: again.append((d, t))) == uri
    assert again == [(12 * MiB, 12 * MiB)]  # the bar completes, nothing is sent
    copy = store_env.tmp / "copy-elsewhere.bin"
    copy.write_bytes(src.read_bytes())
    assert store_env.store().put_blob(copy) == uri  # same content, another path, new client
    assert store_env.inspect.write_stamp(uri) == stamp


def test_put_blob_repairs_an_object_without_a_recorded_digest(store_env) -> None:
    store = store_env.store()
    src = random_file(store_env.tmp / "rec.bin", 1000)
    uri = store_env.uri("blobs/sha256/" + sha256_of(src))
    store_env.inspect.put(uri, src.read_bytes())  # same bytes, but no sha256 metadata
    stamp = store_env.inspect.write_stamp(uri)
    assert store.put_blob(src) == uri
    assert store_env.inspect.write_stamp(uri) != stamp
    assert store_env.inspect.sha256(uri) == sha256_of(src)


_WATCHED: dict[str, int] = {}


def _count_opens(event: str, args: tuple) -> None:
    if event == "open" and _WATCHED and args and isinstance(args[0], (str, os.PathLike)):
        path = os.fspath(args[0])
        if path in _WATCHED:
            _WATCHED[path] += 1


sys.addaudithook(_count_opens)


def test_digest_cache_does_not_reread_an_unchanged_file(store_env) -> None:
    src = age(random_file(store_env.tmp / "rec.bin", 5 * MiB))
    real = os.path.realpath(src)
    _WATCHED[real] = 0
    try:
        store = store_env.store()
        assert store.blob_digest(src) == sha256_of(src)
        opened = _WATCHED[real]
        assert store.blob_digest(src) == sha256_of(src)
        assert store_env.store().blob_digest(src) == sha256_of(src)  # persisted across clients
        assert _WATCHED[real] == opened + 2  # only this test's own sha256_of() calls
        # Same size, new content and mtime: the cache notices.
        src.write_bytes(os.urandom(5 * MiB))
        age(src, 60)
        assert store.blob_digest(src) == sha256_of(src)
        assert store.digest_cache.files_hashed == 2
        # A file written just now is hashed every time (its mtime may hide a rewrite).
        fresh = random_file(store_env.tmp / "fresh.bin", 1000)
        store.blob_digest(fresh)
        store.blob_digest(fresh)
        assert store.digest_cache.files_hashed == 4
    finally:
        del _WATCHED[real]


def test_a_file_changed_during_upload_is_not_kept(store_env) -> None:
    store = store_env.store()
    src = age(random_file(store_env.tmp / "rec.bin", 4 * MiB))
    uri = store_env.uri("inputs/r1/rec.bin")
    with pytest.raises(IntegrityError, match="rec.bin changed while it was being stored"):
        store.upload_file(local_path=src, s3_uri=uri, progress=lambda d, t: os.utime(src, None))
    assert not store.exists(uri)


# --- interrupted uploads ---------------------------------------------------------------
@contextlib.contextmanager
def ctrl_c_raises(delivered: threading.Event):
    """SIGINT raises KeyboardInterrupt in the main thread, as in a terminal, even when
    this process inherited SIGINT ignored (a suite started in the background: the shell
    starts background jobs with SIGINT ignored, and Python then keeps it ignored) --
    and ``delivered`` is set the moment the main thread handles it."""
    def handler(signum, frame):
        delivered.set()
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@pytest.mark.parametrize("interrupt", [Cancelled, KeyboardInterrupt, "SIGINT"])
def test_interrupted_upload_leaves_no_parts_and_no_object(store_env, interrupt) -> None:
    """Stopped by the progress callback raising (in whatever thread the library calls
    it from), or by a real Ctrl-C: SIGINT delivered to the main thread.

    No step waits for a moment: the interrupt comes once the server holds two finished
    parts (a condition, checked on the server), and a callback running in a worker
    thread then waits until the main thread has handled the signal, so the upload
    cannot run on to its end before the interrupt is seen, however loaded the machine."""
    store = store_env.small_part_store()
    src = age(random_file(store_env.tmp / "rec.bin", 64 * MiB))
    uri = store_env.uri("inputs/r1/rec.bin")
    seen = {"parts": 0, "checked_at": 0, "signalled": False}
    delivered = threading.Event()

    def progress(done: int, total: int) -> None:
        # Stop once the server holds at least two finished parts (or half-way locally).
        if done - seen["checked_at"] >= 4 * MiB:
            seen["checked_at"] = done
            seen["parts"] = max(seen["parts"], store_env.inspect.parts_uploaded(uri))
        if (store_env.adapter == "local" and done >= total // 2) or seen["parts"] >= 2:
            if interrupt != "SIGINT":
                raise interrupt()
            if not seen["signalled"]:
                seen["signalled"] = True
                # From the main thread itself this raises at once (pthread_kill runs the
                # handler before it returns); from a worker, wait for the main thread.
                signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
                assert delivered.wait(timeout=120), "the main thread never handled SIGINT"

    with ctrl_c_raises(delivered), pytest.raises(KeyboardInterrupt if interrupt == "SIGINT" else interrupt):
        store.upload_file(local_path=src, s3_uri=uri, progress=progress)
    assert store_env.adapter == "local" or seen["parts"] >= 2
    assert interrupt != "SIGINT" or delivered.is_set()
    assert store_env.inspect.incomplete_uploads(uri) == []
    assert not store.exists(uri) and store_env.inspect.keys(store_env.prefix) == []


# --- errors --------------------------------------------------------------------------
def _every_call(store, env) -> list:
    src = random_file(env.tmp / "f.bin", 100)
    uri = env.uri("inputs/r1/f.bin")
    return [lambda: store.exists(uri), lambda: store.read_bytes(uri), lambda: store.write_bytes(uri, b"x"),
            lambda: store.upload_file(local_path=src, s3_uri=uri), lambda: store.put_blob(src),
            lambda: store.download_file(s3_uri=uri, local_path=env.tmp / "dl.bin"),
            lambda: store.list_outputs(env.uri("outputs/r1/"))]


def test_wrong_credentials_are_access_denied_without_leaking_the_secret(s3_env, caplog) -> None:
    secret = "sbWRONGsecret-" + os.urandom(6).hex()
    store = s3_env.store(aws_secret_access_key=secret)
    caplog.set_level("DEBUG", logger="spikebatch")
    started = time.monotonic()
    for call in _every_call(store, s3_env):
        with pytest.raises(StorageAccessDeniedError, match="denied.*check the access key") as caught:
            call()
        assert secret not in str(caught.value) and secret not in repr(caught.value)
    assert time.monotonic() - started < 10, "403 must not be retried"
    assert secret not in repr(store) and secret not in caplog.text
    assert s3_env.server.secret_key not in repr(s3_env.store())
    assert not (s3_env.tmp / "dl.bin").exists()


def test_missing_credentials_say_how_to_provide_them(s3_env, monkeypatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "MINIO_ACCESS_KEY", "MINIO_SECRET_KEY", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(s3_env.tmp / "absent-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(s3_env.tmp / "absent-config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # never ask 169.254.169.254
    store = s3_env.store(aws_access_key_id=None, aws_secret_access_key=None)
    with pytest.raises(StorageAccessDeniedError, match="no usable S3 credentials .*set AWS_ACCESS_KEY_ID"):
        store.exists(s3_env.uri("inputs/r1/f.bin"))


def test_missing_bucket(s3_env) -> None:
    store = s3_env.store(prefix="s3://sb-no-such-bucket-4d2f/spikebatch/")
    s3_env.prefix = store.prefix
    for call in _every_call(store, s3_env):
        with pytest.raises(BucketNotFoundError, match="bucket 'sb-no-such-bucket-4d2f' .*does not exist.*create it"):
            call()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_unreachable_endpoint_fails_fast(s3_env) -> None:
    endpoint = f"http://127.0.0.1:{_closed_port()}"
    store = s3_env.store(endpoint_url=endpoint)
    for call in _every_call(store, s3_env)[:4]:
        started = time.monotonic()
        with pytest.raises(StorageUnavailableError, match=f"cannot reach the storage endpoint {endpoint}"):
            call()
        assert time.monotonic() - started < 10


def _client_for(adapter: str, endpoint: str):
    from spikebatch.adapters.s3.boto3_store import S3StorageClient
    from spikebatch.adapters.s3.minio_store import MinioStorageClient

    cls = S3StorageClient if adapter == "boto3" else MinioStorageClient
    return cls(endpoint_url=endpoint, region_name="us-east-1",
               aws_access_key_id="AKIDEXAMPLE", aws_secret_access_key="not-a-real-secret")


@pytest.mark.parametrize("adapter", ["boto3", "minio"])
@pytest.mark.parametrize(("script", "error", "requests"), [
    ([(503, "SlowDown"), (500, "InternalError"), (403, "AccessDenied")], StorageAccessDeniedError, 3),
    ([(403, "AccessDenied")], StorageAccessDeniedError, 1),
    ([(404, "NoSuchKey")], ObjectNotFoundError, 1),
    ([(503, "SlowDown")], StorageUnavailableError, 3),
])
def test_only_transient_errors_are_retried(adapter, script, error, requests, fake_s3) -> None:
    endpoint, handler = fake_s3("scripted", script=script)
    with pytest.raises(error):
        _client_for(adapter, endpoint).read_bytes("s3://bucket/key.bin")
    assert handler.requests == requests


@pytest.mark.parametrize("adapter", ["boto3", "minio"])
def test_a_dropped_download_resumes_where_it_broke_off(adapter, tmp_path, fake_s3) -> None:
    data = os.urandom(3 * MiB)
    endpoint, handler = fake_s3("dropping", data=data, ranges=[])
    seen: list[tuple[int, int]] = []
    out = _client_for(adapter, endpoint).download_file(
        s3_uri="s3://bucket/rec.bin", local_path=tmp_path / "rec.bin", progress=lambda d, t: seen.append((d, t)))
    assert Path(out).read_bytes() == data
    # The second GET asks only for what was not yet written (whole chunks kept).
    assert len(handler.ranges) == 2 and handler.ranges[0] is None
    resumed_at = int(handler.ranges[1].removeprefix("bytes=").rstrip("-"))
    assert 0 < resumed_at <= len(data) // 2
    assert seen[-1] == (len(data), len(data))


# --- path traversal ------------------------------------------------------------------
def test_traversal_in_names_is_refused_before_anything_is_written(store_env) -> None:
    store = store_env.store()
    src = random_file(store_env.tmp / "f.bin", 10)
    for call in (lambda: store.build_uri(run_id="r1", filename="../../escape"),
                 lambda: store.build_uri(run_id="../r1", filename="x"),
                 lambda: store.build_uri(run_id="r1", filename="/etc/passwd"),
                 lambda: store.upload_file(local_path=src, s3_uri=store_env.uri("inputs/../../x"))):
        with pytest.raises(InvalidURIError):
            call()
    assert store_env.inspect.keys(store_env.prefix) == []


def test_download_output_refuses_keys_leaving_the_target_folder(store_env) -> None:
    store = store_env.store()
    prefix = store.output_prefix_for_run("r1")
    store.write_bytes(prefix + "a.txt", b"fine")
    store.write_bytes(prefix + "link/evil.txt", b"evil")
    outside = store_env.tmp / "outside"
    outside.mkdir()
    target = store_env.tmp / "target"
    target.mkdir()
    (target / "link").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symlink"):
        store.download_outputs(output_prefix=prefix, local_dir=target)
    # A backslash key (a traversal on Windows) is refused too.
    store_env.inspect.put(prefix + "sub\\evil.txt", b"evil")
    with pytest.raises(UnsafePathError, match="backslash"):
        store.download_outputs(output_prefix=prefix, local_dir=store_env.tmp / "target2")
    # Every key is checked first: not even the safe file was written.
    assert os.listdir(outside) == [] and os.listdir(target) == ["link"]
    assert not (store_env.tmp / "target2").exists()
