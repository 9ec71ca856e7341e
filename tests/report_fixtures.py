"""A small labelled store and two runs for the report tests.

Three videos of 600 frames at 10 fps (4 annotators each), whose features are recorded as
random-init; thumbnails can come from three places, one video each:
    va  frame shards in the store ([T, 16, 16, 3], a distinct colour per step)
    vb  no shards; its source is a real video file on disk (decoded for thumbnails)
    vc  no shards; its source is gone (thumbnails omitted, with a note)
"""
from __future__ import annotations

import json
import zlib
from pathlib import Path

import numpy as np

from jobs.cli import main as vsum
from pipeline.synth_video import SynthVideoSpec, write_synthetic_video
from stores import layout
from stores.location import open_root
from stores.predictions import write_predictions, write_run_json
from stores.reader import FeatureStore
from stores.writer import write_array

VIDEOS = ["va", "vb", "vc"]
N_FRAMES, FPS = 600, 10.0
WEIGHTS = {"googlenet": "random-init(seed=0)"}


def make_store(d: Path) -> str:
    rng = np.random.default_rng(0)
    videos = []
    for name in VIDEOS:
        base = np.repeat(rng.random(30), 20)  # one value per 2 s
        users = [np.clip(base + 0.15 * np.repeat(rng.standard_normal(30), 20), 0, None)
                 for _ in range(4)]
        videos.append({"name": name, "fps": FPS, "user_scores": np.round(users, 3).tolist()})
    anno = d / "toy.json"
    anno.write_text(json.dumps({"dataset": "toy", "videos": videos}))
    path = str(d / "toy.zarr")
    assert vsum(["import", "json", str(anno), "--store", path]) == 0
    root = open_root(path, "a")
    n_steps = len(FeatureStore(path).load("va", layout.PICKS))
    colours = (np.arange(n_steps)[:, None] * np.array([5, 3, 1]) % 256).astype(np.uint8)
    write_array(root["videos/va"], layout.FRAMES,
                np.broadcast_to(colours[:, None, None, :], (n_steps, 16, 16, 3)).copy())
    clip = d / "vb_source.mp4"
    write_synthetic_video(str(clip), SynthVideoSpec(n_frames=N_FRAMES, width=64, height=48, fps=10,
                                                    preset="ultrafast"))
    sources = {"va": "", "vb": str(clip), "vc": str(d / "gone.mp4")}
    for v in VIDEOS:
        root[f"videos/{v}"].attrs.update({"weights": WEIGHTS, "source": sources[v]})
    return path


def make_run(d: Path, store: str, name: str, scorer) -> str:
    """A run over two splits (va, vb | vc) with googlenet as its features."""
    fs = FeatureStore(store)
    run = d / name
    meta = {"head": "dsn", "features": "googlenet", "dataset": "toy", "setting": "canonical",
            "store": store}
    write_run_json(run, meta)
    for split, vids in ((0, VIDEOS[:2]), (1, VIDEOS[2:])):
        write_predictions(run, split, 0, {v: scorer(fs, v) for v in vids}, meta)
    return str(run)


def oracle(fs, v):
    return fs.load(v, layout.GTSCORE)


def noise(fs, v):
    n = len(fs.load(v, layout.PICKS))
    return np.random.default_rng(zlib.crc32(v.encode())).random(n).astype(np.float32)
