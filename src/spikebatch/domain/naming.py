"""Names and labels: RFC 1123 job names, run ids, the labels spikebatch puts on Jobs."""

from __future__ import annotations

import re
import secrets
from datetime import datetime, timezone

from .errors import ConfigError

#: Label carrying the run id on the Job and its pods (selects a run's Jobs).
RUN_ID_LABEL = "spikebatch.io/run-id"
#: Label carrying the job type (workspace | sorting | prepared).
JOB_TYPE_LABEL = "spikebatch.io/job-type"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "spikebatch"

#: A Job's name becomes the value of the pods' ``job-name`` label, so it must fit a
#: label value (63 chars), not merely a DNS subdomain.
MAX_JOB_NAME = 63
_TOKEN_LEN = 6
#: The name prefix budget of the reference (spikelab.batch_jobs): 40 characters, which
#: leaves room for "-" + token (and a batch's index) within a 63-character job name.
MAX_PREFIX_LEN = 40

# Always used with fullmatch: "$" would also match before a trailing newline, letting
# "lab\n" (a YAML block scalar) through.
_RFC1123_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_LABEL_NAME = re.compile(r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def sanitize_name_prefix(raw: str) -> tuple[str, bool]:
    """(``raw`` as a name prefix, whether characters were cut off to fit).

    The reference's steps: trim whitespace, lower-case, every character outside
    [a-z0-9-] becomes "-", runs of "-" become one, cut to ``MAX_PREFIX_LEN``, trim "-"
    at both ends. Raises ConfigError when nothing usable is left."""
    text = re.sub(r"-+", "-", re.sub(r"[^a-z0-9-]", "-", str(raw).strip().lower()))
    safe = text[:MAX_PREFIX_LEN].strip("-")
    if not safe:
        raise ConfigError(
            f"name_prefix {raw!r} has no letters or digits; use a name such as 'analysis-job'"
        )
    return safe, len(text) > MAX_PREFIX_LEN and safe != text


def normalize_name_prefix(raw: str) -> str:
    """``raw`` as an RFC 1123 name prefix of at most ``MAX_PREFIX_LEN`` characters
    (see ``sanitize_name_prefix``)."""
    return sanitize_name_prefix(raw)[0]


def is_rfc1123_label(value: str) -> bool:
    return len(value) <= 63 and bool(_RFC1123_LABEL.fullmatch(value))


def is_dns_subdomain(value: str) -> bool:
    return len(value) <= 253 and bool(_DNS_SUBDOMAIN.fullmatch(value))


def label_key_problem(key: str) -> str | None:
    """Why ``key`` is not a valid Kubernetes label key, or None."""
    prefix, slash, name = key.rpartition("/")
    if slash and not prefix:
        return f"label key {key!r} has an empty prefix before '/'; drop the '/' or add a DNS subdomain"
    if slash and not is_dns_subdomain(prefix):
        return f"label key prefix {prefix!r} must be a lower-case DNS subdomain"
    if not name or len(name) > 63 or not _LABEL_NAME.fullmatch(name):
        return (
            f"label key {key!r} must be 1-63 characters of [A-Za-z0-9-_.], "
            "starting and ending with a letter or digit"
        )
    return None


def label_value_problem(value: str) -> str | None:
    """Why ``value`` is not a valid Kubernetes label value, or None."""
    if value == "":
        return None
    if len(value) > 63 or not _LABEL_NAME.fullmatch(value):
        return (
            f"label value {value!r} must be at most 63 characters of [A-Za-z0-9-_.], "
            "starting and ending with a letter or digit"
        )
    return None


def run_id_problem(run_id: object) -> str | None:
    """Why ``run_id`` cannot name a run, or None. A run id is a label value, a storage
    path segment and a record's file name: the reference's ids such as "Run1" or
    "exp_2024.01" are fine; spaces, slashes or an empty id are not."""
    if not isinstance(run_id, str) or not run_id or label_value_problem(run_id):
        return (f"run id {run_id!r} must be at most 63 characters of letters, digits, '-', '_' and '.', "
                "starting and ending with a letter or digit")
    return None


def short_token(length: int = _TOKEN_LEN) -> str:
    """Random lower-case [a-z0-9] token (what makes job names unique)."""
    alphabet = "abcdefghijklmnopqrstuvwxyz0123456789"
    return "".join(secrets.choice(alphabet) for _ in range(length))


def make_job_name(name_prefix: str, token: str | None = None) -> str:
    """``<normalised prefix>-<token>``: RFC 1123, at most 63 characters."""
    return f"{normalize_name_prefix(name_prefix)}-{token or short_token()}"


_RUN_ID = re.compile(r"\d{8}-\d{6}-[a-z0-9]{8}")


def is_run_id(text: str) -> bool:
    """Whether ``text`` has the shape of a run id made by ``new_run_id``."""
    return bool(_RUN_ID.fullmatch(text))


def new_run_id(now: datetime | None = None) -> str:
    """A unique, sortable, label-safe run id: ``YYYYmmdd-HHMMSS-<8 random>``."""
    stamp = (now or datetime.now(timezone.utc)).strftime("%Y%m%d-%H%M%S")
    return f"{stamp}-{short_token(8)}"


#: The job name prefix when nothing says what a job is (a prepared job's default).
GENERIC_NAME_PREFIX = "analysis-job"


def name_prefix_from(text: str, fallback: str = GENERIC_NAME_PREFIX) -> str:
    """``text`` (a script's stem, ``sort-<preset>``) as a name prefix, so a job's name
    says what it runs; ``fallback`` when it has no letters or digits to keep."""
    try:
        return normalize_name_prefix(text)
    except ConfigError:
        return fallback
