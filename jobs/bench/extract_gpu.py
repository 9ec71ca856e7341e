"""``vsum bench extract --device cuda``: the GPU data path, measured in one run.

On a generated 640×360 30 fps H.264 video, per extractor (googlenet, st3d, i3d by default):
  (a) the share of extraction wall time spent decoding: a decode-only pass over the same
      frames/clips vs the full extraction (decode → GPU → store), and how long the model loop
      waited on the decoder thread — the figure the next step is planned from, printed first;
  (b) images/s (2-D) or clips/s (3-D) of the full extraction, and the GPU memory peak;
then the Ray job (``run_extraction``) on copies of the video with 1 and N actors per GPU
(``--gpus-per-worker 1`` and ``1/N``): images/s over the whole job and the largest per-actor
GPU memory peak (from the manifest). Weights are random (no download needed; speed does not
depend on them). On a machine without CUDA it says so and exits 0.
"""
from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

BATCH = 32  # picks per batch, as ``vsum extract``'s default

def run_gpu_bench(args) -> int:
    import torch

    from jobs.bench.common import machine_load, write_json

    if not torch.cuda.is_available():
        print("vsum bench extract --device cuda: no GPU on this machine (torch.cuda.is_available() is "
              "False); nothing measured")
        write_json(args.out, {"gpu": None, "load": machine_load()})
        return 0
    from jobs.bench.extract import _video

    video = _video(Path(args.workdir), args.minutes)
    # --features keeps the CPU rows' default (googlenet); on a GPU the default is all three
    names = ["googlenet", "st3d", "i3d"] if args.features == "googlenet" else [n for n in args.features.split(",") if n]
    results = {"video": str(video), "minutes": args.minutes, "gpu": torch.cuda.get_device_name(0),
               "load": machine_load(), "extractors": {}}
    for name in names:
        results["extractors"][name] = measure_extractor(str(video), name, "cuda", BATCH)
    results["actors"] = actor_rows(str(video), names[0], args.actors_per_gpu, BATCH)
    print_rows(results)
    write_json(args.out, results)
    print(f"wrote {args.out}")
    return 0


def measure_extractor(video: str, name: str, device: str, batch_size: int = 32) -> dict:
    """Decode-only vs full extraction of one extractor on ``device`` (any device: the test
    runs it on the CPU)."""
    import torch

    from jobs.extract_video import ExtractConfig, extract_one
    from pipeline.decode import FrameRequest, VideoDecoder
    from pipeline.features import ExtractorOptions, build_extractors
    from stores.location import open_root

    (ext,) = build_extractors([name], ExtractorOptions(weights="random", device=device, batch_size=batch_size))
    req = FrameRequest(tuple(ext.spec.decode_size), ext.spec.clip_len)
    t = time.perf_counter()
    n_steps = sum(1 for _ in VideoDecoder(video, [req], assemble_clips=device == "cpu"))
    decode_s = time.perf_counter() - t
    work = tempfile.mkdtemp(prefix="vsum-gpu-bench-")
    try:
        root = open_root(f"{work}/s.zarr", "a")
        cfg = ExtractConfig(features=(name,), kts=None, batch_size=batch_size)
        extract_one(video, "warmup", root, [ext], cfg)  # CUDA context, cuDNN autotuning
        if device == "cuda":
            torch.cuda.reset_peak_memory_stats()
        t = time.perf_counter()
        row = extract_one(video, "v", root, [ext], cfg)
        wall_s = time.perf_counter() - t
        peak = torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if row["status"] != "complete":
        raise RuntimeError(f"bench extraction failed: {row['error']}")
    unit = "img/s" if ext.spec.clip_len == 1 else "clips/s"
    return {"steps": n_steps, "decode_s": decode_s, "wall_s": wall_s, "decode_share": decode_s / wall_s,
            "decode_wait_share": row.get("sec_decode_wait", 0.0) / wall_s, "rate": n_steps / wall_s,
            "unit": unit, "gpu_mem_peak_mb": peak}


def actor_rows(video: str, name: str, actors_per_gpu: int, batch_size: int) -> list[dict]:
    """The Ray job with 1 and ``actors_per_gpu`` actors per GPU, on enough copies of the video
    to keep every actor busy twice."""
    import torch

    from jobs.extract import run_extraction
    from jobs.extract_video import ExtractConfig
    from pipeline.features import ExtractorOptions
    from stores.manifest import read_manifest

    rows = []
    for per_gpu in sorted({1, actors_per_gpu}):
        work = Path(tempfile.mkdtemp(prefix="vsum-gpu-bench-"))
        try:
            copies = [str(work / f"copy{i}.mp4") for i in range(2 * per_gpu * torch.cuda.device_count())]
            for c in copies:
                shutil.copy(video, c)
            cfg = ExtractConfig(features=(name,), kts=None, batch_size=batch_size)
            opts = ExtractorOptions(weights="random", device="cuda", batch_size=batch_size)
            t = time.perf_counter()
            res = run_extraction(copies, str(work / "s.zarr"), cfg, opts, gpus_per_worker=1.0 / per_gpu,
                                 progress=False)
            wall = time.perf_counter() - t
            man = read_manifest(str(work / "s.zarr"))
            steps = float(man["n_steps"].sum())
            peak = man["gpu_mem_peak_mb"].max() if "gpu_mem_peak_mb" in man else None
            rows.append({"actors_per_gpu": per_gpu, "videos": len(copies), "failed": res.n_failed,
                         "wall_s": wall, "rate": steps / wall, "gpu_mem_peak_mb": peak})
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return rows


def print_rows(r: dict) -> None:
    print(f"\nvsum bench extract --device cuda — {r['minutes']:g} min 640x360 30 fps H.264 on {r['gpu']}, "
          f"load {r['load']}")
    for name, m in r["extractors"].items():
        print(f"  {name:<10} decode share of wall {m['decode_share']:.2f} (model loop waited on decode "
              f"{m['decode_wait_share']:.2f} of wall)")
    for name, m in r["extractors"].items():
        mem = f"{m['gpu_mem_peak_mb']:.0f} MB" if m["gpu_mem_peak_mb"] is not None else "n/a"
        print(f"  {name:<10} {m['rate']:8.1f} {m['unit']}  ({m['steps']} steps in {m['wall_s']:.1f} s; "
              f"decode alone {m['decode_s']:.1f} s); GPU memory peak {mem}")
    for a in r.get("actors", []):
        mem = f"{a['gpu_mem_peak_mb']:.0f} MB" if a["gpu_mem_peak_mb"] is not None else "n/a"
        print(f"  Ray job, {a['actors_per_gpu']} actor(s) per GPU: {a['rate']:.1f} steps/s over "
              f"{a['videos']} videos ({a['failed']} failed); largest actor GPU memory peak {mem}")
    sys.stdout.flush()
