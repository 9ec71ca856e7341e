"""Heads: one file per model family; importing this package registers them all."""
import importlib

for _module in ("heads.dsn", "heads.csnet", "heads.unet3d_rl", "heads.crsum"):
    if importlib.util.find_spec(_module) is not None:
        importlib.import_module(_module)
