#!/usr/bin/env python3
"""Build (once) the servers the integration tests run against.

    python tests/infra/build_testenv.py            # build what is missing
    python tests/infra/build_testenv.py --check    # report only, exit 1 if incomplete
    python tests/infra/build_testenv.py --force    # rebuild everything

Everything lands in a cache folder OUTSIDE the repository:
``$SPIKEBATCH_TESTENV_CACHE`` (default ``~/.cache/spikebatch-testenv``)::

    bin/minio bin/etcd bin/kube-apiserver bin/kube-controller-manager
    bin/kube-scheduler bin/kwok        the binaries (+ bin/<name>.stamp)
    stages/                            kwok's stage files, copied from its module
    build/etcd, build/kubernetes       throwaway go.mod folders

All versions come from ``versions.env`` beside this file. A component is rebuilt
only when its binary is missing or its stamp (the pinned version) differs, so a
warm run rebuilds nothing. Components are built one at a time with ``-p=2``.
Concurrent runs serialise on a lock file in the cache folder.
"""
from __future__ import annotations

import argparse
import fcntl
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
VERSIONS_FILE = HERE / "versions.env"

KUBE_COMPONENTS = ("kube-apiserver", "kube-controller-manager", "kube-scheduler")
ALL_BINARIES = ("minio", "etcd", *KUBE_COMPONENTS, "kwok")

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
    if name == "stages":
        return f"{v['KWOK_MODULE']}@{v['KWOK_VERSION']}:" + ",".join(KWOK_STAGE_FILES)
    raise KeyError(name)


def is_fresh(cache: Path, name: str, v: dict[str, str]) -> bool:
    if name == "stages":
        target = cache / "stages"
        stamp = target / ".stamp"
        ok = all((target / f).is_file() for f in KWOK_STAGE_FILES)
    else:
        target = cache / "bin" / name
        stamp = cache / "bin" / f"{name}.stamp"
        ok = target.is_file() and os.access(target, os.X_OK)
    return ok and stamp.is_file() and stamp.read_text().strip() == stamp_for(name, v)


def missing_components(cache: Path | None = None, v: dict[str, str] | None = None) -> list[str]:
    cache = cache or cache_dir()
    v = v or load_versions()
    return [n for n in (*ALL_BINARIES, "stages") if not is_fresh(cache, n, v)]


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


def build_kubernetes(cache: Path, names: list[str], v: dict[str, str], env: dict[str, str], logfile: Path) -> None:
    kver, sver = v["KUBERNETES_VERSION"], v["KUBERNETES_STAGING_VERSION"]
    kmod = v["KUBERNETES_MODULE"]
    mod = cache / "build" / "kubernetes"
    gomod = mod / "go.mod"
    ready = mod / ".ready"
    if not (gomod.is_file() and ready.is_file() and ready.read_text().strip() == stamp_for("kube-apiserver", v)):
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
        (mod / ".ready").write_text(stamp_for("kube-apiserver", v) + "\n")

    major, minor = kver.lstrip("v").split(".")[:2]
    build_date = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    xs = {"gitVersion": kver, "gitMajor": major, "gitMinor": minor, "gitTreeState": "clean",
          "gitCommit": "0000000000000000000000000000000000000000", "buildDate": build_date}
    ldflags = ["-s", "-w"]
    for pkg in ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version"):
        ldflags += [f"-X {pkg}.{k}={val}" for k, val in xs.items()]
    for name in names:
        t = time.monotonic()
        log(f"building {name} {kver}")
        out = mod / f"{name}.tmp"
        run(["go", "build", "-ldflags", " ".join(ldflags), "-o", str(out), f"{kmod}/cmd/{name}"],
            cwd=mod, env=env, what=f"building {name}", logfile=logfile)
        finish(cache, name, out, v)
        log(f"done {name} in {time.monotonic() - t:.0f} s")


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


def build(force: bool = False) -> Path:
    cache = cache_dir()
    v = load_versions()
    (cache / "bin").mkdir(parents=True, exist_ok=True)
    (cache / "build").mkdir(parents=True, exist_ok=True)
    lock = open(cache / ".build.lock", "w")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        log(f"another build holds {cache / '.build.lock'}; waiting for it")
        fcntl.flock(lock, fcntl.LOCK_EX)
    todo = [n for n in (*ALL_BINARIES, "stages") if force or not is_fresh(cache, n, v)]
    if not todo:
        log(f"all components up to date in {cache}")
        return cache
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
    # Quick things first, the long kubernetes build last.
    order = [n for n in ("stages", "etcd", "kwok", "minio") if n in todo]
    for name in order:
        t = time.monotonic()
        log(f"building {name}")
        {"stages": copy_stages, "etcd": build_etcd, "kwok": build_kwok, "minio": build_minio}[name](cache, v, env, logfile)
        timings[name] = time.monotonic() - t
        log(f"done {name} in {timings[name]:.0f} s")
    kube = [n for n in KUBE_COMPONENTS if n in todo]
    if kube:
        t = time.monotonic()
        build_kubernetes(cache, kube, v, env, logfile)
        timings["kubernetes (" + ", ".join(kube) + ")"] = time.monotonic() - t
    log("finished: " + "; ".join(f"{k} {s:.0f} s" for k, s in timings.items()))
    return cache


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="only report what is missing")
    ap.add_argument("--force", action="store_true", help="rebuild every component")
    args = ap.parse_args(argv)
    if args.check:
        missing = missing_components()
        print(f"cache: {cache_dir()}")
        print("missing: " + (", ".join(missing) if missing else "nothing"))
        return 1 if missing else 0
    try:
        build(force=args.force)
    except BuildError as e:
        print(f"build_testenv: error: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("build_testenv: interrupted", file=sys.stderr, flush=True)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
