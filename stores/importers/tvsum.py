"""TVSum (Song et al., CVPR 2015): 50 videos x 20 annotators, per-frame importance 1..5.

Two inputs give the same annotations:
  ydata-tvsum50.mat       MATLAB v7.3 (HDF5, read with h5py): struct ``tvsum50`` with fields
                          video, category, title, length (s), nframes, user_anno [20, n], gt_score
  ydata-tvsum50-anno.tsv  1000 rows "video_id<TAB>category<TAB>s1,s2,..." (20 rows a video);
                          no frame rate in it, so ``fps`` is an argument (TVSum is ~29.97 fps)
eccv16 keys: ``video_k`` follows the file order (k from 1). Reference summaries are derived per
annotator by the 15% knapsack over the video's segments (see stores/importers/common.py).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from stores.importers.annotated import AnnotatedVideo

DATASET = "tvsum"
TSV_DEFAULT_FPS = 29.97


def _mat_string(f, ref) -> str:
    return "".join(chr(int(c)) for c in np.asarray(f[ref]).ravel())


def read_tvsum_mat(path: str | Path) -> list[AnnotatedVideo]:
    import h5py

    path = Path(path)
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise ValueError(f"{path}: not a MATLAB v7.3 (HDF5) file ({exc})") from None
    with f:
        if "tvsum50" not in f:
            raise ValueError(f"{path}: no 'tvsum50' struct (is this ydata-tvsum50.mat?)")
        t = f["tvsum50"]
        out = []
        for k in range(t["video"].shape[0]):
            name = _mat_string(f, t["video"][k, 0])
            anno = np.asarray(f[t["user_anno"][k, 0]], dtype=np.float32)  # [20, n]
            n = int(np.asarray(f[t["nframes"][k, 0]]).ravel()[0])
            length = float(np.asarray(f[t["length"][k, 0]]).ravel()[0])
            if anno.shape[1] != n and anno.shape[0] == n:
                anno = anno.T
            out.append(AnnotatedVideo(
                name=name, dataset=DATASET, eccv16_key=f"video_{k + 1}", user_scores=anno,
                fps=n / length, source=f"{path}#{name}",
                attrs={"category": _mat_string(f, t["category"][k, 0]),
                       "title": _mat_string(f, t["title"][k, 0])}))
    return out


def read_tvsum_tsv(path: str | Path, fps: float = TSV_DEFAULT_FPS) -> list[AnnotatedVideo]:
    path = Path(path)
    rows: dict[str, list[np.ndarray]] = {}
    category: dict[str, str] = {}
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split("\t")
        if len(parts) != 3:
            raise ValueError(f"{path}:{lineno}: expected 3 tab-separated columns, got {len(parts)}")
        vid, cat, scores = parts
        try:
            rows.setdefault(vid, []).append(np.array(scores.split(","), dtype=np.float32))
        except ValueError:
            raise ValueError(f"{path}:{lineno}: scores are not comma-separated numbers") from None
        category[vid] = cat
    out = []
    for k, (vid, users) in enumerate(rows.items()):
        if len({len(u) for u in users}) != 1:
            raise ValueError(f"{path}: annotators of {vid} disagree on the frame count")
        out.append(AnnotatedVideo(
            name=vid, dataset=DATASET, eccv16_key=f"video_{k + 1}", user_scores=np.stack(users),
            fps=float(fps), source=f"{path}#{vid}",
            attrs={"category": category[vid], "fps_assumed": True}))
    return out


def read_tvsum(path: str | Path, fps: float = TSV_DEFAULT_FPS) -> list[AnnotatedVideo]:
    """Either form, by extension (.mat or .tsv)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    if path.suffix.lower() == ".mat":
        return read_tvsum_mat(path)
    if path.suffix.lower() in (".tsv", ".txt"):
        return read_tvsum_tsv(path, fps)
    raise ValueError(f"{path}: expected ydata-tvsum50.mat or ydata-tvsum50-anno.tsv")
