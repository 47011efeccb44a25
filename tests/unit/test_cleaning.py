"""The clean use case (``spikebatch clean``) against the in-memory store: which
unfinished uploads go, which stay, what a dry run does. The adapters' listing and
aborting are proven against the real MinIO and the filesystem in
tests/contract/test_artifact_store.py, the command in tests/e2e/test_cli_clean.py."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import List

import pytest
from fakes import MemoryStore

from spikebatch.application.cleaning import clean_incomplete_uploads, parse_age
from spikebatch.errors import ConfigError
from spikebatch.ports.storage import ArtifactStore, IncompleteUpload

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
PREFIX = "s3://unit-bucket/jobs/"


def upload(key: str, hours_ago: float, size: int = 100, upload_id: str = "") -> IncompleteUpload:
    return IncompleteUpload(uri=key if "://" in key else PREFIX + key, upload_id=upload_id or f"id-{key}",
                            initiated=NOW - timedelta(hours=hours_ago), size=size)


@pytest.fixture
def store() -> MemoryStore:
    store = MemoryStore(prefix=PREFIX)
    store.incomplete = [
        upload("blobs/sha256/old", 48, size=5_000),
        upload("inputs/r1/bundle.zip", 30, size=700),
        upload("blobs/sha256/fresh", 0.5, size=9_000),                # maybe still running
        upload("s3://unit-bucket/elsewhere/old", 100, size=1_000),     # not under the prefix
    ]
    return store


def test_the_fake_store_still_implements_the_port() -> None:
    assert isinstance(MemoryStore(), ArtifactStore)


def test_uploads_older_than_the_limit_under_the_prefix_are_aborted(store: MemoryStore) -> None:
    outcome = clean_incomplete_uploads(store, older_than=timedelta(hours=24), now=NOW)
    gone = [PREFIX + "blobs/sha256/old", PREFIX + "inputs/r1/bundle.zip"]
    assert [u.uri for u in outcome.stale] == gone
    assert [u.uri for u in outcome.removed] == gone
    assert outcome.removed_bytes == outcome.stale_bytes == 5_700
    assert [u.uri for u in outcome.kept] == [PREFIX + "blobs/sha256/fresh"]
    assert sorted(u.uri for u in store.incomplete) == ["s3://unit-bucket/elsewhere/old",
                                                       PREFIX + "blobs/sha256/fresh"]
    assert outcome.prefix == PREFIX and not outcome.dry_run


def test_a_dry_run_reports_and_removes_nothing(store: MemoryStore) -> None:
    before = list(store.incomplete)
    outcome = clean_incomplete_uploads(store, older_than=timedelta(hours=24), dry_run=True, now=NOW)
    assert len(outcome.stale) == 2 and outcome.stale_bytes == 5_700
    assert outcome.removed == [] and outcome.removed_bytes == 0
    assert store.incomplete == before


def test_a_zero_limit_takes_every_upload_even_one_dated_after_now(store: MemoryStore) -> None:
    store.incomplete.append(upload("blobs/sha256/skewed", -0.1))  # the server's clock runs ahead
    outcome = clean_incomplete_uploads(store, older_than=timedelta(0), now=NOW)
    assert len(outcome.removed) == 4 and outcome.kept == []
    assert [u.uri for u in store.incomplete] == ["s3://unit-bucket/elsewhere/old"]


def test_an_upload_that_ends_meanwhile_is_not_counted_as_removed(store: MemoryStore) -> None:
    class Racing(MemoryStore):
        def list_incomplete_uploads(self, prefix: str) -> List[IncompleteUpload]:
            found = super().list_incomplete_uploads(prefix)
            # One finishes (or is aborted elsewhere) right after the listing.
            self.incomplete = [u for u in self.incomplete if u.uri != PREFIX + "blobs/sha256/old"]
            return found

    racing = Racing(prefix=PREFIX)
    racing.incomplete = list(store.incomplete)
    outcome = clean_incomplete_uploads(racing, older_than=timedelta(hours=24), now=NOW)
    assert [u.uri for u in outcome.stale] == [PREFIX + "blobs/sha256/old", PREFIX + "inputs/r1/bundle.zip"]
    assert [u.uri for u in outcome.removed] == [PREFIX + "inputs/r1/bundle.zip"]


def test_the_limit_is_inclusive_and_sizes_may_be_unknown() -> None:
    store = MemoryStore(prefix=PREFIX)
    store.incomplete = [upload("a", 24, size=None), upload("b", 23.99)]  # type: ignore[arg-type]
    outcome = clean_incomplete_uploads(store, older_than=timedelta(hours=24), now=NOW)
    assert [u.uri for u in outcome.removed] == [PREFIX + "a"] and outcome.removed_bytes == 0


def test_a_store_without_a_prefix_is_a_clear_error() -> None:
    store = MemoryStore(prefix=PREFIX)
    store.prefix = None  # type: ignore[assignment]
    with pytest.raises(ConfigError, match="no storage prefix"):
        clean_incomplete_uploads(store, older_than=timedelta(hours=1), now=NOW)


def test_a_successful_upload_of_an_object_ends_its_unfinished_uploads(store: MemoryStore, tmp_path) -> None:
    src = tmp_path / "f"
    src.write_bytes(b"x")
    store.upload_file(local_path=src, s3_uri=PREFIX + "blobs/sha256/old")
    assert PREFIX + "blobs/sha256/old" not in [u.uri for u in store.incomplete]


@pytest.mark.parametrize("text, seconds", [("0", 0), ("90", 90), ("90s", 90), ("30m", 1800), ("24h", 86400),
                                           ("7d", 604800), ("2w", 1209600), (" 12H ", 43200)])
def test_durations(text: str, seconds: int) -> None:
    assert parse_age(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "h", "-1h", "1.5h", "1h30m", "soon", "10y", "9" * 12])
def test_bad_durations_say_what_is_expected(text: str) -> None:
    with pytest.raises(ConfigError, match=r"--older-than .* is not a duration; use a number with s, m, h, d or w"):
        parse_age(text)
