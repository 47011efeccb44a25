"""S3 errors in the project's terms, shared by the boto3 and MinIO adapters: an S3 error
code / HTTP status becomes a StorageError subclass whose message says what to fix, and
an endpoint is named in messages without the credentials a URL may carry."""

from __future__ import annotations

from typing import Optional
from urllib.parse import urlsplit

from ...domain.errors import (
    BucketNotFoundError,
    ObjectNotFoundError,
    StorageAccessDeniedError,
    StorageError,
    StorageUnavailableError,
)

_DENIED = {"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken",
           "InvalidToken", "TokenRefreshRequired", "AllAccessDisabled", "AccountProblem",
           "InvalidSecurity", "403", "Forbidden"}
_NOT_FOUND = {"NoSuchKey", "404", "NotFound", "NoSuchVersion"}
_UNAVAILABLE = {"SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout",
                "XMinioServerNotInitialized", "Throttling", "503", "500", "502", "504"}


def public_endpoint(endpoint_url: Optional[str]) -> str:
    """The endpoint for messages: scheme://host:port only, never user:password@."""
    if not endpoint_url:
        return "the default AWS S3 endpoint"
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}" if parts.scheme else endpoint_url.split("@")[-1]


def s3_error(code: str, status: Optional[int], uri: str, endpoint: str) -> StorageError:
    """The project exception for an S3 error ``code`` / HTTP ``status`` on ``uri``."""
    bucket = uri[5:].split("/", 1)[0] if uri.startswith("s3://") else uri
    if code == "NoSuchBucket":
        return BucketNotFoundError(
            f"bucket {bucket!r} of {uri} does not exist at {endpoint}; create it "
            "(e.g. `aws s3 mb s3://" + bucket + "`) or fix default_s3_prefix in the profile"
        )
    if code in _DENIED or status == 403:
        return StorageAccessDeniedError(
            f"access to {uri} was denied by {endpoint} ({code or status}); check the access "
            "key and secret (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY or the profile's "
            "credentials) and the bucket policy"
        )
    if code in _NOT_FOUND or status == 404:
        return ObjectNotFoundError(f"object {uri} not found at {endpoint}; check the URI")
    if code in _UNAVAILABLE or (status is not None and status >= 500):
        return StorageUnavailableError(
            f"{endpoint} failed on {uri} ({code or status}) even after retries; the storage "
            "service is unavailable or overloaded -- try again later"
        )
    return StorageError(f"storage request on {uri} failed at {endpoint} ({code or status}); "
                        "check the URI and the storage server's logs")


def unreachable(uri: str, endpoint: str, reason: str) -> StorageUnavailableError:
    return StorageUnavailableError(
        f"cannot reach the storage endpoint {endpoint} for {uri} ({reason}); check "
        "endpoint_url / S3_ENDPOINT_URL and that the server is running"
    )


def no_credentials(uri: str) -> StorageAccessDeniedError:
    return StorageAccessDeniedError(
        f"no usable S3 credentials for {uri}; set AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY (or the profile's credentials)"
    )
