"""S3StorageClient: the ArtifactStore on S3 or any S3-compatible server, via boto3.

Uploads go through boto3's managed transfer (s3transfer) with a TransferConfig sized
for multi-GB recordings: 64 MiB parts sent by 8 threads, each part streamed from the
file (memory does not grow with file size). s3transfer aborts a failed multipart upload
itself -- including on Ctrl-C -- so no parts are left behind; what a killed process
leaves, the next upload of that object aborts (BaseArtifactStore). Downloads are one
streamed GET hashed on the way (see BaseArtifactStore._download): s3transfer's parallel
ranged GETs would need a second pass to verify the sha256, and on cancellation it leaves
half-read connections open (MinIO then holds a read lock on the object for 30 s).
Retries are botocore's "standard" mode, which retries throttling, 5xx and connection
errors with exponential backoff and never 403 / 404.

Credentials are handed to a boto3 Session and never kept on this object, so they cannot
leak through repr() or an error message.
"""

from __future__ import annotations

import contextlib
from datetime import timezone
from pathlib import Path
from typing import Any, Iterable, Iterator, Optional

import boto3
from boto3.exceptions import Boto3Error, S3UploadFailedError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionError as BotoConnectionError,
    HTTPClientError,
    IncompleteReadError,
    NoCredentialsError,
    PartialCredentialsError,
)

from ...domain.errors import StorageError
from ...domain.storage_uri import StorageURI
from ...ports.storage import PARALLEL_UPLOADS, IncompleteUpload
from ..files.digests import DigestCache
from ..storage.base_store import STREAM_CHUNK, BaseArtifactStore, ObjectInfo
from ..storage.progress import Progress
from ..storage.retry import RetryPolicy
from .errors import no_credentials, public_endpoint, s3_error, unreachable
from .object_metadata import SHA256_META

MiB = 1024 * 1024


def default_transfer_config() -> TransferConfig:
    """Part size and concurrency for multi-GB files.

    64 MiB parts keep the request count low (a 2 GiB file is 32 parts) while s3transfer
    adjusts the part size upwards by itself beyond 10,000 parts (640 GB). Eight threads
    keep a link busy while each waits on its part's round trip. Memory stays small:
    parts are read from the file as they are sent, not buffered whole.
    """
    return TransferConfig(
        multipart_threshold=64 * MiB,
        multipart_chunksize=64 * MiB,
        max_concurrency=8,
        use_threads=True,
    )


class S3StorageClient(BaseArtifactStore):
    """Small wrapper around boto3 for upload/download URI handling.

    Path layout is controlled by ``path_templates`` (a StoragePathTemplates loaded from
    the active profile).
    """

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
        transfer_config: Optional[TransferConfig] = None,
        digest_cache: Optional[DigestCache] = None,
    ) -> None:
        super().__init__(prefix=prefix, path_templates=path_templates, digest_cache=digest_cache)
        #: What the client was built with (the spec's constructor arguments; never a key).
        self.endpoint_url, self.region_name = endpoint_url, region_name
        self.retry = retry or RetryPolicy()
        self.transfer_config = transfer_config or default_transfer_config()
        self._endpoint = public_endpoint(endpoint_url)
        session = boto3.session.Session(
            aws_access_key_id=aws_access_key_id,
            aws_secret_access_key=aws_secret_access_key,
            aws_session_token=aws_session_token,
            region_name=region_name,
        )
        config = Config(
            signature_version="s3v4",
            s3={
                # S3-compatible servers (MinIO, Ceph, ...) answer on one host name.
                "addressing_style": "path" if endpoint_url else "auto",
                # Parts are protected by a CRC32 checksum the server verifies (below)
                # and the whole file by the sha256 recorded in its metadata; signing
                # each part's sha256 as well (botocore's default over plain http)
                # would cost a full extra hash pass on the client and on the server.
                "payload_signing_enabled": False,
            },
            retries={"mode": "standard", "total_max_attempts": self.retry.attempts},
            connect_timeout=self.retry.connect_timeout,
            read_timeout=self.retry.read_timeout,
            # Staging uploads PARALLEL_UPLOADS files at once, each with its own
            # transfer threads; a smaller pool would drop and reopen connections (and
            # urllib3 would warn "Connection pool is full" for each).
            max_pool_connections=self.transfer_config.max_request_concurrency * PARALLEL_UPLOADS + 4,
            request_checksum_calculation="when_supported",
            # Downloads are verified against the recorded sha256 instead.
            response_checksum_validation="when_required",
        )
        self._client = session.client("s3", endpoint_url=endpoint_url, config=config)

    def __repr__(self) -> str:
        return f"S3StorageClient(prefix={self.prefix!r}, endpoint_url={self._endpoint!r})"

    # --- errors ------------------------------------------------------------------
    def _translate(self, exc: BaseException, uri: str) -> StorageError:
        if isinstance(exc, S3UploadFailedError):
            # boto3 raises it inside ``except ClientError``: the original is the context.
            original = exc.__cause__ or exc.__context__
            if isinstance(original, (ClientError, BotoCoreError)):
                exc = original
        if isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            return s3_error(str(error.get("Code", "")), status, uri, self._endpoint)
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return no_credentials(uri)
        if isinstance(exc, (BotoConnectionError, HTTPClientError, IncompleteReadError)):
            return unreachable(uri, self._endpoint, type(exc).__name__)
        return StorageError(
            f"storage request on {uri} at {self._endpoint} failed ({type(exc).__name__}); "
            "check the endpoint and try again"
        )

    @contextlib.contextmanager
    def _errors(self, uri: StorageURI | str) -> Iterator[None]:
        try:
            yield
        except (ClientError, BotoCoreError, Boto3Error) as exc:
            raise self._translate(exc, str(uri)) from exc

    def _bucket_missing(self, uri: StorageURI) -> bool:
        try:
            self._client.head_bucket(Bucket=uri.bucket)
        except ClientError as exc:
            return exc.response.get("Error", {}).get("Code") in ("404", "NoSuchBucket", "NotFound")
        return False

    # --- primitives --------------------------------------------------------------
    def _stat(self, uri: StorageURI) -> Optional[ObjectInfo]:
        with self._errors(uri):
            try:
                head = self._client.head_object(Bucket=uri.bucket, Key=uri.key)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchKey", "NotFound"):
                    raise
                # HEAD cannot tell a missing key from a missing bucket; a missing
                # bucket is a configuration error the user must hear about.
                if self._bucket_missing(uri):
                    raise s3_error("NoSuchBucket", 404, str(uri), self._endpoint) from None
                return None
        return ObjectInfo(int(head["ContentLength"]), head.get("Metadata", {}).get(SHA256_META))

    def _upload(self, path: Path, uri: StorageURI, sha256: str, progress: Progress) -> None:
        with self._errors(uri):
            self._client.upload_file(
                Filename=str(path), Bucket=uri.bucket, Key=uri.key,
                ExtraArgs={"Metadata": {SHA256_META: sha256},
                           "ContentType": "application/octet-stream"},
                Callback=progress.add, Config=self.transfer_config,
            )

    @contextlib.contextmanager
    def _open_range(self, uri: StorageURI, start: int) -> Iterator[Iterable[bytes]]:
        with self._errors(uri):
            extra = {"Range": f"bytes={start}-"} if start else {}
            body = self._client.get_object(Bucket=uri.bucket, Key=uri.key, **extra)["Body"]
            try:
                yield body.iter_chunks(STREAM_CHUNK)
            finally:
                # Closing a half-read body drops the connection, so the server stops
                # sending (and MinIO releases its read lock on the object) at once.
                body.close()

    def _list(self, prefix: StorageURI) -> list[tuple[StorageURI, int]]:
        found: list[tuple[StorageURI, int]] = []
        with self._errors(prefix):
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=prefix.bucket, Prefix=prefix.key)
            for page in pages:
                for obj in page.get("Contents", []):
                    # Zero-byte "folder" markers made by consoles are not files.
                    if not obj["Key"].endswith("/"):
                        found.append((StorageURI("s3", prefix.bucket, obj["Key"]), int(obj["Size"])))
        return found

    def _read(self, uri: StorageURI) -> tuple[bytes, Optional[str]]:
        with self._errors(uri):
            response = self._client.get_object(Bucket=uri.bucket, Key=uri.key)
            with contextlib.closing(response["Body"]) as body:
                data = body.read()
        return data, response.get("Metadata", {}).get(SHA256_META)

    def _write(self, uri: StorageURI, data: bytes, sha256: str) -> None:
        with self._errors(uri):
            self._client.put_object(Bucket=uri.bucket, Key=uri.key, Body=data,
                                    Metadata={SHA256_META: sha256},
                                    ContentType="application/octet-stream")

    def _delete(self, uri: StorageURI) -> None:
        with self._errors(uri):
            self._client.delete_object(Bucket=uri.bucket, Key=uri.key)

    def _multipart_uploads(self, bucket: str, key_prefix: str) -> list[dict]:
        pages = self._client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=key_prefix)
        return [upload for page in pages for upload in page.get("Uploads", [])]

    def _incomplete(self, where: StorageURI, *, sizes: bool) -> list[IncompleteUpload]:
        found: list[IncompleteUpload] = []
        with self._errors(where):
            uploads = self._multipart_uploads(where.bucket, where.key)
            if where.is_prefix and where.key and not uploads:
                # MinIO lists the uploads of one whole object name, or of the whole
                # bucket, and answers any other prefix with none: filter here instead.
                uploads = self._multipart_uploads(where.bucket, "")
            for upload in uploads:
                key = upload["Key"]
                if not (key.startswith(where.key) if where.is_prefix else key == where.key):
                    continue
                size = None
                if sizes:
                    size = self._parts_size(where.bucket, key, upload["UploadId"])
                    if size is None:
                        continue  # finished or aborted meanwhile
                found.append(IncompleteUpload(
                    uri=str(StorageURI("s3", where.bucket, key)), upload_id=upload["UploadId"],
                    initiated=upload["Initiated"].astimezone(timezone.utc), size=size))
        return found

    def _parts_size(self, bucket: str, key: str, upload_id: str) -> Optional[int]:
        """Bytes the upload's parts hold; None when the upload no longer exists."""
        try:
            pages = self._client.get_paginator("list_parts").paginate(Bucket=bucket, Key=key, UploadId=upload_id)
            return sum(int(part["Size"]) for page in pages for part in page.get("Parts", []))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                raise
            return None

    def _abort(self, uri: StorageURI, upload_id: str) -> bool:
        with self._errors(uri):
            try:
                # Asked first: MinIO answers an abort of an upload that is gone with
                # success too, and ListParts tells it apart.
                self._client.list_parts(Bucket=uri.bucket, Key=uri.key, UploadId=upload_id, MaxParts=1)
                self._client.abort_multipart_upload(Bucket=uri.bucket, Key=uri.key, UploadId=upload_id)
            except ClientError as exc:
                if exc.response.get("Error", {}).get("Code") != "NoSuchUpload":
                    raise
                return False
        return True
