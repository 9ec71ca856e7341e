"""Annotations -> store labels, shared by every importer (TVSum, SumMe, generic JSON).

An importer parses its files into ``AnnotatedVideo`` records; ``import_annotations`` then, per
video, either
  * joins an existing complete video group (labels aligned by time to the decoded frame count,
    the annotation's own frame count and the mismatch recorded in attrs), or
  * creates an annotation-only group (n_frames from the annotation, picks every 15 frames,
    uniform 2-second segments, labels; ``complete`` written last).
Labels written: labels/user_scores float32 [U, n], labels/user_summary uint8 [U, n],
labels/gtscore float32 [T] (at picks).
"""
from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pipeline.errors import StoreError, UsageError
from pipeline.summary import DEFAULT_RATIO, knapsack, shot_lengths, shot_scores, uniform_segments
from stores import layout
from stores.ids import unique_video_ids, video_id_for
from stores.importers.annotated import AnnotatedVideo
from stores.store import Store
from stores.writer import VideoWriter, write_array

VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".webm", ".mov", ".flv", ".mpg", ".mpeg", ".m4v", ".wmv"}
UNIFORM_SEGMENT_S = 2.0


# -- pure helpers ----------------------------------------------------------------------------------
def align_index(n_frames: int, fps: float | None, anno_n: int, anno_fps: float | None) -> np.ndarray:
    """Decoded frame i -> annotation frame index, matched by time (frame centres).

    -> int64 [n_frames] in [0, anno_n). Without both frame rates, frames are matched by
    relative position (the two are assumed to span the same duration).
    """
    i = np.arange(int(n_frames), dtype=np.float64) + 0.5
    if fps and anno_fps:
        j = np.floor(i * float(anno_fps) / float(fps))
    else:
        j = np.floor(i * anno_n / max(int(n_frames), 1))
    return np.clip(j, 0, anno_n - 1).astype(np.int64)


def knapsack_user_summaries(user_scores: np.ndarray, change_points: np.ndarray,
                            ratio: float = DEFAULT_RATIO) -> np.ndarray:
    """TVSum's per-annotator reference summaries: each annotator's shot means, 15% knapsack.

    user_scores [U, n], change_points [S, 2] -> uint8 [U, n]
    """
    n = user_scores.shape[1]
    weights = shot_lengths(change_points)
    out = np.zeros(user_scores.shape, dtype=np.uint8)
    for u, scores in enumerate(user_scores):
        for s in knapsack(shot_scores(scores, change_points), weights, int(ratio * n)):
            first, last = change_points[s]
            out[u, first : last + 1] = 1
    return out


def gtscore_at_picks(user_scores: np.ndarray, picks: np.ndarray, normalize: bool) -> np.ndarray:
    """Mean annotator score at the picks -> float32 [T]; min-max scaled to [0, 1] if asked."""
    g = user_scores[:, picks].mean(axis=0).astype(np.float64)
    if normalize:
        span = g.max() - g.min() if len(g) else 0.0
        g = (g - g.min()) / span if span > 0 else np.zeros_like(g)
    return g.astype(np.float32)


def default_picks(n_frames: int) -> np.ndarray:
    return np.arange(0, int(n_frames), layout.DEFAULT_SAMPLE_EVERY, dtype=np.int32)


def find_videos(videos_dir: str | Path) -> dict[str, str]:
    """Video files under ``videos_dir`` -> {video_id_for(name): store id (as extract assigns)}."""
    files = sorted(str(p) for p in Path(videos_dir).rglob("*") if p.suffix.lower() in VIDEO_EXTS)
    ids = unique_video_ids(files)
    return {video_id_for(f): ids[f] for f in files}


# -- writing ---------------------------------------------------------------------------------------
@dataclass
class ImportResult:
    created: list[str] = field(default_factory=list)
    joined: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)

    def line(self, dataset: str, store: str) -> str:
        return (f"{dataset}: {len(self.created) + len(self.joined)} videos -> {store} "
                f"({len(self.created)} annotation-only, {len(self.joined)} joined, "
                f"{len(self.failed)} failed)")


def _labels(video: AnnotatedVideo, n_frames: int, fps: float | None, picks: np.ndarray,
            change_points: np.ndarray) -> tuple[dict, dict]:
    """Aligned label arrays and the attrs describing the alignment."""
    idx = align_index(n_frames, fps, video.anno_n_frames, video.fps)
    scores = video.user_scores[:, idx].astype(np.float32)
    if video.user_summary is not None:
        summary = (video.user_summary[:, idx] > 0).astype(np.uint8)
        rule = "annotators' selections"
    else:
        summary = knapsack_user_summaries(scores, change_points)
        rule = f"knapsack {DEFAULT_RATIO:.0%} per annotator over segments"
    gts = gtscore_at_picks(scores, picks, normalize=video.user_summary is None)
    arrays = {layout.USER_SCORES: scores, layout.USER_SUMMARY: summary, layout.GTSCORE: gts}
    attrs = {"dataset": video.dataset, "eccv16_key": video.eccv16_key,
             "anno_name": video.name, "anno_source": video.source,
             "anno_n_frames": video.anno_n_frames, "anno_fps": float(video.fps),
             "anno_frame_mismatch": int(n_frames) - video.anno_n_frames,
             "n_annotators": int(scores.shape[0]), "user_summary_rule": rule, **video.attrs}
    return arrays, attrs


def _segments_of(group, n_frames: int, fps: float) -> tuple[np.ndarray, str]:
    if layout.CHANGE_POINTS in group:
        cps = np.asarray(group[layout.CHANGE_POINTS][...], dtype=np.int64).reshape(-1, 2)
        if len(cps):
            return cps, "kts"
    return uniform_segments(n_frames, fps, UNIFORM_SEGMENT_S).astype(np.int64), "uniform-2s"


def _join(group, video: AnnotatedVideo) -> None:
    a = dict(group.attrs)
    n_frames = int(a["n_frames"])
    fps = float(a.get("fps") or 0.0) or None
    if not fps and a.get("duration_s"):
        fps = n_frames / float(a["duration_s"])
    picks = np.asarray(group[layout.PICKS][...], dtype=np.int64)
    cps, seg_rule = _segments_of(group, n_frames, fps or video.fps)
    arrays, attrs = _labels(video, n_frames, fps, picks, cps)
    for path, data in arrays.items():
        write_array(group, path, data)
    group.attrs.update({**attrs, "labels_segments": seg_rule})


def _create(root, vid: str, video: AnnotatedVideo) -> None:
    n = video.anno_n_frames
    picks = default_picks(n)
    cps = uniform_segments(n, video.fps, UNIFORM_SEGMENT_S)
    arrays, attrs = _labels(video, n, video.fps, picks.astype(np.int64), cps.astype(np.int64))
    w = VideoWriter(root, vid)
    w.begin({"source": video.source, "n_frames": n, "n_frames_container": n,
             "fps": float(video.fps), "duration_s": n / float(video.fps),
             "sample": f"every {layout.DEFAULT_SAMPLE_EVERY} frames", "annotation_only": True})
    w.write(layout.PICKS, picks)
    w.write(layout.CHANGE_POINTS, cps)
    w.write(layout.N_FRAME_PER_SEG, (cps[:, 1] - cps[:, 0] + 1).astype(np.int32))
    for path, data in arrays.items():
        w.write(path, data)
    w.finish({**attrs, "labels_segments": "uniform-2s", "segments": "uniform-2s"})


def _open_for_import(store: Store):
    try:
        return store.root()
    except OSError as e:
        raise StoreError(f"cannot create or open the store ({e.strerror or e})", store.url) from None


def import_annotations(videos: list[AnnotatedVideo], store: Store | str,
                       videos_dir: str | None = None, log=None) -> ImportResult:
    """Write every video's labels into ``store`` (a ``stores.Store``, or a path or URL; see the
    module docstring). A bad video is one line on ``log`` and the rest goes on; a store that
    cannot be written raises ``StoreError`` (it would fail the same way for every video)."""
    if videos_dir is not None and not Path(videos_dir).is_dir():
        raise UsageError("--videos is not a folder", videos_dir)
    store = Store.at(store)
    root = _open_for_import(store)
    on_disk = find_videos(videos_dir) if videos_dir else None
    complete_ids = _complete_groups(store, [_store_id(v, on_disk) for v in videos])
    manifest = store.manifest("vsum import")
    result = ImportResult()
    try:
        for video in videos:
            try:
                _import_one(root, video, store, videos_dir, on_disk, manifest, result, complete_ids)
            except (LookupError, ValueError, TypeError) as exc:  # one line; the rest goes on
                msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                print(f"{video.source or video.name}: {msg}", file=log or sys.stderr)
                result.failed.append((video.name, msg))
        manifest.close()
    except OSError as e:  # the store itself: its open manifest part says the index may be stale
        done = len(result.created) + len(result.joined)
        raise StoreError(f"cannot write the store after {done} of {len(videos)} videos "
                         f"({e.strerror or e})", store.url) from None
    return result


def _import_one(root, video: AnnotatedVideo, store: Store, videos_dir, on_disk, manifest,
                result: ImportResult, complete_ids: set[str]) -> None:
    """Join one video's labels to its extracted group, or create an annotation-only group."""
    if on_disk is not None:
        key = video_id_for(video.name)
        if key not in on_disk:
            raise LookupError(f"no video file for {video.name!r} in {videos_dir}")
        vid = on_disk[key]
    else:
        vid = video_id_for(video.name)
    if vid in complete_ids:  # read for every video at once, before the loop
        _join(root[layout.video_group_path(vid)], video)
        manifest.mark_changed(vid)
        result.joined.append(vid)
        return
    if on_disk is not None:
        raise LookupError(f"video {vid!r} is not extracted in {store} (run vsum extract)")
    _create(root, vid, video)
    complete_ids.add(vid)
    result.created.append(vid)
    n = video.anno_n_frames
    manifest.update({"video_id": vid, "source": video.source, "status": "complete", "error": "",
                     "n_frames": n, "fps": float(video.fps), "duration_s": n / float(video.fps),
                     "n_steps": len(default_picks(n))})


def _store_id(video: AnnotatedVideo, on_disk: dict[str, str] | None) -> str | None:
    """The store id the video's labels go to (None: ``--videos`` has no file for it)."""
    key = video_id_for(video.name)
    return key if on_disk is None else on_disk.get(key)


def _complete_groups(store: Store, ids: list[str | None]) -> set[str]:
    """Which of ``ids`` are complete groups, read from the groups themselves (the truth a join
    needs) in one concurrent batch instead of one request after another."""
    from stores.index import GroupReader

    wanted = sorted({v for v in ids if v})
    attrs = GroupReader(store.url, store.storage_options).attrs(wanted)
    return {v for v, a in attrs.items() if a and a.get(layout.COMPLETE)}
