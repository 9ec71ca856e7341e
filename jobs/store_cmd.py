"""``vsum store info|check|export-h5|import-h5|synth``: look at and move stores."""
from __future__ import annotations

import sys

from pipeline.errors import EXIT_PARTIAL, StoreError, UsageError


def register(sub) -> None:
    p = sub.add_parser("store", help="inspect, validate, export/import a store")
    s = p.add_subparsers(dest="store_command", required=True, parser_class=type(p))

    info = s.add_parser("info", help="videos, arrays, shapes, manifest summary")
    info.add_argument("store")
    info.set_defaults(func=info_cli)

    check = s.add_parser("check", help="validate every complete video (exit 1 on problems)")
    check.add_argument("store")
    check.set_defaults(func=check_cli)

    exp = s.add_parser("export-h5", help="write the eccv16 h5 schema")
    exp.add_argument("store")
    exp.add_argument("out")
    exp.add_argument("--feature", default="googlenet")
    exp.add_argument("--l2-normalize", action="store_true")
    exp.set_defaults(func=export_cli)

    imp = s.add_parser("import-h5", help="read an eccv16 h5 file into a store")
    imp.add_argument("h5")
    imp.add_argument("store")
    imp.add_argument("--dataset", default=None, help="dataset name recorded per video (tvsum, summe…)")
    imp.set_defaults(func=import_cli)

    syn = s.add_parser("synth", help="a labelled synthetic store with planted importance")
    syn.add_argument("out")
    syn.add_argument("--videos", type=int, default=50)
    syn.add_argument("--seed", type=int, default=0)
    syn.add_argument("--features", default="googlenet=1024",
                     help="NAME=SHAPE,... e.g. googlenet=1024,st3d=512x4x4 (4-D maps for 3DST-UNet-RL)")
    syn.add_argument("--min-steps", type=int, default=200)
    syn.add_argument("--max-steps", type=int, default=700)
    syn.set_defaults(func=synth_cli)


def info_cli(args) -> int:
    from stores import Store, layout

    store = Store(args.store)
    fs = store.reader()
    ix = fs.index()  # one read for every video (stores/index.py); a parallel scan when stale
    ids = ix.complete_ids()
    print(f"store {args.store}: {len(ids)} complete videos ({len(ix.ids()) - len(ids)} incomplete)")
    for vid, shapes in zip(ids, fs.arrays_of(ids)):
        a = ix.attrs(vid)
        feats = sorted(p for p in shapes if p.startswith(layout.FEATURES + "/"))
        feats += [layout.FRAMES] if layout.FRAMES in shapes else []
        arrays = ", ".join(f"{p.removeprefix(layout.FEATURES + '/')}{list(shapes[p][0])}" for p in feats)
        segs = shapes[layout.CHANGE_POINTS][0][0] if layout.CHANGE_POINTS in shapes else 0
        print(f"  {vid}: {a.get('n_frames')} frames @ {a.get('fps', 0):.2f} fps, T={a.get('n_steps')}, "
              f"{segs} segments, {arrays}, weights={a.get('weights')}")
    man = ix.manifest_rows()  # the parts read with the index: no second read
    if len(man):
        print("manifest:", {k: int(v) for k, v in man["status"].value_counts().items()})
    return 0


def check_cli(args) -> int:
    from stores import Store

    store = Store(args.store)
    problems = store.check()
    n = len(store.reader().video_ids())
    for p in problems:
        print(f"PROBLEM {p}", file=sys.stderr)
    print(f"check: {n} complete videos, {len(problems)} problems")
    return 1 if problems else 0


def export_cli(args) -> int:
    from stores import Store
    from stores.h5io import export_h5, keys_path

    keys = export_h5(Store(args.store), args.out, args.feature, args.l2_normalize)
    print(f"export-h5: {len(keys)} videos -> {args.out} (key -> video id: {keys_path(args.out)})")
    return 0


def import_cli(args) -> int:
    from stores import Store
    from stores.h5io import import_h5

    result = import_h5(args.h5, Store(args.store), args.dataset)
    print(f"import-h5: {len(result.ids)} videos -> {args.store}"
          + (f", {len(result.failed)} groups skipped (see above)" if result.failed else ""))
    return EXIT_PARTIAL if result.failed else 0


def parse_feature_shapes(text: str) -> dict[str, tuple[int, ...]]:
    """'googlenet=1024,st3d=512x4x4' -> {'googlenet': (1024,), 'st3d': (512, 4, 4)}"""
    out = {}
    for item in filter(None, (x.strip() for x in text.split(","))):
        name, _, shape = item.partition("=")
        try:
            dims = tuple(int(d) for d in shape.split("x"))
        except ValueError:
            dims = ()
        if not name or not dims or min(dims) < 1:
            raise UsageError(f"bad --features item {item!r} (want NAME=D or NAME=CxHxW, sizes >= 1)")
        out[name] = dims
    if not out:
        raise UsageError("--features names no feature (want NAME=D,...)")
    return out


def check_synth_args(args) -> dict[str, tuple[int, ...]]:
    """Every synth option checked before anything is written -> the feature shapes."""
    if args.videos < 1:
        raise UsageError(f"--videos must be >= 1, got {args.videos}")
    if not 1 <= args.min_steps <= args.max_steps:
        raise UsageError(f"need 1 <= --min-steps <= --max-steps, got {args.min_steps}, {args.max_steps}")
    return parse_feature_shapes(args.features)


def synth_cli(args) -> int:
    shapes = check_synth_args(args)
    from stores.synthetic import build_synthetic_store

    try:
        ids = build_synthetic_store(args.out, n_videos=args.videos, seed=args.seed,
                                    feature_shapes=shapes, min_steps=args.min_steps,
                                    max_steps=args.max_steps)
    except OSError as e:
        raise StoreError(f"cannot write the store ({e.strerror or e})", args.out) from None
    print(f"synth: {len(ids)} labelled synthetic videos -> {args.out}")
    return 0
