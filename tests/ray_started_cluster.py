"""A Ray cluster started the way an operator starts one: ``ray start --head`` (with the dashboard
that ``ray job submit`` talks to) and a second node by ``ray start --address``, on 127.0.0.1, in a
private temporary directory, every port chosen free, token authentication explicitly disabled.

    with started_cluster() as c:     # c.dashboard = "http://127.0.0.1:PORT", c.env for clients
        subprocess.run(["ray", "job", "submit", "--address", c.dashboard, ...], env=c.env)

Stopping: ``ray stop`` ends EVERY Ray process on the machine (it matches process names), which
would kill other users' clusters on a shared machine. This helper ends only its own: the
processes whose command line names its temporary directory (GCS, raylets, dashboard, agents)
and their descendants (the workers), by pid.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

RAY = [sys.executable, "-m", "ray.scripts.scripts"]  # this venv's Ray, so workers run this tree


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class StartedCluster:
    gcs: str  # "127.0.0.1:PORT": what `ray start --address` and RAY_ADDRESS take
    dashboard: str  # "http://127.0.0.1:PORT": what `ray job submit --address` takes
    temp_dir: str
    env: dict  # environment for clients (ray job submit / status)


def _node_ports() -> list[str]:
    args = []
    for flag in ("--node-manager-port", "--object-manager-port", "--dashboard-agent-listen-port",
                 "--dashboard-agent-grpc-port", "--metrics-export-port", "--runtime-env-agent-port"):
        args += [flag, str(free_port())]
    return args


def _start(args: list[str], env: dict, timeout: float) -> None:
    r = subprocess.run([*RAY, "start", *args], env=env, capture_output=True, text=True,
                       timeout=timeout, check=False)
    out = r.stderr + r.stdout
    # `ray start` gives a raylet a fixed 30 s to register; on a loaded machine it registers
    # later and works: _wait_for_nodes then decides (the other failures are final)
    if r.returncode != 0 and "timed out during startup" not in out:
        raise RuntimeError(f"ray start failed ({r.returncode}): {out[-2000:]}")


@contextlib.contextmanager
def started_cluster(cpus_per_node: int = 1, timeout_s: float = 900):
    # Ray's unix sockets live under the temp dir, whose path must stay short (< ~100 chars)
    temp_dir = tempfile.mkdtemp(prefix="vsumray", dir="/tmp")
    # a loaded machine starts the dashboard slowly (Ray gives it 60 s by default)
    # (and its agents: the raylet gives them RAY_agent_register_timeout_ms to report their ports)
    env = {"RAY_DASHBOARD_STARTUP_TIMEOUT_S": "600", "RAY_agent_register_timeout_ms": "600000",
           **os.environ, "RAY_AUTH_MODE": "disabled",
           "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    env.pop("RAY_ADDRESS", None)
    gcs_port, dash_port = free_port(), free_port()
    common = ["--num-cpus", str(cpus_per_node), "--object-store-memory", str(200 * 1024**2),
              "--disable-usage-stats", "--node-ip-address", "127.0.0.1"]
    try:
        _start(["--head", "--port", str(gcs_port), "--temp-dir", temp_dir,
                "--include-dashboard", "true", "--dashboard-host", "127.0.0.1",
                "--dashboard-port", str(dash_port), "--ray-client-server-port", str(free_port()),
                *common, *_node_ports()], env, timeout_s)
        gcs = f"127.0.0.1:{gcs_port}"
        _wait_for_nodes(gcs, 1, env, timeout_s)  # a node joins only once the head is registered
        _start(["--address", gcs, *common, *_node_ports()], env, timeout_s)
        _wait_for_nodes(gcs, 2, env, timeout_s)
        yield StartedCluster(gcs, f"http://127.0.0.1:{dash_port}", temp_dir, env)
    finally:
        stop_own_ray(temp_dir)
        shutil.rmtree(temp_dir, ignore_errors=True)


def _wait_for_nodes(gcs: str, n: int, env: dict, timeout_s: float) -> None:
    code = ("import ray, sys; ray.init(address=sys.argv[1], log_to_driver=False); "
            "print(sum(1 for x in ray.nodes() if x['Alive']))")
    deadline = time.monotonic() + timeout_s
    while True:
        r = subprocess.run([sys.executable, "-c", code, gcs], env=env, capture_output=True,
                           text=True, timeout=timeout_s, check=False)
        if r.returncode == 0 and r.stdout.strip().splitlines()[-1:] == [str(n)]:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"{n} Ray nodes not up at {gcs}: {r.stdout[-500:]} {r.stderr[-1500:]}")
        time.sleep(2)


def stop_own_ray(temp_dir: str, grace_s: float = 15) -> list[int]:
    """End the Ray processes of this temp dir and their descendants (by pid); -> the pids."""
    import psutil

    own = []
    for p in psutil.process_iter(["cmdline"]):
        try:
            if any(temp_dir in a for a in (p.info["cmdline"] or [])):
                own.append(p)
        except psutil.Error:
            continue
    procs = {p.pid: p for p in own}
    for p in own:
        try:
            procs.update({c.pid: c for c in p.children(recursive=True)})
        except psutil.Error:
            continue
    for p in procs.values():
        with contextlib.suppress(psutil.Error):
            p.terminate()
    _, alive = psutil.wait_procs(list(procs.values()), timeout=grace_s)
    for p in alive:
        with contextlib.suppress(psutil.Error):
            p.kill()
    return sorted(procs)
