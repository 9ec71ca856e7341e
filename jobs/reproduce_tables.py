"""Our numbers beside the published ones: one Markdown + CSV table per paper table.

Ours for a cell = the cell's metric on its run, in %: per (seed, split) the mean over test
videos, per seed the mean over splits (the papers' "average of the splits"), then mean ± std
over seeds; with one seed the ± is the std over splits (said in the table). Difference = ours −
published, in points.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from jobs.reproduce_grid import Cell, Grid


def ours(per_video, run_id: str, metric: str) -> dict:
    """-> {mean, std, over ("seeds" | "splits" | ""), n_seeds, n_splits, n_videos} in %; mean NaN
    when the run has no finite value of ``metric``."""
    sub = per_video[(per_video["method"] == run_id) & (per_video["metric"] == metric)]
    sub = sub[np.isfinite(sub["value"].to_numpy(dtype=float))]
    if sub.empty:
        return {"mean": math.nan, "std": math.nan, "over": "", "n_seeds": 0, "n_splits": 0,
                "n_videos": 0}
    split_means = sub.groupby(["seed", "split"])["value"].mean()
    seed_means = split_means.groupby(level="seed").mean()
    if len(seed_means) > 1:
        std, over = float(seed_means.std(ddof=1)), "seeds"
    else:
        std = float(split_means.std(ddof=1)) if len(split_means) > 1 else math.nan
        over = "splits" if len(split_means) > 1 else ""
    return {"mean": 100 * float(seed_means.mean()), "std": 100 * std, "over": over,
            "n_seeds": int(len(seed_means)), "n_splits": int(split_means.index.get_level_values(
                "split").nunique()), "n_videos": int(sub["video_id"].nunique())}


def cell_rows(grid: Grid, results: dict, status: dict[str, str],
              notes: dict[str, str] | None = None) -> list[dict]:
    """One flat record per cell. results: {eval_key: per-video long frame}; status: {run_id:
    reason it did not run ("" = ran)}; notes: {run_id: remark on a run that ran (partial)}."""
    out = []
    for c in grid.cells:
        rec = {"table": c.table, "row": c.row, "column": c.column, "metric": c.metric,
               "published": c.published, "published_text": c.published_text,
               "run": c.run.run_id if c.run else "", "note": c.skip}
        o = {"mean": math.nan, "std": math.nan, "over": ""}
        if c.run is not None:
            rec["note"] = status.get(c.run.run_id, "")
            pv = results.get(c.eval_key)
            if not rec["note"] and pv is not None:
                o = ours(pv, c.run.run_id, c.metric)
                if not np.isfinite(o["mean"]):
                    rec["note"] = "no finite value (see the run's logs)"
                rec["note"] = (rec["note"] + " " + (notes or {}).get(c.run.run_id, "")).strip()
            rec.update(dataset=c.run.dataset, setting=c.run.setting, features=c.run.features or "",
                       splits=c.run.splits, eval=_eval_text(c))
        rec.update(ours=o["mean"], ours_std=o["std"], std_over=o["over"],
                   n_seeds=o.get("n_seeds", 0), n_splits=o.get("n_splits", 0),
                   n_videos=o.get("n_videos", 0))
        rec["difference"] = (rec["ours"] - c.published
                             if c.published is not None and np.isfinite(rec["ours"]) else math.nan)
        out.append(rec)
    return out


def _eval_text(c: Cell) -> str:
    ev = dict(c.eval_key)
    if ev["protocol"] == "crsum-keyframe":
        return f"keyframe α={ev['ratio']:g}, 1 pick in {ev['keyframe_stride']}"
    return "l = P" if ev["budget"] == "P" else f"keyshot {ev['ratio']:.0%}"


def _fmt(v: float, std: float = math.nan, over: str = "") -> str:
    if not np.isfinite(v):
        return "–"
    mark = "" if over in ("seeds", "") else "†"
    return f"{v:.1f} ± {std:.1f}{mark}" if np.isfinite(std) else f"{v:.1f}"


def markdown_table(table: dict, records: list[dict], header: dict) -> str:
    """One paper table: rows × columns, each cell "ours (published, difference)"; then the
    details of every cell (run, features, splits, evaluation, why not run)."""
    cols = list(table["columns"])
    lines = [f"## {table['id']}: {table['title']}", ""]
    if table.get("note"):
        lines += [f"Paper note: {table['note']}", ""]
    lines += ["| row | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    by = {(r["row"], r["column"]): r for r in records}
    for row in table["rows"]:
        cells = []
        for col in cols:
            r = by[(row["row"], col)]
            pub = "–" if r["published"] is None else f"{r['published']:.1f}"
            diff = "" if not np.isfinite(r["difference"]) else f", {r['difference']:+.1f}"
            cells.append(f"{_fmt(r['ours'], r['ours_std'], r['std_over'])} ({pub}{diff})")
        lines.append(f"| {row['row']} | " + " | ".join(cells) + " |")
    lines += ["", f"Cells: ours ({header['unit']}, mean ± std over seeds; † = std over splits, one "
              "seed) (published, ours − published).", "",
              "| row | column | metric | ours | published | difference | run | features | splits | "
              "evaluation | videos | note |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in records:
        pub = r["published_text"] or ("–" if r["published"] is None else f"{r['published']:.1f}")
        diff = "–" if not np.isfinite(r["difference"]) else f"{r['difference']:+.1f}"
        lines.append(f"| {r['row']} | {r['column']} | {r['metric']} | "
                     f"{_fmt(r['ours'], r['ours_std'], r['std_over'])} | {pub} | {diff} | "
                     f"{r['run'] or '–'} | {r.get('features', '')} | {r.get('splits', '')} | "
                     f"{r.get('eval', '')} | {r['n_videos']} | {r['note'] or ''} |")
    return "\n".join(lines) + "\n"


def write_tables(grid: Grid, records: list[dict], out: Path, run_note: str) -> list[Path]:
    """OUT/tables/<paper>/<table>.md and .csv, plus README.md with every table. -> paths."""
    import pandas as pd

    doc = grid.paper
    folder = out / "tables" / doc["paper"]
    folder.mkdir(parents=True, exist_ok=True)
    header = {"unit": doc.get("unit", "%")}
    intro = [f"# {doc['title']} ({doc['venue']}): ours beside the published numbers", "",
             f"- published numbers: `jobs/published/{doc['paper']}.yaml` ({doc.get('unit', '')})",
             f"- protocol of the paper: {doc.get('protocol', '')}",
             f"- the paper's splits: {doc.get('paper_splits', '')}", f"- this run: {run_note}", ""]
    paths, sections = [], []
    for table in doc["tables"]:
        recs = [r for r in records if r["table"] == table["id"]]
        md = markdown_table(table, recs, header)
        slug = "".join(ch if ch.isalnum() else "-" for ch in table["id"].lower()).strip("-")
        (folder / f"{slug}.md").write_text(md)
        pd.DataFrame(recs).to_csv(folder / f"{slug}.csv", index=False)
        paths.append(folder / f"{slug}.md")
        sections.append(md)
    readme = folder / "README.md"
    readme.write_text("\n".join(intro) + "\n" + "\n".join(sections))
    return [readme, *paths]
