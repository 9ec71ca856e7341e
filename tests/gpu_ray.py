"""A one-node local Ray that declares GPUs this machine does not have, in its own process.

    with declared_gpu_ray(num_cpus=4, num_gpus=2) as address:   # "127.0.0.1:PORT"
        subprocess.run(["vsum", "extract", ...], env={**os.environ, "RAY_ADDRESS": address})

Ray schedules ``num_gpus`` requests against the declared GPUs and sets each worker's
``CUDA_VISIBLE_DEVICES`` to the ids it assigned, exactly as on a GPU node; only CUDA itself is
absent, so models stay on the CPU. The test session's own Ray (tests/conftest.py) declares no
GPUs and is left alone. Closing the child's stdin shuts the node down.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys


def _serve(num_cpus: int, num_gpus: int) -> None:
    import ray._common.utils
    import ray._private.utils
    from ray.cluster_utils import Cluster

    # As tests/ray_cluster.py: keep this Ray private (not written to /tmp/ray/ray_current_cluster,
    # where every plain ray.init() on the machine would join it).
    ray._private.utils.write_ray_address = lambda *a, **k: None
    ray._common.utils.reset_ray_address = lambda *a, **k: None
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": num_cpus, "num_gpus": num_gpus, "object_store_memory": 200 * 1024**2,
        "include_dashboard": False})
    cluster.wait_for_nodes()
    print(json.dumps({"address": cluster.address}), flush=True)
    sys.stdin.read()  # until the parent closes the pipe
    cluster.shutdown()


@contextlib.contextmanager
def declared_gpu_ray(num_cpus: int = 4, num_gpus: int = 2, timeout_s: float = 240):
    from ray_cluster import served_ray

    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    with served_ray(__file__, [str(num_cpus), str(num_gpus)], env, timeout_s) as address:
        yield address

if __name__ == "__main__":
    _serve(int(sys.argv[1]), int(sys.argv[2]))
