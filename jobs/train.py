"""``vsum train HEAD --store S [--store S2 …] --splits FILE|kfold:5 --out RUN``: every
(split, seed) as a Ray task.

    vsum train dsn --store tvsum.zarr --splits kfold:5 --out runs/dsn --seeds 0,1 --set lr=1e-4
    vsum train csnet --store tvsum.zarr --store summe.zarr --store ovp.zarr --store youtube.zarr \
        --setting augmented --test-dataset summe --splits kfold:5 --out runs/csnet-summe-aug

- Local Ray by default (RAY_AUTH_MODE=disabled unless set); ``RAY_ADDRESS`` joins a cluster.
  Each task trains with 1 torch thread (``--threads``); ``--no-ray`` runs in this process.
- Ray tasks get the stores as ``stores.Store`` values (URL + the storage options resolved here
  from ``$VSUM_STORAGE_OPTIONS``) and RUN by path: on a cluster both must be on storage every
  node reads (a shared file system; the store may also be an s3:// URL). On a cluster with GPUs
  (``--device auto``, or ``cuda``) each task requests ``--gpus-per-task`` (default 1; 0.25 packs
  four small heads per GPU) and trains on the GPU Ray gives it; the device is chosen inside the
  task (``jobs/placement.py``). ``--device cpu`` or ``--gpus-per-task 0`` requests no GPU.
- Resume: (split, seed) pairs whose predictions file exists are skipped, so rerunning a killed or
  failed run only does the missing work. RUN/run.json must describe the same run.
- Splits: ``kfold:K`` (every video tested once), ``random:K`` (80/20 resamples, as public repos
  do), or a split file (PGL-SUM/VASNet JSON, DSNet YAML, our own JSON; ``stores/splits.py``).
- Several stores, ``--setting canonical|augmented|transfer``, ``--test-dataset NAME``: see
  ``jobs/train_plan.py``. Predictions and the report carry the setting.
- ``--preset paper|published``: the paper-faithful switches of the head (``heads/presets.py``).
- Ends with the evaluation job (``jobs/evaluate.evaluate_runs``): table printed, report in
  RUN/report (``--no-eval`` skips it).
Exit code: 0 when every pair trained (or was already done), 1 when any failed.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from jobs.train_plan import RunPlan, plan_run, resolve_splits  # noqa: F401  (resolve_splits: API)
from pipeline.errors import EXIT_PARTIAL, InputError, UsageError

DEFAULTS = {
    "seeds": (0,), "epochs": None, "lr": None, "features": None, "overrides": None,
    "val_fraction": 0.0, "legacy_best_test": False, "device": "auto", "use_ray": True,
    "threads": 1, "evaluate": True, "report": None, "split_seed": 0, "missing_keys": "error",
    "progress": True, "num_cpus": None, "eval_client": None, "gpus_per_task": None,
    "setting": "canonical", "test_dataset": None, "preset": None,
}


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


def task_kwargs(plan: RunPlan, split: int, seed: int, o: dict, progress: bool) -> dict:
    """One (split, seed) task of a planned run (plain data and Store values: it travels to a Ray
    worker, the stores' credentials with it)."""
    train_ids, test_ids = plan.pairs[split]
    info = plan.info
    return {"head": plan.head, "store": plan.test_store, "stores": plan.stores, "train_ids": train_ids,
            "test_ids": test_ids, "run_dir": str(plan.out), "split": split, "seed": seed,
            "meta": {"dataset": info["dataset"], "setting": info["setting"]},
            "options": {"features": info["features"], "epochs": o["epochs"], "lr": o["lr"],
                        "overrides": dict(plan.overrides), "val_fraction": o["val_fraction"],
                        "legacy_best_test": o["legacy_best_test"], "device": o["device"],
                        "num_threads": o["threads"], "progress": progress}}


def todo_pairs(plan: RunPlan, seeds) -> list[tuple[int, int]]:
    """(split, seed) pairs of a run whose predictions are not written yet."""
    from stores.predictions import split_done

    return [(k, s) for k in range(len(plan.pairs)) for s in seeds if not split_done(plan.out, k, s)]


def execute(jobs: list[dict], o: dict, desc: str) -> list[str]:
    """Train every task (Ray, or one by one with ``use_ray=False``); -> one error line per
    failed task."""
    from tqdm import tqdm

    if not jobs:
        return []
    with tqdm(total=len(jobs), desc=desc, unit="split", disable=not o["progress"]) as bar:
        if o["use_ray"]:
            _, errors = _run_ray(jobs, bar, o["num_cpus"], o["gpus_per_task"], o["device"])
        else:
            _, errors = _run_sequential(jobs, bar)
    return errors


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
    # The tasks' Store values carry $VSUM_STORAGE_OPTIONS; credentials that s3fs finds in the
    # environment instead (AWS_ACCESS_KEY_ID, AWS_PROFILE, ...) are not in any Store, so workers
    # on other nodes get the driver's.
    env.update({k: v for k, v in os.environ.items() if k.startswith("AWS_")})
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
def run_training(head: str, store, splits: str, out: str, **options) -> Path:
    """Train ``head`` on every (split, seed) not yet done, then evaluate. -> the run folder.

    store: one ``stores.Store`` (or path/URL) or a list (several stores: the augmented/transfer
    settings).
    options (all optional): seeds, epochs, lr, features, overrides (head config fields),
    preset (heads/presets.py), setting, test_dataset, val_fraction, legacy_best_test, device,
    use_ray, threads, evaluate, report, split_seed, missing_keys ("error" | "skip"), progress,
    num_cpus, gpus_per_task, eval_client (a Dask client for the evaluation; default: a local
    cluster). Raises RuntimeError listing the failed pairs after training the others (and
    evaluating what exists).
    """
    unknown = set(options) - set(DEFAULTS)
    if unknown:
        raise TypeError(f"run_training: unknown options {sorted(unknown)}")
    o = {**DEFAULTS, **options}
    from stores.predictions import split_done, write_run_json

    plan = plan_run(head, store, splits, out, o)
    write_run_json(plan.out, plan.info)
    todo = todo_pairs(plan, o["seeds"])
    n_all = len(plan.pairs) * len(o["seeds"])
    if len(todo) < n_all:
        print(f"train: {n_all - len(todo)} of {n_all} (split, seed) pairs already done in {out}")
    jobs = [task_kwargs(plan, k, s, o, progress=o["progress"] and not o["use_ray"] and len(todo) == 1)
            for k, s in todo]
    errors = execute(jobs, o, f"train {head}")
    for e in errors:
        print(e, file=sys.stderr)
    out_path = plan.out
    if o["evaluate"] and any(split_done(out_path, k, s) for k in range(len(plan.pairs))
                             for s in o["seeds"]):
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
    p.add_argument("--store", required=True, action="append",
                   help="feature store with labels; repeat for several (augmented/transfer)")
    p.add_argument("--setting", choices=("canonical", "augmented", "transfer"), default="canonical",
                   help="canonical | augmented | transfer (see jobs/train_plan.py)")
    p.add_argument("--test-dataset", default=None,
                   help="dataset whose videos are tested (needed with several datasets)")
    p.add_argument("--preset", default=None,
                   help="named config preset: paper | published (heads/presets.py)")
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


def parse_seeds(text: str) -> tuple[int, ...]:
    """'0,1,2' -> (0, 1, 2); anything else is one UsageError line."""
    items = [x.strip() for x in text.split(",") if x.strip()]
    try:
        seeds = tuple(int(x) for x in items)
    except ValueError:
        raise UsageError(f"--seeds wants comma-separated integers such as 0,1,2, got {text!r}") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UsageError(f"--seeds wants distinct integers such as 0,1,2, got {text!r}")
    return seeds


def check_numbers(args) -> None:
    checks = [(args.epochs is None or args.epochs >= 1, f"--epochs must be >= 1, got {args.epochs}"),
              (args.lr is None or args.lr > 0, f"--lr must be > 0, got {args.lr}"),
              (0 <= args.val_fraction < 1, f"--val-fraction must be in [0, 1), got {args.val_fraction}"),
              (args.threads >= 1, f"--threads must be >= 1, got {args.threads}"),
              (args.num_cpus is None or args.num_cpus >= 1, f"--num-cpus must be >= 1, got {args.num_cpus}"),
              (args.gpus_per_task is None or args.gpus_per_task >= 0, f"--gpus-per-task must be >= 0, got {args.gpus_per_task}"),
              (re.fullmatch(r"auto|cpu|cuda(:\d+)?", args.device) is not None,
               f"--device must be auto, cpu, cuda or cuda:N, got {args.device!r}")]
    for ok, message in checks:
        if not ok:
            raise UsageError(message)


def check_splits(args, stores: list) -> None:
    """``kfold:K`` / ``random:K`` with a usable K, or a readable split file whose keys the
    stores hold (``--missing-keys skip`` drops absent ones) and whose datasets fit the setting;
    one line otherwise."""
    spec = args.splits
    kind, sep, k = spec.partition(":")
    if sep and kind in ("kfold", "random"):
        if not k.isdigit() or int(k) < (2 if kind == "kfold" else 1):
            raise UsageError(f"--splits {spec}: K must be an integer >= {2 if kind == 'kfold' else 1}")
    elif not Path(spec).exists():
        raise UsageError(f"--splits {spec!r}: neither kfold:K, random:K nor an existing split file")
    elif not Path(spec).is_file() or not os.access(spec, os.R_OK):
        raise InputError("split file not readable", spec)
    try:
        resolve_splits(spec, stores, args.test_dataset, args.setting, args.split_seed,
                       args.missing_keys)
    except (ValueError, TypeError, KeyError, OSError) as e:  # bad file, absent keys, K > videos
        msg = " ".join(str(e).split()).replace("pass missing='skip'", "pass --missing-keys skip")
        raise (InputError(msg) if sep or spec in msg else InputError(msg, spec)) from None


def check_head(args, overrides: dict, stores: list) -> None:
    """The head exists, --set keys and values fit its config (after the preset), and the stores
    have its features. (Imports torch: runs after the cheap checks.)"""
    from heads.base import HEADS, get_head
    from heads.trainer import TrainOptions, resolve_head_config
    from stores.layout import feature_path

    try:
        spec = get_head(args.head)
    except KeyError:
        raise UsageError(f"unknown head {args.head!r} (heads: {', '.join(HEADS.names())})") from None
    from heads.presets import preset_overrides

    try:
        preset = preset_overrides(args.head, args.preset)
    except (KeyError, ValueError) as e:
        raise UsageError(" ".join(str(e).strip('"').split())) from None
    resolve_head_config(spec, TrainOptions(epochs=args.epochs, lr=args.lr,
                                           overrides={**preset, **overrides}))
    feature = args.features or spec.default_features
    for store in stores:
        fs = store.reader()
        ids = fs.video_ids()
        if not any(fs.has(v, feature_path(feature)) for v in ids):
            have = sorted({n for v in ids for n in fs.feature_names(v)})
            raise UsageError(f"no complete video has features/{feature}, which {args.head} reads "
                             f"(this store has: {', '.join(have) or 'no complete videos'})", store.url)


def run(args) -> int:
    from stores.store import Store

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    if args.no_ray and "torch" not in sys.modules:  # see _run_ray: OpenMP reads this at load
        os.environ.setdefault("OMP_NUM_THREADS", str(args.threads))
    # cheap checks first (no torch, no Ray): a typo costs a second, not a cluster start
    seeds = parse_seeds(args.seeds)
    check_numbers(args)
    stores = [Store(s) for s in args.store]  # the CLI edge: options from $VSUM_STORAGE_OPTIONS
    for store in stores:
        store.reader()  # StoreNotFound / not a vsum store
    check_splits(args, stores)
    from heads.config import parse_set_options  # importing heads/ loads torch

    overrides = parse_set_options(args.set)
    check_head(args, overrides, stores)
    try:
        run_training(args.head, stores, args.splits, args.out, seeds=seeds,
                     epochs=args.epochs, lr=args.lr, features=args.features,
                     overrides=overrides, val_fraction=args.val_fraction,
                     legacy_best_test=args.legacy_best_test, device=args.device,
                     use_ray=not args.no_ray, threads=args.threads, evaluate=not args.no_eval,
                     report=args.report, split_seed=args.split_seed,
                     missing_keys=args.missing_keys, num_cpus=args.num_cpus,
                     gpus_per_task=args.gpus_per_task, setting=args.setting,
                     test_dataset=args.test_dataset, preset=args.preset)
    except RuntimeError as e:  # some (split, seed) pairs failed; each is one line above
        print(f"train: {e}", file=sys.stderr)
        return EXIT_PARTIAL
    except ValueError as e:  # the run folder describes another run
        raise UsageError(" ".join(str(e).split())) from None
    return 0
