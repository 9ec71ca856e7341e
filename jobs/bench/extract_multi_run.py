"""Row (e) of ``vsum bench extract``: several extractors fed by ONE decode pass.

On a short generated 640×360 video (3-D models are slow on a CPU): the wall time of one
``extract_one`` pass feeding every extractor, against decode-only at all the sizes the
extractors need plus each extractor's model-only time on the same number of inputs; clips/s per
extractor; store bytes per minute of video per array.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path


def multi_extractor_rows(workdir: Path, names: list[str], seconds: float = 20.0) -> dict:
    from jobs.bench.common import timed
    from jobs.bench.extract_multi import model_only_clips_per_s, store_bytes_per_minute
    from jobs.extract_video import ExtractConfig, extract_one
    from pipeline.decode import FrameRequest, VideoDecoder
    from pipeline.features import ExtractorOptions, build_extractors
    from pipeline.synth_video import SynthVideoSpec, write_synthetic_video
    from stores.location import open_root

    video = workdir / f"synth_{seconds:g}s_640x360.mp4"
    if not video.exists():
        write_synthetic_video(str(video), SynthVideoSpec(n_frames=int(seconds * 30), width=640, height=360))
    extractors = build_extractors(names, ExtractorOptions(weights="random", batch_size=32))
    requests = [FrameRequest(tuple(e.spec.decode_size), e.spec.clip_len) for e in extractors]

    t_decode, n_picks = timed(lambda: sum(1 for _ in VideoDecoder(str(video), requests)))
    per_s = {e.spec.name: model_only_clips_per_s(e, n_picks) for e in extractors}
    model_s = {name: n_picks / r for name, r in per_s.items()}

    tmp = tempfile.mkdtemp(prefix="vsum-bench-multi-")
    try:
        root = open_root(f"{tmp}/s.zarr", "a")
        cfg = ExtractConfig(features=tuple(names), kts=None)
        t_one, row = timed(extract_one, str(video), "v", root, extractors, cfg)
        if row["status"] != "complete":
            raise RuntimeError(f"extraction failed: {row['error']}")
        bytes_per_min = store_bytes_per_minute(f"{tmp}/s.zarr")
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    total, slowest = sum(model_s.values()), max(model_s.values())
    rows = [(f"(e) one pass, {'+'.join(names)}", f"{t_one:.1f} s",
             f"{n_picks} picks of a {seconds:g} s video; decode at all sizes {t_decode:.1f} s")]
    rows += [(f"(e)   model-only {n}", f"{model_s[n]:.1f} s", f"{per_s[n]:.2f} clips/s") for n in names]
    rows += [("(e) one pass / (decode + sum of models)", f"{t_one / (t_decode + total):.2f}",
              "<= 1.0: decoding overlapped, no second decode"),
             ("(e) one pass / (decode + slowest model)", f"{t_one / (t_decode + slowest):.2f}",
              "issue target <= 1.1; see note: models share the same 2 cores")]
    rows += [(f"(e)   store bytes/min {k}", f"{v / 1e6:.2f} MB", "") for k, v in bytes_per_min.items()
             if k.startswith(("features", "frames"))]
    return {"one_pass_s": t_one, "decode_s": t_decode, "model_s": model_s, "clips_per_s": per_s,
            "bytes_per_minute": bytes_per_min, "n_picks": n_picks, "rows": rows}
