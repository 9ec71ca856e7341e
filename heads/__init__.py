"""Heads: one file per model family; importing this package registers them all."""
from heads import crsum, csnet, dsn, unet3d_rl  # noqa: F401 - imported to register the heads
