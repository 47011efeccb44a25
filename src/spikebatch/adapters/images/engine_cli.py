"""An image engine driven through its command line: argument lists (never a shell), the
engine's output streamed line by line as it comes, the image id read from ``--iidfile``.
docker and podman take the same ``build`` options; their modules add what differs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections import deque
from pathlib import Path
from typing import Mapping, Optional, Sequence

from ...ports.images import CA_BUNDLE_SECRET, ImageBuildError, ImageBuildRequest, ImageEngineUnavailableError, OutputSink

#: Lines of the engine's output kept to explain a failure.
TAIL_LINES = 20


def find_binary(name: str, binary: str) -> str:
    found = shutil.which(binary)
    if found is None:
        raise ImageEngineUnavailableError(
            f"{name} ({binary!r}) is not on PATH; install {name}, or choose another engine with --engine"
        )
    return found


def run_streaming(argv: Sequence[str], env: Mapping[str, str], on_output: OutputSink) -> tuple[int, list[str]]:
    """Run ``argv``, handing each line of its stdout and stderr to ``on_output`` as it
    comes; returns (exit code, the last lines). Ctrl-C stops the engine too."""
    tail: deque[str] = deque(maxlen=TAIL_LINES)
    try:
        process = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                   env=dict(env), text=True, errors="replace", bufsize=1)
    except OSError as exc:
        raise ImageEngineUnavailableError(f"cannot run {argv[0]}: {exc.strerror or exc}") from None
    try:
        assert process.stdout is not None
        for line in process.stdout:
            line = line.rstrip("\r\n")
            tail.append(line)
            on_output(line)
        return process.wait(), list(tail)
    finally:
        if process.poll() is None:  # interrupted: do not leave the engine running
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


def last_words(tail: Sequence[str]) -> str:
    lines = [line.strip() for line in tail if line.strip()]
    return f": {lines[-1]}" if lines else ""


class EngineCommandLine:
    """The ``build`` and ``push`` shared by docker and podman."""

    name = "engine"

    def __init__(self, binary: str, env: Optional[Mapping[str, str]] = None) -> None:
        self.binary = find_binary(self.name, binary)
        self.env = dict(os.environ if env is None else env)

    # What differs between the engines.
    def pull_flags(self) -> list[str]:
        return ["--pull"]

    def extra_build_flags(self) -> list[str]:
        return []

    def build_env(self) -> dict[str, str]:
        return dict(self.env)

    def build_argv(self, request: ImageBuildRequest, iidfile: Path) -> list[str]:
        argv = [self.binary, "build", "--file", str(request.dockerfile), "--tag", request.tag,
                "--iidfile", str(iidfile)]
        for key, value in request.build_args.items():
            argv += ["--build-arg", f"{key}={value}"]
        if request.ca_bundle is not None:
            argv += ["--secret", f"id={CA_BUNDLE_SECRET},src={request.ca_bundle}"]
        if request.network:
            argv += ["--network", request.network]
        if request.platform:
            argv += ["--platform", request.platform]
        if request.pull:
            argv += self.pull_flags()
        if request.no_cache:
            argv.append("--no-cache")
        argv += self.extra_build_flags()
        argv.append(str(request.context))
        return argv

    def build(self, request: ImageBuildRequest, on_output: OutputSink) -> str:
        with tempfile.TemporaryDirectory(prefix="spikebatch-iid-") as scratch:
            iidfile = Path(scratch) / "image-id"
            code, tail = run_streaming(self.build_argv(request, iidfile), self.build_env(), on_output)
            if code != 0:
                raise ImageBuildError(f"{self.name} build of {request.tag} failed (exit {code}){last_words(tail)}; "
                                      "the build output above says why")
            image_id = iidfile.read_text().strip() if iidfile.is_file() else ""
        if not image_id:
            raise ImageBuildError(f"{self.name} build of {request.tag} wrote no image id; rerun with --debug")
        return image_id

    def push(self, tag: str, on_output: OutputSink) -> None:
        code, tail = run_streaming([self.binary, "push", tag], self.env, on_output)
        if code != 0:
            registry = tag.split("/", 1)[0] if "/" in tag else "docker.io"
            raise ImageBuildError(f"{self.name} push {tag} failed (exit {code}){last_words(tail)}; if the registry "
                                  f"asks for credentials, run `{self.name} login {registry}` first")
