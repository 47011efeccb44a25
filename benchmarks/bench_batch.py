"""Benchmark: sorting batches against the test control plane (kwok plays the node) and
a real MinIO. Prints, in one run:

1. submitting and watching N recordings as one Indexed Job vs as N Jobs: API requests
   and wall time to submit and to see the last state; and N ``deploy-job`` calls (the
   way to run N jobs before batches) for the submit time;
2. staging recordings of a few MB each: hashing one process vs one per core, uploads
   one at a time vs several at once (MB/s), beside one core's raw sha256 rate;
3. a re-submission of the same recordings: the bytes it uploads (must be 0).

    python benchmarks/bench_batch.py                      # N = 50, 200
    python benchmarks/bench_batch.py --counts 20 --deploy-calls 20 --staging-files 8

Targets (issue 13): watch requests constant in N; the batch submit of 200 in under a
tenth of the time of 200 deploy-job calls; parallel hashing close to cores x one
core's sha256 rate. Not a test: it asserts nothing, it measures.
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "tests"))

IMAGE = "registry.example.org/lab/spikebatch-runner:bench"


def make_recordings(folder: Path, count: int, megabytes: float, seed: int) -> list[Path]:
    """``count`` SpikeInterface binary folders of about ``megabytes`` each, distinct."""
    from spikeinterface.generation import NoiseGeneratorRecording

    template = folder / "template"
    channels, fs = 4, 10000.0
    seconds = max(0.1, megabytes * 1e6 / (channels * 4 * fs))
    recording = NoiseGeneratorRecording(num_channels=channels, sampling_frequency=fs, durations=[seconds], seed=1)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        recording.save(folder=template, verbose=False)
    (raw,) = template.glob("traces_cached_seg*.raw")
    rng = np.random.default_rng(seed)
    made = []
    for i in range(count):
        target = folder / f"rec{seed}-{i:03d}"
        shutil.copytree(template, target)
        (target / raw.name).write_bytes(rng.integers(-500, 500, raw.stat().st_size // 4, dtype=np.int32).tobytes())
        made.append(target)
    shutil.rmtree(template)
    return made


def profile(namespace: str, bucket: str, minio, prefix: str = "bench") -> object:
    from spikebatch.models import ClusterProfile, ResourceSpec

    return ClusterProfile(
        name="bench-batch", namespace=namespace, backend="kubernetes", storage_backend="boto3",
        default_s3_prefix=f"s3://{bucket}/{prefix}/", endpoint_url=minio.endpoint_url, region_name=minio.region,
        default_images={"cpu": IMAGE},
        resources=ResourceSpec(requests_cpu="10m", requests_memory="16Mi", limits_cpu="10m", limits_memory="16Mi"),
    )


def session_for(cluster, minio, namespace: str, bucket: str, prefix: str = "bench"):
    from spikebatch.session import RunSession

    return RunSession.from_profile(profile(namespace, bucket, minio, prefix), kubeconfig=cluster.admin_kubeconfig,
                                   aws_access_key_id=minio.access_key, aws_secret_access_key=minio.secret_key)


def batch_run(cluster, minio, recordings: list[Path], indexed: bool) -> dict:
    namespace = cluster.create_namespace(f"bench-batch-{uuid.uuid4().hex[:6]}")
    bucket = minio.make_bucket()
    try:
        session = session_for(cluster, minio, namespace, bucket)
        backend = session.backend
        start_requests, t0 = backend.request_count, time.monotonic()
        batch = session.submit_sorting_batch(recording_paths=[str(p) for p in recordings], config="tridesclous2",
                                             job_spec={}, parallelism=len(recordings), retries_per_recording=0,
                                             per_recording_jobs=not indexed)
        t1, submitted = time.monotonic(), backend.request_count
        final, report = session.wait_for_batch(batch.run_id, 900)
        t2 = time.monotonic()
        return {"shape": "1 Indexed Job" if indexed else f"{len(recordings)} Jobs", "n": len(recordings),
                "jobs": len(batch.job_names), "final": final, "submit_s": t1 - t0, "last_state_s": t2 - t0,
                "submit_requests": submitted - start_requests, "watch_requests": backend.request_count - submitted,
                "done": report.count("succeeded")}
    finally:
        cluster.delete_namespace(namespace)
        minio.remove_bucket(bucket)


def deploy_job_calls(cluster, calls: int, workdir: Path) -> float:
    """Seconds for ``calls`` runs of ``spikebatch deploy-job`` (one process each)."""
    namespace = cluster.create_namespace(f"bench-deploy-{uuid.uuid4().hex[:6]}")
    try:
        prof = workdir / "deploy-profile.yaml"
        prof.write_text(f"name: bench\nbackend: kubernetes\nstorage_backend: local\nnamespace: {namespace}\n"
                        f"default_images: {{cpu: '{IMAGE}'}}\n")
        config = workdir / "deploy-job.yaml"
        config.write_text("container:\n  command: [python, -c, pass]\nactive_deadline_seconds: 600\n")
        env = {**os.environ, "SPIKEBATCH_STATE_DIR": str(workdir / "state"), "SPIKEBATCH_DATA_DIR": str(workdir / "data")}
        t0 = time.monotonic()
        for _ in range(calls):
            subprocess.run([sys.executable, "-m", "spikebatch", "--quiet", "--profile-file", str(prof),
                            "--kubeconfig", cluster.admin_kubeconfig, "deploy-job", "--job-config", str(config)],
                           check=True, capture_output=True, env=env)
        return time.monotonic() - t0
    finally:
        cluster.delete_namespace(namespace)


def one_core_sha256_mbps(megabytes: int = 256) -> float:
    block = os.urandom(8 * 1024 * 1024)
    hasher = hashlib.sha256()
    rounds = max(1, megabytes // 8)
    t0 = time.monotonic()
    for _ in range(rounds):
        hasher.update(block)
    return rounds * len(block) / 1e6 / (time.monotonic() - t0)


def staging(minio, recordings: list[Path], workdir: Path) -> dict:
    from spikebatch.adapters.files.file_hashing import hash_files, hashing_processes
    from spikebatch.application.bundling import BundlePlanner
    from spikebatch.application.staging import stage_plan
    from spikebatch.container import artifact_store

    files = [str(f) for p in recordings for f in sorted(p.rglob("*")) if f.is_file()]
    total = sum(os.path.getsize(f) for f in files)
    figures = {"bytes": total, "files": len(files), "cores": hashing_processes(), "one_core_mbps": one_core_sha256_mbps()}
    for label, processes in (("hash_serial", 1), ("hash_parallel", None)):
        t0 = time.monotonic()
        hash_files(files, processes=processes)
        figures[label] = total / 1e6 / (time.monotonic() - t0)
    bucket = minio.make_bucket()
    try:
        for label, uploads in (("upload_serial", 1), ("upload_parallel", 4), ("resubmit", 4)):
            # The re-submission goes to the store the parallel upload filled.
            prefix = "upload-parallel" if label == "resubmit" else label.replace("_", "-")
            store = artifact_store(profile("default", bucket, minio, prefix), aws_access_key_id=minio.access_key,
                                   aws_secret_access_key=minio.secret_key)
            plan = BundlePlanner(store).plan_sorting(run_id=f"20261130-000000-{uuid.uuid4().hex[:8]}",
                                                     recording_paths=[str(p) for p in recordings],
                                                     sorter_name="spikeinterface", sorter_config={})
            with tempfile.TemporaryDirectory(dir=workdir) as scratch:
                t0 = time.monotonic()
                summary = stage_plan(plan, store, Path(scratch), uploads=uploads)
                seconds = time.monotonic() - t0
            figures[label] = summary.uploaded_bytes / 1e6 / seconds if summary.uploaded_bytes else 0.0
            figures[f"{label}_uploaded"] = summary.uploaded_bytes
    finally:
        minio.remove_bucket(bucket)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--counts", default="50,200", help="batch sizes (default 50,200)")
    parser.add_argument("--deploy-calls", type=int, default=None,
                        help="deploy-job calls to time (default: the largest batch size)")
    parser.add_argument("--staging-files", type=int, default=16, help="recordings staged in part 2 (default 16)")
    parser.add_argument("--staging-mb", type=float, default=16.0, help="MB per staged recording (default 16)")
    args = parser.parse_args(argv)
    counts = [int(x) for x in args.counts.split(",") if x]

    from infra.testenv import KubeCluster, MinioServer

    workdir = Path(tempfile.mkdtemp(prefix="bench-batch-"))
    cache = workdir / "cache"
    os.environ["SPIKEBATCH_CACHE_DIR"] = str(cache)
    cluster, minio = KubeCluster().start(), MinioServer().start()
    rows = []
    try:
        for n in counts:
            recordings = make_recordings(workdir / f"n{n}", n, 0.1, seed=n)
            for indexed in (True, False):
                shutil.rmtree(cache, ignore_errors=True)
                row = batch_run(cluster, minio, recordings, indexed)
                rows.append(row)
                print(f"n={n} {row['shape']}: submit {row['submit_s']:.1f} s ({row['submit_requests']} requests), "
                      f"last state after {row['last_state_s']:.1f} s, watch {row['watch_requests']} requests, "
                      f"{row['done']}/{n} done ({row['final']})", flush=True)
        calls = args.deploy_calls or max(counts)
        deploy_s = deploy_job_calls(cluster, calls, workdir)
        print(f"{calls} deploy-job calls: {deploy_s:.1f} s", flush=True)
        staged = make_recordings(workdir / "staging", args.staging_files, args.staging_mb, seed=7)
        shutil.rmtree(cache, ignore_errors=True)
        figures = staging(minio, staged, workdir)
    finally:
        minio.stop()
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    print()
    print(f"{'recordings':>10}  {'shape':<14}{'jobs':>6}{'submit s':>10}{'submit req':>12}{'last state s':>14}"
          f"{'watch req':>11}")
    for r in rows:
        print(f"{r['n']:>10}  {r['shape']:<14}{r['jobs']:>6}{r['submit_s']:>10.1f}{r['submit_requests']:>12}"
              f"{r['last_state_s']:>14.1f}{r['watch_requests']:>11}")
    largest = max(counts)
    batch_submit = next(r["submit_s"] for r in rows if r["n"] == largest and r["jobs"] == 1)
    per_call = deploy_s / calls
    print(f"\nsubmit of {largest} recordings as one batch: {batch_submit:.1f} s; {largest} deploy-job calls: "
          f"{per_call * largest:.1f} s{'' if calls == largest else f' (extrapolated from {calls})'}; "
          f"ratio {batch_submit / (per_call * largest):.3f} (target < 0.1)")
    mb = figures["bytes"] / 1e6
    print(f"\nstaging {args.staging_files} recordings, {mb:.0f} MB in {figures['files']} files, "
          f"{figures['cores']} cores:")
    print(f"  sha256, one core, in memory: {figures['one_core_mbps']:8.0f} MB/s "
          f"(x cores = {figures['one_core_mbps'] * figures['cores']:.0f})")
    print(f"  hashing one process:         {figures['hash_serial']:8.0f} MB/s")
    print(f"  hashing one per core:        {figures['hash_parallel']:8.0f} MB/s")
    print(f"  upload one at a time:        {figures['upload_serial']:8.0f} MB/s")
    print(f"  upload 4 at once:            {figures['upload_parallel']:8.0f} MB/s")
    print(f"  re-submit: {figures['resubmit_uploaded']} bytes uploaded (target 0)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
