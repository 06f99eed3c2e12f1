"""An S3-compatible server for the cache tests: moto's server mode on a free port of 127.0.0.1. It can be stopped
and started again on the same port with its buckets intact (moto keeps them in this process)."""
from __future__ import annotations

import logging
import socket
import time
import uuid

import pytest

CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
               "AWS_MAX_ATTEMPTS": "1"}  # a stopped server fails a request at once, not after botocore's retries


class S3Server:
    def __init__(self):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self._server = None

    def start(self, timeout: float = 20.0) -> None:
        from moto.server import ThreadedMotoServer
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self._server.start()
        deadline = time.monotonic() + timeout
        while True:  # bounded wait until it accepts connections
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"moto's S3 server did not start on {self.endpoint} in {timeout} s")
                time.sleep(0.05)

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
            self._server = None

    def bucket(self) -> str:
        """A new empty bucket's name."""
        import boto3
        name = f"lossnets-{uuid.uuid4().hex[:12]}"
        boto3.client("s3", endpoint_url=self.endpoint).create_bucket(Bucket=name)
        return name

    def url(self, bucket: str, path: str = "cache") -> str:
        """``s3://bucket/path`` with the endpoint as a URL option."""
        return f"s3://{bucket}/{path}?endpoint_url={self.endpoint}"


@pytest.fixture(scope="module")
def s3():
    """A running S3Server, with test credentials in the environment (subprocesses inherit them); stopped after."""
    pytest.importorskip("moto.server")
    pytest.importorskip("s3fs")
    env = pytest.MonkeyPatch()
    for k, v in CREDENTIALS.items():
        env.setenv(k, v)
    server = S3Server()
    server.start()
    yield server
    server.stop()
    env.undo()
