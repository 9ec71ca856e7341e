"""The demo corpus: long videos of short shots, importance planted in the pixels, annotations
that mark it."""
import json

import av
import numpy as np

from jobs.demo_corpus import DemoCorpusSpec, build_demo_corpus, plan_synthetic, shot_lengths
from stores.importers.jsonfmt import read_json


def test_plan_has_many_short_shots_and_a_real_choice():
    c = DemoCorpusSpec()
    plans = plan_synthetic(c)
    assert len(plans) >= 16
    for p in plans:
        assert c.seconds[0] <= p.seconds <= c.seconds[1]
        lengths = np.asarray(p.spec.shot_lengths) / p.spec.fps
        assert sum(p.spec.shot_lengths) == p.spec.n_frames
        assert lengths.min() >= 1.0 and lengths.max() <= 6.0 + 1.0  # a short remainder joins the last
        assert len(lengths) >= 8  # KTS has many segments to find
        important_s = lengths[list(p.important)].sum()
        # more important footage than the 15 % budget: the knapsack must choose among it
        assert important_s > 0.15 * p.seconds
        assert sum(p.important) >= 2
    # deterministic
    assert plan_synthetic(c)[3] == plans[3]


def test_shot_lengths_stay_in_range():
    rng = np.random.default_rng(5)
    for n in (7, 10, 95, 600):
        lengths = shot_lengths(rng, n, 10, (1.0, 6.0))
        assert sum(lengths) == n
        assert all(x >= 10 for x in lengths) or len(lengths) == 1


def test_importance_is_visible_in_the_pixels_and_annotated(tmp_path):
    spec = DemoCorpusSpec(n_synthetic=2, seconds=(8.0, 9.0), width=64, height=48)
    videos, ann, plans = build_demo_corpus(tmp_path, spec)
    assert [v.name for v in videos[:3]] == ["bigbuckbunny.mp4", "bikes.mp4", "carphone_pristine.mp4"]
    assert all(v.exists() for v in videos) and not list((tmp_path / "videos").glob(".*partial*"))
    p = plans[0]
    cuts = p.spec.cuts()
    with av.open(str(videos[3])) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == p.spec.n_frames
    for shot, (start, imp) in enumerate(zip(cuts, p.important)):
        img = frames[start + 2].astype(float)
        red_minus_blue = (img[..., 0] - img[..., 2]).mean()
        # warm palette (R - B >= 70 before texture shading) vs not (R - B <= 10)
        assert (red_minus_blue > 30) == imp, (shot, red_minus_blue, imp)
    doc = json.loads(ann.read_text())
    assert len(doc["videos"]) == 2
    for entry, plan in zip(doc["videos"], plans):
        assert len(entry["intervals"]) == spec.n_annotators
        marked = np.mean([len(u) for u in entry["intervals"]])
        assert 0.5 * sum(plan.important) <= marked <= sum(plan.important) + 2
    parsed = read_json(ann)  # the importer reads it
    assert parsed[0].user_summary.shape == (spec.n_annotators, plans[0].spec.n_frames)
    # annotators agree with the planted truth far more often than not
    truth = np.repeat(plans[0].important, plans[0].spec.shot_lengths)
    agree = (parsed[0].user_summary == truth).mean()
    assert agree > 0.75
    # a rerun keeps the videos (no regeneration)
    mtime = videos[3].stat().st_mtime_ns
    build_demo_corpus(tmp_path, spec)
    assert videos[3].stat().st_mtime_ns == mtime


def test_interest_grows_with_warmth_and_separates_the_classes():
    from jobs.demo_corpus import shot_interest

    warm = [shot_interest((r, 100, 40), True) for r in (110, 150, 190, 220)]  # red - blue 70..180
    cool = [shot_interest((r, 100, 100), False) for r in (40, 70, 90, 110)]  # red - blue -60..10
    assert warm == sorted(warm) and warm[0] == 0.55 and warm[-1] == 1.0
    assert cool == sorted(cool) and cool[0] == 0.0 and cool[-1] == 0.15
    plans = plan_synthetic(DemoCorpusSpec())
    imp = [i for p in plans for i, m in zip(p.interest, p.important) if m]
    other = [i for p in plans for i, m in zip(p.interest, p.important) if not m]
    assert min(imp) >= 0.55 and max(other) <= 0.15 and len(set(np.round(imp, 2))) > 10
