"""GoogLeNet pool5 extractor: shape, determinism, the weights policy with planted checkpoints."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.features import EXTRACTORS, ExtractorOptions
from pipeline.errors import WeightsError
from pipeline.features.base import WeightsUnavailable
from pipeline.features.googlenet import CHECKPOINT_FILE, WEIGHTS_NAME, load_googlenet


@pytest.fixture(autouse=True)
def one_thread():
    torch.set_num_threads(1)


def _frames(n=2, seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, 224, 224, 3), dtype=np.uint8)


@pytest.fixture
def planted_home(tmp_path, monkeypatch):
    """A TORCH_HOME holding a synthetic checkpoint under torchvision's exact file name,
    with aux heads like the real one (so a strict load into aux_logits=False would fail)."""
    from torchvision.models import googlenet

    torch.manual_seed(123)
    state = googlenet(weights=None, aux_logits=True, init_weights=True).state_dict()
    ckpt_dir = tmp_path / "hub" / "checkpoints"
    ckpt_dir.mkdir(parents=True)
    torch.save(state, ckpt_dir / CHECKPOINT_FILE)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    return state


def test_shape_dtype_and_determinism():
    ext = EXTRACTORS.get("googlenet")(ExtractorOptions(weights="random", batch_size=2))
    x = _frames(3)
    a, b = ext(x), ext(x)
    assert a.shape == (3, 1024) and a.dtype == np.float32
    np.testing.assert_array_equal(a, b)
    assert ext.spec.weights.startswith("random-init")
    # batching does not change results beyond float noise
    one = np.concatenate([ext(x[i : i + 1]) for i in range(3)])
    np.testing.assert_allclose(one, a, rtol=1e-4, atol=1e-4)
    # seeded random init: a second build gives the same features
    again = EXTRACTORS.get("googlenet")(ExtractorOptions(weights="random"))(x)
    np.testing.assert_allclose(again, a, rtol=1e-5, atol=1e-5)


def test_planted_checkpoint_is_loaded_and_recorded(planted_home):
    model, weights = load_googlenet("pretrained")
    assert weights == WEIGHTS_NAME
    got = model.state_dict()
    for k in ("conv1.conv.weight", "inception5b.branch4.1.bn.running_var"):
        torch.testing.assert_close(got[k], planted_home[k])
    assert not any(k.startswith(("aux1.", "aux2.")) for k in got)
    assert model.transform_input  # ImageNet weights expect torchvision's input transform


def test_planted_checkpoint_by_path(planted_home, tmp_path):
    import hashlib

    path = tmp_path / "mine.pth"
    torch.save(planted_home, path)
    ext = EXTRACTORS.get("googlenet")(ExtractorOptions(weights=str(path)))
    assert ext.spec.weights == "mine.pth" and ext.spec.weights_file == str(path)
    assert ext.spec.weights_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert ext(_frames(1)).shape == (1, 1024)


@pytest.mark.parametrize("policy", ["pretrained", "auto"])  # auto: a deprecated alias, no fallback
def test_pretrained_fails_with_one_clear_line(policy, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty cache
    monkeypatch.setenv("VSUM_WEIGHTS_URL", "http://127.0.0.1:9/models")  # nothing listens: no download
    with pytest.raises(WeightsUnavailable) as e:
        load_googlenet(policy)
    msg = str(e.value)
    assert CHECKPOINT_FILE in msg and "--weights random" in msg and "\n" not in msg
    assert not list(tmp_path.rglob("*.pth*"))  # nothing half-downloaded is left


def test_wrong_checkpoint_is_rejected(tmp_path):
    path = tmp_path / "bad.pth"
    torch.save({"not.a.key": torch.zeros(1)}, path)
    with pytest.raises(WeightsError, match="not a torchvision GoogLeNet state dict: missing key 'conv1.conv.weight'"):
        load_googlenet(str(path))
