"""Child-process management for the test environment.

Every server runs in its own process group (its own session), so a Ctrl-C in the
terminal does not hit it half-way and ``stop()`` can take down the whole group.
All live processes are registered; they are stopped

* explicitly (fixture teardown, ``TestEnv.stop``),
* at interpreter exit (``atexit``),
* on SIGTERM / SIGHUP / SIGQUIT (signal handlers that stop everything, then hand
  the signal on to whatever handler was there before),
* and, as a last resort when the Python process is SIGKILLed, by the kernel:
  children started from the main thread get ``PR_SET_PDEATHSIG=SIGKILL``.
"""
from __future__ import annotations

import atexit
import ctypes
import os
import signal
import socket
import ssl
import subprocess
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable, Mapping, Sequence

_LIVE: "set[ManagedProcess]" = set()
_LIVE_LOCK = threading.RLock()
_SEQ = iter(range(1, 1 << 62))
_HANDLERS_INSTALLED = False
_PREVIOUS: dict[int, object] = {}


class StartupError(RuntimeError):
    """A server did not come up; the message carries the tail of its log."""


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _set_pdeathsig() -> None:  # runs in the child between fork and exec
    try:
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except OSError:
        # No glibc here: the process-group cleanup in stop_all still ends the child.
        return


def stop_all() -> None:
    """Stop every live process, newest first (kwok before kube-apiserver before etcd:
    an API server whose etcd is gone hangs in its shutdown)."""
    with _LIVE_LOCK:
        procs = sorted(_LIVE, key=lambda p: p._seq, reverse=True)
    for p in procs:
        p.stop()


def _on_signal(signum, frame):  # pragma: no cover - exercised by hand / CI
    stop_all()
    prev = _PREVIOUS.get(signum)
    if callable(prev):
        prev(signum, frame)
    elif prev == signal.SIG_IGN:
        return
    else:
        # Unwind like Ctrl-C: pytest then reports "interrupted" and runs its teardowns.
        raise KeyboardInterrupt(f"signal {signum}")


def install_handlers() -> None:
    """atexit + SIGTERM/SIGHUP/SIGQUIT handlers (main thread only; idempotent)."""
    global _HANDLERS_INSTALLED
    if _HANDLERS_INSTALLED:
        return
    atexit.register(stop_all)
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT):
            try:
                _PREVIOUS[sig] = signal.getsignal(sig)
                signal.signal(sig, _on_signal)
            except (ValueError, OSError):
                pass
    _HANDLERS_INSTALLED = True


class ManagedProcess:
    def __init__(self, name: str, argv: Sequence[str], *, log_path: Path,
                 env: Mapping[str, str] | None = None, cwd: Path | None = None) -> None:
        self.name = name
        self.argv = [str(a) for a in argv]
        self.log_path = Path(log_path)
        self.env = dict(env) if env is not None else None
        self.cwd = cwd
        self.proc: subprocess.Popen | None = None
        self._seq = 0

    def start(self) -> "ManagedProcess":
        install_handlers()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = open(self.log_path, "ab")
        log.write(f"\n==== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
        log.flush()
        in_main = threading.current_thread() is threading.main_thread()
        try:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                env=self.env, cwd=self.cwd, start_new_session=True,
                preexec_fn=_set_pdeathsig if in_main else None,
            )
        finally:
            log.close()
        with _LIVE_LOCK:
            self._seq = next(_SEQ)
            _LIVE.add(self)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _signal(self, sig: int) -> None:
        if self.proc is None:
            return
        try:
            os.killpg(self.proc.pid, sig)  # its own group: pgid == pid
        except (ProcessLookupError, PermissionError):
            pass

    def stop(self, timeout: float = 2.0) -> None:
        """SIGTERM; after ``timeout`` s a second SIGTERM (Kubernetes components exit at
        once on a second signal: kube-apiserver stops listening at the first one but
        can linger ~30 s in its shutdown); 2 s later SIGKILL."""
        if self.proc is None:
            return
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGTERM, 2.0), (signal.SIGKILL, 10.0)):
            if self.proc.poll() is not None:
                break
            self._signal(sig)
            try:
                self.proc.wait(timeout=wait)
            except subprocess.TimeoutExpired:
                continue
        # The leader is gone; make sure nothing else of its group lingers.
        self._signal(signal.SIGKILL)
        with _LIVE_LOCK:
            _LIVE.discard(self)

    def log_tail(self, lines: int = 25) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def fail(self, why: str) -> StartupError:
        return StartupError(f"{self.name}: {why}\n--- last lines of {self.log_path} ---\n{self.log_tail()}")


def wait_until(proc: ManagedProcess, check: Callable[[], bool], *, timeout: float, what: str,
               interval: float = 0.2) -> float:
    """Poll ``check`` until true; fail early if the process dies. Returns seconds waited."""
    start = time.monotonic()
    last_err: Exception | None = None
    while True:
        if not proc.alive():
            code = proc.proc.returncode if proc.proc else None
            raise proc.fail(f"exited with code {code} while waiting for {what}")
        try:
            if check():
                return time.monotonic() - start
        except Exception as e:  # connection refused, 500, ...
            last_err = e
        if time.monotonic() - start > timeout:
            raise proc.fail(f"not {what} after {timeout:.0f} s (last error: {last_err})")
        time.sleep(interval)


def http_ok(url: str, *, ca_file: str | None = None, insecure: bool = False,
            token: str | None = None, expect: bytes | None = None, timeout: float = 3.0) -> bool:
    ctx = None
    if url.startswith("https"):
        ctx = ssl.create_default_context(cafile=ca_file) if ca_file else ssl.create_default_context()
        if insecure:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
    req = urllib.request.Request(url)
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=ctx) as r:
            body = r.read()
            return r.status == 200 and (expect is None or expect in body)
    except urllib.error.HTTPError:
        return False
