"""One attempt ("pod") of a local Job: its record, its private temporary folder, its
log and its process, from start to end. The supervisors decide which attempts run;
this module runs one and records what happened, the same way for every kind of Job.

An attempt's record (``pods/<number>.json``) names its temporary folder before the
folder exists, so a delete always knows what to remove; the folder goes before the
record says the attempt ended, so whoever sees the end finds nothing of it left in the
temp root (unless ``SPIKEBATCH_KEEP_WORK_DIR`` keeps it).

Exit codes are recorded as a container runtime reports them: a process ended by a
signal N as 128 + N (SIGTERM 143, SIGKILL 137), so pod failure policies and reports
read the same numbers as on a cluster. An attempt killed for going over its memory
limit (``memory_limit``) ends with reason OOMKilled, and its log's last line says how
much it held.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Optional

from ...domain.scratch import KEEP_WORK_DIR_ENV, keep_work_dir
from . import pod_scratch
from . import state_files as st
from .memory_limit import OOM_KILLED, kill_members, size_text
from .processes import signal_group, start_ticks

#: Exit code and reason of an attempt whose process could not be started.
START_ERROR_CODE = 127
START_ERROR = "StartError"


def container_exit_code(returncode: Optional[int]) -> Optional[int]:
    """Popen's return code as a container's exit code (-N for signal N -> 128 + N)."""
    if returncode is None or returncode >= 0:
        return returncode
    return 128 - returncode


class Attempt:
    """A pod of the Job in ``job_dir``, numbered ``number`` in start order.

    ``completion_index``: the Indexed Job's index it runs (None for a NonIndexed Job).
    ``record_extra``: more fields for its record (e.g. the index's failure counts).
    ``on_gone``: called when a record cannot be written because the Job's folder was
    moved away (the Job is being deleted)."""

    def __init__(self, job_dir: Path, job_name: str, number: int, argv: list[str], env: Mapping[str, str],
                 cwd: Optional[str], *, completion_index: Optional[int] = None,
                 record_extra: Optional[Mapping[str, Any]] = None,
                 on_gone: Callable[[], None] = lambda: None) -> None:
        self.job_dir = job_dir
        self.number = number
        self.argv = argv
        self.cwd = cwd
        self.completion_index = completion_index
        self.on_gone = on_gone
        # Named like the job controller's pods: <job>-<index>-<random> for an Indexed Job.
        middle = f"-{completion_index}" if completion_index is not None else ""
        self.pod_name = f"{job_name}{middle}-{secrets.token_hex(3)[:5]}"
        self.env = dict(os.environ)
        self.env.update(env)
        self.keep = keep_work_dir(self.env)
        self.scratch = pod_scratch.pod_dir_path(pod_scratch.temp_root(self.env), self.pod_name)
        self.env["TMPDIR"] = str(self.scratch)
        self.record: dict[str, Any] = {"name": self.pod_name, "index": number, "phase": "Pending",
                                       "creationTimestamp": st.now_iso_precise(), "tmpDir": str(self.scratch)}
        if completion_index is not None:
            self.record["completionIndex"] = completion_index
        self.record.update(record_extra or {})
        self.proc: Optional[subprocess.Popen] = None
        #: Set once the attempt has ended: its exit code and reason ("" when it ended by itself).
        self.exit_code: Optional[int] = None
        self.reason = ""
        self.ended = False
        #: Lines for the top of its log, written before the process starts (so the job's
        #: own last line stays the log's last line).
        self.notes: list[str] = []
        #: Set when it was killed for its memory: (bytes held, the limit).
        self.memory_killed: Optional[tuple[int, int]] = None

    # ------------------------------------------------------------------ record
    def write_record(self) -> None:
        try:
            st.write_json(st.pod_record_path(self.job_dir, self.number), self.record)
        except FileNotFoundError:
            self.on_gone()

    @property
    def running(self) -> bool:
        return self.proc is not None and not self.ended

    @property
    def oom_killed(self) -> bool:
        return self.memory_killed is not None

    # ------------------------------------------------------------------ start
    def start(self) -> bool:
        """Write the record, make the folder, start the process. False when it could
        not start: the attempt has then ended as a StartError."""
        self.write_record()
        with open(st.pod_log_path(self.job_dir, self.number), "ab", buffering=0) as log:
            try:
                pod_scratch.make_pod_dir(self.scratch)
            except OSError as exc:
                log.write(f"cannot create the pod's temporary folder {self.scratch}: "
                          f"{exc.strerror or exc}\n".encode())
                self._start_failed()
                return False
            if self.keep:  # said first: the job's own last line stays the log's last line
                log.write(f"spikebatch: this pod's temporary folder {self.scratch} is kept after it ends "
                          f"({KEEP_WORK_DIR_ENV} is set); job-delete removes it\n".encode())
            for note in self.notes:
                log.write(f"{note}\n".encode())
            try:
                self.proc = subprocess.Popen(
                    self.argv, env=self.env, cwd=self.cwd or None,
                    stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                    start_new_session=True)  # its own group: deadline and delete kill all of it
            except (OSError, ValueError) as exc:
                # ValueError: a NUL byte or "=" where the env cannot have one (refused when the
                # Job is applied; should one get here, the pod fails instead of the supervisor).
                what = (exc.strerror if isinstance(exc, OSError) else None) or exc
                log.write(f"cannot start {self.argv[0]!r}: {what}\n".encode())
                self.release_scratch()
                self._start_failed()
                return False
        self.record.update(phase="Running", pid=self.proc.pid, startTicks=start_ticks(self.proc.pid),
                           startTime=st.now_iso_precise())
        self.write_record()
        return True

    def _start_failed(self) -> None:
        self.ended = True
        self.exit_code, self.reason = START_ERROR_CODE, START_ERROR
        self.record.update(phase="Failed", reason=START_ERROR, exitCode=START_ERROR_CODE,
                           startTime=st.now_iso_precise(), finishTime=st.now_iso_precise())
        self.write_record()

    # ------------------------------------------------------------------ running
    def poll(self) -> Optional[int]:
        """The process's exit code once it has exited (not yet recorded), else None."""
        assert self.proc is not None
        return container_exit_code(self.proc.poll())

    def wait(self, timeout: float) -> Optional[int]:
        """Wait up to ``timeout`` s; the exit code, or None if still running."""
        assert self.proc is not None
        try:
            return container_exit_code(self.proc.wait(timeout=timeout))
        except subprocess.TimeoutExpired:
            return None

    def signal(self, sig: int) -> None:
        """Send ``sig`` to the attempt's whole process group."""
        if self.running:
            signal_group(self.proc.pid, None, sig)  # type: ignore[union-attr]

    def kill_for_memory(self, pids: list[int], used: int, limit: int) -> None:
        """SIGKILL all of the attempt's processes: together they hold ``used`` bytes,
        over its memory limit of ``limit``. It is recorded as OOMKilled once its process
        has ended (``conclude``)."""
        if self.running and not self.oom_killed:
            self.memory_killed = (used, limit)
            kill_members(self.proc.pid, pids)  # type: ignore[union-attr]

    def kill_leftovers(self) -> None:
        """SIGKILL what the attempt left in its group after its main process ended."""
        if self.proc is not None:
            signal_group(self.proc.pid, None, signal.SIGKILL)

    # ------------------------------------------------------------------ end
    def conclude(self, code: Optional[int], reason: str = "") -> None:
        """Record the end: folder removed first, then the record's phase and exit code.
        ``reason``: why it was stopped ("DeadlineExceeded", ...), "" if it exited by itself."""
        if self.memory_killed is not None and not reason and code != 0:  # not if it ended well first
            reason = OOM_KILLED
            self._log_memory_kill(*self.memory_killed)
        self.ended = True
        self.exit_code, self.reason = code, reason
        self.release_scratch()
        self.record.update(phase="Succeeded" if code == 0 and not reason else "Failed",
                           exitCode=code, finishTime=st.now_iso_precise())
        if reason:
            self.record["reason"] = reason
        self.write_record()

    def _log_memory_kill(self, used: int, limit: int) -> None:
        """The log's last line: what a person reading it (or job-status, which shows
        the last line of a failed pod's log) needs to know and do."""
        line = (f"spikebatch: killed: the job held {size_text(used)}, over its memory limit of {size_text(limit)} "
                "(resources.limits.memory); give it more memory (--memory, or resources.limits_memory in the job "
                "config) or make it use less\n")
        try:
            with open(st.pod_log_path(self.job_dir, self.number), "ab", buffering=0) as log:
                log.write(line.encode())
        except FileNotFoundError:
            self.on_gone()

    def release_scratch(self) -> None:
        """Remove the attempt's temporary folder, unless it is to be kept."""
        if self.keep:
            return
        problem = pod_scratch.remove_pod_dir(str(self.scratch))
        if problem:
            print(f"warning: {problem}", file=sys.stderr, flush=True)  # into supervisor.log


def stop_attempts(attempts: list[Attempt], grace: float, reason: str) -> None:
    """Stop every running attempt at once, as a kubelet stops a deleted pod: SIGTERM to
    each group, up to ``grace`` s for them all to exit, SIGKILL for what is left; then
    record each as ended for ``reason``."""
    running = [a for a in attempts if a.running]
    for attempt in running:
        attempt.signal(signal.SIGTERM)
    until = time.monotonic() + grace
    codes: dict[int, Optional[int]] = {}
    while len(codes) < len(running) and time.monotonic() < until:
        for attempt in running:
            if attempt.number not in codes:
                code = attempt.poll()
                if code is not None:
                    codes[attempt.number] = code
        if len(codes) < len(running):
            time.sleep(0.02)
    for attempt in running:
        if attempt.number not in codes:
            attempt.signal(signal.SIGKILL)
            codes[attempt.number] = attempt.wait(timeout=30)
        attempt.kill_leftovers()  # children the attempt left behind in its group go too
        attempt.conclude(codes[attempt.number], reason)
