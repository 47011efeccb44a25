"""Credential resolution: explicit arguments > environment > the standard files.

AWS keys come from the arguments, then AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY /
AWS_SESSION_TOKEN, then the shared credentials file (AWS_SHARED_CREDENTIALS_FILE or
~/.aws/credentials, section AWS_PROFILE or "default"). An explicit session token wins
over one from the environment or the file. The kubeconfig path comes from the
argument, then KUBECONFIG (first non-empty entry), then ~/.kube/config when it exists.
"""

from __future__ import annotations

import configparser
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Optional

from ...domain.errors import ConfigError
from ...domain.redaction import MASK


@dataclass(frozen=True)
class ResolvedCredentials:
    """Where the kubeconfig is and which AWS keys to use. Its repr never shows a key."""

    kubeconfig: Optional[str]
    aws_access_key_id: Optional[str] = field(default=None, repr=False)
    aws_secret_access_key: Optional[str] = field(default=None, repr=False)
    aws_session_token: Optional[str] = field(default=None, repr=False)
    #: Where the AWS keys came from: "explicit", "environment", "file:<path>" or None.
    aws_source: Optional[str] = None

    def __repr__(self) -> str:
        shown = lambda v: MASK if v else None  # noqa: E731 - tiny formatter
        return (
            f"ResolvedCredentials(kubeconfig={self.kubeconfig!r}, "
            f"aws_access_key_id={shown(self.aws_access_key_id)!r}, "
            f"aws_secret_access_key={shown(self.aws_secret_access_key)!r}, "
            f"aws_session_token={shown(self.aws_session_token)!r}, aws_source={self.aws_source!r})"
        )

    __str__ = __repr__

    @property
    def secret_values(self) -> list[str]:
        """Values to mask wherever they might appear (logs, manifests, errors)."""
        return [v for v in (self.aws_access_key_id, self.aws_secret_access_key, self.aws_session_token) if v]


def _where(exc: configparser.Error) -> str:
    """Line number(s) of a configparser error, without the line's text."""
    lineno = getattr(exc, "lineno", None)  # MissingSectionHeaderError, Duplicate*Error
    errors = getattr(exc, "errors", None)  # ParsingError: [(lineno, line text), ...]
    if isinstance(lineno, int):
        lines = [lineno]
    elif errors:
        lines = sorted({entry[0] for entry in errors})
    else:
        lines = []
    if not lines:
        return ""
    return f" (line{'s' if len(lines) > 1 else ''} {', '.join(map(str, lines))})"


def _aws_from_file(env: Mapping[str, str]) -> tuple[Optional[str], Optional[str], Optional[str], Optional[str]]:
    path = Path(env.get("AWS_SHARED_CREDENTIALS_FILE") or Path.home() / ".aws" / "credentials").expanduser()
    if not path.is_file():
        return None, None, None, None
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path)
    except configparser.Error as exc:
        # configparser's messages quote the offending line, which may be a secret key:
        # name the file and the line numbers only, never the contents.
        raise ConfigError(
            f"AWS credentials file {path} is malformed{_where(exc)}; it must be INI with "
            "[profile] sections of 'aws_access_key_id = ...' lines"
        ) from None
    section = env.get("AWS_PROFILE") or "default"
    if not parser.has_section(section):
        return None, None, None, None
    get = lambda k: parser.get(section, k, fallback=None)  # noqa: E731
    return get("aws_access_key_id"), get("aws_secret_access_key"), get("aws_session_token"), f"file:{path}"


def user_secret_values(env: Optional[Mapping[str, str]] = None) -> list[str]:
    """The user's own credential values, to mask in everything shown or stored: the AWS
    keys of the environment and of the shared credentials file (its AWS_PROFILE
    section). Never raises: a file that cannot be parsed holds no key spikebatch would
    use, and showing a manifest must not fail over it."""
    env = os.environ if env is None else env
    values = [env.get(name) for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN")]
    try:
        values += list(_aws_from_file(env)[:3])
    except (ConfigError, OSError, UnicodeDecodeError):
        pass  # unreadable or malformed: resolve_credentials reports it where the keys are used
    return list(dict.fromkeys(v for v in values if v))


def resolve_credentials(
    *,
    kubeconfig: Optional[str] = None,
    aws_access_key_id: Optional[str] = None,
    aws_secret_access_key: Optional[str] = None,
    aws_session_token: Optional[str] = None,
    env: Optional[Mapping[str, str]] = None,
) -> ResolvedCredentials:
    """Resolve credentials: explicit > environment > standard files."""
    env = os.environ if env is None else env

    if aws_access_key_id or aws_secret_access_key:
        key, secret, token, source = aws_access_key_id, aws_secret_access_key, aws_session_token, "explicit"
    elif env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        key, secret, token, source = (
            env["AWS_ACCESS_KEY_ID"],
            env["AWS_SECRET_ACCESS_KEY"],
            aws_session_token or env.get("AWS_SESSION_TOKEN"),
            "environment",
        )
    else:
        key, secret, token, source = _aws_from_file(env)
        if source is not None and aws_session_token:
            token = aws_session_token

    # `export KUBECONFIG=$KUBECONFIG:/path` leaves empty entries: skip them.
    kube_entries = [entry for entry in env.get("KUBECONFIG", "").split(os.pathsep) if entry]
    if kubeconfig:
        kube = str(Path(kubeconfig).expanduser())
    elif kube_entries:
        kube = str(Path(kube_entries[0]).expanduser())
    else:
        default = Path.home() / ".kube" / "config"
        kube = str(default) if default.is_file() else None

    return ResolvedCredentials(
        kubeconfig=kube,
        aws_access_key_id=key,
        aws_secret_access_key=secret,
        aws_session_token=token,
        aws_source=source,
    )
