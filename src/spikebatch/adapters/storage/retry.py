"""How the S3 adapters retry a request: attempts, backoff, timeouts, and which HTTP
statuses count as transient."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently the S3 adapters retry one request.

    Only transient failures are retried: connection errors, timeouts and the
    TRANSIENT_STATUS codes. 403 (bad credentials) and 404 (missing object or bucket)
    fail at once: retrying cannot fix them and would only delay the message.
    """

    attempts: int = 3
    backoff_seconds: float = 0.1
    connect_timeout: float = 5.0
    read_timeout: float = 120.0


TRANSIENT_STATUS = (429, 500, 502, 503, 504)
