"""One weights policy for every extractor (GoogLeNet, ST3D, I3D) and for CRSum's video trunks.

    pretrained (default)  torchvision's file ``$TORCH_HOME/hub/checkpoints/<file>`` when present;
                          else downloaded, from the default host or from a mirror
                          (``--weights-url BASE`` / ``$VSUM_WEIGHTS_URL``: ``BASE/<file>``), through
                          ``torch.hub`` with its hash check (the file name carries the first hex
                          digits of its sha256). A download that fails the check (corrupt or
                          truncated) is deleted and reported, never loaded. Unavailable: one
                          line naming the file, the folder to put it in and ``--weights random``.
    random                a seeded random init (seed 0), only when asked: "random-init(seed=0)"
    PATH                  a state dict file
    auto                  deprecated alias of ``pretrained`` (it used to fall back to random
                          weights silently)

Per extractor: ``googlenet=PATH,st3d=pretrained,i3d=random``; a bare value applies to all.

The weights are resolved twice, to the same bytes: in the driver, before any work
(``resolve``: which file, its sha256; torch is imported only to download), and in each worker
(``load_state_dict``: the same file, fetched again on a node that lacks a pretrained one,
verified against the sha256 the driver saw).
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import socket
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import UsageError, WeightsError
from pipeline.features.catalog import WEIGHTED, pretrained_checkpoint

RANDOM_INIT_SEED = 0
RANDOM_INIT = f"random-init(seed={RANDOM_INIT_SEED})"
POLICIES = ("pretrained", "random")
DEPRECATED = {"auto": "pretrained"}
MIRROR_ENV = "VSUM_WEIGHTS_URL"
_WORD = re.compile(r"[A-Za-z0-9_]+")
DOWNLOAD_TIMEOUT_S = 60.0  # per socket operation: a dead host must not hang a job

# BatchNorm buffers that old checkpoints (pre torch 0.4.1) do not carry; never required.
OPTIONAL_KEY_SUFFIXES = (".num_batches_tracked",)


class WeightsUnavailable(WeightsError):
    """Pretrained weights that are neither cached nor downloadable (or failed the hash check)."""


@dataclass(frozen=True)
class ResolvedWeights:
    """One extractor's weights as the driver found them; handed to every worker."""

    extractor: str  # the extractor (or trunk) these weights are for; used in messages
    kind: str  # "pretrained" | "file" | "random"
    name: str  # recorded label: torchvision's weights name, the file's name, or RANDOM_INIT
    path: str | None = None  # the file, on the driver's machine
    sha256: str | None = None
    url: str | None = None  # pretrained: where a worker that lacks the file fetches it

    @property
    def is_random(self) -> bool:
        return self.kind == "random"

    def identity(self) -> dict:
        """What the store records and the configuration hash covers."""
        if self.is_random:
            return {"name": RANDOM_INIT}
        return {"name": self.name, "file": os.path.basename(self.path or ""), "sha256": self.sha256}

    def describe(self) -> str:
        """One human line: ``GoogLeNet_Weights.IMAGENET1K_V1 (googlenet-1378be20.pth, sha256 1378be20…)``."""
        if self.is_random:
            return f"{RANDOM_INIT}: RANDOM weights, asked for with --weights random (features are not semantic)"
        return f"{self.name} ({os.path.basename(self.path or '')}, sha256 {(self.sha256 or '')[:12]}…)"


# -- the --weights option -----------------------------------------------------------------------
def normalize_choice(choice: str) -> str:
    """``auto`` -> ``pretrained``; a path is kept as given (expanded later)."""
    choice = str(choice).strip()
    return DEPRECATED.get(choice, choice)


def parse_weights_option(text: str | None, features: list[str], i3d_alias: str | None = None) -> dict[str, str]:
    """``--weights`` -> {extractor: "pretrained" | "random" | PATH} for each weighted extractor in
    ``features``. ``text``: comma-separated items, each ``name=value`` (one extractor) or a bare
    value (every extractor not named); ``i3d_alias``: ``--i3d-weights PATH`` (= ``i3d=PATH``)."""
    default, named = None, {}
    for item in (s.strip() for s in (text or "").split(",")):
        if not item:
            continue
        key, eq, value = (part.strip() for part in item.partition("="))
        if eq and _WORD.fullmatch(key):  # name=value (a path may hold "=", but not after a bare word)
            if key == "frames":
                raise UsageError("--weights frames=…: the raw frames extractor has no weights")
            if key not in WEIGHTED:
                raise UsageError(f"--weights {item!r}: unknown extractor {key!r} (with weights: "
                                 f"{', '.join(WEIGHTED)})")
            if key in named or not value:
                raise UsageError(f"--weights {item!r}: {key} named twice or given no value")
            named[key] = value
        elif default is not None:
            raise UsageError(f"--weights {text!r}: two values for all extractors ({default!r}, {item!r})")
        else:
            default = item
    if i3d_alias:
        if "i3d" in named:
            raise UsageError("--i3d-weights and --weights i3d=… both given; use one")
        named["i3d"] = i3d_alias
    for key in named:
        if key not in features:
            raise UsageError(f"--weights names {key}, which --features ({','.join(features)}) does not extract")
    return {n: normalize_choice(named.get(n, default or "pretrained")) for n in features if n in WEIGHTED}


def mirror_base(explicit: str | None = None) -> str | None:
    """``--weights-url BASE`` or else ``$VSUM_WEIGHTS_URL`` (None: the default host)."""
    base = explicit or os.environ.get(MIRROR_ENV) or None
    return base.rstrip("/") if base else None


# -- resolution (driver) -----------------------------------------------------------------------
def torch_hub_checkpoint(file_name: str) -> Path:
    """Where torchvision caches a checkpoint: $TORCH_HOME/hub/checkpoints/<file_name> (torch-free)."""
    torch_home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache")), "torch")
    return Path(torch_home) / "hub" / "checkpoints" / file_name


def resolve(extractor: str, choice: str, *, st3d_arch: str = "r3d_18", mirror: str | None = None,
            who: str | None = None) -> ResolvedWeights:
    """Find one extractor's weights: a cached or downloaded pretrained file, a PATH, or random.
    Raises WeightsError / WeightsUnavailable (one line) when they cannot be had."""
    who = who or extractor
    choice = normalize_choice(choice)
    if choice == "random":
        return ResolvedWeights(who, "random", RANDOM_INIT)
    if choice == "pretrained":
        ckpt = pretrained_checkpoint(extractor, st3d_arch)
        base = mirror_base(mirror)
        url = f"{base}/{ckpt.file}" if base else ckpt.url
        path = torch_hub_checkpoint(ckpt.file)
        if not path.is_file():
            download(url, path, ckpt.hash_prefix, who)
        sha = sha256_file(path, who)
        if ckpt.hash_prefix and not sha.startswith(ckpt.hash_prefix):  # torchvision loads it unchecked
            print(f"note: {who}: {path} does not match the sha256 prefix in its name (got {sha[:8]}); "
                  "using it as torchvision would, recorded with its own sha256", file=sys.stderr)
        return ResolvedWeights(who, "pretrained", ckpt.weights_name, str(path), sha, url)
    path = readable_file(choice, who)
    return ResolvedWeights(who, "file", os.path.basename(path), path, sha256_file(path, who))


def resolved(extractor: str, opts) -> ResolvedWeights:
    """``opts.weights`` for ``extractor`` (ExtractorOptions), resolving a policy string here."""
    value = opts.weights.get(extractor, "pretrained") if isinstance(opts.weights, Mapping) else opts.weights
    if isinstance(value, ResolvedWeights):
        return value
    return resolve(extractor, value, st3d_arch=opts.st3d_arch, mirror=opts.weights_url)


def readable_file(path: str, who: str) -> str:
    """An absolute path to an existing, readable regular file, or one WeightsError line."""
    full = os.path.abspath(os.path.expanduser(path))
    if not os.path.exists(full):
        raise WeightsError(f"{who}: weights file not found", file=full)
    if not os.path.isfile(full):
        raise WeightsError(f"{who}: weights path is not a file", file=full)
    try:
        with open(full, "rb") as f:
            f.read(1)
    except OSError as e:
        raise WeightsError(f"{who}: cannot read weights file ({type(e).__name__})", file=full) from None
    return full


def sha256_file(path: str | os.PathLike, who: str = "weights") -> str:
    try:
        with open(path, "rb") as f:
            return hashlib.file_digest(f, "sha256").hexdigest()
    except OSError as e:
        raise WeightsError(f"{who}: cannot read weights file ({type(e).__name__})", file=str(path)) from None


def download(url: str, dst: Path, hash_prefix: str, who: str) -> None:
    """``torch.hub.download_url_to_file`` with its hash check: the file lands at ``dst`` only
    when its sha256 starts with ``hash_prefix``; otherwise torch.hub deletes the partial file."""
    import http.client
    import urllib.error

    import torch.hub

    advice = (f"put {dst.name} in {dst.parent}, give a mirror with --weights-url BASE (or "
              f"{MIRROR_ENV}), or pass --weights random to extract with random weights")
    dst.parent.mkdir(parents=True, exist_ok=True)
    old_timeout = socket.getdefaulttimeout()
    socket.setdefaulttimeout(DOWNLOAD_TIMEOUT_S)
    try:
        torch.hub.download_url_to_file(url, str(dst), hash_prefix=hash_prefix or None,
                                       progress=sys.stderr.isatty())
    except RuntimeError as e:
        if "invalid hash value" not in str(e):
            raise
        got = str(e).rsplit('got "', 1)[-1].rstrip('")')[:8]
        raise WeightsUnavailable(f"{who}: the download from {url} failed its hash check (sha256 {got}…, "
                                 f"its name says {hash_prefix}…): corrupt or truncated, deleted and not "
                                 f"loaded; {advice}", file=str(dst)) from None
    except (OSError, http.client.HTTPException, urllib.error.URLError, ValueError) as e:
        reason = " ".join(str(getattr(e, "reason", None) or e).split())[:160] or type(e).__name__
        if isinstance(e, urllib.error.HTTPError):
            reason = f"HTTP {e.code} {reason}"
        raise WeightsUnavailable(f"{who}: pretrained weights {dst.name} are not cached and could not be "
                                 f"downloaded from {url} ({type(e).__name__}: {reason}); {advice}",
                                 file=str(dst)) from None
    finally:
        socket.setdefaulttimeout(old_timeout)
    print(f"{who}: downloaded {url} -> {dst} (sha256 starts with {hash_prefix}, as its name says)",
          file=sys.stderr, flush=True)


# -- loading (workers, and the driver's check) ---------------------------------------------------
def local_file(w: ResolvedWeights) -> str:
    """The weights file on this machine: the driver's path, or for a pretrained file that this
    node lacks, the same file fetched into this node's torch hub cache."""
    if w.path and os.path.isfile(w.path):
        return w.path
    if w.kind == "pretrained" and w.path and w.url:
        path = torch_hub_checkpoint(os.path.basename(w.path))
        if not path.is_file():
            from pipeline.features.catalog import Checkpoint

            download(w.url, path, Checkpoint(path.name, w.url, w.name).hash_prefix, w.extractor)
        return str(path)
    raise WeightsError(f"{w.extractor}: weights file not readable on {socket.gethostname()} (weights "
                       "files must be on storage every node reads)", file=w.path)


def load_state_dict(w: ResolvedWeights) -> dict | None:
    """The state dict the driver resolved (None for a random init); the file's sha256 must be
    the one the driver saw, so every worker loads the same bytes."""
    if w.is_random:
        return None
    path = local_file(w)
    data = Path(path).read_bytes()
    if w.sha256 and hashlib.sha256(data).hexdigest() != w.sha256:
        raise WeightsError(f"{w.extractor}: weights file differs from the one the job started with "
                           f"(sha256 {hashlib.sha256(data).hexdigest()[:12]}…, expected "
                           f"{w.sha256[:12]}…)", file=path)
    return state_dict_from_bytes(data, path, w.extractor)


def state_dict_from_bytes(data: bytes, origin: str, who: str = "weights") -> dict:
    """Tensors only (``weights_only=True``: no pickled code runs); unwraps ``{"state_dict": …}``
    and a DataParallel ``module.`` prefix. Anything else is one WeightsError line."""
    import torch

    try:
        obj = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling/zip error means "not a checkpoint"
        # torch's own message is many lines about weights_only; the type says enough
        raise WeightsError(f"{who}: not a readable tensors-only torch checkpoint ({type(e).__name__})",
                           file=origin) from None
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{who}: expected a state dict of tensors, got {type(obj).__name__}", file=origin)
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def load_strict(model, state: dict, origin: str, what: str | None = None) -> None:
    """``model.load_state_dict(state)`` that fails with one WeightsError line naming the first
    bad key (missing, unexpected, or of the wrong shape). Missing ``num_batches_tracked``
    buffers are allowed (old checkpoints lack them)."""
    own = model.state_dict()
    what = what or type(model).__name__
    missing = [k for k in own if k not in state and not k.endswith(OPTIONAL_KEY_SUFFIXES)]
    unexpected = [k for k in state if k not in own]
    parts = [f"{kind} key {keys[0]!r}" + (f" (+{len(keys) - 1} more)" if len(keys) > 1 else "")
             for keys, kind in ((missing, "missing"), (unexpected, "unexpected")) if keys]
    if parts:
        raise WeightsError(f"not a {what} state dict: {'; '.join(parts)}", file=origin)
    for k, v in state.items():
        if tuple(v.shape) != tuple(own[k].shape):
            raise WeightsError(f"not a {what} state dict: key {k!r} has shape {tuple(v.shape)}, "
                               f"expected {tuple(own[k].shape)}", file=origin)
    full = {**{k: own[k] for k in own if k not in state}, **state}
    model.load_state_dict(full, strict=True)
