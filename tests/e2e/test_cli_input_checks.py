"""Every input a submission names is checked before a byte is uploaded (issue 15, item
4): file names that cannot travel in a bundle (a backslash, bytes that are not UTF-8),
FIFOs and other special files (as a recording, inside a recording folder, as
``--job-config``), an empty recording, and a link that leads out of its folder. Each is
refused with exit 2 and one ``error:`` line naming the path and the fix; the local store,
or the MinIO bucket with its multipart uploads, stays empty and no job is created.

The submissions run through the real command line on the local backend, with the
profile's local store or with boto3 / the MinIO SDK against the test MinIO."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, List

import pytest
from cli_support import Cli, Result, assert_one_line_error, cli, write_workspace  # noqa: F401  (cli is a fixture)

KiB = 1024
#: Any CLI run here that has not ended by then is stuck (a FIFO opened for reading).
TIMEOUT = 120


class Target:
    """Where a submission would upload: ``args`` choose the profile; ``uploaded()``
    lists every object and incomplete multipart upload found there afterwards."""

    def __init__(self, cli: Cli, args: List[str], uploaded: Callable[[], List[str]], env: dict) -> None:
        self.cli, self.args, self.uploaded, self.env = cli, args, uploaded, env

    def __call__(self, *args: str) -> Result:
        return self.cli(*self.args, *args, env=self.env, timeout=TIMEOUT)

    def assert_nothing_sent(self) -> None:
        assert self.uploaded() == [], "something was uploaded"
        assert self.cli.local_jobs() == [], "a job was created"
        assert self.cli.records() == [], "a submission was recorded"


def _local_target(cli: Cli) -> Target:
    return Target(cli, [], lambda: [str(p) for p in cli.data_files()], {})


def _minio_target(cli: Cli, request: pytest.FixtureRequest, storage: str) -> Target:
    server = request.getfixturevalue("minio_server")
    bucket = request.getfixturevalue("s3_bucket")
    profile = cli.root / f"{storage}.yaml"
    profile.write_text(f"name: minio-{storage}\nbackend: local\nstorage_backend: {storage}\n"
                       f"default_s3_prefix: s3://{bucket}/spikebatch/\nendpoint_url: {server.endpoint_url}\n"
                       f"region_name: {server.region}\ndefault_images: {{cpu: 'runner:1.0'}}\n")
    s3 = server.boto3_client()

    def uploaded() -> List[str]:
        objects = [o["Key"] for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket)
                   for o in page.get("Contents", [])]
        # MinIO lists incomplete uploads only for an exact key given as prefix: ask
        # for every key a submission of these inputs could have started.
        started = [u["Key"] for key in _possible_keys(cli) for u in
                   s3.list_multipart_uploads(Bucket=bucket, Prefix=key).get("Uploads", [])]
        return sorted(objects + [f"incomplete upload of {key}" for key in started])

    env = {"AWS_ACCESS_KEY_ID": server.access_key, "AWS_SECRET_ACCESS_KEY": server.secret_key}
    return Target(cli, ["--profile-file", str(profile)], uploaded, env)


def _possible_keys(cli: Cli) -> List[str]:
    """The blob keys of every file under the test's folder (what put_blob would use)."""
    import hashlib

    keys = []
    for folder, _, files in os.walk(cli.root):
        for name in files:
            path = os.path.join(folder, name)
            if os.path.isfile(path) and not os.path.islink(path):
                with open(path, "rb") as handle:
                    keys.append("spikebatch/blobs/sha256/" + hashlib.sha256(handle.read()).hexdigest())
    return keys


@pytest.fixture(params=["local", pytest.param("boto3", marks=pytest.mark.integration),
                        pytest.param("minio", marks=pytest.mark.integration)])
def target(cli: Cli, request: pytest.FixtureRequest) -> Target:
    if request.param == "local":
        return _local_target(cli)
    return _minio_target(cli, request, request.param)


def _data(path: Path, size: int = 256 * KiB) -> Path:
    """A data file above the blob threshold: uploaded first, on its own."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(os.urandom(size))
    return path


def _recording_folder(root: Path) -> Path:
    folder = root / "organoid_rec"
    _data(folder / "traces_cached_seg0.raw")
    (folder / "binary.json").write_text('{"sampling_frequency": 30000}')
    return folder


def _sort(target: Target, *recordings: Path) -> Result:
    args = [arg for rec in recordings for arg in ("--recording", str(rec))]
    return target("submit-sorting", *args, "--preset", "tridesclous2")


# --- names that cannot travel in a bundle ---------------------------------------------------
def test_a_backslash_in_a_recording_file_name_is_refused_before_the_data_is_uploaded(target: Target) -> None:
    folder = _recording_folder(target.cli.root)
    (folder / "x\\y.json").write_text("{}")
    result = _sort(target, folder)
    assert_one_line_error(result, 2, str(folder / "x\\y.json"), "backslash", "rename")
    target.assert_nothing_sent()


def test_a_non_utf8_file_name_in_a_recording_folder_is_refused_before_the_data_is_uploaded(target: Target) -> None:
    folder = _recording_folder(target.cli.root)
    with open(os.path.join(os.fsencode(folder), b"probe\xff.json"), "wb") as handle:
        handle.write(b"{}")
    result = _sort(target, folder)
    assert_one_line_error(result, 2, str(folder) + "/probe\\xff.json", "not valid UTF-8", "rename")
    target.assert_nothing_sent()


def test_a_non_utf8_input_name_is_refused(target: Target) -> None:
    cli = target.cli
    workspace = write_workspace(cli.root / "ws", x=1)
    script = cli.root / "analysis.py"
    script.write_text("print(1)\n")
    name = os.path.join(os.fsencode(cli.root), b"params\xfe.json")
    with open(name, "wb") as handle:
        handle.write(b"{}")
    result = target("submit-workspace", "--workspace", str(workspace), "--script", str(script),
                    "--input", os.fsdecode(name))
    assert_one_line_error(result, 2, "params\\xfe.json", "not valid UTF-8", "rename")
    target.assert_nothing_sent()


# --- FIFOs and other special files ----------------------------------------------------------
def test_a_fifo_as_a_recording_is_refused_without_being_opened(target: Target) -> None:
    fifo = target.cli.root / "rec.nwb"
    os.mkfifo(fifo)
    result = _sort(target, _recording_folder(target.cli.root), fifo)
    assert_one_line_error(result, 2, str(fifo), "FIFO", "not a file or folder")
    assert "empty" not in result.stderr
    target.assert_nothing_sent()


def test_a_fifo_inside_a_recording_folder_is_refused_not_skipped(target: Target) -> None:
    folder = _recording_folder(target.cli.root)
    os.mkfifo(folder / "events.pipe")
    result = _sort(target, folder)
    assert_one_line_error(result, 2, str(folder / "events.pipe"), "FIFO", "remove it")
    target.assert_nothing_sent()


def test_a_socket_inside_a_recording_folder_is_refused(target: Target) -> None:
    import socket

    folder = _recording_folder(target.cli.root)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(folder / "daq.sock"))
        result = _sort(target, folder)
    assert_one_line_error(result, 2, str(folder / "daq.sock"), "socket", "remove it")
    target.assert_nothing_sent()


@pytest.mark.parametrize("command", [["deploy-job"], ["render-job"], ["policy-check"]])
def test_a_fifo_as_job_config_says_what_it_is(cli: Cli, command: List[str]) -> None:
    fifo = cli.root / "job.yaml"
    os.mkfifo(fifo)
    result = cli(*command, "--job-config", str(fifo), timeout=TIMEOUT)
    assert_one_line_error(result, 2, str(fifo), "FIFO", "not a regular file", "--job-config")
    assert "does not exist" not in result.stderr
    assert cli.local_jobs() == [] and cli.records() == []


def test_a_fifo_as_profile_file_or_workspace_says_what_it_is(cli: Cli) -> None:
    fifo = cli.root / "lab.yaml"
    os.mkfifo(fifo)
    job = cli.root / "job.yaml"
    job.write_text("container: {command: [python, -c, pass]}\n")
    result = cli("--profile-file", str(fifo), "render-job", "--job-config", str(job), timeout=TIMEOUT)
    assert_one_line_error(result, 2, str(fifo), "FIFO", "--profile-file")
    script = cli.root / "analysis.py"
    script.write_text("print(1)\n")
    result = cli("submit-workspace", "--workspace", str(fifo), "--script", str(script), timeout=TIMEOUT)
    assert_one_line_error(result, 2, str(fifo), "FIFO", "workspace")
    assert cli.data_files() == [] and cli.local_jobs() == [] and cli.records() == []


def test_a_fifo_as_the_job_config_of_a_submission_uploads_nothing(target: Target) -> None:
    fifo = target.cli.root / "job.yaml"
    os.mkfifo(fifo)
    result = target("submit-sorting", "--recording", str(_recording_folder(target.cli.root)),
                    "--job-config", str(fifo))
    assert_one_line_error(result, 2, str(fifo), "FIFO")
    target.assert_nothing_sent()


# --- empty recordings -----------------------------------------------------------------------
def test_an_empty_recording_file_is_refused_up_front(target: Target) -> None:
    empty = target.cli.root / "rec.nwb"
    empty.touch()
    result = _sort(target, _recording_folder(target.cli.root), empty)
    assert_one_line_error(result, 2, str(empty), "empty (0 bytes)")
    target.assert_nothing_sent()


def test_a_recording_folder_of_empty_files_is_refused_up_front(target: Target) -> None:
    folder = target.cli.root / "rec"
    folder.mkdir()
    (folder / "traces_cached_seg0.raw").touch()
    (folder / "binary.json").touch()
    result = _sort(target, folder)
    assert_one_line_error(result, 2, str(folder), "only empty files")
    target.assert_nothing_sent()


# --- links out of their folder --------------------------------------------------------------
def _workspace_submission(cli: Cli) -> List[str]:
    workspace = write_workspace(cli.root / "ws", x=1)
    script = cli.root / "analysis.py"
    script.write_text("print(1)\n")
    return ["submit-workspace", "--workspace", str(workspace), "--script", str(script)]


def test_an_input_that_links_outside_its_folder_is_refused(target: Target) -> None:
    cli = target.cli
    secret = _data(cli.root / "home" / ".ssh" / "id_ed25519", 4 * KiB)
    link = cli.root / "ws" / "params.json"
    args = _workspace_submission(cli)
    link.symlink_to(secret)
    result = target(*args, "--input", str(link))
    assert_one_line_error(result, 2, str(link), "links outside its folder", str(secret), "give that file's own path")
    target.assert_nothing_sent()


def test_a_recording_named_by_a_broken_link_is_refused(target: Target) -> None:
    # A recording named directly may link to a shared drive (see the unit tests); a
    # link whose target is gone (an unmounted drive) is refused before anything is sent.
    cli = target.cli
    link = cli.root / "mine" / "rec.nwb"
    link.parent.mkdir()
    link.symlink_to(cli.root / "nas" / "unmounted" / "rec.nwb")
    result = _sort(target, link)
    assert_one_line_error(result, 2, str(link), "broken link")
    target.assert_nothing_sent()


def test_a_broken_link_in_a_recording_folder_is_refused_not_skipped(target: Target) -> None:
    folder = _recording_folder(target.cli.root)
    (folder / "probe.json").symlink_to(folder / "gone.json")
    result = _sort(target, folder)
    assert_one_line_error(result, 2, str(folder / "probe.json"), "broken link")
    target.assert_nothing_sent()


def test_links_that_stay_in_their_folder_and_the_real_paths_are_still_sent(cli: Cli) -> None:
    # The checks refuse what they must and nothing more: a link to a file beside it, and
    # the real path of a file elsewhere, both go into the bundle.
    import json
    import zipfile

    args = _workspace_submission(cli)
    params = cli.root / "ws-inputs" / "params-v3.json"
    params.parent.mkdir()
    params.write_text('{"bin_ms": 5}')
    current = cli.root / "ws-inputs" / "params.json"
    current.symlink_to("params-v3.json")
    elsewhere = _data(cli.root / "nas" / "probe.bin", 4 * KiB)
    result = cli(*args, "--input", str(current), "--input", str(elsewhere), timeout=TIMEOUT)
    try:
        assert result.returncode == 0, result.stderr
        bundle = cli.data / "inputs" / result.keys["RUN_ID"] / "bundle.zip"
        with zipfile.ZipFile(bundle) as archive:
            manifest = json.loads(archive.read("manifest.json"))
            assert archive.read("inputs/params.json") == b'{"bin_ms": 5}'
        assert {f["path"] for f in manifest["files"]} >= {"inputs/params.json", "inputs/probe.bin"}
    finally:
        if result.returncode == 0:
            cli("job-delete", result.keys["JOB_NAME"])
