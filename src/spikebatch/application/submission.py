"""What every runner submission (workspace or sorting) prepares before its bundle is
staged: where the run's files go, and the JobSpec that runs the in-container runner."""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Dict, List, Optional

from ..domain.bundle import BUNDLE_FILENAME
from ..domain.effective import effective_env, effective_volumes
from ..domain.model_base import with_changes
from ..domain.models import ClusterProfile, JobSpec, VolumeMountSpec
from ..ports.storage import ArtifactStore

RUNNER_MODULE = "spikebatch.entrypoints.runner"

#: Where a runner pod's work folder (SPIKEBATCH_WORK_DIR) is mounted, unless the job's
#: env names another folder.
WORK_DIR_MOUNT = "/var/lib/spikebatch/work"
#: The runner pod's other writable place: temporary files, and HOME.
TMP_MOUNT = "/tmp"
WORK_VOLUME, TMP_VOLUME = "spikebatch-work", "spikebatch-tmp"

_MI = 1024 * 1024
_GI = 1024 * _MI


def scratch_size_limit(input_bytes: int) -> str:
    """The sizeLimit of each of a runner pod's two scratch volumes: 3 x the input bytes
    + 1Gi, rounded up to a whole Mi.

    Why 3x: the work folder holds the downloaded bundle.zip while its files are
    extracted next to it (up to 2x the bundled bytes), the blobs (1x, but the zip is
    gone by then), and the output folder: a workspace job writes its whole workspace
    back (about 1x), a sorting job the sorter's results (far less than the recording).
    /tmp holds what the sorter works on ($TMPDIR: SpikeInterface's preprocessed copy of
    a recording plus the sorter's own files, 2-3x the recording) or a script's
    temporary files. Why + 1Gi: small inputs still get room for the runner's log,
    caches under HOME and the files a script adds. A sizeLimit is a ceiling at which the
    kubelet evicts the pod, not a reservation, so a generous one costs nothing when
    unused; it keeps a runaway job from filling the node's disk.
    """
    total = 3 * max(0, input_bytes) + _GI
    return f"{-(-total // _MI)}Mi"


def run_locations(store: ArtifactStore, run_id: str) -> Dict[str, str]:
    """The run's bundle URI and its output and log prefixes."""
    return {
        "bundle": store.build_uri(run_id=run_id, filename=BUNDLE_FILENAME, category="inputs"),
        "outputs": store.output_prefix_for_run(run_id),
        "logs": store.logs_prefix_for_run(run_id),
    }


def runner_job_spec(
    spec: JobSpec,
    profile: ClusterProfile,
    store: ArtifactStore,
    mode: str,
    env: Dict[str, str],
    input_bytes: Optional[int] = None,
) -> JobSpec:
    """``spec`` with the runner's command (unless the user gave one) and the env the
    runner reads: the store's endpoint and region, ``env``, and for a file:// store the
    folder the runner must open (the local backend's process shares this filesystem).

    On a backend that runs containers the runner also gets a read-only root filesystem
    and its writable places on emptyDir volumes (see ``_scratch``), each sized from
    ``input_bytes`` (the bundle's files and blobs) when it is known."""
    container_env = dict(spec.container.env)
    present = effective_env(spec, profile)
    if profile.endpoint_url and "S3_ENDPOINT_URL" not in present:
        container_env["S3_ENDPOINT_URL"] = profile.endpoint_url
    if profile.region_name and "AWS_DEFAULT_REGION" not in present:
        container_env["AWS_DEFAULT_REGION"] = profile.region_name
    container_env.update(env)
    local_root = getattr(store, "local_root", None)  # a store written before the port had it
    if store.scheme == "file" and local_root is not None:
        container_env["SPIKEBATCH_STORAGE_ROOT"] = str(local_root)
    command = list(spec.container.command) or ["python", "-m", RUNNER_MODULE, mode]
    container = with_changes(spec.container, env=container_env, command=command)
    runner = with_changes(spec, container=container)
    return _scratch(runner, profile, input_bytes) if profile.runs_containers else runner


def _scratch(spec: JobSpec, profile: ClusterProfile, input_bytes: Optional[int]) -> JobSpec:
    """The runner pod with nothing writable but two emptyDir volumes: its work folder
    (SPIKEBATCH_WORK_DIR) and /tmp, which is also HOME and the working directory.

    What the user chose wins: a SPIKEBATCH_WORK_DIR, HOME or working_dir in the job
    config is kept (the work volume is mounted at that SPIKEBATCH_WORK_DIR); a folder
    a profile or job volume already mounts gets no emptyDir over it; an explicit
    ``read_only_root_filesystem: false`` keeps the image writable.
    """
    present = effective_env(spec, profile)
    env = dict(spec.container.env)
    chosen = present.get("SPIKEBATCH_WORK_DIR")
    work_dir = chosen if isinstance(chosen, str) and chosen else WORK_DIR_MOUNT
    env.setdefault("SPIKEBATCH_WORK_DIR", work_dir)
    if "HOME" not in present:
        env["HOME"] = TMP_MOUNT
    existing = effective_volumes(spec, profile)
    mounted = [v.mount_path for v in existing]
    names = {v.name for v in existing}
    size_limit = scratch_size_limit(input_bytes) if input_bytes is not None else None
    volumes: List[VolumeMountSpec] = list(spec.volumes)
    for name, path in ((WORK_VOLUME, work_dir), (TMP_VOLUME, TMP_MOUNT)):
        # A relative work folder lies under the working directory (/tmp), already scratch.
        if path.startswith("/") and name not in names and not _under_any(path, mounted):
            volumes.append(VolumeMountSpec(name=name, mount_path=path, empty_dir=True, size_limit=size_limit))
            mounted.append(path)
    changes: Dict[str, object] = {"env": env}
    if spec.container.working_dir is None:
        changes["working_dir"] = TMP_MOUNT
    if "read_only_root_filesystem" not in spec.container.model_fields_set:
        changes["read_only_root_filesystem"] = True
    return with_changes(spec, container=with_changes(spec.container, **changes), volumes=volumes)


def _under_any(path: str, mount_paths: List[str]) -> bool:
    """Whether ``path`` is one of ``mount_paths`` or inside one of them."""
    parts = PurePosixPath(path).parts
    return any(parts[: len(PurePosixPath(m).parts)] == PurePosixPath(m).parts for m in mount_paths)
