"""Optional RTSP output: ffmpeg, fed the live view's annotated JPEG frames on its standard
input, encodes H.264 and pushes it to an RTSP server the user configured (MediaMTX, ...). It
counts as a viewer, so frames are encoded only while it runs; a server that goes away is
retried with back-off and logged once per outage."""

from __future__ import annotations

import logging
import shutil
import subprocess
import threading

from edged.errors import ConfigError
from edged.redact import mask_url
from edged.sinks.stream import LiveView

log = logging.getLogger("edged.rtsp_out")


class RtspPush:
    def __init__(self, view: LiveView, url: str, fps: float, transport: str = "tcp",
                 max_backoff_s: float = 30.0) -> None:
        self.ffmpeg = shutil.which("ffmpeg")
        if self.ffmpeg is None:
            raise ConfigError(f"stream.rtsp_url = {url!r} needs ffmpeg: apt install ffmpeg")
        self.view = view
        self.url = url
        self.fps = fps
        self.transport = transport
        self.max_backoff_s = max_backoff_s
        self.frames_sent = 0
        self._stop = threading.Event()
        self._process: subprocess.Popen[bytes] | None = None
        self._thread = threading.Thread(target=self._run, name="edged-rtsp-out", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _command(self) -> list[str]:
        rate = f"{self.fps:g}"
        return [str(self.ffmpeg), "-loglevel", "error", "-f", "image2pipe", "-c:v", "mjpeg", "-framerate", rate,
                "-i", "-", "-c:v", "libx264", "-preset", "ultrafast", "-tune", "zerolatency", "-pix_fmt", "yuv420p",
                "-g", str(max(int(self.fps * 2), 1)), "-f", "rtsp", "-rtsp_transport", self.transport, self.url]

    def _run(self) -> None:
        backoff, outage = 1.0, False
        self.view.watch()
        try:
            while not self._stop.is_set():
                self._process = subprocess.Popen(self._command(), stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                                                 stderr=subprocess.DEVNULL)
                sequence = 0
                try:
                    while not self._stop.is_set() and self._process.poll() is None:
                        frame = self.view.jpeg(sequence, timeout=2)
                        if frame is None:
                            continue
                        sequence, data = frame
                        assert self._process.stdin is not None
                        self._process.stdin.write(data)
                        self._process.stdin.flush()
                        self.frames_sent += 1
                        if outage:
                            log.info("RTSP output to %s is running again", mask_url(self.url))
                            outage, backoff = False, 1.0
                        self._stop.wait(1.0 / self.fps)
                except (BrokenPipeError, OSError):
                    pass  # ffmpeg ended: the server refused or went away
                self._end_process()
                if self._stop.is_set():
                    break
                if not outage:
                    log.warning("RTSP output to %s stopped; retrying with back-off up to %.0f s", mask_url(self.url),
                                self.max_backoff_s)
                    outage = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, self.max_backoff_s)
        finally:
            self.view.unwatch()

    def _end_process(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        try:
            if process.stdin:
                process.stdin.close()
        except OSError:
            pass
        try:
            process.wait(3)
        except subprocess.TimeoutExpired:
            process.kill()

    def stop(self) -> None:
        self._stop.set()
        self._end_process()
        self._thread.join(5)
