"""Other codebases' prediction files, read into the per-video entries ``vsum evaluate`` scores.

The format is told from the content, not the file name:

  result h5   the eccv16-family file DR-DSN-style code writes with ``--save-results``: one group
              per video key holding ``score`` [T] (step scores at the picks) and optionally
              ``machine_summary`` [n_frames], ``gtscore`` [T], ``fm`` (). A group with a
              ``machine_summary`` and no ``score`` is a ready-made summary.
  table       Parquet, CSV or JSON: video key -> ``scores`` (step scores [T] at the store's
              picks, or frame scores [n_frames]; the length tells which) or -> ``summary``
              (binary frame vector [n_frames], evaluated as given), optional per-video ``fm``.
              Wide: one row per video with a list cell (``scores`` / ``summary``; in CSV the
              list is a string of numbers). Long: one row per step or frame with a scalar
              ``score`` / ``summary`` column, in file order or ordered by a ``step``/``frame``
              column. JSON also as ``{key: [scores]}`` (PGL-SUM/CA-SUM/SUM-GAN write this) or
              ``{key: {"scores" | "summary": [...], "fm": x}}``.

Keys resolve as split files do (``stores.splits.StoreIndex``): a vsum video id, an eccv16 key
(``video_7``), or a dataset-qualified key (``tvsum/video_7``, ``summe/Air_Force_One``).
Every problem found here is an ``InputError`` naming the file.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import InputError

KEY_COLUMNS = ("video_id", "key", "video_key", "video", "video_name", "name")
KINDS = ("steps", "scores", "summary")  # steps: must match the picks; scores: steps or frames
_NUMBER_SEP = re.compile(r"[\s,;]+")


@dataclass
class Entry:
    """One video's prediction as the file gives it."""

    key: str
    kind: str  # one of KINDS
    values: np.ndarray  # float32 scores, or uint8 0/1 summary
    fm: float | None = None  # the file's own F-score of this video, when it carries one


@dataclass
class ExternalFile:
    path: str
    format: str  # "result-h5" | "parquet" | "csv" | "json"
    entries: list[Entry]


@dataclass
class Resolved:
    """A file's entries matched to store videos. preds: (VideoRef, Entry); extra: keys no store
    video matches; duplicates: keys naming a video an earlier key already named."""

    preds: list = field(default_factory=list)
    extra: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)


# -- detection ------------------------------------------------------------------------------------
def detect_format(path: str | Path) -> str:
    """'result-h5' | 'parquet' | 'json' | 'csv' from the first bytes; InputError otherwise."""
    import h5py

    p = Path(path)
    if not p.is_file():
        raise InputError("no such predictions file", p)
    with p.open("rb") as f:
        head = f.read(4096)
    if head[:4] == b"PAR1":
        return "parquet"
    if h5py.is_hdf5(str(p)):
        return "result-h5"
    try:
        text = head.decode("utf-8-sig", errors="strict").lstrip()
    except UnicodeDecodeError:
        text = ""
    if text[:1] in ("{", "["):
        return "json"
    first = text.splitlines()[0] if text else ""
    cols = {c.strip().strip('"').lower() for c in first.split(",")}
    if cols & set(KEY_COLUMNS) and cols & {"scores", "score", "summary"}:
        return "csv"
    raise InputError("not a predictions file vsum reads (expected a DR-DSN-style result h5, "
                     "or a Parquet/CSV/JSON table of video key -> scores or summary)", p)


def read_external(path: str | Path) -> ExternalFile:
    """Read every video's prediction of a file (whatever its format) -> ExternalFile."""
    fmt = detect_format(path)
    try:
        if fmt == "result-h5":
            entries = _read_result_h5(path)
        elif fmt == "json":
            entries = _read_json(path)
        else:
            import pandas as pd

            df = pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
            entries = _from_frame(df, path)
    except InputError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"unreadable {fmt} predictions: {str(exc).splitlines()[0]}", path) from exc
    if not entries:
        raise InputError(f"{fmt} predictions file holds no videos", path)
    return ExternalFile(str(path), fmt, entries)


# -- result h5 (DR-DSN --save-results) ----------------------------------------------------------
def _read_result_h5(path) -> list[Entry]:
    import h5py

    out = []
    with h5py.File(path, "r") as h5:
        groups = [k for k in h5.keys() if isinstance(h5[k], h5py.Group)]
        if groups and all("features" in h5[k] and "score" not in h5[k] for k in groups):
            raise InputError("an eccv16 dataset h5 (features, no score), not predictions: "
                             "import it with `vsum store import-h5`", path)
        for key in groups:
            g = h5[key]
            fm = float(g["fm"][()]) if "fm" in g else None
            if "score" in g:
                out.append(Entry(key, "steps", _floats(g["score"][...], key, path), fm))
            elif "machine_summary" in g:
                out.append(Entry(key, "summary", _binary(g["machine_summary"][...]), fm))
            else:
                raise InputError(f"group {key!r} has neither 'score' nor 'machine_summary'", path)
    return out


# -- tables ---------------------------------------------------------------------------------------
def _read_json(path) -> list[Entry]:
    doc = json.loads(Path(path).read_text(encoding="utf-8-sig"))
    if isinstance(doc, dict) and not any(c in doc for c in KEY_COLUMNS):
        # {key: [scores]} or {key: {"scores"|"summary": [...], "fm": x}}
        out = []
        for key, v in doc.items():
            rec = {"scores": v} if isinstance(v, list) else v
            if not isinstance(rec, dict):
                raise InputError(f"video {key!r}: expected a list of scores or an object", path)
            out.append(_entry(str(key), rec, path))
        return out
    import pandas as pd

    if isinstance(doc, dict):  # column-oriented (pandas to_json) or a single record
        key = next(c for c in KEY_COLUMNS if c in doc)
        doc = doc if isinstance(doc[key], (list, dict)) else [doc]
    return _from_frame(pd.DataFrame(doc), path)


def _from_frame(df, path) -> list[Entry]:
    """A wide (list cells) or long (scalar cells) table -> entries, in first-appearance order."""
    cols = {str(c).lower(): c for c in df.columns}
    key_col = next((cols[c] for c in KEY_COLUMNS if c in cols), None)
    if key_col is None:
        raise InputError(f"no video key column (one of {', '.join(KEY_COLUMNS)}); "
                         f"columns: {', '.join(map(str, df.columns))}", path)
    value_col = next((cols[c] for c in ("scores", "summary", "score") if c in cols), None)
    if value_col is None:
        raise InputError("no 'scores', 'score' or 'summary' column", path)
    first = df[value_col].iloc[0] if len(df) else None
    wide = not np.isscalar(first) or isinstance(first, str)
    kind = "summary" if str(value_col).lower() == "summary" else "scores"
    if wide:
        return [_entry(str(r[key_col]), {kind: r[value_col],
                                        "fm": r[cols["fm"]] if "fm" in cols else None}, path)
                for _, r in df.iterrows()]
    order = next((cols[c] for c in ("step", "frame") if c in cols), None)
    if order is not None:
        df = df.sort_values([key_col, order], kind="stable")
    out = []
    for key, g in df.groupby(key_col, sort=False):
        fm = g[cols["fm"]].iloc[0] if "fm" in cols else None
        out.append(_entry(str(key), {kind: g[value_col].to_numpy(), "fm": fm}, path))
    return out


def _entry(key: str, rec: dict, path) -> Entry:
    fm = rec.get("fm")
    fm = None if fm is None or not np.isfinite(float(fm)) else float(fm)
    if rec.get("summary") is not None:
        return Entry(key, "summary", _binary(_numbers(rec["summary"], key, path)), fm)
    if rec.get("scores") is None:
        raise InputError(f"video {key!r}: no 'scores' or 'summary'", path)
    return Entry(key, "scores", _floats(_numbers(rec["scores"], key, path), key, path), fm)


def _numbers(v, key, path) -> np.ndarray:
    if isinstance(v, str):  # a CSV cell: "0.1 0.5 0.2" or "[0.1, 0.5, 0.2]"
        v = [x for x in _NUMBER_SEP.split(v.strip().strip("[]")) if x]
    try:
        return np.asarray(v, dtype=np.float64).ravel()
    except (TypeError, ValueError) as exc:
        raise InputError(f"video {key!r}: values are not numbers", path) from exc


def _floats(v, key, path) -> np.ndarray:
    a = np.asarray(v, dtype=np.float32).ravel()
    if len(a) == 0:
        raise InputError(f"video {key!r}: no scores", path)
    return a


def _binary(v) -> np.ndarray:
    """Nonzero = selected, as the public evaluators binarise a machine summary."""
    return (np.asarray(v).ravel() > 0).astype(np.uint8)


# -- keys -> store videos -------------------------------------------------------------------------
def dataset_hint(path: str | Path, datasets) -> str | None:
    """The one store dataset named in the file's path (``log/summe-split0/result.h5`` -> summe),
    for ``video_N`` keys when the stores hold several datasets; else None."""
    text = str(path).lower()
    named = [d for d in datasets if d and d.lower() in text]
    return named[0] if len(named) == 1 else None


def resolve(ext: ExternalFile, index) -> Resolved:
    """Match a file's keys to store videos through a ``StoreIndex``."""
    hint = None if index.only_dataset() else dataset_hint(ext.path, index.datasets)
    out, seen = Resolved(), set()
    for e in ext.entries:
        ref = index.resolve(e.key, hint)
        if ref is None:
            out.extra.append(e.key)
        elif ref in seen:
            out.duplicates.append(e.key)
        else:
            seen.add(ref)
            out.preds.append((ref, e))
    return out
