"""MinioStorageClient: the ArtifactStore through the MinIO Python SDK.

The same behaviour as the boto3 adapter (it inherits every port method from
BaseArtifactStore); only the primitives talk to the ``minio`` SDK.

* ``endpoint_url`` ``http(s)://host:port`` becomes minio's ``host:port`` + ``secure``.
* Uploads use ``fput_object`` with 16 MiB parts, 3 sent in parallel (fewer requests
  than the SDK's default 5 MiB parts for files under 48 GiB). The SDK holds each part
  in memory while it is sent, so memory is bounded by part size x (parallel uploads
  + 1) = 64 MiB per file on top of the interpreter, whatever the file size (staging
  sends up to PARALLEL_UPLOADS files at once: 256 MiB).
* The SDK aborts a failed multipart upload only on ``Exception``. To also clean up on
  Ctrl-C, the upload runs in a worker thread: an interrupt in the caller's thread sets
  a flag, the worker's next progress report raises, the SDK aborts the upload, and the
  interrupt is re-raised once the worker has finished.
* Unfinished multipart uploads are listed and aborted with the SDK's own calls of those
  S3 APIs (``_list_multipart_uploads``, ``_list_parts``, ``_abort_multipart_upload``:
  the SDK has no public ones since 7.0).
* Retries: a urllib3 Retry that retries connection errors, read errors and the
  transient statuses (429/5xx) with exponential backoff, never 403 / 404.
* Credentials: explicit keys, else the AWS / MinIO environment variables, else
  ``~/.aws/credentials``. (Instance-metadata credentials are left to the boto3 adapter.)
"""

from __future__ import annotations

import contextlib
import io
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional
from urllib.parse import urlsplit

import urllib3
from minio import Minio
from minio.credentials import AWSConfigProvider, ChainedProvider, EnvAWSProvider, EnvMinioProvider
from minio.error import InvalidResponseError, MinioException, S3Error, ServerError

from ...domain.errors import InvalidURIError, StorageError
from ...domain.storage_uri import StorageURI
from ...ports.storage import PARALLEL_UPLOADS, IncompleteUpload
from ..files.digests import DigestCache
from ..storage.base_store import STREAM_CHUNK, BaseArtifactStore, ObjectInfo
from ..storage.progress import Progress, TransferCancelled
from ..storage.retry import TRANSIENT_STATUS, RetryPolicy
from .errors import no_credentials, public_endpoint, s3_error, unreachable
from .object_metadata import SHA256_META

MiB = 1024 * 1024
_META_HEADER = "x-amz-meta-" + SHA256_META


def _endpoint_parts(endpoint_url: Optional[str]) -> tuple[str, bool]:
    """(host[:port], secure) for the minio SDK from an ``http(s)://host:port`` URL."""
    if not endpoint_url:
        return "s3.amazonaws.com", True
    parts = urlsplit(endpoint_url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidURIError(
            f"endpoint_url {public_endpoint(endpoint_url)!r} must look like "
            "http(s)://host[:port]"
        )
    if parts.path not in ("", "/") or parts.query or parts.username:
        raise InvalidURIError(
            f"endpoint_url {public_endpoint(endpoint_url)!r} must be http(s)://host[:port] "
            "without a path, query or user name"
        )
    host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    return (f"{host}:{parts.port}" if parts.port else host), parts.scheme == "https"


class _MinioProgress:
    """The SDK's progress protocol (``set_meta`` / ``update``) over our Progress, plus
    the cancellation flag the calling thread raises on Ctrl-C."""

    def __init__(self, progress: Progress, cancel: threading.Event) -> None:
        self.progress = progress
        self.cancel = cancel

    def set_meta(self, object_name: str, total_length: int) -> None:
        """Nothing to record: the total is known before the upload starts."""

    def update(self, length: int) -> None:
        if self.cancel.is_set():
            raise TransferCancelled(KeyboardInterrupt())
        self.progress.add(length)


class MinioStorageClient(BaseArtifactStore):
    """ArtifactStore over the MinIO SDK; same constructor as S3StorageClient."""

    scheme = "s3"

    def __init__(
        self,
        *,
        prefix: Optional[str] = None,
        path_templates: Any = None,
        endpoint_url: Optional[str] = None,
        region_name: Optional[str] = None,
        aws_access_key_id: Optional[str] = None,
        aws_secret_access_key: Optional[str] = None,
        aws_session_token: Optional[str] = None,
        retry: Optional[RetryPolicy] = None,
        part_size: int = 16 * MiB,
        parallel_uploads: int = 3,
        digest_cache: Optional[DigestCache] = None,
    ) -> None:
        super().__init__(prefix=prefix, path_templates=path_templates, digest_cache=digest_cache)
        #: What the client was built with (the spec's constructor arguments; never a key).
        self.endpoint_url, self.region_name = endpoint_url, region_name
        self.retry = retry or RetryPolicy()
        self.part_size = part_size
        self.parallel_uploads = parallel_uploads
        self._endpoint = public_endpoint(endpoint_url)
        host, secure = _endpoint_parts(endpoint_url)
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=self.retry.connect_timeout, read=self.retry.read_timeout),
            # Staging uploads PARALLEL_UPLOADS files at once, each sending
            # ``parallel_uploads`` parts: one kept connection for each.
            maxsize=parallel_uploads * PARALLEL_UPLOADS + 4,
            cert_reqs="CERT_REQUIRED",
            retries=urllib3.Retry(
                total=self.retry.attempts - 1,
                backoff_factor=self.retry.backoff_seconds,
                status_forcelist=TRANSIENT_STATUS,
                # Hand the last error response to the SDK, which parses its S3 code.
                raise_on_status=False,
            ),
        )
        credentials = None
        if not (aws_access_key_id and aws_secret_access_key):
            credentials = ChainedProvider([EnvAWSProvider(), EnvMinioProvider(), AWSConfigProvider()])
        self._client = Minio(
            host,
            access_key=aws_access_key_id,
            secret_key=aws_secret_access_key,
            session_token=aws_session_token,
            secure=secure,
            region=region_name,
            http_client=http,
            credentials=credentials,
        )

    def __repr__(self) -> str:
        return f"MinioStorageClient(prefix={self.prefix!r}, endpoint_url={self._endpoint!r})"

    # --- errors ------------------------------------------------------------------
    def _translate(self, exc: BaseException, uri: str) -> StorageError:
        if isinstance(exc, S3Error):
            status = exc.response.status if exc.response is not None else None
            return s3_error(exc.code or "", status, uri, self._endpoint)
        if isinstance(exc, ServerError):
            return s3_error("", exc.status_code, uri, self._endpoint)
        if isinstance(exc, InvalidResponseError):
            return StorageError(
                f"{self._endpoint} gave a non-S3 response for {uri}; check that endpoint_url "
                "points at the S3 API port of the server"
            )
        if isinstance(exc, urllib3.exceptions.HTTPError):
            return unreachable(uri, self._endpoint, type(exc).__name__)
        return StorageError(f"storage request on {uri} at {self._endpoint} failed "
                            f"({type(exc).__name__}); check the endpoint and try again")

    @contextlib.contextmanager
    def _errors(self, uri: StorageURI | str) -> Iterator[None]:
        try:
            yield
        except (MinioException, urllib3.exceptions.HTTPError) as exc:
            raise self._translate(exc, str(uri)) from exc
        except ValueError as exc:
            # The SDK's provider chain reports "no credentials anywhere" as a ValueError.
            if "fail to fetch credentials" not in str(exc):
                raise
            raise no_credentials(str(uri)) from None

    # --- primitives --------------------------------------------------------------
    def _stat(self, uri: StorageURI) -> Optional[ObjectInfo]:
        with self._errors(uri):
            try:
                stat = self._client.stat_object(uri.bucket, uri.key)
            except S3Error as exc:
                if exc.code not in ("NoSuchKey", "NoSuchObject", "ResourceNotFound"):
                    raise
                # HEAD cannot tell a missing key from a missing bucket.
                if not self._client.bucket_exists(uri.bucket):
                    raise s3_error("NoSuchBucket", 404, str(uri), self._endpoint) from None
                return None
        metadata = stat.metadata or {}
        return ObjectInfo(int(stat.size or 0), metadata.get(_META_HEADER))

    def _upload(self, path: Path, uri: StorageURI, sha256: str, progress: Progress) -> None:
        cancel = threading.Event()
        outcome: dict[str, BaseException] = {}

        def run() -> None:
            try:
                with self._errors(uri):
                    self._client.fput_object(
                        uri.bucket, uri.key, str(path),
                        content_type="application/octet-stream",
                        metadata={SHA256_META: sha256},
                        progress=_MinioProgress(progress, cancel),
                        part_size=self.part_size,
                        num_parallel_uploads=self.parallel_uploads,
                    )
            except BaseException as exc:  # handed to the calling thread below
                outcome["error"] = exc
            finally:
                finished.set()

        finished = threading.Event()
        worker = threading.Thread(target=run, name="spikebatch-minio-upload", daemon=True)
        # Wait on an Event, not Thread.join: a KeyboardInterrupt inside join() leaves
        # the Thread marked as stopped while it still runs (CPython's bpo-45274 handling),
        # so a second join() would return before the SDK has aborted the upload.
        try:
            # Started inside the try: a Ctrl-C that lands just after the start (before
            # the first wait) also cancels the upload instead of leaving it running.
            worker.start()
            while not finished.wait(0.25):
                pass
        except BaseException:
            # Ctrl-C (or SystemExit) here: let the SDK abort the multipart upload
            # before the interrupt goes on. A Ctrl-C before the thread started leaves
            # nothing to wait for.
            cancel.set()
            if worker.ident is not None:
                finished.wait()
            raise
        if "error" in outcome:
            raise outcome["error"]

    @contextlib.contextmanager
    def _open_range(self, uri: StorageURI, start: int) -> Iterator[Iterable[bytes]]:
        with self._errors(uri):
            response = self._client.get_object(uri.bucket, uri.key, offset=start)
            try:
                yield response.stream(STREAM_CHUNK)
            finally:
                # Drop (not reuse) a half-read connection so the server stops sending.
                response.close()
                response.release_conn()

    def _list(self, prefix: StorageURI) -> list[tuple[StorageURI, int]]:
        found: list[tuple[StorageURI, int]] = []
        with self._errors(prefix):
            for obj in self._client.list_objects(prefix.bucket, prefix=prefix.key, recursive=True):
                name = obj.object_name or ""
                if not obj.is_dir and not name.endswith("/"):
                    found.append((StorageURI("s3", prefix.bucket, name), int(obj.size or 0)))
        return found

    def _read(self, uri: StorageURI) -> tuple[bytes, Optional[str]]:
        with self._errors(uri):
            response = self._client.get_object(uri.bucket, uri.key)
            try:
                data = response.read()
                recorded = response.headers.get(_META_HEADER)
            finally:
                response.close()
                response.release_conn()
        return data, recorded

    def _write(self, uri: StorageURI, data: bytes, sha256: str) -> None:
        with self._errors(uri):
            self._client.put_object(uri.bucket, uri.key, io.BytesIO(data), len(data),
                                    content_type="application/octet-stream",
                                    metadata={SHA256_META: sha256})

    def _delete(self, uri: StorageURI) -> None:
        with self._errors(uri):
            self._client.remove_object(uri.bucket, uri.key)

    def _multipart_uploads(self, bucket: str, key_prefix: str) -> list[Any]:
        uploads: list[Any] = []
        markers: tuple[Optional[str], Optional[str]] = (None, None)
        while True:
            result = self._client._list_multipart_uploads(
                bucket, prefix=key_prefix, key_marker=markers[0], upload_id_marker=markers[1])
            uploads += result.uploads
            # minio 7.2 keeps NextUploadIdMarker under a misspelt attribute name.
            following = (result.next_key_marker,
                         result.next_upload_id_marker or getattr(result, "self._next_upload_id_marker", None))
            if not result.is_truncated or not following[0] or following == markers:
                return uploads
            markers = following

    def _incomplete(self, where: StorageURI, *, sizes: bool) -> list[IncompleteUpload]:
        found: list[IncompleteUpload] = []
        with self._errors(where):
            uploads = self._multipart_uploads(where.bucket, where.key)
            if where.is_prefix and where.key and not uploads:
                # MinIO lists the uploads of one whole object name, or of the whole
                # bucket, and answers any other prefix with none: filter here instead.
                uploads = self._multipart_uploads(where.bucket, "")
            for upload in uploads:
                key = upload.object_name
                if not (key.startswith(where.key) if where.is_prefix else key == where.key):
                    continue
                size = None
                if sizes:
                    size = self._parts_size(where.bucket, key, upload.upload_id)
                    if size is None:
                        continue  # finished or aborted meanwhile
                found.append(IncompleteUpload(
                    uri=str(StorageURI("s3", where.bucket, key)), upload_id=upload.upload_id,
                    # A server that gives no start time: count the upload as just started.
                    initiated=(upload.initiated_time or datetime.now(timezone.utc)).astimezone(timezone.utc),
                    size=size))
        return found

    def _parts_size(self, bucket: str, key: str, upload_id: str) -> Optional[int]:
        """Bytes the upload's parts hold; None when the upload no longer exists."""
        total, marker = 0, None
        try:
            while True:
                result = self._client._list_parts(bucket, key, upload_id, part_number_marker=marker)
                total += sum(part.size or 0 for part in result.parts)
                if not result.is_truncated or not result.next_part_number_marker \
                        or result.next_part_number_marker == marker:
                    return total
                marker = result.next_part_number_marker
        except S3Error as exc:
            if exc.code != "NoSuchUpload":
                raise
            return None

    def _abort(self, uri: StorageURI, upload_id: str) -> bool:
        with self._errors(uri):
            try:
                # Asked first: MinIO answers an abort of an upload that is gone with
                # success too, and ListParts tells it apart.
                self._client._list_parts(uri.bucket, uri.key, upload_id, max_parts=1)
                self._client._abort_multipart_upload(uri.bucket, uri.key, upload_id)
            except S3Error as exc:
                if exc.code != "NoSuchUpload":
                    raise
                return False
        return True
