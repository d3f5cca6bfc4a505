"""The one place boto3 is imported: fetching an s3://bucket/key object to a local file, and
uploading clips with a spool that outlasts outages.
Endpoint and keys come from boto3's own settings (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID ...),
so MinIO and other S3-compatible stores work too."""

from __future__ import annotations

import logging
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from edged import durable
from edged.errors import EdgedError

log = logging.getLogger("edged.io.s3")


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


class ClipUploader:
    """Uploads finished clips to S3 in the order they finished, on a thread of its own. The
    list of clips still to upload is kept on disk beside them, so an outage of the endpoint,
    or a restart of the daemon, loses nothing; once uploaded, a clip gets a presigned URL that
    expires after `url_expiry_s`. `on_uploaded(name, url)` is told of each upload."""

    def __init__(self, folder: Path, bucket: str, prefix: str = "", url_expiry_s: int = 604800,
                 endpoint: str = "", access_key: str = "", secret_key: str = "",
                 on_uploaded: Callable[[str, str], None] | None = None, max_backoff_s: float = 30.0,
                 pending_name: str = "s3-pending.txt") -> None:
        """`pending_name`: the list of clips waiting for upload, one per uploader (one per camera)."""
        import boto3
        from botocore.config import Config as BotoConfig

        self.folder = folder
        self.bucket = bucket
        self.prefix = prefix
        self.url_expiry_s = url_expiry_s
        self.on_uploaded = on_uploaded
        self.max_backoff_s = max_backoff_s
        keys = {"aws_access_key_id": access_key, "aws_secret_access_key": secret_key} if access_key else {}
        self.client = boto3.client("s3", endpoint_url=endpoint or None,
                                   config=BotoConfig(connect_timeout=5, read_timeout=30, signature_version="s3v4",
                                                     retries={"max_attempts": 1}), **keys)
        self.pending_file = folder / pending_name
        self.uploaded: list[str] = []
        self.urls: dict[str, str] = {}
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._stop = threading.Event()
        folder.mkdir(parents=True, exist_ok=True)
        waiting = self.pending()
        if waiting:
            log.info("%d clip(s) from before the restart wait for upload to s3://%s", len(waiting), bucket)
        self._thread = threading.Thread(target=self._run, name="edged-s3", daemon=True)
        self._thread.start()

    def url_for(self, name: str) -> str:
        """The presigned link a clip will have once uploaded (signing needs no network, nor the
        object), so a notification can carry it while the clip still records."""
        return str(self.client.generate_presigned_url("get_object", ExpiresIn=self.url_expiry_s,
                                                      Params={"Bucket": self.bucket, "Key": f"{self.prefix}{name}"}))

    def pending(self) -> list[str]:
        with self._lock:
            if not self.pending_file.exists():
                return []
            return [n for n in self.pending_file.read_text(encoding="utf-8").splitlines() if n]

    def _save(self, names: list[str]) -> None:
        durable.write_text(self.pending_file, "".join(n + "\n" for n in names))

    def add(self, name: str) -> None:
        """A finished clip in `folder`, to upload after those already waiting."""
        with self._lock:
            names = self.pending_file.read_text(encoding="utf-8").splitlines() if self.pending_file.exists() else []
            self._save([n for n in names if n] + [name])
        self._wake.set()

    def drop(self, name: str, reason: str) -> None:
        with self._lock:
            names = [n for n in self.pending_file.read_text(encoding="utf-8").splitlines() if n and n != name] \
                if self.pending_file.exists() else []
            self._save(names)
        log.warning("clip %s will not be uploaded: %s", name, reason)

    def _run(self) -> None:
        from boto3.exceptions import Boto3Error
        from botocore.exceptions import BotoCoreError, ClientError

        backoff = 1.0
        outage = False
        while not self._stop.is_set():
            waiting = self.pending()
            if not waiting:
                self._wake.wait(1.0)
                self._wake.clear()
                continue
            name = waiting[0]
            path = self.folder / name
            if not path.is_file():
                self.drop(name, "the file is gone (removed by retention or by hand)")
                continue
            key = f"{self.prefix}{name}"
            try:
                self.client.upload_file(str(path), self.bucket, key, ExtraArgs={"ContentType": "video/mp4"})
                url = self.client.generate_presigned_url("get_object", Params={"Bucket": self.bucket, "Key": key},
                                                         ExpiresIn=self.url_expiry_s)
            # boto3's upload_file wraps a refusal (the bucket gone, access denied) in its own
            # S3UploadFailedError: it must not end this thread, or no clip would go up again.
            except (BotoCoreError, ClientError, Boto3Error, OSError) as exc:
                if not outage:
                    log.warning("cannot upload clips to s3://%s (%s); they wait on disk, in order", self.bucket, exc)
                    outage = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
                continue
            if outage:
                log.info("s3://%s is reachable again; uploading the clips that waited", self.bucket)
            outage, backoff = False, 1.0
            with self._lock:
                names = [n for n in self.pending_file.read_text(encoding="utf-8").splitlines() if n]
                self._save([n for n in names if n != name])
            self.uploaded.append(name)
            self.urls[name] = url
            log.info("clip %s uploaded to s3://%s/%s", name, self.bucket, key)
            if self.on_uploaded:
                self.on_uploaded(name, url)

    def close(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)
