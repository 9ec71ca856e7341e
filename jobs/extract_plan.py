"""What ``vsum extract`` still has to do, read from the store before anything starts.

    sources + store + configuration hash --> (source -> video id, sources to extract, stale
                                              manifest rows)

A store that does not exist yet means "everything"; a store that exists but cannot be read is
a StoreError (never silently "everything": that would re-extract a whole corpus). Light
imports only (zarr, pandas): a run with nothing to do ends here, without torch or Ray.
"""
from __future__ import annotations

import os
from dataclasses import dataclass

from pipeline.errors import StoreError


@dataclass
class Plan:
    ids: dict[str, str]  # source -> video id
    todo: list[str]  # sources to extract, longest first
    stale: list[str]  # sources complete in the store whose manifest row does not say so

    @property
    def nothing_to_do(self) -> bool:
        return not self.todo and not self.stale


def complete_config_hashes(store: str, storage_options) -> dict[str, str] | None:
    """{video id: config hash} of the store's complete videos; None when the store does not
    exist."""
    from stores import layout

    fs = open_existing(store, storage_options)
    if fs is None:
        return None
    attrs = fs.all_attrs()  # the store's index: one read for every video (stores/index.py)
    return {v: a.get("config_hash") for v, a in attrs.items() if a.get(layout.COMPLETE)}


def open_existing(store: str, storage_options):
    """The store's reader, or None when there is no store at that location yet."""
    from zarr.errors import GroupNotFoundError

    from stores.reader import FeatureStore

    try:
        return FeatureStore(store, storage_options)
    except FileNotFoundError:
        return None
    except GroupNotFoundError:
        if os.path.isdir(store) and not os.listdir(store):
            return None  # an empty folder made for the store
        raise StoreError("exists but is not a vsum store (no zarr group); choose another --store",
                         file=store) from None
    except (OSError, ValueError) as e:
        raise StoreError(f"cannot read the store ({type(e).__name__}: {' '.join(str(e).split())[:160]})",
                         file=store) from None


def manifest_statuses(store: str, storage_options) -> dict[str, str]:
    """{video id: status} from the store's manifest parts, merged ({} when there are none)."""
    from stores.manifest import read_manifest

    try:
        man = read_manifest(store, storage_options)
    except (OSError, ValueError, KeyError) as e:
        raise StoreError(f"cannot read the store's manifest ({type(e).__name__})", file=store) from None
    if not len(man):
        return {}
    return dict(zip(man["video_id"], man["status"]))


def plan_work(sources: list[str], store: str, storage_options, chash: str, force: bool,
              damaged: set[str]) -> Plan:
    """Which sources still need work: not complete with this configuration hash, damaged
    (``--repair``), or everything (``--force``); longest (by bytes) first."""
    from jobs.inputs import source_size
    from stores.ids import unique_video_ids

    ids = unique_video_ids(sources)
    hashes = complete_config_hashes(store, storage_options)
    done = {v for v, h in (hashes or {}).items() if h == chash}
    todo = [s for s in sources if force or ids[s] not in done or ids[s] in damaged]
    todo.sort(key=lambda s: source_size(s, storage_options), reverse=True)
    statuses = manifest_statuses(store, storage_options) if hashes is not None else {}
    stale = [s for s in sources if s not in todo and statuses.get(ids[s]) != "complete"]
    return Plan(ids, todo, stale)
