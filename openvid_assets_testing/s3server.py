"""A real S3 API on loopback (moto in server mode) for the S3 code paths.

Tests and benchmarks talk to it over HTTP with boto3 exactly as they would to AWS; only the
endpoint differs (AWS_ENDPOINT_URL), so subprocesses reach it too. The fixtures below are the
test suite's (a pytest plugin: openvid_assets_tests/conftest.py); ``local_s3`` and ``s3_variables``
serve the benchmarks as well.
"""

import os
from collections.abc import Iterator
from contextlib import contextmanager

import boto3
import pytest
from moto.server import ThreadedMotoServer

from openvid_assets_testing.ports import free_port


@contextmanager
def local_s3() -> Iterator[str]:
    """moto's S3 server on a free loopback port while the block runs; yields its endpoint URL."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_variables(endpoint: str) -> dict[str, str]:
    """The variables that point boto3 (in this process, or a subprocess given them) at ``endpoint``."""
    return {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with local_s3() as endpoint:
        yield endpoint


@pytest.fixture
def s3_env(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Point boto3 (in this process, and subprocesses given this env) at the local server."""
    env = s3_variables(s3_endpoint)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return {**os.environ, **env}


@pytest.fixture
def s3_bucket(s3_env: dict[str, str], request: pytest.FixtureRequest) -> str:
    """A fresh, empty bucket per test."""
    name = "t-" + request.node.name.lower().replace("_", "-")[:40].strip("-") + f"-{os.getpid()}"
    name = "".join(c for c in name if c.isalnum() or c == "-")
    boto3.client("s3").create_bucket(Bucket=name)
    return name


def upload_tree(local_root, bucket: str, prefix: str) -> list[str]:
    """Upload every file under local_root (following symlinks) to s3://bucket/prefix/; returns the URIs."""
    client = boto3.client("s3")
    uris = []
    for path in sorted(p for p in local_root.rglob("*") if p.is_file()):
        key = f"{prefix}/{path.relative_to(local_root).as_posix()}"
        client.upload_file(str(path), bucket, key)
        uris.append(f"s3://{bucket}/{key}")
    return uris
