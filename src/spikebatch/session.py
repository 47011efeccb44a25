"""High-level run orchestration (spec module ``session``): the library's entry.

``RunSession`` is the application's session plus what a library user needs to get
one: ``RunSession.from_profile`` (adapters chosen by the profile), and, for a session
built by hand from adapters as the spec shows, the standard workspace codecs and
sorters. Both come from the composition root, which only this entry, the CLI and the
in-job runner use.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence

from .application.session import BACKEND_UNAVAILABLE, DELETED, TIMEOUT
from .application.session import RunSession as _ApplicationSession

__all__ = ["BACKEND_UNAVAILABLE", "DELETED", "TIMEOUT", "RunSession"]


class RunSession(_ApplicationSession):
    """Coordinates artifact packaging, job submission, and result retrieval."""

    def __init__(
        self,
        *,
        profile: Any,
        backend: Any,
        storage_client: Any,
        credentials: Any = None,
        workspace_codecs: Optional[Sequence[Any]] = None,
        sorter_factory: Optional[Callable[[str], Any]] = None,
        **options: Any,
    ) -> None:
        if credentials is None:
            # As the reference: a session built by hand resolves the credentials itself
            # (explicit ones first, then the environment and the usual files).
            from .credentials import resolve_credentials

            credentials = resolve_credentials()
        if workspace_codecs is None or sorter_factory is None:
            from .container import default_named_adapters

            codecs, sorters = default_named_adapters()
            workspace_codecs = codecs if workspace_codecs is None else workspace_codecs
            sorter_factory = sorters if sorter_factory is None else sorter_factory
        super().__init__(profile=profile, backend=backend, storage_client=storage_client, credentials=credentials,
                         workspace_codecs=workspace_codecs, sorter_factory=sorter_factory, **options)

    @classmethod
    def from_profile(cls, profile_or_name: Any, **options: Any) -> "RunSession":
        """A session wired for a profile (object, name, or YAML path).
        ``options``: kubeconfig / aws_* credentials, progress."""
        from .container import open_session

        return open_session(profile_or_name, **options)
