"""Uploads that never finished (issue 15, item 2) -- multipart uploads a killed or
cut-off submission left on the S3 server, partial files in the local store. The next
submission of the same recording aborts those of its object; ``spikebatch clean`` lists
and aborts the ones under the profile's storage prefix, leaves those outside it alone,
removes nothing with ``--dry-run``, and keeps uploads younger than ``--older-than`` (24 h
by default: they may still be running).

Through the real command line, on a profile whose storage is the test MinIO (boto3 or
the MinIO SDK, credentials from the environment) or the local store."""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from pathlib import Path
from typing import Dict, List

import pytest
from cli_support import Cli, assert_one_line_error, cli, closed_port, write_workspace  # noqa: F401  (cli is a fixture)

KiB, MiB = 1024, 1024 * 1024
DAY = 86400


class Storage:
    """Where the profile stores: plants unfinished uploads there and finds them."""

    def __init__(self, cli: Cli, args: List[str], env: Dict[str, str]) -> None:
        self.cli, self.args, self.env = cli, args, env

    def clean(self, *args: str):
        return self.cli(*self.args, "clean", *args, env=self.env)


class S3Storage(Storage):
    def __init__(self, cli: Cli, server, bucket: str, adapter: str) -> None:
        profile = cli.root / f"{adapter}.yaml"
        profile.write_text(f"name: minio-{adapter}\nbackend: local\nstorage_backend: {adapter}\n"
                           f"default_s3_prefix: s3://{bucket}/spikebatch/\nendpoint_url: {server.endpoint_url}\n"
                           f"region_name: {server.region}\n")
        super().__init__(cli, ["--profile-file", str(profile)],
                         {"AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key})
        self.s3, self.bucket = server.boto3_client(), bucket
        self.prefix = f"s3://{bucket}/spikebatch/"

    def start(self, key: str, size: int, age_seconds: float = 0) -> str:
        """A multipart upload given one part and never completed (an S3 start time
        cannot be dated back: ``age_seconds`` is ignored). Its URI."""
        upload = self.s3.create_multipart_upload(Bucket=self.bucket, Key=key)["UploadId"]
        self.s3.upload_part(Bucket=self.bucket, Key=key, UploadId=upload, PartNumber=1, Body=os.urandom(size))
        return f"s3://{self.bucket}/{key}"

    def unfinished(self, *uris: str) -> List[str]:
        """The URI of each unfinished upload of one of ``uris`` (MinIO lists them per
        whole object name only)."""
        found = []
        for uri in set(uris):
            key = uri.split("/", 3)[3]
            listing = self.s3.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            found += [uri for u in listing.get("Uploads", []) if u["Key"] == key]
        return sorted(found)


class LocalStorage(Storage):
    def __init__(self, cli: Cli) -> None:
        super().__init__(cli, [], {})
        self.prefix = f"file://{cli.data}/"
        self.partials: Dict[str, List[Path]] = {}

    def start(self, key: str, size: int, age_seconds: float = 0) -> str:
        """A partial file, last written ``age_seconds`` ago; the URI of the object it
        was to become (``key`` relative to the store, or an absolute path outside it)."""
        target = Path(key) if key.startswith("/") else self.cli.data / key
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.parent / f".{target.name}.{secrets.token_hex(4)}.spikebatch-part"
        partial.write_bytes(os.urandom(size))
        past = time.time() - age_seconds
        os.utime(partial, (past, past))
        uri = f"file://{target}"
        self.partials.setdefault(uri, []).append(partial)
        return uri

    def unfinished(self, *uris: str) -> List[str]:
        return sorted(uri for uri in set(uris) for partial in self.partials[uri] if partial.exists())


@pytest.fixture(params=["local", pytest.param("boto3", marks=pytest.mark.integration),
                        pytest.param("minio", marks=pytest.mark.integration)])
def storage(cli: Cli, request: pytest.FixtureRequest) -> Storage:
    if request.param == "local":
        return LocalStorage(cli)
    return S3Storage(cli, request.getfixturevalue("minio_server"), request.getfixturevalue("s3_bucket"), request.param)


def _outside(storage: Storage) -> str:
    if isinstance(storage, LocalStorage):
        return str(storage.cli.root / "elsewhere" / "rec.bin")
    return "not-spikebatch/rec.bin"


def _under(storage: Storage, relative: str) -> str:
    return relative if isinstance(storage, LocalStorage) else "spikebatch/" + relative


def test_the_next_submission_of_a_recording_aborts_what_a_killed_one_left(storage: Storage) -> None:
    cli = storage.cli
    recording = cli.root / "rec.bin"
    recording.write_bytes(os.urandom(9 * MiB))  # above the 8 MiB blob threshold: stored as a blob
    blob = _under(storage, "blobs/sha256/" + hashlib.sha256(recording.read_bytes()).hexdigest())
    # What a submission SIGKILLed while it uploaded this recording leaves behind.
    left = [storage.start(blob, 1 * MiB, age_seconds=60) for _ in range(2)]
    other = storage.start(_under(storage, "blobs/sha256/" + "c" * 64), 64 * KiB, age_seconds=60)
    script = cli.root / "analysis.py"
    script.write_text("print('analysed')\n")

    result = cli(*storage.args, "submit-workspace", "--workspace", str(write_workspace(cli.root / "ws", x=1)),
                 "--script", str(script), "--input", str(recording), "--wait", env=storage.env)
    assert result.returncode == 0, result.stderr
    assert result.keys["FINAL_STATUS"] == "Complete"
    assert storage.unfinished(*left, other) == [other]


def test_clean_removes_unfinished_uploads_under_the_prefix_only(storage: Storage) -> None:
    blob = storage.start(_under(storage, "blobs/sha256/" + "b" * 64), 300 * KiB, age_seconds=3 * DAY)
    bundle = storage.start(_under(storage, "inputs/20261130-101500-abcdefgh/bundle.zip"), 200 * KiB,
                           age_seconds=2 * DAY)
    outside = storage.start(_outside(storage), 100 * KiB, age_seconds=9 * DAY)
    everything = (blob, bundle, outside)

    dry = storage.clean("--older-than", "0", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.keys == {"PREFIX": storage.prefix, "DRY_RUN": "true", "STALE_UPLOADS": "2",
                        "STALE_BYTES": str(500 * KiB), "REMOVED": "0", "REMOVED_BYTES": "0", "KEPT": "0"}
    assert f"would remove: unfinished upload of {blob} (started " in dry.stderr and bundle in dry.stderr
    assert storage.unfinished(*everything) == sorted(everything)  # a dry run removes nothing

    done = storage.clean("--older-than", "0", "-o", "json")
    assert done.returncode == 0, done.stderr
    report = done.json()
    assert (report["removed"], report["removed_bytes"], report["stale_uploads"], report["kept"]) == (2, 500 * KiB, 2, 0)
    assert report["dry_run"] is False and report["prefix"] == storage.prefix
    assert sorted(u["uri"] for u in report["uploads"] if u["removed"]) == sorted([blob, bundle])
    assert f"removed: unfinished upload of {blob}" in done.stderr
    assert storage.unfinished(*everything) == [outside]

    again = storage.clean("--older-than", "0")
    assert again.returncode == 0 and again.keys["REMOVED"] == "0" and again.keys["STALE_UPLOADS"] == "0"


def test_clean_by_default_keeps_uploads_that_may_still_be_running(storage: Storage) -> None:
    fresh = storage.start(_under(storage, "blobs/sha256/" + "f" * 64), 64 * KiB, age_seconds=60)
    old = storage.start(_under(storage, "blobs/sha256/" + "0" * 64), 32 * KiB, age_seconds=2 * DAY)

    result = storage.clean()
    assert result.returncode == 0, result.stderr
    if isinstance(storage, LocalStorage):
        # Partial files are dated by their last write, so both ages can be set here.
        assert (result.keys["REMOVED"], result.keys["REMOVED_BYTES"], result.keys["KEPT"]) == ("1", str(32 * KiB), "1")
        assert storage.unfinished(fresh, old) == [fresh]
    else:
        # Both were started moments ago on the server: the 24 h default keeps both.
        assert (result.keys["REMOVED"], result.keys["KEPT"]) == ("0", "2")
        assert storage.unfinished(fresh, old) == sorted([fresh, old])
    assert "may still be running" in result.stderr
    quiet = storage.cli(*storage.args, "--quiet", "clean", "--older-than", "1h", env=storage.env)
    assert quiet.returncode == 0 and quiet.stderr == ""


@pytest.mark.parametrize("value", ["yesterday", "-1h", "1.5h"])
def test_a_bad_age_is_one_line_and_exit_2(cli: Cli, value: str) -> None:
    assert_one_line_error(cli("clean", "--older-than", value), 2, "--older-than", "is not a duration")


def test_unreachable_storage_is_one_line_and_exit_3(cli: Cli) -> None:
    profile = cli.root / "gone.yaml"
    profile.write_text(f"name: gone\nbackend: local\nstorage_backend: boto3\ndefault_s3_prefix: s3://bucket/x/\n"
                       f"endpoint_url: http://127.0.0.1:{closed_port()}\n")
    result = cli("--profile-file", str(profile), "clean", env={"AWS_ACCESS_KEY_ID": "k", "AWS_SECRET_ACCESS_KEY": "s"})
    assert_one_line_error(result, 3, "cannot reach")
