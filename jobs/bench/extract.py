"""``vsum bench extract``: the extraction path, as ratios measured in one run.

On a generated 640×360 30 fps H.264 video (3 minutes by default):
  (a) decode+sample (every 15th frame to 224×224 RGB) vs the ffmpeg CLI doing the same
      selection and scaling into a raw pipe (skipped with a note when ffmpeg is absent);
  (b) full extraction wall (decode → GoogLeNet → store, no KTS) vs decode-only + model-only
      (GoogLeNet on the same frames, pre-decoded);
  (d) ``--long-minutes N`` (e.g. 30): peak memory of the whole ``vsum extract`` job on an
      N-minute low-resolution video with ``--long-features`` (default googlenet,st3d and frames
      128), PSS over time (``jobs.bench.extract_long``). At 30 minutes that is 3,600 picks:
      r3d_18 at ~1.3 clips/s makes it a ~45-minute run on two quiet cores;
  (e) with ``--features googlenet,st3d,i3d``: one decode pass feeding all extractors vs decode +
      each extractor's model-only time, clips/s per extractor, store bytes per minute.
``--peer`` instead runs only the end-to-end comparison with the DSNet-style peer pipeline (video
files -> eccv16 h5, both sides as commands) at ``--peer-videos`` counts (``jobs.bench.extract_peer``).
Prints a table; writes JSON to ``--out``.
"""
from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np


def register(sub) -> None:
    p = sub.add_parser("extract", help="decode / extraction vs ffmpeg and model-only; --peer: vs the DSNet-style peer")
    p.add_argument("--minutes", type=float, default=3.0)
    p.add_argument("--long-minutes", type=float, default=0.0,
                   help="also measure the whole job's peak memory on an N-minute video (e.g. 30)")
    p.add_argument("--long-features", default="googlenet,st3d", help="extractors for the long video")
    p.add_argument("--long-frames", type=int, default=128, help="frames SIZE for the long video (0: none)")
    p.add_argument("--features", default="googlenet")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", default="bench_out/extract", help="cache for generated videos")
    p.add_argument("--multi-seconds", type=float, default=20.0,
                   help="length of the video used for the multi-extractor row (e)")
    p.add_argument("--peer", action="store_true",
                   help="only the end-to-end comparison with the DSNet-style peer pipeline")
    p.add_argument("--peer-videos", default="1,4,16", help="counts of videos for --peer")
    p.add_argument("--peer-seconds", type=float, default=30.0, help="length of each --peer video")
    p.add_argument("--peer-backends", default="eager",
                   help="vsum --backend values to time against the peer, e.g. eager,onnx")
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


def run_cli(args) -> int:
    """One mode per flag; the default is the single-video rows (a), (b), (d), (e)."""
    if args.device == "cuda":
        from jobs.bench.extract_gpu import run_gpu_bench

        return run_gpu_bench(args)
    if args.startup:
        from jobs.bench.extract_startup import run_startup_bench

        return run_startup_bench(args)
    if args.peer:
        return peer_cli(args)
    return rows_cli(args)


def _finish(args, results: dict, title: str, rows: list[tuple[str, str, str]]) -> int:
    from jobs.bench.common import machine_load, write_json

    results["machine"] = machine_load()  # after the run: what it ran under
    w0 = max(len(x[0]) for x in rows)
    w1 = max(len(x[1]) for x in rows)
    print(f"\n{title}; load (1 min) {results['machine']['load_1min']} on "
          f"{results['machine']['cpus']} cores")
    for x in rows:
        print(f"  {x[0]:<{w0}}  {x[1]:>{w1}}  {x[2]}")
    write_json(args.out, results)
    print(f"wrote {args.out}")
    return 0


def peer_cli(args) -> int:
    """``--peer``: video files -> eccv16 h5, vsum vs the DSNet-style peer, at each count."""
    from jobs.bench.extract_peer import peer_rows, peer_table
    from pipeline.errors import UsageError

    try:
        counts = tuple(int(n) for n in args.peer_videos.split(",") if n.strip())
    except ValueError:
        raise UsageError(f"--peer-videos {args.peer_videos!r}: expected counts like 1,4,16") from None
    if not counts or min(counts) < 1:
        raise UsageError(f"--peer-videos {args.peer_videos!r}: counts must be >= 1")
    backends = tuple(b.strip() for b in args.peer_backends.split(",") if b.strip())
    if not backends or set(backends) - {"eager", "compile", "onnx"}:
        raise UsageError(f"--peer-backends {args.peer_backends!r}: expected eager, compile, onnx")
    rows = peer_rows(Path(args.workdir), counts, args.peer_seconds, backends)
    results = {"peer": rows, "peer_seconds": args.peer_seconds, "video_size": "640x360 30 fps",
               "peer_backends": list(backends)}
    return _finish(args, results, f"vsum bench extract --peer: {args.peer_seconds:g} s 640x360 "
                   "videos -> eccv16 h5, both sides as commands",
                   peer_table(rows, args.peer_seconds, backends))


def rows_cli(args) -> int:
    import torch

    from jobs.bench.common import timed

    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    video = _video(workdir, args.minutes)
    names = [n for n in args.features.split(",") if n]
    results: dict = {"video": str(video), "minutes": args.minutes, "threads": args.threads}

    # (a) decode+sample vs ffmpeg CLI
    t_dec, (n_picks, frames) = timed(decode_only, video)
    t_ff, n_ff = timed(ffmpeg_decode, video)
    results["a"] = {"ours_s": t_dec, "picks": n_picks,
                    "ffmpeg_s": t_ff if n_ff is not None else None, "ffmpeg_frames": n_ff,
                    "ratio_ours_over_ffmpeg": (t_dec / t_ff) if n_ff else None}
    results["b"] = extraction_vs_parts(video, frames, t_dec)
    del frames

    # (d) the whole job's memory on a long video
    if args.long_minutes:
        from jobs.bench.extract_long import long_rows

        results["d"] = long_rows(workdir, args.long_minutes, args.long_features, args.long_frames or None)

    # (e) several extractors from one decode pass
    if len(names) > 1 or names != ["googlenet"]:
        from jobs.bench.extract_multi_run import multi_extractor_rows

        results["e"] = multi_extractor_rows(workdir, names, args.multi_seconds)
    return _finish(args, results, f"vsum bench extract: {args.minutes:g} min 640x360 30 fps H.264, "
                   f"{args.threads} torch threads", _table(results))


def extraction_vs_parts(video: Path, frames: np.ndarray, t_decode: float) -> dict:
    """(b): extract_one (decode -> GoogLeNet -> store, no KTS) vs decode-only + model-only."""
    from jobs.bench.common import timed
    from jobs.extract_video import ExtractConfig, extract_one
    from pipeline.features import ExtractorOptions, build_extractors
    from stores.location import open_root

    (g,) = build_extractors(["googlenet"], ExtractorOptions(weights="random", batch_size=32))
    g(frames[:32])  # warm-up
    t_model, _ = timed(g, frames)
    store = tempfile.mkdtemp(prefix="vsum-bench-")
    try:
        root = open_root(f"{store}/s.zarr", "a")
        cfg = ExtractConfig(features=("googlenet",), kts=None)
        t_full, row = timed(extract_one, str(video), "v", root, [g], cfg)
        if row["status"] != "complete":
            raise RuntimeError(f"extraction failed: {row['error']}")
        cfg_seq = ExtractConfig(features=("googlenet",), kts=None, threaded_decode=False)
        t_seq, _ = timed(extract_one, str(video), "v2", root, [g], cfg_seq)
    finally:
        shutil.rmtree(store, ignore_errors=True)
    return {"extract_s": t_full, "extract_unthreaded_s": t_seq, "decode_s": t_decode,
            "model_s": t_model, "ratio_extract_over_sum": t_full / (t_decode + t_model),
            "model_img_per_s": len(frames) / t_model}


def _table(r: dict) -> list[tuple[str, str, str]]:
    a, b = r["a"], r["b"]
    rows = [
        ("(a) decode+sample, ours", f"{a['ours_s']:.2f} s", f"{a['picks']} picks"),
        ("(a) same via ffmpeg CLI", f"{a['ffmpeg_s']:.2f} s" if a["ffmpeg_s"] else "skipped (no ffmpeg)",
         f"ratio ours/ffmpeg = {a['ratio_ours_over_ffmpeg']:.2f} (target <= 1.0)" if a["ffmpeg_s"] else ""),
        ("(b) extraction wall (threaded decode)", f"{b['extract_s']:.2f} s",
         f"vs decode {b['decode_s']:.2f} + model {b['model_s']:.2f}: ratio {b['ratio_extract_over_sum']:.2f} (target <= 1.0)"),
        ("(b) extraction wall (decode not overlapped)", f"{b['extract_unthreaded_s']:.2f} s",
         f"model {b['model_img_per_s']:.1f} img/s"),
    ]
    if "d" in r:
        from jobs.bench.extract_long import long_table

        rows += long_table(r["d"])
    rows += [tuple(row) for row in r.get("e", {}).get("rows", [])]
    return rows


if __name__ == "__main__":
    from jobs.cli import main

    sys.exit(main(["bench", "extract", *sys.argv[1:]]))
