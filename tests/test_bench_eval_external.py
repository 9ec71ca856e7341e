"""`vsum bench eval-external`'s inputs: one set of scores written as a run, a result h5 and a
Parquet table (the bench then times evaluating each)."""
from stores.synthetic import build_synthetic_store


def test_the_three_inputs_hold_the_same_scores(tmp_path):
    import h5py
    import numpy as np
    import pandas as pd

    from jobs.bench.eval_external import write_inputs

    store = str(tmp_path / "s.zarr")
    build_synthetic_store(store, n_videos=3, min_steps=10, max_steps=20, feature_shapes={"googlenet": (8,)})
    args = write_inputs(store, tmp_path)
    assert len(args) >= 3
    table = pd.read_parquet(tmp_path / "scores.parquet").set_index("video_id")["scores"]
    with h5py.File(tmp_path / "result.h5") as h5:
        assert sorted(h5.keys()) == sorted(table.index) and len(table) == 3
        for vid, scores in table.items():
            np.testing.assert_array_equal(h5[f"{vid}/score"][...], np.asarray(scores, np.float32))
