"""Feature extractors, found by name: ``EXTRACTORS.get("googlenet")(ExtractorOptions())``.

Importing this package registers every extractor module that exists.
"""
import importlib

from pipeline.features.base import EXTRACTORS, ExtractorOptions, FeatureSpec

for _module in ("googlenet", "st3d", "i3d", "frames"):
    if importlib.util.find_spec(f"pipeline.features.{_module}") is not None:
        importlib.import_module(f"pipeline.features.{_module}")


def build_extractors(names: list[str], opts: ExtractorOptions) -> list:
    """Build each named extractor once (models load here)."""
    return [EXTRACTORS.get(n)(opts) for n in names]


__all__ = ["EXTRACTORS", "ExtractorOptions", "FeatureSpec", "build_extractors"]
