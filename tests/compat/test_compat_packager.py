"""spikebatch.artifact_packager as code written for spikelab.batch_jobs.artifact_packager
calls it: the layout, the manifest, the refusals, and nothing left behind on error."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import zipfile
from pathlib import Path

import pytest

from spikebatch.artifact_packager import package_analysis_bundle


@pytest.fixture
def inputs(tmp_path: Path) -> list[str]:
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "rec1.raw").write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    (folder / "sorting_config.json").write_text('{"sorter": {}}')
    (folder / "probe.json").write_text("{}")
    return [str(folder / name) for name in ("sorting_config.json", "rec1.raw", "probe.json")]


def test_the_bundle_has_the_reference_layout_and_manifest(inputs, tmp_path: Path) -> None:
    out = tmp_path / "out"
    path = package_analysis_bundle(input_paths=inputs, run_id="abc123", output_dir=str(out),
                                   output_format="sorting", metadata={"lab": "ephys", "n": 2},
                                   recording_files=["rec1.raw"])
    assert isinstance(path, str) and Path(path).is_absolute() and path == str(out.resolve() / "abc123.zip")
    with zipfile.ZipFile(path) as bundle:
        names = set(bundle.namelist()) - {"abc123/"}
        assert names == {"abc123/manifest.json", "abc123/sorting_config.json", "abc123/rec1.raw", "abc123/probe.json"}
        manifest = json.loads(bundle.read("abc123/manifest.json"))
        assert bundle.read("abc123/rec1.raw") == Path(inputs[1]).read_bytes()
    assert manifest["run_id"] == "abc123" and manifest["output_format"] == "sorting"
    assert manifest["metadata"] == {"lab": "ephys", "n": 2} and manifest["recording_files"] == ["rec1.raw"]
    assert [f["name"] for f in manifest["files"]] == ["sorting_config.json", "rec1.raw", "probe.json"]
    for entry, source in zip(manifest["files"], inputs):
        data = Path(source).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest()
        assert entry["size_bytes"] == len(data) and isinstance(entry["size_bytes"], int)
    assert sorted(p.name for p in out.iterdir()) == ["abc123.zip"]


def test_workspace_and_custom_bundles_need_no_recordings(inputs, tmp_path: Path) -> None:
    for fmt in ("workspace", "custom"):
        path = package_analysis_bundle(input_paths=inputs[:1], run_id=f"r-{fmt}", output_dir=str(tmp_path),
                                       output_format=fmt)
        with zipfile.ZipFile(path) as bundle:
            manifest = json.loads(bundle.read(f"r-{fmt}/manifest.json"))
        assert manifest["metadata"] == {} and "recording_files" not in manifest


@pytest.mark.parametrize("change, error, words", [
    ({"output_format": "zip"}, ValueError, "output_format"),
    ({"recording_files": None}, ValueError, "recording_files"),
    ({"run_id": "../escape"}, ValueError, "run_id"),
    ({"run_id": "a\\b"}, ValueError, "run_id"),
    ({"run_id": ""}, ValueError, "run_id"),
    ({"metadata": {"when": object()}}, ValueError, "metadata"),
    ({"recording_files": ["other.raw"]}, ValueError, "other.raw"),
    ({"extra_input": "manifest.json"}, ValueError, "manifest.json"),
    ({"extra_input": "dup/rec1.raw"}, ValueError, "rec1.raw"),
    ({"missing_input": "gone.raw"}, FileNotFoundError, "gone.raw"),
])
def test_bad_arguments_are_refused_and_nothing_is_left(inputs, tmp_path: Path, change, error, words) -> None:
    out = tmp_path / "out"
    out.mkdir()
    arguments = dict(input_paths=list(inputs), run_id="r1", output_dir=str(out), output_format="sorting",
                     recording_files=["rec1.raw"])
    if "extra_input" in change:
        extra = tmp_path / change.pop("extra_input")
        extra.parent.mkdir(parents=True, exist_ok=True)
        extra.write_text("x")
        arguments["input_paths"].append(str(extra))
    if "missing_input" in change:
        arguments["input_paths"].append(str(tmp_path / change.pop("missing_input")))
    arguments.update(change)
    temp_before = set(os.listdir(tempfile.gettempdir()))
    with pytest.raises(error, match=words.replace("\\", "\\\\").replace(".", r"\.")) as caught:
        package_analysis_bundle(**arguments)
    assert "\n" not in str(caught.value)
    assert list(out.iterdir()) == []
    assert set(os.listdir(tempfile.gettempdir())) - temp_before == set()


def test_a_failure_while_writing_leaves_no_partial_zip(inputs, tmp_path: Path) -> None:
    # /proc/self/mem is a regular file whose read fails (EIO): the zip is half written
    # when it does, after the first inputs went in.
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(OSError):
        package_analysis_bundle(input_paths=[*inputs, "/proc/self/mem"], run_id="r1", output_dir=str(out),
                                output_format="custom")
    assert list(out.iterdir()) == []
