"""Clearing the uploads that never finished (``spikebatch clean``).

A multipart upload whose process was killed, or whose storage went away mid-way, stays
on an S3 server -- invisible to listings, its parts billed -- until it is aborted; the
local store's analogue is a partial file. The next successful upload of the same object
aborts those of that object (the adapters do it). The others are found here: every
unfinished upload under the profile's storage prefix that was started at least
``older_than`` ago is aborted (or, with ``dry_run``, only reported).

The age limit is what keeps a clean from breaking an upload that is still running (on
this machine or another one sharing the bucket): an upload is only as old as its start,
so a limit longer than any upload takes (the default, 24 h) never touches a live one.
``older_than`` of zero takes everything. Ages compare this machine's clock with the
server's start times, so a skewed clock moves the limit by the skew.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Optional

from ..domain.errors import ConfigError
from ..ports.storage import ArtifactStore, IncompleteUpload

#: What ``spikebatch clean`` removes when no ``--older-than`` is given.
DEFAULT_OLDER_THAN = "24h"

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_DURATION = re.compile(r"^(\d{1,9})([smhdw]?)$")


def parse_age(text: str, option: str = "--older-than") -> timedelta:
    """``90s``, ``30m``, ``24h``, ``7d``, ``2w`` (a bare number is seconds; ``0`` is
    no limit) as a timedelta."""
    match = _DURATION.match(str(text).strip().lower())
    if match is None:
        raise ConfigError(f"{option} {text!r} is not a duration; use a number with s, m, h, d or w "
                          "(e.g. 30m, 24h, 7d), or 0 for every age")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2) or "s"])


@dataclass(frozen=True)
class CleanOutcome:
    """What a clean found under ``prefix`` and what it did."""

    prefix: str
    older_than: timedelta
    dry_run: bool
    #: Unfinished uploads at least ``older_than`` old: aborted, or with ``dry_run`` the
    #: ones that would be.
    stale: list[IncompleteUpload]
    #: Those actually aborted (none with ``dry_run``; one that finished or was aborted
    #: by someone else in between is not counted).
    removed: list[IncompleteUpload]
    #: Younger unfinished uploads, left alone (perhaps still running).
    kept: list[IncompleteUpload]

    @property
    def stale_bytes(self) -> int:
        return sum(upload.size or 0 for upload in self.stale)

    @property
    def removed_bytes(self) -> int:
        return sum(upload.size or 0 for upload in self.removed)


def is_stale(upload: IncompleteUpload, older_than: timedelta, now: datetime) -> bool:
    """Whether ``upload`` was started at least ``older_than`` before ``now`` (always,
    for a zero limit: a server clock ahead of ours must not hide an upload then)."""
    return older_than <= timedelta(0) or now - upload.initiated >= older_than


def clean_incomplete_uploads(store: ArtifactStore, *, older_than: timedelta, dry_run: bool = False,
                             now: Optional[datetime] = None) -> CleanOutcome:
    """Abort every unfinished upload under the store's prefix started at least
    ``older_than`` before ``now`` (default: the current time); with ``dry_run`` abort
    nothing and report what would go."""
    if older_than < timedelta(0):
        raise ConfigError("--older-than must not be negative")
    if not store.prefix:
        raise ConfigError("the profile sets no storage prefix (default_s3_prefix); "
                          "there is nothing of spikebatch's to clean")
    moment = now or datetime.now(timezone.utc)
    found = store.list_incomplete_uploads(store.prefix)
    stale = [upload for upload in found if is_stale(upload, older_than, moment)]
    kept = [upload for upload in found if not is_stale(upload, older_than, moment)]
    removed = [] if dry_run else [upload for upload in stale if store.abort_incomplete_upload(upload)]
    return CleanOutcome(prefix=store.prefix, older_than=older_than, dry_run=dry_run,
                        stale=stale, removed=removed, kept=kept)
