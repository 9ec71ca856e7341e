"""KTS: exactly the public algorithm's change points, and well-defined on bad input.

The references (tests/kts_reference.py) are cpd_nonlin + cpd_auto written the plainest way (a
loop form, and the public code's own vectorised arrangement for larger n); the pruned search
must agree with them bitwise on every input, the benchmark's inputs included.
"""
from __future__ import annotations

import numpy as np
import pytest
from kts_reference import (
    kernel_of,
    loop_cpd_auto,
    loop_dp,
    loop_scatters,
    public_cpd_auto,
    public_scatters,
    reference_change_points,
)

from jobs.bench.kts_inputs import (
    long_shot_features,
    random_features,
    realistic_features,
    realistic_shots,
)
from pipeline import kts_scatters, kts_search
from pipeline.kts import KTSParams, change_points_steps, kts_segments, search


def piecewise(n, rng, dim=16, noise=0.3, max_cuts=8):
    """Piecewise-constant means plus Gaussian noise, [n, dim]."""
    n_cuts = int(rng.integers(0, min(n - 1, max_cuts) + 1)) if n > 1 else 0
    cuts = np.sort(rng.choice(np.arange(1, n), size=n_cuts, replace=False)) if n_cuts else []
    label = np.zeros(n, dtype=int)
    for c in cuts:
        label[c:] += 1
    means = rng.normal(size=(label.max() + 1, dim))
    return means[label] + noise * rng.normal(size=(n, dim))


def in_place(K):
    """The full scatters J (stride n) built in a copy of K's buffer."""
    return kts_scatters.scatters_in_place(K.copy(), np.cumsum(np.concatenate(([0.0], np.diag(K)))))


SMALL_N = list(range(1, 26)) + [31, 40, 57]


# -- exactness ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", SMALL_N)
def test_random_sequences_match_reference(n):
    rng = np.random.default_rng(n)
    for dim in (3, 32):
        X = rng.normal(size=(n, dim))
        np.testing.assert_array_equal(change_points_steps(X), loop_cpd_auto(kernel_of(X), n - 1))


@pytest.mark.parametrize("n", SMALL_N)
def test_piecewise_sequences_match_reference(n):
    rng = np.random.default_rng(1000 + n)
    for noise in (0.05, 0.5, 2.0):
        X = piecewise(n, rng, noise=noise)
        np.testing.assert_array_equal(change_points_steps(X), loop_cpd_auto(kernel_of(X), n - 1))


def test_exact_ties_match_reference():
    """One-hot rows in repeating patterns: many splits cost exactly the same, so the answer
    rests on the first-minimum tie-breaking of k* and of the backtrack."""
    eye = np.eye(3)
    for pattern in ([0, 0, 1, 1], [0, 1], [0, 0, 1, 2, 2], [0, 1, 1, 1, 0, 2]):
        for reps in (3, 7):
            X = eye[np.tile(pattern, reps)]
            n = len(X)
            for vmax in (0.2, 1.0, 3.0):
                want = loop_cpd_auto(kernel_of(X), n - 1, vmax) if n <= 30 else \
                    public_cpd_auto(kernel_of(X), n - 1, vmax)
                np.testing.assert_array_equal(change_points_steps(X, KTSParams(vmax=vmax)), want)


def test_piecewise_finds_the_planted_cuts():
    """Sanity of the whole recipe, not only agreement: clean shots are found where planted."""
    rng = np.random.default_rng(7)
    label = np.repeat(np.arange(6), [30, 45, 25, 60, 40, 50])
    X = np.abs(rng.normal(size=(6, 64)))[label] + 0.05 * rng.normal(size=(len(label), 64))
    np.testing.assert_array_equal(change_points_steps(X), [30, 75, 100, 160, 200])


@pytest.mark.parametrize("vmax", [0.0, 0.3, 1.0, 4.0])
def test_vmax_matches_reference(vmax):
    rng = np.random.default_rng(3)
    for n in (9, 23, 48):
        X = piecewise(n, rng, noise=0.4)
        np.testing.assert_array_equal(change_points_steps(X, KTSParams(vmax=vmax)),
                                      loop_cpd_auto(kernel_of(X), n - 1, vmax))


@pytest.mark.parametrize("lmin,lmax,m", [(2, None, None), (3, None, None), (1, 4, None),
                                         (2, 5, None), (1, None, 3), (2, 9, 10), (1, 1, None)])
def test_segment_length_bounds_match_reference(lmin, lmax, m):
    rng = np.random.default_rng(lmin * 100 + (lmax or 0))
    for n in (lmin * 2, 11, 26, 41):
        X = piecewise(n, rng, noise=0.6)
        params = KTSParams(min_segment_steps=lmin, max_segment_steps=lmax, max_change_points=m)
        m_eff = min(n - 1 if m is None else m, n // lmin - 1)
        got = change_points_steps(X, params)
        np.testing.assert_array_equal(got, loop_cpd_auto(kernel_of(X), m_eff, 1.0, lmin, lmax))
        seg = np.diff(np.concatenate(([0], got, [n])))
        assert seg.min() >= lmin and seg.max() <= (lmax or n) and len(got) <= m_eff


@pytest.mark.parametrize("lmin,lmax,m", [(1, None, None), (2, None, None), (3, 10, None),
                                         (1, 5, None), (2, 70, None), (1, None, 12)])
def test_longer_runs_with_bounds_match_reference(lmin, lmax, m):
    """Past one block of the backward bound (64 ends) and with many layers (random rows keep
    every layer alive), with and without segment-length bounds, against the public form."""
    rng = np.random.default_rng(lmin * 10 + (lmax or 0))
    for n, X in ((131, rng.normal(size=(131, 6))), (197, piecewise(197, rng, noise=0.8)),
                 (160, realistic_features(160, 128, seed=lmin))):
        K = kernel_of(X)
        m_eff = min(n // lmin - 1, n if m is None else m)
        params = KTSParams(min_segment_steps=lmin, max_segment_steps=lmax, max_change_points=m)
        np.testing.assert_array_equal(change_points_steps(X, params),
                                      public_cpd_auto(K, m_eff, 1.0, lmin, lmax))


def test_banded_scatters_are_the_same_scatters():
    """With a length bound, J comes from per-segment sums (O(n·L) memory) instead of the 2-D
    cumulative sum: the same values up to rounding."""
    from pipeline.kts import normalized_features

    rng = np.random.default_rng(8)
    X = piecewise(90, rng)
    J = loop_scatters(kernel_of(X))
    L = 12
    band = kts_scatters.band_scatters(normalized_features(X), L)
    for e in range(90):
        for t in range(max(0, e - L + 1), e + 1):
            assert band[kts_scatters.col(e, L - 1) + t] == pytest.approx(J[t, e], abs=1e-12)


def test_banded_long_sequence_matches_reference():
    X = long_shot_features(400, 256, seed=4)
    K = kernel_of(X)
    for L in (9, 40):
        got = change_points_steps(X, KTSParams(max_segment_steps=L))
        np.testing.assert_array_equal(got, public_cpd_auto(K, 399, 1.0, 1, L))
        assert np.diff(np.concatenate(([0], got, [400]))).max() <= L


def test_scatters_are_bitwise_the_reference():
    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 64, 65, 150):  # rows come in blocks of 64
        K = kernel_of(rng.normal(size=(n, 10)))
        J = loop_scatters(K)
        full = in_place(K)
        assert np.array_equal(np.concatenate([full[e * n: e * n + e + 1] for e in range(n)]),
                              np.concatenate([J[: e + 1, e] for e in range(n)]))
        assert np.array_equal(public_scatters(K), J)


def test_public_form_is_the_loop_form():
    """The vectorised public arrangement (used where the loop form is too slow) gives the loop
    form's answers, bounds included."""
    rng = np.random.default_rng(11)
    for n in (2, 5, 17, 33):
        for X in (rng.normal(size=(n, 8)), piecewise(n, rng)):
            K = kernel_of(X)
            np.testing.assert_array_equal(public_cpd_auto(K, n - 1), loop_cpd_auto(K, n - 1))
    K = kernel_of(piecewise(30, rng))
    np.testing.assert_array_equal(public_cpd_auto(K, 9, 1.0, 2, 6), loop_cpd_auto(K, 9, 1.0, 2, 6))


def test_bench_baseline_is_the_public_algorithm():
    """`vsum bench kts` times its own copy of the public algorithm: it must be that algorithm."""
    from jobs.bench.kts_public import public_change_points

    rng = np.random.default_rng(12)
    for X in (rng.normal(size=(40, 8)), piecewise(57, rng), realistic_features(90, 64, seed=2)):
        np.testing.assert_array_equal(public_change_points(X), loop_cpd_auto(kernel_of(X), len(X) - 1))
    X = piecewise(30, rng)
    np.testing.assert_array_equal(public_change_points(X, lmax=6),
                                  loop_cpd_auto(kernel_of(X), 29, 1.0, 1, 6))


@pytest.mark.parametrize("kind,n,dim", [("realistic", 240, 1024), ("realistic", 480, 256),
                                        ("long_shot", 300, 1024), ("random", 257, 64)])
def test_benchmark_inputs_match_reference(kind, n, dim):
    """The benchmark's inputs (1024-d where affordable) at several sizes, the worst case too."""
    X = {"realistic": realistic_features, "long_shot": long_shot_features,
         "random": random_features}[kind](n, dim, seed=n)
    np.testing.assert_array_equal(change_points_steps(X), reference_change_points(X))


@pytest.mark.slow
@pytest.mark.parametrize("n", [900, 1600])
def test_realistic_input_matches_reference_at_bench_sizes(n):
    X = realistic_features(n, seed=n)
    np.testing.assert_array_equal(change_points_steps(X), reference_change_points(X))


def test_realistic_input_looks_like_video_and_is_cut_like_it():
    """The benchmark's realistic input: shots with a ~10-step median, similar steps within a
    shot and dissimilar across a cut; KTS finds about as many segments as planted."""
    n = 1200
    X = realistic_features(n, 256, seed=3)
    shots = realistic_shots(n, seed=3)
    assert shots.sum() == n and 8 <= np.median(shots) <= 12
    x = X / np.linalg.norm(X, axis=1, keepdims=True)
    cos = (x[1:] * x[:-1]).sum(axis=1)
    cut = np.isin(np.arange(1, n), np.cumsum(shots)[:-1])
    assert cos[~cut].mean() > 0.9 and cos[cut].mean() < 0.8
    found = len(change_points_steps(X))
    assert 0.75 * (len(shots) - 1) <= found <= 1.1 * (len(shots) - 1)


def test_search_expands_a_band_not_the_table():
    """On the realistic input only a small share of the public code's m·n²/2 candidates is
    evaluated and few layers are expanded, and the answer is still the reference's (the bounds
    are proofs, not heuristics)."""
    n = 400
    X = realistic_features(n, 256, seed=5)
    found = search(X)
    assert found.evaluated < 0.01 * (n - 1) * n * n / 2
    assert found.layers < n // 4
    assert found.k_best == len(found.change_points)
    np.testing.assert_array_equal(found.change_points, reference_change_points(X))


# -- the search's pieces -------------------------------------------------------------------------
@pytest.mark.parametrize("vmax", [0.0, 0.5, 1.0, 3.0])
def test_penalty_lines_lie_under_the_penalty_and_cover_every_k(vmax):
    for n, M in ((50, 49), (7200, 900), (7200, 7199)):
        pen = kts_search.penalties(n, M, vmax)
        for tol in (1e-6, 1e-3):
            alpha, gamma, last = kts_search.penalty_lines(pen, M, tol)
            assert len(alpha) <= 32 and last[-1] == M and (np.diff(last) > 0).all()
            first = np.concatenate(([1], last[:-1] + 1))
            for a, g, lo, hi in zip(alpha, gamma, first, last):
                K = np.arange(lo, hi + 1)
                assert (a + g * K <= pen[K] + 1e-12).all()  # rounding: the margin's job


def test_remainder_bound_is_the_best_priced_split():
    """P[i, t] = min over splits of steps t..n-1 of Σ J + price_i·segments, checked by brute
    force (a plain DP over a full J) with and without a segment-length bound."""
    from pipeline.kts import normalized_features

    rng = np.random.default_rng(21)
    X = piecewise(150, rng, noise=0.5)  # > 2 blocks of 64 ends
    n = len(X)
    K = kernel_of(X)
    J = loop_scatters(K)
    full = in_place(K)
    prices = np.array([0.0, 0.7, 3.0])
    for stride, L in ((n, n), (19, 20)):
        Jc = full if L == n else kts_scatters.band_scatters(normalized_features(X), L)
        P = kts_search.remainder_bounds(Jc, stride, n, L, prices)
        for i, price in enumerate(prices):
            want = np.zeros(n + 1)
            for t in range(n - 1, -1, -1):
                want[t] = min(J[t, e - 1] + price + want[e] for e in range(t + 1, min(n, t + L) + 1))
            np.testing.assert_allclose(P[i], want, rtol=0, atol=1e-9)


def test_priced_split_is_a_real_split_scored_as_the_dp_scores_it():
    """The upper bound comes from a concrete split: its cost is that split's summed scatters,
    at least the optimum for its number of cuts, within the length bounds."""
    rng = np.random.default_rng(22)
    X = piecewise(80, rng, noise=0.4)
    K = kernel_of(X)
    I, _ = loop_dp(loop_scatters(K), 79)
    full = in_place(K)
    for price in (0.0, 0.3, 2.0, 1e3):
        cuts, cost = kts_search._priced_split(full, 80, 80, 1, 80, price)
        assert 0 <= cuts <= 79 and cost >= I[cuts, 80] - 1e-12
    cuts, cost = kts_search._priced_split(full, 80, 80, 3, 80, 0.0)
    assert cuts <= 80 // 3 - 1


def test_threads_follow_omp_num_threads_and_do_not_change_the_answer(monkeypatch):
    """A Ray task is given OMP_NUM_THREADS=1: the search then runs on one thread, with exactly
    the same result and work as on several."""
    X = realistic_features(300, 64, seed=9)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    assert kts_search._threads() == 1
    one = search(X)
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert kts_search._threads() == min(2, kts_search.numba.config.NUMBA_NUM_THREADS)
    two = search(X)
    np.testing.assert_array_equal(one.change_points, two.change_points)
    assert (one.k_best, one.layers, one.evaluated) == (two.k_best, two.layers, two.evaluated)


# -- bad input -----------------------------------------------------------------------------------
def test_too_short_or_constant_gives_one_segment():
    assert len(change_points_steps(np.ones((1, 5)))) == 0
    assert len(change_points_steps(np.zeros((40, 8)))) == 0
    assert len(change_points_steps(np.tile(np.arange(1.0, 9.0), (40, 1)))) == 0
    # a scaled copy of one vector is constant after normalisation
    assert len(change_points_steps(np.outer(np.arange(1.0, 31.0), np.ones(4)))) == 0
    assert len(change_points_steps(np.random.rand(5, 4), KTSParams(min_segment_steps=3))) == 0
    # the reference agrees on constant input
    assert len(loop_cpd_auto(kernel_of(np.ones((12, 3))), 11, 1.0)) == 0


def test_zero_rows_among_others_are_allowed():
    X = piecewise(30, np.random.default_rng(2))
    X[[4, 5, 17]] = 0
    np.testing.assert_array_equal(change_points_steps(X), loop_cpd_auto(kernel_of(X), 29))


@pytest.mark.parametrize("bad,match", [
    (np.zeros((0, 4)), "T >= 1"),
    (np.array([[1.0, np.nan], [0.0, 1.0]]), "NaN"),
    (np.array([[1.0, np.inf], [0.0, 1.0]]), "NaN or infinite"),
    (np.ones(5), "shape"),
])
def test_bad_features_raise_one_clear_error(bad, match):
    with pytest.raises(ValueError, match=match):
        change_points_steps(bad)


@pytest.mark.parametrize("kwargs,match", [
    ({"kernel": "rbf"}, "kernel"), ({"vmax": -1.0}, "vmax"), ({"vmax": float("nan")}, "vmax"),
    ({"min_segment_steps": 0}, "min_segment_steps"), ({"max_change_points": -1}, "max_change"),
    ({"min_segment_steps": 4, "max_segment_steps": 3}, "max_segment_steps"),
])
def test_bad_params_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        KTSParams(**kwargs)


def test_unsatisfiable_length_bound_raises():
    with pytest.raises(ValueError, match="cannot be cut"):
        change_points_steps(np.random.rand(20, 3), KTSParams(max_segment_steps=4, max_change_points=3))


# -- frames ------------------------------------------------------------------------------------
def test_segments_cover_every_frame_once():
    rng = np.random.default_rng(4)
    X = piecewise(80, rng, noise=0.2)
    picks = np.arange(80) * 15
    n_frames = 80 * 15 - 7  # the last block is shorter than the step
    cps, nfps = kts_segments(X, picks, n_frames)
    steps = change_points_steps(X)
    assert cps.dtype == np.int32 and nfps.dtype == np.int32 and cps.shape == (len(steps) + 1, 2)
    assert cps[0, 0] == 0 and cps[-1, 1] == n_frames - 1
    np.testing.assert_array_equal(cps[1:, 0], picks[steps])
    np.testing.assert_array_equal(cps[1:, 0], cps[:-1, 1] + 1)
    np.testing.assert_array_equal(nfps, cps[:, 1] - cps[:, 0] + 1)
    assert nfps.sum() == n_frames


def test_uneven_picks_and_single_step():
    X = piecewise(40, np.random.default_rng(9))
    picks = np.cumsum(np.random.default_rng(1).integers(1, 30, size=40)) + 3
    cps, nfps = kts_segments(X, picks, int(picks[-1]) + 10)
    np.testing.assert_array_equal(cps[1:, 0], picks[change_points_steps(X)])
    assert nfps.sum() == picks[-1] + 10
    cps, nfps = kts_segments(np.ones((1, 8)), np.array([0]), 12)
    np.testing.assert_array_equal(cps, [[0, 11]])
    np.testing.assert_array_equal(nfps, [12])


def test_spatial_maps_are_averaged_over_space():
    rng = np.random.default_rng(6)
    maps = rng.normal(size=(30, 12, 2, 3)) + piecewise(30, rng, dim=12)[:, :, None, None]
    np.testing.assert_array_equal(change_points_steps(maps), change_points_steps(maps.mean(axis=(2, 3))))


@pytest.mark.parametrize("picks,n_frames,match", [
    (np.arange(5), 10, "picks has shape"), (np.array([0, 5, 5, 9]), 12, "increase"),
    (np.array([0, 5, 9, 12]), 12, "increase"), (np.arange(4), 0, "n_frames"),
])
def test_bad_picks_raise(picks, n_frames, match):
    with pytest.raises(ValueError, match=match):
        kts_segments(np.random.rand(4, 3), picks, n_frames)


# -- the job -------------------------------------------------------------------------------------
def _write_video(root, vid, feats, n_frames, complete=True):
    from stores.writer import VideoWriter

    w = VideoWriter(root, vid)
    w.begin({"n_frames": n_frames, "n_steps": len(feats)})
    w.write("picks", (np.arange(len(feats)) * 15).astype(np.int32))
    w.write("features/googlenet", feats.astype(np.float32))
    w.write("segments/change_points", np.array([[0, n_frames - 1]], dtype=np.int32))
    w.write("segments/n_frame_per_seg", np.array([n_frames], dtype=np.int32))
    if complete:
        w.finish({})


def test_vsum_kts_rewrites_segments_of_a_store(tmp_path, capsys):
    from jobs.cli import main
    from stores.check import check_store
    from stores.location import open_root
    from stores.reader import FeatureStore

    path = str(tmp_path / "s.zarr")
    root = open_root(path, "a")
    good = long_shot_features(90, 64, seed=1)
    nan = good.copy()
    nan[3, 5] = np.nan
    _write_video(root, "good", good, 90 * 15 - 4)
    _write_video(root, "bad", nan, 90 * 15)
    _write_video(root, "unfinished", good, 90 * 15, complete=False)

    code = main(["kts", "--store", path, "--vmax", "0.5", "--min-seg", "2"])
    err = capsys.readouterr().err
    assert code == 1
    failed = [line for line in err.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and "videos/bad:" in failed[0] and "NaN" in failed[0]
    fs = FeatureStore(path)
    params = KTSParams(vmax=0.5, min_segment_steps=2)
    want_cps, want_nfps = kts_segments(good, np.arange(90) * 15, 90 * 15 - 4, params)
    assert len(want_cps) > 1
    np.testing.assert_array_equal(fs.load("good", "segments/change_points"), want_cps)
    np.testing.assert_array_equal(fs.load("good", "segments/n_frame_per_seg"), want_nfps)
    assert fs.attrs("good")["kts"]["vmax"] == 0.5
    assert fs.attrs("good")["kts"]["min_segment_steps"] == 2
    assert "kts" not in fs.attrs("bad")  # a failed video keeps what it had
    assert len(fs.load("unfinished", "segments/change_points")) == 1  # incomplete: untouched
    assert not [p for p in check_store(path) if p.video_id == "good"]


def test_vsum_kts_command_with_a_segment_length_bound(tmp_path):
    """The command a user runs: `vsum kts --max-segment-steps L` (the documented approximation)
    exits 0, keeps every segment within L steps and records the bound."""
    import subprocess
    import sys
    from pathlib import Path

    from stores.location import open_root
    from stores.reader import FeatureStore

    path = str(tmp_path / "s.zarr")
    feats = realistic_features(120, 64, seed=4)
    _write_video(open_root(path, "a"), "v", feats, 120 * 15)
    vsum = str(Path(sys.executable).parent / "vsum")
    done = subprocess.run([vsum, "kts", "--store", path, "--max-segment-steps", "6"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    fs = FeatureStore(path)
    nfps = fs.load("v", "segments/n_frame_per_seg")
    assert nfps.sum() == 120 * 15 and nfps.max() <= 6 * 15 and len(nfps) >= 20
    assert fs.attrs("v")["kts"]["max_segment_steps"] == 6
    want, _ = kts_segments(feats, np.arange(120) * 15, 120 * 15, KTSParams(max_segment_steps=6))
    np.testing.assert_array_equal(fs.load("v", "segments/change_points"), want)


def test_vsum_bench_kts_measures_both_and_checks_identity(tmp_path):
    """`vsum bench kts` on tiny inputs: one row per (input, n), both sides run and agree, the
    figures land in the JSON; an unknown input kind is a usage error (exit 2, one line)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    vsum = str(Path(sys.executable).parent / "vsum")
    out = tmp_path / "kts.json"
    done = subprocess.run([vsum, "bench", "kts", "--sizes", "40,70", "--inputs", "realistic,random",
                           "--dim", "16", "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    res = json.loads(out.read_text())
    assert [(r["input"], r["n"]) for r in res["rows"]] == [
        ("realistic", 40), ("realistic", 70), ("random", 40), ("random", 70)]
    assert all(r["identical"] is True and r["ref_s"] > 0 and r["ours_s"] > 0 for r in res["rows"])
    assert res["rows"][-1]["k_best"] == 69  # random rows: every step its own segment
    assert "load_1min" in res["load_start"] and "PASS  identical" in done.stdout
    bad = subprocess.run([vsum, "bench", "kts", "--inputs", "video"], capture_output=True,
                         text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.strip().count("\n") == 0 and "video" in bad.stderr
