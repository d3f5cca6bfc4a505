"""One camera's pipeline: wiring only. The source thread fills a one-frame mailbox; the
daemon's inference scheduler (edged/scheduler.py, one thread for every camera) polls it,
keeps the newest frame whose detection is due and runs tracking on it when its turn comes;
events and alerts go to the sinks through a bounded queue on a thread of their own, so a slow
sink (a broker that is down) never holds up inference."""

from __future__ import annotations

import logging
import os
import queue
import resource
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Protocol

import numpy as np

from edged.alerts import AlertEngine
from edged.events import Alert, TrackEvent
from edged.io.source import FrameSource
from edged.tracking.faces import FaceTracking, FrameResult
from edged.tracking.shots import SAMPLE_ROWS as CUT_ROWS
from edged.types import Faces, Frame, Identity
from edged.vision.motion import NONE as NO_MOTION
from edged.vision.motion import Motion, MotionDetector
from edged.vision.regions import regions

if TYPE_CHECKING:
    from edged.config import CameraConfig

log = logging.getLogger("edged.pipeline")
RECORD_WAIT_S = 10.0  # the longest detection waits for a recorded main stream to say its size
# idle_detect_fps = 0: no idle heartbeat. A finite "never" (about 30 years), so that tick
# arithmetic (last + interval) stays a number.
NO_IDLE_DETECTION_S = 1e9


@dataclass(frozen=True)
class Stats:
    """What the box is doing, for MQTT `stats`, the status endpoint and systemd STATUS=."""

    time: float
    camera: str
    fps: float  # frames processed (detection ran) per second
    frames: int  # frames read from the source
    skipped: int  # frames the source replaced before inference took them
    latency_ms: float | None  # capture to end of processing, last frame; None while detection is off
    embeddings_per_s: float
    faces_in_view: int
    tracks: list[dict[str, object]]
    cpu_percent: float  # of the whole box (every core): 0 to 100
    rss_mb: float
    source_connected: bool
    scene_cuts: int = 0  # hard cuts seen since start: the camera moved, switched or covered
    camera_fps: float = 0.0  # frames read from the source per second
    detect_fps_target: float = 0.0  # detections per second asked for now (fps is what was achieved)
    # The scheduler could not serve this camera's detections at the rate asked for (nor at the
    # camera's own frame rate, where that is lower) over the last 10 s: the box is overloaded.
    falling_behind: bool = False
    # Motion-gated detection: "motion" (something moves or a face is tracked: detect_fps),
    # "idle" (idle_detect_fps), or "always" (motion off: detect_fps whatever happens).
    detect_mode: str = "always"
    motion_percent: float | None = None  # share of the (zone's) picture moving in the newest frame

    def to_json(self) -> dict[str, object]:
        return {k: (round(v, 2) if isinstance(v, float) else v) for k, v in asdict(self).items()}


@dataclass(frozen=True)
class AlertPictures:
    """The pictures of an alert, for the sinks to store: references, never copied here."""

    alert: Alert
    face: np.ndarray | None  # BGR
    frame: np.ndarray  # BGR, the whole frame the alert came from


SinkItem = TrackEvent | Alert | Stats | AlertPictures


class ClipAlerts(Protocol):
    def alert(self, alert_id: str, ts: float) -> str: ...


class LiveViewLike(Protocol):
    def update(self, image: np.ndarray | Frame, faces: Faces, identities: list[Identity], fps: float) -> None: ...


class Sink(Protocol):
    def handle(self, item: SinkItem) -> None: ...

    def close(self) -> None: ...


def rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


class Pipeline:
    """`start()`, then the scheduler's `poll()` and `detect()`, then `stop()`."""

    def __init__(self, source: FrameSource, tracking: FaceTracking, alerts: AlertEngine, sinks: list[Sink],
                 detect_fps: float, stats_interval_s: float = 10.0, queue_size: int = 1000) -> None:
        self.source = source
        # With detect and record roles: the main stream, recorded for clips and never decoded
        # here; boxes found on `source` (the substream) are scaled to its pictures.
        self.record_source: FrameSource | None = None
        self.camera_config: CameraConfig | None = None  # the camera's settings, for what status says
        self._detect_size: tuple[int, int] | None = None
        self.tracking = tracking
        self.alerts = alerts
        self.sinks = sinks
        self.detect_interval = 1.0 / detect_fps
        # Motion gating (None: detect at detect_fps always): while nothing moves and no track is
        # alive, detections come every idle_interval; the first frame that moves is detected at once.
        self.motion: MotionDetector | None = None
        self.idle_interval = self.detect_interval
        # An idle heartbeat is skipped while the picture is as the last whole-frame detection
        # saw it (that detection would find the same), for at most this long; 0: never skipped.
        self.idle_unchanged_s = 0.0
        self._last_look = float("-inf")  # capture time of the last whole-frame detection
        self._cut_checked_at = float("-inf")  # capture time of the last frame checked for a cut
        self.heartbeats_skipped = 0
        self.last_motion: Motion = NO_MOTION
        self._onset = False  # the due frame is the first that moved after a quiet spell
        # Detect only around the motion and the tracked faces (motion.detect_crops), except on
        # the idle heartbeat, after a cut, and when they would cover most of the frame.
        self.crops = False
        self._due_motion: Motion = NO_MOTION  # the motion of the due frame
        self._whole_next = True  # the next detection takes the whole frame (start, after a cut)
        self._started_at = time.monotonic()
        self.crop_detections = 0
        self._due_at = float("-inf")
        self.stats_interval_s = stats_interval_s
        self._detection_enabled = True
        self._enabled_at = float("-inf")  # detection last switched back on: the shortfall counts from then
        self.recent: deque[dict[str, object]] = deque(maxlen=50)  # recent events, for the status page
        self.last_stats: Stats | None = None
        self.view = Faces.empty()  # faces in the newest frame: detected, or predicted between detections
        self.view_identities: list[Identity] = []
        self.on_frame: list[Callable[[FrameResult], None]] = []
        self.live: LiveViewLike | None = None  # the stream's live view, when there is one
        self.keep_pictures = False  # a media sink stores alert pictures
        self.clips: ClipAlerts | None = None  # the clip recorder, when clips are on
        self._outbox: queue.Queue[SinkItem | None] = queue.Queue(maxsize=queue_size)
        self._threads: list[threading.Thread] = []
        self.due: Frame | None = None  # the newest frame whose detection is due, waiting for its turn
        self._ended = False  # a file that does not loop has been read and processed to its end
        self._next_stats = time.monotonic() + stats_interval_s
        self._last_detect = float("-inf")
        self._processed: deque[float] = deque(maxlen=100)
        # (when, frames the source had read): the camera's own rate, counting the frames a busy
        # scheduler never took (replaced in the mailbox), sampled on every poll.
        self._read: deque[tuple[float, int]] = deque(maxlen=1000)
        self._latency_ms = 0.0
        self._embeddings_mark = (time.monotonic(), 0)
        self._cpu_mark = (time.monotonic(), sum(os.times()[:2]))
        self.dropped_sink_items = 0
        self.failed_frames = 0
        self._last_failure_log = float("-inf")

    # -- lifecycle --------------------------------------------------------------------------
    def start(self) -> None:
        self._started_at = time.monotonic()
        self.source.start()
        if self.record_source is not None:
            self.record_source.start()
        thread = threading.Thread(target=self._dispatch, name=f"edged-sinks-{self.camera}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def request_stop(self) -> None:
        """Asks the sources to stop reading, without waiting (stop() finishes the job)."""
        self.source.request_stop()
        if self.record_source is not None:
            self.record_source.request_stop()

    def stop(self, timeout: float = 5.0) -> None:
        """Stops reading, ends every track (their events still reach the sinks), flushes. The
        scheduler has stopped calling this pipeline before."""
        self.source.stop()
        if self.record_source is not None:
            self.record_source.stop()
        self.tracking.finish()
        for event in self.tracking.take_events():
            self._emit(event)
        closer = getattr(self.clips, "close", None)
        if closer is not None:
            closer()  # the clip being recorded is finished with what it has
        self._outbox.put(None)
        self._threads[0].join(timeout)
        for sink in self.sinks:
            try:
                sink.close()
            except Exception:  # a sink failing to close must not stop the others
                log.exception("closing %s failed", type(sink).__name__)

    @property
    def finished(self) -> bool:
        """A video file that does not loop has been read to its end and processed."""
        return self._ended

    @property
    def camera(self) -> str:
        return self.source.settings.camera

    # -- the scheduler's calls (one worker at a time per camera) ---------------------------------
    @property
    def due_at(self) -> float:
        """When this camera's next detection was due (capture clock): the scheduler serves the
        camera that has waited longest past its due time first."""
        return self._due_at

    @property
    def active(self) -> bool:
        """Something moves, or a face is tracked: detection runs at detect_fps."""
        return self._active_with(self.last_motion)

    def _active_with(self, motion: Motion) -> bool:
        return self.motion is None or motion.moving or bool(self.tracking.tracker.tracks)

    @property
    def interval(self) -> float:
        """Seconds between detections now: detect_fps's while active, idle_detect_fps's otherwise."""
        return self.detect_interval if self.active else self.idle_interval

    def _look_for_motion(self, frame: Frame) -> None:
        """The frame's motion, kept as `last_motion`."""
        if self.motion is not None:
            grey = frame.small_grey(self.motion.settings.frame_height)
            self.last_motion = self.motion.check(grey, frame.size)

    def _may_be_cut(self, frame: Frame) -> bool:
        """Whether this frame needs the cut check: every frame while a face is tracked (a cut
        must end its track on that frame); otherwise only frames in which motion saw a change
        (movement or lighting), and a quiet frame once a second. A cut to a picture of the same
        brightness, which motion does not see, is then found within a second, when no track
        can cross it; and the reference stays fresh, so that slow changes (dusk) are not
        taken for a cut when something moves again."""
        seen = self.last_motion
        if (self.motion is None or seen.moving or seen.lighting_change or self.tracking.tracker.tracks
                or frame.ts - self._cut_checked_at >= 1.0):
            self._cut_checked_at = frame.ts
            return True
        return False

    def poll(self, now: float) -> None:
        """Takes the newest frame, if any: checks it for a cut, keeps it as `due` when its
        detection is due (a newer frame replaces a waiting one), else shows it with the tracked
        boxes moved on; with no frames, tracks still end on time."""
        frame = self.source.next_frame(timeout=0)
        self._read.append((now, self.source.stats.frames))
        if frame is not None:
            self._detect_size = frame.size
            previous = self.last_motion
            self._look_for_motion(frame)
            if self._may_be_cut(frame):
                self._check_cut(frame)
            # Motion starting after a quiet spell (no motion, no track, a cut having ended any):
            # that frame is detected at once.
            onset = self.last_motion.moving and not self._active_with(previous)
            interval = self.interval
            if not onset and frame.ts - self._last_detect >= interval and self._unchanged(frame):
                # The heartbeat's tick passes without a detection: nothing to find that the
                # last look did not.
                self._last_detect = frame.ts
                self.heartbeats_skipped += 1
            if self.detection_enabled and self._boxes_known(now) and (
                    onset or frame.ts - self._last_detect >= interval):
                if self.due is None:
                    self._due_at = frame.ts if onset else self._last_detect + interval
                self._onset = self._onset or onset
                self.due = frame
                self._due_motion = self.last_motion
            else:
                # Between detections the tracker moves the boxes (for the live view, which
                # converts the frame only when someone watches).
                self.view = self.tracking.tracker.predict(frame.ts)
                self._show(frame, self.view, [self.tracking.identity(int(t)) for t in self.view.track_id])
        elif self.due is None:
            for event in self.tracking.tick(now):
                self._emit(event)
            if self.source.stats.ended:
                self._ended = True
        if now >= self._next_stats:
            self._next_stats = now + self.stats_interval_s
            self._put(self.stats())

    def detect(self) -> None:
        """Runs detection and tracking on the due frame."""
        frame, self.due = self.due, None
        if frame is None:
            return
        # Ideal ticks, not "since the last frame used", so the rate asked for is the rate run;
        # motion after a quiet spell starts the ticks again from its frame.
        interval = self.interval
        if self._onset or self._last_detect == float("-inf"):  # the first detection starts the ticks too
            self._last_detect, self._onset = frame.ts, False
        else:
            self._last_detect = max(self._last_detect + interval, frame.ts - interval)
        crops = self._regions(frame)
        try:
            result = self.tracking.process(frame.image, frame.ts, frame.index, crops)
        except Exception:  # one bad frame must not end the daemon; say so, at most once a minute
            self._failed(frame.index)
            return
        if crops is None and self.motion is not None:
            self.motion.look_taken(frame.small_grey(self.motion.settings.frame_height))
            self._last_look = frame.ts
        self._latency_ms = (time.monotonic() - frame.ts) * 1000
        self._processed.append(time.monotonic())
        self.view = result.faces
        for event in result.events:
            self._emit(event, frame)
        for hook in self.on_frame:
            hook(result)
        self._show(frame, result.faces, result.identities)

    def _unchanged(self, frame: Frame) -> bool:
        """An idle heartbeat with nothing new to see: no motion, no track, and the picture as
        the last whole-frame detection saw it, which was at most idle_unchanged_s ago."""
        if self.motion is None or self.active or frame.ts - self._last_look >= self.idle_unchanged_s:
            return False
        grey = frame.small_grey(self.motion.settings.frame_height)
        return not self.motion.changed_since_look(grey, frame.size)

    def _boxes_known(self, now: float) -> bool:
        """With a recorded main stream, events give boxes in its pixels: detection waits for
        its size (it opens in a second or two), at most RECORD_WAIT_S, so that the first
        alert's box is not in the substream's pixels."""
        if self.record_source is None or self.record_source.size is not None:
            return True
        return now - self._started_at >= RECORD_WAIT_S

    def _regions(self, frame: Frame) -> list[tuple[int, int, int, int]] | None:
        """Where to detect on this frame: crops around its motion and the tracked faces, or
        None for the whole frame."""
        whole, self._whole_next = self._whole_next, False
        if not self.crops or whole or not self._due_motion.moving:  # the idle heartbeat takes it all
            return None
        tracked = self.tracking.tracker.predict(frame.ts).xyxy.tolist()
        crops = regions(self._due_motion.boxes, tracked, frame.size)
        self.crop_detections += crops is not None
        return crops

    def _check_cut(self, frame: Frame) -> None:
        """Detection or not: a hard cut ends every track (no name crosses it)."""
        try:
            # A small colour sample is all a cut needs: no full-size conversion for it.
            cut = self.tracking.observe(frame.small_bgr(CUT_ROWS), frame.ts)
        except Exception:
            self._failed(frame.index)
            return
        if cut:
            self._whole_next = True  # a new shot: nothing known about where faces are
            events = self.tracking.take_events()
            log.warning("%s: the picture changed at once (camera moved, switched or covered?): %d track(s) ended",
                        self.source.settings.camera, len([e for e in events if e.kind == "ended"]))
            for event in events:
                self._emit(event, frame)

    def _show(self, image: np.ndarray | Frame, faces: Faces, identities: list[Identity]) -> None:
        self.view_identities = identities
        if self.live is not None:
            self.live.update(image, faces, identities, self.recent_fps())

    @property
    def detection_enabled(self) -> bool:
        return self._detection_enabled

    @detection_enabled.setter
    def detection_enabled(self, on: bool) -> None:
        if on and not self._detection_enabled:
            self._enabled_at = time.monotonic()
        self._detection_enabled = on

    def recent_fps(self) -> float:
        """Detections per second over the last 10 s."""
        now = time.monotonic()
        recent = [t for t in self._processed if now - t <= 10]
        return (len(recent) - 1) / (recent[-1] - recent[0]) if len(recent) > 1 and recent[-1] > recent[0] else 0.0

    def camera_fps(self) -> float:
        """Frames the camera delivered per second over the last 10 s."""
        now = time.monotonic()
        recent = [(t, n) for t, n in self._read if now - t <= 10]
        if len(recent) < 2 or recent[-1][0] <= recent[0][0]:
            return 0.0
        return (recent[-1][1] - recent[0][1]) / (recent[-1][0] - recent[0][0])

    def _failed(self, index: int) -> None:
        self.failed_frames += 1
        now = time.monotonic()
        if now - self._last_failure_log >= 60:
            self._last_failure_log = now
            log.exception("processing frame %d failed (%d frames failed so far)", index, self.failed_frames)

    def box_scale(self) -> tuple[float, float]:
        """From detection pixels to the recorded stream's: (1, 1) without a separate one."""
        record = self.record_source.size if self.record_source is not None else None
        if record is None or self._detect_size is None:
            return 1.0, 1.0
        return record[0] / self._detect_size[0], record[1] / self._detect_size[1]

    def view_scaled(self, size: tuple[int, int]) -> Faces:
        """The faces in view with boxes in the pixels of a picture `size` = (width, height) wide
        (the recorded stream's, when detection runs on a substream)."""
        if self._detect_size is None or size == self._detect_size:
            return self.view
        sx, sy = size[0] / self._detect_size[0], size[1] / self._detect_size[1]
        scale = np.array([sx, sy, sx, sy], np.float32)
        return replace(self.view, xyxy=self.view.xyxy * scale, landmarks=self.view.landmarks * scale[:2])

    def _emit(self, event: TrackEvent, frame: Frame | None = None) -> None:
        sx, sy = self.box_scale()
        if (sx, sy) != (1.0, 1.0):  # events speak in the recorded stream's pixels, like its clips
            x1, y1, x2, y2 = event.box
            event = replace(event, box=(x1 * sx, y1 * sy, x2 * sx, y2 * sy))
        self.recent.append({"type": event.kind, **event.to_json()})
        self._put(event)
        for alert in self.alerts.handle(event):
            log.info("alert: %s on %s (track %d)", alert.who, alert.camera, alert.track_id)
            if frame is not None:
                alert = replace(alert, frame_index=frame.index)
                if self.clips is not None:
                    alert = replace(alert, clip="clips/" + self.clips.alert(alert.id, frame.ts))
                if self.keep_pictures:
                    alert = replace(alert, snapshot=f"media/{alert.id}-face.jpg", frame=f"media/{alert.id}-frame.jpg")
                    self._put(AlertPictures(alert, self.tracking.thumbnail(alert.track_id), frame.image))
            self.recent.append({"type": "alert", **alert.to_json()})
            self._put(alert)

    def _put(self, item: SinkItem) -> None:
        try:
            self._outbox.put_nowait(item)
        except queue.Full:  # sinks far behind: drop rather than stall inference
            self.dropped_sink_items += 1

    # -- sink thread ------------------------------------------------------------------------
    def _dispatch(self) -> None:
        while True:
            item = self._outbox.get()
            if item is None:
                return
            for sink in self.sinks:
                try:
                    sink.handle(item)
                except Exception:  # one sink's bug must not silence the others
                    log.exception("%s failed on %s", type(sink).__name__, type(item).__name__)

    # -- statistics -------------------------------------------------------------------------
    def stats(self) -> Stats:
        now = time.monotonic()
        fps = self.recent_fps()
        then, count = self._embeddings_mark
        embeddings = self.tracking.reid.embeddings
        per_s = (embeddings - count) / max(now - then, 1e-6)
        self._embeddings_mark = (now, embeddings)
        cpu_then, cpu_used = self._cpu_mark
        cpu_now = sum(os.times()[:2])
        cpu = 100 * (cpu_now - cpu_used) / max(now - cpu_then, 1e-6) / (os.cpu_count() or 1)
        self._cpu_mark = (now, cpu_now)
        tracks: list[dict[str, object]] = []
        for track_id, track in self.tracking.tracker.tracks.items():
            identity = self.tracking.identity(track_id)
            tracks.append({"track_id": track_id, "person": identity.person, "similarity": round(identity.similarity, 3),
                           "confirmed": track.confirmed, "box": [round(float(v), 1) for v in track.xyxy]})
        camera_fps = self.camera_fps()
        wanted = 1.0 / self.interval
        # Detection switched back on less than the measuring window ago: the off time is no shortfall.
        settled = self.detection_enabled and now - self._enabled_at >= 10
        # Idle heartbeats skipped on an unchanged picture are no shortfall either.
        settled = settled and (self.active or not self.idle_unchanged_s)
        latency = self._latency_ms if self.detection_enabled else None
        self.last_stats = Stats(time.time(), self.camera, fps, self.source.stats.frames,
                                self.source.stats.skipped, latency, per_s, len(tracks), tracks, cpu,
                                rss_mb(), self.source.stats.connected, self.tracking.cut_count,
                                camera_fps, wanted, falling_behind(wanted, fps, camera_fps, settled),
                                self.detect_mode, self.motion_percent)
        return self.last_stats

    @property
    def detect_mode(self) -> str:
        return "always" if self.motion is None else "motion" if self.active else "idle"

    @property
    def motion_percent(self) -> float | None:
        return None if self.motion is None else round(100 * self.last_motion.fraction, 2)


def falling_behind(wanted: float, achieved: float, camera_fps: float, enabled: bool) -> bool:
    """Detections ran at under 90% of what was asked for, where the camera gave frames enough."""
    possible = min(wanted, camera_fps)
    return enabled and camera_fps > 0 and achieved < 0.9 * possible
