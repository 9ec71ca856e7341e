"""Generate real encoded videos with PyAV: shots of distinct content at known cut positions.

Used by the demo corpus, the tests and the benchmarks (no downloads). Each shot is a moving
pattern with its own colour palette and texture, so features differ between shots and change
smoothly within a shot.
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import av
import numpy as np


@dataclass(frozen=True)
class SynthVideoSpec:
    n_frames: int = 150
    width: int = 160
    height: int = 120
    fps: int = 30
    shot_lengths: tuple[int, ...] | None = None  # frames per shot; None = one shot per ~2 s
    seed: int = 0
    codec: str = "libx264"
    rotation: int = 0  # degrees, written as display-matrix metadata
    vfr: bool = False  # irregular timestamps (every 3rd frame interval doubled)
    crf: int = 28
    preset: str = "veryfast"  # libx264 speed/size trade-off ("ultrafast" encodes ~2x faster)
    # per-shot RGB base colour (0-255); None = each shot's seeded random palette. Lets a caller
    # plant what a shot looks like (the demo makes its "important" shots warm).
    palettes: tuple[tuple[int, int, int], ...] | None = None

    def cuts(self) -> list[int]:
        """First frame of each shot (0 included)."""
        lengths = self.shot_lengths or _default_lengths(self.n_frames, 2 * self.fps)
        return list(np.cumsum([0, *lengths[:-1]]))


def _default_lengths(n: int, per: int) -> tuple[int, ...]:
    full, rest = divmod(n, per)
    return tuple([per] * full + ([rest] if rest else [])) or (n,)


def shot_palette(shot: int, seed: int) -> np.ndarray:
    """The seeded random base colour of a shot: int64 [3] in [30, 226)."""
    return np.random.default_rng(seed * 1000 + shot).integers(30, 226, size=3)


@lru_cache(maxsize=8)
def _shot_pattern(shot: int, height: int, width: int, seed: int):
    """Per-shot constants: palette, sin/cos of the texture projection, temporal frequency."""
    rng = np.random.default_rng(seed * 1000 + shot)
    base = rng.integers(30, 226, size=3).astype(np.float32)  # == shot_palette(shot, seed)
    freq = rng.uniform(0.02, 0.2, size=2)
    angle = rng.uniform(0, np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    proj = (np.cos(angle) * xx + np.sin(angle) * yy) * freq[0]
    # sin(proj + phase) = sin(proj)·cos(phase) + cos(proj)·sin(phase): two multiply-adds per
    # frame instead of a sin over every pixel
    return base, np.sin(proj).astype(np.float32), np.cos(proj).astype(np.float32), float(freq[1])


def shot_frame(shot: int, t: int, height: int, width: int, seed: int,
               base: tuple[int, int, int] | None = None) -> np.ndarray:
    """uint8 [H, W, 3]: a shot-specific palette (``base`` overrides it) and stripe texture,
    drifting with t."""
    default_base, sin_p, cos_p, speed = _shot_pattern(shot, height, width, seed)
    base = default_base if base is None else np.asarray(base, np.float32)
    phase = t * speed
    wave = (sin_p * np.float32(np.cos(phase)) + cos_p * np.float32(np.sin(phase))) * np.float32(0.225)
    wave += np.float32(0.775)
    img = wave[..., None] * base
    # a square that moves within the shot: gives motion for 3-D features
    s = max(2, min(height, width) // 5)
    y0 = int((height - s) * (0.5 + 0.4 * np.sin(t * 0.1 + shot)))
    x0 = int((width - s) * (0.5 + 0.4 * np.cos(t * 0.07 + shot)))
    img[y0:y0 + s, x0:x0 + s] = 255 - base
    return np.clip(img, 0, 255).astype(np.uint8)


def write_synthetic_video(path: str, spec: SynthVideoSpec = SynthVideoSpec()) -> list[int]:
    """Encode ``spec`` to ``path`` (mp4/mkv by extension). Returns the cut positions."""
    cuts = spec.cuts()
    shot_of = np.searchsorted(np.asarray(cuts), np.arange(spec.n_frames), side="right") - 1
    with av.open(str(path), mode="w") as out:
        stream = out.add_stream(spec.codec, rate=spec.fps)
        stream.width, stream.height = spec.width + spec.width % 2, spec.height + spec.height % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(spec.crf), "preset": spec.preset} if spec.codec == "libx264" else {}
        if spec.vfr:
            stream.codec_context.time_base = Fraction(1, 1000)
        if spec.rotation:
            stream.set_display_rotation(spec.rotation)
        pts = 0
        for i in range(spec.n_frames):
            shot = int(shot_of[i])
            base = spec.palettes[shot] if spec.palettes else None
            img = shot_frame(shot, i - cuts[shot], stream.height, stream.width, spec.seed, base)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            if spec.vfr:
                frame.pts = pts
                frame.time_base = Fraction(1, 1000)
                pts += int(1000 / spec.fps) * (2 if i % 3 == 2 else 1)
            for packet in stream.encode(frame):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return cuts
