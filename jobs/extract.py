"""``vsum extract INPUT... --store S``: videos -> Zarr feature store, as a Ray job.

Long-lived actors load the models once; each video is decoded and embedded by one actor;
longest videos (by bytes) go first; the driver keeps the manifest and shows progress.
Re-running skips videos that are complete with the same configuration; a killed run resumes
(incomplete groups are rewritten). Exit code: 0 all good, 1 some videos failed, 2 usage error,
3 the store is in use by another job (a lease in the store, ``stores/lock.py``: a second job on
the same store refuses).

Faults: a worker process that dies mid-video is restarted by Ray and the video retried on it
(``max_restarts``/``max_task_retries``); an actor dead for good is replaced. A killed driver
leaves the previous manifest and incomplete groups; a rerun completes them.
"""
from __future__ import annotations

import sys
import time
from dataclasses import dataclass

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_BUSY = 0, 1, 2, 3


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
    p.add_argument("--storage-options", default=None, metavar="JSON",
                   help="fsspec options for URL stores and inputs, e.g. '{\"endpoint_url\": "
                        "\"http://127.0.0.1:9000\"}' (default: $VSUM_STORAGE_OPTIONS)")
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
    p.add_argument("--kts-center", action="store_true",
                   help="KTS on mean-subtracted features (for random-init features; not DSNet's recipe)")
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
    kts = None
    if not args.no_kts:
        from pipeline.kts import KTSParams

        kts = KTSParams(center=bool(getattr(args, "kts_center", False)))
    cfg = ExtractConfig(features=tuple(names), sample=sample, kts=kts, batch_size=args.batch_size)
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

    def __init__(self, store: str, storage_options, cfg, opts, threads: int, fault: dict | None = None):
        import torch

        from pipeline.features import build_extractors
        from stores.location import open_root

        torch.set_num_threads(threads)
        self.storage_options = storage_options
        self.root = open_root(store, "a", storage_options)
        self.cfg = cfg
        self.extractors = build_extractors(list(cfg.features), opts)
        self.fault = fault or {}

    def config_hash(self) -> str:
        from jobs.extract_video import config_hash

        return config_hash(self.cfg, self.extractors)

    def process(self, source: str, video_id: str, chash: str) -> dict:
        import os
        import socket

        import ray

        from jobs.extract_video import extract_one

        started = time.time()
        extractors = _with_fault(self.extractors, self.fault, video_id)
        row = extract_one(source, video_id, self.root, extractors, self.cfg, chash,
                          storage_options=self.storage_options)
        row.update(worker=f"{socket.gethostname()}:{os.getpid()}",
                   node=ray.get_runtime_context().get_node_id()[:12], started=started, finished=time.time())
        return row


# -- TEST-ONLY fault injection (tests/test_faults.py) -------------------------------------------
# VSUM_FAULT_EXIT_ON=<video id>: the worker os._exit()s inside that video's first model call,
#   once (VSUM_FAULT_DIR/<video id>.exited records the pid), so Ray's retry then succeeds;
#   without VSUM_FAULT_DIR, on every attempt.
# VSUM_FAULT_HANG_ON=<video id>: the worker hangs inside that video (to kill a driver mid-run).
def _fault_from_env() -> dict:
    import os

    keys = ("VSUM_FAULT_EXIT_ON", "VSUM_FAULT_HANG_ON", "VSUM_FAULT_DIR")
    return {k: os.environ[k] for k in keys if os.environ.get(k)}


def _with_fault(extractors: list, fault: dict, video_id: str) -> list:
    if video_id not in (fault.get("VSUM_FAULT_EXIT_ON"), fault.get("VSUM_FAULT_HANG_ON")):
        return extractors
    return [_FaultyExtractor(extractors[0], fault, video_id), *extractors[1:]]


@dataclass
class _FaultyExtractor:
    inner: object
    fault: dict
    video_id: str

    @property
    def spec(self):
        return self.inner.spec

    def __call__(self, batch):
        import os

        if self.fault.get("VSUM_FAULT_HANG_ON") == self.video_id:
            time.sleep(3600)
        if "VSUM_FAULT_DIR" not in self.fault:
            os._exit(17)  # every attempt: a video that always kills its worker
        marker = os.path.join(self.fault["VSUM_FAULT_DIR"], f"{self.video_id}.exited")
        if not os.path.exists(marker):
            with open(marker, "w") as f:
                f.write(str(os.getpid()))
            os._exit(17)
        return self.inner(batch)


def plan_work(sources: list[str], store: str, storage_options, chash: str, force: bool,
              damaged: set[str]) -> tuple[dict[str, str], list[str]]:
    """(source -> video id, sources that still need work, longest first)."""
    from jobs.inputs import source_size
    from stores import layout
    from stores.ids import unique_video_ids
    from stores.reader import FeatureStore

    ids = unique_video_ids(sources)
    try:
        fs = FeatureStore(store, storage_options)
        attrs = fs.all_attrs()  # the store's index: one read for every video (stores/index.py)
        done = {v for v, a in attrs.items() if a.get(layout.COMPLETE) and a.get("config_hash") == chash}
    except Exception:  # new store
        done = set()
    todo = [s for s in sources if force or ids[s] not in done or ids[s] in damaged]
    todo.sort(key=lambda s: source_size(s, storage_options), reverse=True)
    return ids, todo


def run_extraction(sources: list[str], store: str, cfg, opts, *, workers: int | None = None,
                   threads_per_worker: int = 1, storage_options=None, force: bool = False,
                   repair: bool = False, progress: bool = True, max_attempts: int = 3) -> JobResult:
    """The job: take the store's lease, plan, fan out to actors, collect rows into the manifest.
    Raises ``stores.lock.StoreLocked`` when another job holds the store."""
    from stores.location import open_root, storage_options_from_env
    from stores.lock import StoreLock

    if storage_options is None:  # resolved here: workers on other nodes may not have the env
        storage_options = storage_options_from_env()
    open_root(store, "a", storage_options)  # create the store before workers race to
    with StoreLock(store, storage_options, command="vsum extract") as lock:
        return _run_locked(sources, store, cfg, opts, lock, workers=workers,
                           threads_per_worker=threads_per_worker, storage_options=storage_options,
                           force=force, repair=repair, progress=progress, max_attempts=max_attempts)


def _run_locked(sources, store, cfg, opts, lock, *, workers, threads_per_worker, storage_options,
                force, repair, progress, max_attempts) -> JobResult:
    from tqdm import tqdm

    from jobs.extract_video import discard_video
    from jobs.ray_env import cluster_cpus, init_ray
    from stores.location import open_root
    from stores.lock import StoreLocked
    from stores.manifest import Manifest

    ray = init_ray()
    n_workers = workers or max(1, cluster_cpus() // max(1, threads_per_worker))
    Actor = ray.remote(num_cpus=threads_per_worker, max_restarts=max_attempts, max_task_retries=max_attempts)(_Worker)
    fault = _fault_from_env()

    def new_actor():
        return Actor.remote(store, storage_options, cfg, opts, threads_per_worker, fault)

    actors = [new_actor() for _ in range(n_workers)]
    chash = ray.get(actors[0].config_hash.remote())
    damaged = _damaged_videos(store, storage_options) if repair else set()
    ids, todo = plan_work(sources, store, storage_options, chash, force, damaged)
    manifest = Manifest(store, storage_options)
    n_skipped = len(sources) - len(todo)
    for s in sources:
        if s not in todo and manifest.rows.get(ids[s], {}).get("status") != "complete":
            manifest.update({"video_id": ids[s], "source": s, "status": "complete", "error": ""})
    rows, n_failed = [], 0
    queue = list(reversed(todo))  # pop() from the end: longest first
    in_flight = {}
    bar = tqdm(total=len(todo), desc="extract", unit="video", disable=not progress, file=sys.stderr)
    last_save, dirty = time.monotonic(), False
    try:
        free = list(actors)
        while queue or in_flight:
            while queue and free:
                actor = free.pop()
                src = queue.pop()
                in_flight[actor.process.remote(src, ids[src], chash)] = (actor, src)
            # a timeout, so the manifest is saved and a lost lease is noticed while videos run
            ready, _ = ray.wait(list(in_flight), num_returns=1, timeout=2.0)
            for ref in ready:
                actor, src = in_flight.pop(ref)
                try:
                    row = ray.get(ref)
                except ray.exceptions.RayError as e:  # the actor died more times than it may restart
                    row = {"video_id": ids[src], "source": src, "status": "failed",
                           "error": f"{src}: worker crashed ({type(e).__name__})"}
                    if isinstance(e, ray.exceptions.RayActorError):
                        discard_video(open_root(store, "a", storage_options), ids[src])
                        actors.remove(actor)
                        actor = new_actor()  # this one is dead for good; the queue needs a live one
                        actors.append(actor)
                free.append(actor)
                row.pop("traceback", None)
                rows.append(row)
                manifest.update(row)
                dirty = True
                if row["status"] != "complete":
                    n_failed += 1
                    tqdm.write(f"FAILED {row['error']}", file=sys.stderr)
                bar.update(1)
            if lock.lost:
                raise StoreLocked(f"{store}: this job's lease was taken over by another job; stopping")
            if dirty and time.monotonic() - last_save > 2.0:
                manifest.save()
                last_save, dirty = time.monotonic(), False
    finally:
        bar.close()
        manifest.close() if not in_flight else manifest.save()  # videos in flight: index stays open
        for a in actors:
            ray.kill(a)
    return JobResult(rows=rows, n_done=len(rows) - n_failed, n_failed=n_failed, n_skipped=n_skipped)


def _damaged_videos(store: str, storage_options) -> set[str]:
    from stores.check import check_store

    return {p.video_id for p in check_store(store, storage_options) if p.video_id}


def run_cli(args) -> int:
    import json

    from jobs.inputs import expand_inputs
    from stores.location import storage_options_from_env
    from stores.lock import StoreLocked

    try:
        storage_options = json.loads(args.storage_options) if args.storage_options else storage_options_from_env()
    except ValueError as e:
        print(f"vsum extract: --storage-options is not valid JSON ({e})", file=sys.stderr)
        return EXIT_USAGE
    sources = expand_inputs(args.inputs, storage_options)
    if not sources:
        print("vsum extract: no input videos found", file=sys.stderr)
        return EXIT_USAGE
    cfg, opts = configs_from_args(args)
    try:
        res = run_extraction(sources, args.store, cfg, opts, workers=args.workers,
                             threads_per_worker=args.threads_per_worker, force=args.force,
                             repair=args.repair, storage_options=storage_options)
    except StoreLocked as e:
        print(f"vsum extract: {e}", file=sys.stderr)
        return EXIT_BUSY
    print(f"extract: {res.n_done} complete, {res.n_failed} failed, {res.n_skipped} already complete "
          f"-> {args.store}")
    return res.exit_code
