"""The reference's run-addressed output calls (``spikelab.batch_jobs.storage_s3``),
shared by every ArtifactStore adapter: ``list_output_files(run_id, max_keys=...)``
gives object keys, ``download_output(run_id=, filename=, local_dir=)`` fetches one
file. spikebatch's own prefix-addressed calls (``list_outputs``,
``download_outputs``) live in BaseArtifactStore, which mixes this in.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ...domain.errors import ConfigError, InvalidURIError
from ...domain.storage_uri import relative_key_problem
from ..files.path_guard import safe_local_path


class RunOutputs:
    """Mixed into BaseArtifactStore; relies on its ``prefix``, ``output_prefix_for_run``,
    ``_parse``, ``_list`` and ``download_file``."""

    #: The most keys ``list_output_files`` returns: a run with more raises (ValueError
    #: family) instead of silently truncating. Pass ``max_keys`` for a larger cap.
    DEFAULT_LIST_OUTPUT_LIMIT = 10_000

    prefix: Optional[str]

    def list_output_files(self, run_id: str, *, max_keys: Optional[int] = None) -> list[str]:
        """Object keys (no scheme, no bucket) under the run's output prefix, sorted;
        [] when the store has no prefix. More than ``max_keys`` objects (default
        DEFAULT_LIST_OUTPUT_LIMIT) raise ConfigError naming the cap."""
        cap = self.DEFAULT_LIST_OUTPUT_LIMIT if max_keys is None else max_keys
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ConfigError(f"max_keys={max_keys!r} must be a whole number >= 0 (or None for "
                              f"{self.DEFAULT_LIST_OUTPUT_LIMIT})")
        prefix = self.output_prefix_for_run(run_id)  # type: ignore[attr-defined]
        if not prefix:
            return []
        found = self._list(self._parse(prefix, what="prefix").as_prefix())  # type: ignore[attr-defined]
        if len(found) > cap:
            raise ConfigError(f"more than max_keys={cap} objects under {prefix}; pass a larger max_keys "
                              "if that is expected (list_outputs(prefix) lists without a cap)")
        return sorted(uri.key for uri, _ in found)

    def download_output(self, *, run_id: str, filename: str, local_dir: str | Path) -> str:
        """Download ``filename`` of the run's outputs into ``local_dir`` (sub-folders of
        ``filename`` kept); return the local path as a string. A ``filename`` that would
        leave ``local_dir`` (``..``, an absolute path) is refused before any read."""
        problem = relative_key_problem(filename) if isinstance(filename, str) else "it is not a string"
        if problem or filename.endswith("/"):
            raise InvalidURIError(f"filename {filename!r} for run {run_id!r} is refused ({problem or 'it ends with /'}); "
                                  "name one file under the run's output prefix, e.g. 'result.json'")
        prefix = self.output_prefix_for_run(run_id)  # type: ignore[attr-defined]
        if not prefix:
            raise InvalidURIError("storage prefix is not set, so a run has no outputs to download; set "
                                  "default_s3_prefix in the profile or pass prefix=")
        target = safe_local_path(Path(local_dir).expanduser(), filename, source=prefix + filename)
        dl: Any = self.download_file  # type: ignore[attr-defined]
        return str(Path(dl(s3_uri=prefix + filename, local_path=target)).absolute())
