"""Every ``vsum`` command answers bad input with one line: the exit-code table (README), no
traceback, at most three lines, a message that names the problem.

Each case runs the real console entry point in a subprocess. The cases run together in a thread
pool once per module (most fail before torch, Ray or Dask load, so they take about a second
each); the parametrized tests then check one case each.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.synth_video import SynthVideoSpec, write_synthetic_video
from stores.lock import StoreLock
from stores.synthetic import build_synthetic_store

VSUM = str(Path(sys.executable).parent / "vsum")
# The module fixture runs every case (about 70 s of CPU on 2 cores); a loaded shared machine
# may need more than the default 600 s per item.
pytestmark = pytest.mark.timeout(1800)

# (id, command line with {d} = the fixture folder, expected exit code, a word the message holds)
# {store}: a labelled synthetic store (googlenet=16, 4 videos); {busy}: a store whose lease this
# test process holds; {video}: a real 20-frame H.264 clip; {zip}: a zip archive that is no
# checkpoint (passes the cheap archive check, so the video checks after it are reached).
CASES = [
    # top level
    ("no-command", "", 2, "required"),
    ("unknown-command", "nosuch", 2, "invalid choice"),
    # vsum store
    ("store-unknown-sub", "store nosuch", 2, "invalid choice"),
    ("info-missing-store", "store info {d}/nosuch.zarr", 2, "no such store"),
    ("info-a-file", "store info {d}/afile", 2, "not a vsum store"),
    ("info-not-vsum-zarr", "store info {store}/videos", 2, "not a vsum store"),
    ("check-missing-store", "store check {d}/nosuch.zarr", 2, "no such store"),
    ("check-empty-folder", "store check {d}/empty", 2, "not a vsum store"),
    ("export-missing-store", "store export-h5 {d}/nosuch.zarr {d}/o.h5", 2, "no such store"),
    ("export-unknown-feature", "store export-h5 {store} {d}/o.h5 --feature nosuch", 2, "googlenet"),
    ("export-unwritable", "store export-h5 {store} {d}/nodir/o.h5", 2, "cannot write"),
    ("import-h5-missing", "store import-h5 {d}/nosuch.h5 {d}/i1.zarr", 2, "no such file"),
    ("import-h5-garbage", "store import-h5 {d}/garbage.bin {d}/i2.zarr", 2, "not an HDF5"),
    ("import-h5-no-groups", "store import-h5 {d}/nogroups.h5 {d}/i3.zarr", 2, "no video groups"),
    ("import-h5-bad-group", "store import-h5 {d}/partial.h5 {d}/i4.zarr", 1, "lacks features"),
    ("synth-zero-videos", "store synth {d}/y1.zarr --videos 0", 2, "--videos"),
    ("synth-bad-features", "store synth {d}/y2.zarr --features googlenet=abc", 2, "--features"),
    ("synth-steps", "store synth {d}/y3.zarr --min-steps 50 --max-steps 10", 2, "--min-steps"),
    ("synth-unwritable", "store synth {d}/afile/y5.zarr --videos 1", 2, "cannot write"),
    # vsum import
    ("tvsum-missing", "import tvsum --anno {d}/nosuch.mat --store {d}/a1.zarr", 2, "no such file"),
    ("tvsum-garbage-mat", "import tvsum --anno {d}/garbage.mat --store {d}/a2.zarr", 2, "MATLAB"),
    ("tvsum-no-anno", "import tvsum --store {d}/a3.zarr", 2, "required"),
    ("tvsum-bad-fps", "import tvsum --anno {d}/garbage.mat --fps 0 --store {d}/a4.zarr", 2, "--fps"),
    ("summe-empty-gt", "import summe --gt {d}/empty --store {d}/a5.zarr", 2, "no .mat files"),
    ("json-not-json", "import json {d}/garbage.bin --store {d}/a6.zarr", 2, "not readable JSON"),
    ("json-store-unwritable", "import json {d}/good.json --store {d}/afile/a7.zarr", 2, "cannot create"),
    ("json-videos-not-dir", "import json {d}/good.json --store {d}/a8.zarr --videos {d}/nodir", 2,
     "not a folder"),
    # vsum kts
    ("kts-missing-store", "kts --store {d}/nosuch.zarr", 2, "no such store"),
    ("kts-unknown-feature", "kts --store {store} --feature nosuch", 2, "googlenet"),
    ("kts-min-seg", "kts --store {store} --min-seg 0", 2, "--min-seg"),
    ("kts-max-seg", "kts --store {store} --min-seg 4 --max-seg 2", 2, "--max-seg"),
    ("kts-store-in-use", "kts --store {busy}", 3, "in use"),
    # vsum evaluate
    ("eval-missing-run", "evaluate {d}/nosuch --report {d}/r", 2, "no such run folder"),
    ("eval-no-predictions", "evaluate {d}/empty --report {d}/r", 2, "no predictions"),
    ("eval-rank-typo", "evaluate {d}/empty --report {d}/r --rank frme", 2, "--rank"),
    ("eval-ratio-7", "evaluate {d}/empty --report {d}/r --ratio 7", 2, "--ratio"),
    ("eval-workers-0", "evaluate {d}/empty --report {d}/r --workers 0", 2, "--workers"),
    # vsum baselines
    ("baselines-missing-store", "baselines --store {d}/nosuch.zarr --report {d}/r", 2, "no such store"),
    ("baselines-rank-typo", "baselines --store {store} --report {d}/r --rank frame,pik", 2, "--rank"),
    ("baselines-ratio", "baselines --store {store} --report {d}/r --ratio 1.5", 2, "--ratio"),
    ("baselines-seeds", "baselines --store {store} --report {d}/r --seeds -1", 2, "--seeds"),
    # vsum train (the last two load torch to know the heads and their configs)
    ("train-seeds", "train dsn --store {store} --out {d}/t --seeds 0,x", 2, "--seeds"),
    ("train-missing-store", "train dsn --store {d}/nosuch.zarr --out {d}/t", 2, "no such store"),
    ("train-kfold-form", "train dsn --store {store} --out {d}/t --splits kfold:x", 2, "--splits"),
    ("train-kfold-too-many", "train dsn --store {store} --out {d}/t --splits kfold:9", 2, "k-fold"),
    ("train-no-split-file", "train dsn --store {store} --out {d}/t --splits {d}/nosuch.json", 2,
     "--splits"),
    ("train-split-not-json", "train dsn --store {store} --out {d}/t --splits {d}/garbage.bin", 2,
     "garbage.bin"),
    ("train-split-keys-absent", "train dsn --store {store} --out {d}/t --splits {d}/split.json", 2,
     "--missing-keys"),
    ("train-epochs", "train dsn --store {store} --out {d}/t --epochs 0", 2, "--epochs"),
    ("train-val-fraction", "train dsn --store {store} --out {d}/t --val-fraction 1.5", 2,
     "--val-fraction"),
    ("train-unknown-head", "train nosuch --store {store} --out {d}/t --splits kfold:2", 2, "dsn"),
    ("train-unknown-set-key", "train dsn --store {store} --out {d}/t --splits kfold:2 --set hiden=8",
     2, "hidden"),
    # vsum summarize (the pickle case, which loads torch, is its own test below)
    ("sum-no-checkpoint", "summarize {video} --checkpoint {d}/nosuch.pt --out {d}/s.mp4", 2, "not found"),
    ("sum-garbage-checkpoint", "summarize {video} --checkpoint {d}/garbage.bin --out {d}/s.mp4", 2,
     "not a vsum checkpoint"),
    ("sum-missing-video", "summarize {d}/nosuch.mp4 --checkpoint {zip} --out {d}/s.mp4", 2,
     "no such video"),
    ("sum-garbage-video", "summarize {d}/garbage.bin --checkpoint {zip} --out {d}/s.mp4", 2,
     "not a readable video"),
    ("sum-ratio", "summarize {video} --checkpoint {zip} --out {d}/s.mp4 --ratio 7", 2, "--ratio"),
    ("sum-crf", "summarize {video} --checkpoint {zip} --out {d}/s.mp4 --crf 99", 2, "--crf"),
    ("sum-device", "summarize {video} --checkpoint {zip} --out {d}/s.mp4 --device tpu", 2, "--device"),
    ("sum-out-is-dir", "summarize {video} --checkpoint {zip} --out {d}/empty", 2, "--out"),
    # vsum bench / demo: argument errors
    ("bench-unknown", "bench nosuch", 2, "invalid choice"),
    ("bench-kts-bad-flag", "bench kts --nosuch", 2, "unrecognized"),
    ("demo-synthetic-not-int", "demo --synthetic many", 2, "invalid int"),
    ("demo-bad-flag", "demo --nosuch", 2, "unrecognized"),
    # vsum extract: what already fails before any work (issue 12 adds the option checks)
    ("extract-no-inputs", "extract --store {d}/e1.zarr", 2, "required"),
    ("extract-no-videos-found", "extract {d}/empty --store {d}/e2.zarr", 2, "no input videos"),
    ("extract-none-exists", "extract {d}/nosuch1.mp4 {d}/nosuch2.mp4 --store {d}/e5.zarr "
     "--weights random", 2, "none of the 2 inputs exists"),
    ("extract-storage-options", "extract {video} --store {d}/e3.zarr --storage-options {{bad", 2,
     "storage-options"),
    ("extract-every-not-int", "extract {video} --store {d}/e4.zarr --every often", 2, "invalid int"),
]


def _files(d: Path) -> dict[str, str]:
    """The fixture folder's inputs -> the placeholders of CASES."""
    store = d / "store.zarr"
    build_synthetic_store(str(store), n_videos=4, seed=0, feature_shapes={"googlenet": (16,)},
                          min_steps=20, max_steps=30)
    busy = d / "busy.zarr"
    build_synthetic_store(str(busy), n_videos=1, seed=1, feature_shapes={"googlenet": (16,)},
                          min_steps=20, max_steps=30)
    (d / "empty").mkdir()
    (d / "afile").write_text("a plain file\n")
    (d / "garbage.bin").write_bytes(bytes(range(256)) * 8)
    (d / "garbage.mat").write_bytes(b"MATLAB? no" * 50)
    (d / "good.json").write_text(json.dumps(
        {"videos": [{"name": "clip", "fps": 10.0, "user_scores": [[1.0] * 30, [2.0] * 30]}]}))
    (d / "split.json").write_text(json.dumps(
        [{"train_keys": ["synth_000", "synth_001", "not_in_store"], "test_keys": ["synth_002"]}]))
    with h5py.File(d / "nogroups.h5", "w") as h5:
        h5["x"] = np.zeros(3)
    with h5py.File(d / "partial.h5", "w") as h5:
        good = h5.create_group("video_1")
        good["features"] = np.zeros((4, 8), np.float32)
        good["picks"] = np.arange(4) * 15
        good["n_frames"] = 60
        h5.create_group("video_2")["picks"] = np.arange(4) * 15  # no features, no n_frames
    with zipfile.ZipFile(d / "notackpt.pt", "w") as z:
        z.writestr("archive/data.pkl", b"not a pickle")
    video = d / "clip.mp4"
    write_synthetic_video(str(video), SynthVideoSpec(n_frames=20, width=64, height=48))
    return {"d": str(d), "store": str(store), "busy": str(busy), "video": str(video),
            "zip": str(d / "notackpt.pt")}


def _run(argv: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([VSUM, *argv], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=600)


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """Run every case once, a few at a time -> {case id: CompletedProcess}."""
    d = tmp_path_factory.mktemp("cli")
    subs = _files(d)
    env = {**os.environ, "VSUM_LOG_DIR": str(d / "logs"), "RAY_AUTH_MODE": "disabled",
           "OMP_NUM_THREADS": "1"}
    env.pop("VSUM_DEBUG", None)
    with StoreLock(subs["busy"], command="test_cli_errors"):  # another job holds {busy}
        with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 2)) as pool:
            futures = {cid: pool.submit(_run, line.format(**subs).split(), d, env)
                       for cid, line, _, _ in CASES}
            out = {cid: f.result() for cid, f in futures.items()}
    out["_dir"] = d
    return out


@pytest.mark.parametrize("cid,line,code,word", CASES, ids=[c[0] for c in CASES])
def test_one_line_and_the_exit_code(results, cid, line, code, word):
    proc = results[cid]
    text = proc.stdout + proc.stderr
    lines = [x for x in text.splitlines() if x.strip()]
    assert "Traceback" not in text, text
    assert proc.returncode == code, text
    assert 1 <= len(lines) <= 3, text
    assert word.lower() in text.lower(), text


def test_nothing_left_behind_by_refused_commands(results):
    """Refused before any work: no store, no h5 file, no partial file."""
    d = results["_dir"]
    for name in ("i1.zarr", "i2.zarr", "i3.zarr", "y1.zarr", "y2.zarr", "y3.zarr", "a1.zarr",
                 "a6.zarr", "a8.zarr", "e5.zarr", "o.h5", "o.h5.tmp", "o.keys.json"):
        assert not (d / name).exists(), name
    logs = list((d / "logs").glob("*.log")) if (d / "logs").exists() else []
    assert logs == []  # no case was an unexpected error


def test_an_unexpected_error_is_one_line_with_a_log_file(tmp_path):
    """A bug (here: a store whose fps attribute is text) is named in one line that points to
    a log holding the traceback; VSUM_DEBUG=1 prints the traceback instead."""
    from stores.location import open_root
    from stores.manifest import writing

    store = tmp_path / "odd.zarr"
    build_synthetic_store(str(store), n_videos=1, feature_shapes={"googlenet": (8,)},
                          min_steps=20, max_steps=30)
    with writing(str(store), ["synth_000"]):  # a change in place, announced to the store's index
        open_root(str(store), "a")["videos/synth_000"].attrs["fps"] = "thirty"
    env = {**os.environ, "VSUM_LOG_DIR": str(tmp_path / "logs")}
    env.pop("VSUM_DEBUG", None)
    proc = _run(["store", "info", str(store)], tmp_path, env)
    err = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(err) == 1 and "Traceback" not in proc.stderr
    assert "unexpected ValueError" in err[0] and "VSUM_DEBUG=1" in err[0]
    logs = list((tmp_path / "logs").glob("vsum-*.log"))
    assert len(logs) == 1 and str(logs[0]) in err[0]
    assert "Traceback" in logs[0].read_text() and "store info" in logs[0].read_text()
    debug = _run(["store", "info", str(store)], tmp_path, {**env, "VSUM_DEBUG": "1"})
    assert debug.returncode == 1 and "Traceback" in debug.stderr
    assert len(list((tmp_path / "logs").glob("vsum-*.log"))) == 1  # debug: printed, not logged
