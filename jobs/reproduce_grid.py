"""A paper's tables as a grid of runs: read its data file (``jobs/published/<paper>.yaml``), turn
every table cell into the run that trains it and the evaluation that scores it.

    paper file:  variants (head, preset, features, overrides[, overrides_by_dataset, needs])
                 tables -> columns (dataset, setting[, features, overrides, eval])
                        -> rows (variant, published {column: number | null | {value, text}}[, skip])
    grid:        Cell (table, row, column) -> RunSpec (trained once, shared by every cell that
                 needs the same variant, features, overrides, dataset, setting and splits)
                 + an evaluation key (protocol, budget, ratio, keyframe stride) + the metric

Pure planning: no store is opened here (``missing_inputs`` takes what the caller found).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from importlib import resources

PAPERS = ("dr-dsn", "csnet", "unet3d-rl", "crsum")
EVAL_KEYS = ("protocol", "budget", "ratio", "keyframe_stride")
EVAL_DEFAULTS = {"protocol": "keyshot", "budget": "ratio", "ratio": 0.15, "keyframe_stride": 1}


def load_paper(paper: str) -> dict:
    """The paper's data file, shipped inside the package (``jobs/published``)."""
    import yaml

    if paper not in PAPERS:
        raise ValueError(f"unknown paper {paper!r} (known: {', '.join(PAPERS)})")
    text = resources.files("jobs").joinpath("published", f"{paper}.yaml").read_text()
    return yaml.safe_load(text)


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    variant: str
    head: str
    preset: str | None
    features: str | None
    overrides: tuple[tuple[str, str], ...]
    dataset: str  # tested
    setting: str
    splits: str
    needs: tuple[str, ...] = ()


@dataclass(frozen=True)
class Cell:
    table: str
    row: str
    column: str
    run: RunSpec | None  # None: the cell is not run (see ``skip``)
    metric: str
    eval_key: tuple  # ((name, value), ...) over EVAL_KEYS
    published: float | None
    published_text: str = ""
    skip: str = ""


@dataclass
class Grid:
    paper: dict
    cells: list[Cell] = field(default_factory=list)

    def runs(self) -> list[RunSpec]:
        """Distinct runs, in first-use order."""
        seen: dict[str, RunSpec] = {}
        for c in self.cells:
            if c.run is not None:
                seen.setdefault(c.run.run_id, c.run)
        return list(seen.values())

    def eval_keys(self) -> list[tuple]:
        return sorted({c.eval_key for c in self.cells if c.run is not None}, key=str)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.=+-]+", "-", str(text)).strip("-").lower()


def run_id(variant: str, features: str | None, overrides: dict, dataset: str, setting: str,
           splits: str) -> str:
    """Readable and unique: the variant, what a column changes, where it tests and how split."""
    parts = [variant] + ([features] if features else [])
    parts += [f"{k}={v}" for k, v in sorted(overrides.items())]
    parts += [dataset, setting, splits.replace(":", "")]
    return "--".join(_slug(p) for p in parts)


def _published(value) -> tuple[float | None, str]:
    if isinstance(value, dict):
        v = value.get("value")
        return (None if v is None else float(v)), str(value.get("text", ""))
    return (None if value is None else float(value)), ""


def build_grid(paper: str, default_splits: str, extra_sets: dict[str, dict[str, str]] | None = None,
               split_files: dict[tuple[str, str], str] | None = None) -> Grid:
    """Every cell of every table of ``paper``.

    default_splits: the split spec of cells whose table names none (e.g. "kfold:5").
    extra_sets: {variant or "*": {field: value}} from the command line; they fill a variant's
    ``needs`` and join its overrides (not its run id: a different value needs another --out).
    split_files: {(dataset, setting): path} public split files that replace ``default_splits``.
    """
    doc = load_paper(paper)
    variants, extra_sets = doc["variants"], extra_sets or {}
    metric_of, paper_eval = doc["metric"], doc.get("eval", {})
    grid = Grid(doc)
    same: dict[tuple, RunSpec] = {}  # identical training under two names is trained once
    for table in doc["tables"]:
        for row in table["rows"]:
            var = variants[row["variant"]]
            for col_name, col in table["columns"].items():
                pub, text = _published(row["published"].get(col_name))
                dataset, setting = col["dataset"], col["setting"]
                ev = {**EVAL_DEFAULTS, **paper_eval, **col.get("eval", {})}
                eval_key = tuple((k, ev[k]) for k in EVAL_KEYS)
                base = dict(table=table["id"], row=row["row"], column=col_name,
                            metric=metric_of[dataset], eval_key=eval_key, published=pub,
                            published_text=text)
                skip = (row.get("skip") or {}).get(col_name, "")
                if skip:
                    grid.cells.append(Cell(run=None, skip=skip, **base))
                    continue
                splits = (table.get("splits") or (split_files or {}).get((dataset, setting))
                          or ("kfold:1" if setting == "transfer" else default_splits))
                col_over = {k: str(v) for k, v in (col.get("overrides") or {}).items()}
                features = col.get("features") or var.get("features")
                rid = run_id(row["variant"], col.get("features"), col_over, dataset, setting, splits)
                overrides = {**{k: str(v) for k, v in (var.get("overrides") or {}).items()},
                             **{k: str(v) for k, v in
                                ((var.get("overrides_by_dataset") or {}).get(dataset) or {}).items()},
                             **col_over, **extra_sets.get("*", {}),
                             **extra_sets.get(row["variant"], {})}
                spec = RunSpec(rid, row["variant"], var["head"], var.get("preset"), features,
                               tuple(sorted(overrides.items())), dataset, setting, splits,
                               tuple(var.get("needs", ())))
                key = (spec.head, spec.preset, spec.features, spec.overrides, dataset, setting,
                       splits, spec.needs)
                grid.cells.append(Cell(run=same.setdefault(key, spec), **base))
    return grid


def needed_datasets(run: RunSpec, available: list[str]) -> list[str]:
    """The datasets a run reads: the tested one, plus the others for augmented/transfer."""
    if run.setting == "canonical":
        return [run.dataset]
    return [run.dataset] + [d for d in available if d != run.dataset]


def missing_data(run: RunSpec, have: dict[str, dict]) -> str:
    """Why ``run`` cannot run whatever its features, or "": a needed config value not given, its
    dataset absent, no other dataset for augmented/transfer."""
    for need in run.needs:
        if need not in dict(run.overrides):
            return f"needs {need} (--set {run.variant}:{need}=PATH)"
    if run.dataset not in have:
        return f"no {run.dataset} data (no eccv16_dataset_{run.dataset}_google_pool5.h5 or --store)"
    if run.setting != "canonical" and len(needed_datasets(run, sorted(have))) < 2:
        return f"the {run.setting} setting needs other datasets than {run.dataset}"
    return ""


def missing_inputs(run: RunSpec, have: dict[str, dict], features_default: str) -> str:
    """Why ``run`` cannot run, or "" when it can. have: {dataset: {"features": set of stored
    feature names (and "frames"), "labels": bool}} for the datasets found."""
    reason = missing_data(run, have)
    if reason:
        return reason
    feats = run.features or features_default
    lacking = [d for d in needed_datasets(run, sorted(have)) if feats not in have[d]["features"]]
    return f"no {feats} in the {', '.join(lacking)} store(s)" if lacking else ""
