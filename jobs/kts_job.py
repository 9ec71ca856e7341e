"""``vsum kts --store S``: (re)compute KTS change points for every complete video of a store.

Reads each video's 2-D features (``features/googlenet`` by default), picks and ``n_frames``;
overwrites ``segments/change_points`` [S, 2] and ``segments/n_frame_per_seg`` [S]; records the
parameters in the video's attrs under ``kts``. One line per failing video on stderr; exit codes
as every command: 1 when any video failed, 2 for a bad option or a missing store or feature,
3 when the store is held by another job.
"""
from __future__ import annotations

import sys
from dataclasses import asdict

from pipeline.errors import EXIT_PARTIAL, StoreError, UsageError


def register(sub) -> None:
    p = sub.add_parser("kts", help="(re)compute KTS change points of an existing store")
    p.add_argument("--store", required=True, help="store path or URL")
    p.add_argument("--feature", default="googlenet", help="2-D feature array to segment on")
    p.add_argument("--vmax", type=float, default=1.0, help="cpd_auto penalty weight (default 1)")
    p.add_argument("--max-change-points", type=int, default=None,
                   help="upper bound on change points (default n_steps-1)")
    p.add_argument("--min-seg", type=int, default=1, help="minimum segment length in steps")
    p.add_argument("--max-seg", "--max-segment-steps", dest="max_seg", type=int, default=None,
                   help="maximum segment length in steps (default unbounded = exact KTS); an "
                        "approximation of KTS for very long videos: O(n·L) memory, no n×n kernel")
    p.add_argument("--center", action="store_true",
                   help="subtract the video's mean feature first (for random-init features)")
    p.set_defaults(func=run_cli)


def params_from_args(args):
    """KTSParams from the options; a bad value is one UsageError line."""
    import math

    for ok, message in ((math.isfinite(args.vmax) and args.vmax >= 0, f"--vmax must be >= 0, got {args.vmax}"),
                        (args.min_seg >= 1, f"--min-seg must be >= 1, got {args.min_seg}"),
                        (args.max_seg is None or args.max_seg >= args.min_seg,
                         f"--max-seg ({args.max_seg}) must be >= --min-seg ({args.min_seg})"),
                        (args.max_change_points is None or args.max_change_points >= 0,
                         f"--max-change-points must be >= 0, got {args.max_change_points}")):
        if not ok:
            raise UsageError(message)
    from pipeline.kts import KTSParams  # numba: after the cheap checks

    try:
        return KTSParams(vmax=args.vmax, max_change_points=args.max_change_points,
                         center=args.center, min_segment_steps=args.min_seg,
                         max_segment_steps=args.max_seg)
    except ValueError as e:  # KTSParams checks its own ranges
        raise UsageError(str(e)) from None


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
    feature). Holds the store's lease while it writes. Raises StoreNotFound/StoreError for a
    missing or unwritable store, UsageError when no complete video has the feature, StoreBusy
    when another job holds the store."""
    from tqdm import tqdm

    from stores import layout
    from stores.location import open_root
    from stores.lock import StoreLock
    from stores.manifest import writing
    from stores.reader import FeatureStore

    store = FeatureStore(store_path)
    ids = store.video_ids()
    with_feature = [v for v in ids if store.has(v, layout.feature_path(feature))]
    if ids and not with_feature:
        have = sorted({n for v in ids for n in store.feature_names(v)})
        raise UsageError(f"no complete video has features/{feature} (this store has: "
                         f"{', '.join(have) or 'none'})", store_path)
    done, errors = 0, []
    with StoreLock(store_path, command="vsum kts"):
        try:
            with writing(store_path, with_feature, command="vsum kts"):
                root = open_root(store_path, "a")
                for vid in tqdm(with_feature, desc="kts", unit="video", disable=not progress):
                    try:
                        segment_video(store, root, vid, feature, params)
                        done += 1
                    except (ValueError, KeyError) as e:  # bad input: one line, go on with the rest
                        errors.append(f"{store_path}/{layout.video_group_path(vid)}: {e}")
        except OSError as e:  # the store, not one video: every other write would fail too
            raise StoreError(f"cannot write segments after {done} videos ({e.strerror or e})",
                             store_path) from None
    return done, errors, len(ids) - len(with_feature)


def run_cli(args) -> int:
    params = params_from_args(args)
    done, errors, skipped = run(args.store, params, args.feature)
    for line in errors:
        print(f"FAILED {line}", file=sys.stderr)
    print(f"kts: {done} videos segmented, {len(errors)} failed, {skipped} without "
          f"features/{args.feature}; params {asdict(params)}")
    return EXIT_PARTIAL if errors else 0
