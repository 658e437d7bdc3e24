"""``STORAGES`` entries for the model artifacts, built from the settings.

Kept apart from :mod:`predictor.storage` so that loading the settings imports
neither boto3 nor the storage classes; the entries name their backends by path.
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

ENCRYPTIONS = ("AES256", "aws:kms")


def _s3_options(
    location: str,
    *,
    bucket: str,
    region: str | None,
    endpoint_url: str | None,
    encryption: str | None,
    kms_key_id: str | None,
) -> dict[str, Any]:
    object_parameters: dict[str, str] = {}
    if encryption:
        object_parameters["ServerSideEncryption"] = encryption
    if kms_key_id:
        object_parameters["SSEKMSKeyId"] = kms_key_id
    options: dict[str, Any] = {
        "bucket_name": bucket,
        "location": location,
        "region_name": region,
        "endpoint_url": endpoint_url,
        # Saving a session's files again (a retry) replaces them under the same names.
        "file_overwrite": True,
        # Private objects, read by the app's own credentials: no ACL, no public URL.
        "default_acl": None,
        "querystring_auth": True,
        "object_parameters": object_parameters,
    }
    if endpoint_url:
        # S3-compatible stores (MinIO, moto, Ceph) rarely resolve bucket subdomains.
        options["addressing_style"] = "path"
    return options


def artifact_storages(
    *,
    weights_dir: Path,
    scalers_dir: Path,
    bucket: str | None = None,
    prefix: str = "artifacts/",
    region: str | None = None,
    endpoint_url: str | None = None,
    encryption: str | None = None,
    kms_key_id: str | None = None,
) -> dict[str, dict[str, Any]]:
    """``STORAGES`` entries for ``model_weights`` and ``scalers``: S3 with a bucket, else folders.

    Credentials are not options: boto3 finds them in ``AWS_ACCESS_KEY_ID`` and
    ``AWS_SECRET_ACCESS_KEY`` or in the instance's role.
    """
    if encryption and encryption not in ENCRYPTIONS:
        raise ValueError(f"server-side encryption {encryption!r} is not one of {ENCRYPTIONS}")
    if kms_key_id and encryption != "aws:kms":
        raise ValueError("a KMS key needs server-side encryption aws:kms")
    if not bucket:
        return {
            kind: {
                "BACKEND": "predictor.storage.AtomicFileSystemStorage",
                "OPTIONS": {"location": str(folder)},
            }
            for kind, folder in (("model_weights", weights_dir), ("scalers", scalers_dir))
        }
    root = prefix.strip("/")
    return {
        kind: {
            "BACKEND": "predictor.storage.AtomicS3Storage",
            "OPTIONS": _s3_options(
                posixpath.join(root, kind) if root else kind,
                bucket=bucket,
                region=region,
                endpoint_url=endpoint_url,
                encryption=encryption,
                kms_key_id=kms_key_id,
            ),
        }
        for kind in ("model_weights", "scalers")
    }
