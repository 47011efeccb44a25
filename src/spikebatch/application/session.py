"""RunSession: the use cases of one profile -- package, upload, render, submit, wait,
read logs, retrieve.

Written against the ports only; which adapters serve them is decided by the
composition root (``spikebatch.container``), never here. Every submission validates,
runs the policy preflight once, checks its inputs and has the final manifest admitted
by the backend before the first byte is uploaded, so bad input leaves nothing behind.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

from ..domain.bundle import RUNNER_LOG_NAME, WORKSPACE_DIR
from ..domain.effective import target_namespace
from ..domain.errors import ConfigError, InputFileNotFoundError, JobDeletedError, JobNotFoundError, PolicyBlockedError, StorageError
from ..domain.manifest import manifest_to_yaml, render_job_manifest
from ..domain.models import ClusterProfile, JobSpec, SubmitResult
from ..domain.naming import make_job_name, name_prefix_from, new_run_id
from ..domain.policy import PreflightSummary
from ..domain.records import RunDetails, SubmissionRecord
from ..domain.redaction import redact_sensitive_map
from ..ports.backend import JobBackend, JobInfo, JobReport, JobState
from ..ports.records import RunRecords
from ..ports.sorter import Sorter
from ..ports.storage import ArtifactStore, ProgressCallback
from ..ports.workspace import WorkspaceCodec
from .batch_session import BatchUseCases
from .batch_submission import batch_name_prefix
from .sorter_choice import sorter_name_for
from .bundling import BundlePlanner
from .runs import remember
from .staging import StagingSummary, stage_plan
from .preflight import as_job_spec, check_policy
from .retrieval import retrieve_outputs
from .submission import run_locations, runner_job_spec
from .session_waits import WaitUseCases
from .waiting import BACKEND_UNAVAILABLE, DELETED, STUCK, TIMEOUT

__all__ = ["BACKEND_UNAVAILABLE", "DELETED", "STUCK", "TIMEOUT", "RunSession"]


class RunSession(WaitUseCases, BatchUseCases):
    """Coordinates artifact packaging, job submission, and result retrieval.

    ``workspace_codecs`` (most specific first) and ``sorter_factory`` (a sorter by
    name) serve workspace and sorting jobs; the composition root supplies the real ones.
    """

    def __init__(
        self,
        *,
        profile: ClusterProfile,
        backend: JobBackend,
        storage_client: ArtifactStore,
        credentials: Any = None,
        workspace_codecs: Sequence[WorkspaceCodec] = (),
        sorter_factory: Optional[Callable[[str], Sorter]] = None,
        progress: Optional[ProgressCallback] = None,
        hash_progress: Optional[ProgressCallback] = None,
        on_preflight: Optional[Callable[[PreflightSummary], None]] = None,
        run_records: Optional[RunRecords] = None,
        on_warning: Optional[Callable[[str], None]] = None,
    ) -> None:
        self.profile = profile
        self.backend = backend
        self.storage_client = storage_client
        self.credentials = credentials
        self.workspace_codecs: List[WorkspaceCodec] = list(workspace_codecs)
        self._sorter_factory = sorter_factory
        #: ``progress(bytes_done, bytes_total)`` of uploads and downloads.
        self.progress = progress
        #: ``hash_progress(bytes_hashed, bytes_total)`` while inputs are hashed.
        self.hash_progress = hash_progress
        #: Called with the policy verdict of each submission that goes ahead, before
        #: anything is uploaded (a BLOCK raises PolicyBlockedError instead, whose
        #: message names the findings).
        self.on_preflight = on_preflight
        #: The preflight of the last submission.
        self.last_preflight: Optional[PreflightSummary] = None
        #: Where each submission is recorded (what ``spikebatch list-jobs --offline``
        #: and ``show`` read); None records nothing.
        self.run_records = run_records
        #: What the records say a submission was made with: the profile file (when a
        #: file was named) and the kubeconfig path, to find the job again later.
        self.record_origin: Dict[str, Optional[str]] = {"profile_file": None, "kubeconfig": None}
        #: Called with a warning that does not stop a submission (a record that
        #: cannot be written); None: ``warnings.warn``.
        self.on_warning = on_warning
        #: The record of the last submission (None when none was written).
        self.last_record: Optional[SubmissionRecord] = None
        #: What staging the last workspace or sorting job did: bytes sent and already
        #: stored (a batch says so in its BatchSubmitResult).
        self.last_staging: Optional[StagingSummary] = None

    @property
    def storage(self) -> ArtifactStore:
        """The session's store (the spec's name; ``storage_client`` is the same object)."""
        return self.storage_client

    @storage.setter
    def storage(self, store: ArtifactStore) -> None:
        self.storage_client = store

    @property
    def namespace(self) -> str:
        """The namespace this session's backend submits to."""
        return self.backend.namespace

    # --- workspace / sorter selection ----------------------------------------------
    def _codec_for(self, workspace: Any) -> WorkspaceCodec:
        for codec in self.workspace_codecs:
            if codec.can_handle(workspace):
                return codec
        if isinstance(workspace, (str, os.PathLike)):
            base = Path(workspace).expanduser()
            if not any(p.exists() for p in (base, base.with_name(base.name + ".h5"))):
                raise InputFileNotFoundError(
                    f"workspace {str(workspace)!r} does not exist (neither a folder nor {base.name}.h5); "
                    "check the path, or pass the workspace object itself")
        raise ConfigError(
            f"workspace {workspace!r} is neither a SpikeLab AnalysisWorkspace (or its saved base path) "
            "nor a built-in directory workspace; pass one of those"
        )

    def _codec_named(self, name: str) -> WorkspaceCodec:
        for codec in self.workspace_codecs:
            if codec.name == name:
                return codec
        raise ConfigError(f"result workspace format {name!r} is not available here; install its package")

    def _sorter(self, name: str) -> Sorter:
        if self._sorter_factory is None:
            raise ConfigError("this session has no sorters; build it with RunSession.from_profile or pass sorter_factory")
        return self._sorter_factory(name)

    def _sorter_name_for(self, config: Any) -> str:
        """Which sorter serves ``config`` (see ``sorter_choice``)."""
        return sorter_name_for(config, self._knows_preset)

    def _knows_preset(self, sorter_name: str, preset: str) -> bool:
        try:
            self._sorter(sorter_name).resolve_config(preset)
        except ConfigError:  # not its preset, or the sorter's package is not installed
            return False
        return True

    # --- rendering and preflight ----------------------------------------------------
    def render_manifest(self, *, job_name: str, job_spec: Any, run_id: str) -> str:
        """Render a Kubernetes Job manifest from a spec and profile, as YAML text (what
        ``templating.render_job_manifest(build_template_context(...))`` gives with the
        run id label). It holds the real values (it is what would be submitted): mask
        it before showing or storing it."""
        return manifest_to_yaml(self.render_manifest_dict(job_name=job_name, job_spec=job_spec, run_id=run_id))

    def render_manifest_dict(self, *, job_name: str, job_spec: Any, run_id: str) -> Dict[str, Any]:
        """The manifest of ``render_manifest`` as a dict (what the backends take)."""
        return render_job_manifest(job_name, as_job_spec(job_spec), self.profile, run_id)

    def preflight(self, job_spec: Any, allow_policy_risk: bool = False, *,
                  extra_findings: Sequence[Any] = ()) -> PreflightSummary:
        """Policy findings for ``job_spec`` (and ``extra_findings``, a batch's own);
        raises PolicyBlockedError on BLOCK unless ``allow_policy_risk``. Each
        submission runs it once, first."""
        spec = as_job_spec(job_spec)
        summary = check_policy(spec, self.profile, extra_findings)
        self.last_preflight = summary
        if summary.blocked and not allow_policy_risk:
            raise PolicyBlockedError(summary.findings)
        namespace = target_namespace(spec, self.profile)
        if namespace != self.backend.namespace:
            raise ConfigError(
                f"job namespace {namespace!r} differs from the backend's {self.backend.namespace!r}; "
                "drop namespace from the job config or use a profile for that namespace"
            )
        if self.on_preflight is not None:
            self.on_preflight(summary)
        return summary

    def _admit(self, spec: JobSpec, job_name: str, run_id: str, job_type: str) -> Dict[str, Any]:
        """Render the final manifest and have the backend check it without creating it
        (server-side dry run: validation, admission policies, permissions, a taken
        name, reachability), so anything the cluster would refuse is refused before a
        byte is uploaded."""
        manifest = render_job_manifest(job_name, spec, self.profile, run_id, job_type=job_type)
        self.backend.apply_manifest(manifest, dry_run=True)
        return manifest

    def _submit(self, manifest: Dict[str, Any]) -> str:
        self.backend.apply_manifest(manifest)
        secrets = getattr(self.credentials, "secret_values", []) or []
        return manifest_to_yaml(redact_sensitive_map(manifest, secrets))

    def _planner(self) -> BundlePlanner:
        return BundlePlanner(self.storage_client, hash_progress=self.hash_progress)

    # --- the use cases --------------------------------------------------------------
    def submit_workspace_job(
        self,
        *,
        workspace: Any,
        script: str,
        job_spec: Any,
        allow_policy_risk: bool = False,
        bundle_input_paths: Optional[Iterable[str]] = None,
        metadata: Optional[dict] = None,
    ) -> SubmitResult:
        """Save a workspace, bundle it with a script, and submit a job."""
        spec = as_job_spec(job_spec)
        self.preflight(spec, allow_policy_risk)
        codec = self._codec_for(workspace)
        # A job says what it runs: the script's name, unless the job config names it.
        prefix = spec.name_prefix if "name_prefix" in spec.model_fields_set else name_prefix_from(Path(script).stem)
        run_id, job_name = new_run_id(), make_job_name(prefix)
        where = run_locations(self.storage_client, run_id)
        env = {"INPUT_URI": where["bundle"], "OUTPUT_PREFIX": where["outputs"], "LOGS_PREFIX": where["logs"],
               "SCRIPT_NAME": Path(script).name}
        inputs = list(bundle_input_paths or [])
        planner = self._planner()
        # The script and inputs are checked before the workspace is saved (which may
        # take a while): a bad one is refused at once, with nothing written or sent.
        planner.check_workspace_inputs(script, inputs)
        with tempfile.TemporaryDirectory(prefix="spikebatch-bundle-") as scratch:
            ws_dir = Path(scratch) / WORKSPACE_DIR
            ws_dir.mkdir()
            plan = planner.plan_workspace(
                run_id=run_id,
                codec_name=codec.name,
                workspace_files=codec.save(workspace, ws_dir),
                workspace_root=ws_dir,
                script=script,
                bundle_input_paths=inputs,
                metadata=metadata,
            )
            # The pod's scratch volumes are sized from the planned inputs; still
            # nothing is uploaded before the cluster admits the Job.
            runner_spec = runner_job_spec(spec, self.profile, self.storage_client, "workspace", env, plan.total_bytes)
            manifest = self._admit(runner_spec, job_name, run_id, "workspace")
            bundle_uri = self._stage(plan, Path(scratch))
        result = self._result(job_name, self._submit(manifest), run_id, bundle_uri, where, "workspace")
        self._record(result, RunDetails("workspace", script=Path(script).name))
        return result

    def submit_sorting_job(
        self,
        *,
        recording_paths: Iterable[str],
        config: Any = None,
        config_overrides: Optional[dict] = None,
        job_spec: Any,
        allow_policy_risk: bool = False,
        metadata: Optional[dict] = None,
    ) -> SubmitResult:
        """Bundle recording files with a sorting config and submit a job."""
        spec = as_job_spec(job_spec)
        self.preflight(spec, allow_policy_risk)
        sorter = self._sorter(self._sorter_name_for(config))
        resolved = sorter.resolve_config(config, config_overrides)
        run_id, job_name = new_run_id(), make_job_name(batch_name_prefix(spec, resolved))
        where = run_locations(self.storage_client, run_id)
        env = {"INPUT_URI": where["bundle"], "OUTPUT_PREFIX": where["outputs"], "LOGS_PREFIX": where["logs"]}
        plan = self._planner().plan_sorting(
            run_id=run_id,
            recording_paths=list(recording_paths),
            sorter_name=sorter.name,
            sorter_config=resolved,
            metadata=metadata,
        )
        # The pod's scratch volumes are sized from the planned inputs; still nothing
        # is uploaded before the cluster admits the Job.
        runner_spec = runner_job_spec(spec, self.profile, self.storage_client, "sorting", env, plan.total_bytes)
        manifest = self._admit(runner_spec, job_name, run_id, "sorting")
        with tempfile.TemporaryDirectory(prefix="spikebatch-bundle-") as scratch:
            bundle_uri = self._stage(plan, Path(scratch))
        result = self._result(job_name, self._submit(manifest), run_id, bundle_uri, where, "sorting")
        self._record(result, RunDetails("sorting", preset=_preset_of(config, resolved),
                                        recordings=tuple(r.name for r in plan.recordings),
                                        overrides=dict(config_overrides or {})))
        return result

    def submit_prepared_job(self, *, job_spec: Any, run_id: Optional[str] = None, allow_policy_risk: bool = False) -> SubmitResult:
        """Submit a job without generating bundle artifacts."""
        spec = as_job_spec(job_spec)
        self.preflight(spec, allow_policy_risk)
        run_id = run_id or new_run_id()
        job_name = make_job_name(spec.name_prefix)
        where = run_locations(self.storage_client, run_id) if self.storage_client.prefix else {"outputs": "", "logs": ""}
        manifest_yaml = self._submit(render_job_manifest(job_name, spec, self.profile, run_id, job_type="prepared"))
        result = self._result(job_name, manifest_yaml, run_id, "", where, "prepared")
        self._record(result, RunDetails("prepared"))
        return result

    def _stage(self, plan: Any, scratch: Path) -> str:
        """Stage ``plan``; what it did (sent, already stored) stays in ``last_staging``."""
        self.last_staging = stage_plan(plan, self.storage_client, scratch, self.progress)
        return self.last_staging.bundle_uri

    def _record(self, result: SubmitResult, details: Optional[RunDetails]) -> None:
        """Record a submission made through this session, the CLI's and the library's
        alike; a record that cannot be written only warns (the job runs anyway)."""
        self.last_record = None
        if self.run_records is None:
            return
        self.last_record = remember(self.run_records, result, profile_file=self.record_origin.get("profile_file"),
                                    kubeconfig=self.record_origin.get("kubeconfig"), warn=self._warn,
                                    details=details)

    def _warn(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)
        else:
            warnings.warn(message, RuntimeWarning, stacklevel=4)

    def _result(self, job_name: str, manifest_yaml: str, run_id: str, input_uri: str, where: Dict[str, str], job_type: str) -> SubmitResult:
        return SubmitResult(
            job_name=job_name,
            manifest_yaml=manifest_yaml,
            run_id=run_id,
            uploaded_input_uri=input_uri,
            output_prefix=where["outputs"],
            logs_prefix=where["logs"],
            job_type=job_type,  # type: ignore[arg-type]
            namespace=self.backend.namespace,
            profile_name=self.profile.name,
        )

    # --- waiting, state, logs, retrieval --------------------------------------------
    def job_report(self, job_name: str) -> JobReport:
        """The job's state and why: exit code and exception line, OOMKilled,
        DeadlineExceeded, an image that cannot be pulled."""
        return self.backend.job_report(job_name)

    def stream_logs(self, job_name: str, follow: bool = False) -> Iterator[str]:
        """The job's log lines (every pod, oldest first); with ``follow``, until the
        job ends. A job that does not exist raises JobNotFoundError; a followed job
        deleted before it ended raises JobDeletedError (a JobNotFoundError) after its
        last line, so the end of a follow says whether the job ended or went away."""
        if not follow:
            return self.backend.stream_job_logs(job_name, follow=False)
        # Checked now, not at the first line: a missing job is an error of this call.
        state = self.backend.job_status(job_name)
        return _followed(self.backend, job_name, state.is_terminal)

    def saved_runner_log(self, logs_prefix: str) -> Optional[List[str]]:
        """The runner's log kept in storage under ``logs_prefix`` (it outlives the Job
        and its pods), or None when the store has none."""
        if not logs_prefix:
            return None
        try:
            data = self.storage_client.read_bytes(logs_prefix + RUNNER_LOG_NAME)
        except StorageError:
            return None
        return data.decode("utf-8", errors="replace").splitlines()

    def job_status(self, job_name: str) -> JobState:
        return self.backend.job_status(job_name)

    def delete_job(self, job_name: str) -> bool:
        return self.backend.delete_job(job_name)

    def list_jobs(self, labels: Optional[Mapping[str, str]] = None) -> List[JobInfo]:
        """Jobs in the namespace carrying every label in ``labels``, oldest first."""
        return self.backend.list_jobs(labels)

    def retrieve_result(self, submit_result: SubmitResult, local_dir: str) -> Any:
        """Download job outputs and return the workspace the job produced."""
        return retrieve_outputs(self.storage_client, submit_result, local_dir, self._codec_named, self.progress)


def _followed(backend: JobBackend, job_name: str, ended: bool) -> Iterator[str]:
    """Follow the log of a job that exists (``ended``: it already ended); raises
    JobDeletedError when it went away before it ended."""
    if ended:
        yield from backend.stream_job_logs(job_name, follow=True)
        return
    try:
        yield from backend.stream_job_logs(job_name, follow=True)
        backend.job_status(job_name)  # the stream ended: because the job did, or it is gone?
    except JobNotFoundError:
        raise JobDeletedError(
            f"job {job_name} was deleted while its logs were followed (by someone else, job-delete or its "
            "TTL); it did not end by itself and its pods are gone") from None


def _preset_of(config: Any, resolved: Dict[str, Any]) -> Optional[str]:
    """The preset a sorting run was asked for: its name, or what the resolved config says."""
    if isinstance(config, str):
        return config
    preset = resolved.get("preset") or resolved.get("sorter_name")
    return preset if isinstance(preset, str) else None
