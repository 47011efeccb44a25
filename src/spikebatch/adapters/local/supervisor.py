"""The detached process that runs one local Job: its attempts ("pods") one after the
other, up to backoffLimit retries, within activeDeadlineSeconds, writing a batch/v1
Job status as it goes (see ``state_files`` for the files).

The backend starts it as ``main(["launch", <job folder>])`` in a new interpreter (a
``python -c`` code string naming this module; see ``LocalProcessBackend``): that
process forks the supervisor into a new session and exits once the supervisor has
recorded its pid, so the supervisor outlives the caller and, orphaned, is reaped by
init rather than lingering as a zombie of a long-lived caller.

SIGTERM (the backend's delete) stops the running attempt's process group and ends
the supervisor without writing anything more: the Job is being deleted.

Each attempt gets a private temporary folder as its ``$TMPDIR`` (``pod_scratch``),
named in its pod record before it is made and removed once the attempt's process has
ended (before the record says so), unless ``SPIKEBATCH_KEEP_WORK_DIR`` is set.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
import traceback
from pathlib import Path
from typing import Any, Optional

from ...domain.scratch import KEEP_WORK_DIR_ENV, keep_work_dir
from . import pod_scratch
from . import state_files as st
from .processes import signal_group, start_ticks

#: Local retry back-off: 1 s, doubling, at most 30 s (the job controller uses 10 s
#: doubling to 6 min; a laptop has no crowded node to protect).
BACKOFF_BASE_SECONDS = 1.0
BACKOFF_MAX_SECONDS = 30.0


class Supervisor:
    def __init__(self, job_dir: Path) -> None:
        self.job_dir = job_dir
        manifest = st.read_json(job_dir / st.MANIFEST) or {}
        self.job_name = (manifest.get("metadata") or {}).get("name", job_dir.name)
        self.launch: dict[str, Any] = st.read_json(job_dir / st.LAUNCH) or {}
        self.status: dict[str, Any] = {"active": 0, "ready": 0, "failed": 0, "succeeded": 0}
        self.current: Optional[subprocess.Popen] = None
        self.stopping = False

    # ------------------------------------------------------------------ state
    def write_status(self) -> None:
        try:
            st.write_json(self.job_dir / st.STATUS, self.status)
        except FileNotFoundError:
            # The folder was moved away: the Job is being deleted.
            self.stopping = True

    def write_pod(self, index: int, record: dict[str, Any]) -> None:
        try:
            st.write_json(st.pod_record_path(self.job_dir, index), record)
        except FileNotFoundError:
            self.stopping = True

    def finish(self, outcome: str, reason: str, message: str) -> None:
        now = st.now_iso()
        decided = "SuccessCriteriaMet" if outcome == "Complete" else "FailureTarget"
        self.status.update(active=0, ready=0, completionTime=now if outcome == "Complete" else None)
        self.status["conditions"] = [
            {"type": decided, "status": "True", "reason": reason, "message": message,
             "lastTransitionTime": now, "lastProbeTime": now},
            {"type": outcome, "status": "True", "reason": reason, "message": message,
             "lastTransitionTime": now, "lastProbeTime": now},
        ]
        if self.status.get("completionTime") is None:
            del self.status["completionTime"]
        self.write_status()

    # ------------------------------------------------------------------ signals
    def on_sigterm(self, signum: int, frame: Any) -> None:
        self.stopping = True
        proc = self.current
        if proc is not None and proc.poll() is None:
            signal_group(proc.pid, None, signal.SIGTERM)

    # ------------------------------------------------------------------ attempts
    def run_attempt(self, index: int, deadline: Optional[float]) -> tuple[Optional[int], str]:
        """Run one pod. Returns (exit code or None, "" | "DeadlineExceeded" | "StartError")."""
        pod_name = f"{self.job_name}-{secrets.token_hex(3)[:5]}"
        log_path = st.pod_log_path(self.job_dir, index)
        env = dict(os.environ)
        env.update(self.launch.get("env") or {})
        keep = keep_work_dir(env)
        scratch = pod_scratch.pod_dir_path(pod_scratch.temp_root(env), pod_name)
        env["TMPDIR"] = str(scratch)
        # The record names the folder before it exists: a delete always knows what to remove.
        record: dict[str, Any] = {"name": pod_name, "index": index, "phase": "Pending",
                                  "creationTimestamp": st.now_iso_precise(), "tmpDir": str(scratch)}
        self.write_pod(index, record)
        with open(log_path, "ab", buffering=0) as log:
            try:
                pod_scratch.make_pod_dir(scratch)
            except OSError as exc:
                log.write(f"cannot create the pod's temporary folder {scratch}: {exc.strerror or exc}\n".encode())
                return self.start_failed(index, record)
            if keep:  # said first: the job's own last line stays the log's last line
                log.write(f"spikebatch: this pod's temporary folder {scratch} is kept after it ends "
                          f"({KEEP_WORK_DIR_ENV} is set); job-delete removes it\n".encode())
            try:
                self.current = subprocess.Popen(
                    self.launch["argv"], env=env, cwd=self.launch.get("cwd") or None,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)  # its own group: deadline and delete kill all of it
            except (OSError, ValueError) as exc:
                # ValueError: a NUL byte or "=" where the env cannot have one (refused when the
                # Job is applied; should one get here, the pod fails instead of the supervisor).
                what = (exc.strerror if isinstance(exc, OSError) else None) or exc
                log.write(f"cannot start {self.launch['argv'][0]!r}: {what}\n".encode())
                self.release_scratch(scratch, keep)
                return self.start_failed(index, record)
        proc = self.current
        record.update(phase="Running", pid=proc.pid, startTicks=start_ticks(proc.pid),
                      startTime=st.now_iso_precise())
        self.write_pod(index, record)
        self.status.update(active=1, ready=1)
        self.write_status()

        reason = ""
        while True:
            timeout = 0.5 if deadline is None else max(0.0, min(0.5, deadline - time.monotonic()))
            try:
                code: Optional[int] = proc.wait(timeout=timeout)
                break
            except subprocess.TimeoutExpired:
                pass
            if self.stopping:
                reason = "Deleted"
            elif deadline is not None and time.monotonic() >= deadline:
                reason = "DeadlineExceeded"
            if reason:
                code = self.stop_attempt(proc)
                break
        self.current = None
        # The folder goes before the record says the pod ended: whoever sees the end
        # finds nothing of the pod left in the temp root.
        self.release_scratch(scratch, keep)
        record.update(phase="Succeeded" if code == 0 and not reason else "Failed",
                      exitCode=code, finishTime=st.now_iso_precise())
        if reason:
            record["reason"] = reason
        self.write_pod(index, record)
        return code, reason

    def start_failed(self, index: int, record: dict[str, Any]) -> tuple[Optional[int], str]:
        record.update(phase="Failed", reason="StartError", exitCode=127,
                      startTime=st.now_iso_precise(), finishTime=st.now_iso_precise())
        self.write_pod(index, record)
        return 127, "StartError"

    def release_scratch(self, scratch: Path, keep: bool) -> None:
        """Remove the attempt's temporary folder, unless it is to be kept."""
        if keep:
            return
        problem = pod_scratch.remove_pod_dir(str(scratch))
        if problem:
            print(f"warning: {problem}", file=sys.stderr, flush=True)  # into supervisor.log

    def stop_attempt(self, proc: subprocess.Popen) -> Optional[int]:
        grace = float(self.launch.get("gracePeriodSeconds", 5))
        signal_group(proc.pid, None, signal.SIGTERM)
        try:
            return proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            signal_group(proc.pid, None, signal.SIGKILL)
            return proc.wait()
        finally:
            # Children the attempt left behind in its group go too.
            signal_group(proc.pid, None, signal.SIGKILL)

    def run(self) -> int:
        signal.signal(signal.SIGTERM, self.on_sigterm)
        signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C aimed at the caller is not a delete
        backoff_limit = int(self.launch.get("backoffLimit", 6))
        deadline_s = self.launch.get("activeDeadlineSeconds")
        deadline = time.monotonic() + float(deadline_s) if deadline_s else None
        self.status["startTime"] = st.now_iso()
        self.write_status()
        index = 0
        while not self.stopping:
            code, reason = self.run_attempt(index, deadline)
            if self.stopping:
                break
            index += 1
            if reason == "DeadlineExceeded":
                self.status["failed"] += 1
                self.finish("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
                break
            if code == 0:
                self.status["succeeded"] = 1
                self.finish("Complete", "CompletionsReached", "Reached expected number of succeeded pods")
                break
            self.status["failed"] += 1
            if self.status["failed"] > backoff_limit:
                self.finish("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
                break
            self.status.update(active=0, ready=0)
            self.write_status()
            if not self.wait_backoff(self.status["failed"], deadline):
                if not self.stopping:
                    self.finish("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
                break
        return 0

    def wait_backoff(self, failures: int, deadline: Optional[float]) -> bool:
        """Sleep before the next attempt; False when the deadline or a delete came first."""
        until = time.monotonic() + min(BACKOFF_MAX_SECONDS, BACKOFF_BASE_SECONDS * 2 ** (failures - 1))
        while time.monotonic() < until:
            if self.stopping or (deadline is not None and time.monotonic() >= deadline):
                return False
            time.sleep(0.05)
        return not self.stopping and (deadline is None or time.monotonic() < deadline)


def _launch(job_dir: Path) -> int:
    """Fork the supervisor into its own session; return once it has recorded its pid."""
    ready_r, ready_w = os.pipe()
    pid = os.fork()
    if pid:
        os.close(ready_w)
        os.read(ready_r, 1)  # EOF once the supervisor has written supervisor.json
        print(pid, flush=True)
        return 0
    os.close(ready_r)
    os.setsid()
    log_fd = os.open(job_dir / st.SUPERVISOR_LOG, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    null_fd = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null_fd, 0)
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    code = 1
    try:
        me = os.getpid()
        st.write_json(job_dir / st.SUPERVISOR, {"pid": me, "startTicks": start_ticks(me)})
        os.close(ready_w)
        code = Supervisor(job_dir).run()
    except BaseException:
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "launch":
        print("usage: python -m spikebatch.adapters.local.supervisor launch <job folder>", file=sys.stderr)
        return 2
    return _launch(Path(argv[1]))


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
