"""KTS: exactly the public algorithm's change points, and well-defined on bad input.

The reference here is the algorithm written the plainest way (double loop for the scatters,
a full DP table, np.min/np.argmin): slow, and obviously the published cpd_nonlin + cpd_auto.
"""
from __future__ import annotations

import numpy as np
import pytest

from jobs.bench.kts import (
    random_features,
    reference_change_points,
    reference_cpd_auto,
    reference_scatters,
    video_like_features,
)
from pipeline import kts
from pipeline.kts import KTSParams, change_points_steps, kts_segments


# -- the obviously-correct reference -----------------------------------------------------------
def loop_scatters(K):
    """J[i, j] = sum_t K[t,t] - (sum_{s,t} K[s,t]) / len over steps i..j, via the 2-D cumsum."""
    n = len(K)
    K1 = np.cumsum(np.concatenate(([0.0], np.diag(K))))
    K2 = np.zeros((n + 1, n + 1))
    K2[1:, 1:] = np.cumsum(np.cumsum(K, 0), 1)
    J = np.zeros((n, n))
    for i in range(n):
        for j in range(i, n):
            J[i, j] = K1[j + 1] - K1[i] - (K2[j + 1, j + 1] + K2[i, i] - K2[j + 1, i] - K2[i, j + 1]) / (j - i + 1)
    return J


def loop_dp(J, m, lmin=1, lmax=None):
    """I[k, l]: best cost of steps 0..l-1 in k+1 segments of length in [lmin, lmax]; arg[k, l]:
    the start of the last segment (first minimum on ties)."""
    n = len(J)
    lmax = n if lmax is None else lmax
    I = np.full((m + 1, n + 1), 1e101)
    arg = np.zeros((m + 1, n + 1), dtype=int)
    for l in range(lmin, min(lmax, n) + 1):
        I[0, l] = J[0, l - 1]
    for k in range(1, m + 1):
        for l in range((k + 1) * lmin, n + 1):
            ts = list(range(max(k * lmin, l - lmax), l - lmin + 1))
            c = np.array([J[t, l - 1] + I[k - 1, t] for t in ts])
            I[k, l] = c.min()
            arg[k, l] = ts[int(np.argmin(c))]
    return I, arg


def loop_cpd_auto(K, m, vmax=1.0, lmin=1, lmax=None):
    n = len(K)
    J = loop_scatters(K)
    I, arg = loop_dp(J, m, lmin, lmax)
    scores = I[:, n].copy()
    scores[scores > 1e99] = np.inf
    pen = np.zeros(m + 1)
    ncp = np.arange(1, m + 1)
    pen[1:] = (vmax * ncp / (2.0 * n)) * (np.log(float(n) / ncp) + 1)
    k_best = int(np.argmin(scores / float(n) + pen))
    cps, cur = [], n
    for k in range(k_best, 0, -1):
        cur = arg[k, cur]
        cps.append(cur)
    return np.array(cps[::-1], dtype=np.int64)


def kernel_of(features):
    x = kts.normalized_features(features)
    return kts.linear_kernel(x)


def piecewise(n, rng, dim=16, noise=0.3, max_cuts=8):
    """Piecewise-constant means plus Gaussian noise, [n, dim]."""
    n_cuts = int(rng.integers(0, min(n - 1, max_cuts) + 1)) if n > 1 else 0
    cuts = np.sort(rng.choice(np.arange(1, n), size=n_cuts, replace=False)) if n_cuts else []
    label = np.zeros(n, dtype=int)
    for c in cuts:
        label[c:] += 1
    means = rng.normal(size=(label.max() + 1, dim))
    return means[label] + noise * rng.normal(size=(n, dim))


SMALL_N = list(range(1, 26)) + [31, 40, 57]


# -- exactness ---------------------------------------------------------------------------------
@pytest.mark.parametrize("n", SMALL_N)
def test_random_sequences_match_reference(n):
    rng = np.random.default_rng(n)
    for dim in (3, 32):
        X = rng.normal(size=(n, dim))
        want = loop_cpd_auto(kernel_of(X), n - 1) if n > 1 else np.zeros(0, np.int64)
        np.testing.assert_array_equal(change_points_steps(X), want)


@pytest.mark.parametrize("n", SMALL_N)
def test_piecewise_sequences_match_reference(n):
    rng = np.random.default_rng(1000 + n)
    for noise in (0.05, 0.5, 2.0):
        X = piecewise(n, rng, noise=noise)
        want = loop_cpd_auto(kernel_of(X), n - 1) if n > 1 else np.zeros(0, np.int64)
        np.testing.assert_array_equal(change_points_steps(X), want)


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


@pytest.mark.parametrize("lmin,lmax", [(1, None), (2, None), (3, 10), (1, 5), (2, 70)])
def test_many_blocks_and_layer_groups_match_reference(lmin, lmax):
    """Sizes past one 64-column tile and one 64-layer group (random rows keep every layer
    alive), with and without segment-length bounds, against the public form."""
    rng = np.random.default_rng(lmin * 10 + (lmax or 0))
    for n, X in ((131, rng.normal(size=(131, 6))), (197, piecewise(197, rng, noise=0.8))):
        K = kernel_of(X)
        m = n // lmin - 1
        params = KTSParams(min_segment_steps=lmin, max_segment_steps=lmax)
        np.testing.assert_array_equal(change_points_steps(X, params),
                                      reference_cpd_auto(K, m, 1.0, lmin, lmax))


def test_banded_scatters_are_the_same_scatters():
    """With a length bound, J comes from per-segment sums (O(n·L) memory) instead of the 2-D
    cumulative sum: the same values up to rounding."""
    rng = np.random.default_rng(8)
    X = piecewise(90, rng)
    K = kernel_of(X)
    J = loop_scatters(K)
    L = 12
    band = kts._band_scatters(kts.normalized_features(X), L)
    for e in range(90):
        for t in range(max(0, e - L + 1), e + 1):
            assert band[(e + 1) * (L - 1) + t] == pytest.approx(J[t, e], abs=1e-12)


def test_banded_long_sequence_matches_reference():
    X = video_like_features(400, 256, seed=4)
    K = kernel_of(X)
    for L in (9, 40):
        got = change_points_steps(X, KTSParams(max_segment_steps=L))
        np.testing.assert_array_equal(got, reference_cpd_auto(K, 399, 1.0, 1, L))
        assert np.diff(np.concatenate(([0], got, [400]))).max() <= L


def test_scatters_are_bitwise_the_reference():
    rng = np.random.default_rng(5)
    for n in (1, 2, 7, 64):
        K = kernel_of(rng.normal(size=(n, 10)))
        J = loop_scatters(K)
        packed = kts._packed_scatters(K, np.cumsum(np.concatenate(([0.0], np.diag(K)))))
        assert np.array_equal(packed, np.concatenate([J[: e + 1, e] for e in range(n)]))
        assert np.array_equal(reference_scatters(K), J)


def test_bench_reference_is_the_loop_reference():
    """The vectorised public form the benchmark times gives the same answers as the loop form."""
    rng = np.random.default_rng(11)
    for n in (2, 5, 17, 33):
        for X in (rng.normal(size=(n, 8)), piecewise(n, rng)):
            K = kernel_of(X)
            np.testing.assert_array_equal(reference_cpd_auto(K, n - 1, 1.0), loop_cpd_auto(K, n - 1))
    K = kernel_of(piecewise(30, rng))
    np.testing.assert_array_equal(reference_cpd_auto(K, 9, 1.0, 2, 6), loop_cpd_auto(K, 9, 1.0, 2, 6))


@pytest.mark.parametrize("kind,n", [("video", 300), ("video", 611), ("random", 257)])
def test_longer_sequences_match_reference(kind, n):
    """Video-like 1024-d features (the benchmark's input) and the no-pruning worst case."""
    X = video_like_features(n, seed=n) if kind == "video" else random_features(n, 64, seed=n)
    np.testing.assert_array_equal(change_points_steps(X), reference_change_points(X))


def test_penalty_bound_prunes_layers(monkeypatch):
    """On structured input only a fraction of the n-1 layers is computed, and the answer is
    still the reference's (the bound is a proof, not a heuristic)."""
    computed = []
    real = kts._dp_layers

    def counting(J, band, I, k0, k1, *rest):
        computed.append(k1 - k0)
        return real(J, band, I, k0, k1, *rest)

    monkeypatch.setattr(kts, "_dp_layers", counting)
    X = video_like_features(500, 128, seed=3)
    got = change_points_steps(X)
    assert sum(computed) < 500 // 2
    np.testing.assert_array_equal(got, reference_change_points(X))


# -- bad input -----------------------------------------------------------------------------------
def test_too_short_or_constant_gives_one_segment():
    assert len(change_points_steps(np.ones((1, 5)))) == 0
    assert len(change_points_steps(np.zeros((40, 8)))) == 0
    assert len(change_points_steps(np.tile(np.arange(1.0, 9.0), (40, 1)))) == 0
    # a scaled copy of one vector is constant after normalisation
    assert len(change_points_steps(np.outer(np.arange(1.0, 31.0), np.ones(4)))) == 0
    assert len(change_points_steps(np.random.rand(5, 4), KTSParams(min_segment_steps=3))) == 0
    # the reference agrees on constant input
    assert len(reference_cpd_auto(kernel_of(np.ones((12, 3))), 11, 1.0)) == 0


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
    good = video_like_features(90, 64, seed=1)
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
