"""Masking of secrets in maps, manifests and text before they are shown or stored."""

from __future__ import annotations

import re
from typing import Any, Iterable, Optional

MASK = "***REDACTED***"

#: Keys whose values are secret by name. Matched as whole words of the key, so
#: "AWS_SECRET_ACCESS_KEY" and "api-token" match but "monkey" or "keyboard" do not.
_SENSITIVE_WORDS = ("SECRET", "TOKEN", "PASSWORD", "PASSWD", "KEY", "CREDENTIAL", "CREDENTIALS")
#: A key ending in one of these *names* a secret ("secretName", "secret_name",
#: "secretKeyRef"): its value is a reference a user needs to see, not a secret.
_REFERENCE_WORDS = ("NAME", "NAMES", "REF", "REFS")
#: Word boundaries: separators, lower->Upper ("apiKey") and the end of an acronym before
#: a capitalised word ("APIKey", "DBPassword", "JWTToken").
_WORD_SPLIT = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])")

#: Secret values shorter than this are not masked inside other text: masking "a" would
#: shred every message while protecting nothing.
_MIN_VALUE_LEN = 4


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


def redact_sensitive_map(data: Any, secret_values: Iterable[Optional[str]] = ()) -> Any:
    """A copy of ``data`` (nested dicts / lists / strings) with secrets masked.

    Masks (1) the value of any key whose name says it is secret, (2) in Kubernetes env
    lists (``{"name": ..., "value": ...}``), the value of a variable with such a name,
    and (3) every known secret value wherever it appears in any string.
    """
    known = [v for v in secret_values if v]

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            out = {}
            env_like = "name" in node and "value" in node and isinstance(node.get("name"), str)
            for key, value in node.items():
                if isinstance(value, (str, bytes, int, float)) and not isinstance(value, bool) and is_sensitive_key(str(key)):
                    out[key] = MASK
                elif env_like and key == "value" and is_sensitive_key(node["name"]):
                    out[key] = MASK
                else:
                    out[key] = walk(value)
            return out
        if isinstance(node, list):
            return [walk(item) for item in node]
        if isinstance(node, tuple):
            return tuple(walk(item) for item in node)
        if isinstance(node, str):
            return redact_text(node, known)
        return node

    return walk(data)
