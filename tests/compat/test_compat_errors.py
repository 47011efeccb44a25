"""Exceptions as spikelab.batch_jobs code catches them: spikebatch's errors also derive
from the built-in the reference raises in the same situation, so ``except ValueError``,
``except FileNotFoundError`` and ``except RuntimeError`` in ported code still catch
them, while each keeps spikebatch's one-line message and exit code."""

from __future__ import annotations

from pathlib import Path

import pytest

from spikebatch import errors
from spikebatch.errors import (
    BackendUnavailableError,
    ConfigError,
    InputFileNotFoundError,
    InvalidManifestError,
    InvalidURIError,
    JobTooLargeError,
    NamespaceMismatchError,
    ObjectNotFoundError,
    PolicyBlockedError,
    ProfileNotFoundError,
    SpikebatchError,
)
from spikebatch.policy import PolicyFinding


pytestmark = pytest.mark.usefixtures("isolated_home")


@pytest.mark.parametrize("error, builtin", [
    (ConfigError, ValueError),
    (ProfileNotFoundError, ValueError),
    (InvalidURIError, ValueError),
    (InvalidManifestError, ValueError),
    (JobTooLargeError, ValueError),
    (NamespaceMismatchError, ValueError),
    (InputFileNotFoundError, FileNotFoundError),
    (InputFileNotFoundError, ValueError),
    (ObjectNotFoundError, FileNotFoundError),
    (BackendUnavailableError, RuntimeError),
    (PolicyBlockedError, RuntimeError),
])
def test_each_error_is_also_the_builtin_the_reference_raises(error, builtin):
    assert issubclass(error, builtin) and issubclass(error, SpikebatchError)


def test_every_config_error_is_a_value_error():
    configs = [cls for cls in vars(errors).values()
               if isinstance(cls, type) and issubclass(cls, ConfigError)]
    assert len(configs) >= 5
    assert all(issubclass(cls, ValueError) for cls in configs)


@pytest.mark.parametrize("error, builtin, exit_code", [
    (ConfigError("profile x: bad   field\n fix it"), ValueError, 2),
    (ObjectNotFoundError("object s3://b/k not found;\ncheck the URI"), FileNotFoundError, 2),
    (InputFileNotFoundError("script run.py does not exist; check the path"), FileNotFoundError, 2),
    (BackendUnavailableError("cannot reach the API server; check the kubeconfig"), RuntimeError, 3),
])
def test_caught_as_the_builtin_it_keeps_one_line_and_its_exit_code(error, builtin, exit_code):
    with pytest.raises(builtin) as info:
        raise error
    caught = info.value
    assert "\n" not in str(caught) and "  " not in str(caught)
    assert str(caught) == caught.message == caught.args[0]
    assert caught.exit_code == exit_code


def test_a_missing_object_reads_like_a_file_not_found():
    error = ObjectNotFoundError("object s3://b/k not found at http://s3; check the URI")
    assert isinstance(error, OSError) and error.errno is None
    assert str(error) == "object s3://b/k not found at http://s3; check the URI"


def test_policy_blocked_error_names_the_blocking_codes():
    error = PolicyBlockedError([PolicyFinding("sleep_in_batch_job", "BLOCK", "no sleeping"),
                                PolicyFinding("request_limit_mismatch", "WARN", "tune")])
    assert isinstance(error, RuntimeError)
    assert "sleep_in_batch_job: no sleeping" in str(error) and "request_limit_mismatch" not in str(error)
    assert [f.code for f in error.findings] == ["sleep_in_batch_job", "request_limit_mismatch"]


# --- raised by the public API, caught as a porting user would -------------------------


def test_an_unknown_profile_name_is_a_value_error():
    from spikebatch.profiles import load_profile_from_name

    with pytest.raises(ValueError, match="no-such-cluster"):
        load_profile_from_name("no-such-cluster")


def test_a_policy_block_at_submission_is_a_runtime_error(tmp_path: Path):
    from spikebatch import RunSession

    script = tmp_path / "analysis.py"
    script.write_text("print('hello')\n")
    session = RunSession.from_profile("local")
    try:
        session.submit_workspace_job(workspace={}, script=str(script),
                                     job_spec={"container": {"command": ["sleep", "infinity"]}})
    except RuntimeError as exc:
        assert "sleep_in_batch_job" in str(exc) and "allow_policy_risk" in str(exc)
    else:
        pytest.fail("a job that sleeps forever was submitted")


def test_reading_a_missing_stored_object_is_a_file_not_found_error():
    from spikebatch import RunSession

    store = RunSession.from_profile("local").storage_client
    uri = store.build_uri(run_id="run-compat-0001", filename="missing.txt")
    with pytest.raises(FileNotFoundError) as info:
        store.read_bytes(uri)
    assert "missing.txt" in str(info.value)


def test_a_missing_script_or_recording_is_a_file_not_found_error(tmp_path) -> None:
    # Ported code catches FileNotFoundError for a path it named that is not there.
    from spikelab.workspace.workspace import AnalysisWorkspace

    from spikebatch import JobSpec, RunSession

    session = RunSession.from_profile("local")
    spec = JobSpec(container={"command": ["python"]})
    with pytest.raises(FileNotFoundError, match="does not exist"):
        session.submit_workspace_job(workspace=AnalysisWorkspace(name="w"), script=str(tmp_path / "missing.py"),
                                     job_spec=spec)
    with pytest.raises(FileNotFoundError):
        session.submit_workspace_job(workspace=str(tmp_path / "no-such-workspace"), script=__file__, job_spec=spec)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        session.submit_sorting_job(recording_paths=[str(tmp_path / "missing.nwb")], job_spec=spec)
    # Nothing was written on the way: no temp files, nothing staged.
    assert sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*")) == ["tmp"]


def test_a_missing_profile_file_is_a_file_not_found_error(tmp_path) -> None:
    from spikebatch.profiles import load_cluster_profile

    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cluster_profile(str(tmp_path / "no-such-profile.yaml"))
