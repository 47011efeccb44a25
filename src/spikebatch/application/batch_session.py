"""The use cases of sorting batches, as RunSession's methods (a mixin: the session
class stays readable, and these methods see the same session: its profile, backend,
store, sorters and progress callbacks)."""

from __future__ import annotations

from typing import Any, Callable, Iterable, Optional

from ..domain.batch_report import BatchReport
from ..domain.records import RunDetails
from ..ports.backend import JobReport
from .batch_retry import retry_batch
from .batch_status import BatchProgress, BatchResult, batch_report, retrieve_batch, wait_for_batch
from .batch_submission import DEFAULT_RETRIES_PER_RECORDING, BatchSubmitResult, submit_batch


class BatchUseCases:
    """Sorting many recordings as one batch (see ``batch_submission``)."""

    #: Which sorter serves a config (RunSession's, see ``sorter_choice``).
    _sorter_name_for: Callable[[Any], str]

    def submit_sorting_batch(
        self,
        *,
        recording_paths: Iterable[str],
        config: Any = None,
        config_overrides: Optional[dict] = None,
        job_spec: Any,
        parallelism: Optional[int] = None,
        retries_per_recording: int = DEFAULT_RETRIES_PER_RECORDING,
        max_failed_recordings: Optional[int] = None,
        allow_policy_risk: bool = False,
        metadata: Optional[dict] = None,
        force: bool = False,
        per_recording_jobs: Optional[bool] = None,
    ) -> BatchSubmitResult:
        """Sort many recordings as one batch: one Indexed Job, one completion index per
        recording, ``parallelism`` at once (default: a workstation's cores divided by
        the job's CPU request; on a cluster every recording, up to 100), each recording
        retried ``retries_per_recording`` times on its own, the batch stopped early
        once more than ``max_failed_recordings`` failed (None: never).

        A recording already sorted with the same content, sorter, parameters and image
        is reused (``cached``) unless ``force``. On an API server older than 1.33 the
        batch runs as one Job per recording (``per_recording_jobs`` None: decided by
        the server's version; True: always; False: refuse instead).
        """
        self.last_staging = None  # a batch says what staging did in its own result
        batch = submit_batch(
            self, recording_paths=recording_paths, config=config, config_overrides=config_overrides,
            job_spec=job_spec, parallelism=parallelism, retries_per_recording=retries_per_recording,
            max_failed_recordings=max_failed_recordings, allow_policy_risk=allow_policy_risk, metadata=metadata,
            force=force, per_recording_jobs=per_recording_jobs, sorter_name=self._sorter_name_for(config))
        described = batch.description
        preset = config if isinstance(config, str) else (described.preset if described is not None else None)
        self._record(batch.result, RunDetails("sorting", preset=preset, recordings=tuple(batch.recordings),
                                              overrides=dict(config_overrides or {})))
        return batch

    def batch_status(self, run_id: str) -> BatchReport:
        """One row per recording of batch ``run_id``: state, attempts, reason, units,
        run time; read from the run's Jobs and pods (two requests) and its results."""
        return batch_report(self, run_id)

    def wait_for_batch(self, run_id: str, max_wait_seconds: float = 3600, *,
                       on_progress: Optional[Callable[[BatchProgress], None]] = None,
                       on_problem: Optional[Callable[[JobReport], None]] = None) -> tuple:
        """Watch batch ``run_id`` until its Jobs end: (final state, BatchReport); the
        state is "Complete", "Failed" (some recording has no result), "Timeout",
        "Stuck" (its pods cannot start; ``on_problem`` hears why), "Deleted" or
        "Backend unavailable". ``on_progress`` gets the counts of done / running /
        failed recordings as they change."""
        return wait_for_batch(self, run_id, max_wait_seconds, on_progress, on_problem)

    def retrieve_batch(self, run_id: str, local_dir: str) -> BatchResult:
        """Every recording of batch ``run_id`` that succeeded (or was reused), in one
        workspace with a namespace per recording, and the failed ones with reasons."""
        return retrieve_batch(self, run_id, local_dir, self._codec_named, self.progress)

    def retry_batch(self, run_id: str, *, parallelism: Optional[int] = None,
                    retries_per_recording: Optional[int] = None) -> BatchSubmitResult:
        """Sort again the failed and missing recordings of batch ``run_id``: a new Job
        of the same run over just those, with the blobs already stored (0 bytes
        uploaded)."""
        batch = retry_batch(self, run_id, parallelism=parallelism, retries_per_recording=retries_per_recording)
        self._record(batch.result, None)  # the run's record keeps what it is, with the new Job
        return batch
