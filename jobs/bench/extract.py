"""``vsum bench extract``: the extraction path, as ratios measured in one run.

On a generated 640×360 30 fps H.264 video (3 minutes by default):
  (a) decode+sample (every 15th frame to 224×224 RGB) vs the ffmpeg CLI doing the same
      selection and scaling into a raw pipe (skipped with a note when ffmpeg is absent);
  (b) full extraction wall (decode → GoogLeNet → store, no KTS) vs decode-only + model-only
      (GoogLeNet on the same frames, pre-decoded);
  (c) our extraction vs a naive loop: every frame converted at full size, resized in torch,
      batch of 1, contiguous fp32 model — the pattern of public extractors;
  (d) peak RSS of extracting the video in a fresh process (``--long-minutes N`` adds an N-minute
      video, e.g. 30, to show memory stays flat with length);
  (e) with ``--features googlenet,st3d,i3d``: one decode pass feeding all extractors vs decode +
      each extractor's model-only time, clips/s per extractor, store bytes per minute.
Prints a table; writes JSON to ``--out``.
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


def register(sub) -> None:
    p = sub.add_parser("extract", help="decode / extraction vs ffmpeg, model-only and a naive loop")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--long-minutes", type=float, default=0.0, help="also measure peak RSS on an N-minute video")
    p.add_argument("--features", default="googlenet")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", default="bench_out/extract", help="cache for generated videos")
    p.add_argument("--naive-picks", type=int, default=60, help="picks timed for the naive loop (it is slow)")
    p.add_argument("--multi-seconds", type=float, default=20.0,
                   help="length of the video used for the multi-extractor row (e)")
    p.add_argument("--out", default="bench_out/extract.json")
    # Separate benches, each in its own module (jobs/bench/extract_gpu.py, extract_startup.py):
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"],
                   help="cuda: the GPU data path bench (decode share, img/s and clips/s, GPU memory, "
                        "1 and N actors per GPU; says so and exits 0 without a GPU)")
    p.add_argument("--actors-per-gpu", type=int, default=4, help="with --device cuda: N of the N-actor row")
    p.add_argument("--startup", action="store_true",
                   help="start-up rows only: vsum extract's no-op re-run and a one-video run")
    p.set_defaults(func=run_cli)


def _video(workdir: Path, minutes: float) -> Path:
    from pipeline.synth_video import SynthVideoSpec, write_synthetic_video

    path = workdir / f"synth_{minutes:g}min_640x360.mp4"
    if not path.exists():
        workdir.mkdir(parents=True, exist_ok=True)
        n = int(minutes * 60 * 30)
        print(f"generating {path} ({n} frames)…", flush=True)
        tmp = path.with_suffix(".tmp.mp4")
        write_synthetic_video(str(tmp), SynthVideoSpec(n_frames=n, width=640, height=360, fps=30,
                                                       shot_lengths=None, crf=30))
        tmp.rename(path)
    return path


def _timed(fn):
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def decode_only(path: Path, size=(224, 224)) -> tuple[int, np.ndarray]:
    from pipeline.decode import FrameRequest, VideoDecoder

    req = FrameRequest(size)
    frames = [p.images[req] for p in VideoDecoder(str(path), [req])]
    return len(frames), np.stack(frames)


def ffmpeg_decode(path: Path, size=(224, 224)) -> int | None:
    """Same selection (every 15th decoded frame) and scaling, into a raw pipe we read."""
    exe = shutil.which("ffmpeg")
    if not exe:
        return None
    h, w = size
    cmd = [exe, "-v", "error", "-threads", "1", "-i", str(path), "-vf",
           f"select=not(mod(n\\,15)),scale={w}:{h}", "-fps_mode", "passthrough",
           "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE)
    n, frame_bytes = 0, h * w * 3
    while True:
        buf = proc.stdout.read(frame_bytes)
        if len(buf) < frame_bytes:
            break
        n += 1
    proc.wait()
    return n


def naive_loop(path: Path, max_picks: int) -> tuple[float, int]:
    """Public-extractor pattern: convert every frame at full size, resize in torch, batch 1."""
    import av
    import torch
    import torch.nn.functional as F
    from torchvision.models import googlenet

    model = googlenet(weights=None, aux_logits=False, init_weights=True)
    model.fc = torch.nn.Identity()
    model.eval()
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    n = 0
    t = time.perf_counter()
    with av.open(str(path)) as c, torch.no_grad():
        for i, frame in enumerate(c.decode(video=0)):
            img = frame.to_ndarray(format="rgb24")  # full size, every frame
            if i % 15:
                continue
            x = torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255
            x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False)
            model((x - mean) / std)
            n += 1
            if n >= max_picks:
                break
    return time.perf_counter() - t, n


def peak_rss_of_extraction(path: Path, features: str) -> float:
    """Extract in a fresh process; its peak RSS in MB (ru_maxrss of the child)."""
    code = (
        "import resource, sys, tempfile\n"
        "from jobs.extract_video import ExtractConfig, extract_one\n"
        "from pipeline.features import build_extractors, ExtractorOptions\n"
        "from stores.location import open_root\n"
        f"ex = build_extractors({features.split(',')!r}, ExtractorOptions(weights='random'))\n"
        "root = open_root(tempfile.mkdtemp() + '/s.zarr', 'a')\n"
        f"row = extract_one({str(path)!r}, 'v', root, ex, ExtractConfig(features=tuple({features.split(',')!r})))\n"
        "assert row['status'] == 'complete', row\n"
        "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return float(out.stdout.strip().splitlines()[-1])


def run_cli(args) -> int:
    if args.device == "cuda":
        from jobs.bench.extract_gpu import run_gpu_bench

        return run_gpu_bench(args)
    if args.startup:
        from jobs.bench.extract_startup import run_startup_bench

        return run_startup_bench(args)
    import torch

    from jobs.extract_video import ExtractConfig, extract_one
    from pipeline.features import ExtractorOptions, build_extractors
    from stores.location import open_root

    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    video = _video(workdir, args.minutes)
    names = [n for n in args.features.split(",") if n]
    results: dict = {"video": str(video), "minutes": args.minutes, "threads": args.threads}

    # (a) decode+sample vs ffmpeg CLI
    t_dec, (n_picks, frames) = _timed(lambda: decode_only(video))
    t_ff, n_ff = _timed(lambda: ffmpeg_decode(video))
    results["a"] = {"ours_s": t_dec, "picks": n_picks,
                    "ffmpeg_s": t_ff if n_ff is not None else None, "ffmpeg_frames": n_ff,
                    "ratio_ours_over_ffmpeg": (t_dec / t_ff) if n_ff else None}

    # (b) full extraction vs decode-only + model-only (GoogLeNet)
    opts = ExtractorOptions(weights="random", batch_size=32)
    (g,) = build_extractors(["googlenet"], opts)
    g(frames[:32])  # warm-up
    t = time.perf_counter()
    g(frames)
    t_model = time.perf_counter() - t
    del frames
    store = tempfile.mkdtemp(prefix="vsum-bench-")
    try:
        root = open_root(f"{store}/s.zarr", "a")
        cfg = ExtractConfig(features=("googlenet",), kts=None)
        t_full, row = _timed(lambda: extract_one(str(video), "v", root, [g], cfg))
        assert row["status"] == "complete", row
        cfg_seq = ExtractConfig(features=("googlenet",), kts=None, threaded_decode=False)
        t_seq, _ = _timed(lambda: extract_one(str(video), "v2", root, [g], cfg_seq))
    finally:
        shutil.rmtree(store, ignore_errors=True)
    results["b"] = {"extract_s": t_full, "extract_unthreaded_s": t_seq, "decode_s": t_dec,
                    "model_s": t_model, "ratio_extract_over_sum": t_full / (t_dec + t_model),
                    "model_img_per_s": n_picks / t_model}

    # (c) naive loop, timed on the first picks and scaled per pick
    t_naive, n_naive = naive_loop(video, args.naive_picks)
    per_pick_naive, per_pick_ours = t_naive / n_naive, t_full / n_picks
    results["c"] = {"naive_s_per_pick": per_pick_naive, "ours_s_per_pick": per_pick_ours,
                    "naive_picks_timed": n_naive, "speedup": per_pick_naive / per_pick_ours}

    # (d) peak RSS in a fresh process
    results["d"] = {f"{args.minutes:g}min_peak_rss_mb": peak_rss_of_extraction(video, "googlenet")}
    if args.long_minutes:
        long_video = _video(workdir, args.long_minutes)
        results["d"][f"{args.long_minutes:g}min_peak_rss_mb"] = peak_rss_of_extraction(long_video, "googlenet")

    # (e) several extractors from one decode pass
    if len(names) > 1 or names != ["googlenet"]:
        from jobs.bench.extract_multi_run import multi_extractor_rows

        results["e"] = multi_extractor_rows(workdir, names, args.multi_seconds)

    _print_table(results)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))
    print(f"wrote {args.out}")
    return 0


def _print_table(r: dict) -> None:
    a, b, c, d = r["a"], r["b"], r["c"], r["d"]
    rows = [
        ("(a) decode+sample, ours", f"{a['ours_s']:.2f} s", f"{a['picks']} picks"),
        ("(a) same via ffmpeg CLI", f"{a['ffmpeg_s']:.2f} s" if a["ffmpeg_s"] else "skipped (no ffmpeg)",
         f"ratio ours/ffmpeg = {a['ratio_ours_over_ffmpeg']:.2f} (target <= 1.0)" if a["ffmpeg_s"] else ""),
        ("(b) extraction wall (threaded decode)", f"{b['extract_s']:.2f} s",
         f"vs decode {b['decode_s']:.2f} + model {b['model_s']:.2f}: ratio {b['ratio_extract_over_sum']:.2f} (target <= 1.0)"),
        ("(b) extraction wall (decode not overlapped)", f"{b['extract_unthreaded_s']:.2f} s",
         f"model {b['model_img_per_s']:.1f} img/s"),
        ("(c) naive loop per pick", f"{c['naive_s_per_pick'] * 1000:.0f} ms",
         f"ours {c['ours_s_per_pick'] * 1000:.0f} ms: speedup {c['speedup']:.2f}x (target >= 3)"),
    ]
    rows += [(f"(d) peak RSS {k.split('_')[0]}", f"{v:.0f} MB", "target < 2048 MB for 30 min") for k, v in d.items()]
    for row in r.get("e", {}).get("rows", []):
        rows.append(tuple(row))
    w0 = max(len(x[0]) for x in rows)
    w1 = max(len(x[1]) for x in rows)
    print(f"\nvsum bench extract — {r['minutes']:g} min 640x360 30 fps H.264, {r['threads']} torch threads")
    for x in rows:
        print(f"  {x[0]:<{w0}}  {x[1]:>{w1}}  {x[2]}")


if __name__ == "__main__":
    from jobs.cli import main

    sys.exit(main(["bench", "extract", *sys.argv[1:]]))
