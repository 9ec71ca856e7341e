"""``vsum kts --store S``: (re)compute KTS change points for every complete video of a store.

Reads each video's 2-D features (``features/googlenet`` by default), picks and ``n_frames``;
overwrites ``segments/change_points`` [S, 2] and ``segments/n_frame_per_seg`` [S]; records the
parameters in the video's attrs under ``kts``. One line per failing video on stderr; the exit
code is 1 when any video failed (2 when the store is held by another job).
"""
from __future__ import annotations

import sys
from dataclasses import asdict


def register(sub) -> None:
    p = sub.add_parser("kts", help="(re)compute KTS change points of an existing store")
    p.add_argument("--store", required=True, help="store path or URL")
    p.add_argument("--feature", default="googlenet", help="2-D feature array to segment on")
    p.add_argument("--vmax", type=float, default=1.0, help="cpd_auto penalty weight (default 1)")
    p.add_argument("--max-change-points", type=int, default=None,
                   help="upper bound on change points (default n_steps-1)")
    p.add_argument("--min-seg", type=int, default=1, help="minimum segment length in steps")
    p.add_argument("--max-seg", type=int, default=None,
                   help="maximum segment length in steps (default unbounded = exact KTS)")
    p.add_argument("--center", action="store_true",
                   help="subtract the video's mean feature first (for random-init features)")
    p.set_defaults(func=run_cli)


def params_from_args(args):
    from pipeline.kts import KTSParams

    return KTSParams(vmax=args.vmax, max_change_points=args.max_change_points, center=args.center,
                     min_segment_steps=args.min_seg, max_segment_steps=args.max_seg)


def segment_video(store, root, video_id: str, feature: str, params) -> int:
    """Recompute and overwrite one video's segments; returns the number of segments.
    Raises ValueError (one line) for bad inputs."""
    from pipeline.kts import kts_segments
    from stores import layout
    from stores.writer import write_array

    attrs = store.attrs(video_id)
    if "n_frames" not in attrs:
        raise ValueError("no n_frames attribute")
    feats = store.features(video_id, feature)
    picks = store.load(video_id, layout.PICKS)
    cps, nfps = kts_segments(feats, picks, int(attrs["n_frames"]), params)
    group = root[layout.video_group_path(video_id)]
    write_array(group, layout.CHANGE_POINTS, cps)
    write_array(group, layout.N_FRAME_PER_SEG, nfps)
    group.attrs["kts"] = asdict(params)
    return len(cps)


def run(store_path: str, params, feature: str = "googlenet", progress: bool = True
        ) -> tuple[int, list[str], int]:
    """(videos segmented, one error line per failing video, videos skipped for lack of the
    feature). Holds the store's lease while it writes."""
    from tqdm import tqdm

    from stores import layout
    from stores.location import open_root
    from stores.lock import StoreLock
    from stores.manifest import writing
    from stores.reader import FeatureStore

    store = FeatureStore(store_path)
    ids = store.video_ids()
    done, errors, skipped = 0, [], 0
    with StoreLock(store_path, command="vsum kts"), writing(store_path, ids, command="vsum kts"):
        root = open_root(store_path, "a")
        for vid in tqdm(ids, desc="kts", unit="video", disable=not progress):
            if not store.has(vid, layout.feature_path(feature)):
                skipped += 1
                continue
            try:
                segment_video(store, root, vid, feature, params)
                done += 1
            except (ValueError, KeyError) as e:  # bad input: one line, go on with the rest
                errors.append(f"{store_path}/{layout.video_group_path(vid)}: {e}")
    return done, errors, skipped


def run_cli(args) -> int:
    from stores.lock import StoreLocked

    try:
        params = params_from_args(args)
        done, errors, skipped = run(args.store, params, args.feature)
    except StoreLocked as e:
        print(f"vsum kts: {e}", file=sys.stderr)
        return 2
    except (FileNotFoundError, ValueError) as e:
        print(f"vsum kts: {args.store}: {e}", file=sys.stderr)
        return 1
    for line in errors:
        print(f"FAILED {line}", file=sys.stderr)
    print(f"kts: {done} videos segmented, {len(errors)} failed, {skipped} without "
          f"features/{args.feature}; params {asdict(params)}")
    return 1 if errors else 0
