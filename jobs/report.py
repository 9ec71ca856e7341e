"""The evaluation report, written by ``vsum evaluate``, ``vsum baselines``, ``vsum train`` and the
demo: the Parquet tables, ``report.md`` (+ ``plots/*.png``) and one self-contained
``report.html`` (``jobs/report_html.py``); and the table printed at the end of a command.

Every table has a features column: the extractor and the weights its features came from (the
store's per-video ``weights`` attribute), with random-init weights flagged, so a number computed
on random features never passes for one on pretrained features.
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

METRIC_LABELS = {  # report column titles: say which rank-correlation variant each column is
    "f1_avg": "F1 (avg over users)", "f1_max": "F1 (max over users)",
    "kendall_tau_frame": "Kendall τ (frame, Otani)", "spearman_rho_frame": "Spearman ρ (frame, Otani)",
    "kendall_tau_pick": "Kendall τ (pick, CA-SUM)", "spearman_rho_pick": "Spearman ρ (pick, CA-SUM)",
    "diversity": "diversity (1 − cos)",
}
RANDOM_MARK = "⚠"
RANDOM_FOOTNOTE = (f"{RANDOM_MARK} features from randomly initialised weights (random-init): not "
                   "semantic; the numbers show only what a head learns from such features")
PROTOCOL_NOTE = (
    "Values are mean ± std over test videos (and seeds); with several splits, the mean is the "
    "mean of the split means. F1 uses the 15% knapsack keyshot summary. Rank correlations: "
    "*frame* = Otani et al. (CVPR 2019), zero-order-hold frame scores vs each annotator's frame "
    "scores; *pick* = CA-SUM/PGL-SUM, step scores vs annotators' scores at the picks. "
    "τ = Kendall tau-b, ρ = Spearman. Conventional F: SumMe max over users, TVSum avg.")


def is_random_init(weights: str) -> bool:
    return "random" in str(weights).lower()


def features_label(features: str, weights: str) -> str:
    """'googlenet (GoogLeNet_Weights.IMAGENET1K_V1)', 'st3d (random-init(seed=0)) ⚠', '–'."""
    if not features:
        return "–"
    if not weights or weights == "none":  # e.g. raw frame shards: no model, no weights
        return features
    return f"{features} ({weights})" + (f" {RANDOM_MARK}" if is_random_init(weights) else "")


def _fmt(mean, std) -> str:
    if mean is None or not np.isfinite(mean):
        return "–"
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"


@dataclass
class TableRow:
    """One method of one dataset in the overall split ("all" when there are several)."""

    dataset: str
    method: str
    setting: str
    features: str
    weights: str
    selection: str = ""
    cells: dict[str, tuple[float, float]] = field(default_factory=dict)  # metric -> (mean, std)
    n_videos: int = 0

    @property
    def random_init(self) -> bool:
        return is_random_init(self.weights)

    @property
    def features_label(self) -> str:
        return features_label(self.features, self.weights)


def _col(df, name: str, default=""):
    return df[name] if name in df.columns else [default] * len(df)


def table_rows(summary, per_video=None) -> list[TableRow]:
    """The summary's overall rows, grouped per (dataset, method, setting, features, weights);
    methods scored from features first, then those that use none (baselines). ``per_video``
    (optional) supplies each method's selection rule."""
    sub = summary.copy()
    sub["weights"] = _col(sub, "weights")
    sub[["setting", "features", "weights", "dataset"]] = (
        sub[["setting", "features", "weights", "dataset"]].fillna("").astype(str))
    multi = sub.groupby(["dataset", "method"])["split"].transform(lambda s: (s == "all").any())
    sub = sub[(sub["split"] == "all") | ~multi]
    selection = {}
    if per_video is not None and "selection" in per_video.columns:
        sel = per_video.groupby("method")["selection"].agg(lambda s: ", ".join(sorted(set(map(str, s)) - {""})))
        selection = sel.to_dict()
    rows = []
    for (ds, method, setting, feats, weights), g in sub.groupby(
            ["dataset", "method", "setting", "features", "weights"], sort=True):
        cells = {m: (float(r["mean"]), float(r["std"])) for m, r in
                 g.drop_duplicates("metric").set_index("metric").iterrows()}
        rows.append(TableRow(ds, method, setting, feats, weights, selection.get(method, ""),
                             cells, int(g["n_videos"].max()) if len(g) else 0))
    rows.sort(key=lambda r: (r.dataset, r.features == "", r.method))
    return rows


def present_metrics(summary) -> list[str]:
    return [m for m in METRIC_LABELS if m in set(summary["metric"])]


def markdown_report(summary, title: str = "Evaluation", per_video=None) -> str:
    """One table per dataset: rows = method (+ setting, features and weights), columns = metrics."""
    lines = [f"# {title}", "", PROTOCOL_NOTE, ""]
    metrics = present_metrics(summary)
    rows = table_rows(summary, per_video)
    for ds in dict.fromkeys(r.dataset for r in rows):
        lines += [f"## {ds or '(no dataset)'}", "",
                  "| method | setting | features (weights) | "
                  + " | ".join(METRIC_LABELS[m] for m in metrics) + " | videos |",
                  "|---|---|---|" + "---|" * len(metrics) + "---|"]
        for r in (r for r in rows if r.dataset == ds):
            cells = [_fmt(*r.cells[m]) if m in r.cells else "–" for m in metrics]
            lines.append(f"| {r.method} | {r.setting or '–'} | {r.features_label} | "
                         + " | ".join(cells) + f" | {r.n_videos} |")
        lines.append("")
    if any(r.random_init for r in rows):
        lines += [RANDOM_FOOTNOTE, ""]
    return "\n".join(lines)


def print_table(summary, metrics=("f1_avg", "f1_max", "kendall_tau_frame", "spearman_rho_frame",
                                  "kendall_tau_pick", "spearman_rho_pick"), file=None) -> None:
    """The overall table (means) with the features column; a footnote when any is random-init."""
    import pandas as pd

    out = file or sys.stdout
    rows = table_rows(summary)
    shown = [m for m in metrics if any(m in r.cells for r in rows)]
    df = pd.DataFrame([{"dataset": r.dataset, "method": r.method, "features": r.features_label,
                        **{m: r.cells.get(m, (np.nan, np.nan))[0] for m in shown}} for r in rows])
    if df.empty:
        print("(no results)", file=out)
        return
    print(df.round(3).to_string(index=False, na_rep="–"), file=out)
    if any(r.random_init for r in rows):
        print(RANDOM_FOOTNOTE, file=out)


def _safe(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in name)


def write_report(per_video, summary, report_dir: str | Path, title: str,
                 curves: list[tuple[str, str, np.ndarray, str]] = (), notes: list[str] = (),
                 links: list[tuple[str, str]] = ()) -> Path:
    """per_video.parquet, summary.parquet, report.md, plots/*.png and report.html.

    curves: (store, video_id, step_scores, method) to show per video (several methods of one
    video share its section); notes: lines shown at the top of report.html; links: extra
    (label, relative path) links. Returns the report folder."""
    from jobs.report_html import write_html
    from jobs.report_plots import f1_distribution_figure, video_figure
    from jobs.report_videos import build_views

    out = Path(report_dir)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    per_video.to_parquet(out / "per_video.parquet", index=False)
    summary.to_parquet(out / "summary.parquet", index=False)
    pngs: dict[str, bytes] = {}
    dist = f1_distribution_figure(per_video, METRIC_LABELS) if len(per_video) else None
    if dist:
        pngs["f1_distribution.png"] = dist
    views = []
    try:
        views = build_views(curves, _f1_lookup(per_video))
    except (LookupError, ValueError, OSError, RuntimeError) as exc:  # never fails the report
        print(f"report: per-video plots skipped: {str(exc).splitlines()[0]}", file=sys.stderr)
    figures = {}
    for v in views:
        figures[v.video_id] = video_figure(v)
        pngs[f"scores_{_safe(v.video_id)}.png"] = figures[v.video_id]
    for name, data in pngs.items():
        (plots / name).write_bytes(data)
    md = markdown_report(summary, title, per_video)
    md += "\n## Plots\n\n" + "\n".join(f"![{Path(n).stem}](plots/{n})" for n in pngs) + "\n"
    (out / "report.md").write_text(md)
    write_html(out / "report.html", title=title, summary=summary, per_video=per_video,
               views=views, figures=figures, f1_png=dist, notes=list(notes),
               links=[("per-video metrics (Parquet)", "per_video.parquet"),
                      ("summary (Parquet)", "summary.parquet"), *links])
    return out


def _f1_lookup(per_video) -> dict[tuple[str, str], float]:
    """(method, video_id) -> F1 (avg over users), mean over seeds."""
    f = per_video[per_video["metric"] == "f1_avg"]
    return f.groupby(["method", "video_id"])["value"].mean().to_dict() if len(f) else {}
