"""``stores.Store``: one picklable value for a store (real Zarr on disk; no Ray)."""
from __future__ import annotations

import pickle

import numpy as np
import pytest

from pipeline.errors import StoreError
from stores import layout
from stores.lock import LOCK_NAME, StoreLocked
from stores.store import Store


def _write_video(store: Store, vid: str, chash: str, complete: bool = True) -> None:
    w = store.video_writer(vid)
    w.begin({"source": f"/in/{vid}.mp4", "config_hash": chash})
    w.write(layout.PICKS, np.arange(3, dtype=np.int32))
    if complete:
        w.finish({"n_frames": 45})


def test_pickles_as_url_and_options_and_reopens_its_root(tmp_path):
    store = Store(str(tmp_path / "s.zarr"), {"anon": True})
    root = store.root()
    assert store.root() is root  # opened once
    copy = pickle.loads(pickle.dumps(store))
    assert (copy.url, copy.storage_options) == (store.url, {"anon": True})
    assert copy._root is None  # the open root is not shipped; the copy opens its own
    assert "anon" not in repr(store) and str(store) == store.url  # options may hold credentials
    assert Store.at(store) is store and Store.at(store.url).url == store.url


def test_options_default_to_the_environment_when_made(monkeypatch):
    monkeypatch.setenv("VSUM_STORAGE_OPTIONS", '{"endpoint_url": "http://127.0.0.1:9"}')
    store = Store("s3://b/s.zarr")
    monkeypatch.delenv("VSUM_STORAGE_OPTIONS")
    assert pickle.loads(pickle.dumps(store)).storage_options == {"endpoint_url": "http://127.0.0.1:9"}


def test_plan_reads_complete_videos_with_their_config_hash(tmp_path):
    store = Store(str(tmp_path / "s.zarr"))
    assert store.complete_config_hashes() is None  # no store yet
    (tmp_path / "other").mkdir()
    with pytest.raises(StoreError, match="not a vsum store"):  # never "nothing yet": no re-extraction
        Store(str(tmp_path / "other")).complete_config_hashes()

    _write_video(store, "a", "h1")
    _write_video(store, "b", "h2")
    _write_video(store, "c", "h1", complete=False)
    assert store.complete_config_hashes() == {"a": "h1", "b": "h2"}
    assert store.discard_video("c") == "" and store.discard_video("gone") == ""
    assert store.reader().all_video_ids() == ["a", "b"]
    assert store.check() == []


def test_manifest_and_lease(tmp_path):
    store = Store(str(tmp_path / "s.zarr"))
    store.root()
    with store.lease("vsum extract"):
        assert (tmp_path / "s.zarr" / LOCK_NAME).exists()
        with pytest.raises(StoreLocked):
            Store(store.url).lease("vsum import").acquire()
        m = store.manifest()
        m.update({"video_id": "a", "source": "/in/a.mp4", "status": "complete", "error": ""})
        m.close()
    assert not (tmp_path / "s.zarr" / LOCK_NAME).exists()
    assert list(store.read_manifest()["video_id"]) == ["a"]
