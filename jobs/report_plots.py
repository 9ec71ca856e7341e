"""The report's pictures (matplotlib, Agg), as PNG bytes: the caller writes them to files for
report.md and inlines them as data URIs in report.html.

    video_figure(VideoView)         predicted score curves over the annotators' mean and spread,
                                    KTS boundaries, and one timeline row of keyshots per method
    f1_distribution_figure(per_video)   F-score boxplots per dataset and method
"""
from __future__ import annotations

import io

import numpy as np

from jobs.report_videos import VideoView

COLOURS = ("tab:blue", "tab:red", "tab:green", "tab:purple", "tab:brown", "tab:olive", "tab:cyan")
DPI = 80  # small files: the demo's page has ~20 of these


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _png(fig) -> bytes:
    plt = _pyplot()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI)
    plt.close(fig)
    return buf.getvalue()


def _minmax(x: np.ndarray) -> np.ndarray:
    span = float(np.ptp(x)) if len(x) else 0.0
    return (x - x.min()) / span if span > 0 else np.zeros_like(x)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, length) of each run of true values in a 0/1 vector."""
    edges = np.diff(np.concatenate(([0], (np.asarray(mask) > 0).astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return list(zip(starts.tolist(), (ends - starts).tolist()))


def video_figure(v: VideoView) -> bytes:
    """Top: annotators' mean score (black) and spread (grey, ±1 std), each method's frame scores
    (min-max scaled), KTS segment boundaries (thin vertical lines). Bottom: the keyshots each
    method selects, and the frames in at least half of the annotators' summaries, as timelines.
    x in seconds."""
    plt = _pyplot()
    t = np.arange(v.n_frames) / v.fps
    fig, (ax, tl) = plt.subplots(2, 1, figsize=(10, 3.6), sharex=True,
                                 gridspec_kw={"height_ratios": [3, 0.35 * (len(v.methods) + 1)]})
    mean, std = v.user_scores.mean(axis=0), v.user_scores.std(axis=0)
    ax.fill_between(t, np.clip(mean - std, 0, 1), np.clip(mean + std, 0, 1), color="0.85",
                    lw=0, step="post", label="annotators ±1 std")
    ax.plot(t, mean, color="black", lw=1.2, drawstyle="steps-post", label="annotators' mean")
    for first, _ in v.change_points[1:]:
        ax.axvline(first / v.fps, color="0.6", lw=0.5, ls=":")
    for i, m in enumerate(v.methods):
        ax.plot(t, _minmax(m.frame_scores), color=COLOURS[i % len(COLOURS)], lw=1.1,
                drawstyle="steps-post", label=f"{m.method} (scaled)")
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel("score")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.0), ncol=4, fontsize=7, frameon=False)
    rows = [("≥ ½ of annotators", v.chosen, "black")]
    rows += [(m.method, m.summary, COLOURS[i % len(COLOURS)]) for i, m in enumerate(v.methods)]
    for r, (_, mask, colour) in enumerate(rows):
        spans = [(s / v.fps, n / v.fps) for s, n in _runs(mask)]
        tl.broken_barh(spans, (r - 0.4, 0.8), color=colour, alpha=0.8)
    tl.set_yticks(range(len(rows)), [label for label, _, _ in rows], fontsize=7)
    tl.set_ylim(len(rows) - 0.5, -0.5)
    tl.set_xlim(0, v.seconds)
    tl.set_xlabel("time (s) — bars: selected keyshots (15 % knapsack)")
    fig.tight_layout(h_pad=0.3)
    return _png(fig)


def f1_distribution_figure(per_video, labels: dict[str, str]) -> bytes | None:
    """One boxplot panel per (dataset, F metric): a box per method over its videos (each video's
    value is the mean over seeds). None when there is no F-score."""
    plt = _pyplot()
    sub = per_video[per_video["metric"].isin(["f1_avg", "f1_max"])]
    groups = list(sub.groupby(["dataset", "metric"]))
    if not groups:
        return None
    fig, axes = plt.subplots(len(groups), 1, figsize=(8, 0.6 + 0.35 * sub["method"].nunique() * len(groups)
                                                      + 0.6 * len(groups)), squeeze=False)
    for ax, ((ds, metric), g) in zip(axes[:, 0], groups):
        per = g.groupby(["method", "video_id"])["value"].mean().reset_index()
        methods = sorted(per["method"].unique())
        ax.boxplot([per.loc[per["method"] == m, "value"].dropna() for m in methods],
                   orientation="horizontal", tick_labels=methods)
        ax.set_title(f"{ds or '(no dataset)'}: {labels.get(metric, metric)} per video", fontsize=9)
        ax.set_xlim(0, 1)
        ax.tick_params(labelsize=8)
    fig.tight_layout()
    return _png(fig)
