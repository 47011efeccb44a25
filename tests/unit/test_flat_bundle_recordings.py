"""Which recordings a reference-style sorting bundle declares (its manifest.json's
recording_files), and the bundles the sorting entry module refuses before sorting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from spikebatch.application.flat_bundle_jobs import _declared_recordings
from spikebatch.errors import IntegrityError, SpikebatchError


def _bundle(root: Path, manifest: object, files: list[str], raw: str | None = None) -> Path:
    folder = root / "run-1"  # package_analysis_bundle's layout: one top folder
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_bytes(b"x")
    (folder / "manifest.json").write_text(raw if raw is not None else json.dumps(manifest))
    return root


def test_the_declared_recordings_are_found_beside_the_manifest(tmp_path: Path) -> None:
    root = _bundle(tmp_path, {"recording_files": ["b.raw", "a.h5"]}, ["a.h5", "b.raw", "probe.json"])
    assert [p.name for p in _declared_recordings(root)] == ["b.raw", "a.h5"]


@pytest.mark.parametrize("manifest, files, raw, error, message", [
    ({}, [], None, SpikebatchError, "declares no recording_files"),
    ({"recording_files": ["gone.raw"]}, [], None, IntegrityError, "'gone.raw' declared in manifest.json is not in"),
    ({"recording_files": ["rec.raw", "rec.h5"]}, ["rec.raw", "rec.h5"], None, SpikebatchError, "share the stem 'rec'"),
    (None, [], "{not json", IntegrityError, "manifest.json is not JSON"),
])
def test_a_bundle_that_cannot_be_sorted_is_refused_naming_why(tmp_path: Path, manifest, files, raw, error,
                                                              message) -> None:
    with pytest.raises(error, match=message):
        _declared_recordings(_bundle(tmp_path, manifest, files, raw))
