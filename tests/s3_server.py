"""A real S3-compatible server on loopback for tests: moto's server mode (HTTP, in a thread).

    with S3Server() as s3:          # or the `s3_server` fixture below
        s3.make_bucket("vsum")
        url, opts = "s3://vsum/store.zarr", s3.storage_options

Every client (this process, Ray workers, `vsum` subprocesses) talks to it over HTTP on
127.0.0.1 with ``storage_options`` (endpoint, dummy keys) or ``VSUM_STORAGE_OPTIONS`` = ``s3.env``.
"""
from __future__ import annotations

import json
import logging

import pytest


class S3Server:
    def __init__(self):
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.endpoint = ""

    def start(self) -> S3Server:
        self._server.start()
        host, port = self._server.get_host_and_port()
        self.endpoint = f"http://{host}:{port}"
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def storage_options(self) -> dict:
        """fsspec/s3fs options; ``use_listings_cache`` off so every process sees fresh listings."""
        return {"endpoint_url": self.endpoint, "key": "testing", "secret": "testing",
                "client_kwargs": {"region_name": "us-east-1"}, "use_listings_cache": False}

    @property
    def env(self) -> dict:
        """Environment for subprocesses: the same options as JSON, plus dummy AWS settings."""
        return {"VSUM_STORAGE_OPTIONS": json.dumps(self.storage_options),
                "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}

    def make_bucket(self, name: str) -> str:
        import boto3

        boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id="testing",
                     aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=name)
        return name

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options)


@pytest.fixture(scope="module")
def s3_server():
    """One moto S3 server per test module (starts in ~1-2 s)."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    with S3Server() as s3:
        yield s3
