"""Holder of the real node's private mount namespace (see ``real_node.py``).

Started by ``RealNode`` as::

    unshare --mount --propagation private -- python node_namespace.py SPEC.json

``unshare`` gives this process a new mount namespace in which every mount is private
(nothing done here propagates to the host). This script then prepares the namespace
and sleeps until it is terminated; containerd and kubelet join it with
``nsenter --mount=/proc/<this pid>/ns/mnt``. When the last process in it exits, the
namespace and every mount in it disappear.

What it mounts (only inside the namespace):

* a tmpfs on ``/run``: containerd (1.6 and 2.x) puts shim sockets and runc state under
  a hard-coded ``/run/containerd`` whatever its ``state`` setting says;
* a tmpfs on ``/var/log``: kubelet keeps hard-coded ``/var/log/containers`` symlinks;
* a tmpfs on ``/var/lib/kubelet``: kubelet's device-plugin socket
  ``/var/lib/kubelet/device-plugins/kubelet.sock`` ignores ``--root-dir``. A mount point
  needs a directory; so that none is created on the host, ``/var/lib`` itself becomes a
  tmpfs into which the host's ``/var/lib`` entries are bound back (recursively, so they
  stay the very same directories) next to a new, empty ``kubelet`` directory;
* a tmpfs on each of the spec's ``tmpfs_dirs`` (containerd's root: image content and
  unpacked snapshots then cost no disk writes and vanish with the namespace instead of
  taking seconds to delete);
* files bind-mounted over ``/proc/sys/vm/overcommit_memory`` (1),
  ``/proc/sys/kernel/panic`` (10) and ``/proc/sys/kernel/panic_on_oops`` (1): kubelet's
  container manager otherwise rewrites those host-wide sysctls to exactly these values.

The spec (JSON) names the host's mount namespace (``host_mount_ns``, the readlink of
``/proc/self/ns/mnt`` taken by the parent): if this process is still in it, nothing is
mounted. Only the standard library is used: this file runs as a plain script.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

SYSCTL_FILES = {
    "/proc/sys/vm/overcommit_memory": "1\n",
    "/proc/sys/kernel/panic": "10\n",
    "/proc/sys/kernel/panic_on_oops": "1\n",
}


class NamespaceError(RuntimeError):
    pass


def sh(*argv: str) -> None:
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise NamespaceError(f"{' '.join(argv)} failed ({proc.returncode}): {proc.stdout.strip()}")


def root_is_private() -> bool:
    """True when the root mount carries no ``shared:`` peer group (mountinfo field 7+)."""
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        if fields[4] == "/":
            optional = fields[6:fields.index("-")]
            return not any(f.startswith("shared:") for f in optional)
    raise NamespaceError("no root mount in /proc/self/mountinfo")


def shadow_var_lib(stash: Path) -> None:
    """Make ``/var/lib`` a tmpfs holding the host's entries (bound back) plus ``kubelet``."""
    stash.mkdir(parents=True, exist_ok=True)
    sh("mount", "--rbind", "/var/lib", str(stash))
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "spikebatch-var-lib", "/var/lib")
    for entry in sorted(os.listdir(stash)):
        src, dst = stash / entry, Path("/var/lib") / entry
        if src.is_symlink():
            os.symlink(os.readlink(src), dst)
        elif src.is_dir():
            dst.mkdir()
            sh("mount", "--rbind", str(src), str(dst))
        else:
            dst.touch()
            sh("mount", "--bind", str(src), str(dst))
    sh("umount", "--lazy", str(stash))
    kubelet = Path("/var/lib/kubelet")
    kubelet.mkdir(exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", "mode=0750", "spikebatch-var-lib-kubelet", str(kubelet))


def prepare(spec: dict) -> None:
    if os.readlink("/proc/self/ns/mnt") == spec["host_mount_ns"]:
        raise NamespaceError("still in the host's mount namespace (run me under `unshare --mount`)")
    if not root_is_private():
        raise NamespaceError("the root mount is shared: run me under `unshare --propagation private`")
    work = Path(spec["work_dir"])
    work.mkdir(parents=True, exist_ok=True)
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "spikebatch-run", "/run")
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "spikebatch-var-log", "/var/log")
    shadow_var_lib(work / "host-var-lib")
    for d in spec.get("tmpfs_dirs", []):
        Path(d).mkdir(parents=True, exist_ok=True)
        sh("mount", "-t", "tmpfs", "-o", "mode=0711", "spikebatch-node-data", d)
    fake = work / "sysctl"
    fake.mkdir(exist_ok=True)
    for target, value in SYSCTL_FILES.items():
        f = fake / target.strip("/").replace("/", "_")
        f.write_text(value)
        sh("mount", "--bind", str(f), target)


def main(argv: list[str]) -> int:
    spec = json.loads(Path(argv[1]).read_text())
    ready = Path(spec["ready_file"])
    try:
        prepare(spec)
    except (NamespaceError, OSError) as e:
        print(f"node_namespace: {e}", file=sys.stderr, flush=True)
        return 1
    print(f"node_namespace: ready, mount namespace {os.readlink('/proc/self/ns/mnt')}", flush=True)
    ready.write_text(os.readlink("/proc/self/ns/mnt") + "\n")
    while True:  # SIGTERM / SIGKILL (default dispositions) end it
        signal.pause()


if __name__ == "__main__":
    sys.exit(main(sys.argv))
