"""An S3-compatible server on loopback, optionally behind a proxy that adds latency per request.

    with S3Server() as s3, LatencyProxy(s3.port, delay_ms=20) as slow:
        s3.make_bucket("vsum")
        opts = slow.storage_options()                # every request now waits 20 ms
        slow.requests                                # requests that went through so far

- ``S3Server``: moto's server mode (real HTTP, real S3 API) in a thread of this process.
- ``LatencyProxy``: a TCP proxy (asyncio, in a thread) that holds each request for
  ``delay_ms`` before passing it on: the first bytes a client sends after the server last
  answered on that connection are delayed, the rest of the request and every response byte
  go through at once. With HTTP keep-alive that is one delay per request, as a far-away object
  store gives (a ``100-continue`` exchange costs two, as it does there).
- ``python -m jobs.bench.s3_loopback [--preload DIR s3://bucket/prefix] [--delay-ms 20]`` runs
  the server (and a proxy) in its own process and prints ``{"direct": PORT, "slow": PORT}`` on
  one line; the benchmark uses it so the server's work does not share the measuring process's
  interpreter lock.

Used by the tests (``tests/s3_server.py``) and by ``vsum bench scale --latency-ms``.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
import threading

CREDENTIALS = {"key": "testing", "secret": "testing"}


def storage_options_for(port: int) -> dict:
    """fsspec/s3fs options for a loopback server; ``use_listings_cache`` off so every process
    sees fresh listings."""
    return {"endpoint_url": f"http://127.0.0.1:{port}", **CREDENTIALS,
            "client_kwargs": {"region_name": "us-east-1"}, "use_listings_cache": False}


def make_bucket(port: int, name: str) -> str:
    import boto3

    boto3.client("s3", endpoint_url=f"http://127.0.0.1:{port}", aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=name)
    return name


class S3Server:
    """moto's S3 server on 127.0.0.1 (a free port), in a thread."""

    def __init__(self):
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one log line per request otherwise
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        self.port = 0

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> S3Server:
        self._server.start()
        self.port = int(self._server.get_host_and_port()[1])
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def storage_options(self) -> dict:
        return storage_options_for(self.port)

    @property
    def env(self) -> dict:
        """Environment for subprocesses: the same options as JSON, plus dummy AWS settings."""
        return env_for(self.storage_options)

    def make_bucket(self, name: str) -> str:
        return make_bucket(self.port, name)

    def fs(self):
        import s3fs

        return s3fs.S3FileSystem(**self.storage_options)

    def preload(self, local_dir: str, url: str) -> int:
        """Put every file under ``local_dir`` at ``url`` (``s3://bucket/prefix``), straight into
        the server's in-memory backend: setting up a 5,000-video store object by object over
        HTTP takes minutes, and only reading it is measured. -> files put."""
        return preload(local_dir, url)


def preload(local_dir: str, url: str) -> int:
    """See ``S3Server.preload`` (this process's moto backend; the bucket is created if needed)."""
    from pathlib import Path

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends

    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    backend = s3_backends[DEFAULT_ACCOUNT_ID]["aws"]
    if bucket not in backend.buckets:
        backend.create_bucket(bucket, "us-east-1")
    n = 0
    for path in sorted(Path(local_dir).rglob("*")):
        if path.is_file() and not path.name.endswith(".tmp"):
            key = "/".join(filter(None, [prefix.strip("/"), path.relative_to(local_dir).as_posix()]))
            backend.put_object(bucket, key, path.read_bytes())
            n += 1
    return n


def env_for(storage_options: dict) -> dict:
    return {"VSUM_STORAGE_OPTIONS": json.dumps(storage_options),
            "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


class LatencyProxy:
    """127.0.0.1:<port> -> 127.0.0.1:<upstream_port>, each request held ``delay_ms``.

    ``requests`` counts the delayed requests (what a client paid in round trips)."""

    def __init__(self, upstream_port: int, delay_ms: float = 20.0):
        self.upstream_port = int(upstream_port)
        self.delay_s = float(delay_ms) / 1000.0
        self.port = 0
        self.requests = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="latency-proxy", daemon=True)
        self._server = None
        self._tasks: set = set()

    def storage_options(self) -> dict:
        return storage_options_for(self.port)

    def start(self) -> LatencyProxy:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        async def shutdown():
            self._server.close()
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5)
        self._loop.close()

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._handle, "127.0.0.1", 0, backlog=1024))
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _handle(self, client_r, client_w) -> None:
        self._tasks.add(asyncio.current_task())  # a strong reference while the connection lives
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.close()
            return
        turn = {"new_request": True}  # the next client bytes start a new request

        async def requests_in():
            while data := await client_r.read(1 << 16):
                if turn["new_request"]:
                    turn["new_request"] = False
                    self.requests += 1
                    await asyncio.sleep(self.delay_s)
                up_w.write(data)
                await up_w.drain()
            up_w.close()  # the client is done: so is the server side

        async def responses_out():
            while data := await up_r.read(1 << 16):
                turn["new_request"] = True
                client_w.write(data)
                await client_w.drain()
            client_w.close()

        try:
            await asyncio.gather(requests_in(), responses_out())
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            for w in (up_w, client_w):
                w.close()
            self._tasks.discard(asyncio.current_task())


def main(argv: list[str] | None = None) -> int:
    """Serve until stdin closes: moto plus a latency proxy; prints their ports as JSON."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--delay-ms", type=float, default=None, help="also serve a proxy with this delay")
    p.add_argument("--preload", nargs=2, metavar=("DIR", "URL"), action="append", default=[],
                   help="serve the files under DIR at s3://bucket/prefix (repeatable)")
    args = p.parse_args(argv)
    with S3Server() as s3:
        n = sum(preload(d, url) for d, url in args.preload)
        slow = LatencyProxy(s3.port, args.delay_ms).start() if args.delay_ms is not None else None
        print(json.dumps({"direct": s3.port, "slow": slow and slow.port, "preloaded": n}), flush=True)
        sys.stdin.read()  # the parent closes our stdin (or dies) to stop us
        if slow is not None:
            slow.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
