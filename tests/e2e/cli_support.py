"""Running ``spikebatch`` as a user does: a subprocess, with every folder it may write
(state, data, cache, config, home) inside the test's tmp_path, and no credentials or
kubeconfig from the environment running the tests."""

from __future__ import annotations

import json
import os
import pty
import queue
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = REPO / "examples" / "job.yaml"

_SCRUBBED = ("KUBECONFIG", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
             "SPIKEBATCH_PROFILE_PATH", "NO_COLOR", "FORCE_COLOR", "TYPER_USE_RICH")


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str

    @property
    def keys(self) -> Dict[str, str]:
        """The KEY=VALUE lines of stdout."""
        pairs = {}
        for line in self.stdout.splitlines():
            key, sep, value = line.partition("=")
            if sep and key.isupper():
                pairs[key] = value
        return pairs

    def json(self) -> Any:
        return json.loads(self.stdout)

    @property
    def error_lines(self) -> List[str]:
        return [line for line in self.stderr.splitlines() if line.strip()]


class Cli:
    """``cli("deploy-job", ...)`` runs ``python -m spikebatch deploy-job ...``."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.state = root / "state"
        self.data = root / "data"
        self.home = root / "home"
        for folder in (self.state, self.data, self.home):
            folder.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if k not in _SCRUBBED}
        env.update(
            HOME=str(self.home),
            SPIKEBATCH_STATE_DIR=str(self.state),
            SPIKEBATCH_DATA_DIR=str(self.data),
            SPIKEBATCH_CACHE_DIR=str(root / "cache"),
            XDG_STATE_HOME=str(root / "xdg-state"),
            XDG_DATA_HOME=str(root / "xdg-data"),
            XDG_CACHE_HOME=str(root / "xdg-cache"),
            XDG_CONFIG_HOME=str(root / "xdg-config"),
            COLUMNS="120",
        )
        self.env = env

    def __call__(self, *args: str, timeout: float = 180, env: Optional[dict] = None,
                 program: Optional[List[str]] = None) -> Result:
        command = program or [sys.executable, "-m", "spikebatch"]
        proc = subprocess.run([*command, *args], capture_output=True, text=True, timeout=timeout,
                              env={**self.env, **(env or {})}, cwd=self.root)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def with_tty_stderr(self, *args: str, timeout: float = 180) -> Result:
        """Run with stderr on a pseudo-terminal (what a person at a terminal sees)."""
        master, slave = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "spikebatch", *args], stdout=subprocess.PIPE,
                                stderr=slave, env=self.env, cwd=self.root)
        os.close(slave)
        chunks: List[bytes] = []

        def drain() -> None:
            while True:
                try:
                    data = os.read(master, 65536)
                except OSError:  # EIO: the child closed the terminal
                    return
                if not data:
                    return
                chunks.append(data)

        reader = threading.Thread(target=drain, daemon=True)
        reader.start()
        out, _ = proc.communicate(timeout=timeout)
        reader.join(timeout=10)
        os.close(master)
        return Result(proc.returncode, out.decode(), b"".join(chunks).decode(errors="replace"))

    def start(self, *args: str) -> "Running":
        """Start ``python -m spikebatch ...`` without waiting for it (to interrupt it)."""
        return Running(subprocess.Popen(
            [sys.executable, "-m", "spikebatch", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, env=self.env, cwd=self.root, preexec_fn=ctrl_c_as_in_a_terminal))

    # --- what is on disk --------------------------------------------------------------
    def records(self) -> List[dict]:
        folder = self.state / "submissions"
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))] if folder.is_dir() else []

    def data_files(self) -> List[Path]:
        return sorted(p for p in self.data.rglob("*") if p.is_file())

    def local_jobs(self) -> List[str]:
        """Jobs the local backend has created: ``<state>/local-backend/<namespace>/<job>/``
        holding its manifest.json (the backend's own folder name, so that a change of it
        fails here instead of making this list silently empty)."""
        from spikebatch.adapters.local.backend import STATE_SUBFOLDER

        return sorted(p.name for p in (self.state / STATE_SUBFOLDER).glob("*/*") if (p / "manifest.json").exists())


def ctrl_c_as_in_a_terminal() -> None:
    """Run in the child before exec: SIGINT back at its default, as for a command a
    person runs in a terminal. A suite started in the background (``pytest &`` from a
    script, ``nohup``) inherits SIGINT *ignored* from the shell, its children too, and
    Python keeps an inherited SIG_IGN -- a SIGINT sent to such a child would do nothing."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Running:
    """A CLI process started by ``Cli.start``: its stderr lines as they come, then its
    result. Nothing here waits for a moment: each step waits for something to happen
    (a line, the end of the process), with a generous limit that only a hang reaches."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self._stdout: List[str] = []
        self._stderr: List[str] = []
        self._lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self._readers = [threading.Thread(target=self._read, args=(proc.stdout, self._stdout, None), daemon=True),
                         threading.Thread(target=self._read, args=(proc.stderr, self._stderr, self._lines),
                                          daemon=True)]
        for reader in self._readers:
            reader.start()

    @staticmethod
    def _read(stream: Any, into: List[str], lines: "Optional[queue.Queue[Optional[str]]]") -> None:
        for line in stream:
            into.append(line)
            if lines is not None:
                lines.put(line)
        if lines is not None:
            lines.put(None)  # end of stream

    def next_stderr_line(self, timeout: float = 120) -> str:
        """The next line the process writes to stderr ("" once stderr has ended)."""
        try:
            line = self._lines.get(timeout=timeout)
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"no line on stderr within {timeout:g} s") from None
        return "" if line is None else line

    def interrupt(self) -> None:
        """Ctrl-C: SIGINT to the process."""
        self.proc.send_signal(signal.SIGINT)

    def finish(self, timeout: float = 120) -> Result:
        """Wait until the process has ended; its exit code and all of its output."""
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError(f"the process did not end within {timeout:g} s") from None
        for reader in self._readers:
            reader.join()
        return Result(self.proc.returncode, "".join(self._stdout), "".join(self._stderr))


def assert_one_line_error(result: Result, code: int, *fragments: str) -> None:
    assert result.returncode == code, (result.returncode, result.stderr)
    lines = result.error_lines
    assert len(lines) == 1, f"expected one error line, got: {result.stderr!r}"
    assert lines[0].startswith("error: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path)


def write_workspace(folder: Path, **items: Any) -> Path:
    """A built-in directory workspace holding ``items`` under namespace 'in'."""
    from spikebatch.workspace import DirectoryWorkspace

    workspace = DirectoryWorkspace(folder)
    for key, value in items.items():
        workspace.store("in", key, value)
    return folder


def write_kubeconfig(path: Path, server: str) -> Path:
    path.write_text(
        "apiVersion: v1\nkind: Config\n"
        f"clusters: [{{name: c, cluster: {{server: '{server}', insecure-skip-tls-verify: true}}}}]\n"
        "users: [{name: u, user: {token: not-a-secret}}]\n"
        "contexts: [{name: x, context: {cluster: c, user: u, namespace: default}}]\n"
        "current-context: x\n"
    )
    return path


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]
