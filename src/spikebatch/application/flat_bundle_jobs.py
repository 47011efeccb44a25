"""Jobs over the spec's flat bundle (``artifact_packager.package_analysis_bundle``): what
``python -m spikebatch.entrypoints.workspace`` / ``.sorting`` do inside a container.

- workspace: fetch the bundle, find the one SpikeLab workspace ``.h5`` in it (by its
  ``__workspace_id__`` attribute, not its name) and the one script named SCRIPT_NAME,
  run the script with the workspace as the global ``workspace``, then upload the
  workspace it leaves (the same object or one it put in ``workspace``) as
  ``workspace.h5`` + ``workspace.json`` under OUTPUT_PREFIX.
- sorting: fetch the bundle, read ``sorting_config.json`` and the recordings the
  manifest declares (``recording_files``; companion files stay unsorted), sort each
  one, upload ``<stem>_curated.pkl`` (the recording's SpikeData) per recording,
  ``sorting_report.json``, ``sort_run_report.json`` and the QC figures.

Written against the ArtifactStore and Sorter ports; SpikeLab's workspace is reached
through the ``SpikeLabWorkspaces`` callables the entrypoint passes in.
"""

from __future__ import annotations

import json
import pickle
import runpy
import sys
import time
import traceback
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping

from ..domain.bundle import safe_relative_path
from ..domain.errors import IntegrityError, SpikebatchError, UnsafePathError
from ..ports.sorter import Sorter
from ..ports.storage import ArtifactStore

MANIFEST_NAME = "manifest.json"
CONFIG_NAME = "sorting_config.json"
REPORT_NAME = "sorting_report.json"
RUN_REPORT_NAME = "sort_run_report.json"
WORKSPACE_BASE = "workspace"
#: Keys of the config our SpikeInterface sorter resolves (anything else is SpikeLab's).
SPIKEINTERFACE_CONFIG_KEYS = frozenset({"sorter_name", "preset", "params", "overrides"})


class ScriptFailed(Exception):
    """The user's script raised or exited non-zero (its traceback is already printed)."""


@dataclass(frozen=True)
class SpikeLabWorkspaces:
    """How the job reaches SpikeLab: which ``.h5`` is a workspace, load, save, and the
    SpikeData a sorter saved (from the spikedata workspace it wrote)."""

    is_workspace_h5: Callable[[Path], bool]
    load: Callable[[str], Any]
    save: Callable[[Any, str], None]
    saved_spikedata: Callable[[Path, str], Any]


def required_env(env: Mapping[str, str], name: str) -> str:
    value = env.get(name)
    if not value:
        raise SpikebatchError(f"environment variable {name} is not set; the Job must set it")
    return value


def fetch_bundle(store: ArtifactStore, input_uri: str, work: Path) -> Path:
    """Download and unpack the bundle into ``work/input``; members that would land
    outside it (absolute paths, '..', links) are refused before anything is written."""
    archive = work / "input.zip"
    store.download_file(s3_uri=input_uri, local_path=archive)
    target = work / "input"
    target.mkdir()
    try:
        bundle = zipfile.ZipFile(archive)
    except zipfile.BadZipFile:
        raise IntegrityError(f"bundle {input_uri} is not a zip archive; package it with package_analysis_bundle") from None
    with bundle:
        for member in bundle.infolist():
            if (member.external_attr >> 16) & 0o170000 == 0o120000:
                raise UnsafePathError(f"bundle member {member.filename!r} is a symbolic link; refusing the bundle")
            safe_relative_path(member.filename.rstrip("/"))
        bundle.extractall(target)
    archive.unlink()
    return target


def _only(found: List[Path], what: str, where: Path) -> Path:
    if not found:
        raise SpikebatchError(f"no {what} in the bundle")
    if len(found) > 1:
        names = ", ".join(str(p.relative_to(where)) for p in found)
        raise SpikebatchError(f"the bundle holds more than one {what} ({names}); it must hold exactly one")
    return found[0]


def run_workspace_bundle(store: ArtifactStore, env: Mapping[str, str], work: Path, spikelab: SpikeLabWorkspaces) -> None:
    """The workspace job (see the module doc). Raises ScriptFailed when the script fails."""
    input_uri, output_prefix = required_env(env, "INPUT_URI"), required_env(env, "OUTPUT_PREFIX")
    script_name = required_env(env, "SCRIPT_NAME")
    unpacked = fetch_bundle(store, input_uri, work)
    workspace_h5 = _only([p for p in sorted(unpacked.rglob("*.h5")) if spikelab.is_workspace_h5(p)],
                         "SpikeLab workspace .h5 (written by AnalysisWorkspace.save)", unpacked)
    script = _only(sorted(p for p in unpacked.rglob(script_name) if p.is_file()), f"script named {script_name!r}", unpacked)
    workspace = spikelab.load(str(workspace_h5.with_suffix("")))
    print(f"running {script.name} on workspace {workspace_h5.name}", flush=True)
    try:
        after = runpy.run_path(str(script), init_globals={"workspace": workspace}, run_name="__main__")
    except SystemExit as exc:
        if exc.code not in (None, 0):
            print(f"WORKSPACE_SCRIPT_FAILED: SystemExit: {exc.code}", file=sys.stderr, flush=True)
            raise ScriptFailed(f"script {script.name} exited with status {exc.code}") from None
        after = {"workspace": workspace}
    except BaseException as exc:  # any error of the user's script fails the job, with its traceback
        traceback.print_exc()
        print(f"WORKSPACE_SCRIPT_FAILED: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        raise ScriptFailed(f"script {script.name} raised {type(exc).__name__}: {exc}") from None
    output = work / "output"
    output.mkdir()
    spikelab.save(after.get("workspace", workspace), str(output / WORKSPACE_BASE))
    for suffix in (".h5", ".json"):
        store.upload_file(local_path=output / f"{WORKSPACE_BASE}{suffix}", s3_uri=f"{output_prefix}{WORKSPACE_BASE}{suffix}")
    print("Workspace job completed successfully.", flush=True)


def _read_json(path: Path, what: str) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise IntegrityError(f"{what} is not JSON ({exc})") from None


def _declared_recordings(unpacked: Path) -> List[Path]:
    """The recordings the bundle's manifest.json declares (``recording_files``), found
    beside it: at the bundle's root or in its one top folder (where
    package_analysis_bundle puts it)."""
    candidates = [unpacked / MANIFEST_NAME, *sorted(unpacked.glob(f"*/{MANIFEST_NAME}"))]
    path = _only([p for p in candidates if p.is_file()], MANIFEST_NAME, unpacked)
    manifest = _read_json(path, f"the bundle's {MANIFEST_NAME}")
    if not isinstance(manifest, dict) or not manifest.get("recording_files"):
        raise SpikebatchError(f"the bundle's {MANIFEST_NAME} declares no recording_files; package it with "
                              "package_analysis_bundle(output_format='sorting', recording_files=[...])")
    paths, stems = [], {}
    for name in manifest["recording_files"]:
        recording = path.parent / safe_relative_path(str(name))
        if not recording.exists():
            raise IntegrityError(f"recording {name!r} declared in {MANIFEST_NAME} is not in the bundle")
        if recording.stem in stems:
            raise SpikebatchError(f"recordings {stems[recording.stem]!r} and {name!r} share the stem "
                                  f"{recording.stem!r} and would both be {recording.stem}_curated.pkl; rename one")
        stems[recording.stem] = name
        paths.append(recording)
    return paths


def sorter_name_of(config: Mapping[str, Any]) -> str:
    """"spikeinterface" for our SpikeInterface sorter's resolved config, else "spikelab"
    (the spec's ``dataclasses.asdict(SortingPipelineConfig)`` form)."""
    return "spikeinterface" if set(config) <= SPIKEINTERFACE_CONFIG_KEYS and "sorter_name" in config else "spikelab"


def run_sorting_bundle(store: ArtifactStore, env: Mapping[str, str], work: Path,
                       sorter_named: Callable[[str], Sorter], spikelab: SpikeLabWorkspaces) -> bool:
    """The sorting job (see the module doc); True when every recording was sorted."""
    input_uri, output_prefix = required_env(env, "INPUT_URI"), required_env(env, "OUTPUT_PREFIX")
    unpacked = fetch_bundle(store, input_uri, work)
    config_path = _only(sorted(unpacked.rglob(CONFIG_NAME)), CONFIG_NAME, unpacked)
    config = _read_json(config_path, CONFIG_NAME)
    if not isinstance(config, dict):
        raise SpikebatchError(f"{CONFIG_NAME} must hold a JSON object")
    recordings = _declared_recordings(unpacked)
    sorter = sorter_named(sorter_name_of(config))
    sorter_label = str(config.get("sorter_name") or (config.get("sorter") or {}).get("sorter_name") or sorter.name)
    results = work / "results"
    print(f"sorting {len(recordings)} recording(s) with {sorter_label}", flush=True)
    records = []
    for recording in recordings:
        started = time.monotonic()
        record: Dict[str, Any] = {"rec_path": recording.name, "status": "succeeded", "error": None}
        try:
            outcome = sorter.sort(recording, config, results / recording.stem)
            pickled = results / f"{recording.stem}_curated.pkl"
            spikedata = spikelab.saved_spikedata(Path(outcome.units_path).parent, outcome.recording)
            with pickled.open("wb") as sink:
                pickle.dump(spikedata, sink)
            store.upload_file(local_path=pickled, s3_uri=f"{output_prefix}{pickled.name}")
            record["unit_count"] = outcome.unit_count
            for figure in outcome.figure_paths:
                store.upload_file(local_path=figure, s3_uri=f"{output_prefix}{Path(figure).relative_to(results).as_posix()}")
        except Exception as exc:  # one recording's failure is recorded; the others are still sorted
            traceback.print_exc()
            record.update(status="failed", error=f"{type(exc).__name__}: {exc}")
            print(f"sorting {recording.name} failed: {record['error']}", flush=True)
        record["wall_time_s"] = round(time.monotonic() - started, 3)
        records.append(record)
    succeeded = [r for r in records if r["status"] == "succeeded"]
    report = {"n_recordings": len(recordings), "n_results": len(succeeded),
              "recording_names": [r.stem for r in recordings], "sorter": sorter_label,
              "all_succeeded": len(succeeded) == len(records), "n_succeeded": len(succeeded),
              "n_failed": len(records) - len(succeeded)}
    results.mkdir(parents=True, exist_ok=True)
    for name, content in ((REPORT_NAME, report), (RUN_REPORT_NAME, {"records": records})):
        (results / name).write_text(json.dumps(content, indent=2, default=str), encoding="utf-8")
        store.upload_file(local_path=results / name, s3_uri=f"{output_prefix}{name}")
    if report["all_succeeded"]:
        print(f"Sorting job completed successfully ({len(succeeded)}/{len(records)} recordings).", flush=True)
    else:
        failed = ", ".join(r["rec_path"] for r in records if r["status"] != "succeeded")
        print(f"Sorting job failed for {report['n_failed']}/{len(records)} recordings ({failed}); "
              f"see {RUN_REPORT_NAME}.", flush=True)
    return bool(report["all_succeeded"])
