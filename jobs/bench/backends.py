"""``vsum bench backends``: CPU execution paths for the two big extractors, measured in one run.

GoogLeNet pool5 (uint8 frames -> [B, 1024]) and r3d_18's backbone (clips [B, 3, 16, 112, 112]
-> [B, 512, 2, 7, 7]), seeded random weights (throughput and numerics do not depend on the
values), the same normalised input batch for every path:

  eager fp32          contiguous NCHW tensors: the reference the features are compared with
  eager channels_last what the extractors run today
  torch.compile       inductor on the channels_last model (compile time reported apart)
  onnxruntime         the model exported to ONNX, ONNX Runtime's CPU execution provider

Per path: inputs per second (best of ``--repeat`` timed calls after one warm-up), speed-up over
eager channels_last, and the features against eager fp32 (max abs diff, lowest cosine over the
batch's rows). A path is adopted only at >= 1.3x with cosine >= 0.9999 (issue 17); the table
says which qualify. A path that cannot run here (no compiler, an export error) gets one line.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

ADOPT_SPEEDUP, ADOPT_COSINE = 1.3, 0.9999


def register(sub) -> None:
    p = sub.add_parser("backends", help="GoogLeNet / r3d_18 on CPU: eager vs torch.compile vs ONNX Runtime")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--frames", type=int, default=32, help="GoogLeNet batch (images)")
    p.add_argument("--clips", type=int, default=4, help="r3d_18 batch (16-frame clips)")
    p.add_argument("--repeat", type=int, default=2, help="timed calls per path (best kept)")
    p.add_argument("--models", default="googlenet,r3d_18")
    p.add_argument("--paths", default="eager,channels_last,compile,onnx")
    p.add_argument("--out", default=None, help="write the figures as JSON here")
    p.set_defaults(func=run_cli)


def googlenet_case(n: int):
    """(model, input [n, 3, 224, 224] fp32 normalised) with the extractor's preprocessing."""
    import torch

    from pipeline.features.googlenet import MEAN, STD, load_googlenet

    model, _ = load_googlenet("random")
    frames = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (n, 224, 224, 3), np.uint8))
    x = frames.permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    return model, x.contiguous()


def r3d_case(n: int):
    """(r3d_18 up to layer4, as the st3d extractor runs it; input [n, 3, 16, 112, 112])."""
    import torch
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    net = r3d_18(weights=None)
    backbone = torch.nn.Sequential(net.stem, net.layer1, net.layer2, net.layer3, net.layer4).eval()
    return backbone, torch.randn(n, 3, 16, 112, 112)


def _channels_last(t):
    import torch

    fmt = torch.channels_last_3d if t.dim() == 5 else torch.channels_last
    return t.contiguous(memory_format=fmt)


def _best_time(fn, x, repeat: int) -> tuple[float, np.ndarray]:
    from jobs.bench.common import timed

    fn(x)  # warm-up: allocator, kernel selection
    runs = [timed(fn, x) for _ in range(repeat)]
    best = min(runs, key=lambda r: r[0])
    out = best[1]
    return best[0], np.asarray(out.detach().float().numpy() if hasattr(out, "detach") else out)


def measure_paths(model, x, paths: list[str], threads: int, repeat: int) -> list[dict]:
    """One row per path: {path, per_s, seconds, max_abs_diff, cosine_min, [compile_s], [error]}."""
    import copy

    import torch

    from jobs.bench.common import timed
    from pipeline.features.backends import compile_for

    torch.set_num_threads(threads)
    rows = []
    with torch.inference_mode():
        ref_s, ref = _best_time(model, x, repeat)  # eager fp32, contiguous
    cl_model = copy.deepcopy(model).to(memory_format=torch.channels_last
                                       if x.dim() == 4 else torch.channels_last_3d)
    x_cl = _channels_last(x)
    runners = {"eager": (lambda: model, x), "channels_last": (lambda: cl_model, x_cl),
               "compile": (lambda: torch.compile(cl_model), x_cl)}
    with tempfile.TemporaryDirectory() as tmp:
        runners["onnx"] = (lambda: compile_for(model, "onnx", x, threads, Path(tmp)), x)
        for name in paths:
            row = {"path": name}
            try:
                build_s, fn = timed(runners[name][0])
                inp = runners[name][1]
                if name == "compile":  # the first call compiles: timed apart
                    with torch.inference_mode():
                        row["compile_s"], _ = timed(fn, inp)
                if name == "onnx":
                    row["export_s"] = build_s
                with torch.inference_mode():
                    secs, out = (ref_s, ref) if name == "eager" else _best_time(fn, inp, repeat)
            except Exception as e:  # noqa: BLE001 - a path that cannot run here is a row, not a crash
                row["error"] = f"{type(e).__name__}: {' '.join(str(e).split())[:160]}"
                rows.append(row)
                continue
            a, b = ref.reshape(len(ref), -1).astype(np.float64), out.reshape(len(out), -1).astype(np.float64)
            cos = (a * b).sum(1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1) + 1e-30)
            row.update(seconds=secs, per_s=len(x) / secs, max_abs_diff=float(np.abs(a - b).max()),
                       cosine_min=float(cos.min()))
            rows.append(row)
    base = next((r for r in rows if r["path"] == "channels_last" and "per_s" in r), None)
    for r in rows:
        if base and "per_s" in r:
            r["speedup_vs_channels_last"] = r["per_s"] / base["per_s"]
            r["qualifies"] = (r["path"] not in ("eager", "channels_last")
                              and r["speedup_vs_channels_last"] >= ADOPT_SPEEDUP
                              and r["cosine_min"] >= ADOPT_COSINE)
    return rows


def run_cli(args) -> int:
    from jobs.bench.common import machine_load, write_json
    from pipeline.errors import UsageError

    cases = {"googlenet": (googlenet_case, args.frames, "img"), "r3d_18": (r3d_case, args.clips, "clips")}
    models = [m for m in args.models.split(",") if m]
    paths = [p for p in args.paths.split(",") if p]
    bad = [m for m in models if m not in cases] + [p for p in paths if p not in
                                                    ("eager", "channels_last", "compile", "onnx")]
    if bad:
        raise UsageError(f"unknown model or path: {', '.join(bad)}")
    result: dict = {"threads": args.threads, "models": {}}
    for m in models:
        build, n, unit = cases[m]
        print(f"{m}: {n} inputs per call…", flush=True)
        model, x = build(n)
        result["models"][m] = {"batch": n, "unit": unit,
                               "rows": measure_paths(model, x, paths, args.threads, args.repeat)}
    result["machine"] = machine_load()
    _print(result)
    write_json(args.out, result)
    return 0


def _print(r: dict) -> None:
    m = r["machine"]
    print(f"\nCPU execution paths, {r['threads']} threads; load (1 min) {m['load_1min']} on {m['cpus']} cores")
    print("| model | path | per s | × channels_last | max abs diff | cosine min | note |")
    print("|---|---|---|---|---|---|---|")
    for name, mr in r["models"].items():
        for row in mr["rows"]:
            if "error" in row:
                print(f"| {name} | {row['path']} | – | – | – | – | {row['error']} |")
                continue
            note = []
            if "compile_s" in row:
                note.append(f"compile {row['compile_s']:.0f} s")
            if "export_s" in row:
                note.append(f"export {row['export_s']:.0f} s")
            if row.get("qualifies"):
                note.append("QUALIFIES (>= 1.3x, cosine >= 0.9999)")
            print(f"| {name} | {row['path']} | {row['per_s']:.2f} {mr['unit']} | "
                  f"{row.get('speedup_vs_channels_last', float('nan')):.2f} | {row['max_abs_diff']:.2e} | "
                  f"{row['cosine_min']:.6f} | {'; '.join(note)} |")
