"""Artifacts on S3: the web forecasts what a worker trained because both read one bucket.

A real S3-compatible HTTP server (moto's ``ThreadedMotoServer``) runs on
127.0.0.1 for this module; boto3 reaches it over HTTP with dummy credentials
from the environment, as it would reach AWS. Nothing leaves the machine.
"""

from __future__ import annotations

import logging
import os
import subprocess
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import storages
from moto.server import ThreadedMotoServer

from cryptooracle.artifact_storage import artifact_storages
from predictor.ml.artifacts import ArtifactError
from predictor.models import Market, SessionStatus, TrainingSession
from predictor.services.artifacts import artifact_names, forecasters, session_bundle
from predictor.services.forecasting import session_forecast
from predictor.services.runs import run_retry
from tests.predictor.settings_probe import PRODUCTION as SERVED_PRODUCTION
from tests.predictor.settings_probe import run_python

ROOT = Path(__file__).resolve().parents[2]
REGION = "us-east-1"
# A fitted baseline: the same three files as a network in a fraction of the time.
RIDGE: dict[str, Any] = {"arch": "ridge", "target": "return", "features": ("close",)}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # one line per request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


@pytest.fixture
def bucket(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    """A fresh, empty bucket on the local server; credentials only in the environment."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    s3 = boto3.resource("s3", endpoint_url=s3_endpoint, region_name=REGION)
    made = s3.create_bucket(Bucket=f"artifacts-{uuid.uuid4().hex[:12]}")
    made.endpoint_url = s3_endpoint
    return made


def keys(bucket: Any) -> set[str]:
    return {obj.key for obj in bucket.objects.all()}


def session_keys(session: TrainingSession) -> set[str]:
    model, scaler, manifest = artifact_names(session)
    return {
        f"artifacts/model_weights/{model}",
        f"artifacts/model_weights/{manifest}",
        f"artifacts/scalers/{scaler}",
    }


def use_artifacts(settings: Any, folder: Path, bucket: Any = None, **s3: Any) -> None:
    """This process's artifact settings, as settings.py builds them: one machine's folders,
    and the bucket when given. A fresh storage object is made on next use."""
    settings.MODEL_WEIGHTS_DIR = folder / "model_weights"
    settings.SCALERS_DIR = folder / "scalers"
    entries = artifact_storages(
        weights_dir=folder / "model_weights",
        scalers_dir=folder / "scalers",
        bucket=bucket.name if bucket is not None else None,
        region=REGION,
        endpoint_url=bucket.endpoint_url if bucket is not None else None,
        **s3,
    )
    settings.STORAGES = {**settings.STORAGES, **entries}
    forecasters.clear()


def files_in(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.is_file()]


pytestmark = pytest.mark.django_db


def test_the_web_forecasts_a_model_the_worker_trained_because_both_read_the_bucket(
    trained_session: Callable[..., TrainingSession], settings: Any, tmp_path: Path, bucket: Any
) -> None:
    worker, web = tmp_path / "worker", tmp_path / "web"
    use_artifacts(settings, worker, bucket)
    session = trained_session()
    assert keys(bucket) == session_keys(session)  # and no temporary key left behind
    assert files_in(worker) == []

    use_artifacts(settings, web, bucket)
    result = session_forecast(session)
    assert result.stored > 0
    forecaster = forecasters.get(session)  # what POST /api/predict uses
    assert forecaster is not None
    assert files_in(web) == []


def test_with_local_folders_the_web_cannot_read_what_the_worker_trained(
    trained_session: Callable[..., TrainingSession], settings: Any, tmp_path: Path
) -> None:
    worker, web = tmp_path / "worker", tmp_path / "web"
    use_artifacts(settings, worker)
    session = trained_session()
    assert len(files_in(worker)) == 3

    use_artifacts(settings, web)
    with pytest.raises(ArtifactError, match=r"artifact file missing \(.*manifest\.json\)"):
        session_forecast(session)


def test_a_missing_manifest_on_the_bucket_is_refused_naming_it(
    trained_session: Callable[..., TrainingSession], settings: Any, tmp_path: Path, bucket: Any
) -> None:
    use_artifacts(settings, tmp_path, bucket)
    session = trained_session(**RIDGE)
    _, _, manifest = artifact_names(session)
    storages["model_weights"].delete(manifest)
    with pytest.raises(ArtifactError, match=rf"artifact file missing \(.*{manifest}\)"):
        session_bundle(session)


def test_a_damaged_manifest_on_the_bucket_is_refused(
    trained_session: Callable[..., TrainingSession], settings: Any, tmp_path: Path, bucket: Any
) -> None:
    use_artifacts(settings, tmp_path, bucket)
    session = trained_session(**RIDGE)
    _, _, manifest = artifact_names(session)
    storages["model_weights"].save(manifest, ContentFile(b'{"format": "cryptooracle.manif'))
    with pytest.raises(ArtifactError, match="unreadable"):
        session_bundle(session)


def test_a_model_that_is_not_the_one_the_manifest_names_is_refused(
    trained_session: Callable[..., TrainingSession],
    make_market: Callable[..., Market],
    settings: Any,
    tmp_path: Path,
    bucket: Any,
) -> None:
    """A reader that meets the manifest of one training and the model of another (a retry
    rewriting the files between its reads) refuses the pair by the manifest's sha256."""
    use_artifacts(settings, tmp_path, bucket)
    market = make_market()
    session = trained_session(market=market, **RIDGE)
    other = trained_session(market=market, **{**RIDGE, "window": 6})
    weights = storages["model_weights"]
    with weights.open(artifact_names(other)[0]) as f:
        other_model = f.read()
    weights.save(artifact_names(session)[0], ContentFile(other_model))
    with pytest.raises(ArtifactError, match="does not match the manifest's sha256"):
        session_bundle(session)


def test_a_retry_deletes_the_sessions_objects_from_the_bucket(
    trained_session: Callable[..., TrainingSession],
    make_market: Callable[..., Market],
    settings: Any,
    tmp_path: Path,
    bucket: Any,
) -> None:
    use_artifacts(settings, tmp_path, bucket)
    market = make_market()
    session = trained_session(market=market, **RIDGE)
    kept = trained_session(market=market, **{**RIDGE, "window": 6})
    assert session_keys(session) | session_keys(kept) == keys(bucket)
    TrainingSession.objects.filter(pk=session.pk).update(status=SessionStatus.FAILED)
    session.refresh_from_db()
    run_retry(session, queue=False)
    assert keys(bucket) == session_keys(kept)


class FailingContent(ContentFile):  # type: ignore[type-arg]
    def read(self, *args: Any) -> bytes:
        raise OSError("connection reset while uploading")


def test_an_upload_that_fails_leaves_the_previous_object_and_no_temporary_key(
    settings: Any, tmp_path: Path, bucket: Any
) -> None:
    use_artifacts(settings, tmp_path, bucket)
    weights = storages["model_weights"]
    weights.save("7.keras", ContentFile(b"first model"))
    with pytest.raises(OSError, match="connection reset"):
        weights.save("7.keras", FailingContent(b"second model"))
    assert keys(bucket) == {"artifacts/model_weights/7.keras"}
    with weights.open("7.keras") as f:
        assert f.read() == b"first model"
    weights.save("7.keras", ContentFile(b"second model"))  # a save replaces, never renames
    with weights.open("7.keras") as f:
        assert f.read() == b"second model"
    assert keys(bucket) == {"artifacts/model_weights/7.keras"}


def test_objects_are_private_and_encrypted_when_asked(
    settings: Any, tmp_path: Path, bucket: Any
) -> None:
    use_artifacts(settings, tmp_path, bucket, encryption="AES256")
    storages["scalers"].save("7.json", ContentFile(b"{}"))
    obj = bucket.Object("artifacts/scalers/7.json")
    assert obj.server_side_encryption == "AES256"
    assert obj.content_type == "application/json"
    grants = obj.Acl().grants
    assert [g["Grantee"].get("URI") for g in grants] == [None]  # the owner only, no AllUsers


# --- settings.py builds these entries from the environment -----------------------------


def load_storages(**env: str) -> subprocess.CompletedProcess[str]:
    return run_python(
        "import json; from django.conf import settings; "
        "print(json.dumps({k: settings.STORAGES[k] for k in ('model_weights', 'scalers')}))",
        **env,
    )


def test_a_bucket_in_the_environment_puts_both_stores_on_s3_under_their_prefixes() -> None:
    import json

    result = load_storages(
        ARTIFACTS_BUCKET="oracle-artifacts",
        ARTIFACTS_PREFIX="/prod/",
        ARTIFACTS_REGION="eu-west-1",
        ARTIFACTS_ENDPOINT_URL="http://127.0.0.1:9000",
        ARTIFACTS_ENCRYPTION="aws:kms",
        ARTIFACTS_KMS_KEY_ID="alias/oracle",
    )
    assert result.returncode == 0, result.stderr
    stores = json.loads(result.stdout)
    weights, scalers = stores["model_weights"], stores["scalers"]
    assert weights["BACKEND"] == scalers["BACKEND"] == "predictor.storage.AtomicS3Storage"
    assert weights["OPTIONS"]["location"] == "prod/model_weights"
    assert scalers["OPTIONS"]["location"] == "prod/scalers"
    for store in (weights, scalers):
        options = store["OPTIONS"]
        assert options["bucket_name"] == "oracle-artifacts"
        assert options["region_name"] == "eu-west-1"
        assert options["endpoint_url"] == "http://127.0.0.1:9000"
        assert options["file_overwrite"] is True
        assert options["default_acl"] is None
        assert options["object_parameters"] == {
            "ServerSideEncryption": "aws:kms",
            "SSEKMSKeyId": "alias/oracle",
        }
        assert "access_key" not in options  # credentials stay in AWS_* for boto3


def test_without_a_bucket_the_artifacts_stay_in_local_folders(tmp_path: Path) -> None:
    import json

    result = load_storages(MODEL_WEIGHTS_DIR=str(tmp_path / "w"), SCALERS_DIR=str(tmp_path / "s"))
    assert result.returncode == 0, result.stderr
    stores = json.loads(result.stdout)
    assert stores["model_weights"] == {
        "BACKEND": "predictor.storage.AtomicFileSystemStorage",
        "OPTIONS": {"location": str(tmp_path / "w")},
    }
    assert stores["scalers"]["OPTIONS"] == {"location": str(tmp_path / "s")}


PRODUCTION = {k: v for k, v in SERVED_PRODUCTION.items() if k != "ARTIFACTS_BUCKET"}


def test_production_refuses_local_artifact_folders_unless_allowed() -> None:
    refused = load_storages(**PRODUCTION)
    assert refused.returncode != 0
    assert "refuses local artifact folders" in refused.stderr
    assert "ARTIFACTS_BUCKET" in refused.stderr
    assert load_storages(**PRODUCTION, ARTIFACTS_LOCAL_OK="1").returncode == 0
    on_s3 = load_storages(**PRODUCTION, ARTIFACTS_BUCKET="oracle-artifacts")
    assert on_s3.returncode == 0, on_s3.stderr


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"ARTIFACTS_ENCRYPTION": "rot13"}, "ARTIFACTS_ENCRYPTION='rot13' must be one of"),
        ({"ARTIFACTS_KMS_KEY_ID": "alias/x"}, "needs ARTIFACTS_ENCRYPTION=aws:kms"),
    ],
)
def test_a_bad_encryption_setting_stops_the_start(env: dict[str, str], message: str) -> None:
    result = load_storages(ARTIFACTS_BUCKET="b", **env)
    assert result.returncode != 0
    assert message in result.stderr
