"""``report.html``: one self-contained page (every image a data URI, no script or style from
anywhere else) rendered from the Jinja2 template ``jobs/templates/report.html.j2``, which ships as
package data.

    method × dataset table (mean ± std, videos, setting, selection rule, features and weights,
    random-init flagged) · F-score distributions · per video: score curves over the annotators'
    mean and spread, KTS boundaries, keyshot timelines (``report_plots.video_figure``) and
    thumbnails of each method's selected shots (``report_thumbs``) · a sortable per-video table ·
    links to the Parquet files.
"""
from __future__ import annotations

import base64
import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import numpy as np

PER_VIDEO_METRICS = ("f1_avg", "f1_max", "kendall_tau_frame", "spearman_rho_frame")
MAX_THUMBS = 12  # per (video, method)


def data_uri(data: bytes, mime: str) -> str:
    return f"data:{mime};base64,{base64.b64encode(data).decode('ascii')}"


@dataclass
class Thumb:
    uri: str
    caption: str  # "12.5–15.0 s"


def _environment():
    import jinja2

    return jinja2.Environment(loader=jinja2.PackageLoader("jobs", "templates"),
                              autoescape=jinja2.select_autoescape(["html", "j2"]),
                              trim_blocks=True, lstrip_blocks=True, undefined=jinja2.StrictUndefined)


def _num(x) -> str:
    return "–" if x is None or not np.isfinite(x) else f"{x:.3f}"


def _provenance(rows, views) -> list[dict]:
    """Features and weights behind the numbers: every (features, weights) in the table, plus
    what each store records for its extractors (baselines use no features, but the page still
    says what the store's features are)."""
    from jobs.eval_tasks import weights_label
    from jobs.report import features_label, is_random_init
    from stores.reader import FeatureStore

    seen: dict[str, dict] = {}
    users: dict[str, list[str]] = {}
    for r in rows:
        if r.features:
            label = features_label(r.features, r.weights)
            users.setdefault(label, []).append(r.method)
            seen[label] = {"what": "used by " + ", ".join(dict.fromkeys(users[label])),
                           "label": label, "random": r.random_init}
    for store in dict.fromkeys(v.store for v in views):
        fs = FeatureStore(store)
        ids = fs.video_ids()
        recorded = fs.attrs(ids[0]).get("weights") if ids else None
        if isinstance(recorded, dict):
            for name, w in recorded.items():
                label = features_label(name, weights_label(w))
                seen.setdefault(label, {"what": f"recorded in {store}", "label": label,
                                        "random": is_random_init(weights_label(w))})
    return list(seen.values())


def _video_sections(views, figures: dict[str, bytes]) -> list[dict]:
    from jobs.report_thumbs import shot_thumbnails
    from stores.reader import FeatureStore

    stores: dict[str, FeatureStore] = {}
    out = []
    for v in views:
        fs = stores.setdefault(v.store, FeatureStore(v.store))
        methods = []
        for m in v.methods:
            shots = m.selected[:MAX_THUMBS]
            thumbs, note = shot_thumbnails(fs, v.video_id, v.picks, v.change_points, shots)
            caps = [f"{v.change_points[s, 0] / v.fps:.1f}–{(v.change_points[s, 1] + 1) / v.fps:.1f} s"
                    for s in shots]
            methods.append({
                "method": m.method, "f1": _num(m.f1), "n_selected": len(m.selected),
                "seconds": f"{m.summary.sum() / v.fps:.1f}",
                "thumbs": [Thumb(data_uri(t, "image/jpeg"), c) for t, c in zip(thumbs, caps)],
                "note": note if not thumbs or note.startswith("thumbnails decoded") else "",
                "more": max(0, len(m.selected) - len(shots))})
        out.append({"id": v.video_id, "dataset": v.dataset, "seconds": f"{v.seconds:.1f}",
                    "n_segments": len(v.change_points), "n_users": len(v.user_scores),
                    "plot": data_uri(figures[v.video_id], "image/png"), "methods": methods})
    return out


def _per_video_table(per_video) -> tuple[list[str], list[list[str]]]:
    """Rows (method, dataset, video, split, metrics…), metrics averaged over seeds."""
    from jobs.report import METRIC_LABELS

    metrics = [m for m in PER_VIDEO_METRICS if m in set(per_video["metric"])]
    sub = per_video[per_video["metric"].isin(metrics)]
    if sub.empty:
        return [], []
    t = (sub.assign(split=sub["split"].astype(str))
         .groupby(["method", "dataset", "video_id", "split", "metric"])["value"].mean()
         .unstack("metric").reset_index())
    head = ["method", "dataset", "video", "split"] + [METRIC_LABELS[m] for m in metrics]
    rows = [[str(r["method"]), str(r["dataset"]), str(r["video_id"]), str(r["split"])]
            + [_num(r.get(m, np.nan)) for m in metrics] for _, r in t.iterrows()]
    return head, rows


def write_html(path: Path, *, title: str, summary, per_video, views, figures: dict[str, bytes],
               f1_png: bytes | None, notes: list[str], links: list[tuple[str, str]]) -> Path:
    """Render the page to ``path``; every picture is inlined."""
    from jobs.report import METRIC_LABELS, PROTOCOL_NOTE, RANDOM_FOOTNOTE, present_metrics, table_rows

    rows = table_rows(summary, per_video)
    metrics = present_metrics(summary)
    provenance = _provenance(rows, views)
    head, pv_rows = _per_video_table(per_video)
    html = _environment().get_template("report.html.j2").render(
        title=title, generated=dt.datetime.now().strftime("%Y-%m-%d %H:%M"),
        protocol=PROTOCOL_NOTE, notes=notes, provenance=provenance,
        any_random=any(p["random"] for p in provenance), random_footnote=RANDOM_FOOTNOTE,
        datasets=list(dict.fromkeys(r.dataset for r in rows)), rows=rows, metrics=metrics,
        metric_labels=METRIC_LABELS, fmt=_cell, f1_png=data_uri(f1_png, "image/png") if f1_png else "",
        videos=_video_sections(views, figures), pv_head=head, pv_rows=pv_rows, links=links)
    path.write_text(html, encoding="utf-8")
    return path


def _cell(row, metric: str) -> str:
    if metric not in row.cells:
        return "–"
    mean, std = row.cells[metric]
    if not np.isfinite(mean):
        return "–"
    return f"{mean:.3f} ± {std:.3f}" if np.isfinite(std) else f"{mean:.3f}"
