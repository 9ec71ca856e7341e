"""``vsum extract INPUT... --store S``: videos -> Zarr feature store, as a Ray job.

Long-lived actors load the models once; each video is decoded and embedded by one actor;
longest videos (by bytes) go first; the driver keeps the manifest and shows progress.
Re-running skips videos that are complete with the same configuration; a killed run resumes
(incomplete groups are rewritten). Exit code: 0 all good, 1 some videos failed, 2 usage error.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE = 0, 1, 2


def register(sub) -> None:
    p = sub.add_parser("extract", help="extract features from videos into a Zarr store (Ray job)")
    p.add_argument("inputs", nargs="+", help="video files, folders, globs, URLs or .txt lists of paths")
    p.add_argument("--store", required=True, help="store path or URL (created when missing)")
    add_extract_options(p)
    p.add_argument("--workers", type=int, default=None, help="actors (default: cluster CPUs / threads)")
    p.add_argument("--threads-per-worker", type=int, default=1, help="torch threads per actor")
    p.add_argument("--repair", action="store_true",
                   help="recompute videos that `vsum store check` finds damaged, even if complete")
    p.add_argument("--force", action="store_true", help="recompute every video")
    p.set_defaults(func=run_cli)


def add_extract_options(p) -> None:
    """Options shared by `vsum extract`, `vsum demo` and `vsum summarize`."""
    p.add_argument("--features", default="googlenet",
                   help="comma-separated extractors: googlenet,st3d,i3d (and 'frames' or --frames)")
    p.add_argument("--weights", default="auto", help="auto | pretrained | random | PATH")
    p.add_argument("--every", type=int, default=15, help="sample every N-th decoded frame (default 15)")
    p.add_argument("--fps", type=float, default=None, help="sample by presentation time instead")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--st3d-arch", default="r3d_18", choices=["r3d_18", "r2plus1d_18"])
    p.add_argument("--spatial", type=int, default=None, help="pool 3-D maps to SxS (1 = vector)")
    p.add_argument("--clip-len", type=int, default=16)
    p.add_argument("--i3d-weights", default=None, help="public pytorch-i3d RGB checkpoint")
    p.add_argument("--frames", type=int, default=None, metavar="SIZE",
                   help="also store raw frame shards [T, SIZE, SIZE, 3]")
    p.add_argument("--no-kts", action="store_true", help="do not compute KTS change points")
    p.add_argument("--device", default=None, help="cpu | cuda (default: cuda when present)")


def configs_from_args(args):
    """(ExtractConfig, ExtractorOptions) from parsed CLI args."""
    from jobs.extract_video import ExtractConfig
    from pipeline.decode import SampleRule
    from pipeline.features.base import ExtractorOptions

    names = [n.strip() for n in args.features.split(",") if n.strip()]
    if args.frames and "frames" not in names:
        names.append("frames")
    device = args.device or _default_device()
    opts = ExtractorOptions(weights=args.weights, device=device, batch_size=args.batch_size,
                            st3d_arch=args.st3d_arch, spatial=args.spatial, clip_len=args.clip_len,
                            i3d_weights=args.i3d_weights, frames_size=args.frames or 128)
    sample = SampleRule(every=None, fps=args.fps) if args.fps else SampleRule(every=args.every)
    cfg = ExtractConfig(features=tuple(names), sample=sample, kts=None if args.no_kts else "default",
                        batch_size=args.batch_size)
    return cfg, opts


def _default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@dataclass
class JobResult:
    rows: list[dict]
    n_done: int
    n_failed: int
    n_skipped: int

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.n_failed else EXIT_OK


class _Worker:
    """A Ray actor: builds the extractors once, then extracts videos one at a time."""

    def __init__(self, store: str, storage_options, cfg, opts, threads: int):
        import torch

        from pipeline.features import build_extractors
        from stores.location import open_root

        torch.set_num_threads(threads)
        self.root = open_root(store, "a", storage_options)
        self.cfg = cfg
        self.extractors = build_extractors(list(cfg.features), opts)

    def config_hash(self) -> str:
        from jobs.extract_video import config_hash

        return config_hash(self.cfg, self.extractors)

    def process(self, source: str, video_id: str, chash: str) -> dict:
        import os
        import socket

        from jobs.extract_video import extract_one

        row = extract_one(source, video_id, self.root, self.extractors, self.cfg, chash)
        row["worker"] = f"{socket.gethostname()}:{os.getpid()}"
        return row


def plan_work(sources: list[str], store: str, storage_options, chash: str, force: bool,
              damaged: set[str]) -> tuple[dict[str, str], list[str]]:
    """(source -> video id, sources that still need work, longest first)."""
    from jobs.inputs import source_size
    from stores.ids import unique_video_ids
    from stores.reader import FeatureStore

    ids = unique_video_ids(sources)
    try:
        fs = FeatureStore(store, storage_options)
        done = {v for v in fs.video_ids() if fs.attrs(v).get("config_hash") == chash}
    except Exception:  # new store
        done = set()
    todo = [s for s in sources if force or ids[s] not in done or ids[s] in damaged]
    todo.sort(key=source_size, reverse=True)
    return ids, todo


def run_extraction(sources: list[str], store: str, cfg, opts, *, workers: int | None = None,
                   threads_per_worker: int = 1, storage_options=None, force: bool = False,
                   repair: bool = False, progress: bool = True, max_attempts: int = 3) -> JobResult:
    """The job: plan, fan out to actors, collect rows into the manifest. Returns a JobResult."""
    from tqdm import tqdm

    from jobs.ray_env import cluster_cpus, init_ray
    from stores.location import open_root
    from stores.manifest import Manifest

    ray = init_ray()
    open_root(store, "a", storage_options)  # create the store before workers race to
    n_workers = workers or max(1, cluster_cpus() // max(1, threads_per_worker))
    Actor = ray.remote(num_cpus=threads_per_worker, max_restarts=max_attempts, max_task_retries=max_attempts)(_Worker)
    actors = [Actor.remote(store, storage_options, cfg, opts, threads_per_worker) for _ in range(n_workers)]
    chash = ray.get(actors[0].config_hash.remote())
    damaged = _damaged_videos(store, storage_options) if repair else set()
    ids, todo = plan_work(sources, store, storage_options, chash, force, damaged)
    manifest = Manifest(store, storage_options)
    n_skipped = len(sources) - len(todo)
    for s in sources:
        if s not in todo and manifest.rows.get(ids[s], {}).get("status") != "complete":
            manifest.update({"video_id": ids[s], "source": s, "status": "complete", "error": ""})
    rows, n_failed = [], 0
    queue = list(todo)
    in_flight = {}
    bar = tqdm(total=len(todo), desc="extract", unit="video", disable=not progress, file=sys.stderr)
    last_save = time.monotonic()
    try:
        free = list(actors)
        while queue or in_flight:
            while queue and free:
                actor = free.pop()
                src = queue.pop(0)
                in_flight[actor.process.remote(src, ids[src], chash)] = (actor, src)
            ready, _ = ray.wait(list(in_flight), num_returns=1)
            for ref in ready:
                actor, src = in_flight.pop(ref)
                free.append(actor)
                try:
                    row = ray.get(ref)
                except Exception as e:  # the actor died more times than it may restart
                    row = {"video_id": ids[src], "source": src, "status": "failed",
                           "error": f"{src}: worker crashed ({type(e).__name__})"}
                row.pop("traceback", None)
                rows.append(row)
                manifest.update(row)
                if row["status"] != "complete":
                    n_failed += 1
                    tqdm.write(f"FAILED {row['error']}", file=sys.stderr)
                bar.update(1)
            if time.monotonic() - last_save > 2.0:
                manifest.save()
                last_save = time.monotonic()
    finally:
        bar.close()
        manifest.save()
        for a in actors:
            ray.kill(a)
    return JobResult(rows=rows, n_done=len(rows) - n_failed, n_failed=n_failed, n_skipped=n_skipped)


def _damaged_videos(store: str, storage_options) -> set[str]:
    from stores.check import check_store

    return {p.video_id for p in check_store(store, storage_options) if p.video_id}


def run_cli(args) -> int:
    from jobs.inputs import expand_inputs

    sources = expand_inputs(args.inputs)
    if not sources:
        print("vsum extract: no input videos found", file=sys.stderr)
        return EXIT_USAGE
    cfg, opts = configs_from_args(args)
    res = run_extraction(sources, args.store, cfg, opts, workers=args.workers,
                         threads_per_worker=args.threads_per_worker, force=args.force,
                         repair=args.repair)
    print(f"extract: {res.n_done} complete, {res.n_failed} failed, {res.n_skipped} already complete "
          f"-> {args.store}")
    return res.exit_code
