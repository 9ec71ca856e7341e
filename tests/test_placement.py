"""GPU placement on a Ray node that declares 2 GPUs (tests/gpu_ray.py; no CUDA here, so models
stay on the CPU and what is tested is the placement): extraction actors and training tasks
request their GPU share, their number follows the GPUs, and each sees its own
CUDA_VISIBLE_DEVICES; ``--device cpu`` requests none; ``--device cuda`` where a worker sees no
CUDA ends the job with one line and no store. Plus the pure placement rules."""
from __future__ import annotations

import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from extract_helpers import make_videos
from gpu_ray import declared_gpu_ray

from jobs.placement import plan_placement
from pipeline.errors import UsageError
from stores.manifest import read_manifest

VSUM = str(Path(sys.executable).parent / "vsum")
FRAMES = ["--features", "frames", "--frames", "16", "--no-kts", "--batch-size", "2"]

pytestmark = pytest.mark.timeout(600)


def test_placement_rules():
    two_gpus = {"CPU": 16.0, "GPU": 2.0}
    assert plan_placement("auto", two_gpus, gpus_per_worker=0.5).ray_options() == {"num_cpus": 1, "num_gpus": 0.5}
    assert plan_placement("auto", two_gpus, gpus_per_worker=0.5).n_workers == 4
    assert plan_placement("cuda", two_gpus, gpus_per_worker=1).n_workers == 2
    assert plan_placement("auto", {"CPU": 3.0, "GPU": 2.0}, gpus_per_worker=0.25).n_workers == 3  # CPUs bound
    cpu = plan_placement("cpu", two_gpus, threads=2)
    assert (cpu.device, cpu.gpus, cpu.n_workers) == ("cpu", 0.0, 8)
    assert plan_placement("auto", {"CPU": 2.0}).device == "cpu"
    assert plan_placement("cpu", {"CPU": 8.0}, at_most=3).n_workers == 3  # no more than the videos
    assert plan_placement("auto", two_gpus, gpus_per_worker=0.5, at_most=1).n_workers == 1
    with pytest.raises(UsageError, match="no GPUs"):
        plan_placement("cuda", {"CPU": 2.0})


@pytest.fixture(scope="module")
def gpu_ray():
    with declared_gpu_ray(num_cpus=4, num_gpus=2) as address:
        yield address


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    return make_videos(tmp_path_factory.mktemp("in"), ["a", "b", "c", "d"])


def _extract(address: str, videos: list[str], store: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_ADDRESS": address, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    return subprocess.run([VSUM, "extract", *videos, "--store", str(store), *FRAMES, *args], env=env,
                          capture_output=True, text=True, timeout=500)


def test_extraction_actors_own_their_gpu_share(gpu_ray, videos, tmp_path):
    res = _extract(gpu_ray, videos, tmp_path / "gpu.zarr", "--gpus-per-worker", "0.5")
    assert res.returncode == 0, res.stdout + res.stderr
    assert "4 worker(s) × (1 CPU, 0.5 GPU), device cuda" in res.stderr
    ids_line = res.stderr.split("GPU ids per worker: ", 1)[1].split()[0]
    assert sorted(ids_line.split(",")) == ["0", "0", "1", "1"]  # exactly 4 actors, 2 per GPU
    man = read_manifest(str(tmp_path / "gpu.zarr"))
    assert man["worker"].nunique() == 4  # four videos, each taken by its own actor
    assert Counter(man["gpu_ids"]) == {"0": 2, "1": 2}
    assert (man["cuda_visible_devices"] == man["gpu_ids"]).all()  # each sees only its own GPU
    assert set(man["device"]) == {"cpu"}  # declared GPUs, no CUDA: the models stayed on the CPU

    res = _extract(gpu_ray, videos, tmp_path / "cpu.zarr", "--device", "cpu")
    assert res.returncode == 0 and "4 worker(s) × (1 CPU), device cpu" in res.stderr, res.stderr
    man = read_manifest(str(tmp_path / "cpu.zarr"))
    assert set(man["gpu_ids"]) == {""} and set(man["cuda_visible_devices"]) == {""}  # no GPU requested


def test_no_more_actors_than_videos_to_extract(gpu_ray, videos, tmp_path):
    """Four CPUs fit four actors, but one video starts one: an idle actor holds memory."""
    res = _extract(gpu_ray, videos[:1], tmp_path / "one.zarr", "--device", "cpu")
    assert res.returncode == 0 and "1 worker(s) × (1 CPU), device cpu" in res.stderr, res.stderr


@pytest.mark.slow
def test_a_worker_that_cannot_use_cuda_ends_the_job_with_one_line(gpu_ray, videos, tmp_path):
    res = _extract(gpu_ray, videos, tmp_path / "cuda.zarr", "--device", "cuda")
    out = res.stdout + res.stderr
    assert res.returncode == 2 and "Traceback" not in out, out
    assert "vsum extract: --device cuda: this worker sees no CUDA device (Ray GPU ids ['" in out
    assert not (tmp_path / "cuda.zarr").exists()


@pytest.mark.slow
def test_training_tasks_own_their_gpu_share(gpu_ray, tmp_path):
    from stores.synthetic import build_synthetic_store

    store = str(tmp_path / "s.zarr")
    build_synthetic_store(store, n_videos=4, seed=3, min_steps=20, max_steps=30,
                          feature_shapes={"googlenet": (16,)})
    env = {**os.environ, "RAY_ADDRESS": gpu_ray, "RAY_AUTH_MODE": "disabled", "OMP_NUM_THREADS": "1"}
    cmd = [VSUM, "train", "dsn", "--store", store, "--splits", "kfold:2", "--seeds", "0,1", "--epochs", "1",
           "--out", str(tmp_path / "run"), "--no-eval", "--set", "hidden=8"]
    res = subprocess.run([*cmd, "--gpus-per-task", "0.5"], env=env, capture_output=True, text=True, timeout=500)
    assert res.returncode == 0, res.stdout + res.stderr
    line = next(s for s in res.stdout.splitlines() if s.startswith("train: 4 task(s) × 0.5 GPU"))
    ids = line.split("GPU ids ")[1].split(";")[0].split(",")
    visible = line.split("CUDA_VISIBLE_DEVICES ")[1].split(";")[0].split(",")
    assert ids == visible and set(ids) <= {"0", "1"} and "device cpu,cpu,cpu,cpu" in line
