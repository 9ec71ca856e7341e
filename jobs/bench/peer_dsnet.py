"""The peer pipeline of ``vsum bench extract --peer``: video files -> an eccv16 h5, the way DSNet's
``make_dataset.py`` path builds one, written fairly in our own code.

    python -m jobs.bench.peer_dsnet VIDEO... --weights googlenet.pth --out peer.h5 [--every 15]

Per video, as DSNet's ``video_helper`` does: OpenCV reads EVERY frame (``cap.read()`` converts
each to BGR at full size); every ``every``-th one is converted to RGB, resized, normalised and
sent through GoogLeNet alone (batch 1, a contiguous NCHW tensor); pool5 is L2-normalised; then
KTS with the cubic ``cpd_auto`` recipe (``jobs.bench.peer_kts``) and one h5 group per video.

Where we depart from DSNet, on purpose, so the comparison is about speed and not inputs:
- the frame is resized whole to 224×224 (``cv2.INTER_AREA``, antialiased like PIL's resize)
  instead of Resize(256) + CenterCrop(224): the eccv16 convention and what vsum does, so the
  features can be compared step for step;
- the model is torchvision's GoogLeNet called as a whole with ``fc = Identity`` (DSNet slices
  ``children()[:-2]``, which silently skips the ``transform_input`` remap the ImageNet weights
  expect); weights come from the same state-dict file vsum is given;
- one warm-up forward after loading (as a benchmark of ours gets), and CPU, not ``.cuda()``.
Everything else (decode every frame, per-frame conversion, batch 1, cubic KTS) is the peer's.
Exit code: 0 all videos written, 1 some failed (one line each), 2 bad usage or weights.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)
SIZE = 224


def load_googlenet(weights: str):
    """torchvision GoogLeNet from a state-dict file (aux heads ignored), pool5 out, eval mode."""
    import torch
    from torchvision.models import googlenet

    model = googlenet(weights=None, aux_logits=False, init_weights=False, transform_input=True)
    model.fc = torch.nn.Identity()
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = {k: v for k, v in state.items() if not k.startswith(("aux1.", "aux2.", "fc."))}
    model.load_state_dict(state)
    model.eval()
    with torch.no_grad():  # warm-up: allocator and kernel selection outside the timing
        model(torch.zeros(1, 3, SIZE, SIZE))
    return model


def frame_feature(model, bgr: np.ndarray) -> np.ndarray:
    """One BGR frame uint8 [H, W, 3] -> L2-normalised pool5 float32 [1024] (batch of 1)."""
    import cv2
    import torch

    rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
    img = cv2.resize(rgb, (SIZE, SIZE), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(img).permute(2, 0, 1).float().div(255)
    x = ((x - torch.tensor(MEAN).view(3, 1, 1)) / torch.tensor(STD).view(3, 1, 1))[None].contiguous()
    with torch.no_grad():
        feat = model(x)[0].numpy()
    return feat / (np.linalg.norm(feat) + 1e-10)


def video_features(model, path: str, every: int = 15, clock: dict | None = None
                   ) -> tuple[int, np.ndarray]:
    """(frames read, features [ceil(n / every), 1024]) of one video, reading every frame.
    ``clock``: seconds spent decoding (``decode_s``) and in the CNN step (``cnn_s``) added to it."""
    import cv2

    clock = {} if clock is None else clock
    cap = cv2.VideoCapture(path)
    if not cap.isOpened():
        raise ValueError(f"{path}: OpenCV cannot open it")
    feats, n = [], 0
    try:
        while True:
            t0 = time.perf_counter()
            ok, frame = cap.read()
            t1 = time.perf_counter()
            clock["decode_s"] = clock.get("decode_s", 0.0) + t1 - t0
            if not ok:
                break
            if n % every == 0:
                feats.append(frame_feature(model, frame))
                clock["cnn_s"] = clock.get("cnn_s", 0.0) + time.perf_counter() - t1
            n += 1
    finally:
        cap.release()
    if n == 0:
        raise ValueError(f"{path}: no frames decoded")
    return n, np.asarray(feats, dtype=np.float32)


def write_video(h5, key: str, name: str, n_frames: int, feats: np.ndarray, every: int) -> None:
    from jobs.bench.peer_kts import peer_segments

    cps, nfps, picks = peer_segments(feats, n_frames, every)
    g = h5.create_group(key)
    g["features"] = feats
    g["change_points"] = cps
    g["n_frame_per_seg"] = nfps
    g["n_frames"] = n_frames
    g["picks"] = picks
    g["video_name"] = name


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="peer_dsnet", description=__doc__.splitlines()[0])
    ap.add_argument("videos", nargs="+")
    ap.add_argument("--weights", required=True, help="GoogLeNet state dict (torchvision keys)")
    ap.add_argument("--out", required=True, help="eccv16 h5 to write")
    ap.add_argument("--every", type=int, default=15, help="sample rate (DSNet's default 15)")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's, as DSNet)")
    ap.add_argument("--timings", default=None,
                    help="write seconds per stage (decode, cnn, kts, videos) and images here as JSON")
    args = ap.parse_args(argv)
    import h5py
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)

    try:
        model = load_googlenet(args.weights)
    except (OSError, RuntimeError) as e:
        print(f"peer_dsnet: cannot load GoogLeNet weights: {' '.join(str(e).split())[:200]} "
              f"({args.weights})", file=sys.stderr)
        return 2
    failed, clock, start = 0, {"decode_s": 0.0, "cnn_s": 0.0, "kts_s": 0.0}, time.perf_counter()
    with h5py.File(args.out, "w") as h5:
        for idx, path in enumerate(args.videos):
            try:
                n_frames, feats = video_features(model, path, args.every, clock)
            except ValueError as e:
                print(f"peer_dsnet: {e}", file=sys.stderr)
                failed += 1
                continue
            clock["images"] = clock.get("images", 0) + len(feats)
            t = time.perf_counter()
            write_video(h5, f"video_{idx}", Path(path).stem, n_frames, feats, args.every)
            clock["kts_s"] += time.perf_counter() - t  # (KTS and the h5 write: KTS dominates)
    clock["videos_s"] = time.perf_counter() - start  # after loading the model
    if args.timings:
        Path(args.timings).write_text(json.dumps(clock))
    print(f"peer_dsnet: {len(args.videos) - failed} videos -> {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
