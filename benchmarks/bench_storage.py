"""Benchmark: stage a large file to MinIO through each storage adapter and through the
plain clients, in one run, and print throughput, peak memory and the ratios.

    python benchmarks/bench_storage.py                 # 2 GiB, 2 rounds, starts MinIO
    python benchmarks/bench_storage.py --size-gib 0.5 --rounds 1

MinIO comes from SPIKEBATCH_TEST_S3_ENDPOINT / _ACCESS_KEY / _SECRET_KEY (+ _REGION)
when set, else it is started from the test environment's cache (tests/infra, built by
``python tests/infra/build_testenv.py``) on 127.0.0.1 and stopped at the end.

Every transfer runs in its own child process, so each peak RSS (the child's VmHWM,
interpreter and libraries included) belongs to that transfer alone; times are measured
inside the child around the transfer call only (no interpreter start-up or imports). The adapters stage with
``put_blob`` -- what a job submission does: hash the file, then upload it under its
content address -- and the hashing is inside the timed part. The re-put is a second
``put_blob`` of the unchanged file from a new process (a later submission): the digest
comes from the on-disk cache and the existing object is found, so nothing is sent.

Targets: each adapter >= 0.9x the best plain client; peak RSS < 200 MB; re-put < 2% of
the first put. MB = 10^6 bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
VARIANTS_PLAIN = ("plain-boto3", "plain-minio")
ADAPTERS = ("boto3", "minio")


# --- child side: one transfer, timed ------------------------------------------------
def peak_rss() -> int:
    """This process's peak resident set (bytes), from /proc/self/status VmHWM.

    Not getrusage's ru_maxrss: Linux carries the parent's peak across fork + exec into
    it, so every child would report at least the parent's size."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM in /proc/self/status (Linux only)")


def _connection() -> dict:
    return json.loads(os.environ["SB_BENCH_CONN"])


def child(variant: str, path: str, uri: str) -> dict:
    conn = _connection()
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if variant == "plain-boto3":
        import boto3
        from botocore.config import Config

        client = boto3.client("s3", endpoint_url=conn["endpoint"], region_name=conn["region"],
                              aws_access_key_id=conn["access"], aws_secret_access_key=conn["secret"],
                              config=Config(s3={"addressing_style": "path"}))
        started = time.perf_counter()
        client.upload_file(path, bucket, key)
        return {"seconds": time.perf_counter() - started}
    if variant == "plain-minio":
        from minio import Minio

        client = Minio(conn["endpoint"].split("://", 1)[1], access_key=conn["access"],
                       secret_key=conn["secret"], secure=conn["endpoint"].startswith("https"),
                       region=conn["region"])
        started = time.perf_counter()
        client.fput_object(bucket, key, path)
        return {"seconds": time.perf_counter() - started}
    adapter, _, _phase = variant.partition(":")
    if adapter == "local":
        from spikebatch.adapters.files.local_store import LocalFileStorage

        store = LocalFileStorage(prefix=uri)
    else:
        if adapter == "boto3":
            from spikebatch.adapters.s3.boto3_store import S3StorageClient as cls
        else:
            from spikebatch.adapters.s3.minio_store import MinioStorageClient as cls
        store = cls(prefix=uri, endpoint_url=conn["endpoint"], region_name=conn["region"],
                    aws_access_key_id=conn["access"], aws_secret_access_key=conn["secret"])
    started = time.perf_counter()
    stored = store.put_blob(path)
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "uri": stored, "hashed_bytes": store.digest_cache.bytes_hashed}


# --- parent side --------------------------------------------------------------------
def run_child(variant: str, path: Path, uri: str, env: dict) -> dict:
    """Run one transfer in a fresh child process; it reports time and peak RSS."""
    proc = subprocess.run([sys.executable, __file__, "--child", variant, str(path), uri],
                          stdout=subprocess.PIPE, env=env, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{variant} failed with exit code {proc.returncode}")
    return json.loads(proc.stdout)


def make_file(folder: Path, size: int) -> Path:
    """Random bytes (no compression or dedupe can flatter anyone), written in 64 MiB
    blocks; then wait until the file is 2 s old, like a recording at rest (the digest
    cache does not trust the mtime of a file modified in the last 2 s)."""
    path = folder / "recording.bin"
    block = 64 * 1024 * 1024
    with open(path, "wb") as handle:
        left = size
        while left:
            step = min(block, left)
            handle.write(os.urandom(step))
            left -= step
    time.sleep(max(0.0, path.stat().st_mtime + 2.1 - time.time()))
    return path


def start_minio():
    endpoint = os.environ.get("SPIKEBATCH_TEST_S3_ENDPOINT")
    if endpoint:
        conn = {"endpoint": endpoint.rstrip("/"), "access": os.environ["SPIKEBATCH_TEST_S3_ACCESS_KEY"],
                "secret": os.environ["SPIKEBATCH_TEST_S3_SECRET_KEY"],
                "region": os.environ.get("SPIKEBATCH_TEST_S3_REGION", "us-east-1")}
        return conn, None
    sys.path.insert(0, str(REPO / "tests"))
    from infra.testenv import MinioServer, missing

    absent = missing(MinioServer.COMPONENTS)
    if absent:
        raise SystemExit("MinIO is not built; run `python tests/infra/build_testenv.py` or set "
                         "SPIKEBATCH_TEST_S3_ENDPOINT / _ACCESS_KEY / _SECRET_KEY")
    server = MinioServer().start()
    conn = {"endpoint": server.endpoint_url, "access": server.access_key,
            "secret": server.secret_key, "region": server.region}
    return conn, server


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-gib", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=2, help="best of N per variant")
    parser.add_argument("--workdir", default=None, help="folder for the test file (default: a temp dir)")
    args = parser.parse_args()
    size = int(args.size_gib * 1024 ** 3)

    import boto3

    conn, server = start_minio()
    s3 = boto3.client("s3", endpoint_url=conn["endpoint"], region_name=conn["region"],
                      aws_access_key_id=conn["access"], aws_secret_access_key=conn["secret"])
    bucket = f"sbbench-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    runs: dict[str, list[dict]] = {}
    try:
        with tempfile.TemporaryDirectory(prefix="sbbench-", dir=args.workdir) as tmp:
            tmpdir = Path(tmp)
            print(f"writing {size / 1e6:.0f} MB of random bytes ...", flush=True)
            path = make_file(tmpdir, size)
            env = dict(os.environ, SB_BENCH_CONN=json.dumps(conn),
                       PYTHONPATH=os.pathsep.join([str(REPO / "src"), os.environ.get("PYTHONPATH", "")]))
            for round_no in range(1, args.rounds + 1):
                # Interleaved, so a noisy neighbour hurts every variant alike.
                for variant in VARIANTS_PLAIN:
                    key = f"plain/{variant}-{round_no}"
                    runs.setdefault(variant, []).append(run_child(variant, path, f"s3://{bucket}/{key}", env))
                    s3.delete_object(Bucket=bucket, Key=key)
                    report_line(variant, runs[variant][-1], size)
                for adapter in ADAPTERS + ("local",):
                    # A new prefix and a new digest cache: the first put really uploads.
                    cache = tmpdir / f"cache-{adapter}-{round_no}"
                    child_env = dict(env, SPIKEBATCH_CACHE_DIR=str(cache))
                    prefix = (f"s3://{bucket}/{adapter}-{round_no}/" if adapter != "local"
                              else f"file://{tmpdir}/local-store-{round_no}/")
                    first = run_child(f"{adapter}:first", path, prefix, child_env)
                    again = run_child(f"{adapter}:reput", path, prefix, child_env)
                    assert again["uri"] == first["uri"] and again["hashed_bytes"] == 0
                    runs.setdefault(f"adapter-{adapter}", []).append(first)
                    runs.setdefault(f"adapter-{adapter}:reput", []).append(again)
                    report_line(f"adapter-{adapter}", first, size)
                    report_line(f"adapter-{adapter} re-put", again, size)
                    if adapter != "local":
                        s3.delete_object(Bucket=bucket, Key=first["uri"].split("/", 3)[3])
                    else:
                        Path(first["uri"].removeprefix("file://")).unlink()
            summary(runs, size)
    finally:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
            for obj in page.get("Contents", []):
                s3.delete_object(Bucket=bucket, Key=obj["Key"])
        s3.delete_bucket(Bucket=bucket)
        if server is not None:
            server.stop()


def mbps(size: int, seconds: float) -> float:
    return size / 1e6 / seconds


def report_line(name: str, run: dict, size: int) -> None:
    print(f"  {name:24s} {run['seconds']:8.2f} s {mbps(size, run['seconds']):8.1f} MB/s"
          f"   peak RSS {run['peak_rss'] / 1e6:6.1f} MB", flush=True)


def summary(runs: dict[str, list[dict]], size: int) -> None:
    best = {name: min(r["seconds"] for r in rs) for name, rs in runs.items()}
    rss = {name: max(r["peak_rss"] for r in rs) for name, rs in runs.items()}
    plain_best = min(best[v] for v in VARIANTS_PLAIN)
    plain_name = min(VARIANTS_PLAIN, key=lambda v: best[v])
    print(f"\nsummary for {size / 1e6:.0f} MB (best of {len(runs['plain-boto3'])}; "
          f"reference = {plain_name}, {mbps(size, plain_best):.1f} MB/s)")
    print(f"  {'variant':18s} {'MB/s':>8s} {'ratio':>7s} {'peak RSS':>10s} {'re-put':>9s} {'re-put/put':>11s}")
    ok = True
    for name in VARIANTS_PLAIN + tuple(f"adapter-{a}" for a in ADAPTERS + ("local",)):
        ratio = plain_best / best[name]
        line = f"  {name:18s} {mbps(size, best[name]):8.1f} {ratio:6.2f}x {rss[name] / 1e6:8.1f} MB"
        if name.startswith("adapter-"):
            reput = best[name + ":reput"]
            share = reput / best[name]
            line += f" {reput * 1000:7.1f} ms {share * 100:9.2f} %"
            if name != "adapter-local":
                ok &= ratio >= 0.9 and share < 0.02
            ok &= rss[name] < 200e6 and rss[name + ":reput"] < 200e6
        print(line)
    print("\ntargets (S3 adapters >= 0.9x best plain client, peak RSS < 200 MB, re-put < 2%): "
          + ("met" if ok else "NOT met"))


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        outcome = child(sys.argv[2], sys.argv[3], sys.argv[4])
        print(json.dumps(dict(outcome, peak_rss=peak_rss())))
    else:
        main()
