"""`vsum extract` through its console entry point (subprocesses): every bad option and weights
file is one line and exit 2 with no store left behind; a pretrained file downloaded from a real
HTTP server on 127.0.0.1 (a planted checkpoint under its hashed name) is verified, used and
recorded per extractor; the re-run with nothing to do imports neither torch nor Ray."""
from __future__ import annotations

import hashlib
import io
import os
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import torch
from extract_helpers import make_videos
from weights_server import hashed_name, serve_files

from stores.reader import FeatureStore

VSUM = str(Path(sys.executable).parent / "vsum")
# Runs the real entry point after pointing googlenet's catalog entry at a planted file (name,
# URL): the stand-in for torchvision's published file, which no test can download here.
PLANTED_MAIN = """
import sys
from pipeline.features import catalog
catalog.CHECKPOINTS["googlenet"] = catalog.Checkpoint(sys.argv[1], sys.argv[2], "Planted_Weights.V1")
from jobs.cli import main
rc = main(sys.argv[3:])
print("imported:", ",".join(m for m in ("torch", "ray") if m in sys.modules) or "nothing", file=sys.stderr)
sys.exit(rc)
"""


def _env(tmp_path: Path, **extra) -> dict:
    env = {**os.environ, "TORCH_HOME": str(tmp_path / "torch"), "OMP_NUM_THREADS": "1",
           "VSUM_WEIGHTS_URL": "http://127.0.0.1:9/nothing-listens", "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    return {**env, **extra}


def _run(cmd: list[str], env: dict, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> str:
    return make_videos(tmp_path_factory.mktemp("videos"), ["clip"])[0]


@pytest.fixture(scope="module")
def weight_files(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("weights")
    (d / "garbage.pth").write_bytes(os.urandom(4000))
    torch.save({"not.a.key": torch.zeros(1)}, d / "wrong_keys.pth")
    return {p.stem: p for p in d.iterdir()}


BAD = [  # (extra arguments, words the one line must contain)
    (["--features", "googlenet,foo"], "unknown extractor 'foo'"),
    (["--every", "0"], "--every 0 is out of range"),
    (["--fps", "0"], "--fps must be a positive"),
    (["--frames", "4"], "--frames 4 is out of range"),
    (["--features", "st3d", "--clip-len", "1"], "--clip-len 1 is out of range"),
    (["--features", "st3d", "--spatial", "9"], "--spatial 9 is out of range"),
    (["--gpus-per-worker", "1.5"], "--gpus-per-worker 1.5"),
    (["--weights", "foo=x.pth"], "unknown extractor 'foo'"),
    (["--weights", "st3d=random"], "st3d, which --features (googlenet) does not extract"),
    (["--weights", "{missing}"], "googlenet: weights file not found"),
    (["--weights", "{folder}"], "googlenet: weights path is not a file"),
    (["--weights", "{garbage}"], "googlenet: not a readable tensors-only torch checkpoint"),
    (["--weights", "{wrong_keys}"], "missing key 'conv1.conv.weight'"),
    (["--features", "googlenet,st3d", "--weights", "googlenet=random,st3d={wrong_keys}"],
     "st3d: not a torchvision r3d_18 state dict: missing key 'stem.0.weight'"),
    ([], "pretrained weights googlenet-1378be20.pth are not cached and could not be downloaded"),
    (["--weights", "auto"], "pretrained weights googlenet-1378be20.pth are not cached"),
]


def test_bad_options_and_weights_are_one_line_exit_2_and_leave_no_store(video, weight_files, tmp_path):
    names = {"missing": str(tmp_path / "absent.pth"), "folder": str(tmp_path),
             **{k: str(v) for k, v in weight_files.items()}}

    def one(i_case):
        i, (extra, words) = i_case
        store = tmp_path / f"s{i}.zarr"
        args = [a.format(**names) for a in extra]
        res = _run([VSUM, "extract", video, "--store", str(store), "--no-kts", *args], _env(tmp_path))
        return args, words, store, res

    with ThreadPoolExecutor(4) as pool:  # independent processes: overlap their start-up
        results = list(pool.map(one, enumerate(BAD)))
    for args, words, store, res in results:
        out = res.stdout + res.stderr
        lines = [line for line in out.splitlines() if not line.startswith("note: --weights auto")]
        assert res.returncode == 2, (args, out)
        assert len(lines) == 1 and lines[0].startswith("vsum extract: ") and words in lines[0], (args, out)
        assert "Traceback" not in out and not store.exists(), (args, out)
    missing = next(r for a, _, _, r in results if a == [])  # the default: pretrained, unavailable
    assert "--weights random" in missing.stderr and str(tmp_path / "torch" / "hub" / "checkpoints") in missing.stderr
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / "googlenet-1378be20.pth").exists()


def test_a_corrupt_mirror_download_is_deleted_and_nothing_is_created(video, tmp_path):
    with serve_files({"googlenet-1378be20.pth": b"not the published bytes"}) as (base, hits):
        store = tmp_path / "s.zarr"
        res = _run([VSUM, "extract", video, "--store", str(store), "--weights-url", base], _env(tmp_path))
    assert res.returncode == 2 and hits["googlenet-1378be20.pth"] == 1, res.stderr
    assert "failed its hash check" in res.stderr and "deleted and not loaded" in res.stderr
    assert "Traceback" not in res.stderr and not store.exists()
    cache = tmp_path / "torch" / "hub" / "checkpoints"
    assert not cache.exists() or not list(cache.iterdir())


@pytest.fixture(scope="module")
def planted_googlenet() -> tuple[str, bytes]:
    """A GoogLeNet state dict shaped like torchvision's file (aux heads included), under its
    hashed name."""
    from torchvision.models import googlenet

    torch.manual_seed(5)
    buf = io.BytesIO()
    torch.save(googlenet(weights=None, aux_logits=True, init_weights=True).state_dict(), buf)
    data = buf.getvalue()
    return hashed_name("googlenet", data), data


@pytest.mark.slow  # ~110 s under load (three extractors downloaded over loopback, then a re-run); make test-all
@pytest.mark.timeout(400)
def test_downloaded_weights_are_used_recorded_per_extractor_and_the_rerun_is_a_no_op(
        ray_session, video, planted_googlenet, tmp_path):
    name, data = planted_googlenet
    store = tmp_path / "s.zarr"
    env = _env(tmp_path, RAY_ADDRESS=ray_session.get_runtime_context().gcs_address,
               VSUM_WEIGHTS_URL="")  # the default host: here, the planted catalog entry's URL
    with serve_files({name: data}) as (base, hits):
        cmd = [sys.executable, "-c", PLANTED_MAIN, name, f"{base}/{name}", "extract", video,
               "--store", str(store), "--features", "googlenet,st3d", "--clip-len", "2",
               "--weights", "googlenet=pretrained,st3d=random", "--hwaccel", "cuda", "--no-kts",
               "--batch-size", "4", "--workers", "1", "--device", "cpu"]
        first = _run(cmd, env)
        assert first.returncode == 0, first.stdout + first.stderr
        again = _run(cmd, env)
    sha = hashlib.sha256(data).hexdigest()
    assert hits[name] == 1 and (tmp_path / "torch" / "hub" / "checkpoints" / name).read_bytes() == data
    assert f"downloaded {base}/{name}" in first.stderr
    assert f"weights: googlenet Planted_Weights.V1 ({name}, sha256 {sha[:12]}…)" in first.stdout
    assert "weights: st3d random-init(seed=0): RANDOM weights" in first.stdout

    fs = FeatureStore(str(store))
    (vid,) = fs.video_ids()
    attrs = fs.attrs(vid)
    assert attrs["weights"] == {"googlenet": "Planted_Weights.V1", "st3d": "random-init(seed=0)"}
    assert attrs["weights_identity"] == {
        "googlenet": {"name": "Planted_Weights.V1", "file": name, "sha256": sha},
        "st3d": {"name": "random-init(seed=0)", "file": None, "sha256": None}}
    assert attrs["feature_specs"]["googlenet"]["weights_sha256"] == sha
    assert attrs["decode"].startswith("software (hwaccel cuda unavailable"), attrs["decode"]

    # Nothing left to do: planned from the store and the weights' identity alone.
    assert "0 complete, 0 failed, 1 already complete" in again.stdout, again.stdout + again.stderr
    assert again.returncode == 0 and "imported: nothing" in again.stderr, again.stderr
