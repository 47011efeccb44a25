"""The API server's ``/version`` answer as (major, minor), for both cluster adapters
(the official client's ``VersionApi.get_code`` and ``kubectl version -o json``'s
``serverVersion`` carry the same JSON object).

Managed clusters decorate the numbers: GKE and EKS answer ``"minor": "33+"``, some
builds leave ``major``/``minor`` empty and only fill ``gitVersion``
(``"v1.33.4-eks-1234"``). Both are read here, so a batch's "Indexed Job or one Job
per recording" choice never fails on the decoration.
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Optional

_LEADING_NUMBER = re.compile(r"\s*(\d+)")
_GIT_VERSION = re.compile(r"\s*v?(\d+)\.(\d+)")


def _leading_number(value: Any) -> Optional[int]:
    match = _LEADING_NUMBER.match(str(value or ""))
    return int(match.group(1)) if match else None


def parse_server_version(info: Mapping[str, Any]) -> tuple[int, int]:
    """``{"major": "1", "minor": "33+", "gitVersion": "v1.33.2-gke.1"}`` -> ``(1, 33)``.

    ``major``/``minor`` win when both hold a number; otherwise ``gitVersion`` is read.
    Raises ValueError when neither says which release the server is."""
    major, minor = _leading_number(info.get("major")), _leading_number(info.get("minor"))
    if major is not None and minor is not None:
        return major, minor
    match = _GIT_VERSION.match(str(info.get("gitVersion") or ""))
    if match:
        return int(match.group(1)), int(match.group(2))
    shown = {k: info.get(k) for k in ("major", "minor", "gitVersion")}
    raise ValueError(f"the API server's version answer names no release: {shown}")
