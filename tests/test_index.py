"""The manifest's append-only parts and the store's index (stores/manifest*.py, stores/index.py).

Real Zarr stores on a local disk, real writers; "killed" writers are real processes SIGKILLed in
the middle of a manifest write. What must hold: one row per video whatever happened, the index
read in one go when it is current, a scan (and a line saying so) when it is not, and never an
incomplete video that looks complete.
"""
from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from jobs.extract_plan import plan_work
from stores import layout
from stores.dataset import StoreInputError, VideoDataset
from stores.index import GroupReader, load_index
from stores.location import open_root
from stores.manifest import Manifest, read_manifest
from stores.manifest_parts import PartStore
from stores.reader import FeatureStore
from stores.store import Store
from stores.writer import VideoWriter, write_array

REPO = Path(__file__).resolve().parents[1]


def write_video(root, vid: str, t: int = 6, finish: bool = True) -> dict:
    w = VideoWriter(root, vid)
    w.begin({"source": f"/in/{vid}.mp4", "config_hash": "h1"})
    w.write(layout.PICKS, np.arange(t, dtype=np.int32) * 15)
    w.write(layout.feature_path("googlenet"), np.ones((t, 4), np.float32))
    w.write(layout.GTSCORE, np.linspace(0, 1, t).astype(np.float32))
    if finish:
        w.finish({"n_frames": 15 * t, "n_steps": t, "fps": 30.0})
    return {"video_id": vid, "source": f"/in/{vid}.mp4", "status": "complete", "error": ""}


def job(store: Path, vids: list[str], close: bool = True) -> Manifest:
    """A writer: opens the manifest, writes the videos, saves after each, closes."""
    root = open_root(str(store), "a")
    m = Manifest(str(store))
    for v in vids:
        m.update(write_video(root, v))
        m.save()
    if close:
        m.close()
    return m


def kinds(store: Path) -> list[str]:
    return [p.kind for p in PartStore(str(store)).read()]


def scanned(store: Path) -> dict:
    r = GroupReader(str(store))
    return {v: e for v, e in r.describe(r.names()).items() if e is not None}


def test_saves_append_parts_and_close_leaves_one_snapshot(tmp_path):
    store = tmp_path / "s.zarr"
    m = job(store, ["a", "b"], close=False)
    m.update({"video_id": "a", "source": "/in/a.mp4", "status": "failed", "error": "x"})
    m.save()
    assert kinds(store) == ["open", "rows", "rows", "rows"]
    man = read_manifest(str(store)).set_index("video_id")
    assert sorted(man.index) == ["a", "b"] and man.loc["a", "status"] == "failed"  # newest row wins
    m.close()
    assert kinds(store) == ["snapshot"]
    assert read_manifest(str(store)).set_index("video_id").loc["a", "status"] == "failed"
    assert not list((store / "manifest").glob("*.tmp"))


def test_a_long_writer_folds_its_own_parts(tmp_path, monkeypatch):
    import stores.manifest as manifest_mod

    monkeypatch.setattr(manifest_mod, "COMPACT_EVERY", 3)
    store = tmp_path / "s.zarr"
    open_root(str(store), "a")
    m = Manifest(str(store))
    for i in range(10):
        m.update({"video_id": f"v{i}", "source": "", "status": "failed", "error": "e"})
        m.save()
        assert len(kinds(store)) <= 1 + 3 + 1  # open + at most COMPACT_EVERY row parts (+ the fold)
    assert sorted(read_manifest(str(store))["video_id"]) == [f"v{i}" for i in range(10)]


def test_the_index_is_one_read_and_equals_a_scan(tmp_path):
    store = tmp_path / "s.zarr"
    job(store, ["a", "b", "c"])
    ix = load_index(str(store))
    assert ix.source == "index" and ix.entries == scanned(store)
    assert ix.array("b", layout.feature_path("googlenet")) == ((6, 4), "float32")
    fs = FeatureStore(str(store))
    assert fs.video_ids() == ["a", "b", "c"] and fs.all_attrs()["c"]["config_hash"] == "h1"


def test_a_writer_killed_after_the_index_leaves_no_incomplete_video_looking_complete(tmp_path, capsys):
    store = tmp_path / "s.zarr"
    job(store, ["a", "b"])
    # A second job (e.g. --force or a new configuration) opens the manifest, starts rewriting
    # "a" and dies: the group is incomplete, the old index still says complete.
    m = Manifest(str(store))
    write_video(open_root(str(store), "a"), "a", finish=False)
    del m  # never closed
    capsys.readouterr()
    ix = load_index(str(store))
    assert ix.source == "scan" and "has not closed it" in ix.reason
    assert ix.complete_ids() == ["b"] and ix.ids() == ["a", "b"]
    assert "reading its 2 video groups" in capsys.readouterr().err  # says so
    todo = plan_work(["/in/a.mp4", "/in/b.mp4"], Store(str(store)), "h1", False, set()).todo
    assert todo == ["/in/a.mp4"]
    # The rerun completes it; its close reads every group (the index it opened on was stale).
    job(store, ["a"])
    ix = load_index(str(store))
    assert ix.source == "index" and ix.complete_ids() == ["a", "b"] and ix.entries == scanned(store)
    assert kinds(store) == ["snapshot"]


def test_a_discarded_video_leaves_the_index(tmp_path):
    store = tmp_path / "s.zarr"
    job(store, ["a", "b"])
    m = Manifest(str(store))
    del open_root(str(store), "a")["videos/a"]  # what --repair / a crashed worker's discard does
    m.update({"video_id": "a", "source": "/in/a.mp4", "status": "failed", "error": "gone"})
    m.close()
    ix = load_index(str(store))
    assert ix.source == "index" and ix.ids() == ["b"]


def test_two_jobs_over_time_and_tools_that_bypass_the_manifest(tmp_path):
    store = tmp_path / "s.zarr"
    job(store, ["a", "b"])
    root = open_root(str(store), "a")
    root["videos/a"].attrs["marker"] = 1  # changed behind the manifest's back
    job(store, ["c"])  # the second job re-reads only what it changed (and what is new)
    ix = load_index(str(store))
    assert ix.ids() == ["a", "b", "c"] and "marker" not in ix.attrs("a")
    # A tool that adds a group without the manifest, and a group deleted by hand: the listing
    # of videos/ (one request per 1,000 groups) catches both.
    write_video(root, "d")
    del root["videos/b"]
    ix = load_index(str(store))
    assert ix.source == "index" and ix.complete_ids() == ["a", "c", "d"]
    assert ix.entries["d"] == scanned(store)["d"]


def test_interleaved_writers_leave_an_untrusted_index_until_one_closes_alone(tmp_path):
    store = tmp_path / "s.zarr"
    job(store, ["a"])
    first = job(store, ["b"], close=False)
    second = job(store, ["c"], close=False)  # opened while the first is still open
    first.close()
    ix = load_index(str(store), quiet=True)
    assert ix.source == "scan" and ix.complete_ids() == ["a", "b", "c"]
    second.close()  # the first wrote after this one opened: still not trusted
    assert load_index(str(store), quiet=True).source == "scan"
    job(store, [])  # a writer alone
    ix = load_index(str(store))
    assert ix.source == "index" and ix.entries == scanned(store)
    assert sorted(read_manifest(str(store))["video_id"]) == ["a", "b", "c"]


def test_dataset_takes_shapes_from_the_index_and_reads_completeness_from_the_group(tmp_path):
    store = tmp_path / "s.zarr"
    job(store, ["a", "b"])
    root = open_root(str(store), "a")
    write_array(root["videos/b"], "features/extra", np.zeros((6, 2), np.float32))  # not in the index
    data = VideoDataset(str(store), ["a", "b"], need_labels=True)
    assert data.lengths() == {"a": 6, "b": 6} and data.feature_shape() == (4,)
    assert VideoDataset(str(store), ["b"], features="extra").feature_shape() == (2,)
    root["videos/a"].attrs[layout.COMPLETE] = False  # a writer changed it after the listing
    with pytest.raises(StoreInputError, match="videos/a: not complete"):
        data.get("a")
    assert data.get("b")["x"].shape == (6, 4)


# -- writers SIGKILLed in the middle of a manifest write ---------------------------------------------
CHILD = r"""
import os, sys, time
import numpy as np
import stores.manifest_parts as parts
from stores.location import open_root
from stores.manifest import Manifest
from stores.writer import VideoWriter

def write_video(root, vid):
    w = VideoWriter(root, vid)
    w.begin({{"source": f"/in/{{vid}}.mp4", "config_hash": "h1"}})
    w.write("picks", np.arange(6, dtype=np.int32) * 15)
    w.finish({{"n_frames": 90, "n_steps": 6}})
    return {{"video_id": vid, "source": f"/in/{{vid}}.mp4", "status": "complete", "error": ""}}

store, point = sys.argv[1], sys.argv[2]
state = {{"kind": None}}
write, link, delete = parts.PartStore.write, os.link, parts.PartStore.delete

def pause():
    open(store + ".paused", "w").close()
    time.sleep(600)

def write_part(self, seq, kind, *a, **k):
    state["kind"] = kind
    return write(self, seq, kind, *a, **k)

def link_part(src, dst):  # the temporary file is whole; the part is not in place yet
    if state["kind"] == point and dst.endswith(".parquet"):
        pause()
    return link(src, dst)

def delete_parts(self, seqs):  # the snapshot is in place; the parts it replaces are not gone
    if point == "cleanup" and state["kind"] == "snapshot":
        pause()
    return delete(self, seqs)

parts.PartStore.write, os.link, parts.PartStore.delete = write_part, link_part, delete_parts
root = open_root(store, "a")
m = Manifest(store)
for v in ["a", "b", "c"]:
    m.update(write_video(root, v))
    m.save()
m.close()
"""


@pytest.mark.parametrize("point", ["rows", "snapshot", "cleanup"])
@pytest.mark.timeout(120)
def test_writer_killed_during_a_manifest_write_loses_and_duplicates_nothing(tmp_path, point):
    store = tmp_path / "s.zarr"
    job(store, ["z"])  # an earlier job: a snapshot with one video
    script = tmp_path / "child.py"
    script.write_text(CHILD.format())
    child = subprocess.Popen([sys.executable, str(script), str(store), point], cwd=REPO,
                             stderr=subprocess.PIPE)
    paused = Path(f"{store}.paused")
    t0 = time.monotonic()
    while not paused.exists():
        assert child.poll() is None, child.stderr.read().decode()[-2000:]
        assert time.monotonic() - t0 < 90, "the writer never reached the manifest write"
        time.sleep(0.1)
    child.send_signal(signal.SIGKILL)
    child.wait(30)

    man = read_manifest(str(store))
    assert man["video_id"].is_unique  # whole parts only: nothing duplicated ...
    saved = {"rows": ["z"], "snapshot": ["a", "b", "c", "z"], "cleanup": ["a", "b", "c", "z"]}[point]
    assert sorted(man["video_id"]) == saved  # ... and nothing a finished write had saved is lost
    ix = load_index(str(store), quiet=True)
    if point == "cleanup":  # the snapshot was in place: the index is current
        assert ix.source == "index" and ix.entries == scanned(store)
    else:  # the killed writer's open part makes readers scan
        assert ix.source == "scan" and ix.complete_ids() == sorted(scanned(store))
    # The rerun: every video once, the index current again.
    m = Manifest(str(store))
    for v in ["a", "b", "c"]:
        if man.set_index("video_id").get("status", {}).get(v) != "complete":
            m.update({"video_id": v, "source": f"/in/{v}.mp4", "status": "complete", "error": ""})
    m.close()
    man = read_manifest(str(store))
    assert sorted(man["video_id"]) == ["a", "b", "c", "z"] and set(man["status"]) == {"complete"}
    ix = load_index(str(store))
    assert ix.source == "index" and ix.entries == scanned(store)
    assert kinds(store) == ["snapshot"]  # a half-done write's temporary file is no part
