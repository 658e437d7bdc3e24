"""Create the artifact bucket on the S3-compatible store of docker-compose.yml, if missing.

Reads ARTIFACTS_BUCKET, ARTIFACTS_ENDPOINT_URL, ARTIFACTS_REGION and the AWS_* credentials
from the environment, as the app does. On AWS the bucket is made once by hand (README).
"""

from __future__ import annotations

import os
import sys

import boto3
from botocore.exceptions import ClientError


def ensure_bucket(name: str, endpoint_url: str | None, region: str | None) -> bool:
    """Make the bucket; True when it was created, False when it was already there."""
    client = boto3.client("s3", endpoint_url=endpoint_url, region_name=region)
    try:
        client.head_bucket(Bucket=name)
        return False
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket"):
            raise
    if region and region != "us-east-1":
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    else:
        client.create_bucket(Bucket=name)
    return True


def main() -> int:
    name = os.environ.get("ARTIFACTS_BUCKET")
    if not name:
        print("create_bucket: ARTIFACTS_BUCKET is not set", file=sys.stderr)
        return 1
    created = ensure_bucket(
        name, os.environ.get("ARTIFACTS_ENDPOINT_URL"), os.environ.get("ARTIFACTS_REGION")
    )
    print(f"bucket {name}: {'created' if created else 'already there'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
