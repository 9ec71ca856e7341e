"""CPU execution paths for an extractor's model: eager (today), ``torch.compile``, ONNX Runtime.

    run = compile_for(model, "onnx", batch_size=32, threads=2)   # once per worker
    feats = run(x)        # x float32 [B, ...] with B <= batch_size -> np.ndarray [B, ...]

``vsum bench backends`` measures these against eager fp32 (issue 17: adopt one only at >= 1.3x
with cosine >= 0.9999, on a quiet machine). The ONNX graph is exported for a fixed batch
(``batch_size``); a smaller last batch is zero-padded and the padding's rows dropped, so one
session serves every call. Nothing here chooses a backend: the caller (an extractor, once
``--backend`` is wired) does.
"""
from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

import numpy as np
import torch

BACKENDS = ("eager", "compile", "onnx")


def _eager(model: torch.nn.Module) -> Callable[[torch.Tensor], np.ndarray]:
    def run(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return model(x).float().numpy()

    return run


def _onnx(model: torch.nn.Module, example: torch.Tensor, threads: int,
          folder: Path) -> Callable[[torch.Tensor], np.ndarray]:
    import onnxruntime as ort

    path = folder / "model.onnx"
    torch.onnx.export(model, (example,), str(path), input_names=["x"], output_names=["y"],
                      dynamo=True, verbose=False)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads, opts.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    batch = example.shape[0]

    def run(x: torch.Tensor) -> np.ndarray:
        n = x.shape[0]
        if n > batch:
            raise ValueError(f"onnx backend: batch of {n} > the exported {batch}")
        arr = np.ascontiguousarray(x.detach().float().numpy())
        if n < batch:  # the graph has a fixed batch: pad, then drop the padding's rows
            arr = np.concatenate([arr, np.zeros((batch - n, *arr.shape[1:]), arr.dtype)])
        return session.run(["y"], {"x": arr})[0][:n]

    return run


def compile_for(model: torch.nn.Module, backend: str, example: torch.Tensor,
                threads: int = 1, folder: str | Path | None = None) -> Callable[[torch.Tensor], np.ndarray]:
    """A callable running ``model`` (eval mode) through ``backend``. ``example``: one full
    batch [batch_size, ...] (the ONNX graph's fixed shape; compile warms up on it).
    ``folder`` keeps the exported ONNX file (default: a temporary one)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r} (known: {', '.join(BACKENDS)})")
    model = model.eval()
    if backend == "eager":
        return _eager(model)
    if backend == "compile":
        run = _eager(torch.compile(model))
        run(example)  # the first call compiles
        return run
    folder = Path(folder or tempfile.mkdtemp(prefix="vsum-onnx-"))
    folder.mkdir(parents=True, exist_ok=True)
    return _onnx(model, example, threads, folder)
