"""Benchmark: submit N Jobs and wait for all of them through KubernetesBatchJobBackend,
once by watching (one list + a watch stream) and once by polling each Job's status
every few seconds, against a real API server. Prints wall time and the API requests
the client made (counted inside the client).

    python benchmarks/bench_backend.py                 # starts the test control plane
    python benchmarks/bench_backend.py --jobs 50,100 --poll-interval 2
    python benchmarks/bench_backend.py --kubeconfig ~/.kube/config   # an existing cluster

Without --kubeconfig (or SPIKEBATCH_TEST_KUBECONFIG) it starts the test environment
of tests/infra (etcd, kube-apiserver, controller-manager, scheduler, kwok), which
must have been built (python tests/infra/build_testenv.py). Each run uses a fresh
namespace, deleted afterwards.

Not a test: it asserts nothing, it measures.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

from spikebatch.adapters.kubernetes.backend import KubernetesBatchJobBackend  # noqa: E402
from spikebatch.domain.manifest import render_job_manifest  # noqa: E402
from spikebatch.domain.models import ClusterProfile, ContainerSpec, JobSpec, ResourceSpec  # noqa: E402
from spikebatch.domain.naming import RUN_ID_LABEL, new_run_id  # noqa: E402


@contextmanager
def control_plane(kubeconfig: str | None) -> Iterator[object]:
    from infra.testenv import KubeCluster

    if kubeconfig:
        yield KubeCluster.from_kubeconfig(kubeconfig)
        return
    from infra.testenv import missing

    absent = missing(KubeCluster.COMPONENTS)
    if absent:
        raise SystemExit(f"missing {', '.join(absent)}: run `python tests/infra/build_testenv.py` first, "
                         "or pass --kubeconfig")
    t = time.monotonic()
    cluster = KubeCluster().start()
    print(f"control plane up in {time.monotonic() - t:.1f} s ({cluster.server})", flush=True)
    try:
        yield cluster
    finally:
        cluster.stop()


def job_manifest(name: str, namespace: str, run_id: str) -> dict:
    spec = JobSpec(name_prefix=name, namespace=namespace,
                   container=ContainerSpec(image="python:3.11-slim", command=["python", "-c", "print('hi')"]),
                   resources=ResourceSpec(requests_cpu="10m", limits_cpu="10m", requests_memory="16Mi",
                                          limits_memory="16Mi"))
    return render_job_manifest(name, spec, ClusterProfile(name="bench", namespace=namespace), run_id)


def submit(backend: KubernetesBatchJobBackend, n: int, run_id: str) -> list[str]:
    return [backend.apply_manifest(job_manifest(f"bench-{i:04d}", backend.namespace, run_id)) for i in range(n)]


def wait_by_watch(backend: KubernetesBatchJobBackend, names: list[str], run_id: str, timeout: float) -> int:
    finished = 0
    for event in backend.watch(job_names=names, label_selector={RUN_ID_LABEL: run_id}, timeout_seconds=timeout):
        if event.state.is_terminal:
            finished += 1
    return finished


def wait_by_polling(backend: KubernetesBatchJobBackend, names: list[str], interval: float, timeout: float) -> int:
    pending = list(names)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        pending = [n for n in pending if not backend.job_status(n).is_terminal]
        if pending:
            time.sleep(interval)
    return len(names) - len(pending)


def run_once(cluster: object, mode: str, n: int, interval: float, timeout: float) -> dict:
    namespace = cluster.create_namespace(f"bench-{mode}-{uuid.uuid4().hex[:6]}")
    try:
        with KubernetesBatchJobBackend(namespace=namespace, kubeconfig=cluster.admin_kubeconfig,
                                       use_kubectl_fallback=False) as backend:
            run_id = new_run_id()
            t0 = time.monotonic()
            names = submit(backend, n, run_id)
            submitted = backend.request_count
            t1 = time.monotonic()
            if mode == "watch":
                finished = wait_by_watch(backend, names, run_id, timeout)
            else:
                finished = wait_by_polling(backend, names, interval, timeout)
            t2 = time.monotonic()
            return {"mode": mode, "jobs": n, "finished": finished, "wall": t2 - t0, "wait": t2 - t1,
                    "requests": backend.request_count, "wait_requests": backend.request_count - submitted,
                    "by_kind": dict(sorted(backend.requests_by_kind.items()))}
    finally:
        cluster.delete_namespace(namespace)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", default="100", help="comma-separated job counts (default 100)")
    parser.add_argument("--poll-interval", type=float, default=2.0, help="seconds between polls (default 2)")
    parser.add_argument("--timeout", type=float, default=900.0, help="longest wait per run in seconds")
    parser.add_argument("--kubeconfig", default=os.environ.get("SPIKEBATCH_TEST_KUBECONFIG"),
                        help="use this cluster instead of starting the test control plane")
    parser.add_argument("--modes", default="watch,poll")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.jobs.split(",") if x]
    modes = [m for m in args.modes.split(",") if m]

    rows = []
    with control_plane(args.kubeconfig) as cluster:
        for n in counts:
            for mode in modes:
                row = run_once(cluster, mode, n, args.poll_interval, args.timeout)
                rows.append(row)
                print(f"{mode:>5} n={n}: {row['finished']}/{n} finished, wall {row['wall']:.1f} s, "
                      f"{row['requests']} requests {row['by_kind']}", flush=True)

    print()
    print(f"{'mode':<8}{'jobs':>6}{'done':>6}{'wall s':>9}{'wait s':>9}{'requests':>10}{'wait req':>10}"
          f"{'req/job':>9}   by kind")
    for r in rows:
        label = r["mode"] if r["mode"] == "watch" else f"poll {args.poll_interval:g}s"
        print(f"{label:<8}{r['jobs']:>6}{r['finished']:>6}{r['wall']:>9.1f}{r['wait']:>9.1f}{r['requests']:>10}"
              f"{r['wait_requests']:>10}{r['requests'] / r['jobs']:>9.2f}   {r['by_kind']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
