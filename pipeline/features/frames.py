"""Raw frame shards for end-to-end heads (CRSum): ``frames`` uint8 [T, S, S, 3] at the picks.

The decoder already converts each pick straight to S×S RGB in swscale (full frame, aspect not
kept), so this "extractor" only checks the batch and copies it: uint8 [B, S, S, 3] -> same.
Stored chunked along time (layout.CHUNK_STEPS["frames"]) for streaming reads.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.features.base import EXTRACTORS, ExtractorOptions, FeatureSpec, as_float_batch


@dataclass
class FramesExtractor:
    """uint8 [B, S, S, 3] -> uint8 [B, S, S, 3] (a copy, detached from the decoder's buffer)."""

    spec: FeatureSpec

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        as_float_batch(batch)
        if batch.ndim != 4 or tuple(batch.shape[1:]) != self.spec.feature_shape:
            raise ValueError(
                f"frames: expected uint8 [B, {', '.join(map(str, self.spec.feature_shape))}], "
                f"got {tuple(batch.shape)}"
            )
        return np.array(batch, dtype=np.uint8, copy=True)


@EXTRACTORS.register("frames")
def build_frames(opts: ExtractorOptions) -> FramesExtractor:
    s = int(opts.frames_size)
    if s < 8:
        raise ValueError(f"frames: --frames {s} is too small (need >= 8 pixels)")
    return FramesExtractor(
        FeatureSpec(
            name="frames",
            decode_size=(s, s),
            clip_len=1,
            feature_shape=(s, s, 3),
            dtype="uint8",
            weights="none",
            preprocessing=f"swscale to {s}x{s} RGB24 (full frame, aspect not kept), no normalisation",
        )
    )
