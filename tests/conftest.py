"""Shared test fixtures: one Ray session and one Dask cluster for the whole test run,
the shared annotation data (skip cleanly when absent), and small generated videos."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("RAY_AUTH_MODE", "disabled")
os.environ.setdefault("RAY_DEDUP_LOGS", "0")

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """../shared/data (real TVSum/SumMe annotations and splits); skip when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} is absent")
    return SHARED_DATA


@pytest.fixture(scope="session")
def ray_session():
    """One local Ray for every test that needs it (~3 s to start)."""
    import ray

    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, object_store_memory=2 * 1024**3,
                 log_to_driver=False)
    yield ray
    # left running: pytest ends the process; shutting down here would slow other sessions


@pytest.fixture(scope="session")
def dask_client():
    """One local Dask cluster (2 single-threaded workers, no dashboard) for the session."""
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None,
                           processes=True)
    client = Client(cluster)
    yield client
    client.close()
    cluster.close()
