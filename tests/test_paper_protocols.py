"""The papers' own protocols and targets, by hand: frame-level output, the l = P budget, CRSum's
keyframe F, the oracle summary (pipeline/summary.py, pipeline/metrics.py, jobs/eval_tasks.py)."""
import itertools

import numpy as np
import pytest

from jobs.eval_tasks import EvalConfig, score_video, split_scores
from pipeline.metrics import (
    evaluate_video,
    evaluate_video_keyframe,
    f_score_users,
    gt_importance,
    keyframe_f_score,
)
from pipeline.summary import (
    annotator_proportion,
    oracle_summary,
    quantile_summary,
    upsample_scores,
    upsample_subscores,
)


def test_upsample_subscores_splits_each_block_into_n_parts():
    # blocks of 4 and 5 frames, 3 sub-scores each: sizes (2, 1, 1) and (2, 2, 1)
    out = upsample_subscores([[1, 2, 3], [4, 5, 6]], [0, 4], 9)
    assert out.tolist() == [1, 1, 2, 3, 4, 4, 5, 5, 6]
    one = upsample_subscores(np.array([[0.2], [0.7], [0.1]]), [0, 15, 30], 40)
    assert np.array_equal(one, upsample_scores([0.2, 0.7, 0.1], [0, 15, 30], 40))
    with pytest.raises(ValueError, match="picks"):
        upsample_subscores([[1, 2]], [0, 5], 9)


def test_annotator_proportion_is_the_mean_selected_fraction():
    users = np.zeros((2, 10), np.uint8)
    users[0, :2] = 1  # 20 %
    users[1, :4] = 1  # 40 %
    assert annotator_proportion(users) == pytest.approx(0.3)


def test_quantile_summary_takes_strictly_above_the_upper_quantile():
    assert np.flatnonzero(quantile_summary(np.arange(20), 0.15)).tolist() == [17, 18, 19]
    assert not quantile_summary(np.ones(10), 0.15).any()  # ties at s_alpha stay out
    with pytest.raises(ValueError, match="alpha"):
        quantile_summary([1, 2], 1.5)


def test_keyframe_f_by_hand():
    pred = np.arange(20, dtype=float)  # summary {17, 18, 19}
    gt = np.zeros(20)
    gt[[16, 17, 18]] = [3, 2, 1]  # quantile(gt, 0.85) = 0.15 -> summary {16, 17, 18}
    # overlap 2: P = R = 2/3
    assert keyframe_f_score(pred, gt) == pytest.approx(2 / 3)
    assert keyframe_f_score(pred, np.ones(20)) == 0.0  # empty ground-truth summary
    # stride 2 keeps 10 of the 20 steps (picks 0, 4, ..., 36); quantile(·, 0.85) of the kept
    # scores 0, 2, ..., 18 is 15.3 -> items {8, 9}; ground truth is 1 only at pick 36 -> {9}:
    # P = 1/2, R = 1, F = 2/3
    users = np.zeros((2, 40), np.uint8)
    users[:, 36:] = 1
    m = evaluate_video_keyframe(pred, np.arange(0, 40, 2), users, stride=2)
    assert m["f1_keyframe"] == pytest.approx(2 / 3)


def test_gt_importance_prefers_scores_then_selection_rate():
    summ = np.array([[1, 0, 1], [1, 0, 0]])
    assert gt_importance(summ).tolist() == [1.0, 0.0, 0.5]
    assert gt_importance(summ, np.array([[5, 1, 2], [3, 1, 2]])).tolist() == [4.0, 1.0, 2.0]


def _mean_f(sel, users):
    return f_score_users(sel, users, "avg")


def test_oracle_summary_matches_one_annotator_and_is_locally_optimal():
    user = (np.arange(30) % 7 < 2).astype(np.uint8)
    assert np.array_equal(oracle_summary(user[None]), user)
    rng = np.random.default_rng(3)
    users = (rng.random((4, 14)) < 0.3).astype(np.uint8)
    orc = oracle_summary(users).astype(bool)
    best = _mean_f(orc, users)
    for i in np.flatnonzero(~orc):  # greedy stopped: no single addition helps
        more = orc.copy()
        more[i] = True
        assert _mean_f(more, users) <= best + 1e-12
    # and it is as good as the best of every subset of up to 3 items
    brute = max(_mean_f(np.isin(np.arange(14), c), users)
                for k in range(1, 4) for c in itertools.combinations(range(14), k))
    assert best >= brute - 1e-12


def _labels(n_frames=300, step=15):
    picks = np.arange(0, n_frames, step)
    cps = np.array([[a, min(a + 29, n_frames - 1)] for a in range(0, n_frames, 30)])
    users = np.zeros((2, n_frames), np.uint8)
    users[0, 60:120] = 1  # 20 %
    users[1, 150:240] = 1  # 30 %
    return {"picks": picks, "n_frames": n_frames, "change_points": cps, "user_summary": users,
            "user_scores": None, "features": None, "dataset": "x"}


def test_budget_p_selects_the_annotators_share_of_frames():
    lab = _labels()
    scores = np.linspace(0, 1, len(lab["picks"]))
    fixed = score_video(scores, lab, EvalConfig())
    prop = score_video(scores, lab, EvalConfig(budget="P"))
    # 15 % of 300 = 45 frames -> one 30-frame shot; P = 25 % = 75 frames -> two shots, the
    # last two (highest scores): frames 240..299, which no annotator selected
    assert fixed["f1_avg"] == 0.0 and prop["f1_avg"] == 0.0
    scores = np.zeros(len(lab["picks"]))
    scores[10:16] = 1  # steps 10..15 = frames 150..239: user 1's whole summary
    assert score_video(scores, lab, EvalConfig())["f1_max"] < score_video(
        scores, lab, EvalConfig(budget="P"))["f1_max"] == pytest.approx(0.8)


def test_frame_level_predictions_are_scored_on_their_frames():
    lab = _labels(n_frames=60, step=15)
    lab["change_points"] = np.array([[i, i] for i in range(60)])  # one frame per shot
    lab["user_summary"] = np.zeros((1, 60), np.uint8)
    lab["user_summary"][0, 20:29] = 1
    # 4 steps x 15 sub-scores: frame-level output peaking on frames 20..28
    sub = np.zeros((4, 15))
    sub.ravel()[20:29] = 1
    step, split = split_scores(sub.ravel(), 4)
    assert split is not None and step.tolist() == pytest.approx(sub.mean(axis=1).tolist())
    m = score_video(sub.ravel(), lab, EvalConfig(rank=()))
    assert m["f1_avg"] == pytest.approx(1.0)  # 15 % of 60 = 9 frames, exactly 20..28
    # the same information as step scores can only select whole 15-frame steps
    held = score_video(step, lab, EvalConfig(rank=()))
    assert held["f1_avg"] < 1.0
    with pytest.raises(ValueError, match="steps"):
        evaluate_video(np.zeros(7), lab["picks"], 60, lab["change_points"], lab["user_summary"])


def test_crsum_protocol_adds_the_keyframe_metric_only_when_asked():
    lab = _labels()
    scores = np.random.default_rng(0).random(len(lab["picks"]))
    assert "f1_keyframe" not in score_video(scores, lab, EvalConfig())
    m = score_video(scores, lab, EvalConfig(protocol="crsum-keyframe", keyframe_stride=2))
    assert 0.0 <= m["f1_keyframe"] <= 1.0 and "f1_avg" in m
    with pytest.raises(ValueError, match="protocol"):
        EvalConfig(protocol="bogus")


def test_vsum_evaluate_protocol_and_budget_options(tmp_path, dask_client):
    """The CLI's --protocol/--budget/--keyframe-stride reach the evaluation (on the session's
    Dask cluster: the command's own cluster start-up is tested in test_evaluate.py)."""
    from jobs.cli import build_parser
    from jobs.evaluate import _cfg, evaluate_runs
    from stores.predictions import write_predictions, write_run_json
    from stores.reader import FeatureStore
    from stores.synthetic import build_synthetic_store

    args = build_parser().parse_args(["evaluate", "RUN", "--report", "R", "--protocol",
                                      "crsum-keyframe", "--keyframe-stride", "2", "--budget", "P"])
    cfg = _cfg(args)
    assert (cfg.protocol, cfg.keyframe_stride, cfg.budget) == ("crsum-keyframe", 2, "P")
    with pytest.raises(SystemExit) as bad:  # argparse: one line, exit 2
        build_parser().parse_args(["evaluate", "RUN", "--report", "R", "--budget", "Q"])
    assert bad.value.code == 2
    store = str(tmp_path / "s.zarr")
    ids = build_synthetic_store(store, n_videos=2, seed=2, min_steps=20, max_steps=30,
                                feature_shapes={"googlenet": (4,)})
    fs = FeatureStore(store)
    run = tmp_path / "run"
    write_run_json(run, {"store": store})
    write_predictions(run, 0, 0, {v: fs.load(v, "labels/gtscore") for v in ids},
                      {"run": "gt", "head": "x", "features": "googlenet", "dataset": "d",
                       "setting": "canonical", "store": store})
    pv, _, errors = evaluate_runs([str(run)], cfg=cfg, client=dask_client)
    kf = pv[pv["metric"] == "f1_keyframe"]
    assert not errors and len(kf) == 2 and (kf["value"] > 0.5).all()  # gtscore vs its annotators
