"""``vsum bench eval-external``: does evaluating other codebases' files cost what evaluating a
vsum run costs, video for video? (issue 21: 18,100 external videos in the time of a vsum run.)

One labelled synthetic store (built here, or ``--store``), one set of random step scores,
written three ways: a vsum run folder, a DR-DSN-style result h5 and a Parquet scores table.
Each is evaluated by ``jobs.evaluate.evaluate_all`` on the same local Dask cluster (started
once, warmed up first), ``--repeats`` times in rotation; the best wall time of each counts.
Printed: seconds end to end, of which driver-side task building (reading the file, resolving
keys, listing the store), ms per video, ratio to the run, and whether every per-video value
equals the run's.
"""
from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from jobs.bench.common import machine_load, write_json


def write_inputs(store: str, out: Path, seed: int = 0) -> dict[str, list[str]]:
    """The same scores as a run folder, a result h5 and a Parquet table -> name -> evaluate args."""
    import h5py
    import pandas as pd

    from stores import layout
    from stores.predictions import write_predictions, write_run_json
    from stores.reader import FeatureStore

    fs = FeatureStore(store)
    rng = np.random.default_rng(seed)
    scores = {v: rng.random(fs.array(v, layout.PICKS).shape[0]).astype(np.float32)
              for v in fs.video_ids()}  # complete videos, from the store's index
    meta = {"head": "bench", "features": "googlenet", "dataset": "", "setting": "canonical",
            "store": store}
    run = out / "run"
    write_run_json(run, meta)
    write_predictions(run, 0, 0, scores, meta)
    with h5py.File(out / "result.h5", "w") as h5:
        for v, s in scores.items():
            h5[f"{v}/score"] = s
    pd.DataFrame({"video_id": list(scores), "scores": [s.tolist() for s in scores.values()]}) \
        .to_parquet(out / "scores.parquet")
    return {"vsum run": {"runs": [str(run)]},
            "result h5": {"files": [str(out / "result.h5")]},
            "parquet table": {"files": [str(out / "scores.parquet")]}}


def _evaluate_timed(inputs: dict, store: str, client) -> tuple[float, float, object]:
    """(wall s, task-building s, per_video) of one evaluation."""
    from jobs import evaluate as ev
    from jobs import external_eval

    t0 = time.perf_counter()
    if inputs.get("files"):
        external_eval.external_tasks(inputs["files"], None, store)
    build = time.perf_counter() - t0  # measured apart once, then the whole job (which redoes it)
    t0 = time.perf_counter()
    r = ev.evaluate_all(inputs.get("runs", []), inputs.get("files", []), ["bench-method"],
                        None, store, client=client)
    return time.perf_counter() - t0, build, r.per_video


def run_bench(store: str, out: Path, workers: int = 2, repeats: int = 2) -> dict:
    import dask
    from distributed import Client, LocalCluster

    from jobs.dask_eval import QUIET_WORKERS

    inputs = write_inputs(store, out)
    res = {"store": store, "workers": workers, "load_before": machine_load(), "rows": {}}
    with dask.config.set(QUIET_WORKERS):
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None,
                               processes=True)
    client = Client(cluster)
    try:
        _evaluate_timed(inputs["vsum run"], store, client)  # warm-up: imports, numba caches
        per_video = {}
        for _ in range(repeats):
            for name, inp in inputs.items():
                wall, build, pv = _evaluate_timed(inp, store, client)
                row = res["rows"].setdefault(name, {"wall_s": [], "build_s": []})
                row["wall_s"].append(wall)
                row["build_s"].append(build)
                per_video[name] = pv
    finally:
        client.close()
        cluster.close()
    ref = _values(per_video["vsum run"])
    res["n_videos"] = int(ref.index.get_level_values("video_id").nunique())
    for name, row in res["rows"].items():
        row["best_s"] = min(row["wall_s"])
        row["equal_to_run"] = bool(np.array_equal(_values(per_video[name]).to_numpy(),
                                                  ref.to_numpy(), equal_nan=True))
    res["load_after"] = machine_load()
    return res


def _values(per_video):
    return per_video.set_index(["video_id", "metric"])["value"].sort_index()


def print_table(r: dict) -> None:
    n = r["n_videos"]
    base = r["rows"]["vsum run"]["best_s"]
    print(f"evaluation of {n:,} videos of {r['store']} on {r['workers']} Dask workers "
          f"(best of {len(r['rows']['vsum run']['wall_s'])}; load {r['load_before']['load_1min']}"
          f" -> {r['load_after']['load_1min']})")
    print(f"{'':16s} {'seconds':>8s} {'building':>9s} {'ms/video':>9s} {'× run':>7s} {'equal':>6s}")
    for name, row in r["rows"].items():
        print(f"{name:16s} {row['best_s']:8.1f} {min(row['build_s']):9.2f} "
              f"{1e3 * row['best_s'] / n:9.2f} {row['best_s'] / base:7.2f} {str(row['equal_to_run']):>6s}")
    print("building = reading the file, resolving its keys and listing the store, in the driver "
          "(part of seconds; 0 for a run, whose rows name their videos)")


def register(sub) -> None:
    p = sub.add_parser("eval-external", help="external prediction files vs a vsum run: same cost?")
    p.add_argument("--store", default=None, help="a labelled store (default: build a synthetic one)")
    p.add_argument("--videos", type=int, default=1000, help="videos of the synthetic store")
    p.add_argument("--work", default="bench_out/eval_external", help="folder for the inputs / store")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    p.set_defaults(func=run)


def run(args) -> int:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    store = args.store
    if store is None:
        from stores.synthetic import build_synthetic_store

        store = str(work / f"synth{args.videos}.zarr")
        if not Path(store).exists():
            build_synthetic_store(store, args.videos, feature_shapes={"googlenet": (16,)},
                                  min_steps=100, max_steps=200)
    r = run_bench(store, work, args.workers, args.repeats)
    print_table(r)
    write_json(args.out, r)
    return 0
