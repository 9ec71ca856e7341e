"""``vsum summarize VIDEO --checkpoint CKPT --out summary.mp4``: what a person looks at.

    VIDEO ─ pass 1 (pipeline/decode.py, streaming) ─► the checkpoint's features at the picks
          ─► KTS shots (pipeline/kts.py) ─► head scores [T] ─► keyshots (pipeline/summary.py,
             knapsack at int(ratio · n_frames))
    VIDEO ─ pass 2 (PyAV demux, streaming) ─► the selected shots' frames, in order, re-encoded
             H.264 (+ the matching audio, AAC, with ``--keep-audio``) ─► summary.mp4
    + summary.json (selected shots: frames, times, scores) + summary.png (score curve, shots)

The checkpoint is self-describing ({"head", "config", "feature_spec", "state_dict"}): its
feature spec names the extractor, the weights the training features came from (a store's
"random-init(seed=0)" is reproduced as ``--weights random``), the sampling rule and the read-time
L2 normalisation. Memory: pass 1 keeps only the per-step features ([T, D]), pass 2 one frame at
a time; the video is never held whole. Audio cut points use nominal frame times (index / fps),
exact for constant-frame-rate video.
"""
from __future__ import annotations

import json
import os
import re
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

from pipeline.errors import EXIT_PARTIAL, InputError, UsageError


def register(sub) -> None:
    p = sub.add_parser("summarize", help="score a video with a trained head and write its summary")
    p.add_argument("video", help="input video file")
    p.add_argument("--checkpoint", required=True, help="a head checkpoint (RUN/split=k/seed=s/checkpoint.pt)")
    p.add_argument("--out", required=True, help="summary video (.mp4); JSON and PNG go beside it")
    p.add_argument("--ratio", type=float, default=0.15, help="summary length / video length (0.15)")
    p.add_argument("--keep-audio", action="store_true", help="keep the selected shots' audio")
    p.add_argument("--weights", default=None,
                   help="extractor weights (pretrained|random|PATH); default: as in the checkpoint")
    p.add_argument("--segments", choices=("kts", "uniform"), default="kts",
                   help="shots from KTS (default) or uniform --shot-seconds blocks")
    p.add_argument("--shot-seconds", type=float, default=2.0, help="block length for --segments uniform")
    p.add_argument("--max-shot-seconds", type=float, default=None,
                   help="cap KTS shot length (default: none, unless no shot fits the ratio)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--crf", type=int, default=23, help="H.264 quality (lower = better, 23)")
    p.set_defaults(func=run)


def check_args(args) -> None:
    """Every option and input checked before torch loads (3-20 s): one line each."""
    if not 0 < args.ratio < 1:
        raise UsageError(f"--ratio must be in (0, 1), got {args.ratio}")
    if not args.shot_seconds > 0:
        raise UsageError(f"--shot-seconds must be > 0, got {args.shot_seconds}")
    if args.max_shot_seconds is not None and not args.max_shot_seconds > 0:
        raise UsageError(f"--max-shot-seconds must be > 0, got {args.max_shot_seconds}")
    if not 0 <= args.crf <= 51:
        raise UsageError(f"--crf must be in 0..51 (H.264), got {args.crf}")
    if not re.fullmatch(r"auto|cpu|cuda(:\d+)?", args.device):
        raise UsageError(f"--device must be auto, cpu, cuda or cuda:N, got {args.device!r}")
    if Path(args.out).is_dir():
        raise UsageError("--out is a folder; give the summary video's file name", args.out)
    check_checkpoint_file(args.checkpoint)
    probe_video(args.video)


def probe_video(video: str) -> None:
    """Open the container once (cheap): a missing, empty or undecodable file is one line."""
    import av

    if not os.path.isfile(video):
        raise InputError("no such video file", video)
    if os.path.getsize(video) == 0:
        raise InputError("empty video file (0 bytes)", video)
    try:
        with av.open(video) as c:
            if not c.streams.video:
                raise InputError("no video stream", video)
    except (av.FFmpegError, ValueError, OSError) as e:
        reason = " ".join(str(getattr(e, "strerror", None) or e).split())[:120]
        raise InputError(f"not a readable video ({reason})", video) from None


def check_checkpoint_file(path: str) -> None:
    """A vsum checkpoint is a PyTorch zip archive (``torch.save``'s format); anything else is
    refused here, before torch loads. What the archive holds is checked by ``load_checkpoint``
    (tensors and plain values only)."""
    import zipfile

    if not os.path.isfile(path):
        raise InputError("checkpoint not found", path)
    if not zipfile.is_zipfile(path):
        raise InputError("not a vsum checkpoint (not a PyTorch zip archive)", path)


def run(args) -> int:
    from pipeline.decode import DecodeError

    check_args(args)
    try:
        result = summarize(args.video, args.checkpoint, args.out, ratio=args.ratio,
                           keep_audio=args.keep_audio, weights=args.weights,
                           segments=args.segments, shot_seconds=args.shot_seconds,
                           max_shot_seconds=args.max_shot_seconds, device=args.device, crf=args.crf)
    except DecodeError as e:  # already names the file and the reason
        raise InputError(str(e)) from None
    n = len(result["shots"])
    print(f"summary: {n} shots, {result['summary_frames']} of {result['n_frames']} frames "
          f"({result['summary_duration_s']:.1f} s) -> {result['outputs']['video'] or '(no video)'}; "
          f"{result['outputs']['json']}, {result['outputs']['plot']}")
    return 0 if n else EXIT_PARTIAL


# -- pass 1: features and scores -----------------------------------------------------------------
def sample_rule_from(text: str | None):
    """The store's ``sample`` attribute ("every 15 frames" / "2.0 fps by …") -> SampleRule."""
    from pipeline.decode import SampleRule

    m = re.match(r"every (\d+) frames", text or "")
    if m:
        return SampleRule(every=int(m.group(1)))
    m = re.match(r"([0-9.]+) fps", text or "")
    return SampleRule(every=None, fps=float(m.group(1))) if m else SampleRule()


def extractor_for(feature_spec: dict, weights: str | None, device: str):
    """Rebuild the extractor the checkpoint's training features came from."""
    from pipeline.features import EXTRACTORS, ExtractorOptions

    recorded = feature_spec.get("store_spec") or {}
    if isinstance(recorded, str):  # only the weights string was recorded (the store's attrs)
        recorded = {"weights": recorded}
    if not recorded or str(recorded.get("weights")) == "synthetic":
        print(f"warning: the checkpoint's {feature_spec['name']!r} features do not come from a "
              "recorded extractor (e.g. a synthetic store); its scores of real features may "
              "mean little", file=sys.stderr)
    if weights is None:
        weights = _recorded_weights(recorded)
    extra = recorded.get("extra") or {}
    opts = ExtractorOptions(weights=weights, device=device,
                            clip_len=int(recorded.get("clip_len", 16) or 16),
                            spatial=extra.get("spatial"), st3d_arch=extra.get("arch", "r3d_18"))
    if feature_spec["name"] not in EXTRACTORS:
        raise InputError(f"the checkpoint was trained on {feature_spec['name']!r} features, which "
                         f"no extractor computes (extractors: {', '.join(EXTRACTORS.names())})")
    extractor = EXTRACTORS.get(feature_spec["name"])(opts)
    want = tuple(feature_spec["shape"])
    if tuple(extractor.spec.feature_shape) != want:
        raise InputError(f"the checkpoint expects {feature_spec['name']} features of shape {want}, "
                         f"the extractor gives {tuple(extractor.spec.feature_shape)}")
    return extractor


def _recorded_weights(recorded: dict) -> str:
    """The ``--weights`` value that reproduces the training features' weights: random,
    pretrained (a torchvision weights name), or the recorded file (which must exist here)."""
    from pipeline.features.catalog import CHECKPOINTS

    w = str(recorded.get("weights", "pretrained"))
    if w.startswith("random-init"):
        return "random"
    if any(c.weights_name in w for c in CHECKPOINTS.values()) or w.startswith("synthetic") or not recorded:
        return "pretrained"  # (synthetic features: warned about above; the extractor's default)
    path = recorded.get("weights_file") or w
    if os.path.isfile(path):
        return path
    from pipeline.errors import WeightsError

    raise WeightsError(f"the checkpoint's features came from weights file {w!r}, not found here; "
                       "pass --weights PATH", file=path)


def extract_features(video: str, extractor, rule, batch_size: int = 32):
    """One streaming decode pass -> (features [T, *shape] float32, picks int64 [T], VideoInfo)."""
    from pipeline.decode import FrameRequest, VideoDecoder, iter_pick_batches

    req = FrameRequest(tuple(extractor.spec.decode_size), extractor.spec.clip_len)
    decoder = VideoDecoder(video, [req], rule)
    feats, picks = [], []
    for batch in iter_pick_batches(decoder, batch_size):
        feats.append(np.asarray(extractor(np.stack([p.images[req] for p in batch])), np.float32))
        picks += [p.frame_index for p in batch]
    return np.concatenate(feats), np.asarray(picks, np.int64), decoder.info


def l2_normalize(x: np.ndarray) -> np.ndarray:
    """Per-step L2 normalisation over the channel axis (as ``FeatureStore.features`` does)."""
    flat = x.reshape(len(x), x.shape[1], -1)
    norm = np.linalg.norm(flat, axis=1, keepdims=True)
    return (flat / np.maximum(norm, 1e-12)).reshape(x.shape)


def score(model, feats: np.ndarray, device) -> np.ndarray:
    """Head scores float64 [T] for features [T, *shape]."""
    import torch

    x = torch.from_numpy(feats).unsqueeze(0).to(device)
    mask = torch.ones(1, len(feats), dtype=torch.bool, device=device)
    with torch.no_grad():
        return model(x, mask)[0].double().cpu().numpy()


# -- the whole command ---------------------------------------------------------------------------
def summarize(video: str, checkpoint: str, out: str, ratio: float = 0.15, keep_audio: bool = False,
              weights: str | None = None, segments: str = "kts", shot_seconds: float = 2.0,
              max_shot_seconds: float | None = None, device: str = "auto", crf: int = 23) -> dict:
    """Write ``out`` (video), ``out``.json and ``out``.png; return the JSON's content."""
    import torch

    from heads.trainer import load_checkpoint
    from jobs.placement import local_device
    from pipeline.summary import select_keyshots, upsample_scores

    if not 0 < ratio < 1:
        raise UsageError(f"--ratio must be in (0, 1), got {ratio}")
    dev = torch.device(local_device(device))  # cuda without a GPU: one line, exit 2
    model, spec, _, ckpt = load_checkpoint(checkpoint, str(dev))
    if spec.predict is not None or spec.inputs != "features":
        raise InputError(f"head {spec.name!r} scores from a store (frames/predict hook); "
                         "summarize supports feature heads", checkpoint)
    fspec = ckpt["feature_spec"]
    extractor = extractor_for(fspec, weights, str(dev))
    feats, picks, info = extract_features(video, extractor, sample_rule_from(fspec.get("sample")))
    n_frames, fps = int(info.n_frames), float(info.fps or 25.0)
    x = l2_normalize(feats) if fspec.get("l2_normalize") else feats
    scores = score(model, x, dev)
    capacity = int(ratio * n_frames)
    step = float(np.median(np.diff(picks))) if len(picks) > 1 else float(n_frames)
    max_steps = None if max_shot_seconds is None else max(1, int(max_shot_seconds * fps / step))
    change_points = shot_boundaries(segments, feats, picks, n_frames, fps, shot_seconds, max_steps)
    summary, selected = select_keyshots(scores, picks, n_frames, change_points, ratio)
    if not len(selected) and segments == "kts" and capacity >= 1:
        # Short clips: KTS often returns shots longer than the whole budget, so nothing fits.
        # Re-cut with shots of at most the budget (in steps) rather than return nothing.
        max_steps = max(1, int(capacity / step))
        print(f"{video}: no KTS shot fits in {capacity} frames; re-segmenting with shots of at "
              f"most {max_steps} steps", file=sys.stderr)
        change_points = shot_boundaries(segments, feats, picks, n_frames, fps, shot_seconds,
                                        max_steps)
        summary, selected = select_keyshots(scores, picks, n_frames, change_points, ratio)
    frame_scores = upsample_scores(scores, picks, n_frames)

    out_path = Path(out)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    shots = []
    for s in sorted(int(i) for i in selected):
        first, last = (int(v) for v in change_points[s])
        shots.append({"shot": s, "start_frame": first, "end_frame": last,
                      "n_frames": last - first + 1, "start_time": first / fps,
                      "end_time": (last + 1) / fps,
                      "score": float(frame_scores[first:last + 1].mean())})
    written = None
    if shots:
        written = write_summary_video(video, str(out_path), summary.astype(bool), keep_audio, fps,
                                      info.rotation, crf)
    result = {
        "video": str(video), "checkpoint": str(checkpoint), "head": ckpt["head"],
        "features": fspec["name"], "weights": extractor.spec.weights,
        "n_frames": n_frames, "fps": fps, "duration_s": n_frames / fps, "n_steps": len(picks),
        "ratio": ratio, "capacity_frames": capacity, "segments": segments,
        "max_shot_steps": max_steps,
        "n_shots": len(change_points), "summary_frames": int(summary.sum()),
        "summary_duration_s": float(summary.sum()) / fps, "audio": bool(written and written["audio"]),
        "shots": shots, "picks": picks.tolist(), "step_scores": [float(v) for v in scores],
        "change_points": np.asarray(change_points).tolist(),
        "outputs": {"video": str(out_path) if written else None,
                    "json": str(out_path.with_suffix(".json")),
                    "plot": str(out_path.with_suffix(".png"))},
    }
    if not shots:
        print(f"{video}: no shot fits in {ratio:.0%} of {n_frames} frames; no summary video written",
              file=sys.stderr)
    Path(result["outputs"]["json"]).write_text(json.dumps(result, indent=1))
    plot_scores(result["outputs"]["plot"], frame_scores, picks, scores, change_points, shots, fps,
                title=f"{Path(video).name} · {ckpt['head']} · {len(shots)} shot(s), "
                      f"{result['summary_duration_s']:.1f} s of {n_frames / fps:.1f} s")
    return result


def shot_boundaries(segments: str, feats, picks, n_frames: int, fps: float, shot_seconds: float,
                    max_steps: int | None) -> np.ndarray:
    """Shots [S, 2] (inclusive frames): KTS on the features (optionally at most ``max_steps``
    steps long) or uniform ``shot_seconds`` blocks."""
    from pipeline.kts import KTSParams, kts_segments
    from pipeline.summary import uniform_segments

    if segments == "uniform":
        return uniform_segments(n_frames, fps, shot_seconds)
    change_points, _ = kts_segments(feats, picks, n_frames, KTSParams(max_segment_steps=max_steps))
    return change_points


# -- pass 2: the summary video -------------------------------------------------------------------
def _video_encoder(container, rate: Fraction, width: int, height: int, crf: int):
    import av

    name = "libx264" if "libx264" in av.codecs_available else "h264"
    try:
        stream = container.add_stream(name, rate=rate)
    except (av.FFmpegError, ValueError):  # no H.264 encoder in this FFmpeg build
        print("warning: no H.264 encoder available; writing MPEG-4 Part 2", file=sys.stderr)
        stream = container.add_stream("mpeg4", rate=rate)
    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
    if stream.codec_context.name.startswith(("libx264", "h264")):
        stream.options = {"crf": str(crf), "preset": "veryfast"}
    return stream


def _kept_intervals(keep: np.ndarray, fps: float) -> np.ndarray:
    """[K, 2] nominal [start, end) seconds of each run of kept frames."""
    edges = np.diff(np.concatenate(([0], keep.astype(np.int8), [0])))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return np.stack([starts, ends], axis=1) / fps


def write_summary_video(src: str, out: str, keep: np.ndarray, keep_audio: bool, fps: float,
                        rotation: int = 0, crf: int = 23) -> dict:
    """Copy the frames with ``keep[i]`` (bool [n_frames]) into ``out``, re-encoded, one frame in
    memory at a time; with ``keep_audio`` also the audio samples inside the kept intervals."""
    import av

    inp = av.open(src)
    try:
        vin = inp.streams.video[0]
        vin.codec_context.thread_type = "SLICE"
        rate = vin.average_rate or vin.guessed_rate or Fraction(fps).limit_denominator(1001)
        k = (rotation // 90) % 4
        w, h = vin.codec_context.width, vin.codec_context.height
        if k % 2:
            w, h = h, w
        w, h = w - w % 2, h - h % 2  # yuv420p needs even sizes
        ain = inp.streams.audio[0] if keep_audio and inp.streams.audio else None
        t0 = float(vin.start_time * vin.time_base) if vin.start_time is not None else 0.0
        intervals = _kept_intervals(keep, float(rate))
        with av.open(out, "w") as outc:
            vout = _video_encoder(outc, rate, w, h, crf)
            aout = None
            if ain is not None:
                aout = outc.add_stream("aac", rate=ain.codec_context.sample_rate)
                aout.layout = ain.codec_context.layout.name
            i, n_out, n_samples = -1, 0, 0
            streams = [vin] + ([ain] if ain is not None else [])
            for packet in inp.demux(*streams):
                for frame in packet.decode():
                    if packet.stream.type == "video":
                        i += 1
                        if i >= len(keep) or not keep[i]:
                            continue
                        if k:
                            img = np.ascontiguousarray(np.rot90(frame.to_ndarray(format="rgb24"), k))
                            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                        frame = frame.reformat(width=w, height=h, format="yuv420p")
                        frame.pts, frame.time_base = n_out, Fraction(1) / rate
                        n_out += 1
                        for pkt in vout.encode(frame):
                            outc.mux(pkt)
                    else:
                        n_samples = _copy_audio(frame, intervals, t0, aout, outc, n_samples)
            for pkt in vout.encode():
                outc.mux(pkt)
            if aout is not None:
                for pkt in aout.encode():
                    outc.mux(pkt)
    finally:
        inp.close()
    return {"frames": n_out, "audio": ain is not None, "audio_samples": n_samples}


def _copy_audio(frame, intervals: np.ndarray, t0: float, aout, outc, written: int) -> int:
    """Re-time the part of an audio frame that falls inside the kept intervals; returns the new
    running sample count (the output's pts)."""
    import av

    if frame.time is None or frame.samples == 0:
        return written
    sr = frame.sample_rate
    start = frame.time - t0
    lo = np.clip(np.round((intervals[:, 0] - start) * sr).astype(np.int64), 0, frame.samples)
    hi = np.clip(np.round((intervals[:, 1] - start) * sr).astype(np.int64), 0, frame.samples)
    pieces = [(a, b) for a, b in zip(lo, hi) if b > a]
    if not pieces:
        return written
    data = frame.to_ndarray()  # planar [channels, samples] / packed [1, samples·channels]
    planar = frame.format.is_planar
    ch = len(frame.layout.channels)
    for a, b in pieces:
        part = data[:, a:b] if planar else data[:, a * ch:b * ch]
        new = av.AudioFrame.from_ndarray(np.ascontiguousarray(part), format=frame.format.name,
                                         layout=frame.layout.name)
        new.sample_rate, new.pts, new.time_base = sr, written, Fraction(1, sr)
        written += b - a
        for pkt in aout.encode(new):
            outc.mux(pkt)
    return written


# -- the picture ---------------------------------------------------------------------------------
def plot_scores(path: str, frame_scores: np.ndarray, picks: np.ndarray, step_scores: np.ndarray,
                change_points, shots: list[dict], fps: float, title: str = "") -> None:
    """Score curve over time, KTS shot boundaries, the selected shots shaded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = np.arange(len(frame_scores)) / fps
    fig, ax = plt.subplots(figsize=(10, 3.2), dpi=100)
    for shot in shots:
        ax.axvspan(shot["start_time"], shot["end_time"], color="tab:orange", alpha=0.35, lw=0)
    for first, _ in np.asarray(change_points)[1:]:
        ax.axvline(first / fps, color="0.75", lw=0.6)
    t = np.append(t, len(frame_scores) / fps)  # the last frame's score lasts one frame
    ax.plot(t, np.append(frame_scores, frame_scores[-1]), color="tab:blue", lw=1.2,
            drawstyle="steps-post", label="score (held from each pick)")
    ax.plot(np.asarray(picks) / fps, step_scores, ".", color="tab:blue", ms=3)
    ax.axvspan(0, 0, color="tab:orange", alpha=0.35, label="selected shots")
    ax.set_xlim(0, max(len(frame_scores) / fps, 1e-6))
    ax.set_xlabel("time (s)")
    ax.set_ylabel("importance")
    ax.set_title(title, fontsize=9, loc="right")
    ax.legend(loc="lower left", bbox_to_anchor=(0, 1.08), ncol=2, fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
