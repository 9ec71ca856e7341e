"""What ``vsum extract`` still has to do, read from the store before anything starts.

    sources + store + configuration hash --> (source -> video id, sources to extract, stale
                                              manifest rows)

A store that does not exist yet means "everything"; a store that exists but cannot be read is
a StoreError (never silently "everything": that would re-extract a whole corpus;
``Store.existing``). Light imports only (zarr, pandas): a run with nothing to do ends here,
without torch or Ray.
"""
from __future__ import annotations

from dataclasses import dataclass

from pipeline.errors import StoreError
from stores.store import Store


@dataclass
class Plan:
    ids: dict[str, str]  # source -> video id
    todo: list[str]  # sources to extract, longest first
    stale: list[str]  # sources complete in the store whose manifest row does not say so

    @property
    def nothing_to_do(self) -> bool:
        return not self.todo and not self.stale


def manifest_statuses(store: Store) -> dict[str, str]:
    """{video id: status} from the store's manifest parts, merged ({} when there are none)."""
    try:
        man = store.read_manifest()
    except (OSError, ValueError, KeyError) as e:
        raise StoreError(f"cannot read the store's manifest ({type(e).__name__})", file=store.url) from None
    if not len(man):
        return {}
    return dict(zip(man["video_id"], man["status"]))


def plan_work(sources: list[str], store: Store | str, chash: str, force: bool, damaged: set[str]) -> Plan:
    """Which sources still need work: not complete with this configuration hash, damaged
    (``--repair``), or everything (``--force``); longest (by bytes) first."""
    from jobs.inputs import source_size
    from stores.ids import unique_video_ids

    store = Store.at(store)
    ids = unique_video_ids(sources)
    hashes = store.complete_config_hashes()
    done = {v for v, h in (hashes or {}).items() if h == chash}
    todo = [s for s in sources if force or ids[s] not in done or ids[s] in damaged]
    todo.sort(key=lambda s: source_size(s, store), reverse=True)
    statuses = manifest_statuses(store) if hashes is not None else {}
    stale = [s for s in sources if s not in todo and statuses.get(ids[s]) != "complete"]
    return Plan(ids, todo, stale)
