"""What every importer's reader produces: one video's annotations on their own frame axis.

Kept apart from ``common`` (which writes stores) so reading and checking an annotation file
loads only numpy: a bad file is reported before zarr, pandas and numba load.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class AnnotatedVideo:
    """One video's annotations on the annotation's own frame axis (anno_n frames).

    user_scores  float32 [U, anno_n]  per-annotator importance (SumMe: 0/1 selections)
    user_summary uint8   [U, anno_n] | None  None = derive it: 15% knapsack per annotator
    """

    name: str  # as the dataset names it (TVSum YouTube id, SumMe title with spaces)
    dataset: str
    eccv16_key: str  # "video_k"
    user_scores: np.ndarray
    fps: float
    user_summary: np.ndarray | None = None
    source: str = ""
    attrs: dict = field(default_factory=dict)

    @property
    def anno_n_frames(self) -> int:
        return int(self.user_scores.shape[1])
