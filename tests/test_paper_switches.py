"""Paper-faithful switches of the heads, each against the behaviour it replaces: DR-DSN's reward
scale and MLE supervision, 3DST-UNet-RL's oracle target, frame-level output and Bi-LSTM row,
CRSum's input check, the presets, and the supervised targets read from a store."""
import numpy as np
import pytest
import torch

from heads.crsum import CRSumConfig, build_crsum
from heads.dsn import DSNConfig, build_dsn, dsn_loss, episode_rewards
from heads.presets import preset_overrides
from heads.trainer import TrainOptions, train_split
from heads.unet3d_rl import UNet3DRLConfig, build_unet3d, unet3d_loss
from jobs.eval_tasks import EvalConfig, load_labels, score_video
from pipeline.summary import oracle_summary
from stores import layout
from stores.predictions import read_predictions
from stores.reader import FeatureStore
from stores.synthetic import build_synthetic_store
from stores.targets import supervised_target


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("switches") / "s.zarr")
    build_synthetic_store(path, n_videos=4, seed=5, min_steps=24, max_steps=40,
                          feature_shapes={"googlenet": (8,), "st3d": (4, 2, 2)})
    return path


def test_reward_scale_halves_the_reward_as_the_authors_code_does():
    x, a = torch.randn(12, 5), (torch.rand(3, 12) > 0.5).float()
    full = episode_rewards(x, a, DSNConfig())
    assert torch.allclose(episode_rewards(x, a, DSNConfig(reward_scale=0.5)), 0.5 * full)


def test_dr_dsn_sup_mle_is_the_mean_negative_log_probability_of_the_keyframes():
    cfg = DSNConfig(supervised=True, sup_loss="mle", rl_weight=0.0, beta=0.0, hidden=4)
    model = build_dsn(cfg, (3,))
    x = torch.randn(1, 6, 3)
    target = torch.tensor([[1.0, 0, 0, 1, 0, 0]])
    batch = {"x": x, "mask": torch.ones(1, 6, dtype=torch.bool), "gtscore": torch.zeros(1, 6),
             "target": target, "has_target": torch.tensor([True]), "video_id": ["v"]}
    loss, metrics = dsn_loss(model, batch, cfg, {})
    p = model(x, batch["mask"])[0]
    expected = -(torch.log(p[0]) + torch.log(p[3])) / 2
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-5)
    assert metrics["mle"] == pytest.approx(float(expected.detach()), rel=1e-5)
    batch["has_target"] = torch.tensor([False])
    with pytest.raises(ValueError, match="gtscore target"):
        dsn_loss(model, batch, cfg, {})


def test_targets_from_the_store(store):
    fs = FeatureStore(store)
    vid = fs.video_ids()[0]
    picks = fs.load(vid, layout.PICKS)
    users = fs.load(vid, layout.USER_SUMMARY)
    orc = supervised_target(fs, vid, "oracle")
    assert orc.shape == picks.shape and set(np.unique(orc)) <= {0.0, 1.0}
    assert np.array_equal(orc, oracle_summary(users[:, picks]))
    g = supervised_target(fs, vid, "gtscore", n_sub=3)
    assert g.shape == (len(picks), 3) and np.array_equal(g[:, 0], fs.load(vid, layout.GTSCORE))
    frames = supervised_target(fs, vid, "oracle", n_sub=15)
    assert frames.shape == (len(picks), 15) and 0 < frames.mean() < 1
    majority = supervised_target(fs, vid, "gtsummary")
    assert np.array_equal(majority, ((users > 0).mean(0) >= 0.5)[picks].astype(np.float32))
    with pytest.raises(ValueError, match="sup_target"):
        supervised_target(fs, vid, "median")


def test_unet_frame_output_and_bilstm_row_shapes():
    x = torch.randn(2, 9, 4, 2, 2)
    for seq in ("unet", "bilstm"):
        cfg = UNet3DRLConfig(squeeze_channels=4, levels=2, scores_per_step=5, output="frame",
                             sequence_model=seq, lstm_hidden=6)
        model = build_unet3d(cfg, (4, 2, 2))
        sub = model.predict_scores(x)
        assert sub.shape == (2, 9, 5)
        assert torch.allclose(model(x), sub.mean(-1))
    with pytest.raises(ValueError, match="sequence_model"):
        build_unet3d(UNet3DRLConfig(sequence_model="gru"), (4, 2, 2))


def test_unet_frame_target_trains_the_sub_scores():
    cfg = UNet3DRLConfig(squeeze_channels=4, levels=1, scores_per_step=3, output="frame",
                         supervised=True, use_rep=False, use_div=False, lambda_breg=0.0)
    model = build_unet3d(cfg, (4, 1, 1))
    x = torch.randn(1, 4, 4, 1, 1)
    target = torch.zeros(1, 4, 3)
    target[0, 1, 2] = 1.0
    batch = {"x": x, "mask": torch.ones(1, 4, dtype=torch.bool), "target": target,
             "has_target": torch.tensor([True]), "video_id": ["v"]}
    loss, metrics = unet3d_loss(model, batch, cfg, {})
    sub = model.predict_scores(x)[0]
    p = sub.mean(-1)
    # no rewards: loss = L_preg + MSE of the 12 sub-scores (REINFORCE with R = 0 - c = 0 is 0)
    expected = (p.mean() - 0.5) ** 2 + ((sub - target[0]) ** 2).mean()
    assert float(loss.detach()) == pytest.approx(float(expected.detach()), rel=1e-4)


def test_frame_level_unet_run_writes_sub_scores_that_evaluate(store, tmp_path):
    ids = FeatureStore(store).video_ids()
    opts = TrainOptions(features="st3d", epochs=1, overrides={
        **preset_overrides("unet3d_rl", "paper"), "supervised": "true", "squeeze_channels": "4",
        "levels": "1", "lr": "1e-3"})
    train_split("unet3d_rl", store, ids[:3], ids[3:], tmp_path / "run", 0, 0, opts)
    df = read_predictions(tmp_path / "run")
    lab = load_labels(store, ids[3])
    scores = df.loc[df["video_id"] == ids[3], "scores"].iloc[0]
    assert len(scores) == 15 * len(lab["picks"])  # the paper's preset: one score per frame
    m = score_video(scores, lab, EvalConfig())
    assert 0.0 <= m["f1_avg"] <= 1.0 and np.isfinite(m["kendall_tau_pick"])


def test_presets_and_crsum_input_check():
    assert preset_overrides("dsn", "published") == {"reward_scale": "0.5"}
    assert preset_overrides("dsn_sup", "paper")["sup_loss"] == "mle"
    assert preset_overrides("csnet", None) == {}
    with pytest.raises(ValueError, match="no preset 'best'"):
        preset_overrides("dsn", "best")
    with pytest.raises(ValueError, match="--frames 256"):
        build_crsum(CRSumConfig(frame_size=256, cnn1_channels=(2,), cnn2_channels=(2,)), (32, 32, 3))
    assert build_crsum(CRSumConfig(frame_size=32, cnn1_channels=(2,), cnn2_channels=(2,),
                                   lstm_hidden=2, mlp_hidden=2), (32, 32, 3)) is not None
