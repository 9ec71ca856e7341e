"""One streaming PyAV pass over a video, yielding the sampled steps ("picks").

Every decoded frame is decoded (inter frames need it), but only the frames some consumer needs
are converted, straight to that consumer's size in swscale:

* 2-D requests (clip_len == 1) convert the pick frames only;
* 3-D requests (clip_len L > 1) convert the frames inside some pick's clip window
  ``[p - L//2, p - L//2 + L - 1]``; clips at the start/end are padded by edge replication
  (indices clamped to ``[0, n_frames - 1]``).

Sampling: ``SampleRule(every=15)`` (default, eccv16: picks 0, 15, 30, …) or
``SampleRule(fps=2.0)`` by presentation time (VFR-safe: a frame is a pick when its timestamp
reaches the next multiple of 1/fps). Under an fps rule the windows are not known in advance, so
3-D requests convert every frame.

Clips: stacked per pick on the host (uint8 [L, H, W, 3], the default), or with
``assemble_clips=False`` handed over as a ``ClipRef`` (the clip's frame indices and the frames
themselves, not copied), so that a GPU extractor uploads each distinct frame once and
assembles the clips on the device (``ClipBatch``).

Hardware decoding: ``hwaccel="cuda"`` asks FFmpeg for NVDEC through PyAV; when the device
cannot be opened the video is decoded in software and ``info.decode`` says why (the store
records it).

Memory: a ring of the frames that pending clip windows still need (≤ L + a few frames per clip
size) plus the not-yet-emitted picks — bounded whatever the video length.

Errors: anything that prevents decoding (missing, empty, not a video, no video stream,
truncated mid-stream, zero frames) raises ``DecodeError`` with one line naming the file.
"""
from __future__ import annotations

import math
import queue
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Iterator

import av
import numpy as np
from av.video.reformatter import VideoReformatter


class DecodeError(RuntimeError):
    """One-line, user-facing reason a video could not be decoded."""


@dataclass(frozen=True)
class SampleRule:
    every: int | None = 15  # every N-th decoded frame (eccv16)
    fps: float | None = None  # or by presentation time

    def __post_init__(self):
        if (self.every is None) == (self.fps is None):
            raise ValueError("SampleRule needs exactly one of every=N or fps=F")
        if self.every is not None and self.every < 1:
            raise ValueError("every must be >= 1")
        if self.fps is not None and self.fps <= 0:
            raise ValueError("fps must be > 0")

    def describe(self) -> str:
        return f"every {self.every} frames" if self.every else f"{self.fps} fps by presentation time"

    def n_steps(self, n_frames: int) -> int | None:
        """Known in advance only for the every-N rule: ceil(n_frames / N)."""
        return math.ceil(n_frames / self.every) if self.every else None


@dataclass(frozen=True)
class FrameRequest:
    """A consumer's need: frames (clip_len 1) or clips at ``size`` = (H, W)."""

    size: tuple[int, int]
    clip_len: int = 1


@dataclass(frozen=True)
class ClipRef:
    """One clip, not stacked: ``frames[k]`` is decoded frame ``index[k]`` (uint8 [H, W, 3])."""

    index: tuple[int, ...]  # L original-frame indices (edge-replicated at the ends)
    frames: tuple[np.ndarray, ...]


@dataclass
class ClipBatch:
    """B clips as N distinct frames plus indices: clip b is ``frames[index[b]]``.

    frames: N arrays uint8 [H, W, 3]; index: int64 [B, L] into ``frames``. Neighbouring clips
    share frames (always under an fps rule or when picks are closer than L), which are then
    stacked and uploaded once."""

    frames: list[np.ndarray]
    index: np.ndarray

    @classmethod
    def from_refs(cls, refs: list[ClipRef]) -> ClipBatch:
        slot: dict[int, int] = {}
        frames: list[np.ndarray] = []
        index = np.empty((len(refs), len(refs[0].index) if refs else 0), np.int64)
        for b, ref in enumerate(refs):
            for k, (i, frame) in enumerate(zip(ref.index, ref.frames)):
                if i not in slot:
                    slot[i] = len(frames)
                    frames.append(frame)
                index[b, k] = slot[i]
        return cls(frames, index)

    def __len__(self) -> int:
        return len(self.index)

    @property
    def shape(self) -> tuple[int, ...]:
        return (*self.index.shape, *(self.frames[0].shape if self.frames else (0, 0, 3)))

    def stacked(self) -> np.ndarray:
        """uint8 [B, L, H, W, 3] on the host (what ``assemble_clips=True`` would have given)."""
        return np.stack(self.frames)[self.index]


@dataclass
class Pick:
    """One sampled step. ``images[request]``: uint8 [H, W, 3] (clip_len 1) or [L, H, W, 3]
    (a ``ClipRef`` with ``assemble_clips=False``)."""

    step: int
    frame_index: int
    time: float
    images: dict[FrameRequest, np.ndarray]


@dataclass
class VideoInfo:
    source: str
    n_frames_container: int = 0
    fps: float = 0.0  # average frame rate as the container states it
    duration_s: float = 0.0
    width: int = 0
    height: int = 0
    rotation: int = 0
    n_frames: int = 0  # frames actually decoded (final after iteration)
    last_time: float = 0.0
    decode: str = "software"  # or "hwaccel cuda", or why hardware decoding was not used
    extra: dict = field(default_factory=dict)

    def to_attrs(self) -> dict:
        return {
            "source": self.source,
            "n_frames": self.n_frames,
            "n_frames_container": self.n_frames_container,
            "fps": self.fps,
            "duration_s": self.duration_s,
            "width": self.width,
            "height": self.height,
            "rotation": self.rotation,
            "decode": self.decode,
        }


def _frame_rotation(frame) -> int:
    # PyAV exposes the display-matrix rotation in degrees (counter-clockwise); normalise to 0..270.
    rot = int(round(getattr(frame, "rotation", 0) or 0))
    return rot % 360


class VideoDecoder:
    """Iterate ``Pick``s of one video in a single decode pass.

    >>> dec = VideoDecoder("a.mp4", [FrameRequest((224, 224))])
    >>> for pick in dec: ...            # pick.images[request] is uint8 [224, 224, 3]
    >>> dec.info.n_frames               # frames actually decoded
    """

    def __init__(self, source: str, requests: list[FrameRequest], rule: SampleRule = SampleRule(),
                 open_options: dict | None = None, assemble_clips: bool = True,
                 hwaccel: str | None = None):
        self.source = str(source)
        self.requests = list(dict.fromkeys(requests))
        self.rule = rule
        self.open_options = open_options or {}
        self.assemble_clips = assemble_clips
        self.hwaccel = hwaccel
        self.info = VideoInfo(source=self.source)
        self._reformatter = VideoReformatter()
        self.max_half = max([r.clip_len // 2 for r in self.requests] + [0])
        self.max_after = max([r.clip_len - r.clip_len // 2 - 1 for r in self.requests] + [0])

    # -- which frames must be converted --------------------------------------------------------
    def _in_window(self, i: int, req: FrameRequest) -> bool:
        """Is frame i inside some pick's clip window (every-N rule)? Some multiple kN in
        [i + L//2 - L + 1, i + L//2]."""
        n, L = self.rule.every, req.clip_len
        hi = i + L // 2
        lo = hi - L + 1
        return (hi // n) * n >= max(lo, 0)

    def _needed(self, i: int, is_pick: bool) -> list[FrameRequest]:
        out = []
        for r in self.requests:
            if r.clip_len == 1:
                if is_pick:
                    out.append(r)
            elif self.rule.fps is not None or self._in_window(i, r):
                out.append(r)
        return out

    # -- decoding --------------------------------------------------------------------------------
    def _open(self):
        if "://" not in self.source:
            import os

            if not os.path.exists(self.source):
                raise DecodeError(f"{self.source}: file not found")
            if os.path.isfile(self.source) and os.path.getsize(self.source) == 0:
                raise DecodeError(f"{self.source}: empty file (0 bytes)")
        try:
            container = self._open_container()
        except FileNotFoundError:
            raise DecodeError(f"{self.source}: file not found") from None
        except (av.FFmpegError, ValueError, OSError) as e:
            raise DecodeError(f"{self.source}: cannot open ({_short(e)})") from None
        if not container.streams.video:
            container.close()
            raise DecodeError(f"{self.source}: no video stream")
        stream = container.streams.video[0]
        # Must be set before the first decode; frame threading does not help on 2 cores.
        stream.codec_context.thread_type = "SLICE"
        info = self.info
        info.n_frames_container = int(stream.frames or 0)
        rate = stream.average_rate or stream.guessed_rate
        info.fps = float(rate) if rate else 0.0
        info.width = int(stream.codec_context.width or 0)
        info.height = int(stream.codec_context.height or 0)
        if stream.duration and stream.time_base:
            info.duration_s = float(stream.duration * stream.time_base)
        elif container.duration:
            info.duration_s = container.duration / 1e6
        return container, stream

    def _open_container(self):
        """``av.open``, with hardware decoding when asked and available; otherwise software
        decoding, and ``info.decode`` records why (PyAV raises at open when the device is absent)."""
        if self.hwaccel:
            from av.codec.hwaccel import HWAccel

            try:
                container = av.open(self.source, hwaccel=HWAccel(self.hwaccel, allow_software_fallback=True),
                                    **self.open_options)
                streams = container.streams.video
                used = bool(streams) and bool(getattr(streams[0].codec_context, "is_hwaccel", False))
                self.info.decode = (f"hwaccel {self.hwaccel}" if used else
                                    f"software (hwaccel {self.hwaccel} does not support this codec)")
                return container
            except (av.FFmpegError, OSError, ValueError) as e:
                self.info.decode = f"software (hwaccel {self.hwaccel} unavailable: {_short(e)})"
        return av.open(self.source, **self.open_options)

    def _convert(self, frame, size: tuple[int, int], rotation: int) -> np.ndarray:
        h, w = size
        k = rotation // 90
        if k % 2:  # a 90/270 rotation swaps axes: convert at (w, h) so the result is (h, w)
            h, w = w, h
        # One reformatter for the whole video: frame.to_ndarray(width=…) builds a new swscale
        # context per frame, which costs more than the conversion itself.
        img = self._reformatter.reformat(frame, width=w, height=h, format="rgb24").to_ndarray()
        if k:
            img = np.ascontiguousarray(np.rot90(img, k=k))
        return img

    def __iter__(self) -> Iterator[Pick]:
        container, stream = self._open()
        ring: OrderedDict[int, dict[tuple[int, int], np.ndarray]] = OrderedDict()
        pending: list[tuple[int, int, float]] = []  # (step, frame_index, time)
        step = 0
        next_time = 0.0
        i = -1
        t0 = None
        try:
            try:
                for frame in container.decode(stream):
                    i += 1
                    t = frame.time if frame.time is not None else (i / self.info.fps if self.info.fps else 0.0)
                    if t0 is None:
                        t0 = t
                        self.info.rotation = _frame_rotation(frame)
                    rel_t = t - t0
                    if self.rule.every is not None:
                        is_pick = i % self.rule.every == 0
                    else:
                        is_pick = rel_t + 1e-9 >= next_time
                        if is_pick:
                            while next_time <= rel_t + 1e-9:
                                next_time += 1.0 / self.rule.fps
                    needed = self._needed(i, is_pick)
                    if needed:
                        ring[i] = {}
                        for r in needed:
                            if r.size not in ring[i]:
                                ring[i][r.size] = self._convert(frame, r.size, self.info.rotation)
                    if is_pick:
                        pending.append((step, i, rel_t))
                        step += 1
                    self.info.last_time = rel_t
                    # Emit picks whose windows are complete.
                    while pending and pending[0][1] + self.max_after <= i:
                        yield self._assemble(pending.pop(0), ring, n_known=None)
                    # Drop frames no pending or future pick can need.
                    oldest_needed = (pending[0][1] if pending else i + 1) - self.max_half
                    while ring and next(iter(ring)) < oldest_needed:
                        ring.popitem(last=False)
            except (av.FFmpegError, ValueError, OSError) as e:
                raise DecodeError(f"{self.source}: decode failed at frame {i + 1} ({_short(e)})") from None
            n = i + 1
            if n == 0:
                raise DecodeError(f"{self.source}: no frames decoded")
            self.info.n_frames = n
            if self.info.fps and n > 1:
                # duration from what was decoded, not the container's claim
                self.info.duration_s = max(self.info.last_time + 1.0 / self.info.fps, 0.0)
            elif not self.info.duration_s:
                self.info.duration_s = n / self.info.fps if self.info.fps else 0.0
            while pending:
                yield self._assemble(pending.pop(0), ring, n_known=n)
        finally:
            container.close()

    def _assemble(self, pick: tuple[int, int, float], ring, n_known: int | None) -> Pick:
        step, p, t = pick
        images = {}
        last = n_known - 1 if n_known is not None else max(ring)
        for r in self.requests:
            if r.clip_len == 1:
                images[r] = ring[p][r.size]
            else:
                start = p - r.clip_len // 2
                idx = [min(max(j, 0), last) for j in range(start, start + r.clip_len)]
                frames = [ring[j][r.size] for j in idx]
                images[r] = np.stack(frames) if self.assemble_clips else ClipRef(tuple(idx), tuple(frames))
        return Pick(step=step, frame_index=p, time=t, images=images)


def iter_pick_batches(decoder: VideoDecoder, batch_size: int, prefetch: int = 2,
                      threaded: bool = True) -> Iterator[list[Pick]]:
    """Group picks into lists of ``batch_size``. With ``threaded`` the decoder runs in a
    background thread (PyAV releases the GIL while decoding/scaling), so decoding overlaps the
    caller's model inference; at most ``prefetch`` batches wait in the queue."""
    def batches():
        buf = []
        for pick in decoder:
            buf.append(pick)
            if len(buf) == batch_size:
                yield buf
                buf = []
        if buf:
            yield buf

    if not threaded:
        yield from batches()
        return
    q: queue.Queue = queue.Queue(maxsize=max(1, prefetch))
    done = object()
    stop = threading.Event()

    def produce():
        try:
            for b in batches():
                if stop.is_set():
                    return
                q.put(b)
            q.put(done)
        except BaseException as e:  # re-raised in the consumer
            q.put(e)

    th = threading.Thread(target=produce, name="vsum-decode", daemon=True)
    th.start()
    try:
        while True:
            item = q.get()
            if item is done:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while th.is_alive():  # unblock a producer waiting on a full queue
            try:
                q.get_nowait()
            except queue.Empty:
                th.join(timeout=0.05)


def _short(e: BaseException) -> str:
    # FFmpegError's str() repeats the errno and the file name; the message alone is the reason.
    msg = getattr(e, "strerror", None) or str(e)
    return " ".join(str(msg).split())[:200] or type(e).__name__
