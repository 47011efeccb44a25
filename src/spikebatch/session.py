"""High-level run orchestration (spec module ``session``)."""

from .application.session import BACKEND_UNAVAILABLE, TIMEOUT, RunSession  # noqa: F401

__all__ = ["BACKEND_UNAVAILABLE", "TIMEOUT", "RunSession"]
