"""Feature extractors, found by name: ``EXTRACTORS.get("googlenet")(ExtractorOptions())``.

Importing this package is cheap (no torch): an extractor's module is imported on first lookup.
"""
from __future__ import annotations

import warnings

import dataclasses

from pipeline.errors import VsumError, WeightsError
from pipeline.features.base import EXTRACTORS, ExtractorOptions, FeatureSpec
from pipeline.features.catalog import WEIGHTED, extractor_config


def resolve_all(names: list[str], opts: ExtractorOptions) -> ExtractorOptions:
    """``opts`` with every named extractor's weights resolved (``weights.resolve``: files
    found, hashed, downloaded when needed), so that workers load exactly those files."""
    from pipeline.features.weights import resolved

    return dataclasses.replace(opts, weights={n: resolved(n, opts) for n in names if n in WEIGHTED})


def config_entries(names: list[str], opts: ExtractorOptions) -> list[dict]:
    """Per extractor, what its features depend on: the meaning-bearing options and the
    weights' identity (file name and sha256, or the random-init seed). Hashed into the store's
    configuration hash; ``opts`` must be resolved (``resolve_all``)."""
    from pipeline.features.weights import resolved

    out = []
    for name in names:
        entry = extractor_config(name, opts)
        if name in WEIGHTED:
            entry["weights"] = resolved(name, opts).identity()
        out.append(entry)
    return out


def build_extractors(names: list[str], opts: ExtractorOptions) -> list:
    """Build each named extractor once (models load here); each carries its ``config_entry``.
    A failure is one VsumError line naming the extractor."""
    out = []
    opts = resolve_all(names, opts)
    for name, entry in zip(names, config_entries(names, opts)):
        try:
            extractor = EXTRACTORS.get(name)(opts)
            extractor.config_entry = entry
            out.append(extractor)
        except VsumError as e:
            raise type(e)(e.what if e.what.startswith(f"{name}:") else f"{name}: {e.what}", e.file) from None
        except Exception as e:  # noqa: BLE001 - e.g. CUDA out of memory: one line, named
            raise VsumError(f"{name}: the extractor could not be built ({type(e).__name__}: "
                            f"{' '.join(str(e).split())[:200]})") from None
    return out


def check_weights(names: list[str], opts: ExtractorOptions) -> None:
    """Load each weighted extractor's state dict and fit it into its model built on the ``meta``
    device (no memory, no compute): a missing, unreadable or mismatched file raises one
    WeightsError line naming the first bad key, before any store or worker exists."""
    from pipeline.features.weights import load_state_dict, resolved

    for name in names:
        if name not in WEIGHTED:
            continue
        w = resolved(name, opts)
        if w.is_random:
            continue
        import torch

        state = load_state_dict(w)
        module = EXTRACTORS.get(name).__module__
        model_from_state = __import__(module, fromlist=["model_from_state"]).model_from_state
        with torch.device("meta"), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "copying into a meta parameter is a no-op": intended
            try:
                model_from_state(state, w, opts)
            except WeightsError as e:
                raise WeightsError(e.what if e.what.startswith(f"{name}:") else f"{name}: {e.what}",
                                   e.file or w.path) from None


__all__ = ["EXTRACTORS", "ExtractorOptions", "FeatureSpec", "build_extractors", "check_weights",
           "config_entries", "resolve_all"]
