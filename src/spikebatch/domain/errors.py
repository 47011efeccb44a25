"""The one exception hierarchy of spikebatch.

Every error a user can cause or meet is a SpikebatchError whose ``str()`` is a single
actionable line: what went wrong, naming the field / URI / resource, and the likely fix.
The CLI prints that line and maps the class to an exit code (see ``exit_code``).
Messages never contain credential values; adapters build them from names, never from
the secrets themselves.

Each class also derives from the built-in exception spikelab.batch_jobs raises in the
same situation, so code ported from it keeps catching them: bad configuration, input
and manifests are ``ValueError``; a missing file or object is ``FileNotFoundError``; a
policy block and an unreachable (or disabled) backend are ``RuntimeError``.
"""

from __future__ import annotations

from typing import Any



class SpikebatchError(Exception):
    """Base of every error spikebatch raises on purpose."""

    #: Process exit code the CLI uses for this kind of error.
    exit_code: int = 2

    def __init__(self, message: str) -> None:
        # One line, always: a multi-line message would break the CLI contract.
        super().__init__(" ".join(str(message).split()))

    @property
    def message(self) -> str:
        return self.args[0]


# --- configuration and input (exit 2) -------------------------------------------------
class ConfigError(SpikebatchError, ValueError):
    """A profile, job config or argument is malformed or names something unknown."""


class InputFileNotFoundError(ConfigError, FileNotFoundError):
    """A local file or folder the user named (a script, a recording, a workspace, a
    job config) does not exist: bad input (exit 2), and a ``FileNotFoundError`` as the
    reference raises for it."""


class ProfileNotFoundError(ConfigError):
    """A profile name matched no built-in or user profile."""


class PolicyBlockedError(SpikebatchError, RuntimeError):
    """Policy preflight returned BLOCK findings and allow_policy_risk was not set."""

    def __init__(self, findings: list) -> None:
        self.findings = list(findings)
        blocked = [f for f in self.findings if getattr(f, "level", None) == "BLOCK"]
        detail = "; ".join(f"{f.code}: {f.message}" for f in blocked)
        super().__init__(
            f"policy blocked the job ({detail}); fix the job config or pass "
            "allow_policy_risk=True / --allow-policy-risk to override"
        )


# --- storage (exit 3 when unreachable, 2 otherwise) -----------------------------------
class StorageError(SpikebatchError):
    """Base of artifact-storage failures."""

    exit_code = 3


class InvalidURIError(StorageError, ConfigError):
    """A storage URI is malformed or of the wrong scheme for the chosen adapter."""

    exit_code = 2


class ObjectNotFoundError(StorageError, FileNotFoundError):
    """The object (or output prefix) does not exist."""

    exit_code = 2


class BucketNotFoundError(StorageError):
    """The bucket does not exist."""

    exit_code = 2


class StorageAccessDeniedError(StorageError):
    """Credentials were rejected or lack permission."""

    exit_code = 2


class StorageUnavailableError(StorageError):
    """The storage endpoint could not be reached."""


class IntegrityError(SpikebatchError):
    """Downloaded or staged bytes do not match their recorded sha256 / size, or a
    path would escape its target folder."""


class UnsafePathError(IntegrityError):
    """A key or archive member would be written outside the target folder."""


# --- job backend ----------------------------------------------------------------------
class BackendError(SpikebatchError):
    """Base of job-backend failures."""

    exit_code = 3


class BackendUnavailableError(BackendError, RuntimeError):
    """The API server (or kubectl, or the local state folder) cannot be reached."""


class BackendAuthError(BackendError):
    """401/403: names the verb, the resource and the namespace."""

    exit_code = 2


class JobNotFoundError(BackendError):
    exit_code = 2


class JobDeletedError(JobNotFoundError):
    """The Job existed and was deleted (by someone else, a TTL, ``job-delete``) while
    spikebatch was following it (``stream_logs(follow=True)``). Exit 5, the code of a
    job deleted while it was waited on."""

    exit_code = 5


class JobConflictError(BackendError):
    """A Job of that name already exists."""

    exit_code = 2


class InvalidManifestError(BackendError, ValueError):
    """The API server (or local validation) rejected the manifest (HTTP 422)."""

    exit_code = 2

    def __init__(self, message: str, causes: list[str] | None = None) -> None:
        self.causes = list(causes or [])
        super().__init__(message)


class JobTooLargeError(InvalidManifestError, ConfigError):
    """The API server refused the Job as larger than it accepts in one request (HTTP
    413, or etcd's "request is too large"): bad input, not a backend outage (exit 2)."""

    exit_code = 2


class NamespaceMismatchError(BackendError, ValueError):
    """A manifest targets a namespace other than the backend's."""

    exit_code = 2


class JobFailedError(SpikebatchError):
    """A waited-for job ended Failed (exit 1)."""

    exit_code = 1


def __getattr__(name: str) -> Any:
    # JobSpecValidationError is also a pydantic ValidationError; it lives in a module of
    # its own so that importing the error classes (every CLI start) loads no pydantic.
    if name == "JobSpecValidationError":
        from .validation_error import JobSpecValidationError

        return JobSpecValidationError
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
