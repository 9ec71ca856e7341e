"""``vsum extract INPUT... --store S``: videos -> Zarr feature store, as a Ray job.

Before any work, in the driver: every option is checked (``jobs/extract_options.py``), every
extractor's weights are resolved (found, hashed, downloaded when needed) and the store is
planned from (``jobs/extract_plan.py``). A run with nothing left to do stops there, without
torch or Ray. Otherwise the weights files are fitted to their models on the ``meta`` device,
Ray starts, long-lived actors build the models once (on the GPUs Ray gives them, see
``jobs/placement.py``), and only then the store is created and its lease taken. Each video is
decoded and embedded by one actor; longest videos (by bytes) go first; the driver keeps the
manifest and shows progress. Re-running skips videos that are complete with the same
configuration; a killed run resumes (incomplete groups are rewritten).

Exit codes: 0 all good, 1 some videos failed, 2 a bad option, input or weights file (one line,
no store left behind), 3 the store is in use by another job (``stores/lock.py``).

Faults: a worker process that dies mid-video is restarted by Ray and the video retried on it
(``max_restarts``/``max_task_retries``); an actor dead for good is replaced. A killed driver
leaves the previous manifest and incomplete groups; a rerun completes them.
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from dataclasses import dataclass, field

from jobs.extract_options import add_extract_options, add_worker_options, configs_from_args  # noqa: F401
from jobs.extract_plan import plan_work  # noqa: F401 - the planning step, also used by tests
from pipeline.errors import EXIT_OK, EXIT_PARTIAL, InputError, UsageError, VsumError
from stores.store import Store


def register(sub) -> None:
    p = sub.add_parser("extract", help="extract features from videos into a Zarr store (Ray job)")
    p.add_argument("inputs", nargs="+", help="video files, folders, globs, URLs or .txt lists of paths")
    p.add_argument("--store", required=True, help="store path or URL (created when missing)")
    add_extract_options(p)
    add_worker_options(p)
    p.add_argument("--repair", action="store_true",
                   help="recompute videos that `vsum store check` finds damaged, even if complete")
    p.add_argument("--force", action="store_true", help="recompute every video")
    p.add_argument("--storage-options", default=None, metavar="JSON",
                   help="fsspec options for URL stores and inputs, e.g. '{\"endpoint_url\": "
                        "\"http://127.0.0.1:9000\"}' (default: $VSUM_STORAGE_OPTIONS)")
    p.set_defaults(func=run_cli)


@dataclass
class JobResult:
    rows: list[dict]
    n_done: int
    n_failed: int
    n_skipped: int
    weights: dict = field(default_factory=dict)  # extractor -> ResolvedWeights
    placement: object | None = None  # jobs.placement.Placement when workers ran

    @property
    def exit_code(self) -> int:
        return EXIT_PARTIAL if self.n_failed else EXIT_OK


class _Worker:
    """A Ray actor: resolves its device, builds the extractors once, then extracts videos one at
    a time. A build failure is kept (not raised) and reported by ``ready()`` as one line."""

    def __init__(self, store, cfg, opts, threads: int, faults=None):
        import dataclasses

        import ray

        from jobs.placement import worker_device

        self.store, self.cfg = store, cfg  # a stores.Store: its root is opened at the first video
        self.faults = faults  # a jobs.fault_injection.Faults in the fault tests, else None
        self.extractors, self.error = [], None
        self.facts = {"device": "cpu", "gpu_ids": [], "cuda_visible_devices": None}
        try:
            device, facts = worker_device(opts.device, ray.get_gpu_ids())
            self.facts = {"device": device, **facts}
            if set(cfg.features) - {"frames"}:  # models: torch threads (frames alone needs no torch)
                import torch

                torch.set_num_threads(threads)
            from pipeline.features import build_extractors

            self.extractors = build_extractors(list(cfg.features), dataclasses.replace(opts, device=device))
        except VsumError as e:
            self.error = (type(e).__name__, e.what, e.file)
        except Exception as e:  # noqa: BLE001 - reported as one line by the driver, not a traceback
            self.error = ("VsumError", f"a worker could not start ({type(e).__name__}: "
                                       f"{' '.join(str(e).split())[:200]})", None)

    def ready(self) -> dict:
        """{"error": None or (class name, what, file), "device", "gpu_ids", "cuda_visible_devices"}"""
        return {"error": self.error, **self.facts}

    def process(self, source: str, video_id: str, chash: str) -> dict:
        import socket

        import ray

        from jobs.extract_video import extract_one

        started = time.time()
        if self.error:
            return {"video_id": video_id, "source": source, "status": "failed",
                    "error": f"{source}: worker cannot extract ({self.error[1]})"}
        extractors = self.faults.wrap(self.extractors, video_id) if self.faults else self.extractors
        row = extract_one(source, video_id, self.store, extractors, self.cfg, chash)
        row.update(worker=f"{socket.gethostname()}:{os.getpid()}",
                   node=ray.get_runtime_context().get_node_id()[:12], started=started, finished=time.time(),
                   device=self.facts["device"], gpu_ids=",".join(self.facts["gpu_ids"]),
                   cuda_visible_devices=self.facts["cuda_visible_devices"] or "")
        if self.facts["device"] == "cuda":  # this actor's peak so far (the GPU bench reads it)
            import torch

            row["gpu_mem_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
        return row


# -- the job ------------------------------------------------------------------------------------
def run_extraction(sources: list[str], store: Store | str, cfg, opts, *, workers: int | None = None,
                   threads_per_worker: int = 1, gpus_per_worker: float = 1.0,
                   force: bool = False, repair: bool = False, progress: bool = True,
                   max_attempts: int = 3) -> JobResult:
    """The job: resolve the weights, plan, start workers, then take the store's lease and fan
    out. Raises the VsumError family (pipeline/errors.py) for a bad weights file, option or
    store, before the store is created; ``stores.lock.StoreLocked`` when another job holds it.

    store: a ``stores.Store``, or a path or URL (credentials from ``$VSUM_STORAGE_OPTIONS``,
    resolved here: workers on other nodes may not have that environment)."""
    from jobs.extract_video import config_hash
    from pipeline.features import resolve_all

    store = Store.at(store)
    opts = resolve_all(list(cfg.features), opts)  # files found and hashed; a download if needed
    weights = dict(opts.weights)
    chash = config_hash(cfg, opts)
    damaged = _damaged_videos(store) if repair and store.existing() else set()
    plan = plan_work(sources, store, chash, force, damaged)
    if plan.nothing_to_do:  # no torch, no Ray, no lease: nothing will be written
        return JobResult([], 0, 0, len(sources), weights)
    actors, placement, new_actor = [], None, None
    try:
        if plan.todo:
            from pipeline.features import check_weights

            check_weights(list(cfg.features), opts)  # every file fits its model, before any store
            _refuse_if_busy(store)  # a live lease: exit 3 before Ray starts
            actors, placement, new_actor = _start_workers(
                store, cfg, opts, workers=workers, threads=threads_per_worker,
                gpus_per_worker=gpus_per_worker, max_attempts=max_attempts,
                n_videos=len(plan.todo))
        res = _run_with_lease(sources, store, cfg, chash, actors, force=force, damaged=damaged,
                              progress=progress, new_actor=new_actor)
    finally:
        _kill(actors)
    res.weights, res.placement = weights, placement
    return res


def _refuse_if_busy(store: Store) -> None:
    """Read (not take) the store's lease: another live job's lease refuses this one now, rather
    than after the workers have started. The lease itself is taken later, with the store."""
    from stores.lock import StoreLocked

    lock = store.lease("vsum extract")
    info = lock.read()
    if info is not None and not lock.is_stale(info):
        raise StoreLocked(lock._busy_message(info))


def _start_workers(store: Store, cfg, opts, *, workers, threads, gpus_per_worker, max_attempts,
                   n_videos: int):
    """Start the actors where ``jobs/placement.py`` says (never more than ``n_videos``) and wait
    until each has built its models; a build failure ends the job with one line naming the
    extractor."""
    from jobs.fault_injection import faults_from_env
    from jobs.placement import plan_placement
    from jobs.ray_env import init_ray

    ray = init_ray()
    placement = plan_placement(opts.device, ray.cluster_resources(), threads=threads,
                               gpus_per_worker=gpus_per_worker, workers=workers, at_most=n_videos)
    Actor = ray.remote(**placement.ray_options(), max_restarts=max_attempts,
                       max_task_retries=max_attempts)(_Worker)
    faults = faults_from_env()

    def new_actor():
        return Actor.remote(store, cfg, opts, threads, faults)

    actors = [new_actor() for _ in range(placement.n_workers)]
    try:
        facts = ray.get([a.ready.remote() for a in actors])
    except ray.exceptions.RayError as e:
        _kill(actors)
        raise VsumError(f"a worker could not start ({type(e).__name__}: "
                        f"{' '.join(str(e).split())[:160]})") from None
    failed = [f["error"] for f in facts if f["error"]]
    if failed:
        _kill(actors)
        raise _error(*failed[0])
    gpus = ",".join("+".join(f["gpu_ids"]) or "-" for f in facts)
    print(f"extract: {placement.describe()}" + (f"; GPU ids per worker: {gpus}" if placement.gpus else ""),
          file=sys.stderr, flush=True)
    return actors, placement, new_actor


def _error(kind: str, what: str, file: str | None) -> VsumError:
    """A worker's error, as the same class in the driver (the entry point shows it)."""
    from pipeline import errors

    cls = getattr(errors, kind, None)
    if not (isinstance(cls, type) and issubclass(cls, VsumError)):
        cls = errors.WeightsError if "Weights" in kind else VsumError
    return cls(what, file)


def _kill(actors: list) -> None:
    if actors:
        import ray

        for a in actors:
            ray.kill(a)


def _run_with_lease(sources, store: Store, cfg, chash, actors, *, force, damaged, progress,
                    new_actor) -> JobResult:
    """Create the store, take its lease, re-plan under it (another job may have finished
    videos meanwhile), mark skipped videos in the manifest, extract the rest."""
    store.root()  # the store exists from here on
    with store.lease("vsum extract") as lock:
        plan = plan_work(sources, store, chash, force, damaged)
        manifest = store.manifest()
        for s in plan.stale:
            manifest.update({"video_id": plan.ids[s], "source": s, "status": "complete", "error": ""})
        if plan.todo and not actors:
            raise VsumError("videos to extract appeared while starting; run the command again")
        rows, n_failed = [], 0
        if plan.todo:
            rows, n_failed = _drive(plan, store, chash, actors, manifest, lock, progress=progress,
                                    new_actor=new_actor)
        else:
            manifest.close()  # only stale rows: the snapshot records them
    return JobResult(rows=rows, n_done=len(rows) - n_failed, n_failed=n_failed,
                     n_skipped=len(sources) - len(plan.todo))


def _drive(plan, store: Store, chash, actors, manifest, lock, *, progress, new_actor):
    """Hand videos to free actors until none is left; every result goes into the manifest."""
    import ray
    from tqdm import tqdm

    from stores.lock import StoreLocked

    ids, rows, n_failed = plan.ids, [], 0
    queue = list(reversed(plan.todo))  # pop() from the end: longest first
    in_flight = {}
    bar = tqdm(total=len(plan.todo), desc="extract", unit="video", disable=not progress, file=sys.stderr)
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
                        store.discard_video(ids[src])
                        actors.remove(actor)
                        actor = new_actor()  # this one is dead for good; the queue needs a live one
                        actors.append(actor)
                free.append(actor)
                _log_traceback(row)
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
    return rows, n_failed


def _log_traceback(row: dict) -> None:
    """An unexpected per-video error keeps its traceback in a log file named in the error line."""
    tb = row.pop("traceback", None)
    if not tb:
        return
    folder = os.environ.get("VSUM_LOG_DIR") or os.path.join(tempfile.gettempdir(), "vsum-logs")
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"vsum-extract-{os.getpid()}.log")
    with open(path, "a") as f:
        f.write(f"{row.get('video_id')} ({row.get('source')}):\n{tb}\n")
    row["error"] = f"{row['error']} (traceback in {path})"


def _damaged_videos(store: Store) -> set[str]:
    return {p.video_id for p in store.check() if p.video_id}


# -- the command --------------------------------------------------------------------------------
def _refuse_if_none_exists(sources: list[str]) -> None:
    """Not one input exists (local paths only: URLs are checked by the workers): one line and
    exit 2 before weights, Ray or the store. With some present, the missing ones are failed rows."""
    missing = [s for s in sources if "://" not in s and not os.path.exists(s)]
    if missing and len(missing) == len(sources):
        if len(missing) == 1:
            raise InputError("no such file", missing[0])
        raise InputError(f"none of the {len(missing)} inputs exists",
                         f"{missing[0]} and {len(missing) - 1} more")


def run_cli(args) -> int:
    import json

    from jobs.inputs import expand_inputs

    try:
        storage_options = json.loads(args.storage_options) if args.storage_options else None
    except ValueError as e:
        raise UsageError(f"--storage-options is not valid JSON ({e})") from None
    store = Store(args.store, storage_options)  # None: $VSUM_STORAGE_OPTIONS
    cfg, opts = configs_from_args(args)  # every option checked: one line and exit 2 otherwise
    sources = expand_inputs(args.inputs, store)
    if not sources:
        raise UsageError("no input videos found", file=" ".join(args.inputs))
    _refuse_if_none_exists(sources)
    res = run_extraction(sources, store, cfg, opts, workers=args.workers,
                         threads_per_worker=args.threads_per_worker, gpus_per_worker=args.gpus_per_worker,
                         force=args.force, repair=args.repair)
    print(f"extract: {res.n_done} complete, {res.n_failed} failed, {res.n_skipped} already complete "
          f"-> {args.store}")
    for name, w in res.weights.items():
        print(f"weights: {name} {w.describe()}")
    return res.exit_code
