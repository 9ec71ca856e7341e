"""The evaluation report: Markdown tables (one per dataset), F-score distributions and per-video
score plots (PNG), the Parquet tables; and the table printed at the end of a command.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from jobs.eval_tasks import EvalConfig, load_labels

METRIC_LABELS = {  # report column titles: say which rank-correlation variant each column is
    "f1_avg": "F1 (avg over users)", "f1_max": "F1 (max over users)",
    "kendall_tau_frame": "Kendall τ (frame, Otani)", "spearman_rho_frame": "Spearman ρ (frame, Otani)",
    "kendall_tau_pick": "Kendall τ (pick, CA-SUM)", "spearman_rho_pick": "Spearman ρ (pick, CA-SUM)",
    "diversity": "diversity (1 − cos)",
}



def _fmt(mean, std) -> str:
    if mean is None or not np.isfinite(mean):
        return "–"
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"


def markdown_report(summary, title: str = "Evaluation") -> str:
    """One table per dataset: rows = method (+ setting), columns = metrics, overall split."""
    lines = [f"# {title}", "",
             ("Values are mean ± std over test videos (and seeds); with several splits, the mean "
              "is the mean of the split means. F1 uses the 15% knapsack keyshot summary. "
              "Rank correlations: *frame* = Otani et al. (CVPR 2019), zero-order-hold frame "
              "scores vs each annotator's frame scores; *pick* = CA-SUM/PGL-SUM, step scores vs "
              "annotators' scores at the picks. τ = Kendall tau-b, ρ = Spearman. "
              "Conventional F: SumMe max over users, TVSum avg."), ""]
    metrics = [m for m in METRIC_LABELS if m in set(summary["metric"])]
    for ds, sub in summary.groupby("dataset", dropna=False):
        overall = sub[sub["split"] == "all"] if (sub["split"] == "all").any() else sub
        lines += [f"## {ds or '(no dataset)'}", "",
                  "| method | setting | " + " | ".join(METRIC_LABELS[m] for m in metrics)
                  + " | videos |",
                  "|---|---|" + "---|" * len(metrics) + "---|"]
        for (method, setting), r in overall.groupby(["method", "setting"], dropna=False, sort=True):
            cells = []
            for m in metrics:
                row = r[r["metric"] == m]
                cells.append(_fmt(row["mean"].iloc[0], row["std"].iloc[0]) if len(row) else "–")
            nv = int(r["n_videos"].max()) if len(r) else 0
            lines.append(f"| {method} | {setting or '–'} | " + " | ".join(cells) + f" | {nv} |")
        lines.append("")
    return "\n".join(lines)


def plot_f_distributions(per_video, out: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sub = per_video[per_video["metric"].isin(["f1_avg", "f1_max"])]
    groups = list(sub.groupby(["dataset", "metric"]))
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 2.6 * max(1, len(groups))), squeeze=False)
    for ax, ((ds, metric), g) in zip(axes[:, 0], groups):
        # one value per (method, video): mean over seeds
        per = g.groupby(["method", "video_id"])["value"].mean().reset_index()
        methods = sorted(per["method"].unique())
        ax.boxplot([per.loc[per["method"] == m, "value"].dropna() for m in methods],
                   orientation="horizontal", tick_labels=methods)
        ax.set_title(f"{ds}: {METRIC_LABELS[metric]} per video")
        ax.set_xlim(0, 1)
    fig.tight_layout()
    path = out / "f1_distribution.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_video(store: str, video_id: str, step_scores, method: str, out: Path,
               cfg: EvalConfig = EvalConfig()) -> Path:
    """Predicted frame scores, mean annotator score (GT) and the selected shots of one video."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from pipeline.summary import select_keyshots, upsample_scores

    lab = load_labels(store, video_id)
    frames = upsample_scores(step_scores, lab["picks"], lab["n_frames"])
    summary, _ = select_keyshots(step_scores, lab["picks"], lab["n_frames"],
                                 lab["change_points"], cfg.ratio, cfg.quantize)
    ref = lab["user_scores"] if lab["user_scores"] is not None else lab["user_summary"]
    gt = ref.astype(np.float64).mean(axis=0)
    span = np.ptp(gt)
    gt = (gt - gt.min()) / span if span > 0 else gt
    span = np.ptp(frames)
    pred = (frames - frames.min()) / span if span > 0 else frames
    x = np.arange(lab["n_frames"])
    fig, ax = plt.subplots(figsize=(10, 3))
    ax.fill_between(x, 0, 1, where=summary > 0, color="tab:orange", alpha=0.25, step="post",
                    label="selected shots")
    ax.plot(x, gt, color="black", lw=1, label="ground truth (mean annotator)")
    ax.plot(x, pred, color="tab:blue", lw=1, label=f"{method} (min-max scaled)")
    ax.set_xlabel("frame")
    ax.set_ylabel("score")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"{video_id} — {method}")
    ax.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in f"{method}__{video_id}")
    path = out / f"scores_{safe}.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_report(per_video, summary, report_dir: str | Path, title: str,
                 curves: list[tuple[str, str, np.ndarray, str]] = ()) -> Path:
    """per_video.parquet, summary.parquet, report.md, plots/*.png. curves: (store, video_id,
    step_scores, method) to draw."""
    out = Path(report_dir)
    plots = out / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    per_video.to_parquet(out / "per_video.parquet", index=False)
    summary.to_parquet(out / "summary.parquet", index=False)
    pngs = [plot_f_distributions(per_video, plots)] if len(per_video) else []
    for store, vid, scores, method in curves:
        try:
            pngs.append(plot_video(store, vid, scores, method, plots))
        except (LookupError, ValueError, OSError, RuntimeError) as exc:  # never fails the report
            print(f"plot {method}/{vid}: {str(exc).splitlines()[0]}", file=sys.stderr)
    md = markdown_report(summary, title)
    md += "\n## Plots\n\n" + "\n".join(f"![{p.stem}](plots/{p.name})" for p in pngs) + "\n"
    (out / "report.md").write_text(md)
    return out


def print_table(summary, metrics=("f1_avg", "f1_max", "kendall_tau_frame", "spearman_rho_frame",
                                  "kendall_tau_pick", "spearman_rho_pick")) -> None:
    sub = summary[summary["metric"].isin(metrics)]
    sub = sub[(sub["split"] == "all") | ~sub.groupby(["method", "dataset"])["split"]
              .transform(lambda s: (s == "all").any())]
    t = sub.pivot_table(index=["dataset", "method"], columns="metric", values="mean")
    print(t[[m for m in metrics if m in t.columns]].round(3).to_string())

