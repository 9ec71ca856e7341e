"""Where Ray actors and tasks run, and which device their models use.

Driver side, ``plan_placement``: from the cluster's resources and the options, how many workers
and what each requests. On GPUs a worker asks for ``num_gpus`` (a share: 0.25 puts four on one
GPU), so Ray gives it its own GPU(s) and sets ``CUDA_VISIBLE_DEVICES`` to them; the number of
workers follows the cluster's GPUs. On CPUs a worker asks for no GPU.

Worker side, ``worker_device``: the device is chosen where the model runs, never in the driver.
A Ray worker that was given no GPU sees ``CUDA_VISIBLE_DEVICES`` unset, i.e. every GPU of its
node (Ray 2.60, STACK.md), so it stays on the CPU rather than pile onto GPU 0.
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass

from pipeline.errors import UsageError


@dataclass(frozen=True)
class Placement:
    device: str  # what workers are asked to use: "cuda" or "cpu" (or "auto" inside one process)
    n_workers: int
    cpus: float  # per worker
    gpus: float  # per worker; 0 = no GPU requested

    def ray_options(self) -> dict:
        return {"num_cpus": self.cpus, "num_gpus": self.gpus}

    def describe(self) -> str:
        gpu = f", {self.gpus:g} GPU" if self.gpus else ""
        return f"{self.n_workers} worker(s) × ({self.cpus:g} CPU{gpu}), device {self.device}"


def plan_placement(device: str, resources: dict, *, threads: int = 1, gpus_per_worker: float = 1.0,
                   workers: int | None = None, at_most: int | None = None) -> Placement:
    """``device``: auto | cpu | cuda; ``resources``: ``ray.cluster_resources()``; ``at_most``:
    never more workers than this (the items to process: an idle worker still holds its own
    interpreter, torch and models). ``--device cuda`` on a cluster without GPUs is a UsageError
    (before any work)."""
    n_gpus, n_cpus = float(resources.get("GPU", 0)), float(resources.get("CPU", 1))
    if device == "cuda" and n_gpus <= 0:
        raise UsageError("--device cuda: the Ray cluster has no GPUs (use --device cpu or auto)")
    if device == "cpu" or (device == "auto" and n_gpus <= 0):
        fit = max(1, int(n_cpus // threads))
        return Placement("cpu", _capped(workers or fit, at_most), threads, 0.0)
    fit = max(1, min(int(math.floor(n_gpus / gpus_per_worker + 1e-9)), int(n_cpus // threads)))
    return Placement("cuda", _capped(workers or fit, at_most), threads, gpus_per_worker)


def _capped(n: int, at_most: int | None) -> int:
    return n if at_most is None else max(1, min(n, at_most))


def worker_device(requested: str, ray_gpu_ids: list | None) -> tuple[str, dict]:
    """("cuda" | "cpu", facts) for a model about to be built in this process.

    ``ray_gpu_ids``: ``ray.get_gpu_ids()`` inside a Ray actor/task, None outside Ray. "cuda" means
    ``cuda:0``: the first GPU Ray assigned (``CUDA_VISIBLE_DEVICES`` lists only those). torch is
    imported only to ask whether CUDA works."""
    facts = {"gpu_ids": [str(g) for g in ray_gpu_ids or []],
             "cuda_visible_devices": os.environ.get("CUDA_VISIBLE_DEVICES")}
    where = (f"Ray GPU ids {facts['gpu_ids']}, CUDA_VISIBLE_DEVICES="
             f"{facts['cuda_visible_devices']!r}")
    if requested == "cpu":
        return "cpu", facts
    if ray_gpu_ids is not None and not ray_gpu_ids:  # Ray gave this worker no GPU: stay off them
        if requested == "cuda":
            raise UsageError(f"--device cuda: this worker was given no GPU ({where})")
        return "cpu", facts
    import torch

    if torch.cuda.is_available():
        return "cuda", facts
    if requested == "cuda":
        raise UsageError(f"--device cuda: this worker sees no CUDA device ({where})")
    return "cpu", facts


def local_device(requested: str) -> str:
    """The device for a model in this (non-Ray) process: auto = cuda when present."""
    return worker_device(requested or "auto", None)[0]
