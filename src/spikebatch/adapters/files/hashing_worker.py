"""The streaming sha256 hasher of the package, and the worker process built on it.

A worker (``python -I -S hashing_worker.py``, started by file_hashing) reads requests
``{"slot", "path"}`` as JSON lines on stdin, hashes each file, and answers on stdout:
``{"slot", "done"}`` after each chunk read, then ``{"slot", "hashed": {...}}`` or
``{"slot", "error": {errno, strerror, filename}}``. It exits at end of input.

Run by path, in isolated mode and without site-packages, so that it starts in a few
milliseconds: it imports nothing but these few standard modules, and never the
spikebatch package (whose typing / pydantic imports would cost more than hashing a
small recording).
"""

import hashlib
import json
import os
import signal
import sys
import time

#: Read size for hashing and copying: large enough that per-call overhead vanishes,
#: small enough to keep memory flat whatever the file size.
CHUNK = 8 * 1024 * 1024
#: Every line a worker writes for the caller starts with this (anything else on its
#: stdout is ignored).
MESSAGE_TAG = "spikebatch-hash "


def sha256_file(path, progress=None):
    """(hex digest, size) of a file, read in CHUNK-sized pieces into one reused buffer;
    ``progress.add(count)`` after each piece."""
    hasher = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as handle:
        # A small file gets a buffer its size (+1 to see the end in one read): a fresh
        # 8 MiB buffer costs its page faults on every file, which for files of a few MB
        # is a good part of the time hashing takes. 64 KiB at least, for pipes and
        # files that grow.
        buffer = bytearray(min(CHUNK, max(64 * 1024, os.fstat(handle.fileno()).st_size + 1)))
        view = memoryview(buffer)
        while True:
            count = handle.readinto(buffer)
            if not count:
                break
            hasher.update(view[:count])
            size += count
            if progress is not None:
                progress.add(count)
    return hasher.hexdigest(), size


def identity_fields(path):
    """What must stay equal for a digest to still describe the file (FileIdentity)."""
    st = os.stat(path)
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "device": st.st_dev}


def hash_with_identity(path, progress=None):
    """The file's digest with its identity before and after the read and when the read
    began (the fields of file_hashing.HashedFile)."""
    before = identity_fields(path)
    started_ns = time.time_ns()
    digest, size = sha256_file(path, progress)
    return {"path": path, "sha256": digest, "size": size, "before": before,
            "after": identity_fields(path), "started_ns": started_ns, "pid": os.getpid()}


def say(out, message):
    out.write(MESSAGE_TAG + json.dumps(message) + "\n")
    out.flush()


class ReportedRead:
    """A worker's progress on one file, written to the caller after each chunk."""

    def __init__(self, out, slot):
        self.out = out
        self.slot = slot
        self.done = 0

    def add(self, count):
        self.done += count
        say(self.out, {"slot": self.slot, "done": self.done})


def serve(requests, out):
    """A worker's life: hash each file named on ``requests`` and answer on ``out``;
    return at end of input."""
    for line in requests:
        request = json.loads(line)
        slot = request["slot"]
        try:
            hashed = hash_with_identity(request["path"], ReportedRead(out, slot))
        except OSError as exc:
            say(out, {"slot": slot, "error": {"errno": exc.errno, "strerror": exc.strerror,
                                              "filename": exc.filename}})
            continue
        say(out, {"slot": slot, "hashed": hashed})


if __name__ == "__main__":
    # Ctrl-C in a terminal reaches the whole process group: the caller handles it and
    # stops its workers, which must not die with a traceback of their own meanwhile.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    serve(sys.stdin, sys.stdout)
