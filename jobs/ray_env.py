"""Start or join Ray the same way for every job.

Embedded default: a local Ray started by the job. With ``RAY_ADDRESS`` set (as ``ray job
submit`` does) the job joins that cluster unchanged.
"""
from __future__ import annotations

import os


def init_ray(num_cpus: int | None = None, quiet: bool = True):
    import ray

    if ray.is_initialized():
        return ray
    if os.environ.get("RAY_ADDRESS"):
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=not quiet)
    else:
        # Ray 2.6x turns token auth on for local clusters; a job-private local Ray needs none.
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        # address="local": always a fresh job-private instance, even when some other Ray
        # cluster runs on this machine (joining it silently would be a surprise).
        ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, log_to_driver=not quiet,
                 object_store_memory=min(2 * 1024**3, _default_object_store()))
    return ray


def _default_object_store() -> int:
    import psutil

    return int(psutil.virtual_memory().total * 0.1)


def cluster_cpus() -> int:
    import ray

    return int(ray.cluster_resources().get("CPU", 1))
