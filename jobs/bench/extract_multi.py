"""Pieces of ``vsum bench extract`` for the multi-extractor targets (issue 4):

- ``model_only_clips_per_s``: an extractor's throughput on pre-made uint8 inputs (no decode),
  the "model-only time" the one-pass target is measured against;
- ``store_bytes_per_minute``: compressed bytes per minute of video, per array of a store.

Run alone: ``python -m jobs.bench.extract_multi [--clips N] [--store PATH]`` prints a table.
"""

from __future__ import annotations

import argparse

import numpy as np


def make_inputs(spec, n: int, seed: int = 0) -> np.ndarray:
    """Random uint8 inputs shaped as the decoder delivers them for ``spec``:
    [n, L, H, W, 3] for clips (clip_len > 1), [n, H, W, 3] for single frames."""
    h, w = spec.decode_size
    shape = (n, spec.clip_len, h, w, 3) if spec.clip_len > 1 else (n, h, w, 3)
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def model_only_clips_per_s(extractor, n_clips: int, seed: int = 0) -> float:
    """Clips (or frames, for 2-D extractors) per second through ``extractor`` alone.

    One untimed warm-up call on a single input first (allocator, oneDNN kernel selection);
    then one timed call on ``n_clips`` inputs, which the extractor batches itself."""
    if n_clips < 1:
        raise ValueError(f"n_clips must be >= 1, got {n_clips}")
    from jobs.bench.common import timed

    inputs = make_inputs(extractor.spec, n_clips, seed)
    extractor(inputs[:1])
    elapsed, out = timed(extractor, inputs)
    if len(out) != n_clips:
        raise RuntimeError(f"{extractor.spec.name}: {len(out)} outputs for {n_clips} inputs")
    return n_clips / elapsed


def _chunk_bytes(array) -> int:
    """Compressed bytes of an array's chunks (its metadata document excluded), any zarr store."""
    from zarr.core.sync import sync

    store, prefix = array.store_path.store, array.store_path.path + "/"

    async def total() -> int:
        n = 0
        async for key in store.list_prefix(prefix):
            if not key.endswith("zarr.json"):
                n += await store.getsize(key)
        return n

    return sync(total())


def store_bytes_per_minute(store_path: str) -> dict[str, float]:
    """{array path within a video group (e.g. "features/st3d", "frames"): compressed bytes per
    minute of video}, summed over the store's complete videos and divided by their total
    ``duration_s`` / 60."""
    import zarr

    from stores.reader import FeatureStore

    store = FeatureStore(store_path)
    sizes: dict[str, int] = {}
    seconds = 0.0
    for vid in store.video_ids():
        group = store.group(vid)
        seconds += float(group.attrs.get("duration_s") or 0.0)
        for name, obj in group.members(max_depth=None):
            if isinstance(obj, zarr.Array):
                sizes[name] = sizes.get(name, 0) + _chunk_bytes(obj)
    if seconds <= 0:
        raise ValueError(f"{store_path}: no complete video with a positive duration_s")
    return {name: n / (seconds / 60.0) for name, n in sorted(sizes.items())}


def main(argv: list[str] | None = None) -> None:
    import pipeline.features.frames
    import pipeline.features.i3d
    import pipeline.features.st3d  # noqa: F401
    from pipeline.features.base import EXTRACTORS, ExtractorOptions

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=8, help="inputs per extractor (default 8)")
    p.add_argument("--features", default="st3d,i3d,frames")
    p.add_argument("--weights", default="random")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--store", help="also print bytes per minute of video for this store")
    args = p.parse_args(argv)

    import torch

    opts = ExtractorOptions(weights=args.weights, batch_size=args.batch_size)
    print(
        f"model-only throughput, {args.clips} inputs each, torch threads {torch.get_num_threads()}"
    )
    print(f"{'extractor':<10} {'input':<24} {'per s':>10}")
    for name in args.features.split(","):
        ext = EXTRACTORS.get(name)(opts)
        rate = model_only_clips_per_s(ext, args.clips)
        s = ext.spec
        shape = (
            f"{s.clip_len}x{s.decode_size[0]}x{s.decode_size[1]}"
            if s.clip_len > 1
            else f"{s.decode_size[0]}x{s.decode_size[1]}"
        )
        print(f"{name:<10} {shape:<24} {rate:>10.2f}", flush=True)
    if args.store:
        print(f"\nbytes per minute of video: {args.store}")
        for name, bpm in store_bytes_per_minute(args.store).items():
            print(f"{name:<28} {bpm / 1e6:>10.3f} MB/min")


if __name__ == "__main__":
    main()
