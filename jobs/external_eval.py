"""``vsum evaluate --predictions FILE…``: other codebases' prediction files as methods beside vsum
runs, through the same per-video Dask tasks (jobs/evaluate.py) and the same exact protocol.

    files ─► stores/external_predictions.read_external ─► keys resolved to store videos
          ─► prediction rows {method, split = file index within the method, video_id, kind, …}
    after the map: the file's own F (``fm``) vs ours, missing and extra videos
          ─► one line each (missing: the first MAX_MISSING_LINES per method) ─► external.json
             and an "External predictions" section of report.md

Files given the same ``--name`` are the splits of one method ("0", "1", … in the order given),
so five DR-DSN ``result.h5`` of five splits aggregate like a five-split vsum run.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import UsageError, VsumError

MAX_MISSING_LINES = 20  # per method on the console; external.json lists every one


@dataclass
class ExternalMethod:
    """What one method's files gave. files: {path, format, videos, extra, duplicates}."""

    name: str
    files: list[dict] = field(default_factory=list)
    predicted: set = field(default_factory=set)  # VideoRefs with a prediction
    datasets: set = field(default_factory=set)  # datasets the predictions hit
    missing: list[str] = field(default_factory=list)  # store videos with none
    fm: dict | None = None  # the file's fm vs ours (fm_comparison), after the evaluation


def method_names(files: list[str], names: list[str] | None) -> list[str]:
    """One method name per file: ``--name`` once (every file), once per file, or the stems."""
    names = list(names or [])
    if not names:
        return [Path(f).stem for f in files]
    if len(names) == 1:
        return names * len(files)
    if len(names) != len(files):
        raise UsageError(f"{len(names)} --name values for {len(files)} --predictions files "
                         "(give one name, or one per file)")
    return names


def external_tasks(files: list[str], names: list[str] | None, store):
    """-> (prediction rows, {name: ExternalMethod}, error lines). ``store``: a ``stores.Store``
    (or path/URL) or None. Rows carry ``store`` (its URL) and ``video_id`` plus the ROW_KEYS; a
    file that cannot be read is one error line."""
    from stores.external_predictions import read_external, resolve
    from stores.splits import StoreIndex

    if not store:
        raise UsageError("--predictions needs --store (the store with the videos' labels)")
    index = StoreIndex([store])
    rows, methods, errors = [], {}, []
    for path, name in zip(files, method_names(files, names)):
        m = methods.setdefault(name, ExternalMethod(name))
        split = str(len(m.files))
        try:
            ext = read_external(path)
        except VsumError as exc:
            errors.append(str(exc))
            m.files.append({"path": str(path), "format": None, "error": str(exc)})
            continue
        res = resolve(ext, index)
        m.files.append({"path": str(path), "format": ext.format, "videos": len(ext.entries),
                        "extra": res.extra, "duplicates": res.duplicates})
        errors += [f"{path}: {k}: no video with this key in {store} (extra)" for k in res.extra]
        errors += [f"{path}: {k}: a video this file already predicts (duplicate, ignored)"
                   for k in res.duplicates]
        for ref, e in res.preds:
            m.predicted.add(ref)
            rows.append(_row(name, split, ref, e))
    for m in methods.values():
        m.datasets = {ds for ds, refs in index.datasets.items() if set(refs) & m.predicted}
        m.missing = sorted(r.video_id for ds in m.datasets for r in index.datasets[ds]
                           if r not in m.predicted)
    return rows, methods, errors


def _row(name: str, split: str, ref, e) -> dict:
    row = {"store": ref.store, "video_id": ref.video_id, "method": name, "head": "external",
           "features": "", "dataset": "", "setting": "", "split": split, "seed": 0,
           "selection": "external", "kind": e.kind, "fm": e.fm}
    row["summary" if e.kind == "summary" else "scores"] = e.values
    return row


def fm_comparison(per_video, method: str) -> dict | None:
    """The file's per-video ``fm`` against our F (avg and max over annotators: whichever the
    file agrees with better, as its evaluator's reduction is not written in the file)."""
    sub = per_video[per_video["method"] == method]
    idx = ["split", "video_id"]
    theirs = sub[sub["metric"] == "fm_file"].set_index(idx)["value"]
    if theirs.empty:
        return None
    best = None
    for metric in ("f1_avg", "f1_max"):
        diff = (sub[sub["metric"] == metric].set_index(idx)["value"] - theirs).dropna().abs()
        if diff.empty:
            continue
        worst = diff.idxmax()
        cand = {"ours": metric, "videos": int(len(diff)), "max_abs_diff": float(diff.max()),
                "mean_abs_diff": float(diff.mean()), "worst_video": worst[1], "worst_split": worst[0]}
        if best is None or cand["max_abs_diff"] < best["max_abs_diff"]:
            best = cand
    return best


def notes(methods: dict[str, ExternalMethod], report_dir: str | None) -> list[str]:
    """Lines for the console: missing videos (capped) and the fm comparison of each method."""
    out = []
    where = f" (all in {report_dir}/external.json)" if report_dir else ""
    for m in methods.values():
        out += [f"{m.name}: {v}: no prediction (missing)" for v in m.missing[:MAX_MISSING_LINES]]
        if len(m.missing) > MAX_MISSING_LINES:
            out.append(f"{m.name}: … and {len(m.missing) - MAX_MISSING_LINES} more missing videos{where}")
        if m.fm:
            out.append(f"{m.name}: the file's fm vs our {m.fm['ours']} on {m.fm['videos']} videos: "
                       f"largest difference {m.fm['max_abs_diff']:.2e} ({m.fm['worst_video']})")
    return out


def write_external_report(methods: dict[str, ExternalMethod], per_video, report_dir: str) -> Path:
    """external.json (every missing/extra key) and a section appended to report.md."""
    out = Path(report_dir)
    doc, lines = {}, ["", "## External predictions", "",
                      "Files given with `--predictions`, evaluated with the protocol above. "
                      "*fm*: the F each file carries per video, against ours (largest |Δ|).", "",
                      "| method | files | format | videos in files | evaluated | missing | extra "
                      "| file's fm vs ours |", "|---|---|---|---|---|---|---|---|"]
    for m in methods.values():
        sub = per_video[(per_video["method"] == m.name) & (per_video["metric"] == "f1_avg")]
        evaluated = int(len(sub[["split", "video_id"]].drop_duplicates()))
        extra = [k for f in m.files for k in f.get("extra", [])]
        doc[m.name] = {"files": m.files, "evaluated": evaluated, "missing": m.missing,
                       "fm_comparison": m.fm}
        fm = (f"{m.fm['ours']}: {m.fm['max_abs_diff']:.2e} ({m.fm['worst_video']}), "
              f"{m.fm['videos']} videos" if m.fm else "–")
        formats = ", ".join(sorted({str(f["format"]) for f in m.files}))
        lines.append(f"| {m.name} | {len(m.files)} | {formats} | "
                     f"{sum(f.get('videos', 0) for f in m.files)} | {evaluated} | "
                     f"{len(m.missing)} | {len(extra)} | {fm} |")
    (out / "external.json").write_text(json.dumps(doc, indent=2, default=_plain))
    md = out / "report.md"
    md.write_text((md.read_text() if md.exists() else "") + "\n".join(lines) + "\n")
    return out / "external.json"


def _plain(x):
    return x.item() if isinstance(x, np.generic) else str(x)
