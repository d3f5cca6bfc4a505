"""`edged run`: the daemon. Loads and checks the configuration, loads and warms up the models,
starts the pipeline, tells systemd it is ready, and then answers signals: SIGTERM/SIGINT stop
it cleanly (tracks ended, events flushed), SIGHUP reloads the configuration (a broken new file
is refused and the running one kept)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import cv2
import numpy as np

from edged import __version__
from edged.alerts import AlertEngine, AlertSettings
from edged.api import Faces
from edged.config import Config, load_config, needs_cameras
from edged.engine import EngineOptions, FaceEngine
from edged.errors import ConfigError, EdgedError
from edged.fleet.link import FleetLink
from edged.gallery import Gallery
from edged.history import HISTORY_NAME, AlertHistory, HistorySink
from edged.instance import StateLock
from edged.io.source import FrameSource, SourceSettings
from edged.library import Library
from edged.links import link_key
from edged.paths import default_gallery
from edged.pipeline import NO_IDLE_DETECTION_S, Pipeline, Sink
from edged.redact import mask_url
from edged.scheduler import Scheduler, workers_for
from edged.service import Watchdog, notify, watchdog_interval
from edged.sinks.clips import ClipRecorder, ClipSettings
from edged.sinks.http_api import HttpApi
from edged.sinks.stream import LiveView, annotate, blur_faces, check_exposure
from edged.sinks.web import WebServer
from edged.tracking.faces import FaceTracking, TrackingSettings
from edged.tracking.quality import QualitySettings
from edged.tracking.reid import ReidSettings
from edged.tracking.tracker import TrackerSettings
from edged.vision.detector import DetectorSettings
from edged.vision.motion import MotionDetector, MotionSettings

log = logging.getLogger("edged")
IN_SITU_EVERY_S = 60.0  # how often /status recomputes the in-situ false-accept estimate
FLEET_CATCH_UP_S = 5.0  # a starting box waits this long at most for the fleet's records
def stall_after_s() -> float:
    """How long the inference loop (which turns at least every 0.25 s) may stand still before
    the watchdog stops being fed: half of systemd's WatchdogSec, between 2 and 10 s."""
    interval = watchdog_interval()  # half of WatchdogSec
    return 10.0 if interval is None else max(2.0, min(10.0, interval))


def setup_logging(level: int = logging.INFO) -> None:
    """Log lines with syslog priorities when stderr goes to the journal, plain ones otherwise."""
    to_journal = bool(os.environ.get("JOURNAL_STREAM"))

    class Priority(logging.Formatter):
        LEVELS = {logging.DEBUG: 7, logging.INFO: 6, logging.WARNING: 4, logging.ERROR: 3, logging.CRITICAL: 2}

        def format(self, record: logging.LogRecord) -> str:
            text = super().format(record)
            return f"<{self.LEVELS.get(record.levelno, 6)}>{text}" if to_journal else text

    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(Priority("%(message)s" if to_journal else "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


def detector_settings(config: Config) -> DetectorSettings:
    base = DetectorSettings.edge() if config.detector.profile == "edge" else DetectorSettings()
    return DetectorSettings(
        min_face_size=config.detector.min_face_size or base.min_face_size,
        thresholds=base.thresholds, factor=base.factor,
        max_side=base.max_side if config.detector.max_side < 0 else config.detector.max_side)


def tracking_settings(config: Config) -> TrackingSettings:
    zone = tuple((float(x), float(y)) for x, y in config.quality.zone) or None
    return TrackingSettings(
        detector=detector_settings(config),
        quality=QualitySettings(config.quality.min_face_px, config.quality.min_sharpness, config.quality.max_yaw, zone),
        tracker=TrackerSettings(max_age_s=config.tracker.max_age_s, credence=config.tracker.credence),
        reid=ReidSettings(max_interval=config.tracker.reid_max_interval),
        unidentified_after_s=config.alerts.unidentified_after_s,
        match_threshold=config.recognition.threshold)


_warned_loopback_links = threading.Event()


def public_base_url(config: Config) -> str:
    """How a phone reaches this box's web server: notify.base_url, else this host's name when
    the server listens on every address, else its own address (loopback: not from a phone)."""
    s = config.stream
    if config.notify.base_url:
        return config.notify.base_url
    host = socket.gethostname() if s.bind in ("0.0.0.0", "::") else s.bind
    host = f"[{host}]" if ":" in host else host
    if s.bind in ("127.0.0.1", "localhost", "::1") and not _warned_loopback_links.is_set():
        _warned_loopback_links.set()  # once per daemon, not once per camera and reload
        log.warning("links in notifications and MQTT point at http://%s:%d, which a phone cannot open: set "
                    "notify.base_url "
                    "(and stream.bind with a token to listen beyond this machine)", host, s.port)
    return f"http://{host}:{s.port}"


def build_sinks(config: Config, state: Path, clip_link: Callable[[str], str] | None = None,
                primary: bool = True, box_stats: Callable[[], list[dict[str, object]]] | None = None,
                history: AlertHistory | None = None) -> list[Sink]:
    """One camera's sinks; `primary`: the first camera's, which alone answers the box-wide
    MQTT gallery corrections and publishes the box's stats (`box_stats()`: every camera's)."""
    from edged.sinks.media import MediaStore

    sinks: list[Sink] = [MediaStore(state / "media")]  # first: the pictures exist before others link them
    if history is not None:
        sinks.append(HistorySink(history))
    base = public_base_url(config) if config.notify.urls or config.mqtt.enabled else ""
    if config.notify.urls:
        from edged.sinks.notify import NotifySink

        sinks.append(NotifySink(config.notify, state / "media", base, clip_link=clip_link,
                                link_key=link_key(config.stream.token, config.stream.password),
                                link_expiry_s=config.stream.link_expiry_s))
    if config.mqtt.enabled:
        from edged.sinks.mqtt import MqttSink

        outbox = "mqtt-outbox.jsonl" if primary else f"mqtt-outbox-{config.camera.name}.jsonl"
        sinks.append(MqttSink(config, state / outbox, base, state / "media", primary=primary, box_stats=box_stats))
    return sinks


class Daemon:
    def __init__(self, config_path: Path | None) -> None:
        self.config_path = config_path
        # OpenCV's own worker threads busy-wait after each parallel call; on the small pictures
        # a camera's every frame meets (motion, cuts) they cost more than they save: 1% of a
        # core per idle camera on the build machine. The daemon's parallel work is its own
        # (inference workers, detection lanes).
        cv2.setNumThreads(1)
        self.config = load_config(config_path)
        needs_cameras(self.config)
        check_exposure(self.config.stream.bind, self.config.stream.token, self.config.stream.password)
        self.started = time.time()
        self._stop = threading.Event()
        self._reload = threading.Event()
        self.uploaders: list[Any] = []  # S3 clip uploaders, closed on stop
        self.last_reload: dict[str, object] | None = None  # the last SIGHUP's outcome, for /status
        self._in_situ: tuple[float, dict[str, object]] | None = None  # (when, estimate) for /status
        gallery_path = Path(self.config.recognition.gallery) if self.config.recognition.gallery else default_gallery()
        self.state = gallery_path.parent
        self.lock = StateLock(self.state)  # before anything is written there
        self.lock.acquire()
        try:
            self._refuse_if_device_taken()
        except BaseException:
            self.lock.release()
            raise
        # Listening first: a port in use or an address not on this box is a configuration
        # error (exit 78), found before seconds of model loading, not a crash after them.
        s = self.config.stream
        self.lives: dict[str, LiveView] = {}  # each camera's live view, kept across reloads
        self._live_views(self.config)
        self.web = WebServer(s.bind, s.port, self.snapshot, self.lives[self.config.camera.name], s.token,
                             s.username, s.password, s.fps,
                             folders={"media": self.state / "media", "clips": self.state / "clips"},
                             recording=self._clip_seconds_left, cameras=self.lives, camera_status=self.camera_status,
                             host_names=(*s.host_names, urlparse(self.config.notify.base_url).hostname or ""))
        self.history = AlertHistory(self.state / HISTORY_NAME)
        self.web.history = self.history
        try:
            self.engine = self._engine(self.config)
            self.gallery = Gallery(gallery_path)
            self.pipelines = self._pipelines(self.config)
            self.scheduler = self._scheduler(self.config)
            # The face library page acts through the daemon's own gallery and models.
            self.web.library = Library(self.gallery, self.engine, self.state / "media", self._recent_events)
            # The HTTP API acts through the Python API, on the same gallery and models.
            self.faces = Faces(self.gallery, self.engine, media_dir=self.state / "media")
            self.web.api = HttpApi(self.faces, self.web.alert_rows, self.web.clip_rows)
            self.fleet = self._fleet(self.config)
        except BaseException:
            self.web.stop()
            self.lock.release()
            raise

    def _fleet(self, config: Config) -> FleetLink | None:
        """The fleet's records kept in step with this gallery, when [fleet] is on (read at start:
        a reload does not change the fleet)."""
        if not config.fleet.enabled:
            return None
        return FleetLink(self.gallery, config.mqtt, config.fleet.name, config.device.resolved_name)

    def _refuse_if_device_taken(self) -> None:
        """Another edged already publishing as this device on the broker: refused (exit 78)
        before this one publishes anything, so the running one is left as it was."""
        if not self.config.mqtt.enabled:
            return
        from edged.sinks.mqtt import find_other_instance

        other = find_other_instance(self.config, self.state)
        if other:
            raise ConfigError(f"{other}: give each edged its own device.name, or run one edged with "
                              "[cameras.NAME] tables for several cameras")

    @property
    def pipeline(self) -> Pipeline:
        """The first camera's pipeline: what / and the top of /status show."""
        return self.pipelines[0]

    # -- building ---------------------------------------------------------------------------
    def _live_views(self, config: Config) -> None:
        for view in config.camera_configs():
            s = view.stream
            live = self.lives.get(view.camera.name)
            if live is None or (live.quality, live.blur_unknowns, live.max_width, live.max_viewers) != (
                    s.quality, s.privacy_blur == "unknowns", s.max_width, s.max_viewers):
                self.lives[view.camera.name] = LiveView(s.quality, s.privacy_blur == "unknowns", s.max_width,
                                                        s.max_viewers)
        for gone in set(self.lives) - {v.camera.name for v in config.camera_configs()}:
            del self.lives[gone]

    def _pipelines(self, config: Config) -> list[Pipeline]:
        views = config.camera_configs()
        return [self._pipeline(view, primary=i == 0, several=len(views) > 1) for i, view in enumerate(views)]

    def _scheduler(self, config: Config) -> Scheduler:
        return Scheduler(self.pipelines, workers_for(len(self.pipelines), config.runtime.inference_workers))

    def _waiting_uploads(self) -> list[str]:
        return [name for uploader in self.uploaders for name in uploader.pending()]

    def _recent_events(self) -> list[dict[str, object]]:
        """The alerts of every camera, oldest first, from the history on disk (a restart or a
        busy camera does not empty the library's recent faces)."""
        return [{"type": "alert", **item} for item in reversed(self.history.recent(200))]

    def _engine(self, config: Config) -> FaceEngine:
        models = Path(config.models.dir) if config.models.dir else None
        # Cores split between the workers: with a worker per core, a detection runs on one (its
        # lanes would only add hand-overs: +23% CPU per detection measured on three 640x360
        # cameras); with one camera, its detection takes them all.
        workers = workers_for(len(config.camera_configs()), config.runtime.inference_workers)
        threads = config.detector.threads or max(1, (os.cpu_count() or 1) // workers)
        options = EngineOptions(models, config.models.embedder or None, detector_settings(config),
                                threads, tuple(config.runtime.providers),
                                config.recognition.threshold, config.recognition.false_accepts)
        # An embedder asked for by name, or a models folder named in the configuration, must
        # hold one (a start-up error, exit 78). With none installed where edged looks by itself
        # (a bare box offline), the daemon still finds and tracks faces, and says what names need.
        engine = FaceEngine(options, need_embedder=bool(config.models.embedder or config.models.dir))
        engine.detector.warm_up()
        if not engine.has_embedder:
            log.warning("no embedder installed: faces are found and tracked, but nobody is named or enrolled. "
                        "Install one with tools/setup.sh (../shared/models beside the checkout, or "
                        "EDGED_FACENET_WEIGHTS=checkpoint), or `python tools/export_models.py import FILE.onnx "
                        "--spec SPEC.toml`; see docs/recognition.md")
            return engine
        engine.embedder_loaded().warm_up()
        log.info("edged %s: %s; models warmed up", __version__, engine.describe_embedder())
        log.info("%s", engine.describe_threshold())
        return engine

    def _pipeline(self, config: Config, primary: bool = True, several: bool = False) -> Pipeline:
        c = config.camera
        offset = time.time() - time.monotonic()
        recorder = None
        uploader = None
        if config.clips.enabled:
            k = config.clips
            blur = config.stream.privacy_blur == "unknowns"
            recorder = ClipRecorder(ClipSettings(k.pre_roll_s, k.post_roll_s, k.max_length_s, k.max_buffer_mb,
                                                 keep_days=k.keep_days, keep_mb=k.keep_mb, annotate=k.annotate,
                                                 blur_unknowns=blur),
                                    self.state / "clips", c.name, offset)
            if k.s3_bucket:  # one uploader per camera, each with its own list of clips waiting
                from edged.io.s3 import ClipUploader

                uploader = ClipUploader(self.state / "clips", k.s3_bucket, k.s3_prefix, k.s3_url_expiry_s,
                                        k.s3_endpoint, k.s3_access_key, k.s3_secret_key,
                                        pending_name=f"s3-pending-{c.name}.txt" if several else "s3-pending.txt")
                self.uploaders.append(uploader)
            # Retention in the shared clips folder keeps every camera's waiting clips.
            recorder.waiting_uploads = self._waiting_uploads
        main = SourceSettings(c.source, c.name, c.loop, c.realtime, c.rtsp_transport, c.open_timeout_s,
                              c.reconnect_max_s)
        record = None
        if c.detect_source:  # detect on the substream; the main stream only feeds clips
            source = FrameSource(replace(main, source=c.detect_source))
            record = FrameSource(main, clips=recorder, record_only=True) if recorder is not None else None
        else:
            source = FrameSource(main, clips=recorder)
        tracking = FaceTracking(self.engine, self.gallery, tracking_settings(config), camera=c.name,
                                time_offset=offset, name_strangers=True, keep_records=False)
        alerts = AlertEngine(AlertSettings(config.alerts.mode, config.alerts.cooldown_s, tuple(config.alerts.ignore)))
        sinks = build_sinks(config, self.state, uploader.url_for if uploader else None, primary, self._box_stats,
                            self.history)
        pipeline = Pipeline(source, tracking, alerts, sinks, config.detect_fps, config.mqtt.stats_interval_s)
        m = config.motion
        if m.enabled:
            pipeline.motion = MotionDetector(MotionSettings(True, m.frame_height, m.threshold, m.contour_area,
                                                            m.lightning_threshold, m.frame_alpha),
                                             tracking.settings.quality.zone)
            pipeline.idle_interval = (max(1.0 / m.idle_detect_fps, pipeline.detect_interval)
                                      if m.idle_detect_fps else NO_IDLE_DETECTION_S)
            pipeline.crops = m.detect_crops
            pipeline.idle_unchanged_s = m.idle_unchanged_s
        pipeline.live = self.lives[c.name]
        pipeline.keep_pictures = True
        pipeline.clips = recorder
        pipeline.record_source = record
        pipeline.camera_config = c
        if recorder is not None:
            told = [s for s in sinks if hasattr(s, "clip_ready")]

            def on_clip(path: Path) -> None:
                if uploader is not None:
                    uploader.add(path.name)
                for sink in told:
                    sink.clip_ready(path, c.name)

            recorder.on_clip = on_clip
        if recorder is not None and not recorder.wants_packets:
            drawn = config.clips.annotate
            blur = config.stream.privacy_blur == "unknowns"

            def overlay(image: np.ndarray) -> np.ndarray:
                # The newest boxes the pipeline has (detected or predicted): the frame being
                # recorded is at most one detection interval newer than them.
                view = pipeline.view_scaled((image.shape[1], image.shape[0]))
                if drawn:
                    return annotate(image, view, pipeline.view_identities, pipeline.recent_fps(), blur)
                image = image.copy()
                blur_faces(image, view, pipeline.view_identities)
                return image

            recorder.overlay = overlay
        for sink in pipeline.sinks:
            bind = getattr(sink, "bind", None)
            if bind is not None:
                bind(pipeline)
        return pipeline

    # -- running ----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, object]:
        """/status: the box, the first camera as before, and every camera in `cameras`."""
        pipelines = self.pipelines
        broken = self.broken()
        return {"version": 1, "edged": __version__, "device": self.config.device.resolved_name,
                "problems": [broken] if broken else [],
                **self._camera_part(pipelines[0]),
                "started": self.started, "uptime_s": round(time.time() - self.started, 1),
                "embedder": self.engine.embedder_spec.model_id if self.engine.has_embedder else None,
                "providers": dict(self.engine.store.providers),
                "inference": {"workers": workers_for(len(pipelines), self.config.runtime.inference_workers),
                              "detection_threads": self.engine.detector.lanes.count},
                "config_sources": list(self.config.sources), "last_reload": self.last_reload,
                "recognition": self._recognition(),
                **({"fleet": self.fleet.status()} if self.fleet is not None else {}),
                "cameras": [self._camera_part(p, events=False, last_events=5) for p in pipelines]}

    def camera_status(self, name: str) -> dict[str, object]:
        """/cameras/<name>/status: /status with that camera's part on top."""
        pipeline = next((p for p in self.pipelines if p.camera == name), self.pipelines[0])
        return {**self.snapshot(), **self._camera_part(pipeline)}

    def _camera_part(self, pipeline: Pipeline, events: bool = True, last_events: int = 0) -> dict[str, object]:
        stats = pipeline.last_stats or pipeline.stats()
        source = pipeline.source.stats
        camera = pipeline.camera_config
        assert camera is not None  # _pipeline sets it on every pipeline
        live = {"frames": source.frames, "skipped": source.skipped, "source_connected": source.connected}
        part: dict[str, object] = {
            "camera": camera.name, "source": mask_url(camera.source),
            "detect_source": mask_url(camera.detect_source) or None,
            "detection_enabled": pipeline.detection_enabled, "alerts_enabled": pipeline.alerts.enabled,
            "stats": {**stats.to_json(), **live}}
        mqtt: Any = next((sink for sink in pipeline.sinks if hasattr(sink, "loop_alive")), None)
        if mqtt is not None:
            part["mqtt"] = mqtt.health()
        if events or last_events:
            part["recent_events"] = list(pipeline.recent)[-(last_events or 20):]
        return part

    def _recognition(self) -> dict[str, object]:
        """The threshold in use, what it was measured on, and what this box's own strangers say."""
        from edged.corrections import in_situ_false_accepts

        tracking = self.pipeline.tracking
        if not self.engine.has_embedder:
            return {"threshold": None, "false_accepts": self.config.recognition.false_accepts, "calibration": None,
                    "false_accepts_in_situ": None, "embedder": "none installed: faces are not named"}
        spec = self.engine.embedder_spec
        # The page polls /status every 2 s per viewer; matching every stranger's faces again
        # each time is work a minute-old answer spares.
        now = time.monotonic()
        if self._in_situ is None or now - self._in_situ[0] >= IN_SITU_EVERY_S:
            estimate = in_situ_false_accepts(tracking.gallery, spec.model_id, tracking.match_threshold)
            self._in_situ = (now, estimate.to_json())
        return {"threshold": round(tracking.match_threshold, 4), "false_accepts": self.config.recognition.false_accepts,
                "calibration": spec.calibration or None, "false_accepts_in_situ": self._in_situ[1]}

    def _clip_seconds_left(self, name: str) -> float | None:
        for pipeline in getattr(self, "pipelines", []):
            seconds_left = getattr(pipeline.clips, "seconds_left", None)
            left = seconds_left(name) if seconds_left is not None else None
            if left is not None:
                return left
        return None

    def status_line(self) -> str:
        parts = []
        for pipeline in self.pipelines:
            stats = pipeline.last_stats
            if stats is not None:
                parts.append(f"{stats.camera}: {stats.fps:.1f} of {stats.detect_fps_target:.1f} detections/s, "
                             f"{stats.faces_in_view} faces in view")
        return "; ".join(parts) or "starting"

    def run(self) -> int:
        signal.signal(signal.SIGTERM, lambda *_: self._stop.set())
        signal.signal(signal.SIGINT, lambda *_: self._stop.set())
        signal.signal(signal.SIGHUP, lambda *_: self._reload.set())
        s = self.config.stream
        web = self.web
        web.start()
        pushes = []
        for view in self.config.camera_configs():  # each camera's annotated view re-published, where asked
            if view.stream.rtsp_url:
                from edged.sinks.rtsp_out import RtspPush

                push = RtspPush(self.lives[view.camera.name], view.stream.rtsp_url, view.stream.fps,
                                view.stream.rtsp_transport)
                push.start()
                pushes.append(push)
        if self.fleet is not None:
            self.fleet.start()
            if not self.fleet.caught_up.wait(FLEET_CATCH_UP_S):
                log.warning("fleet %s: the broker's records did not all arrive within %.0f s; the cameras start, "
                            "and people are named as their records arrive", self.config.fleet.name, FLEET_CATCH_UP_S)
        self.scheduler.start()
        host = "127.0.0.1" if s.bind in ("0.0.0.0", "::") else s.bind
        host = f"[{host}]" if ":" in host else host
        for view in self.config.camera_configs():
            where = "/" if view.camera.name == self.config.camera.name else f"/cameras/{view.camera.name}/"
            log.info("running: camera %s from %s; live view at http://%s:%d%s (status: /status)", view.camera.name,
                     mask_url(view.camera.source), host, web.port, where)
        notify(f"READY=1\nSTATUS=running: {len(self.pipelines)} camera(s)\nMAINPID={os.getpid()}")
        watchdog = Watchdog(lambda: self.scheduler.heartbeat, stall_after_s(), self.status_line, self.broken)
        watchdog.start()
        code = 0
        try:
            while not self._stop.wait(0.2):
                if self._reload.is_set():
                    self._reload.clear()
                    self.reload()
                if self.scheduler.finished:
                    log.info("the video file has ended")
                    break
        finally:
            notify("STOPPING=1")
            log.info("stopping")
            watchdog.stop()
            self.scheduler.stop()
            for uploader in self.uploaders:
                uploader.close()
            for push in pushes:
                push.stop()
            web.stop()
            if self.fleet is not None:
                self.fleet.stop()
            self.gallery.close()
            self.lock.release()
        return code

    def _box_stats(self) -> list[dict[str, object]]:
        return [p.last_stats.to_json() for p in getattr(self, "pipelines", []) if p.last_stats is not None]

    def _mqtt_sinks(self) -> list[Any]:
        return [sink for p in self.pipelines for sink in p.sinks if hasattr(sink, "loop_alive")]

    def broken(self) -> str | None:
        """What the watchdog must know beyond a stalled pipeline: an MQTT network loop that
        ended (it never comes back by itself, and every alert would stay on disk)."""
        dead = [sink.client_id for sink in self._mqtt_sinks() if not sink.loop_alive]
        return f"the MQTT network loop of {', '.join(dead)} has ended" if dead else None

    def reload(self) -> None:
        try:
            new = load_config(self.config_path)
            needs_cameras(new)
            check_exposure(new.stream.bind, new.stream.token, new.stream.password)
        except Exception as exc:  # whatever the new file holds, the running configuration stays
            message = str(exc) if isinstance(exc, ConfigError) else f"{type(exc).__name__}: {exc}"
            log.error("reload refused, the running configuration stays: %s", message)
            notify("STATUS=reload refused: " + message[:200])
            self.last_reload = {"time": time.time(), "ok": False, "message": message[:2000]}
            return
        notify("RELOADING=1")
        for sink in self._mqtt_sinks():  # the box stays: no `offline`, and presence carries over (presence.py)
            sink.goodbye = False
        self.scheduler.stop()
        for uploader in self.uploaders:  # the new pipelines make their own; waiting clips stay listed on disk
            uploader.close()
        self.uploaders = []
        old_engine = self.engine
        try:
            if (new.models, new.detector, new.runtime, len(new.camera_configs())) != (
                    self.config.models, self.config.detector, self.config.runtime, len(self.config.camera_configs())):
                self.engine = self._engine(new)
                self.web.library.engine = self.faces.engine = self.engine
            self._live_views(new)
            self.web.view = self.lives[new.camera.name]
            self.pipelines = self._pipelines(new)
        except Exception as exc:  # the new configuration cannot be built: back to the running one
            message = str(exc) if isinstance(exc, EdgedError) else f"{type(exc).__name__}: {exc}"
            log.error("reload refused, the running configuration stays: %s", message)
            self.engine = self.web.library.engine = self.faces.engine = old_engine
            self._live_views(self.config)
            self.web.view = self.lives[self.config.camera.name]
            self.pipelines = self._pipelines(self.config)
            self.scheduler = self._scheduler(self.config)
            self.scheduler.start()
            self.last_reload = {"time": time.time(), "ok": False, "message": message[:2000]}
            notify("READY=1\nSTATUS=reload refused: " + message[:200])
            return
        self.scheduler = self._scheduler(new)
        self.scheduler.start()
        log.info("configuration reloaded from %s", ", ".join(new.sources) or "defaults")
        # The outcome first, then the configuration /status shows: a client that sees the new
        # configuration also sees the reload recorded.
        self.last_reload = {"time": time.time(), "ok": True, "message": "reloaded from " + (", ".join(new.sources)
                                                                                            or "defaults")}
        self.config = new
        notify("READY=1")
