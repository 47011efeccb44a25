"""RunSession: the use cases — package, upload, render, submit, wait, retrieve.

Written against the ports only; ``RunSession.from_profile`` asks the container for
the adapters the profile names. Every submission validates and runs the policy
preflight, checks its inputs and renders the final manifest before the first byte is
uploaded, so bad input leaves nothing behind.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Sequence

from ..domain.bundle import BUNDLE_FILENAME, RESULT_NAME, WORKSPACE_DIR
from ..domain.effective import effective_env, resolve_image, target_namespace
from ..domain.errors import (
    BackendUnavailableError,
    ConfigError,
    JobFailedError,
    ObjectNotFoundError,
    PolicyBlockedError,
)
from ..domain.manifest import manifest_to_yaml, render_job_manifest
from ..domain.model_base import with_changes
from ..domain.models import ClusterProfile, JobSpec, SubmitResult
from ..domain.naming import make_job_name, new_run_id
from ..domain.policy import PreflightSummary, evaluate_policy, summarize_preflight
from ..domain.redaction import redact_sensitive_map
from ..domain.validation import validate_job_spec
from ..ports.backend import JobBackend, JobState
from ..ports.sorter import Sorter
from ..ports.storage import ArtifactStore, ProgressCallback
from ..ports.workspace import WorkspaceCodec
from .bundling import BundlePlanner, stage_bundle

RUNNER_MODULE = "spikebatch.entrypoints.runner"

#: What wait_for_completion returns besides the terminal job states.
TIMEOUT = "Timeout"
BACKEND_UNAVAILABLE = "Backend unavailable"


class RunSession:
    """Coordinates artifact packaging, job submission, and result retrieval."""

    def __init__(
        self,
        *,
        profile: ClusterProfile,
        backend: JobBackend,
        storage_client: ArtifactStore,
        credentials: Any = None,
        workspace_codecs: Optional[Sequence[WorkspaceCodec]] = None,
        sorter_factory: Optional[Callable[[str], Sorter]] = None,
        progress: Optional[ProgressCallback] = None,
        hash_progress: Optional[ProgressCallback] = None,
    ) -> None:
        self.profile = profile
        self.backend = backend
        self.storage_client = storage_client
        self.credentials = credentials
        self._codecs = list(workspace_codecs) if workspace_codecs is not None else None
        self._sorter_factory = sorter_factory
        #: ``progress(bytes_done, bytes_total)`` of uploads and downloads.
        self.progress = progress
        #: ``hash_progress(bytes_hashed, bytes_total)`` while inputs are hashed.
        self.hash_progress = hash_progress
        #: The preflight of the last submission (the CLI prints its findings).
        self.last_preflight: Optional[PreflightSummary] = None

    # --- construction ---------------------------------------------------------------
    @classmethod
    def from_profile(cls, profile_or_name: Any, **options: Any) -> "RunSession":
        """A session wired by the container for a profile (object, name, or YAML path).
        ``options``: kubeconfig / aws_* credentials, progress."""
        from ..container import build_container  # the composition root picks adapters

        profile = _as_profile(profile_or_name)
        progress = options.pop("progress", None)
        session = build_container(profile, **options).session()
        session.progress = progress
        return session

    # --- workspace / sorter selection ----------------------------------------------
    @property
    def workspace_codecs(self) -> List[WorkspaceCodec]:
        if self._codecs is None:
            from ..container import workspace_codecs

            self._codecs = workspace_codecs()
        return self._codecs

    def _codec_for(self, workspace: Any) -> WorkspaceCodec:
        for codec in self.workspace_codecs:
            if codec.can_handle(workspace):
                return codec
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
            from ..container import sorter

            self._sorter_factory = sorter
        return self._sorter_factory(name)

    # --- rendering and preflight ----------------------------------------------------
    def render_manifest(self, *, job_name: str, job_spec: Any, run_id: str) -> Dict[str, Any]:
        """Render a Kubernetes Job manifest from a spec and profile."""
        return render_job_manifest(job_name, _as_job_spec(job_spec), self.profile, run_id)

    def preflight(self, job_spec: Any, allow_policy_risk: bool = False) -> PreflightSummary:
        """Policy findings for ``job_spec``; raises PolicyBlockedError on BLOCK unless
        ``allow_policy_risk``."""
        spec = _as_job_spec(job_spec)
        # A missing or unknown image is a configuration error with a precise fix,
        # better said as such than as the policy's IMAGE_MISSING block.
        resolve_image(spec, self.profile)
        findings = evaluate_policy(spec, self.profile)
        summary = summarize_preflight(findings)
        self.last_preflight = summary
        if summary.blocked and not allow_policy_risk:
            raise PolicyBlockedError(findings)
        namespace = target_namespace(spec, self.profile)
        if namespace != self.backend.namespace:
            raise ConfigError(
                f"job namespace {namespace!r} differs from the backend's {self.backend.namespace!r}; "
                "drop namespace from the job config or use a profile for that namespace"
            )
        return summary

    def _runner_spec(self, spec: JobSpec, mode: str, env: Dict[str, str]) -> JobSpec:
        """The JobSpec with the runner command (unless the user gave one) and its env."""
        container_env = dict(spec.container.env)
        present = effective_env(spec, self.profile)
        if self.profile.endpoint_url and "S3_ENDPOINT_URL" not in present:
            container_env["S3_ENDPOINT_URL"] = self.profile.endpoint_url
        if self.profile.region_name and "AWS_DEFAULT_REGION" not in present:
            container_env["AWS_DEFAULT_REGION"] = self.profile.region_name
        container_env.update(env)
        root = getattr(self.storage_client, "root", None)
        if self.storage_client.scheme == "file" and root is not None:
            # file:// URIs are only readable under the store's root; the runner opens
            # the same root (the local backend's process shares this filesystem).
            container_env["SPIKEBATCH_STORAGE_ROOT"] = str(root)
        command = list(spec.container.command) or ["python", "-m", RUNNER_MODULE, mode]
        container = with_changes(spec.container, env=container_env, command=command)
        return with_changes(spec, container=container)

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
        return manifest_to_yaml(self._redact(manifest))

    def _redact(self, manifest: Dict[str, Any]) -> Dict[str, Any]:
        secrets = getattr(self.credentials, "secret_values", []) or []
        return redact_sensitive_map(manifest, secrets)

    def _locations(self, run_id: str) -> Dict[str, str]:
        return {
            "bundle": self.storage_client.build_uri(run_id=run_id, filename=BUNDLE_FILENAME, category="inputs"),
            "outputs": self.storage_client.output_prefix_for_run(run_id),
            "logs": self.storage_client.logs_prefix_for_run(run_id),
        }

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
        spec = _as_job_spec(job_spec)
        self.preflight(spec, allow_policy_risk)
        codec = self._codec_for(workspace)
        run_id, job_name = new_run_id(), make_job_name(spec.name_prefix)
        where = self._locations(run_id)
        script_name = Path(script).name
        runner_spec = self._runner_spec(
            spec,
            "workspace",
            {"INPUT_URI": where["bundle"], "OUTPUT_PREFIX": where["outputs"], "LOGS_PREFIX": where["logs"], "SCRIPT_NAME": script_name},
        )
        manifest = self._admit(runner_spec, job_name, run_id, "workspace")
        planner = BundlePlanner(self.storage_client, hash_progress=self.hash_progress)
        with tempfile.TemporaryDirectory(prefix="spikebatch-bundle-") as scratch:
            ws_dir = Path(scratch) / WORKSPACE_DIR
            ws_dir.mkdir()
            plan = planner.plan_workspace(
                run_id=run_id,
                codec_name=codec.name,
                workspace_files=codec.save(workspace, ws_dir),
                workspace_root=ws_dir,
                script=script,
                bundle_input_paths=bundle_input_paths,
                metadata=metadata,
            )
            staged = stage_bundle(plan, self.storage_client, Path(scratch), self.progress)
        manifest_yaml = self._submit(manifest)
        return self._result(job_name, manifest_yaml, run_id, staged.bundle_uri, where, "workspace")

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
        spec = _as_job_spec(job_spec)
        self.preflight(spec, allow_policy_risk)
        sorter = self._sorter(_sorter_name_for(config))
        resolved = sorter.resolve_config(config, config_overrides)
        run_id, job_name = new_run_id(), make_job_name(spec.name_prefix)
        where = self._locations(run_id)
        runner_spec = self._runner_spec(
            spec, "sorting", {"INPUT_URI": where["bundle"], "OUTPUT_PREFIX": where["outputs"], "LOGS_PREFIX": where["logs"]}
        )
        manifest = self._admit(runner_spec, job_name, run_id, "sorting")
        plan = BundlePlanner(self.storage_client, hash_progress=self.hash_progress).plan_sorting(
            run_id=run_id,
            recording_paths=list(recording_paths),
            sorter_name=sorter.name,
            sorter_config=resolved,
            metadata=metadata,
        )
        with tempfile.TemporaryDirectory(prefix="spikebatch-bundle-") as scratch:
            staged = stage_bundle(plan, self.storage_client, Path(scratch), self.progress)
        manifest_yaml = self._submit(manifest)
        return self._result(job_name, manifest_yaml, run_id, staged.bundle_uri, where, "sorting")

    def submit_prepared_job(self, *, job_spec: Any, run_id: Optional[str] = None, allow_policy_risk: bool = False) -> SubmitResult:
        """Submit a job without generating bundle artifacts."""
        spec = _as_job_spec(job_spec)
        self.preflight(spec, allow_policy_risk)
        run_id = run_id or new_run_id()
        job_name = make_job_name(spec.name_prefix)
        where = self._locations(run_id) if self.storage_client.prefix else {"outputs": "", "logs": ""}
        manifest_yaml = self._submit(render_job_manifest(job_name, spec, self.profile, run_id, job_type="prepared"))
        return self._result(job_name, manifest_yaml, run_id, "", where, "prepared")

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

    # --- waiting, logs, retrieval ---------------------------------------------------
    def wait_for_completion(
        self,
        job_name: str,
        max_wait_seconds: float = 3600,
        *,
        on_state: Optional[Callable[[JobState], None]] = None,
        retry_initial_seconds: float = 1.0,
        retry_max_seconds: float = 30.0,
    ) -> str:
        """Watch the job until it ends: "Complete", "Failed", "Timeout" or
        "Backend unavailable". Transient backend errors back off and retry."""
        deadline = time.monotonic() + max_wait_seconds
        delay = retry_initial_seconds
        last_error: Optional[BackendUnavailableError] = None
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return BACKEND_UNAVAILABLE if last_error else TIMEOUT
            try:
                for event in self.backend.watch(job_names=[job_name], timeout_seconds=remaining):
                    last_error = None
                    delay = retry_initial_seconds
                    if on_state:
                        on_state(event.state)
                    if event.state.is_terminal:
                        return event.state.value
                # The watch ended without a terminal state. At the deadline that is a
                # timeout; before it, the stream was cut short: ask once, then watch again.
                if time.monotonic() >= deadline:
                    return TIMEOUT
                state = self.backend.job_status(job_name)
                if state.is_terminal:
                    if on_state:
                        on_state(state)
                    return state.value
                time.sleep(min(retry_initial_seconds, max(0.0, deadline - time.monotonic())))
            except BackendUnavailableError as exc:
                last_error = exc
                time.sleep(max(0.0, min(delay, deadline - time.monotonic())))
                delay = min(delay * 2, retry_max_seconds)

    def stream_logs(self, job_name: str, follow: bool = False) -> Iterator[str]:
        return self.backend.stream_logs(job_name, follow=follow)

    def job_status(self, job_name: str) -> JobState:
        return self.backend.job_status(job_name)

    def delete_job(self, job_name: str) -> bool:
        return self.backend.delete_job(job_name)

    def retrieve_result(self, submit_result: SubmitResult, local_dir: str) -> Any:
        """Download job outputs and return the workspace the job produced."""
        if submit_result.job_type == "prepared" or not submit_result.output_prefix:
            raise ConfigError("a prepared job has no bundle outputs to retrieve; read its outputs where its command wrote them")
        target = Path(local_dir).expanduser()
        target.mkdir(parents=True, exist_ok=True)
        uris = self.storage_client.list_output_files(submit_result.output_prefix)
        if not uris:
            raise ObjectNotFoundError(
                f"no outputs under {submit_result.output_prefix} yet; call wait_for_completion first "
                f"(job {submit_result.job_name})"
            )
        self.storage_client.download_output(output_prefix=submit_result.output_prefix, local_dir=target, progress=self.progress)
        result = json.loads((target / RESULT_NAME).read_text()) if (target / RESULT_NAME).is_file() else {}
        if result.get("status") != "succeeded":
            reason = result.get("reason") or "the runner left no result"
            raise JobFailedError(
                f"job {submit_result.job_name} did not succeed ({reason}); its log is under {submit_result.logs_prefix}"
            )
        return self._codec_named(result["format"]).load_result(target / WORKSPACE_DIR)


def _as_job_spec(job_spec: Any) -> JobSpec:
    return job_spec if isinstance(job_spec, JobSpec) else validate_job_spec(job_spec)


def _as_profile(profile_or_name: Any) -> ClusterProfile:
    from ..profiles import load_cluster_profile, load_profile_from_name

    if isinstance(profile_or_name, ClusterProfile):
        return profile_or_name
    text = str(profile_or_name)
    if text.endswith((".yaml", ".yml")) or "/" in text:
        return load_cluster_profile(text)
    return load_profile_from_name(text)


def _sorter_name_for(config: Any) -> str:
    """SpikeLab's sorter for a SpikeLab config object, SpikeInterface otherwise."""
    module = type(config).__module__ if config is not None and not isinstance(config, (str, dict)) else ""
    return "spikelab" if module.startswith("spikelab") else "spikeinterface"
