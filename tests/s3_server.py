"""A real S3-compatible server on loopback for tests (moto's server mode, HTTP, in a thread),
and the same server behind a proxy that adds a fixed delay to every request.

    def test_x(s3_server):                 # one server per test module
        s3_server.make_bucket("vsum")
        url, opts = "s3://vsum/store.zarr", s3_server.storage_options

    def test_y(s3_server, slow_s3):        # slow_s3: a LatencyProxy in front of it (20 ms)
        opts = slow_s3.storage_options(); slow_s3.requests   # requests so far

Every client (this process, Ray workers, `vsum` subprocesses) talks to it over HTTP on
127.0.0.1 with ``storage_options`` (endpoint, dummy keys) or ``VSUM_STORAGE_OPTIONS`` = ``s3.env``.
The classes live in ``jobs/bench/s3_loopback.py``: ``vsum bench scale --latency-ms`` uses them too.
"""
from __future__ import annotations

import pytest

from jobs.bench.s3_loopback import LatencyProxy, S3Server, env_for  # noqa: F401  (re-exported)

LATENCY_MS = 20.0


@pytest.fixture(scope="module")
def s3_server():
    """One moto S3 server per test module (starts in ~1-2 s)."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    with S3Server() as s3:
        yield s3


@pytest.fixture(scope="module")
def slow_s3(s3_server):
    """The module's server behind a proxy that holds every request ``LATENCY_MS``."""
    with LatencyProxy(s3_server.port, LATENCY_MS) as proxy:
        yield proxy
