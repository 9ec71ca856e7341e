"""The weights policy (pipeline/features/weights.py): the --weights option, cache, download and
mirror through a real HTTP server on 127.0.0.1 (planted checkpoints under their hashed names),
corrupt and truncated downloads, and what a worker loads. No model is built here."""
from __future__ import annotations

import hashlib
import io

import pytest
import torch
from weights_server import hashed_name, serve_files

from pipeline.errors import UsageError, WeightsError
from pipeline.features import catalog
from pipeline.features.weights import (
    RANDOM_INIT,
    WeightsUnavailable,
    load_state_dict,
    parse_weights_option,
    resolve,
    torch_hub_checkpoint,
)

FEATURES = ["googlenet", "st3d", "i3d", "frames"]


def _checkpoint_bytes(seed: int = 0) -> bytes:
    buf = io.BytesIO()
    torch.save({"w": torch.full((4,), float(seed))}, buf)
    return buf.getvalue()


@pytest.fixture
def home(tmp_path, monkeypatch):
    """An empty TORCH_HOME and no mirror from the environment."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("VSUM_WEIGHTS_URL", raising=False)
    return tmp_path / "torch" / "hub" / "checkpoints"


def _plant_catalog(monkeypatch, data: bytes, url_base: str = "http://127.0.0.1:9/models") -> str:
    """Point googlenet's catalog entry at a file named after ``data``'s sha256 (as torchvision
    names its files), served from ``url_base``. Returns that name."""
    name = hashed_name("googlenet", data)
    monkeypatch.setitem(catalog.CHECKPOINTS, "googlenet",
                        catalog.Checkpoint(name, f"{url_base}/{name}", "Planted_Weights.V1"))
    return name


def test_catalog_matches_torchvision():
    from torchvision.models import GoogLeNet_Weights
    from torchvision.models.video import R2Plus1D_18_Weights, R3D_18_Weights

    for key, w in (("googlenet", GoogLeNet_Weights.IMAGENET1K_V1), ("r3d_18", R3D_18_Weights.KINETICS400_V1),
                   ("r2plus1d_18", R2Plus1D_18_Weights.KINETICS400_V1)):
        ckpt = catalog.CHECKPOINTS[key]
        assert (ckpt.url, ckpt.weights_name, ckpt.file) == (w.url, str(w), w.url.rsplit("/", 1)[-1])
        assert ckpt.hash_prefix and ckpt.file.endswith(f"-{ckpt.hash_prefix}.pth")


@pytest.mark.parametrize("text, want", [
    (None, {"googlenet": "pretrained", "st3d": "pretrained", "i3d": "pretrained"}),
    ("random", {"googlenet": "random", "st3d": "random", "i3d": "random"}),
    ("auto", {"googlenet": "pretrained", "st3d": "pretrained", "i3d": "pretrained"}),
    ("googlenet=/w/g.pth,st3d=pretrained,i3d=random",
     {"googlenet": "/w/g.pth", "st3d": "pretrained", "i3d": "random"}),
    ("random,googlenet=/w/g.pth", {"googlenet": "/w/g.pth", "st3d": "random", "i3d": "random"}),
    ("/w/odd=name.pth", {"googlenet": "/w/odd=name.pth", "st3d": "/w/odd=name.pth", "i3d": "/w/odd=name.pth"}),
])
def test_weights_option(text, want):
    assert parse_weights_option(text, FEATURES) == want


def test_weights_option_alias_and_errors():
    assert parse_weights_option("random", ["i3d"], i3d_alias="/w/rgb.pt") == {"i3d": "/w/rgb.pt"}
    bad = [("foo=x", FEATURES, "unknown extractor 'foo'"), ("frames=x", FEATURES, "has no weights"),
           ("st3d=random", ["googlenet"], "does not extract"), ("random,pretrained", FEATURES, "two values"),
           ("googlenet=", FEATURES, "no value"), ("googlenet=a,googlenet=b", FEATURES, "twice")]
    for text, features, words in bad:
        with pytest.raises(UsageError, match=words):
            parse_weights_option(text, features)
    with pytest.raises(UsageError, match="both given"):
        parse_weights_option("i3d=/a.pt", ["i3d"], i3d_alias="/b.pt")


def test_cached_file_path_and_random(home, tmp_path):
    data = _checkpoint_bytes()
    home.mkdir(parents=True)
    (home / catalog.CHECKPOINTS["r3d_18"].file).write_bytes(data)
    w = resolve("st3d", "pretrained")
    assert (w.kind, w.name, w.path) == ("pretrained", "R3D_18_Weights.KINETICS400_V1",
                                         str(home / "r3d_18-b3b3357e.pth"))
    assert w.identity() == {"name": w.name, "file": "r3d_18-b3b3357e.pth",
                            "sha256": hashlib.sha256(data).hexdigest()}
    mine = tmp_path / "mine.pt"
    mine.write_bytes(data)
    assert resolve("googlenet", str(mine)).identity()["file"] == "mine.pt"
    assert resolve("i3d", "random").identity() == {"name": RANDOM_INIT}
    with pytest.raises(WeightsError, match="weights file not found"):
        resolve("googlenet", str(tmp_path / "absent.pt"))
    with pytest.raises(WeightsError, match="not a file"):
        resolve("googlenet", str(tmp_path))


@pytest.mark.parametrize("how", ["default host", "mirror env", "mirror option"])
def test_download_lands_in_the_cache_once(how, home, monkeypatch):
    data = _checkpoint_bytes(1)
    with serve_files({hashed_name("googlenet", data): data}) as (base, hits):
        name = _plant_catalog(monkeypatch, data, base if how == "default host" else "http://127.0.0.1:9/x")
        if how == "mirror env":
            monkeypatch.setenv("VSUM_WEIGHTS_URL", base)
        w = resolve("googlenet", "pretrained", mirror=base if how == "mirror option" else None)
        assert (home / name).read_bytes() == data and w.path == str(home / name)
        assert w.sha256 == hashlib.sha256(data).hexdigest() and w.url == f"{base}/{name}"
        resolve("googlenet", "pretrained", mirror=base)  # now cached: no second request
        assert hits[name] == 1
        torch.testing.assert_close(load_state_dict(w)["w"], torch.full((4,), 1.0))


@pytest.mark.parametrize("fault, words", [("corrupt", "failed its hash check"),
                                          ("truncated", "failed its hash check"), ("absent", "HTTPError: HTTP 404")])
def test_bad_download_is_deleted_and_reported(fault, words, home, monkeypatch):
    data = _checkpoint_bytes(2)
    name = _plant_catalog(monkeypatch, data)
    served = {"corrupt": {name: _checkpoint_bytes(3)}, "truncated": {name: data}, "absent": {}}[fault]
    with serve_files(served, truncate={name} if fault == "truncated" else set()) as (base, _):
        with pytest.raises(WeightsUnavailable, match=words) as e:
            resolve("googlenet", "pretrained", mirror=base)
    msg = str(e.value)
    assert name in msg and str(home) in msg and "--weights random" in msg and "\n" not in msg
    assert not home.exists() or not list(home.iterdir())  # nothing kept, nothing to load


def test_worker_fetches_what_it_lacks_and_refuses_other_bytes(home, monkeypatch, tmp_path):
    data = _checkpoint_bytes(4)
    with serve_files({hashed_name("googlenet", data): data}) as (base, hits):
        name = _plant_catalog(monkeypatch, data, base)
        w = resolve("googlenet", "pretrained")
        (home / name).unlink()  # a node without the driver's cache
        assert load_state_dict(w)["w"][0] == 4.0 and hits[name] == 2
    (home / name).write_bytes(_checkpoint_bytes(5))  # same name, other bytes
    with pytest.raises(WeightsError, match="differs from the one the job started with"):
        load_state_dict(w)
    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable tensors-only torch checkpoint"):
        load_state_dict(resolve("googlenet", str(garbage)))


def test_torch_hub_location(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    assert torch_hub_checkpoint("a.pth") == tmp_path / "hub" / "checkpoints" / "a.pth"
    assert str(torch.hub.get_dir()) == str(tmp_path / "hub")
