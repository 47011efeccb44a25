"""A run's outputs, listed and downloaded, for every ArtifactStore adapter (mixed into
BaseArtifactStore): spikebatch's prefix-addressed calls (``list_outputs(prefix)`` gives
URIs, ``download_outputs(output_prefix=, local_dir=)`` fetches all of them) and the
reference's run-addressed ones (``spikelab.batch_jobs.storage_s3``):
``list_output_files(run_id, max_keys=...)`` gives object keys,
``download_output(run_id=, filename=, local_dir=)`` fetches one file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

from ...domain.errors import ConfigError, InvalidURIError, ObjectNotFoundError
from ...domain.storage_uri import relative_key_problem
from ...ports.storage import ProgressCallback
from ..files.path_guard import safe_local_path
from .progress import Progress


class RunOutputs:
    """Mixed into BaseArtifactStore; relies on its ``prefix``, ``output_prefix_for_run``,
    ``_parse``, ``_list`` and ``download_file``."""

    _parse: Any
    _list: Any
    download_file: Any
    output_prefix_for_run: Any

    #: The most keys ``list_output_files`` returns: a run with more raises (ValueError
    #: family) instead of silently truncating. Pass ``max_keys`` for a larger cap.
    DEFAULT_LIST_OUTPUT_LIMIT = 10_000

    prefix: Optional[str]

    def list_outputs(self, output_prefix: str) -> list[str]:
        """URIs of every object under ``output_prefix``, sorted."""
        prefix = self._parse(output_prefix, what="prefix").as_prefix()
        return sorted(str(uri) for uri, _ in self._list(prefix))

    def download_outputs(self, *, output_prefix: str, local_dir: str | Path,
                         progress: Optional[ProgressCallback] = None) -> list[Path]:
        """Every object under ``output_prefix`` into ``local_dir`` (keys as relative
        paths, each checked first); the paths written."""
        prefix = self._parse(output_prefix, what="prefix").as_prefix()
        objects = sorted(self._list(prefix), key=lambda item: str(item[0]))
        if not objects:
            raise ObjectNotFoundError(
                f"no objects under {prefix}; check the run id, or wait until the job "
                "has finished writing its outputs"
            )
        root = Path(local_dir)
        # Every key is checked before anything is written: one bad key stops the whole
        # download instead of leaving a partial folder behind.
        plan = [(uri, safe_local_path(root, uri.relative_to(prefix), source=str(uri)))
                for uri, _ in objects]
        total = sum(size for _, size in objects)
        overall = Progress(progress, total)
        paths: list[Path] = []
        for uri, dest in plan:
            last = [0]

            def forward(done: int, _total: int, last: list[int] = last) -> None:
                overall.add(done - last[0])
                last[0] = done

            paths.append(Path(self.download_file(s3_uri=str(uri), local_path=dest, progress=forward)))
        return paths

    def list_output_files(self, run_id: str, *, max_keys: Optional[int] = None) -> list[str]:
        """Object keys (no scheme, no bucket) under the run's output prefix, sorted;
        [] when the store has no prefix. More than ``max_keys`` objects (default
        DEFAULT_LIST_OUTPUT_LIMIT) raise ConfigError naming the cap."""
        cap = self.DEFAULT_LIST_OUTPUT_LIMIT if max_keys is None else max_keys
        if isinstance(cap, bool) or not isinstance(cap, int) or cap < 0:
            raise ConfigError(f"max_keys={max_keys!r} must be a whole number >= 0 (or None for "
                              f"{self.DEFAULT_LIST_OUTPUT_LIMIT})")
        prefix = self.output_prefix_for_run(run_id)
        if not prefix:
            return []
        found = self._list(self._parse(prefix, what="prefix").as_prefix())
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
        prefix = self.output_prefix_for_run(run_id)
        if not prefix:
            raise InvalidURIError("storage prefix is not set, so a run has no outputs to download; set "
                                  "default_s3_prefix in the profile or pass prefix=")
        target = safe_local_path(Path(local_dir).expanduser(), filename, source=prefix + filename)
        return str(Path(self.download_file(s3_uri=prefix + filename, local_path=target)).absolute())
