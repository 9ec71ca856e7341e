"""``vsum import tvsum|summe|json``: annotations into a store (stores/importers/).

    vsum import tvsum --anno ydata-tvsum50.mat|ydata-tvsum50-anno.tsv --store S [--videos DIR]
    vsum import summe --gt GT/ --store S [--videos DIR]
    vsum import json FILE --store S [--videos DIR]

With ``--videos DIR`` (or when the store already holds complete groups for those ids) labels
join the extracted videos, aligned by time; otherwise annotation-only groups are created.
Exit code 1 when any video failed (each failure is one line on stderr).
"""
from __future__ import annotations

from pipeline.errors import EXIT_PARTIAL, InputError, UsageError


def _common(p) -> None:
    p.add_argument("--store", required=True, help="Zarr store path or URL")
    p.add_argument("--videos", default=None,
                   help="folder of the videos the store was extracted from (labels join them)")


def register(sub) -> None:
    p = sub.add_parser("import", help="import annotations (TVSum, SumMe, generic JSON) into a store")
    kinds = p.add_subparsers(dest="dataset", required=True, parser_class=type(p))
    t = kinds.add_parser("tvsum", help="TVSum ydata-tvsum50.mat or ydata-tvsum50-anno.tsv")
    t.add_argument("--anno", required=True, help="ydata-tvsum50.mat (v7.3) or the .tsv")
    t.add_argument("--fps", type=float, default=29.97, help="frame rate for the .tsv form")
    _common(t)
    s = kinds.add_parser("summe", help="SumMe GT/ folder of <name>.mat files")
    s.add_argument("--gt", required=True, help="SumMe GT folder")
    _common(s)
    j = kinds.add_parser("json", help="generic JSON (per-frame scores or intervals per annotator)")
    j.add_argument("file", help="annotation JSON (see docs/evaluation.md)")
    _common(j)
    p.set_defaults(func=run)


def annotation_path(args) -> str:
    return str(getattr(args, {"tvsum": "anno", "summe": "gt", "json": "file"}[args.dataset]))


def read_annotations(args) -> tuple[list, str]:
    """(AnnotatedVideo list, dataset name) from the command's annotation file or folder; an
    unreadable one is one InputError line naming it."""
    path = annotation_path(args)
    try:
        if args.dataset == "tvsum":
            from stores.importers.tvsum import read_tvsum

            return read_tvsum(path, fps=args.fps), "tvsum"
        if args.dataset == "summe":
            from stores.importers.summe import read_summe

            return read_summe(path), "summe"
        from stores.importers.jsonfmt import read_json

        videos = read_json(path)
        return videos, (videos[0].dataset if videos else "json")
    except (OSError, ValueError, TypeError, KeyError, IndexError) as exc:
        # parse errors of any reader (a malformed .mat struct raises KeyError/IndexError)
        msg = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InputError(msg) if path in msg else InputError(msg, path) from None


def run(args) -> int:
    if getattr(args, "fps", 1.0) <= 0:
        raise UsageError(f"--fps must be > 0, got {args.fps}")
    videos, name = read_annotations(args)
    if not videos:
        raise InputError("no readable videos in the annotations", annotation_path(args))
    from stores import Store
    from stores.importers.common import import_annotations  # zarr, pandas: once input is good
    result = import_annotations(videos, Store(args.store), videos_dir=args.videos)
    print(result.line(name, args.store))
    return EXIT_PARTIAL if result.failed else 0
