"""A two-node local Ray cluster in its own process, for tests (``ray.cluster_utils.Cluster``).

    with two_node_cluster() as address:      # "127.0.0.1:PORT"
        subprocess.run(["vsum", "extract", ...], env={**os.environ, "RAY_ADDRESS": address})

A head and a second node, one CPU each, so a job with two 1-CPU actors uses both nodes. It runs
in a child process (it cannot share a test session's ``ray.init``); closing its stdin shuts it
down. Run as a script it prints ``{"address": ...}`` once the nodes are up.
"""
from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys


def _serve() -> None:
    import ray._common.utils
    import ray._private.utils
    from ray.cluster_utils import Cluster

    # Cluster() records its address in /tmp/ray/ray_current_cluster, and every plain ray.init()
    # on this machine then joins it instead of starting its own Ray (other test sessions,
    # other users). Keep this cluster private: reachable only by the address we print.
    ray._private.utils.write_ray_address = lambda *a, **k: None
    ray._common.utils.reset_ray_address = lambda *a, **k: None
    mem = 200 * 1024**2
    cluster = Cluster(initialize_head=True,
                      head_node_args={"num_cpus": 1, "object_store_memory": mem, "include_dashboard": False})
    cluster.add_node(num_cpus=1, object_store_memory=mem)
    cluster.wait_for_nodes()
    print(json.dumps({"address": cluster.address}), flush=True)
    sys.stdin.read()  # until the parent closes the pipe
    cluster.shutdown()


@contextlib.contextmanager
def served_ray(script: str, args: list[str], env: dict, timeout_s: float):
    """Run ``script`` (which starts Ray, prints {"address": …} and waits for its stdin to close)
    in a subprocess; yield the address; stop it on exit."""
    proc = subprocess.Popen([sys.executable, script, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            env=env, text=True)
    try:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the Ray process exited with {proc.wait(timeout_s)}")
        yield json.loads(line)["address"]
    finally:
        proc.stdin.close()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()


@contextlib.contextmanager
def two_node_cluster(env: dict | None = None, timeout_s: float = 180):
    env = {**os.environ, "RAY_AUTH_MODE": "disabled", **(env or {})}
    env.pop("RAY_ADDRESS", None)
    with served_ray(__file__, [], env, timeout_s) as address:
        yield address

if __name__ == "__main__":
    _serve()
