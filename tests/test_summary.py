"""Hand-computed cases for the keyshot protocol (pipeline/summary.py)."""
from itertools import combinations

import numpy as np
import pytest

from pipeline.summary import (
    knapsack,
    select_keyshots,
    shot_lengths,
    shot_scores,
    summary_from_shots,
    uniform_segments,
    upsample_scores,
)


def test_upsample_zero_order_hold_last_block_runs_to_end():
    assert upsample_scores([1, 2, 3], [0, 2, 4], 6).tolist() == [1, 1, 2, 2, 3, 3]
    assert upsample_scores([1, 2, 3], [0, 2, 4], 5).tolist() == [1, 1, 2, 2, 3]
    # frames before a late first pick take the first score
    assert upsample_scores([5, 6], [1, 3], 5).tolist() == [5, 5, 5, 6, 6]


@pytest.mark.parametrize("scores", [[1.0, 2.0], [1.0, 2.0, 3.0, 4.0]])
def test_upsample_scores_shorter_or_longer_than_picks_is_a_clear_error(scores):
    with pytest.raises(ValueError, match="steps but picks"):
        upsample_scores(scores, [0, 15, 30], 40)


def test_upsample_rejects_picks_outside_the_video():
    with pytest.raises(ValueError, match="outside"):
        upsample_scores([1, 2], [0, 40], 40)


def test_shot_scores_inclusive_means_and_zero_length_shots():
    frames = np.array([1, 1, 2, 2, 3, 3], float)
    assert shot_scores(frames, [[0, 1], [2, 5]]).tolist() == [1.0, 2.5]
    assert shot_scores(frames, [[0, 0], [3, 2], [5, 5]]).tolist() == [1.0, 0.0, 3.0]
    assert shot_lengths([[0, 0], [3, 2], [5, 5]]).tolist() == [1, 0, 1]
    with pytest.raises(ValueError, match="outside"):
        shot_scores(frames, [[0, 6]])


def test_knapsack_textbook_instance():
    # capacity 5: {1, 2} (weights 2+3, value 22) beats {0, 1} (16) and {0, 2} (18)
    assert knapsack([6, 10, 12], [1, 2, 3], 5).tolist() == [1, 2]
    assert knapsack([6, 10, 12], [1, 2, 3], 0).tolist() == []
    assert knapsack([], [], 10).tolist() == []


def test_knapsack_ties_keep_later_items_out():
    assert knapsack([1, 1], [1, 1], 1).tolist() == [0]
    # {0, 1} and {2} both reach 2: item 2 never strictly improves, so it stays out
    assert knapsack([1, 1, 2], [1, 1, 2], 2).tolist() == [0, 1]
    # float noise below the tolerance is a tie too
    assert knapsack([0.3, 0.1 + 0.2], [1, 1], 1).tolist() == [0]


def test_knapsack_dsnet_quantisation_turns_near_ties_into_ties():
    assert knapsack([0.5001, 0.5009], [1, 1], 1).tolist() == [1]
    assert knapsack([0.5001, 0.5009], [1, 1], 1, quantize=True).tolist() == [0]


def test_knapsack_is_optimal_against_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(60):
        n = int(rng.integers(1, 9))
        v = rng.random(n)
        w = rng.integers(0, 12, n)
        cap = int(rng.integers(0, 30))
        got = knapsack(v, w, cap)
        assert w[got].sum() <= cap
        best = max(v[list(s)].sum() for k in range(n + 1) for s in combinations(range(n), k)
                   if w[list(s)].sum() <= cap)
        assert v[got].sum() == pytest.approx(best, abs=1e-9)


def test_knapsack_bad_inputs():
    with pytest.raises(ValueError, match="weights"):
        knapsack([1, 2], [1], 3)
    with pytest.raises(ValueError, match="non-negative"):
        knapsack([1], [-1], 3)
    with pytest.raises(ValueError, match="finite"):
        knapsack([np.nan], [1], 3)


def test_select_keyshots_by_hand():
    picks, scores = [0, 5, 10, 15], [0.1, 0.9, 0.2, 0.8]
    cps = [[0, 4], [5, 9], [10, 14], [15, 19]]
    # 15% of 20 frames = 3 < every shot length: an empty (valid) summary
    summary, sel = select_keyshots(scores, picks, 20, cps)
    assert summary.dtype == np.uint8 and summary.sum() == 0 and sel.tolist() == []
    # 50% = 10 frames: the two best shots
    summary, sel = select_keyshots(scores, picks, 20, cps, ratio=0.5)
    assert sel.tolist() == [1, 3]
    assert np.flatnonzero(summary).tolist() == list(range(5, 10)) + list(range(15, 20))


def test_summary_from_shots_and_uniform_segments():
    assert summary_from_shots([[0, 1], [3, 2], [4, 4]], [1, 2], 5).tolist() == [0, 0, 0, 0, 1]
    seg = uniform_segments(130, 30.0)  # 2 s = 60 frames
    assert seg.tolist() == [[0, 59], [60, 119], [120, 129]]
