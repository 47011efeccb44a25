"""Fixtures of the ArtifactStore contract suite (test_artifact_store.py).

``store_env`` runs a test once per adapter (local, boto3, minio); ``s3_env`` only for
the two S3 adapters (credentials, buckets, endpoints). Both give a StoreEnv: a factory
for the adapter under test plus an Inspector that looks at what was stored *without*
going through that adapter -- plain boto3 straight at MinIO, or the filesystem -- so a
test checks the effect a user would see, not the adapter's own account of it.

S3 buckets are versioned: every write of an object adds a version, so "nothing was
uploaded" is checked by the object's version list staying the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Optional

import pytest

from spikebatch.adapters.files.local_store import META_DIR, LocalFileStorage
from spikebatch.domain.storage_uri import file_uri

MiB = 1024 * 1024

_LOCAL = pytest.param("local", id="local")
_BOTO3 = pytest.param("boto3", id="boto3", marks=pytest.mark.integration)
_MINIO = pytest.param("minio", id="minio", marks=pytest.mark.integration)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "large: moves >= 1 GiB per adapter (about a minute); part of every full run, "
        "deselect locally with -m 'not large'",
    )


class S3Inspector:
    """Looks at a bucket with a plain boto3 client."""

    def __init__(self, client: Any, bucket: str) -> None:
        self.client = client
        self.bucket = bucket

    def _key(self, uri: str) -> str:
        # Split by hand, not with parse_uri: tests plant keys the strict parser refuses.
        bucket, _, key = uri.removeprefix("s3://").partition("/")
        assert bucket == self.bucket, uri
        return key

    def keys(self, under: str) -> list[str]:
        key = self._key(under)
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=key)
        return sorted(f"s3://{self.bucket}/{o['Key']}" for p in pages for o in p.get("Contents", []))

    def sha256(self, uri: str) -> Optional[str]:
        return self.client.head_object(Bucket=self.bucket, Key=self._key(uri))["Metadata"].get("sha256")

    def write_stamp(self, uri: str) -> tuple:
        key = self._key(uri)
        listing = self.client.list_object_versions(Bucket=self.bucket, Prefix=key)
        return tuple(v["VersionId"] for v in listing.get("Versions", []) if v["Key"] == key)

    def incomplete_uploads(self, uri: str) -> list[str]:
        # MinIO lists multipart uploads only for an exact object name given as prefix.
        key = self._key(uri)
        listing = self.client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
        return [u["UploadId"] for u in listing.get("Uploads", []) if u["Key"] == key]

    def parts_uploaded(self, uri: str) -> int:
        key = self._key(uri)
        return sum(len(self.client.list_parts(Bucket=self.bucket, Key=key, UploadId=upload).get("Parts", []))
                   for upload in self.incomplete_uploads(uri))

    def put(self, uri: str, data: bytes, sha256: Optional[str] = None) -> None:
        extra = {"Metadata": {"sha256": sha256}} if sha256 else {}
        self.client.put_object(Bucket=self.bucket, Key=self._key(uri), Body=data, **extra)


class LocalInspector:
    """Looks at the local store's folder (and its sidecar tree) directly."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, uri: str) -> Path:
        assert uri.startswith("file:///"), uri
        return Path(uri.removeprefix("file://"))

    def _meta(self, uri: str) -> Path:
        rel = self._path(uri).relative_to(self.root)
        return self.root / META_DIR / rel.parent / f"{rel.name}.json"

    def keys(self, under: str) -> list[str]:
        base = self._path(under)
        found = []
        for folder, dirs, files in os.walk(base):
            dirs[:] = [d for d in dirs if not (Path(folder) == self.root and d == META_DIR)]
            found += [file_uri(os.path.join(folder, f)) for f in files]
        return sorted(found)

    def sha256(self, uri: str) -> Optional[str]:
        return json.loads(self._meta(uri).read_text()).get("sha256")

    def write_stamp(self, uri: str) -> tuple:
        st = self._path(uri).stat()
        # Every write replaces the file (new inode) and sets a new mtime.
        return (st.st_ino, st.st_mtime_ns)

    def incomplete_uploads(self, uri: str) -> list[str]:
        return sorted(str(p) for p in self.root.rglob("*.spikebatch-part"))

    def parts_uploaded(self, uri: str) -> int:
        return 0

    def put(self, uri: str, data: bytes, sha256: Optional[str] = None) -> None:
        path = self._path(uri)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        if sha256:
            st = path.stat()
            meta = self._meta(uri)
            meta.parent.mkdir(parents=True, exist_ok=True)
            meta.write_text(json.dumps({"sha256": sha256, "size": st.st_size, "mtime_ns": st.st_mtime_ns}))


class ScriptedS3(BaseHTTPRequestHandler):
    """Answers each request with the next (status, code) of ``script``; counts requests."""

    script: list[tuple[int, str]] = []
    requests = 0

    def _answer(self) -> None:
        type(self).requests += 1
        status, code = self.script[min(type(self).requests, len(self.script)) - 1]
        body = f"<?xml version='1.0'?><Error><Code>{code}</Code><Message>m</Message></Error>".encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    do_GET = do_HEAD = do_PUT = _answer

    def log_message(self, *args) -> None:
        pass


class DroppingS3(BaseHTTPRequestHandler):
    """Serves one object whose first GET breaks off half-way; records the Range headers."""

    data = b""
    ranges: list = []

    def _headers(self, status: int, length: int, extra: dict) -> None:
        self.send_response(status)
        for name, value in {"Content-Length": str(length), "ETag": '"e"', "Content-Type": "application/octet-stream",
                            "Last-Modified": "Thu, 26 Nov 2026 12:00:00 GMT",
                            "x-amz-meta-sha256": hashlib.sha256(self.data).hexdigest(), **extra}.items():
            self.send_header(name, value)
        self.end_headers()

    def do_HEAD(self) -> None:
        self._headers(200, len(self.data), {})

    def do_GET(self) -> None:
        wanted = self.headers.get("Range")
        self.ranges.append(wanted)
        if wanted is None:
            self._headers(200, len(self.data), {})
            self.wfile.write(self.data[: len(self.data) // 2])
            self.wfile.flush()
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        start = int(wanted.removeprefix("bytes=").rstrip("-"))
        self._headers(206, len(self.data) - start,
                      {"Content-Range": f"bytes {start}-{len(self.data) - 1}/{len(self.data)}"})
        self.wfile.write(self.data[start:])

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def fake_s3():
    """Start an S3 look-alike on 127.0.0.1 -- ``fake_s3("scripted", script=[...])`` or
    ``fake_s3("dropping", data=b"...", ranges=[])`` -- and get (endpoint URL, the
    handler class holding those attributes and its counters)."""
    servers: list[ThreadingHTTPServer] = []
    kinds = {"scripted": ScriptedS3, "dropping": DroppingS3}

    def start(kind: str, **attrs: Any) -> tuple[str, type]:
        handler = type("Handler", (kinds[kind],), {"requests": 0, **attrs})
        server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}", handler

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@dataclass
class StoreEnv:
    adapter: str
    prefix: str
    inspect: Any
    tmp: Path
    build: Callable[..., Any]
    small_parts: dict = field(default_factory=dict)
    server: Any = None

    def store(self, **overrides: Any) -> Any:
        return self.build(**overrides)

    def small_part_store(self) -> Any:
        """8 MiB parts, two at a time: a 64 MiB upload is 8 parts sent in turn."""
        return self.build(**self.small_parts)

    def uri(self, relative: str) -> str:
        return self.prefix + relative


def _make_env(request: pytest.FixtureRequest, adapter: str, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> StoreEnv:
    # Each test gets its own digest cache and data folder: no state leaks between tests.
    monkeypatch.setenv("SPIKEBATCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("SPIKEBATCH_DATA_DIR", str(tmp_path / "data"))
    if adapter == "local":
        root = tmp_path / "store"
        prefix = file_uri(str(root), folder=True)

        def build_local(**kw: Any) -> LocalFileStorage:
            return LocalFileStorage(**{"prefix": prefix, "root": root, **kw})

        return StoreEnv("local", prefix, LocalInspector(root), tmp_path, build_local)

    from boto3.s3.transfer import TransferConfig

    from spikebatch.adapters.s3.boto3_store import S3StorageClient
    from spikebatch.adapters.s3.minio_store import MinioStorageClient

    server = request.getfixturevalue("minio_server")
    bucket = request.getfixturevalue("s3_bucket")
    client = server.boto3_client()
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    prefix = f"s3://{bucket}/spikebatch/"
    cls = S3StorageClient if adapter == "boto3" else MinioStorageClient
    connection = dict(prefix=prefix, endpoint_url=server.endpoint_url, region_name=server.region,
                      aws_access_key_id=server.access_key, aws_secret_access_key=server.secret_key)

    def build_s3(**kw: Any) -> Any:
        return cls(**{**connection, **kw})

    if adapter == "boto3":
        small = {"transfer_config": TransferConfig(multipart_threshold=8 * MiB,
                                                   multipart_chunksize=8 * MiB, max_concurrency=2)}
    else:
        small = {"part_size": 8 * MiB, "parallel_uploads": 2}
    return StoreEnv(adapter, prefix, S3Inspector(client, bucket), tmp_path, build_s3, small, server)


@pytest.fixture(params=[_LOCAL, _BOTO3, _MINIO])
def store_env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StoreEnv:
    return _make_env(request, request.param, tmp_path, monkeypatch)


@pytest.fixture(params=[_BOTO3, _MINIO])
def s3_env(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StoreEnv:
    return _make_env(request, request.param, tmp_path, monkeypatch)
