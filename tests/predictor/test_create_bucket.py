"""scripts/create_bucket.py against a real S3-compatible HTTP server (moto's)."""

from __future__ import annotations

from collections.abc import Iterator

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from tests.predictor.deploy_files import load_script

create_bucket = load_script("create_bucket")


@pytest.fixture
def endpoint(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    # moto keeps its buckets per process, not per server: start and leave it empty.
    requests.post(f"{url}/moto-api/reset", timeout=10).raise_for_status()
    try:
        yield url
    finally:
        requests.post(f"{url}/moto-api/reset", timeout=10)
        server.stop()


@pytest.mark.parametrize("region", ["us-east-1", "eu-west-1"])
def test_bucket_is_created_once_then_left_alone(endpoint: str, region: str) -> None:
    assert create_bucket.ensure_bucket("artifacts", endpoint, region) is True
    assert create_bucket.ensure_bucket("artifacts", endpoint, region) is False
    client = boto3.client("s3", endpoint_url=endpoint, region_name=region)
    assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["artifacts"]
    location = client.get_bucket_location(Bucket="artifacts")["LocationConstraint"]
    assert (location or "us-east-1") == region


def test_main_needs_the_bucket_name(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("ARTIFACTS_BUCKET", raising=False)
    assert create_bucket.main() == 1
    assert "ARTIFACTS_BUCKET is not set" in capsys.readouterr().err
