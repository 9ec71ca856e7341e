"""Hand-computed metric cases (pipeline/metrics.py), checked against scipy where it applies."""
import numpy as np
import pytest
from scipy import stats

from pipeline.metrics import (
    METRICS,
    diversity,
    evaluate_video,
    f_score,
    f_score_users,
    f_scores_per_user,
    kendall_tau,
    kendall_tau_frame,
    kendall_tau_pick,
    spearman_rho,
    spearman_rho_frame,
    spearman_rho_pick,
)


def test_f_score_by_hand():
    assert f_score([1, 1, 0, 0], [0, 1, 1, 0]) == pytest.approx(0.5)
    # P = 1/1, R = 1/3 -> F = 2 * (1/3) / (4/3) = 0.5
    assert f_score([0, 1, 0, 0], [1, 1, 1, 0]) == pytest.approx(0.5)
    assert f_score([0, 0, 0, 0], [0, 1, 1, 0]) == 0.0  # empty summary
    assert f_score([1, 0, 0, 0], [0, 0, 0, 0]) == 0.0  # empty annotator summary
    with pytest.raises(ValueError, match="frames"):
        f_score([1, 0], [1, 0, 0])


def test_f_score_users_avg_and_max():
    users = np.array([[0, 1, 1, 0], [1, 1, 0, 0]])
    assert f_scores_per_user([1, 1, 0, 0], users).tolist() == pytest.approx([0.5, 1.0])
    assert f_score_users([1, 1, 0, 0], users, "avg") == pytest.approx(0.75)
    assert f_score_users([1, 1, 0, 0], users, "max") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="reduce"):
        f_score_users([1, 1, 0, 0], users, "median")


def test_rank_correlations_match_scipy_with_ties():
    rng = np.random.default_rng(1)
    x = rng.integers(0, 5, 200).astype(float)
    y = x + rng.integers(0, 3, 200)
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic)
    assert np.isnan(kendall_tau(np.ones(5), np.arange(5)))
    assert np.isnan(spearman_rho(np.arange(5), np.ones(5)))


@pytest.mark.parametrize("block", [1, 15, 60])
def test_run_compressed_rank_correlations_equal_scipy_on_full_arrays(block):
    rng = np.random.default_rng(block)
    n = 3000
    x = np.repeat(rng.random(n // block + 1), block)[:n]  # piecewise constant like picks
    y = np.repeat(rng.integers(1, 6, n // 45 + 1), 45)[:n].astype(float)  # TVSum-like 1..5
    assert kendall_tau(x, y) == pytest.approx(stats.kendalltau(x, y).statistic, abs=1e-12)
    assert spearman_rho(x, y) == pytest.approx(stats.spearmanr(x, y).statistic, abs=1e-12)


def test_frame_and_pick_level_differ_as_defined():
    picks, n = [0, 2], 4
    step = [0.0, 1.0]
    users = np.array([[1, 2, 3, 4], [4, 3, 2, 1]], float)
    # pick level: [0, 1] vs [1, 3] (+1) and vs [4, 2] (-1) -> mean 0
    assert kendall_tau_pick(step, picks, users) == pytest.approx(0.0)
    assert spearman_rho_pick(step, picks, users[:1]) == pytest.approx(1.0)
    # frame level: [0, 0, 1, 1] vs [1, 2, 3, 4]: tau-b = 4 / sqrt((6 - 2) * (6 - 0))
    assert kendall_tau_frame(step, picks, n, users[:1]) == pytest.approx(4 / np.sqrt(24))
    assert spearman_rho_frame(step, picks, n, users[:1]) == pytest.approx(
        stats.spearmanr([0, 0, 1, 1], [1, 2, 3, 4]).statistic)


def test_diversity_by_hand():
    f = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    assert diversity(f, [True, True, False]) == pytest.approx(1.0)  # orthogonal
    assert diversity(f, [True, False, True]) == pytest.approx(0.0)  # same direction
    assert diversity(f, [True, True, True]) == pytest.approx(2 / 3)  # pairs: 1, 0, 1
    assert diversity(f, [True, False, False]) == 0.0
    # spatial maps are averaged over space first: [T, C, h, w]
    assert diversity(np.ones((2, 3, 2, 2)), [True, True]) == pytest.approx(0.0)


def test_evaluate_video_by_hand_and_missing_inputs_are_nan():
    picks, scores = [0, 5, 10, 15], [0.1, 0.9, 0.2, 0.8]
    cps = [[0, 4], [5, 9], [10, 14], [15, 19]]
    users = np.zeros((2, 20), np.uint8)
    users[0, 5:10] = 1  # exactly shot 1
    users[1, 0:5] = 1   # disjoint
    out = evaluate_video(scores, picks, 20, cps, users, ratio=0.5)
    assert set(out) == set(METRICS)
    # summary = shots 1 and 3 (10 frames): F vs user 0 = 2 * 0.5 * 1 / 1.5 = 2/3, user 1 = 0
    assert out["f1_avg"] == pytest.approx(1 / 3)
    assert out["f1_max"] == pytest.approx(2 / 3)
    assert np.isnan(out["kendall_tau_frame"]) and np.isnan(out["diversity"])
    out = evaluate_video(scores, picks, 20, cps, users, user_scores=users.astype(float),
                         features=np.eye(4), ratio=0.5)
    assert out["diversity"] == pytest.approx(1.0)
    assert out["kendall_tau_pick"] == pytest.approx(
        np.mean([stats.kendalltau(scores, [0, 1, 0, 0]).statistic,
                 stats.kendalltau(scores, [1, 0, 0, 0]).statistic]))
    with pytest.raises(ValueError, match="steps but picks"):
        evaluate_video(scores[:3], picks, 20, cps, users)
