"""The one place boto3 is imported: fetching an s3://bucket/key object to a local file.
Endpoint and keys come from boto3's own settings (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID ...),
so MinIO and other S3-compatible stores work too."""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from edged.errors import EdgedError


def split_url(url: str) -> tuple[str, str]:
    """s3://bucket/key/parts -> (bucket, key/parts)."""
    rest = url[len("s3://"):]
    bucket, _, key = rest.partition("/")
    if not bucket or not key:
        raise EdgedError(f"{url}: expected s3://bucket/key")
    return bucket, key


@contextmanager
def fetched(location: str) -> Iterator[Path]:
    """A local path for `location`: the file itself, or an S3 object downloaded to a
    temporary file that is removed afterwards."""
    if not location.startswith("s3://"):
        yield Path(location)
        return
    bucket, key = split_url(location)
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:
        raise EdgedError("s3:// needs boto3: pip install 'edged[s3]'") from None
    suffix = Path(key).suffix or ".mp4"
    with tempfile.TemporaryDirectory(prefix="edged-s3-") as tmp:
        local = Path(tmp) / f"clip{suffix}"
        try:
            boto3.client("s3").download_file(bucket, key, str(local))
        except (BotoCoreError, ClientError) as exc:
            raise EdgedError(f"{location}: cannot fetch ({exc})") from exc
        yield local
