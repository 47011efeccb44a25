"""Masking of secrets in maps, manifests and text before they are shown or stored, and
recognising values that look like credentials (for the policy's warning)."""

from __future__ import annotations

import math
import re
from collections import Counter
from typing import Any, Iterable, List, Optional

MASK = "***REDACTED***"

#: Keys whose values are secret by name. Matched as whole words of the key, so
#: "AWS_SECRET_ACCESS_KEY" and "api-token" match but "monkey" or "keyboard" do not.
_SENSITIVE_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "CREDENTIALS")
#: A key ending in one of these *names* a secret ("secretName", "secret_name",
#: "secretKeyRef") or says where one is kept ("AWS_SHARED_CREDENTIALS_FILE",
#: "TLS_KEY_PATH"): its value is a reference a user needs to see, not a secret.
_REFERENCE_WORDS = ("NAME", "NAMES", "REF", "REFS", "FILE", "FILES", "PATH", "PATHS", "DIR", "DIRS")
#: Word boundaries: separators, lower->Upper ("apiKey") and the end of an acronym before
#: a capitalised word ("APIKey", "DBPassword", "JWTToken").
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

#: Secret values shorter than this are not masked inside other text: masking "a" would
#: shred every message while protecting nothing.
_MIN_VALUE_LEN = 4
#: A value found under a secret name (``MY_API_TOKEN: ...``) is masked wherever else it
#: appears too (an argument, an annotation), when it is at least this long: a short
#: value ("true", "1") would mask unrelated text and is no real credential anyway.
_MIN_FOUND_LEN = 8


def is_sensitive_key(key: str) -> bool:
    words = [w.upper() for w in _WORD_SPLIT.split(str(key)) if w]
    # A bare "key" names *which* entry of a secret is meant (secretKeyRef.key, an S3
    # object key), not a secret value, so it alone does not make a value secret.
    if words == ["KEY"] or (words and words[-1] in _REFERENCE_WORDS):
        return False
    return any(word in words for word in _SENSITIVE_WORDS)


def redact_text(text: str, secret_values: Iterable[Optional[str]]) -> str:
    """``text`` with every known secret value replaced by the mask."""
    for value in sorted({v for v in secret_values if v and len(v) >= _MIN_VALUE_LEN}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


#: Keys whose mapping is an environment (name -> value): a JobSpec's ``env``, a hook's
#: ``env_defaults``. Their values, like those of a Job's env list, are also judged by
#: shape (``credential_shape``), whatever the variable is called.
_ENV_MAP_KEYS = ("env", "env_defaults")
#: Keys whose mapping holds the *names* of secrets by role (a profile's
#: ``default_secrets_mapping: {s3_credentials_secret: prp-s3-credentials}``): its keys
#: say "secret" but its values are names a user needs to see.
_SECRET_NAME_MAP_KEYS = ("default_secrets_mapping",)


def _secret_children(node: dict, env_map: Any) -> List[Any]:
    """The keys of ``node`` whose (scalar) values are secrets: by the key's name; in a
    Kubernetes env entry (``{"name": ..., "value": ...}``) by the variable's name; in
    an env entry or an environment map also by the value's shape."""
    if env_map == "names":
        return []
    keys = []
    name = node.get("name")
    env_entry = isinstance(name, str) and "value" in node
    for key, value in node.items():
        if not isinstance(value, (str, bytes, int, float)) or isinstance(value, bool):
            continue
        if is_sensitive_key(str(key)):
            keys.append(key)
        elif env_entry and key == "value" and (is_sensitive_key(name) or
                                               (isinstance(value, str) and credential_shape(value))):
            keys.append(key)
        elif env_map and isinstance(value, str) and credential_shape(value):
            keys.append(key)
    return keys


def _child_kind(key: Any) -> Any:
    """How the mapping under ``key`` is judged: "names" (values are secret names),
    True (an environment: values judged by shape too) or False."""
    return "names" if key in _SECRET_NAME_MAP_KEYS else key in _ENV_MAP_KEYS


def secret_values_in(data: Any) -> List[str]:
    """The plain values ``data`` holds under secret names: the value of a key whose name
    says it is secret (``{"DB_PASSWORD": "..."}``, a profile's ``env_defaults``), of a
    Kubernetes env entry with such a name (``{"name": "MY_API_TOKEN", "value": ...}``),
    and env values that look like credentials. Values shorter than a few characters
    are left out (see ``_MIN_FOUND_LEN``)."""
    found: List[str] = []

    def walk(node: Any, env_map: bool = False) -> None:
        if isinstance(node, dict):
            secret = _secret_children(node, env_map)
            for key, value in node.items():
                if key in secret:
                    if isinstance(value, str) and len(value) >= _MIN_FOUND_LEN and value not in found:
                        found.append(value)
                else:
                    walk(value, _child_kind(key))
        elif isinstance(node, (list, tuple)):
            for item in node:
                walk(item)

    walk(data)
    return found


#: How a key that is not set (a None value) is shown by ``redact_sensitive_map``, as the
#: reference shows it: "not configured" stays distinct from "configured but empty".
UNSET = "<unset>"


def redact_document(data: Any, secret_values: Iterable[Optional[str]] = ()) -> Any:
    """A copy of ``data`` (nested dicts / lists / strings) with secrets masked.

    Masks (1) the value of any key whose name says it is secret, (2) in Kubernetes env
    lists (``{"name": ..., "value": ...}``), the value of a variable with such a name,
    (3) env values (env lists, ``env`` / ``env_defaults`` maps) that look like
    credentials (an AWS access key id, a long random token), (4) every known secret
    value wherever it appears in any string, and (5) the values found by (1)-(3)
    wherever else they appear (an argument that repeats a token). None stays None.
    """
    known = [v for v in secret_values if v] + secret_values_in(data)

    def walk(node: Any, env_map: bool = False) -> Any:
        if isinstance(node, dict):
            secret = _secret_children(node, env_map)
            return {key: MASK if key in secret else walk(value, _child_kind(key)) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, tuple):
            return tuple(walk(item) for item in node)
        if isinstance(node, str):
            return redact_text(node, known)
        return node

    return walk(data)


def redact_sensitive_map(values: Any, secret_values: Iterable[Optional[str]] = ()) -> Any:
    """``values`` (a mapping, as the reference takes it) ready to log: secrets masked as
    ``redact_document`` does, and a key whose value is None shown as ``"<unset>"``.

    Keys are matched by whole words (``AWS_SECRET_ACCESS_KEY`` and ``api-token`` are
    secret, ``SECRETS_PATH`` and ``monkey`` are not)."""
    shown = redact_document(values, secret_values)
    if isinstance(shown, dict):
        return {key: UNSET if value is None else value for key, value in shown.items()}
    return shown


# --- values that look like credentials ------------------------------------------------

#: Well-known credential formats: (pattern, what it is).
_CREDENTIAL_SHAPES = (
    (re.compile(r"^(AKIA|ASIA|AIDA|AROA|ANPA|AGPA)[A-Z0-9]{16}$"), "an AWS access key id"),
    (re.compile(r"^(ghp|gho|ghu|ghs|ghr)_[A-Za-z0-9]{36,}$|^github_pat_[A-Za-z0-9_]{40,}$"), "a GitHub token"),
    (re.compile(r"^glpat-[A-Za-z0-9_-]{20,}$"), "a GitLab token"),
    (re.compile(r"^xox[abposr]-[A-Za-z0-9-]{10,}$"), "a Slack token"),
    (re.compile(r"^hf_[A-Za-z0-9]{30,}$"), "a Hugging Face token"),
    (re.compile(r"^sk-[A-Za-z0-9_-]{20,}$"), "an API secret key"),
    (re.compile(r"^eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*$"), "a JSON Web Token"),
    (re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"), "a private key"),
)
#: A long run of these characters with high entropy reads as a random token (base64,
#: base64url, an AWS secret access key).
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9+/=_\-.]+$")
_MIN_TOKEN_LEN = 32
#: Bits per character: random base64 of 32-64 characters scores about 4.3-5.5; hex
#: digests (at most 4.0) and most words stay below.
_MIN_TOKEN_ENTROPY = 4.0


#: Random characters switch between lower case, upper case and digits at about two
#: characters in three; words and version strings switch far less often.
_MIN_CLASS_SWITCHES = 0.35
#: Text that is mostly runs of three or more lower-case letters is made of words
#: ("ThisIsTheLongIdentifierName2"), not random characters.
_MAX_WORDY = 0.4


def _entropy(text: str) -> float:
    counts = Counter(text)
    return -sum(n / len(text) * math.log2(n / len(text)) for n in counts.values())


def _wordy(text: str) -> float:
    return sum(len(run) for run in re.findall(r"[a-z]{3,}", text)) / len(text)


def _class_switches(text: str) -> float:
    kinds = ["l" if c.islower() else "u" if c.isupper() else "d" if c.isdigit() else "o" for c in text]
    return sum(a != b for a, b in zip(kinds, kinds[1:])) / max(1, len(text) - 1)


def credential_shape(value: str) -> Optional[str]:
    """What ``value`` looks like when it looks like a credential ("an AWS access key
    id", "a long random token", ...), else None. Judged by shape alone, never by a
    lookup: a value is never sent anywhere to be checked."""
    text = value.strip()
    for pattern, what in _CREDENTIAL_SHAPES:
        if pattern.search(text):
            return what
    if len(text) >= _MIN_TOKEN_LEN and _TOKEN_CHARS.match(text) and not text.startswith(("/", ".")):
        classes = sum(bool(re.search(p, text)) for p in ("[a-z]", "[A-Z]", "[0-9]"))
        if (classes >= 3 and _entropy(text) >= _MIN_TOKEN_ENTROPY and _wordy(text) < _MAX_WORDY
                and _class_switches(text) >= _MIN_CLASS_SWITCHES):
            return "a long random token"
    return None
