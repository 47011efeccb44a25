"""The program inside the job container: ``python -m spikebatch.entrypoints.runner MODE``.

MODE is ``workspace`` (run the user's script against the workspace) or ``sorting``
(sort each recording). Configured by the environment the rendered Job sets:

  INPUT_URI        the bundle (s3://... or file://...)
  OUTPUT_PREFIX    where outputs go (ends with "/")
  LOGS_PREFIX      where runner.log goes (default: OUTPUT_PREFIX)
  SCRIPT_NAME      the script's file name (workspace mode; default: the bundle's)
  S3_ENDPOINT_URL, AWS_DEFAULT_REGION   the S3 endpoint, when the URIs are s3://
  SPIKEBATCH_WORK_DIR                   scratch folder (default: a temporary one)

The local backend runs this same program as a subprocess, so a laptop run and a
cluster run take one code path. Exit codes: 0 success, 1 the script or the sorter
failed, 2 bad configuration or inputs (missing variable, integrity failure).
The last line on stdout is a marker a person or a log scraper can find:
``SPIKEBATCH_RESULT status=succeeded|failed ...``.
"""

from __future__ import annotations

import os
import sys
import tempfile
import traceback
from pathlib import Path
from typing import List, Optional

from ..application.job_runtime import (
    BundleFetcher,
    LogTee,
    run_sorting,
    run_workspace_script,
    upload_tree,
    write_result,
)
from .. import container
from ..domain.bundle import RUNNER_LOG_NAME
from ..domain.errors import SpikebatchError

MARKER = "SPIKEBATCH_RESULT"
MODES = ("workspace", "sorting")


def _env(name: str, required: bool = True) -> Optional[str]:
    value = os.environ.get(name) or None
    if required and not value:
        raise SpikebatchError(f"environment variable {name} is not set; the Job manifest must set it")
    return value


def run(mode: str) -> int:
    if mode not in MODES:
        print(f"usage: python -m spikebatch.entrypoints.runner {{{'|'.join(MODES)}}}", file=sys.stderr)
        return 2
    try:
        input_uri = _env("INPUT_URI")
        output_prefix = _env("OUTPUT_PREFIX")
        logs_prefix = _env("LOGS_PREFIX", required=False) or output_prefix
        if not output_prefix.endswith("/") or not logs_prefix.endswith("/"):
            raise SpikebatchError("OUTPUT_PREFIX and LOGS_PREFIX must end with '/'")
        store = container.store_for_uri(input_uri)
    except SpikebatchError as exc:
        print(f"{MARKER} status=failed reason=config error={exc.message}", flush=True)
        return 2

    work_root = Path(os.environ.get("SPIKEBATCH_WORK_DIR") or tempfile.mkdtemp(prefix="spikebatch-run-"))
    work_root.mkdir(parents=True, exist_ok=True)
    log_path = work_root / RUNNER_LOG_NAME
    status, reason, code, result_format = "failed", "", 1, ""
    outcome_files: List[str] = []
    with LogTee(log_path):
        try:
            print(f"spikebatch runner: mode={mode} input={input_uri}", flush=True)
            fetcher = BundleFetcher(store, work_root / "work")
            manifest = fetcher.fetch(input_uri)
            if manifest.job_type != mode:
                raise SpikebatchError(f"bundle is a {manifest.job_type} bundle but the runner mode is {mode}")
            output_dir = work_root / "output"
            output_dir.mkdir(exist_ok=True)
            if mode == "workspace":
                script_name = os.environ.get("SCRIPT_NAME") or manifest.script
                codec = container.workspace_codec(manifest.format)
                result_format = codec.name
                ok, reason = run_workspace_script(manifest, fetcher.work_dir, output_dir, script_name, codec)
            else:
                codec = container.result_workspace_codec()
                result_format = codec.name
                ok, reason = run_sorting(
                    manifest,
                    fetcher.work_dir,
                    output_dir,
                    container.sorter(manifest.sorting["sorter"]),
                    codec,
                    container.sorting_result_items,
                )
            outcome_files = upload_tree(store, output_dir, output_prefix)
            status, code = ("succeeded", 0) if ok else ("failed", 1)
        except SpikebatchError as exc:
            reason, code = f"{type(exc).__name__}: {exc.message}", 2
            print(f"error: {exc.message}", flush=True)
        except Exception as exc:  # the runner's own failure must still leave a log and a marker
            reason, code = f"{type(exc).__name__}: {exc}", 1
            traceback.print_exc()
        write_result(
            store, output_prefix, mode=mode, status=status, reason=reason, format=result_format, files=outcome_files
        )
        print(f"{MARKER} status={status}" + (f" reason={reason}" if reason else ""), flush=True)
    try:
        store.upload_file(local_path=log_path, s3_uri=logs_prefix + RUNNER_LOG_NAME)
    except SpikebatchError as exc:
        print(f"warning: could not upload {RUNNER_LOG_NAME}: {exc.message}", file=sys.stderr, flush=True)
    return code


def main(argv: Optional[List[str]] = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    sys.exit(run(args[0] if args else ""))


if __name__ == "__main__":
    main()
