"""Strict parsing and joining of storage URIs. Pure: no I/O, no environment.

Two forms exist:

* ``s3://bucket/key`` -- ``bucket`` follows the S3 bucket naming rules; ``s3://bucket``
  and ``s3://bucket/`` both mean the bucket root.
* ``file:///absolute/path`` -- an empty authority is required (``file://host/...`` and
  ``file:relative`` are refused).

Keys and paths are taken literally (no percent-decoding, like the AWS CLI), and are
refused when they hold ``.`` / ``..`` segments, empty segments (``a//b``), a leading
``/`` inside an s3 key, a backslash or a control character: each of those either
escapes a folder when the key is mapped to a local path, or names the same object two
ways. A URI ending in ``/`` is a prefix (a "folder").
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from typing import Optional

from .errors import InvalidURIError

SCHEMES = ("s3", "file")
FORMS = "use s3://bucket/key or file:///absolute/path"

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
#: S3 refuses keys longer than 1024 bytes (UTF-8).
MAX_KEY_BYTES = 1024


@dataclass(frozen=True)
class StorageURI:
    """A parsed URI. ``key`` is the s3 object key (no leading "/"), or, for ``file``,
    the absolute path (leading "/"). ``bucket`` is "" for ``file``."""

    scheme: str
    bucket: str
    key: str

    def __str__(self) -> str:
        if self.scheme == "s3":
            return f"s3://{self.bucket}/{self.key}"
        return f"file://{self.key}"

    @property
    def is_prefix(self) -> bool:
        """True for a "folder" URI (ends with "/" or is a bucket root)."""
        return self.key == "" or self.key.endswith("/")

    @property
    def name(self) -> str:
        """The last path segment ("" for a prefix)."""
        return "" if self.is_prefix else self.key.rsplit("/", 1)[-1]

    def as_prefix(self) -> "StorageURI":
        """The same location as a folder (a trailing "/" added when missing), so that
        listing ``.../run1`` never also matches ``.../run10/``."""
        if self.is_prefix:
            return self
        return StorageURI(self.scheme, self.bucket, self.key + "/")

    def join(self, relative: str) -> "StorageURI":
        """``relative`` (a "/"-separated key, validated) appended to this prefix."""
        if not self.is_prefix:
            raise InvalidURIError(
                f"cannot join {relative!r} onto {self}: it is an object, not a prefix; "
                "end the prefix with '/'"
            )
        problem = relative_key_problem(relative)
        if problem:
            raise InvalidURIError(f"cannot join {relative!r} onto {self}: {problem}")
        return parse_uri(str(StorageURI(self.scheme, self.bucket, self.key + relative)))

    def relative_to(self, prefix: "StorageURI") -> str:
        """This URI's key relative to ``prefix`` (which must contain it)."""
        base = prefix.as_prefix()
        if (self.scheme, self.bucket) != (base.scheme, base.bucket) or not self.key.startswith(base.key):
            raise InvalidURIError(f"{self} is not under {base}; pass a URI inside that prefix")
        return self.key[len(base.key):]


def relative_key_problem(relative: str) -> Optional[str]:
    """Why ``relative`` is not a safe relative key (one that stays inside the folder it
    is joined to), or None. Used both for URIs and for keys mapped to local paths."""
    if not isinstance(relative, str) or relative == "":
        return "the key is empty"
    if _CONTROL.search(relative):
        return "the key contains a control character"
    if "\\" in relative:
        return "the key contains a backslash"
    if relative.startswith("/"):
        return "the key is absolute (starts with '/')"
    segments = relative.split("/")
    # A single trailing "/" marks a folder; any other empty segment is "a//b".
    if segments[-1] == "":
        segments = segments[:-1]
    for segment in segments:
        if segment == "":
            return "the key has an empty segment ('//')"
        if segment in (".", ".."):
            return f"the key has a {segment!r} segment (path traversal)"
    return None


def _bucket_problem(bucket: str) -> Optional[str]:
    if not bucket:
        return "the bucket name is empty"
    if not _BUCKET.match(bucket):
        return (
            f"bucket {bucket!r} is not a valid name (3-63 characters: lower-case letters, "
            "digits, '.', '-'; starting and ending with a letter or digit)"
        )
    if ".." in bucket or ".-" in bucket or "-." in bucket:
        return f"bucket {bucket!r} has adjacent '.'/'-' characters"
    try:
        ipaddress.IPv4Address(bucket)
    except ValueError:
        return None
    return f"bucket {bucket!r} is formatted as an IP address"


def _fail(uri: object, problem: str) -> InvalidURIError:
    return InvalidURIError(f"invalid storage URI {uri!r}: {problem}; {FORMS}")


def parse_uri(uri: str, *, scheme: Optional[str] = None) -> StorageURI:
    """Parse ``uri`` strictly; ``scheme`` ("s3" | "file") also requires that scheme.

    Raises InvalidURIError whose message names the URI and the accepted forms.
    """
    if not isinstance(uri, str) or not uri:
        raise _fail(uri, "it is empty")
    if uri != uri.strip() or _CONTROL.search(uri):
        raise _fail(uri, "it contains whitespace at an end or a control character")
    head, sep, rest = uri.partition("://")
    if not sep or head not in SCHEMES:
        raise _fail(uri, f"the scheme must be one of {', '.join(s + '://' for s in SCHEMES)} (lower case)")
    if scheme is not None and head != scheme:
        raise InvalidURIError(
            f"storage URI {uri!r} has scheme {head}:// but this store handles {scheme}:// URIs; "
            "choose the matching storage backend in the profile or pass a "
            f"{scheme}:// URI"
        )
    if head == "s3":
        bucket, _, key = rest.partition("/")
        problem = _bucket_problem(bucket)
        if problem:
            raise _fail(uri, problem)
        if len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise _fail(uri, f"the key is longer than {MAX_KEY_BYTES} bytes")
        if key:
            problem = relative_key_problem(key)
            if problem:
                raise _fail(uri, problem)
        return StorageURI("s3", bucket, key)
    # file: the authority must be empty, so what follows "file://" is an absolute path.
    if not rest.startswith("/"):
        raise _fail(uri, "a file URI needs an empty host and an absolute path (file:///abs/path)")
    if rest != "/":
        problem = relative_key_problem(rest[1:])
        if problem:
            raise _fail(uri, problem)
    return StorageURI("file", "", rest)


def file_uri(absolute_path: str, *, folder: bool = False) -> str:
    """The ``file://`` URI of an absolute POSIX path (a trailing "/" when ``folder``)."""
    if not absolute_path.startswith("/"):
        raise InvalidURIError(
            f"path {absolute_path!r} is not absolute; file URIs need an absolute path"
        )
    path = absolute_path.rstrip("/") + "/" if folder else absolute_path
    return str(parse_uri("file://" + path))
