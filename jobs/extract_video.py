"""Extract one video into its store group: decode once, feed every extractor, KTS, mark complete.

This is the unit of work of the Ray job (``jobs/extract.py``) and of the benchmarks; it has no
Ray in it. It returns a manifest row and never raises for a bad input: the row says
``status="failed"`` with a one-line ``error``, and the video's partial group is removed.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import time
import traceback
from dataclasses import asdict, dataclass, field

import numpy as np
import zarr

from pipeline.decode import ClipBatch, DecodeError, FrameRequest, SampleRule, VideoDecoder, iter_pick_batches
from stores import layout
from stores.store import Store


@dataclass(frozen=True)
class ExtractConfig:
    features: tuple[str, ...] = ("googlenet",)
    sample: SampleRule = SampleRule()
    kts: object | None = "default"  # a pipeline.kts.KTSParams, "default", or None (= --no-kts)
    batch_size: int = 32  # picks per batch through the extractors
    threaded_decode: bool = True  # overlap decoding with inference
    hwaccel: str | None = None  # "cuda": hardware decoding when available (else software, recorded)

    def kts_params(self):
        if self.kts is None:
            return None
        from pipeline.kts import KTSParams

        return KTSParams() if self.kts == "default" else self.kts


def config_hash(cfg: ExtractConfig, opts) -> str:
    """Identifies what a video's arrays are computed with, from the configuration alone (no
    model is built): each extractor's meaning-bearing options and its weights' identity (file
    name and sha256, or the random-init seed), the sampling rule and the KTS parameters. A
    rerun with the same hash skips the video. ``opts``: ExtractorOptions, resolved
    (``pipeline.features.resolve_all``)."""
    from pipeline.features import config_entries

    return _hash({"extractors": config_entries(list(cfg.features), opts), "sample": cfg.sample.describe(),
                  "kts": _kts_dict(cfg)})


def extractors_hash(cfg: ExtractConfig, extractors) -> str:
    """The same hash from built extractors (``build_extractors`` gives each its
    ``config_entry``), for callers of ``extract_one`` without a job (benchmarks, tests)."""
    entries = [getattr(e, "config_entry", None) or e.spec.to_attrs() for e in extractors]
    return _hash({"extractors": entries, "sample": cfg.sample.describe(), "kts": _kts_dict(cfg)})


def _kts_dict(cfg: ExtractConfig) -> dict | None:
    kts = cfg.kts_params()
    return asdict(kts) if kts is not None else None


def _hash(blob: dict) -> str:
    return hashlib.sha1(json.dumps(blob, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class _Timer:
    seconds: dict = field(default_factory=dict)

    def add(self, stage: str, t0: float) -> float:
        now = time.perf_counter()
        self.seconds[f"sec_{stage}"] = self.seconds.get(f"sec_{stage}", 0.0) + now - t0
        return now


def _pooled(feats: np.ndarray) -> np.ndarray:
    """[B, C, ...] -> float32 [B, C] (spatial mean); [B, D] unchanged. KTS segments on these."""
    feats = feats.astype(np.float32)
    return feats.reshape(len(feats), feats.shape[1], -1).mean(axis=2) if feats.ndim > 2 else feats


# FFmpeg reads these itself; every other URL (s3://, gs://, memory://…) is read through fsspec.
_FFMPEG_PROTOCOLS = ("http", "https", "rtmp", "rtsp", "file")


class _URLOpener:
    """PyAV ``io_open`` callback: open an fsspec URL as a Python file object (PyAV reads
    file-likes), with the store's credentials (``Store.open_input``); ``close()`` closes what
    it opened."""

    def __init__(self, store: Store):
        self.store = store
        self.files: list = []

    def __call__(self, url: str, flags: int, options: dict):
        f = self.store.open_input(url)
        self.files.append(f)
        return f

    def close(self) -> None:
        for f in self.files:
            with contextlib.suppress(OSError):
                f.close()
        self.files.clear()


def _url_opener(source: str, store: Store) -> _URLOpener | None:
    proto = str(source).split("://", 1)[0].lower() if "://" in str(source) else None
    return _URLOpener(store) if proto and proto not in _FFMPEG_PROTOCOLS else None


def extract_one(source: str, video_id: str, store: Store | zarr.Group, extractors, cfg: ExtractConfig,
                chash: str | None = None) -> dict:
    """Decode ``source`` (a path or a URL) once and write ``videos/<video_id>``. Returns a
    manifest row.

    store: a ``stores.Store`` (fsspec URL inputs are read with its credentials), or an open
    root group (benchmarks and tests: inputs then use ``$VSUM_STORAGE_OPTIONS``)."""
    row = {"video_id": video_id, "source": str(source), "status": "failed", "error": ""}
    timer = _Timer()
    if not isinstance(store, Store):
        store = Store.of_root(store)
    writer = store.video_writer(video_id)
    opener = _url_opener(source, store)
    t = time.perf_counter()
    try:
        writer.begin(_first_attrs(source, cfg, chash or extractors_hash(cfg, extractors), extractors))
        requests = {e.spec.name: FrameRequest(tuple(e.spec.decode_size), e.spec.clip_len) for e in extractors}
        decoder = VideoDecoder(source, list(requests.values()), cfg.sample,
                               open_options={"io_open": opener} if opener else None,
                               assemble_clips=not any(_on_cuda(e) for e in extractors), hwaccel=cfg.hwaccel)
        picks = writer.appender(layout.PICKS, (), np.int32)
        outs = {e.spec.name: writer.appender(layout.feature_path(e.spec.name), e.spec.feature_shape,
                                             np.dtype(e.spec.dtype)) for e in extractors}
        # KTS needs the whole sequence of (small) 2-D features: GoogLeNet when extracted, else
        # the first extractor's output pooled over space. Picks are kept too (T ints).
        kts_source = "googlenet" if "googlenet" in outs else next(iter(outs), None)
        kts_rows: list[np.ndarray] = []
        pick_rows: list[np.ndarray] = []
        t = timer.add("open", t)
        for batch in iter_pick_batches(decoder, cfg.batch_size, threaded=cfg.threaded_decode):
            t = timer.add("decode_wait", t)
            pick_rows.append(np.array([p.frame_index for p in batch], np.int32))
            picks.append(pick_rows[-1])
            inputs = _batch_inputs(batch, set(requests.values()))
            for e in extractors:
                feats = e(inputs[requests[e.spec.name]])
                outs[e.spec.name].append(feats)
                if e.spec.name == kts_source:
                    kts_rows.append(_pooled(feats))
                t = timer.add(f"model_{e.spec.name}", t)
        n_steps = picks.close()
        for a in outs.values():
            if a.close() != n_steps:
                raise RuntimeError(f"{source}: array lengths disagree with {n_steps} picks")
        t = timer.add("write", t)
        info = decoder.info
        expected = cfg.sample.n_steps(info.n_frames)
        if expected is not None and expected != n_steps:
            raise RuntimeError(f"{source}: {n_steps} picks but ceil({info.n_frames}/{cfg.sample.every}) = {expected}")
        kts = cfg.kts_params()
        if kts is not None and n_steps:
            from pipeline.kts import kts_segments

            cps, nfps = kts_segments(np.concatenate(kts_rows), np.concatenate(pick_rows),
                                     info.n_frames, kts)
            writer.write(layout.CHANGE_POINTS, np.asarray(cps, np.int32))
            writer.write(layout.N_FRAME_PER_SEG, np.asarray(nfps, np.int32))
            writer.group.attrs["kts"] = asdict(kts)
            t = timer.add("kts", t)
        writer.finish({**info.to_attrs(), "n_steps": int(n_steps)})
        row.update(status="complete", n_frames=info.n_frames, n_frames_container=info.n_frames_container,
                   fps=info.fps, duration_s=info.duration_s, n_steps=int(n_steps))
    except DecodeError as e:
        row["error"] = str(e)
    except Exception as e:  # a bug or a resource problem: keep the job going, keep the reason
        row["error"] = f"{source}: {type(e).__name__}: {' '.join(str(e).split())[:300]}"
        row["traceback"] = traceback.format_exc(limit=5)
    finally:
        if opener is not None:
            opener.close()
    if row["status"] != "complete":
        leftover = store.discard_video(video_id)
        row["error"] = f"{row['error']}; {leftover}" if leftover else row["error"]
    row.update(timer.seconds)
    return row


def _first_attrs(source: str, cfg: ExtractConfig, chash: str, extractors) -> dict:
    """What a video's group records before any array: where it came from and how it is made."""
    return {
        "source": str(source),
        "sample": cfg.sample.describe(),
        "config_hash": chash,
        "weights": {e.spec.name: e.spec.weights for e in extractors},
        "weights_identity": {e.spec.name: e.spec.weights_identity() for e in extractors},
        "feature_specs": {e.spec.name: e.spec.to_attrs() for e in extractors},
    }


def _on_cuda(extractor) -> bool:
    device = getattr(extractor, "device", None)
    return getattr(device, "type", None) == "cuda"


def _batch_inputs(batch: list, requests: set[FrameRequest]) -> dict:
    """Each request's batch: uint8 [B, H, W, 3] frames, [B, L, H, W, 3] stacked clips, or a
    ClipBatch when the decoder hands clips over unassembled (for assembly on the GPU)."""
    out = {}
    for req in requests:
        items = [p.images[req] for p in batch]
        out[req] = np.stack(items) if isinstance(items[0], np.ndarray) else ClipBatch.from_refs(items)
    return out
