#!/usr/bin/env python3
"""Build (once) the servers the integration tests run against.

    python tests/infra/build_testenv.py            # build what is missing
    python tests/infra/build_testenv.py --check    # report only, exit 1 if incomplete
    python tests/infra/build_testenv.py --force    # rebuild everything
    python tests/infra/build_testenv.py node       # only the real node (or: control-plane, kubelet, ...)

Everything lands in a cache folder OUTSIDE the repository:
``$SPIKEBATCH_TESTENV_CACHE`` (default ``~/.cache/spikebatch-testenv``)::

    bin/minio bin/etcd bin/kube-apiserver bin/kube-controller-manager
    bin/kube-scheduler bin/kwok        the control plane binaries (+ bin/<name>.stamp)
    bin/kubelet bin/containerd bin/containerd-shim-runc-v2 bin/ctr
                                       the real node's binaries (+ stamps)
    images/pause.oci.tar               the sandbox image (pause.c, gcc -static, OCI archive)
    stages/                            kwok's stage files, copied from its module
    build/etcd, build/kubernetes, build/kubelet, build/containerd
                                       throwaway go.mod folders

All versions come from ``versions.env`` beside this file. A component is rebuilt
only when its binary is missing or its stamp (the pinned version) differs, so a
warm run rebuilds nothing. Components are built one at a time with ``-p=2``.
Concurrent runs serialise on a lock file in the cache folder. ``build(components=...)``
builds only the named components (the pytest plugin asks only for what the collected
tests use).
"""
from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path
from typing import Iterable

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.env"

KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
CONTAINERD_BINARIES = ("containerd", "containerd-shim-runc-v2", "ctr")
NODE_BINARIES = ("kubelet", *CONTAINERD_BINARIES)
ALL_BINARIES = ("minio", "etcd", *KUBE_COMPONENTS, "kwok", *NODE_BINARIES)

# Components that are not a binary in bin/.
PAUSE_IMAGE = "pause-image"      # images/pause.oci.tar
STAGES = "stages"                # stages/
ALL_COMPONENTS = (*ALL_BINARIES, STAGES, PAUSE_IMAGE)

# What each server of the test environment needs (testenv.py / real_node.py use these).
CONTROL_PLANE_COMPONENTS = ("etcd", *KUBE_COMPONENTS, "kwok", STAGES)
NODE_COMPONENTS = (*NODE_BINARIES, PAUSE_IMAGE)

PAUSE_SOURCE = "build/pause/linux/pause.c"  # inside the k8s.io/kubernetes module

# kwok stage files used by the test environment (relative to <kwok module>/kustomize/stage).
KWOK_STAGE_FILES = (
    "node/fast/node-initialize.yaml",
    "node/heartbeat/node-heartbeat.yaml",
    "pod/fast/pod-ready.yaml",
    "pod/fast/pod-complete.yaml",
    "pod/fast/pod-delete.yaml",
    "pod/chaos/pod-container-running-failed.yaml",
)


class BuildError(RuntimeError):
    pass


def load_versions(path: Path = VERSIONS_FILE) -> dict[str, str]:
    versions: dict[str, str] = {}
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition("=")
        versions[key.strip()] = value.strip().strip('"').strip("'")
    return versions


def cache_dir() -> Path:
    env = os.environ.get("SPIKEBATCH_TESTENV_CACHE")
    if env:
        return Path(env).expanduser().resolve()
    return Path("~/.cache/spikebatch-testenv").expanduser().resolve()


def stamp_for(name: str, v: dict[str, str]) -> str:
    if name == "minio":
        return f"{v['MINIO_MODULE']}@{v['MINIO_VERSION']}"
    if name == "etcd":
        return f"{v['ETCD_MODULE']}@{v['ETCD_VERSION']}"
    if name in KUBE_COMPONENTS:
        return f"{v['KUBERNETES_MODULE']}@{v['KUBERNETES_VERSION']}+staging@{v['KUBERNETES_STAGING_VERSION']}"
    if name == "kwok":
        return f"{v['KWOK_MODULE']}@{v['KWOK_VERSION']}"
    if name == "kubelet":
        return f"{v['KUBERNETES_MODULE']}@{v['KUBERNETES_VERSION']}+staging@{v['KUBERNETES_STAGING_VERSION']}:kubelet"
    if name in CONTAINERD_BINARIES:
        return f"{v['CONTAINERD_MODULE']}@{v['CONTAINERD_VERSION']}:{name}"
    if name == STAGES:
        return f"{v['KWOK_MODULE']}@{v['KWOK_VERSION']}:" + ",".join(KWOK_STAGE_FILES)
    if name == PAUSE_IMAGE:
        return f"{v['KUBERNETES_MODULE']}@{v['KUBERNETES_VERSION']}:{PAUSE_SOURCE}=>{v['PAUSE_IMAGE']}:oci-v1"
    raise KeyError(name)


def pause_archive(cache: Path | None = None) -> Path:
    """The OCI archive of the sandbox image (``PAUSE_IMAGE`` in versions.env)."""
    return (cache or cache_dir()) / "images" / "pause.oci.tar"


def is_fresh(cache: Path, name: str, v: dict[str, str]) -> bool:
    if name == STAGES:
        target = cache / "stages"
        stamp = target / ".stamp"
        ok = all((target / f).is_file() for f in KWOK_STAGE_FILES)
    elif name == PAUSE_IMAGE:
        target = pause_archive(cache)
        stamp = target.with_name(target.name + ".stamp")
        ok = target.is_file()
    else:
        target = cache / "bin" / name
        stamp = cache / "bin" / f"{name}.stamp"
        ok = target.is_file() and os.access(target, os.X_OK)
    return ok and stamp.is_file() and stamp.read_text().strip() == stamp_for(name, v)


def missing_components(cache: Path | None = None, v: dict[str, str] | None = None,
                       components: Iterable[str] | None = None) -> list[str]:
    """The components (of ``components``, default all) not built at the pinned version."""
    cache = cache or cache_dir()
    v = v or load_versions()
    wanted = ALL_COMPONENTS if components is None else tuple(components)
    unknown = [n for n in wanted if n not in ALL_COMPONENTS]
    if unknown:
        raise KeyError(f"unknown test-environment components {unknown}; known: {ALL_COMPONENTS}")
    return [n for n in ALL_COMPONENTS if n in wanted and not is_fresh(cache, n, v)]


# --------------------------------------------------------------------------- running

T0 = time.monotonic()


PROGRESS_FILE: Path | None = None  # progress lines are also kept in <cache>/build.log


def log(msg: str) -> None:
    line = f"[build_testenv {time.monotonic() - T0:6.1f}s] {msg}"
    print(line, flush=True)
    if PROGRESS_FILE is not None:
        with open(PROGRESS_FILE, "a") as f:
            f.write(line + "\n")


def go_env(cache: Path) -> dict[str, str]:
    env = dict(os.environ)
    flags = env.get("GOFLAGS")
    if flags is None:
        flags = subprocess.run(["go", "env", "GOFLAGS"], capture_output=True, text=True).stdout.strip()
    parts = [p for p in flags.split() if not p.startswith("-p=")]
    parts.append("-p=" + os.environ.get("SPIKEBATCH_TESTENV_BUILD_PARALLEL", "2"))
    if not any(p.startswith("-buildvcs") for p in parts):
        parts.append("-buildvcs=false")
    env["GOFLAGS"] = " ".join(parts)
    env.setdefault("CGO_ENABLED", "0")
    env.pop("GOBIN", None)
    return env


def run(cmd: list[str], *, cwd: Path, env: dict[str, str], what: str, logfile: Path) -> str:
    """Run a go command; heartbeat every 30 s; keep its output in logfile."""
    log(f"  $ {' '.join(cmd)}")
    start = time.monotonic()
    with open(logfile, "a") as out:
        out.write(f"\n$ (cd {cwd}) {' '.join(cmd)}\n")
        out.flush()
        proc = subprocess.Popen(cmd, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        done = threading.Event()

        def beat() -> None:
            while not done.wait(30):
                log(f"  ... still {what} ({time.monotonic() - start:.0f} s)")

        t = threading.Thread(target=beat, daemon=True)
        t.start()
        try:
            text = proc.stdout.read() if proc.stdout else ""
            rc = proc.wait()
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            done.set()
        out.write(text)
    if rc != 0:
        tail = "\n".join(text.strip().splitlines()[-30:])
        raise BuildError(f"{what} failed (exit {rc}); see {logfile}\n{tail}")
    return text


def finish(cache: Path, name: str, built: Path, v: dict[str, str]) -> None:
    dest = cache / "bin" / name
    os.replace(built, dest)
    (cache / "bin" / f"{name}.stamp").write_text(stamp_for(name, v) + "\n")


def go_install(cache: Path, name: str, pkg: str, version: str, v: dict[str, str], env: dict[str, str], logfile: Path) -> None:
    tmp_bin = cache / "build" / f"gobin-{name}"
    shutil.rmtree(tmp_bin, ignore_errors=True)
    tmp_bin.mkdir(parents=True)
    env = dict(env, GOBIN=str(tmp_bin))
    run(["go", "install", f"{pkg}@{version}"], cwd=cache, env=env, what=f"building {name}", logfile=logfile)
    finish(cache, name, tmp_bin / Path(pkg).name, v)
    shutil.rmtree(tmp_bin, ignore_errors=True)


def build_minio(cache: Path, v: dict[str, str], env: dict[str, str], logfile: Path) -> None:
    go_install(cache, "minio", v["MINIO_MODULE"], v["MINIO_VERSION"], v, env, logfile)


def build_kwok(cache: Path, v: dict[str, str], env: dict[str, str], logfile: Path) -> None:
    go_install(cache, "kwok", v["KWOK_MODULE"] + "/cmd/kwok", v["KWOK_VERSION"], v, env, logfile)


def fresh_module(cache: Path, name: str, env: dict[str, str], logfile: Path) -> Path:
    mod = cache / "build" / name
    shutil.rmtree(mod, ignore_errors=True)
    mod.mkdir(parents=True)
    run(["go", "mod", "init", f"spikebatch-testenv/{name}"], cwd=mod, env=env, what=f"go mod init {name}", logfile=logfile)
    return mod


def build_etcd(cache: Path, v: dict[str, str], env: dict[str, str], logfile: Path) -> None:
    # `go install` refuses etcd's server module (its go.mod has replace directives),
    # so build it from a throwaway module that requires it.
    mod = fresh_module(cache, "etcd", env, logfile)
    pkg = v["ETCD_MODULE"]
    run(["go", "get", f"{pkg}@{v['ETCD_VERSION']}"], cwd=mod, env=env, what="resolving etcd", logfile=logfile)
    out = mod / "etcd.tmp"
    run(["go", "build", "-o", str(out), pkg], cwd=mod, env=env, what="building etcd", logfile=logfile)
    finish(cache, "etcd", out, v)


def module_info(mod: str, version: str, cwd: Path, env: dict[str, str], logfile: Path) -> dict:
    text = run(["go", "mod", "download", "-json", f"{mod}@{version}"], cwd=cwd, env=env,
               what=f"downloading {mod}@{version}", logfile=logfile)
    return json.loads(text[text.index("{"):])


def staging_modules(gomod_path: Path) -> list[str]:
    """The module paths that k8s.io/kubernetes replaces with ./staging/... directories."""
    names: list[str] = []
    in_block = False
    for raw in gomod_path.read_text().splitlines():
        line = raw.split("//")[0].strip()
        if line.startswith("replace ("):
            in_block = True
            continue
        if in_block and line == ")":
            in_block = False
            continue
        if line.startswith("replace "):
            line = line[len("replace "):].strip()
        elif not in_block:
            continue
        if "=>" in line:
            left, right = (s.strip() for s in line.split("=>", 1))
            if right.startswith("./staging/"):
                names.append(left.split()[0])
    return names


def kubernetes_module(cache: Path, v: dict[str, str], env: dict[str, str], logfile: Path) -> Path:
    """build/kubernetes: requires k8s.io/kubernetes and pins every staging module
    (resolved once; reused while its .ready stamp matches versions.env)."""
    kver, sver = v["KUBERNETES_VERSION"], v["KUBERNETES_STAGING_VERSION"]
    kmod = v["KUBERNETES_MODULE"]
    mod = cache / "build" / "kubernetes"
    gomod = mod / "go.mod"
    ready = mod / ".ready"
    if gomod.is_file() and ready.is_file() and ready.read_text().strip() == stamp_for("kube-apiserver", v):
        return mod
    mod = fresh_module(cache, "kubernetes", env, logfile)
    info = module_info(kmod, kver, mod, env, logfile)
    staging = staging_modules(Path(info["GoMod"]))
    if not staging:
        raise BuildError(f"found no ./staging replace lines in {info['GoMod']}")
    log(f"  pinning {len(staging)} staging modules to {sver}")
    lines = gomod.read_text().rstrip() + "\n\nrequire " + f"{kmod} {kver}\n\nreplace (\n"
    lines += "".join(f"\t{s} => {s} {sver}\n" for s in staging) + ")\n"
    gomod.write_text(lines)
    cmds = [f"{kmod}/cmd/{n}@{kver}" for n in KUBE_COMPONENTS]
    run(["go", "get", *cmds], cwd=mod, env=env, what="resolving kubernetes modules", logfile=logfile)
    ready.write_text(stamp_for("kube-apiserver", v) + "\n")
    return mod


def kube_ldflags(v: dict[str, str]) -> str:
    """-s -w and the -X version variables, so the binaries report ``KUBERNETES_VERSION``."""
    kver = v["KUBERNETES_VERSION"]
    major, minor = kver.lstrip("v").split(".")[:2]
    build_date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    xs = {"gitVersion": kver, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean",
          "gitCommit": "0000000000000000000000000000000000000000", "buildDate": build_date}
    ldflags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ldflags += [f"-X {pkg}.{k}={val}" for k, val in xs.items()]
    return " ".join(ldflags)


def build_kubernetes(cache: Path, names: list[str], v: dict[str, str], env: dict[str, str], logfile: Path) -> None:
    kver, kmod = v["KUBERNETES_VERSION"], v["KUBERNETES_MODULE"]
    mod = kubernetes_module(cache, v, env, logfile)
    ldflags = kube_ldflags(v)
    for name in names:
        t = time.monotonic()
        log(f"building {name} {kver}")
        out = mod / f"{name}.tmp"
        run(["go", "build", "-ldflags", ldflags, "-o", str(out), f"{kmod}/cmd/{name}"],
            cwd=mod, env=env, what=f"building {name}", logfile=logfile)
        finish(cache, name, out, v)
        log(f"done {name} in {time.monotonic() - t:.0f} s")


def build_kubelet(cache: Path, v: dict[str, str], env: dict[str, str], logfile: Path) -> None:
    """kubelet from its own throwaway module, seeded with the control plane's go.mod/go.sum
    (same staging pins, same dependency versions, so Go's build cache is shared) plus the
    few requirements only kubelet has; the control plane's module stays untouched."""
    kver, kmod = v["KUBERNETES_VERSION"], v["KUBERNETES_MODULE"]
    base = kubernetes_module(cache, v, env, logfile)
    mod = cache / "build" / "kubelet"
    ready = mod / ".ready"
    if not (ready.is_file() and ready.read_text().strip() == stamp_for("kubelet", v)):
        shutil.rmtree(mod, ignore_errors=True)
        mod.mkdir(parents=True)
        gomod = (base / "go.mod").read_text().replace("module spikebatch-testenv/kubernetes",
                                                      "module spikebatch-testenv/kubelet", 1)
        (mod / "go.mod").write_text(gomod)
        shutil.copyfile(base / "go.sum", mod / "go.sum")
        run(["go", "get", f"{kmod}/cmd/kubelet@{kver}"], cwd=mod, env=env, what="resolving kubelet modules",
            logfile=logfile)
        ready.write_text(stamp_for("kubelet", v) + "\n")
    out = mod / "kubelet.tmp"
    run(["go", "build", "-ldflags", kube_ldflags(v), "-o", str(out), f"{kmod}/cmd/kubelet"],
        cwd=mod, env=env, what="building kubelet", logfile=logfile)
    finish(cache, "kubelet", out, v)


def build_containerd(cache: Path, names: list[str], v: dict[str, str], env: dict[str, str], logfile: Path) -> None:
    """containerd, containerd-shim-runc-v2 and ctr from a throwaway module (CGO off: the btrfs
    snapshotter drops out by its build constraint; overlayfs is what the node uses)."""
    cmod, cver = v["CONTAINERD_MODULE"], v["CONTAINERD_VERSION"]
    mod = cache / "build" / "containerd"
    ready = mod / ".ready"
    stamp = f"{cmod}@{cver}"
    if not (ready.is_file() and ready.read_text().strip() == stamp):
        mod = fresh_module(cache, "containerd", env, logfile)
        # `go get <module>@v` alone leaves go.sum without the commands' dependencies
        # ("missing go.sum entry for module providing package ..."): get the commands.
        run(["go", "get", *(f"{cmod}/cmd/{n}@{cver}" for n in CONTAINERD_BINARIES)], cwd=mod, env=env,
            what="resolving containerd modules", logfile=logfile)
        ready.write_text(stamp + "\n")
    ldflags = " ".join(["-s", "-w", f"-X {cmod}/version.Version={cver}",
                        f"-X {cmod}/version.Package={cmod}"])
    for name in names:
        t = time.monotonic()
        log(f"building {name} {cver}")
        out = mod / f"{name}.tmp"
        run(["go", "build", "-ldflags", ldflags, "-o", str(out), f"{cmod}/cmd/{name}"],
            cwd=mod, env=env, what=f"building {name}", logfile=logfile)
        finish(cache, name, out, v)
        log(f"done {name} in {time.monotonic() - t:.0f} s")


# ---- the sandbox image, without a registry or an image builder

def _tar_bytes(files: dict[str, tuple[bytes, int]]) -> bytes:
    """A reproducible tar (mtime 0, root-owned) of {name: (content, mode)}."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, (data, mode) in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, 0
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _blob(data: bytes) -> tuple[str, bytes]:
    return "sha256:" + hashlib.sha256(data).hexdigest(), data


def oci_archive(image_name: str, files: dict[str, tuple[bytes, int]], image_config: dict) -> bytes:
    """An OCI image layout (one linux/amd64 image, one layer) as a tar, named
    ``image_name`` the way ``ctr images import`` reads names: the index entry carries
    ``io.containerd.image.name`` (a full reference, taken as is) and
    ``org.opencontainers.image.ref.name`` (also the full reference; a bare tag would be
    prefixed with ctr's ``--base-name`` or ``import-<date>``)."""
    layer_tar = _tar_bytes(files)
    layer_gz = gzip.compress(layer_tar, mtime=0)
    diff_id = "sha256:" + hashlib.sha256(layer_tar).hexdigest()
    layer_digest, _ = _blob(layer_gz)
    config = {"architecture": "amd64", "os": "linux", "config": image_config,
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created_by": "spikebatch build_testenv", "created": "1970-01-01T00:00:00Z"}],
              "created": "1970-01-01T00:00:00Z"}
    config_digest, config_bytes = _blob(json.dumps(config, sort_keys=True).encode())
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                           "digest": config_digest, "size": len(config_bytes)},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                            "digest": layer_digest, "size": len(layer_gz)}]}
    manifest_digest, manifest_bytes = _blob(json.dumps(manifest, sort_keys=True).encode())
    index = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json",
             "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "digest": manifest_digest, "size": len(manifest_bytes),
                            "platform": {"architecture": "amd64", "os": "linux"},
                            "annotations": {"io.containerd.image.name": image_name,
                                            "org.opencontainers.image.ref.name": image_name}}]}
    files_out: dict[str, tuple[bytes, int]] = {
        "oci-layout": (json.dumps({"imageLayoutVersion": "1.0.0"}).encode(), 0o644),
        "index.json": (json.dumps(index, sort_keys=True).encode(), 0o644),
    }
    for digest, data in ((layer_digest, layer_gz), (config_digest, config_bytes),
                         (manifest_digest, manifest_bytes)):
        files_out["blobs/sha256/" + digest.split(":", 1)[1]] = (data, 0o644)
    return _tar_bytes(files_out)


def build_pause_image(cache: Path, v: dict[str, str], env: dict[str, str], logfile: Path) -> None:
    gcc = shutil.which("gcc")
    if gcc is None:
        raise BuildError("gcc is not installed: the pause image is compiled from Kubernetes' pause.c "
                         "(`apt-get install gcc libc6-dev`, as .ci/run does)")
    info = module_info(v["KUBERNETES_MODULE"], v["KUBERNETES_VERSION"], cache, env, logfile)
    source = Path(info["Dir"]) / PAUSE_SOURCE
    if not source.is_file():
        raise BuildError(f"no {PAUSE_SOURCE} in {info['Dir']}")
    work = cache / "build" / "pause"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    tag = v["PAUSE_IMAGE"].rsplit(":", 1)[1]
    binary = work / "pause"
    run([gcc, "-Os", "-Wall", "-Werror", "-static", f"-DVERSION=v{tag}-spikebatch", "-o", str(binary),
         str(source)], cwd=work, env=env, what="compiling pause.c", logfile=logfile)
    archive = oci_archive(v["PAUSE_IMAGE"], {"pause": (binary.read_bytes(), 0o755)},
                          {"Entrypoint": ["/pause"], "User": "65535:65535"})
    dest = pause_archive(cache)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".tmp")
    tmp.write_bytes(archive)
    os.replace(tmp, dest)
    dest.with_name(dest.name + ".stamp").write_text(stamp_for(PAUSE_IMAGE, v) + "\n")
    shutil.rmtree(work, ignore_errors=True)


def copy_stages(cache: Path, v: dict[str, str], env: dict[str, str], logfile: Path) -> None:
    info = module_info(v["KWOK_MODULE"], v["KWOK_VERSION"], cache, env, logfile)
    src = Path(info["Dir"]) / "kustomize" / "stage"
    dst = cache / "stages"
    tmp = cache / "stages.tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    for rel in KWOK_STAGE_FILES:
        if not (src / rel).is_file():
            raise BuildError(f"kwok module has no stage file {rel} under {src}")
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / rel, tmp / rel)
    (tmp / ".stamp").write_text(stamp_for("stages", v) + "\n")
    shutil.rmtree(dst, ignore_errors=True)
    os.replace(tmp, dst)


def build(force: bool = False, components: Iterable[str] | None = None) -> Path:
    """Build the missing (or, with ``force``, all) components of ``components``
    (default: every component). Progress lines go to stdout and ``<cache>/build.log``."""
    cache = cache_dir()
    v = load_versions()
    wanted = ALL_COMPONENTS if components is None else tuple(components)
    (cache / "bin").mkdir(parents=True, exist_ok=True)
    (cache / "build").mkdir(parents=True, exist_ok=True)
    lock = open(cache / ".build.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"another build holds {cache / '.build.lock'}; waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
    try:
        todo = [n for n in ALL_COMPONENTS if n in wanted and (force or not is_fresh(cache, n, v))]
        if not todo:
            log(f"all components up to date in {cache}")
            return cache
        _build(cache, v, todo)
    finally:
        lock.close()
    return cache


def _build(cache: Path, v: dict[str, str], todo: list[str]) -> None:
    if shutil.which("go") is None:
        raise BuildError(f"Go is not installed: put a Go toolchain >= {v['GO_MIN_VERSION']} on PATH "
                         "(an older Go >= 1.21 also works: with the default GOTOOLCHAIN=auto it fetches "
                         f"go{v['GO_MIN_VERSION']} from the Go module proxy), then rerun "
                         "`python tests/infra/build_testenv.py`")
    env = go_env(cache)
    logfile = cache / "build.log"
    global PROGRESS_FILE
    PROGRESS_FILE = logfile
    log(f"==== {time.strftime('%Y-%m-%d %H:%M:%S')} build started")
    log(f"cache {cache}; to build: {', '.join(todo)}; go output in {logfile}")
    timings: dict[str, float] = {}

    def step(label: str, fn, *args) -> None:
        t = time.monotonic()
        log(f"building {label}")
        fn(cache, *args, v, env, logfile)
        timings[label] = time.monotonic() - t
        log(f"done {label} in {timings[label]:.0f} s")

    # Quick things first, the long kubernetes build late; kubelet after the control plane
    # (it reuses the control plane's module resolution and most of its build cache).
    singles = {"stages": copy_stages, "etcd": build_etcd, "kwok": build_kwok, "minio": build_minio,
               PAUSE_IMAGE: build_pause_image}
    for name in ("stages", PAUSE_IMAGE, "etcd", "kwok", "minio"):
        if name in todo:
            step(name, singles[name])
    kube = [n for n in KUBE_COMPONENTS if n in todo]
    if kube:
        t = time.monotonic()
        build_kubernetes(cache, kube, v, env, logfile)
        timings["kubernetes (" + ", ".join(kube) + ")"] = time.monotonic() - t
    ctrd = [n for n in CONTAINERD_BINARIES if n in todo]
    if ctrd:
        t = time.monotonic()
        build_containerd(cache, ctrd, v, env, logfile)
        timings["containerd (" + ", ".join(ctrd) + ")"] = time.monotonic() - t
    if "kubelet" in todo:
        step("kubelet", build_kubelet)
    log("finished: " + "; ".join(f"{k} {s:.0f} s" for k, s in timings.items()))


GROUPS = {"control-plane": CONTROL_PLANE_COMPONENTS, "node": NODE_COMPONENTS}


def expand_components(names: Iterable[str]) -> tuple[str, ...]:
    out: list[str] = []
    for name in names:
        group = GROUPS.get(name, (name,))
        for n in group:
            if n not in ALL_COMPONENTS:
                raise KeyError(f"unknown component {n!r}")
            if n not in out:
                out.append(n)
    return tuple(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only report what is missing")
    ap.add_argument("--force", action="store_true", help="rebuild (the named, default every) component")
    ap.add_argument("components", nargs="*", metavar="COMPONENT",
                    help=f"only these: {', '.join(ALL_COMPONENTS)}, or a group: {', '.join(GROUPS)}")
    args = ap.parse_args(argv)
    try:
        selected = expand_components(args.components) if args.components else None
    except KeyError as e:
        ap.error(str(e))
    if args.check:
        missing = missing_components(components=selected)
        print(f"cache: {cache_dir()}")
        print("missing: " + (", ".join(missing) if missing else "nothing"))
        return 1 if missing else 0
    try:
        build(force=args.force, components=selected)
    except BuildError as e:
        print(f"build_testenv: error: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("build_testenv: interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
