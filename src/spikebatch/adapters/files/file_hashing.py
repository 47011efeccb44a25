"""sha256 of local files, one file or many at once (one worker process per core).

sha256 is sequential within a file, so a batch of recordings is hashed in parallel by
file: each worker process hashes whole files, handed out largest first (so a multi-GB
recording started last does not leave the other cores idle at the end), the next one as
soon as a worker is free.

Worker processes rather than threads: a worker's reads and hashing never wait on the
interpreter lock that the caller's own threads (uploads, a progress bar redrawing)
hold. They are plain child interpreters running hashing_worker.py, talking JSON lines
over pipes -- not a multiprocessing pool: its "spawn" / "forkserver" children
re-run the caller's main script, so a user's script without an ``if __name__ ==
"__main__":`` guard would run again in every worker (and fail), and its "fork" children
inherit the locks of the caller's threads (upload pools, boto3's transfer threads) in
whatever state they were. A worker only reads files, so stopping one (an error in
another file, a Ctrl-C, a progress callback raising) is simply terminating it.

Starting a worker costs about 15 ms (the worker imports a handful of standard modules
and nothing else), so the digest cache uses them only when there is enough to hash.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
from collections import deque
from dataclasses import dataclass
from typing import Callable, Optional, Protocol, Sequence

from . import hashing_worker
from .hashing_worker import CHUNK, sha256_file

__all__ = ["CHUNK", "FileIdentity", "HashedFile", "HashingWorkerError", "hash_files", "hash_one",
           "hashing_processes", "sha256_file"]

#: How long the caller waits for a worker's next message before looking again: what
#: lets a Ctrl-C through on platforms where a blocking wait cannot be interrupted.
WAKE_UP_SECONDS = 0.25


class ByteCounter(Protocol):
    """What the hashing loop reports each chunk to (storage.progress.Progress fits)."""

    def add(self, count: int) -> None: ...


@dataclass(frozen=True)
class FileIdentity:
    """What must stay equal for a cached digest to still describe a file."""

    size: int
    mtime_ns: int
    inode: int
    device: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> "FileIdentity":
        st = os.stat(path)
        return cls(st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev)


@dataclass(frozen=True)
class HashedFile:
    """One file's digest and what is needed to trust it: the file's identity before and
    after the read (a change in between means the digest may describe neither version)
    and when the read began (the digest cache's racy-mtime rule)."""

    path: str
    sha256: str
    #: Bytes actually read.
    size: int
    before: FileIdentity
    after: FileIdentity
    started_ns: int
    #: The process that read the file (this one, or a worker).
    pid: int

    @property
    def unchanged(self) -> bool:
        return self.before == self.after and self.size == self.before.size

    @classmethod
    def from_message(cls, fields: dict) -> "HashedFile":
        return cls(**{**fields, "before": FileIdentity(**fields["before"]),
                      "after": FileIdentity(**fields["after"])})


def hash_one(path: str, progress: Optional[ByteCounter] = None) -> HashedFile:
    """Hash ``path`` in this process, noting its identity before and after the read."""
    return HashedFile.from_message(hashing_worker.hash_with_identity(path, progress))


def hashing_processes() -> int:
    """One process per core this process may run on (its CPU affinity, where the OS
    tells it: a container or `taskset` may allow fewer cores than the machine has)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


class HashingWorkerError(RuntimeError):
    """A worker process ended without answering for the file it was given (killed by
    the system, or it could not start Python)."""


class _Reporter:
    """``progress(bytes_done, total)`` over all files, called only when the count moved."""

    def __init__(self, progress: Optional[Callable[[int, int], None]], total: int) -> None:
        self.progress = progress
        self.total = total
        self.reported = -1

    def report(self, done: int) -> None:
        if self.progress is not None and done != self.reported:
            self.reported = done
            self.progress(done, self.total)


class _InProcessCounter:
    """One file's reads, as progress over all the files (hashed here, in turn)."""

    def __init__(self, reporter: _Reporter, offset: int) -> None:
        self.reporter = reporter
        self.done = offset

    def add(self, count: int) -> None:
        self.done += count
        self.reporter.report(self.done)


def hash_files(paths: Sequence[str], *, processes: Optional[int] = None,
               progress: Optional[Callable[[int, int], None]] = None) -> list[HashedFile]:
    """Hash every file of ``paths`` (in that order in the result), ``processes`` at once
    (default: one per core; 1 hashes them here, one after another).

    ``progress(bytes_hashed, total)`` follows all the files together; ``total`` is the
    sum of their sizes, taken before the first is read. It is called in the calling
    thread only. If it raises, or a file cannot be read, or the caller is interrupted,
    the workers are stopped and the error goes on once they have exited.
    """
    sizes = [os.stat(path).st_size for path in paths]
    reporter = _Reporter(progress, sum(sizes))
    workers = min(processes or hashing_processes(), len(paths))
    # An embedded interpreter has no python to start, and a zipped install no script.
    if workers <= 1 or not sys.executable or not os.path.isfile(hashing_worker.__file__):
        hashed, offset = [], 0
        for path, size in zip(paths, sizes):
            hashed.append(hash_one(path, _InProcessCounter(reporter, offset)))
            offset += size
            reporter.report(offset)  # an empty file reports too
        return hashed
    return _WorkerPool(workers).hash(list(paths), sizes, reporter)


def _worker_command() -> list[str]:
    """The worker script by path, isolated (no user site, no environment variables, no
    script folder on the path) and without site-packages: it needs only the standard
    library, and so starts fast."""
    return [sys.executable, "-I", "-S", hashing_worker.__file__]


class _Worker:
    """One worker process and the thread that turns its answers into events."""

    def __init__(self, events: "queue.Queue[tuple[_Worker, Optional[dict]]]", command: list[str]) -> None:
        self.events = events
        self.slot: Optional[int] = None  # the file it is hashing
        # stderr goes to a file: only read if the worker fails, and a pipe nobody
        # reads meanwhile could fill up and block it.
        self.stderr = tempfile.TemporaryFile()
        self.process = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                        stderr=self.stderr, text=True, encoding="utf-8")
        self.reader = threading.Thread(target=self._read, name="spikebatch-hash-reader", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            if line.startswith(hashing_worker.MESSAGE_TAG):
                self.events.put((self, json.loads(line[len(hashing_worker.MESSAGE_TAG):])))
        self.events.put((self, None))  # its stdout closed: it exited, or is exiting

    def error_output(self) -> str:
        self.process.wait()
        self.stderr.seek(0)
        return self.stderr.read().decode("utf-8", "replace").strip()

    def give(self, slot: int, path: str) -> None:
        assert self.process.stdin is not None
        self.slot = slot
        try:
            self.process.stdin.write(json.dumps({"slot": slot, "path": path}) + "\n")
            self.process.stdin.flush()
        except BrokenPipeError:
            pass  # it died: its reader reports that, with what it wrote to stderr

    def finish(self) -> None:
        """No more files: the worker exits at end of input."""
        self.slot = None
        assert self.process.stdin is not None
        self.process.stdin.close()

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()

    def reap(self) -> None:
        """Wait for it to exit (a worker still given files exits at end of input)."""
        stdin = self.process.stdin
        if stdin is not None and not stdin.closed:
            try:
                stdin.close()
            except BrokenPipeError:
                pass  # it already exited
        self.process.wait()
        self.reader.join()
        self.stderr.close()


class _WorkerPool:
    """``size`` worker processes hashing one set of files: each is given the next file
    (largest first) as soon as it answers for its last."""

    def __init__(self, size: int) -> None:
        self.size = size

    def hash(self, paths: list[str], sizes: list[int], reporter: _Reporter) -> list[HashedFile]:
        events: "queue.Queue[tuple[_Worker, Optional[dict]]]" = queue.Queue()
        results: list[Optional[HashedFile]] = [None] * len(paths)
        read = [0] * len(paths)
        waiting = deque(sorted(range(len(paths)), key=lambda index: sizes[index], reverse=True))
        command = _worker_command()
        workers: list[_Worker] = []
        finished = False
        try:
            for _ in range(self.size):
                worker = _Worker(events, command)
                workers.append(worker)
                self._next(worker, waiting, paths)
            running = len(workers)
            while running:
                try:
                    worker, message = events.get(timeout=WAKE_UP_SECONDS)
                except queue.Empty:
                    continue
                if message is None:
                    running -= 1
                    if worker.slot is not None:
                        last_words = (worker.error_output().splitlines() or ["(nothing on stderr)"])[-1]
                        raise HashingWorkerError(
                            f"the process hashing {paths[worker.slot]} exited with code "
                            f"{worker.process.wait()} before it was done: {last_words}")
                    continue
                slot = message["slot"]
                if "done" in message:
                    read[slot] = min(message["done"], sizes[slot])
                elif "hashed" in message:
                    results[slot] = HashedFile.from_message(message["hashed"])
                    read[slot] = sizes[slot]
                    self._next(worker, waiting, paths)
                else:
                    error = message["error"]
                    raise OSError(error["errno"], error["strerror"], error["filename"])
                reporter.report(sum(read))
            finished = True
        finally:
            for worker in workers:
                if not finished:
                    worker.stop()
                worker.reap()
        return [hashed for hashed in results if hashed is not None]

    @staticmethod
    def _next(worker: _Worker, waiting: "deque[int]", paths: list[str]) -> None:
        if waiting:
            index = waiting.popleft()
            worker.give(index, paths[index])
        else:
            worker.finish()

