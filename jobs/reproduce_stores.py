"""The inputs of ``vsum reproduce``: one store per dataset (imported from the eccv16 h5 files or
given with ``--store NAME=PATH``), what each store holds, and public split files by setting.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.errors import InputError

SPLIT_FILE_FORMS = {"canonical": ("{d}.yml", "{d}_splits.json"),
                    "augmented": ("{d}_aug.yml", "{d}_aug_splits.json"),
                    "transfer": ("{d}_trans.yml",)}


def prepare_stores(h5_dir: str | None, out: Path, given: dict[str, str]) -> tuple[dict[str, str], list[str]]:
    """{dataset: store path}, and one error line per h5 file that could not be read."""
    from stores.h5io import import_h5
    from stores.splits import StoreIndex, eccv16_dataset_name

    stores, errors = {}, []
    for name, path in given.items():
        if not Path(path).exists() and "://" not in path:
            raise InputError(f"--store {name}={path}: no such store", path)
        found = sorted(StoreIndex([path]).datasets)
        if name not in found:
            raise InputError(f"--store {name}={path}: its videos are of {found or 'no dataset'}", path)
        stores[name] = path
    if h5_dir is None:
        return stores, errors
    if not Path(h5_dir).is_dir():
        raise InputError("--h5: not a folder", h5_dir)
    for f in sorted(Path(h5_dir).glob("*.h5")):
        name = eccv16_dataset_name(f.name)
        if name is None:
            print(f"reproduce: {f}: skipped (not named eccv16_dataset_<name>_google_pool5.h5)")
            continue
        if name in stores:
            continue
        target = out / "stores" / f"{name}.zarr"
        try:
            if not _imported(f, target):
                result = import_h5(str(f), str(target), name)
                print(f"reproduce: {f.name}: {len(result.ids)} videos -> {target}")
                errors.extend(result.failed)  # bad groups: already one line each
            stores[name] = str(target)
        except (OSError, KeyError, ValueError) as exc:
            errors.append(f"{f}: not a readable eccv16 h5 file ({' '.join(str(exc).split())[:200]})")
    return stores, errors


def _imported(h5_path: Path, store: Path) -> bool:
    """True when ``store`` already holds every group of the h5 file as a complete video."""
    import h5py

    from stores.reader import FeatureStore

    if not store.exists():
        return False
    with h5py.File(h5_path, "r") as h5:
        n = len(h5.keys())
    return len(FeatureStore(str(store)).video_ids()) == n


def inspect_stores(stores: dict[str, str]) -> dict[str, dict]:
    """{dataset: {"features": stored feature names (+ "frames"), "labels": bool}} from each
    store's first complete video."""
    from stores import layout
    from stores.reader import FeatureStore

    have = {}
    for name, path in stores.items():
        fs = FeatureStore(path)
        ids = fs.video_ids()
        if ids:
            have[name] = {"features": set(fs.feature_names(ids[0])),
                          "labels": fs.has(ids[0], layout.USER_SUMMARY)}
    return have


def find_split_files(folder: str | None, datasets) -> dict[tuple[str, str], str]:
    """Public split files by (dataset, setting): DSNet ``tvsum.yml``/``_aug.yml``/``_trans.yml``,
    VASNet ``tvsum_splits.json``/``_aug_splits.json``."""
    if not folder:
        return {}
    if not Path(folder).is_dir():
        raise InputError("--split-files: not a folder", folder)
    out = {}
    for d in datasets:
        for setting, forms in SPLIT_FILE_FORMS.items():
            hits = [Path(folder) / f.format(d=d) for f in forms if (Path(folder) / f.format(d=d)).is_file()]
            if hits:
                out[(d, setting)] = str(hits[0])
    return out
