"""``vsum import tvsum|summe|json``: annotations into a store (stores/importers/).

    vsum import tvsum --anno ydata-tvsum50.mat|ydata-tvsum50-anno.tsv --store S [--videos DIR]
    vsum import summe --gt GT/ --store S [--videos DIR]
    vsum import json FILE --store S [--videos DIR]

With ``--videos DIR`` (or when the store already holds complete groups for those ids) labels
join the extracted videos, aligned by time; otherwise annotation-only groups are created.
Exit code 1 when any video failed (each failure is one line on stderr).
"""
from __future__ import annotations

import sys


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


def run(args) -> int:
    from stores.importers.common import import_annotations

    try:
        if args.dataset == "tvsum":
            from stores.importers.tvsum import read_tvsum

            videos, name = read_tvsum(args.anno, fps=args.fps), "tvsum"
        elif args.dataset == "summe":
            from stores.importers.summe import read_summe

            videos, name = read_summe(args.gt), "summe"
        else:
            from stores.importers.jsonfmt import read_json

            videos = read_json(args.file)
            name = videos[0].dataset if videos else "json"
    except (OSError, ValueError, TypeError) as exc:
        print(str(exc).splitlines()[0], file=sys.stderr)
        return 2
    result = import_annotations(videos, args.store, videos_dir=args.videos)
    print(result.line(name, args.store))
    return 1 if result.failed else 0
