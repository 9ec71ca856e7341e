"""One handle for a store: its URL and storage options, the root opened once (lazily).

    store = Store.at("s3://bucket/feats.zarr", {"endpoint_url": ...})   # at the CLI edge
    store.complete_config_hashes()   # {video id: config hash}, None when there is no store yet
    with store.lease("vsum extract") as lock: ...
    manifest = store.manifest(); writer = store.video_writer("vid"); store.discard_video("vid")

A ``Store`` is a small picklable value: Ray actors and tasks receive it whole (the opened root
is not shipped; each process opens its own on first use), so credentials are never threaded by
hand. Options default to ``$VSUM_STORAGE_OPTIONS``, resolved when the value is made (in the
driver: workers on other nodes may not have that environment). Video inputs given as URLs are
read with the same options (``filesystem_for``), as ``--storage-options`` has always meant.
"""
from __future__ import annotations

from pipeline.errors import StoreError


class Store:
    """A store location. ``url``: a local path or an fsspec URL."""

    def __init__(self, url: str, storage_options: dict | None = None):
        from stores.location import storage_options_from_env

        self.url = str(url)
        self.storage_options = storage_options if storage_options is not None else storage_options_from_env()
        self._root = None  # zarr.Group opened for writing, on first use in this process

    @classmethod
    def at(cls, store: Store | str, storage_options: dict | None = None) -> Store:
        """``store`` itself when it is a Store, else a Store for that path or URL."""
        return store if isinstance(store, Store) else cls(store, storage_options)

    @classmethod
    def of_root(cls, root) -> Store:
        """A Store around a root group someone already opened (benchmarks, tests)."""
        store = cls(str(root.store))
        store._root = root
        return store

    def __repr__(self) -> str:
        return f"Store({self.url!r})"  # never the options: they may hold credentials

    def __str__(self) -> str:
        return self.url

    def __getstate__(self) -> dict:
        return {"url": self.url, "storage_options": self.storage_options}

    def __setstate__(self, state: dict) -> None:
        self.url, self.storage_options, self._root = state["url"], state["storage_options"], None

    # -- the root --------------------------------------------------------------------------
    def root(self):
        """The root group opened for writing (created with its schema attributes when missing),
        once per process."""
        if self._root is None:
            from stores.location import open_root

            self._root = open_root(self.url, "a", self.storage_options)
        return self._root

    def reader(self):
        """A ``FeatureStore`` (complete videos only; raises when there is no store)."""
        from stores.reader import FeatureStore

        return FeatureStore(self.url, self.storage_options)

    def existing(self):
        """The store's reader, or None when there is no store at that location yet; a location
        holding anything else (even an empty folder) is a StoreError, never "nothing yet"."""
        try:
            return self.reader()
        except FileNotFoundError:  # stores' StoreNotFound, or zarr's own
            return None
        except (OSError, ValueError) as e:
            raise StoreError(f"cannot read the store ({type(e).__name__}: "
                             f"{' '.join(str(e).split())[:160]})", file=self.url) from None

    # -- what jobs ask -----------------------------------------------------------------------
    def complete_config_hashes(self) -> dict[str, str] | None:
        """{video id: config hash} of the complete videos, from the index (one read for every
        video); None when the store does not exist."""
        from stores import layout

        fs = self.existing()
        if fs is None:
            return None
        return {v: a.get("config_hash") for v, a in fs.all_attrs().items() if a.get(layout.COMPLETE)}

    def video_writer(self, video_id: str):
        """A ``stores.writer.VideoWriter`` for ``videos/<video_id>`` (``complete`` written last)."""
        from stores.writer import VideoWriter

        return VideoWriter(self.root(), video_id)

    def discard_video(self, video_id: str) -> str:
        """Remove a video's partial group; "" or why it could not be removed."""
        from stores.writer import discard_video

        return discard_video(self.root(), video_id)

    def read_manifest(self):
        """Every video's newest manifest row (pandas DataFrame; empty when there is none)."""
        from stores.manifest import read_manifest

        return read_manifest(self.url, self.storage_options)

    def manifest(self, command: str = ""):
        """A writer's ``stores.manifest.Manifest`` (creating it marks the store open)."""
        from stores.manifest import Manifest

        return Manifest(self.url, self.storage_options, command=command)

    def lease(self, command: str = ""):
        """The store's ``stores.lock.StoreLock`` (``with store.lease(cmd) as lock:``)."""
        from stores.lock import StoreLock

        return StoreLock(self.url, self.storage_options, command=command)

    def check(self) -> list:
        """``stores.check.check_store``: every problem found (empty when the store is sound)."""
        from stores.check import check_store

        return check_store(self.url, self.storage_options)

    # -- inputs read with the same credentials ------------------------------------------------
    def filesystem_for(self, url: str):
        """(fsspec filesystem, path) for an input URL, opened with this store's options."""
        import fsspec

        return fsspec.core.url_to_fs(url, **(self.storage_options or {}))

    def open_input(self, url: str):
        """An input URL opened for reading (binary file object) with this store's options."""
        import fsspec

        return fsspec.open(url, "rb", **(self.storage_options or {})).open()
