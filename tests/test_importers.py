"""Importers on the real TVSum/SumMe files, the generic JSON form, and joining extracted videos."""
import json

import numpy as np
import pytest

from jobs.cli import main as vsum
from stores import layout
from stores.importers.common import align_index, import_annotations
from stores.importers.jsonfmt import read_json
from stores.importers.summe import read_summe
from stores.importers.tvsum import read_tvsum
from stores.location import open_root
from stores.reader import FeatureStore
from stores.writer import VideoWriter


@pytest.fixture(scope="module")
def tvsum(shared_data):
    return read_tvsum(shared_data / "tvsum" / "ydata-tvsum50.mat")


def test_tvsum_mat_and_tsv_agree(tvsum, shared_data):
    assert len(tvsum) == 50
    assert all(v.user_scores.shape[0] == 20 for v in tvsum)
    assert tvsum[0].name == "AwmHb44_ouw" and tvsum[0].eccv16_key == "video_1"
    assert tvsum[0].user_scores.shape[1] == 10597
    assert 29.9 < tvsum[0].fps < 30.0
    tsv = read_tvsum(shared_data / "tvsum" / "ydata-tvsum50-anno.tsv")
    assert [v.name for v in tsv] == [v.name for v in tvsum]
    assert all(np.array_equal(a.user_scores, b.user_scores) for a, b in zip(tsv, tvsum))


def test_tvsum_import_annotation_only(tvsum, tmp_path):
    store = str(tmp_path / "tv.zarr")
    res = import_annotations(tvsum[:2], store)
    assert len(res.created) == 2 and not res.failed
    fs = FeatureStore(store)
    vid = tvsum[1].name
    a = fs.attrs(vid)
    n = tvsum[1].anno_n_frames
    assert a["complete"] and a["n_frames"] == n and a["dataset"] == "tvsum"
    assert a["eccv16_key"] == "video_2" and a["anno_frame_mismatch"] == 0
    picks = fs.load(vid, layout.PICKS)
    assert picks.tolist() == list(range(0, n, 15))
    us = fs.load(vid, layout.USER_SUMMARY)
    assert us.shape == (20, n) and us.dtype == np.uint8
    assert np.all(us.sum(1) <= int(0.15 * n)) and np.all(us.sum(1) > 0.1 * n)
    gt = fs.load(vid, layout.GTSCORE)
    assert gt.shape == picks.shape and gt.min() == 0.0 and gt.max() == 1.0
    cps = fs.load(vid, layout.CHANGE_POINTS)
    size = round(2 * tvsum[1].fps)  # uniform 2-second segments (this video is 25 fps)
    assert size == 50 and cps[0].tolist() == [0, size - 1] and cps[-1, 1] == n - 1


def test_summe_real_files(shared_data, tmp_path):
    videos = read_summe(shared_data / "summe" / "GT")
    assert len(videos) == 25
    assert [v.eccv16_key for v in videos[:2]] == ["video_1", "video_2"]
    assert videos[1].name == "Base jumping" and videos[-1].name == "playing_ball"
    assert all(15 <= v.user_summary.shape[0] <= 18 for v in videos)
    store = str(tmp_path / "sm.zarr")
    import_annotations(videos[1:3], store)
    fs = FeatureStore(store)
    assert fs.video_ids() == ["Base_jumping", "Bearpark_climbing"]
    us = fs.load("Base_jumping", layout.USER_SUMMARY)
    assert np.array_equal(us, videos[1].user_summary)  # the users' own selections
    assert fs.attrs("Base_jumping")["anno_name"] == "Base jumping"


def test_align_index_by_time():
    assert align_index(4, 30.0, 4, 30.0).tolist() == [0, 1, 2, 3]
    # decoded at 30 fps, annotated at 15 fps: two decoded frames per annotation frame
    assert align_index(6, 30.0, 3, 15.0).tolist() == [0, 0, 1, 1, 2, 2]
    # more decoded frames than annotated: the tail holds the last annotation frame
    assert align_index(5, 30.0, 3, 30.0).tolist() == [0, 1, 2, 2, 2]


def _extracted(store, vid, n_frames, fps, cps=None):
    """A complete group as the extract job leaves it (picks, no labels)."""
    w = VideoWriter(open_root(store, "a"), vid)
    w.begin({"source": f"/videos/{vid}.mp4", "n_frames": n_frames, "fps": fps,
             "duration_s": n_frames / fps})
    w.write(layout.PICKS, np.arange(0, n_frames, 15, dtype=np.int32))
    if cps is not None:
        w.write(layout.CHANGE_POINTS, np.asarray(cps, np.int32))
    w.finish({})


def _json_file(tmp_path, videos, name="anno.json"):
    p = tmp_path / name
    p.write_text(json.dumps({"dataset": "toy", "videos": videos}))
    return p


def test_labels_join_extracted_video_aligned_by_time(tmp_path):
    store = str(tmp_path / "s.zarr")
    # decoded 100 frames at 10 fps; the annotation says 90 frames at 10 fps
    _extracted(store, "clip", 100, 10.0, cps=[[0, 49], [50, 99]])
    scores = np.zeros((2, 90))
    scores[:, 60:90] = 1.0
    p = _json_file(tmp_path, [{"name": "clip", "fps": 10.0, "user_scores": scores.tolist()}])
    res = import_annotations(read_json(p), store)
    assert res.joined == ["clip"] and not res.created
    fs = FeatureStore(store)
    a = fs.attrs("clip")
    assert a["anno_n_frames"] == 90 and a["anno_frame_mismatch"] == 10
    assert a["labels_segments"] == "kts"
    us = fs.load("clip", layout.USER_SCORES)
    assert us.shape == (2, 100) and us[0, 89] == 1.0 and us[0, 99] == 1.0  # tail held
    # 15% of 100 = 15 frames: neither 50-frame shot fits -> empty reference summaries
    assert fs.load("clip", layout.USER_SUMMARY).sum() == 0


def test_json_intervals_and_cli_with_videos_dir(tmp_path, capsys):
    p = _json_file(tmp_path, [
        {"name": "a b", "fps": 10.0, "duration_s": 10.0, "intervals": [[[1.0, 2.0]], [[1.5, 3.0]]]},
    ])
    videos = read_json(p)
    assert videos[0].user_summary.shape == (2, 100)
    assert np.flatnonzero(videos[0].user_summary[0]).tolist() == list(range(10, 20))
    store = str(tmp_path / "s.zarr")
    assert vsum(["import", "json", str(p), "--store", store]) == 0
    assert FeatureStore(store).video_ids() == ["a_b"]
    # --videos DIR whose file was never extracted into a fresh store: one clear line, exit 1
    vdir = tmp_path / "vids"
    vdir.mkdir()
    (vdir / "a b.mp4").write_bytes(b"")
    store2 = str(tmp_path / "s2.zarr")
    assert vsum(["import", "json", str(p), "--store", store2, "--videos", str(vdir)]) == 1
    assert "not extracted" in capsys.readouterr().err


def test_bad_inputs_give_one_clear_line(tmp_path, capsys):
    bad = tmp_path / "ydata-tvsum50.mat"
    bad.write_bytes(b"not a mat file")
    assert vsum(["import", "tvsum", "--anno", str(bad), "--store", str(tmp_path / "x.zarr")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
    with pytest.raises(ValueError, match="'fps' is required"):
        read_json(_json_file(tmp_path, [{"name": "x", "user_scores": [[1, 2]]}]))
