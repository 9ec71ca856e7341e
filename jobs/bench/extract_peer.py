"""``vsum bench extract --peer``: video files -> eccv16 h5, vsum against the DSNet-style peer.

Both sides start the same way, as commands in fresh processes on the same videos, with the
same GoogLeNet state dict (planted here: torchvision's layout, seeded Kaiming init) and the
same picks (every 15th frame):

    vsum:  vsum extract V... --store S --weights W  &&  vsum store export-h5 S out.h5 --l2-normalize
    peer:  python -m jobs.bench.peer_dsnet V... --weights W --out peer.h5

Wall seconds of each side at every count of videos (the first n of the same generated set),
the sides alternating so load drifts hit both, and the features' agreement: the lowest cosine
between the two files' features over every step of every video (same weights and picks, so
only the two decoders' resize differs). JSON: ``peer.<n>.peer_s|vsum_s|ratio|cosine_min``.
``--peer-backends eager,onnx`` times vsum once per backend (each beside the same peer run; the
first is the one in ``vsum_s``); the peer's own stage times bound what any vsum could gain.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def peer_videos(workdir: Path, n: int, seconds: float, size: tuple[int, int] = (640, 360)
                ) -> list[Path]:
    """n distinct generated H.264 videos (seed = index), cached in ``workdir``."""
    from pipeline.synth_video import SynthVideoSpec, write_synthetic_video

    w, h = size
    workdir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        path = workdir / f"peer_{i:02d}_{seconds:g}s_{w}x{h}.mp4"
        if not path.exists():
            print(f"generating {path}…", flush=True)
            tmp = path.with_suffix(".tmp.mp4")
            write_synthetic_video(str(tmp), SynthVideoSpec(n_frames=int(seconds * 30), width=w,
                                                           height=h, fps=30, seed=i, crf=30))
            tmp.rename(path)
        paths.append(path)
    return paths


def planted_googlenet(path: Path, seed: int = 0) -> Path:
    """A torchvision-layout GoogLeNet state dict (aux heads included, as the real checkpoint
    has them) with seeded Kaiming conv weights, so pool5 features are O(1), not ~1e-13."""
    import torch
    from torchvision.models import googlenet

    if path.exists():
        return path
    torch.manual_seed(seed)
    model = googlenet(weights=None, aux_logits=True, init_weights=False)
    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            torch.nn.init.kaiming_normal_(m.weight, mode="fan_in", nonlinearity="relu")
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return path


def _run(cmd: list[str], log: Path) -> float:
    """Wall seconds of one command; its output goes to ``log``; a failure raises."""
    t = time.perf_counter()
    with open(log, "ab") as f:
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=True)
    return time.perf_counter() - t


def run_vsum(videos: list[Path], weights: Path, out_h5: Path, work: Path, backend: str = "eager"
             ) -> float:
    from jobs.bench.common import vsum_command

    store = work / f"vsum_{backend}.zarr"
    log = work / "vsum.log"
    t = _run([*vsum_command(), "extract", *map(str, videos), "--store", str(store),
              "--weights", str(weights), "--backend", backend], log)
    t += _run([*vsum_command(), "store", "export-h5", str(store), str(out_h5), "--l2-normalize"], log)
    return t


def run_peer(videos: list[Path], weights: Path, out_h5: Path, work: Path) -> tuple[float, dict]:
    """(wall seconds, the peer's own seconds per stage: decode_s, cnn_s, kts_s, videos_s)."""
    stages = work / "peer_stages.json"
    t = _run([sys.executable, "-m", "jobs.bench.peer_dsnet", *map(str, videos),
              "--weights", str(weights), "--out", str(out_h5), "--timings", str(stages)],
             work / "peer.log")
    return t, json.loads(stages.read_text())


def compare_h5(vsum_h5: Path, peer_h5: Path) -> dict:
    """Per video name: same picks and n_frames; lowest per-step cosine; same change points."""
    import h5py

    def by_name(h5):
        return {(g["video_name"][()].decode() if isinstance(g["video_name"][()], bytes)
                 else str(g["video_name"][()])): g for g in h5.values()}

    cos_min, same_cps, n = 1.0, 0, 0
    with h5py.File(vsum_h5, "r") as a, h5py.File(peer_h5, "r") as b:
        ours, peer = by_name(a), by_name(b)
        if set(ours) != set(peer):
            raise RuntimeError(f"videos differ: vsum {sorted(ours)} vs peer {sorted(peer)}")
        for name, g in ours.items():
            p = peer[name]
            if int(g["n_frames"][()]) != int(p["n_frames"][()]) or not np.array_equal(
                    g["picks"][...], p["picks"][...]):
                raise RuntimeError(f"{name}: frames or picks differ between vsum and the peer")
            x, y = g["features"][...].astype(np.float64), p["features"][...].astype(np.float64)
            cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1) + 1e-12)
            cos_min = min(cos_min, float(cos.min()))
            same_cps += int(np.array_equal(g["change_points"][...], p["change_points"][...]))
            n += 1
    return {"cosine_min": cos_min, "videos_same_change_points": same_cps, "videos": n}


def peer_rows(workdir: Path, counts: tuple[int, ...], seconds: float,
              backends: tuple[str, ...] = ("eager",)) -> dict:
    """{n: {peer_s, vsum_s, ratio, cosine_min, ...}} for each count of videos. ``vsum_s``,
    ``ratio`` and ``cosine_min`` are vsum's first backend (its default, eager); each other
    backend b adds ``<b>.vsum_s``, ``<b>.ratio``, ``<b>.cosine_min``. ``peer_stages``: the
    peer's own seconds decoding, in the CNN step (convert, resize, forward) and in KTS."""
    videos = peer_videos(workdir / "peer_videos", max(counts), seconds)
    weights = planted_googlenet(workdir / "googlenet_planted.pth")
    out = {}
    for n in counts:
        work = Path(tempfile.mkdtemp(prefix=f"vsum-bench-peer{n}-"))
        try:
            print(f"peer vs vsum on {n} video(s)…", flush=True)
            peer_s, stages = run_peer(videos[:n], weights, work / "peer.h5", work)
            row = {"peer_s": peer_s, "peer_s_per_video": peer_s / n, "peer_stages": stages}
            for backend in backends:
                h5 = work / f"vsum_{backend}.h5"
                vsum_s = run_vsum(videos[:n], weights, h5, work, backend)
                agree = compare_h5(h5, work / "peer.h5")
                mine = {"vsum_s": vsum_s, "ratio": peer_s / vsum_s, "vsum_s_per_video": vsum_s / n,
                        **agree}
                if backend == backends[0]:
                    row.update(mine)
                else:
                    row[backend] = mine
        except subprocess.CalledProcessError as e:
            logs = " ".join(str(p) for p in work.glob("*.log"))
            raise RuntimeError(f"{e.cmd[0]} failed (exit {e.returncode}); logs kept: {logs}") from None
        shutil.rmtree(work, ignore_errors=True)
        out[str(n)] = row
    return out


def peer_table(rows: dict, seconds: float, backends: tuple[str, ...] = ("eager",)
               ) -> list[tuple[str, str, str]]:
    out = []
    for n, r in rows.items():
        target = " (target >= 3x)" if n == "16" else ""
        for backend in backends:
            b = vsum_side(r, backend, backends)
            out.append((f"peer {n} video(s), {seconds:g} s each, vsum --backend {backend}",
                        f"{r['peer_s_per_video']:.1f} / {b['vsum_s_per_video']:.1f} s",
                        f"per video, peer / vsum: {b['ratio']:.2f}x{target}; cosine min "
                        f"{b['cosine_min']:.5f}; same KTS cuts {b['videos_same_change_points']}/{b['videos']}"))
        st = r["peer_stages"]
        total, images = st["videos_s"], st["images"]
        out.append((f"  the peer's {n}-video run by stage", f"{total:.1f} s",
                    f"decode {st['decode_s'] / total:.0%}, CNN step {st['cnn_s'] / total:.0%} "
                    f"({images / st['cnn_s']:.1f} img/s), KTS + h5 {st['kts_s'] / total:.0%}; 3x "
                    f"faster than the peer = its {images} GoogLeNet forwards at >= "
                    f"{3 * images / r['peer_s']:.1f} img/s with nothing else costing anything"))
    out += marginal_rows(rows, backends)
    return out


def vsum_side(row: dict, backend: str, backends: tuple[str, ...]) -> dict:
    """One count's vsum figures for ``backend``: the first backend's sit in the row itself."""
    return row if backend == backends[0] else row[backend]


def marginal_rows(rows: dict, backends: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """Seconds per added video between the two largest counts (fixed costs cancel out)."""
    if len(rows) < 2:
        return []
    (n1, r1), (n2, r2) = sorted(rows.items(), key=lambda kv: int(kv[0]))[-2:]
    added = int(n2) - int(n1)
    peer = (r2["peer_s"] - r1["peer_s"]) / added
    out = []
    for backend in backends:
        a, b = vsum_side(r1, backend, backends), vsum_side(r2, backend, backends)
        ours = (b["vsum_s"] - a["vsum_s"]) / added
        fixed = a["vsum_s"] - ours * int(n1)
        out.append((f"each video added from {n1} to {n2}, vsum --backend {backend}",
                    f"{peer:.1f} / {ours:.1f} s",
                    f"peer / vsum: {peer / ours:.2f}x once start-up is paid (vsum's fixed part: "
                    f"{fixed:.0f} s; start-up, model, final manifest, export)"))
    return out
