"""``vsum bench scale --latency-ms 20 --videos 5000``: a store on object storage far away.

Setup (not timed): N complete tiny videos (jobs/bench/tiny_store.py), built once under
``--cache``; served by moto's S3 server in its own process (objects preloaded,
jobs/bench/s3_loopback.py), reached through a proxy in this process that holds every request
``--latency-ms`` and counts the requests.

Measured in one run, each beside the scan that reads one group after another (what vsum read
before the store had an index: jobs/bench/scan_baseline.py), answers checked equal:

    noop_plan_s           planning a re-run of the same N inputs (``jobs.extract_plan.plan_work``)
    store_info_s          ``vsum store info`` (its function; output kept in memory)
    open_for_training_s   k-fold splits (``jobs.train.resolve_splits``) and the training
                          dataset with labels (``stores.dataset.VideoDataset``)
    <each>_scan           the same through the one-by-one scan; <each>_requests, <each>_scan_requests

Also: ``noop_plan_fallback_s`` (a writer has the store open, so planning reads every group, 32
at a time) and ``store_info_cmd_s`` (``vsum store info`` as a command: interpreter start-up
included). ``--scan-videos K`` (K < N): the scans run on a K-video store and are scaled by N/K
(they read every group, one after another, so their time is linear in N); the table says so.
Targets (issue 19), at 20 ms and 5,000 videos: plan ≤ 5 s, info ≤ 5 s, open ≤ 10 s.
Moto itself takes several milliseconds per request on a busy 2-core machine, on top of the
proxy's delay: the scans pay it per group, the indexed paths a few times.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
from argparse import Namespace
from pathlib import Path

from jobs.bench.common import RssSampler, machine_load, timed

TARGETS_S = {"noop_plan": 5.0, "store_info": 5.0, "open_for_training": 10.0}


def build_corpus(cache: str, n: int) -> str:
    """A local store of n tiny videos under ``cache`` (built once; DONE marks it whole)."""
    from jobs.bench.tiny_store import write_tiny_store

    folder = Path(cache) / f"latency_n{n}"
    store = folder / "store.zarr"
    if not (folder / "DONE").exists():
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
        write_tiny_store(str(store), n)
        (folder / "DONE").write_text(f"{n} videos\n")
    return str(store)


@contextlib.contextmanager
def s3_serving(preloads: list[tuple[str, str]]):
    """moto in a child process with ``preloads`` [(local dir, s3 url)] -> its port."""
    cmd = [sys.executable, "-m", "jobs.bench.s3_loopback"]
    for local, url in preloads:
        cmd += ["--preload", local, url]
    child = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = child.stdout.readline()
        if not line:
            raise RuntimeError("the S3 server process did not start")
        yield json.loads(line)["direct"]
    finally:
        child.stdin.close()
        child.wait(30)


def measure(proxy, fn, *args, **kwargs) -> tuple[float, int, object]:
    """(wall seconds, requests, result) of one call."""
    before = proxy.requests
    seconds, out = timed(fn, *args, **kwargs)
    return seconds, proxy.requests - before, out


def indexed_info(url: str) -> list[str]:
    from jobs.store_cmd import info_cli

    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        assert info_cli(Namespace(store=url)) == 0
    return buf.getvalue().splitlines()


def indexed_open(url: str, opts: dict) -> tuple[list[str], int]:
    from jobs.train import resolve_splits
    from stores.dataset import VideoDataset
    from stores.reader import FeatureStore

    splits = resolve_splits("kfold:5", url)
    ids = sorted(splits[0][0] + splits[0][1])
    data = VideoDataset(FeatureStore(url, opts), ids, need_labels=True, cache_bytes=0)
    return ids, data.nbytes()


def run_latency(n: int, latency_ms: float, scan_videos: int | None, cache: str) -> dict:
    from jobs.bench import scan_baseline as scan
    from jobs.bench.s3_loopback import LatencyProxy, env_for
    from jobs.bench.tiny_store import CONFIG_HASH, tiny_sources
    from jobs.extract_plan import plan_work
    from stores.store import Store
    from stores.manifest import Manifest

    k = min(n, scan_videos or n)
    full, small = build_corpus(cache, n), build_corpus(cache, k)
    url, url_k = f"s3://bench/n{n}.zarr", f"s3://bench/n{k}.zarr"
    saved_env = os.environ.get("VSUM_STORAGE_OPTIONS")
    with s3_serving([(full, url)] + ([(small, url_k)] if k < n else [])) as port, \
            LatencyProxy(port, latency_ms) as proxy, RssSampler() as rss:
        opts = proxy.storage_options()
        os.environ["VSUM_STORAGE_OPTIONS"] = json.dumps(opts)  # what `vsum` commands read
        try:
            indexed_info(url_k)  # warm-up (connections, imports); not timed
            r: dict = {}
            plan = measure(proxy, plan_work, tiny_sources(n), Store(url, opts), CONFIG_HASH, False, set())
            info = measure(proxy, indexed_info, url)
            opened = measure(proxy, indexed_open, url, opts)
            s_plan = measure(proxy, scan.plan_done, url_k, opts, CONFIG_HASH)
            s_info = measure(proxy, scan.info_lines, url_k, opts)
            s_open = measure(proxy, scan.open_for_training, url_k, opts)
            assert plan[2].todo == [] and len(s_plan[2]) == k, "a no-op re-run must plan nothing"
            assert len(info[2]) == n + 2 and indexed_info(url_k)[1:-1] == s_info[2], "info differs"
            assert len(opened[2][0]) == n and indexed_open(url_k, opts) == s_open[2], "open differs"
            for name, idx, sc in (("noop_plan", plan, s_plan), ("store_info", info, s_info),
                                  ("open_for_training", opened, s_open)):
                r[f"{name}_s"], r[f"{name}_requests"] = idx[0], idx[1]
                r[f"{name}_scan_s"], r[f"{name}_scan_requests"] = sc[0] * n / k, round(sc[1] * n / k)
                r[f"{name}_scan_measured_s"] = sc[0]
            writer = Manifest(url, opts, command="vsum bench scale")  # a writer has it open
            fb = measure(proxy, plan_work, tiny_sources(n), Store(url, opts), CONFIG_HASH, False, set())
            writer.close()
            r["noop_plan_fallback_s"], r["noop_plan_fallback_requests"] = fb[0], fb[1]
            env = {**os.environ, **env_for(opts)}
            r["store_info_cmd_s"], cmd = timed(subprocess.run, [str(Path(sys.executable).parent / "vsum"),
                                               "store", "info", url], env=env, capture_output=True)
            assert cmd.returncode == 0, cmd.stderr
        finally:
            if saved_env is None:
                os.environ.pop("VSUM_STORAGE_OPTIONS", None)
            else:
                os.environ["VSUM_STORAGE_OPTIONS"] = saved_env
    return {"videos": n, "latency_ms": latency_ms, "scan_videos": k, **r,
            "rss_peak_mb": rss.peak_mb, **machine_load()}


def format_table(r: dict) -> str:
    n, k = r["videos"], r["scan_videos"]
    scaled = f" (measured on {k} videos, × {n}/{k})" if k < n else ""
    lines = [f"vsum bench scale --latency-ms {r['latency_ms']:g}: {n} complete videos on S3 (moto) "
             f"behind a {r['latency_ms']:g} ms proxy; load {r['load_1min']} on {r['cpus']} CPUs", "",
             f"| operation | index | one-by-one scan{scaled} | scan / index | target |",
             "|---|---|---|---|---|"]
    for name, label in (("noop_plan", "plan a no-op re-run"), ("store_info", "vsum store info"),
                        ("open_for_training", "open for training (splits + dataset)")):
        i, s = r[f"{name}_s"], r[f"{name}_scan_s"]
        ok = "met" if i <= TARGETS_S[name] else "NOT met"
        lines.append(f"| {label} | {i:.2f} s ({r[f'{name}_requests']} req) | {s:.1f} s "
                     f"({r[f'{name}_scan_requests']} req) | {s / i:.0f}× | ≤ {TARGETS_S[name]:g} s: {ok} |")
    lines += ["", f"plan while a writer has the store open (every group read, in parallel): "
                  f"{r['noop_plan_fallback_s']:.2f} s ({r['noop_plan_fallback_requests']} req); "
                  f"`vsum store info` as a command (with start-up): {r['store_info_cmd_s']:.2f} s; "
                  f"peak RSS {r['rss_peak_mb']:.0f} MB"]
    return "\n".join(lines)
