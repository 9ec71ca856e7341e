"""The per-video predictions format that training runs write and ``vsum evaluate`` reads.

    RUN/
      run.json                                   resolved config of the whole run:
                                                 {"head", "features", "dataset", "setting",
                                                  "store", "config": {...}, ...}
      predictions/split=<k>/seed=<s>.parquet     one row per test video

Columns of a predictions file (long form, one row per video):
    video_id   str
    scores     list<float32>   one score per step (aligned with the store's picks)
    run        str             run name (the RUN folder name unless given)
    head, features, dataset, setting   str
    split      int
    seed       int
    selection  str   "fixed-epochs" | "validation" | "legacy-best-test" (never the default)
    store      str   the store the scores refer to (picks, segments, labels)
A file is written atomically (temp file + rename on local disks), so a half-written split never
reads as done; ``split_done`` is how a resumed run skips finished (split, seed) pairs.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

META_COLUMNS = ("run", "head", "features", "dataset", "setting", "split", "seed", "selection", "store")


def predictions_path(run_dir: str | Path, split: int, seed: int) -> Path:
    return Path(run_dir) / "predictions" / f"split={split}" / f"seed={seed}.parquet"


def split_done(run_dir: str | Path, split: int, seed: int) -> bool:
    return predictions_path(run_dir, split, seed).exists()


def write_predictions(run_dir: str | Path, split: int, seed: int,
                      scores: dict[str, np.ndarray], meta: dict) -> Path:
    """scores: video_id -> float [T]. meta: values for META_COLUMNS (split/seed filled here)."""
    meta = {**meta, "split": int(split), "seed": int(seed)}
    meta.setdefault("run", Path(run_dir).name)
    meta.setdefault("selection", "fixed-epochs")
    missing = [c for c in META_COLUMNS if c not in meta]
    if missing:
        raise ValueError(f"predictions meta lacks {missing}")
    ids = sorted(scores)
    table = pa.table({
        "video_id": pa.array(ids, pa.string()),
        "scores": pa.array([np.asarray(scores[v], np.float32) for v in ids], pa.list_(pa.float32())),
        **{c: pa.array([meta[c]] * len(ids), pa.int64() if c in ("split", "seed") else pa.string())
           for c in META_COLUMNS},
    })
    out = predictions_path(run_dir, split, seed)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".parquet.tmp")
    pq.write_table(table, tmp)
    os.replace(tmp, out)
    return out


def read_predictions(run_dir: str | Path) -> pd.DataFrame:
    """All predictions of a run: one row per (split, seed, video), ``scores`` as numpy arrays."""
    files = sorted(Path(run_dir).glob("predictions/split=*/seed=*.parquet"))
    if not files:
        raise FileNotFoundError(f"{run_dir}: no predictions/split=*/seed=*.parquet files")
    df = pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)
    df["scores"] = df["scores"].map(lambda s: np.asarray(s, np.float32))
    return df


def write_run_json(run_dir: str | Path, info: dict) -> Path:
    out = Path(run_dir) / "run.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(info, indent=2, sort_keys=True, default=str))
    return out


def read_run_json(run_dir: str | Path) -> dict:
    return json.loads((Path(run_dir) / "run.json").read_text())
