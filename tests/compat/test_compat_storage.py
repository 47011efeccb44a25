"""spikebatch.storage_s3 as code written for spikelab.batch_jobs.storage_s3 calls it:
``S3StorageClient`` with the reference's keyword arguments against the test
environment's real MinIO, its calls with their keywords and string paths; what each
call stored is checked with a plain boto3 client, and the string answers against the
installed reference's own client (the oracle) on the same server."""

from __future__ import annotations

import inspect
import warnings
from pathlib import Path

import pytest

from spikebatch.errors import ConfigError, InvalidURIError, ObjectNotFoundError
from spikebatch.models import StoragePathTemplates
from spikebatch.storage_s3 import S3StorageClient


METHODS = ("__init__", "build_uri", "upload_file", "upload_bundle", "output_prefix_for_run",
           "logs_prefix_for_run", "download_file", "download_output", "list_output_files")


def _reference_class():
    from spikelab.batch_jobs.storage_s3 import S3StorageClient as reference

    return reference


def test_methods_signatures_and_the_listing_cap_are_the_references() -> None:
    reference = _reference_class()
    for name in METHODS:
        theirs = inspect.signature(getattr(reference, name)).parameters
        ours = inspect.signature(getattr(S3StorageClient, name)).parameters
        assert list(ours)[: len(theirs)] == list(theirs), name
        for pname, param in theirs.items():
            assert (ours[pname].kind, ours[pname].default) == (param.kind, param.default), (name, pname)
        assert all(p.default is not inspect.Parameter.empty for p in list(ours.values())[len(theirs):]), name
    assert S3StorageClient.DEFAULT_LIST_OUTPUT_LIMIT == reference.DEFAULT_LIST_OUTPUT_LIMIT == 10_000


def test_paths_without_a_server(tmp_path) -> None:
    # Pure string calls need no server (nor credentials): as the reference's.
    client = S3StorageClient(prefix="s3://lab-bucket/runs")  # no trailing "/": one is added
    assert client.prefix == "s3://lab-bucket/runs/"
    assert client.build_uri(run_id="r1", filename="bundle.zip") == "s3://lab-bucket/runs/inputs/r1/bundle.zip"
    # outputs / logs templates carry no {filename}: the run's prefix, the filename ignored
    assert client.build_uri(run_id="r1", filename="x.png", category="outputs") == "s3://lab-bucket/runs/outputs/r1/"
    assert client.build_uri(run_id="r1", filename="", category="logs") == "s3://lab-bucket/runs/logs/r1/"
    assert client.output_prefix_for_run("r1") == "s3://lab-bucket/runs/outputs/r1/"
    assert client.logs_prefix_for_run("r1") == "s3://lab-bucket/runs/logs/r1/"

    templates = StoragePathTemplates(inputs="{prefix}in/{run_id}/{filename}", outputs="{prefix}out/{run_id}/",
                                     logs="{prefix}log/{run_id}/")
    custom = S3StorageClient(prefix="s3://lab-bucket/", path_templates=templates)
    assert custom.build_uri(run_id="r2", filename="b.zip") == "s3://lab-bucket/in/r2/b.zip"
    assert custom.output_prefix_for_run("r2") == "s3://lab-bucket/out/r2/"

    for unset in (None, ""):
        bare = S3StorageClient(prefix=unset)
        assert bare.prefix is None
        assert bare.output_prefix_for_run("r1") == bare.logs_prefix_for_run("r1") == ""
        assert bare.list_output_files("r1") == []
        with pytest.raises(InvalidURIError, match="storage prefix is not set"):
            bare.build_uri(run_id="r1", filename="x")


def test_string_answers_match_the_reference_client() -> None:
    reference = _reference_class()
    for prefix in ("s3://lab-bucket/runs", "s3://lab-bucket/runs/", "", None):
        ours, theirs = S3StorageClient(prefix=prefix), reference(prefix=prefix)
        assert ours.prefix == theirs.prefix, prefix
        assert ours.output_prefix_for_run("r1") == theirs.output_prefix_for_run("r1")
        assert ours.logs_prefix_for_run("r1") == theirs.logs_prefix_for_run("r1")
        if prefix:
            for category in ("inputs", "outputs", "logs"):
                assert (ours.build_uri(run_id="r1", filename="f.bin", category=category)
                        == theirs.build_uri(run_id="r1", filename="f.bin", category=category)), category


def test_an_unknown_category_is_refused_not_sent_to_inputs() -> None:
    # The reference warns and writes under inputs/ (a typo lands in the wrong place);
    # spikebatch refuses, naming the categories.
    client = S3StorageClient(prefix="s3://lab-bucket/")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(InvalidURIError, match="unknown storage category 'output'.*inputs, outputs, logs"):
            client.build_uri(run_id="r1", filename="x", category="output")


# ------------------------------------------------------------------ against MinIO

@pytest.fixture
def lab(minio_server, s3_bucket, tmp_path):
    """What a porting user builds: the client from keyword arguments; plus a plain boto3
    client to see what was stored, and the reference's own client on the same server."""
    kwargs = dict(prefix=f"s3://{s3_bucket}/lab", endpoint_url=minio_server.endpoint_url,
                  region_name=minio_server.region, aws_access_key_id=minio_server.access_key,
                  aws_secret_access_key=minio_server.secret_key)
    return {"client": S3StorageClient(**kwargs), "reference": _reference_class()(**kwargs),
            "inspect": minio_server.boto3_client(), "bucket": s3_bucket, "tmp": tmp_path}


def _keys(lab, under: str = "") -> list[str]:
    pages = lab["inspect"].get_paginator("list_objects_v2").paginate(Bucket=lab["bucket"], Prefix=under)
    return sorted(o["Key"] for p in pages for o in p.get("Contents", []))


@pytest.mark.integration
def test_upload_and_download_with_the_references_keywords_and_string_paths(lab) -> None:
    client, tmp = lab["client"], lab["tmp"]
    bundle = tmp / "analysis_bundle.zip"
    bundle.write_bytes(b"PK\x05\x06" + b"\0" * 18)

    uri = client.upload_bundle(local_zip=str(bundle), run_id="run-1")
    assert uri == f"s3://{lab['bucket']}/lab/inputs/run-1/analysis_bundle.zip"
    assert _keys(lab) == ["lab/inputs/run-1/analysis_bundle.zip"]

    other = tmp / "notes.txt"
    other.write_text("hello")
    target = client.build_uri(run_id="run-1", filename="notes.txt")
    assert client.upload_file(local_path=str(other), s3_uri=target) == target

    back = client.download_file(s3_uri=target, local_path=str(tmp / "back" / "notes.txt"))
    assert isinstance(back, str) and back == str(tmp / "back" / "notes.txt")
    assert Path(back).read_text() == "hello"

    with pytest.raises(ObjectNotFoundError):  # a FileNotFoundError once errors get their builtin bases
        client.upload_file(local_path=str(tmp / "absent.bin"), s3_uri=target)


@pytest.mark.integration
def test_a_runs_outputs_listed_and_downloaded_by_run_id(lab) -> None:
    client, reference, tmp = lab["client"], lab["reference"], lab["tmp"]
    prefix = client.output_prefix_for_run("run-2")
    for rel, data in (("workspace.h5", b"h5"), ("workspace.json", b"{}"), ("figures/raster.png", b"png")):
        lab["inspect"].put_object(Bucket=lab["bucket"], Key=f"lab/outputs/run-2/{rel}", Body=data)
    lab["inspect"].put_object(Bucket=lab["bucket"], Key="lab/outputs/run-20/other.txt", Body=b"x")

    keys = client.list_output_files("run-2")
    assert keys == ["lab/outputs/run-2/figures/raster.png", "lab/outputs/run-2/workspace.h5",
                    "lab/outputs/run-2/workspace.json"]
    # The same keys as the reference's, less its bug: its listing prefix loses the final
    # "/" and so also returns run-20's objects (a deliberate difference).
    theirs = sorted(reference.list_output_files("run-2"))
    assert [k for k in theirs if k.startswith("lab/outputs/run-2/")] == keys
    assert "lab/outputs/run-20/other.txt" in theirs
    assert client.list_output_files("run-2", max_keys=3) == keys
    assert client.list_output_files("nothing-yet") == []

    got = client.download_output(run_id="run-2", filename="workspace.h5", local_dir=str(tmp / "out"))
    assert isinstance(got, str) and Path(got) == (tmp / "out" / "workspace.h5").absolute()
    assert Path(got).read_bytes() == b"h5"
    nested = client.download_output(run_id="run-2", filename="figures/raster.png", local_dir=str(tmp / "out"))
    assert Path(nested).read_bytes() == b"png"

    # spikebatch's own prefix-addressed calls, under their own names
    assert client.list_outputs(prefix) == [f"s3://{lab['bucket']}/{k}" for k in keys]
    paths = client.download_outputs(output_prefix=prefix, local_dir=tmp / "all")
    assert sorted(p.relative_to(tmp / "all").as_posix() for p in paths) == [
        "figures/raster.png", "workspace.h5", "workspace.json"]


@pytest.mark.integration
def test_more_outputs_than_max_keys_and_traversal_are_refused(lab) -> None:
    client, tmp = lab["client"], lab["tmp"]
    for i in range(3):
        lab["inspect"].put_object(Bucket=lab["bucket"], Key=f"lab/outputs/run-3/f{i}.txt", Body=b"x")
    with pytest.raises(ConfigError, match="more than max_keys=2 objects under .*outputs/run-3/; pass a larger"):
        client.list_output_files("run-3", max_keys=2)
    for bad in ("../escape.txt", "../../etc/passwd", "/abs.txt"):
        with pytest.raises(InvalidURIError, match="is refused"):
            client.download_output(run_id="run-3", filename=bad, local_dir=str(tmp / "dl"))
    assert not (tmp / "dl").exists() and not (tmp / "escape.txt").exists()


@pytest.mark.integration
def test_refusals_are_value_errors_as_the_references(lab) -> None:
    client, tmp = lab["client"], lab["tmp"]
    lab["inspect"].put_object(Bucket=lab["bucket"], Key="lab/outputs/run-4/a.txt", Body=b"x")
    lab["inspect"].put_object(Bucket=lab["bucket"], Key="lab/outputs/run-4/b.txt", Body=b"x")
    with pytest.raises(ValueError):
        client.list_output_files("run-4", max_keys=1)
    with pytest.raises(ValueError):
        client.download_output(run_id="run-4", filename="../a.txt", local_dir=str(tmp / "dl"))
    with pytest.raises(ValueError):
        S3StorageClient(prefix=None).build_uri(run_id="r", filename="x")
