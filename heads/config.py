"""Head configs: paper defaults in a frozen dataclass, overridden from the CLI (``--set k=v``).

``resolve_config(DSNConfig, {"lr": "1e-3", "supervised": "true"})`` parses each string by the
field's declared type (bool, int, float, str, and ``X | None``); an unknown key or a value of the
wrong type is one ``UsageError`` line (an unknown key lists the known ones).
"""
from __future__ import annotations

import dataclasses
import json
import types
import typing
from typing import Any

from pipeline.errors import UsageError


def _parse(value: Any, tp: Any, key: str) -> Any:
    if not isinstance(value, str):
        return value
    origin = typing.get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if value.lower() in ("none", "null", ""):
            return None
        return _parse(value, args[0], key) if len(args) == 1 else value
    if tp is bool:
        if value.lower() in ("1", "true", "yes", "on"):
            return True
        if value.lower() in ("0", "false", "no", "off"):
            return False
        raise UsageError(f"--set {key}={value}: not a boolean (true/false)")
    if tp in (int, float):
        try:
            return tp(float(value)) if tp is int and "e" in value.lower() else tp(value)
        except ValueError:
            raise UsageError(f"--set {key}={value}: not {tp.__name__}") from None
    if origin in (tuple, list):
        try:
            items = json.loads(value)
        except ValueError:
            items = None
        if not isinstance(items, list):
            raise UsageError(f"--set {key}={value}: not a JSON list such as [16,32]")
        return tuple(items) if origin is tuple else items
    return value


def resolve_config(config_cls: type, overrides: dict[str, Any] | None = None):
    """An instance of ``config_cls`` with ``overrides`` applied (strings parsed by field type)."""
    hints = typing.get_type_hints(config_cls)
    names = {f.name for f in dataclasses.fields(config_cls)}
    kwargs = {}
    for key, value in (overrides or {}).items():
        if key not in names:
            raise UsageError(f"{config_cls.__name__} has no field {key!r} "
                             f"(known: {', '.join(sorted(names))})")
        kwargs[key] = _parse(value, hints[key], key)
    try:
        return config_cls(**kwargs)
    except (TypeError, ValueError) as e:  # the config's own checks (__post_init__)
        raise UsageError(f"{config_cls.__name__}: {' '.join(str(e).split())}") from None


def config_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def parse_set_options(items: list[str] | None) -> dict[str, str]:
    """``["lr=1e-3", "hidden=128"]`` -> {"lr": "1e-3", "hidden": "128"}."""
    out = {}
    for item in items or []:
        if "=" not in item:
            raise UsageError(f"--set expects key=value, got {item!r}")
        k, v = item.split("=", 1)
        out[k.strip()] = v.strip()
    return out
