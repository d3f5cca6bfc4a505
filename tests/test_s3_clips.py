"""Clips to S3 against moto's real S3 server: uploads in order, presigned URLs fetched over
HTTP, an outage (the server stopped) and recovery with nothing lost and the order kept, and a
nearly full disk dropping the oldest waiting clips first."""

import os
import subprocess
import sys
import time
import urllib.request

import boto3
import pytest
from services import wait_for_port, wait_until

from edged.io.s3 import ClipUploader
from edged.sinks.clip_writers import retain


def clip(folder, name, size=50_000):
    path = folder / name
    path.write_bytes(os.urandom(size))
    return path


@pytest.fixture
def aws_env(s3_server, monkeypatch):
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    boto3.client("s3").create_bucket(Bucket="clips")
    return s3_server


def test_a_missing_bucket_makes_clips_wait_and_ends_no_uploader(s3_server, monkeypatch, tmp_path):
    """A bucket that is not there (deleted, or a MinIO that restarted empty): S3 refuses the
    upload, and boto3 raises its own error type for it. The clips wait on disk, the uploader
    lives on, and they go up once the bucket is back."""
    for key, value in s3_server.items():
        monkeypatch.setenv(key, value)
    uploaded = []
    uploader = ClipUploader(tmp_path, "later", "box1/", url_expiry_s=600,
                            on_uploaded=lambda name, url: uploaded.append(name), max_backoff_s=1)
    try:
        for n in (1, 2):
            uploader.add(clip(tmp_path, f"c{n}.mp4").name)
        time.sleep(2.5)  # a few refused tries
        assert uploaded == [] and uploader.pending() == ["c1.mp4", "c2.mp4"]
        assert uploader._thread.is_alive()
        boto3.client("s3").create_bucket(Bucket="later")
        wait_until(lambda: len(uploaded) == 2, 30, "the clips once the bucket is there")
        assert uploaded == ["c1.mp4", "c2.mp4"]
    finally:
        uploader.close()


def test_upload_presigned_url_outage_and_order(aws_env, tmp_path):
    uploaded = []
    uploader = ClipUploader(tmp_path, "clips", "box1/", url_expiry_s=600,
                            on_uploaded=lambda name, url: uploaded.append((name, url)), max_backoff_s=1)
    try:
        first = clip(tmp_path, "c1.mp4")
        uploader.add(first.name)
        wait_until(lambda: uploaded, 30, "the first upload")
        name, url = uploaded[0]
        with urllib.request.urlopen(url, timeout=10) as response:  # the presigned URL works over HTTP
            assert response.read() == first.read_bytes()
        assert "X-Amz-Expires=600" in url

        port = int(aws_env["AWS_ENDPOINT_URL"].rsplit(":", 1)[1])
        subprocess.run(["pkill", "-f", f"moto.server -H 127.0.0.1 -p {port}"], check=False)
        for n in range(2, 6):  # four clips finish while S3 is away
            uploader.add(clip(tmp_path, f"c{n}.mp4").name)
        wait_until(lambda: len(uploader.pending()) == 4, 10, "the clips to wait on disk")
        assert [n for n, _ in uploaded] == ["c1.mp4"]

        restarted = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for_port(port, 30)
            boto3.client("s3").create_bucket(Bucket="clips")  # moto keeps nothing across restarts
            wait_until(lambda: len(uploaded) == 5, 60, "the waiting clips to upload")
            assert [n for n, _ in uploaded] == [f"c{n}.mp4" for n in range(1, 6)], "lost or out of order"
            assert not uploader.pending()
            keys = [o["Key"] for o in boto3.client("s3").list_objects_v2(Bucket="clips")["Contents"]]
            assert sorted(keys) == [f"box1/c{n}.mp4" for n in range(2, 6)]
        finally:
            restarted.terminate()
            restarted.wait(10)
    finally:
        uploader.close()


def test_waiting_clips_survive_a_restart_of_the_daemon(tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "x")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    first = ClipUploader(tmp_path, "clips", max_backoff_s=1)
    first.add(clip(tmp_path, "a.mp4").name)
    first.add(clip(tmp_path, "b.mp4").name)
    first.close()
    second = ClipUploader(tmp_path, "clips", max_backoff_s=1)
    try:
        assert second.pending() == ["a.mp4", "b.mp4"]
    finally:
        second.close()


def test_nearly_full_disk_drops_the_oldest_waiting_clips_first(tmp_path, monkeypatch):
    for name in ("old-uploaded.mp4", "w1.mp4", "w2.mp4"):
        clip(tmp_path, name)
    free = {"bytes": 0}

    class Usage:
        def __init__(self, free_bytes):
            self.free = free_bytes

    def fake_usage(path):
        return Usage(free["bytes"])

    removed_so_far = []

    def unlink_and_free(self, missing_ok=False):
        removed_so_far.append(self.name)
        free["bytes"] += 150 * 2**20  # each removal frees enough for one more clip
        os.remove(self)

    import edged.sinks.clip_writers as clips_module

    monkeypatch.setattr(clips_module.shutil, "disk_usage", fake_usage)
    monkeypatch.setattr(type(tmp_path), "unlink", unlink_and_free)
    retain(tmp_path, keep_days=7, keep_mb=10_000, min_free_mb=200, waiting=["w1.mp4", "w2.mp4"])
    assert removed_so_far == ["w1.mp4", "w2.mp4"]
    assert (tmp_path / "old-uploaded.mp4").exists()


def test_a_link_signed_before_the_upload_works_after_it(aws_env, tmp_path):
    uploaded = []
    uploader = ClipUploader(tmp_path, "clips", on_uploaded=lambda name, url: uploaded.append(name))
    try:
        early = uploader.url_for("later.mp4")  # what a notification carries while the clip records
        path = clip(tmp_path, "later.mp4")
        uploader.add(path.name)
        wait_until(lambda: uploaded, 30, "the upload")
        with urllib.request.urlopen(early, timeout=10) as response:
            assert response.read() == path.read_bytes()
    finally:
        uploader.close()
