"""Named config presets: which field values reproduce a paper, where our defaults differ.

    vsum train dsn_sup --preset published ...     (explicit --set values still win)

Every head's defaults are the paper's where the paper is clear, and this project's earlier
behaviour where a switch was added later (so old runs keep their meaning). A preset is a dict
of ``--set`` overrides:

    paper      what the paper's text describes
    published  what produced the published numbers: the paper, except where the authors'
               public code does something else (DR-DSN's reward scale)

Dataset-dependent values (3DST-UNet-RL's lr: 1e-5 on SumMe, 1e-6 on TVSum) are not presets:
``vsum reproduce`` sets them per row (jobs/reproduce_grid.py).
"""
from __future__ import annotations

_DSN_PAPER = {"reward_scale": "1.0"}  # eq. (6): R = R_div + R_rep
_DSN_CODE = {"reward_scale": "0.5"}  # rewards.py: 0.5·(R_div + R_rep)
_DSN_SUP = {"sup_loss": "mle", "sup_target": "gtsummary"}  # §4: MLE on the keyframes
_UNET_PAPER = {"sup_target": "oracle", "output": "frame", "scores_per_step": "15"}  # §III.C, §IV.B
_CRSUM_PAPER = {"frame_size": "256", "pick_stride": "4", "window_steps": "0"}  # §IV.A

PRESETS: dict[str, dict[str, dict[str, str]]] = {
    "dsn": {"paper": _DSN_PAPER, "published": _DSN_CODE},
    "dsn_sup": {"paper": {**_DSN_PAPER, **_DSN_SUP}, "published": {**_DSN_CODE, **_DSN_SUP}},
    "csnet": {"paper": {}, "published": {}},
    "csnet_sup": {"paper": {}, "published": {}},
    "unet3d_rl": {"paper": _UNET_PAPER, "published": _UNET_PAPER},
    "crsum": {"paper": _CRSUM_PAPER, "published": _CRSUM_PAPER},
}


def preset_overrides(head: str, preset: str | None) -> dict[str, str]:
    """The ``--set`` values of ``preset`` for ``head`` ({} for None or "default")."""
    if preset in (None, "", "default"):
        return {}
    known = PRESETS.get(head, {})
    if preset not in known:
        names = ", ".join(["default", *known]) or "default"
        raise ValueError(f"head {head} has no preset {preset!r} (known: {names})")
    return dict(known[preset])
