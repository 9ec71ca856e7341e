"""``vsum train HEAD --store S --splits FILE|kfold:5 --out RUN``: every (split, seed) as a Ray task.

    vsum train dsn --store tvsum.zarr --splits kfold:5 --out runs/dsn --seeds 0,1 --set lr=1e-4

- Local Ray by default (RAY_AUTH_MODE=disabled unless set); ``RAY_ADDRESS`` joins a cluster.
  Each task trains with 1 torch thread (``--threads``); ``--no-ray`` runs in this process.
- Ray tasks see the store and RUN by path: on a cluster both must be on storage every node
  reads (a shared file system; the store may also be an s3:// URL). On a cluster with GPUs
  (``--device auto``, or ``cuda``) each task requests ``--gpus-per-task`` (default 1; 0.25 packs
  four small heads per GPU) and trains on the GPU Ray gives it; the device is chosen inside the
  task (``jobs/placement.py``). ``--device cpu`` or ``--gpus-per-task 0`` requests no GPU.
- Resume: (split, seed) pairs whose predictions file exists are skipped, so rerunning a killed or
  failed run only does the missing work. RUN/run.json must describe the same run.
- Splits: ``kfold:K`` (every video tested once), ``random:K`` (80/20 resamples, as public repos
  do), or a split file (PGL-SUM/VASNet JSON, DSNet YAML, our own JSON; ``stores/splits.py``).
- Ends with the evaluation job (``jobs/evaluate.evaluate_runs``): table printed, report in
  RUN/report (``--no-eval`` skips it).
Exit code: 0 when every pair trained (or was already done), 1 when any failed.
"""
from __future__ import annotations

import json
import os
import sys
from pathlib import Path

DEFAULTS = {
    "seeds": (0,), "epochs": None, "lr": None, "features": None, "overrides": None,
    "val_fraction": 0.0, "legacy_best_test": False, "device": "auto", "use_ray": True,
    "threads": 1, "evaluate": True, "report": None, "split_seed": 0, "missing_keys": "error",
    "progress": True, "num_cpus": None, "eval_client": None, "gpus_per_task": None,
}


# -- splits ---------------------------------------------------------------------------------------
def resolve_splits(spec: str, store: str, split_seed: int = 0,
                   missing: str = "error") -> list[tuple[list[str], list[str]]]:
    """``kfold:K`` | ``random:K`` | a split file -> [(train ids, test ids)] within ``store``."""
    from stores.splits import make_splits, read_splits

    kind, _, k = spec.partition(":")
    if kind in ("kfold", "random") and k.isdigit():
        splits = make_splits(store, setting="canonical", k=int(k), seed=split_seed, form=kind)
    elif Path(spec).is_file():
        splits = read_splits(spec, [store], missing=missing)
    else:
        raise ValueError(f"--splits {spec!r}: expected kfold:K, random:K or an existing split file")
    out = []
    for i, s in enumerate(splits):
        if not s.train or not s.test:
            raise ValueError(f"--splits {spec}: split {i} has {len(s.train)} train and "
                             f"{len(s.test)} test videos in {store}")
        out.append((s.train_ids, s.test_ids))
    return out


def store_dataset(store: str) -> str:
    from stores.splits import StoreIndex

    return StoreIndex([store]).only_dataset() or Path(store.rstrip("/")).stem


# -- run.json (what this run is; a resumed run must match it) --------------------------------------
def _run_info(head: str, store: str, splits: str, o: dict) -> dict:
    from heads.base import get_head
    from heads.config import config_dict
    from heads.trainer import TrainOptions, resolve_head_config

    spec = get_head(head)
    cfg = resolve_head_config(spec, TrainOptions(epochs=o["epochs"], lr=o["lr"],
                                                 overrides=dict(o["overrides"] or {})))
    return {"head": head, "features": o["features"] or spec.default_features,
            "dataset": store_dataset(store), "setting": "canonical", "store": str(store),
            "splits": splits, "split_seed": o["split_seed"], "config": config_dict(cfg),
            "val_fraction": o["val_fraction"],
            "selection": "validation" if o["val_fraction"] > 0 else "fixed-epochs"}


def _check_same_run(out: Path, info: dict) -> None:
    from stores.predictions import read_run_json

    if not (out / "run.json").exists():
        return
    old = read_run_json(out)
    keys = ("head", "features", "store", "splits", "split_seed", "config", "val_fraction")
    diff = [k for k in keys if json.dumps(old.get(k), sort_keys=True, default=str)
            != json.dumps(info.get(k), sort_keys=True, default=str)]
    if diff:
        raise ValueError(f"{out}/run.json describes a different run ({', '.join(diff)} differ); "
                         "use another --out to start a new run")


# -- tasks ----------------------------------------------------------------------------------------
def _train_task(kwargs: dict) -> dict:
    """One (split, seed); runs in a Ray worker (``in_ray``) or in this process. In Ray, the
    device is chosen here, from the GPUs Ray gave this task."""
    from heads.trainer import TrainOptions, train_split

    options, placement = dict(kwargs.pop("options")), None
    if kwargs.pop("in_ray", False):
        import ray

        from jobs.placement import worker_device

        options["device"], facts = worker_device(options["device"], ray.get_gpu_ids())
        placement = {"device": options["device"], **facts}
    result = train_split(options=TrainOptions(**options), **kwargs)
    return {**result, "placement": placement} if placement else result


def _task_kwargs(head, store, out, split, seed, train_ids, test_ids, o, info, progress) -> dict:
    return {"head": head, "store": str(store), "train_ids": train_ids, "test_ids": test_ids,
            "run_dir": str(out), "split": split, "seed": seed,
            "meta": {"dataset": info["dataset"], "setting": info["setting"]},
            "options": {"features": o["features"], "epochs": o["epochs"], "lr": o["lr"],
                        "overrides": dict(o["overrides"] or {}), "val_fraction": o["val_fraction"],
                        "legacy_best_test": o["legacy_best_test"], "device": o["device"],
                        "num_threads": o["threads"], "progress": progress}}


def _run_sequential(jobs: list[dict], bar) -> tuple[list[dict], list[str]]:
    done, errors = [], []
    for kw in jobs:
        try:
            done.append(_train_task(dict(kw)))
        except Exception as e:  # noqa: BLE001 - keep going with the other splits; exit code says it failed
            errors.append(_task_error(kw, e))
        bar.update(1)
    return done, errors


def _run_ray(jobs: list[dict], bar, num_cpus: int | None, gpus_per_task: float | None = None,
             device: str = "auto") -> tuple[list[dict], list[str]]:
    from jobs.placement import plan_placement
    from jobs.ray_env import init_ray

    ray = init_ray(num_cpus=num_cpus)
    # A task asks for a GPU share when the cluster has GPUs (``--device auto``) or when told to;
    # one that asks for none trains on the CPU (it would otherwise see every GPU of its node).
    if gpus_per_task == 0:
        device = "cpu"
    placement = plan_placement(device, ray.cluster_resources(), gpus_per_worker=gpus_per_task or 1.0)
    # OMP_NUM_THREADS must be set before torch loads: torch.set_num_threads alone leaves some
    # OpenMP regions (seen in CSNet's backward) using every core, so tasks would fight.
    threads = str(jobs[0]["options"]["num_threads"] or 1) if jobs else "1"
    env = {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads, "OPENBLAS_NUM_THREADS": threads}
    # Workers on other nodes need the driver's store credentials (an s3:// store on a cluster).
    env.update({k: v for k, v in os.environ.items()
                if k == "VSUM_STORAGE_OPTIONS" or k.startswith("AWS_")})
    remote = ray.remote(num_cpus=1, num_gpus=placement.gpus, max_retries=1,
                        runtime_env={"env_vars": env})(_train_task)
    pending = {remote.remote({**kw, "in_ray": True}): kw for kw in jobs}
    done, errors = [], []
    while pending:
        ready, _ = ray.wait(list(pending), num_returns=1)
        for ref in ready:
            kw = pending.pop(ref)
            try:
                done.append(ray.get(ref))
            except Exception as e:  # noqa: BLE001 - a failed task must not stop the others
                errors.append(_task_error(kw, getattr(e, "cause", None) or e))
            bar.update(1)
    if placement.gpus:
        print(_placement_line(placement.gpus, [d.get("placement") or {} for d in done]))
    return done, errors


def _placement_line(gpus: float, placements: list[dict]) -> str:
    """Where the GPU tasks ran: ``train: 4 task(s) × 0.5 GPU: GPU ids 0,0,1,1; CUDA_VISIBLE_DEVICES 0,0,1,1; device cpu,…``"""
    ids = ",".join("+".join(p.get("gpu_ids") or []) or "-" for p in placements)
    visible = ",".join(p.get("cuda_visible_devices") or "-" for p in placements)
    devices = ",".join(p.get("device", "?") for p in placements)
    return (f"train: {len(placements)} task(s) × {gpus:g} GPU: GPU ids {ids}; "
            f"CUDA_VISIBLE_DEVICES {visible}; device {devices}")


def _task_error(kw: dict, e: BaseException) -> str:
    msg = " ".join(str(e).split())[:300]
    return f"{kw['run_dir']}: split {kw['split']} seed {kw['seed']}: {type(e).__name__}: {msg}"


# -- the job --------------------------------------------------------------------------------------
def run_training(head: str, store: str, splits: str, out: str, **options) -> Path:
    """Train ``head`` on every (split, seed) not yet done, then evaluate. -> the run folder.

    options (all optional): seeds, epochs, lr, features, overrides (head config fields),
    val_fraction, legacy_best_test, device, use_ray, threads, evaluate, report, split_seed,
    missing_keys ("error" | "skip"), progress, num_cpus, gpus_per_task, eval_client (a Dask client for the
    evaluation; default: a local cluster). Raises RuntimeError listing the failed
    pairs after training the others (and evaluating what exists).
    """
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"run_training: unknown options {sorted(unknown)}")
    o = {**DEFAULTS, **options}
    from tqdm import tqdm

    from heads.base import get_head
    from stores.predictions import split_done, write_run_json

    get_head(head)  # unknown head: a clear error before any work
    out_path = Path(out)
    info = _run_info(head, store, splits, o)
    _check_same_run(out_path, info)
    pairs = resolve_splits(splits, store, o["split_seed"], o["missing_keys"])
    info.update(n_splits=len(pairs), seeds=list(o["seeds"]))
    write_run_json(out_path, info)

    todo = [(k, s) for k in range(len(pairs)) for s in o["seeds"] if not split_done(out_path, k, s)]
    n_all = len(pairs) * len(o["seeds"])
    if len(todo) < n_all:
        print(f"train: {n_all - len(todo)} of {n_all} (split, seed) pairs already done in {out}")
    jobs = [_task_kwargs(head, store, out_path, k, s, *pairs[k], o, info,
                         progress=o["progress"] and not o["use_ray"] and len(todo) == 1)
            for k, s in todo]
    errors: list[str] = []
    if jobs:
        with tqdm(total=len(jobs), desc=f"train {head}", unit="split", disable=not o["progress"]) as bar:
            if o["use_ray"]:
                _, errors = _run_ray(jobs, bar, o["num_cpus"], o["gpus_per_task"], o["device"])
            else:
                _, errors = _run_sequential(jobs, bar)
    for e in errors:
        print(e, file=sys.stderr)
    if o["evaluate"] and any(split_done(out_path, k, s) for k in range(len(pairs)) for s in o["seeds"]):
        evaluate_run(out_path, Path(o["report"] or out_path / "report"), o["eval_client"])
    if errors:
        raise RuntimeError(f"{len(errors)} of {len(jobs)} (split, seed) pairs failed (see above)")
    return out_path


def evaluate_run(run_dir: Path, report_dir: Path, client=None) -> None:
    """The evaluation job on this run (and its legacy-best-test twin when recorded)."""
    from heads.trainer import LEGACY_DIR
    from jobs.evaluate import evaluate_runs
    from jobs.report import print_table

    runs = [str(run_dir)]
    if (run_dir / LEGACY_DIR / "predictions").is_dir():
        runs.append(str(run_dir / LEGACY_DIR))
    per_video, summary, errors = evaluate_runs(runs, report_dir=str(report_dir), client=client)
    for e in errors:
        print(e, file=sys.stderr)
    print_table(summary)
    print(f"report: {report_dir}/report.md ({per_video['video_id'].nunique()} videos)")


# -- CLI ------------------------------------------------------------------------------------------
def register(sub) -> None:
    p = sub.add_parser("train", help="train a head on every split (Ray tasks), then evaluate")
    p.add_argument("head", help="head name (dsn, dsn_sup, csnet, unet3d_rl, crsum, ...)")
    p.add_argument("--store", required=True, help="feature store with labels")
    p.add_argument("--splits", default="kfold:5", help="kfold:K | random:K | split file (default kfold:5)")
    p.add_argument("--out", required=True, help="run folder (resumed when it exists)")
    p.add_argument("--features", default=None, help="store feature name (default: the head's)")
    p.add_argument("--seeds", default="0", help="comma-separated seeds (default 0)")
    p.add_argument("--epochs", type=int, default=None, help="override the head's epochs")
    p.add_argument("--lr", type=float, default=None, help="override the head's learning rate")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="head config override, repeatable (e.g. --set hidden=128)")
    p.add_argument("--val-fraction", type=float, default=0.0,
                   help="hold out this part of the train keys and keep the best validation epoch")
    p.add_argument("--legacy-best-test", action="store_true",
                   help="also record the best-test-epoch number, labelled legacy-best-test")
    p.add_argument("--split-seed", type=int, default=0, help="seed of generated splits")
    p.add_argument("--missing-keys", choices=("error", "skip"), default="error",
                   help="split-file keys the store lacks: fail (default) or drop them")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=1, help="torch threads per task (default 1)")
    p.add_argument("--no-ray", action="store_true", help="train the splits one by one in this process")
    p.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    p.add_argument("--gpus-per-task", type=float, default=None,
                   help="GPU share per Ray task on a cluster with GPUs (default 1; e.g. 0.25); 0 = CPU")
    p.add_argument("--no-eval", action="store_true", help="skip the evaluation at the end")
    p.add_argument("--report", default=None, help="report folder (default RUN/report)")
    p.set_defaults(func=run)


def run(args) -> int:
    from heads.config import parse_set_options

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if args.no_ray and "torch" not in sys.modules:  # see _run_ray: OpenMP reads this at load
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    try:
        seeds = tuple(int(s) for s in args.seeds.split(",") if s.strip())
        run_training(args.head, args.store, args.splits, args.out, seeds=seeds,
                     epochs=args.epochs, lr=args.lr, features=args.features,
                     overrides=parse_set_options(args.set), val_fraction=args.val_fraction,
                     legacy_best_test=args.legacy_best_test, device=args.device,
                     use_ray=not args.no_ray, threads=args.threads, evaluate=not args.no_eval,
                     report=args.report, split_seed=args.split_seed,
                     missing_keys=args.missing_keys, num_cpus=args.num_cpus,
                     gpus_per_task=args.gpus_per_task)
    except RuntimeError as e:
        print(f"train: {e}", file=sys.stderr)
        return 1
    except (KeyError, ValueError, TypeError, FileNotFoundError) as e:
        print(f"train: {str(e).strip(chr(34)).splitlines()[0]}", file=sys.stderr)
        return 2
    return 0
