"""The compatibility suite: spikebatch called exactly as code written for
spikelab.batch_jobs (SpikeLab 0.1.2) calls it, with only the import root changed.

The installed reference package is the oracle for names, signatures and its own
profile files; product code never imports it for these paths.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def reference_package_dir() -> Path:
    """The installed ``spikelab/batch_jobs`` folder (a test extra of ours)."""
    import spikelab

    folder = Path(spikelab.__file__).parent / "batch_jobs"
    assert (folder / "profiles" / "defaults.yaml").is_file(), folder
    return folder


@pytest.fixture(scope="session")
def reference_profile_files(reference_package_dir: Path) -> dict[str, Path]:
    """The reference's own built-in profile YAML files, by profile name."""
    return {p.stem: p for p in sorted((reference_package_dir / "profiles").glob("*.yaml"))}


@pytest.fixture
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Local sessions keep their state, data and temp files under tmp_path (so a test
    can also check that nothing was left behind)."""
    for var, sub in (("SPIKEBATCH_STATE_DIR", "state"), ("SPIKEBATCH_DATA_DIR", "data"),
                     ("SPIKEBATCH_CACHE_DIR", "cache")):
        monkeypatch.setenv(var, str(tmp_path / sub))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp_path / "tmp"))
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    return tmp_path


@pytest.fixture
def session(isolated_home: Path):
    """A library session on the local profile, as ``RunSession.from_profile("local")``."""
    from spikebatch.session import RunSession

    return RunSession.from_profile("local")
