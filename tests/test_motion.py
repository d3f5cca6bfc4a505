"""Motion-gated detection: the motion detector on synthetic pictures (noise, lighting, zones),
then a camera's pipeline on scenario videos with sensor noise, gated and always on, with the
real detector and embedder: idle scenes are detected rarely, someone walking in is detected at
once, and the same people get the same names."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from scenarios import Actor, render, walk
from services import gallery_copy

from edged.alerts import AlertEngine, AlertSettings
from edged.engine import EngineOptions, FaceEngine
from edged.gallery import Gallery
from edged.io.source import SourceStats
from edged.pipeline import NO_IDLE_DETECTION_S, Pipeline
from edged.tracking.faces import FaceTracking, TrackingSettings
from edged.types import Frame
from edged.vision.detector import DetectorSettings
from edged.vision.motion import MotionDetector, MotionSettings

FPS = 25.0
SIZE = (640, 360)


def grey_frames(count: int, noise: float, seed: int = 3) -> list[np.ndarray]:
    """A static wall-like picture with fresh sensor noise in every frame."""
    rng = np.random.default_rng(seed)
    wall = cv2.GaussianBlur(rng.normal(120, 25, (120, 213)), (0, 0), 3)
    return [np.clip(wall + rng.normal(0, noise, wall.shape), 0, 255).astype(np.uint8) for _ in range(count)]


def test_sensor_noise_is_no_motion_and_a_moving_square_is():
    detector = MotionDetector()
    frames = grey_frames(60, noise=6)
    assert not any(detector.check(f, SIZE).moving for f in frames)
    moved = frames[-1].copy()
    moved[40:70, 100:130] = 250  # something bright, 30 x 30 sampled pixels
    found = detector.check(moved, SIZE)
    assert found.moving and len(found.boxes) == 1
    x1, y1, x2, y2 = found.boxes[0]
    sx, sy = SIZE[0] / 213, SIZE[1] / 120
    assert abs(x1 - 100 * sx) < 4 * sx and abs(y1 - 40 * sy) < 4 * sy  # in the full frame's pixels
    assert abs(x2 - 130 * sx) < 4 * sx and abs(y2 - 70 * sy) < 4 * sy


def test_a_change_of_lighting_is_not_motion_and_the_background_follows_it():
    detector = MotionDetector()
    frames = grey_frames(30, noise=4)
    for frame in frames:
        detector.check(frame, SIZE)
    brighter = [np.clip(f.astype(np.int16) + 70, 0, 255).astype(np.uint8) for f in grey_frames(10, 4, seed=4)]
    first = detector.check(brighter[0], SIZE)
    assert first.lighting_change and not first.moving
    assert not any(detector.check(f, SIZE).moving for f in brighter[1:])  # the new light is the background now


def test_a_slow_arrival_motion_misses_still_differs_from_the_last_look():
    """Something that appears too slowly for the adapting background (a slow fade, a person
    creeping in) is not motion, but the picture differs from the last whole-frame detection's,
    so the idle heartbeat is not skipped; sensor noise alone leaves it unchanged."""
    detector = MotionDetector()
    frames = grey_frames(800, noise=6)
    detector.check(frames[0], SIZE)
    detector.look_taken(frames[0])
    moving, unchanged_noise = [], []
    for n, frame in enumerate(frames[1:], 1):
        picture = frame.astype(np.int16)
        picture[40:70, 100:130] += min(n // 8, 90)  # +1 every 8 frames, up to +90
        picture = np.clip(picture, 0, 255).astype(np.uint8)
        moving.append(detector.check(picture, SIZE).moving)
        if n < 80:  # below the threshold yet: noise and a faint start
            unchanged_noise.append(not detector.changed_since_look(picture, SIZE))
    assert not any(moving), "the background took the slow change in"
    assert all(unchanged_noise)
    assert detector.changed_since_look(picture, SIZE)


def test_motion_outside_the_zone_does_not_count():
    zone = ((0.5, 0.0), (1.0, 0.0), (1.0, 1.0), (0.5, 1.0))  # the right half, in fractions
    detector = MotionDetector(MotionSettings(), zone)
    frames = grey_frames(20, noise=4)
    for frame in frames:
        detector.check(frame, SIZE)
    left = frames[-1].copy()
    left[40:70, 20:50] = 250
    assert not detector.check(left, SIZE).moving
    right = frames[-1].copy()
    right[40:70, 150:180] = 250
    assert detector.check(right, SIZE).moving


class VideoFrames:
    """A video file's frames with timestamps of the video's own clock (index / fps), so that a
    run is the same on a loaded machine; what the pipeline asks of a source, and no more."""

    def __init__(self, path, camera: str = "door") -> None:
        self.capture = cv2.VideoCapture(str(path))
        self.settings = type("Settings", (), {"camera": camera})()
        self.stats = SourceStats(connected=True)
        self.index = 0

    def next_frame(self, timeout: float) -> Frame | None:
        ok, image = self.capture.read()
        if not ok:
            self.stats.ended = True
            return None
        frame = Frame(self.settings.camera, self.index, self.index / FPS, image)
        self.index += 1
        self.stats.frames += 1
        return frame


def run(video, engine, gallery_path, motion: bool, crops: bool = True,
        pipelines: list[Pipeline] | None = None,
        idle_interval: float = 1 / 0.5,
        idle_unchanged_s: float = 0.0) -> tuple[list[int], list[tuple[str | None, int]], int]:
    """The pipeline as the scheduler drives it, one poll per frame: (frame indices detected,
    (person, track) of every confirmed track, tracks started); `pipelines` collects it."""
    with Gallery(gallery_path) as gallery:
        tracking = FaceTracking(engine, gallery, TrackingSettings(detector=engine.detector.settings),
                                camera="door", keep_records=False)
        pipeline = Pipeline(VideoFrames(video), tracking, AlertEngine(AlertSettings("none")), [], detect_fps=5.0)
        if motion:
            pipeline.motion = MotionDetector(MotionSettings())
            pipeline.idle_interval = idle_interval
            pipeline.idle_unchanged_s = idle_unchanged_s
            pipeline.crops = crops
        if pipelines is not None:
            pipelines.append(pipeline)
        detected: list[int] = []
        pipeline.on_frame.append(lambda result: detected.append(result.index))
        while not pipeline.source.stats.ended:
            pipeline.poll(pipeline.source.index / FPS)
            pipeline.detect()
        # pipeline.recent: every event the pipeline emitted, as the status page lists them.
        confirmed = {(e["person"], e["track_id"]) for e in pipeline.recent if e["type"] == "confirmed"}
        started = len({e["track_id"] for e in pipeline.recent if e["type"] == "started"})
    return detected, sorted(confirmed, key=lambda c: c[1]), started


@pytest.fixture(scope="module")
def engine():
    return FaceEngine(EngineOptions(detector=DetectorSettings.edge()))


def test_an_empty_scene_is_detected_rarely_and_someone_walking_in_at_once(engine, detector, enrolled_gallery,
                                                                          tmp_path):
    """5 s of an empty, noisy scene, then obama walks in: gated, the empty part costs a few
    detections instead of 25, and obama's first detection comes no later than one detect_fps
    interval (5 frames) after the always-on detector's."""
    video = render(tmp_path / "walk-in.mp4", [Actor("obama", "obama2.jpg", (walk(125, 230, 20, 480),))], 240,
                   detector, noise=5.0)
    gallery = gallery_copy(enrolled_gallery, tmp_path / "g")
    always, always_tracks, _ = run(video, engine, gallery, motion=False)
    gated, gated_tracks, _ = run(video, engine, gallery, motion=True)
    empty_always = [i for i in always if i < 125]
    empty_gated = [i for i in gated if i < 125]
    print("detections on the empty scene: always", len(empty_always), "gated", empty_gated)
    assert len(empty_always) >= 24 and len(empty_gated) <= 3, (empty_always, empty_gated)
    first_face = {name: min(i for i in runs if i >= 125) for name, runs in (("always", always), ("gated", gated))}
    print("first detection with obama in view:", first_face, always_tracks, gated_tracks)
    assert first_face["gated"] <= first_face["always"] + 5, first_face
    assert [p for p, _ in always_tracks] == [p for p, _ in gated_tracks] == ["obama"], (always_tracks, gated_tracks)
    # idle_detect_fps = 0: no heartbeat, only the first frame of the empty scene is detected,
    # and obama is found as soon as with the heartbeat.
    only_motion, only_motion_tracks, _ = run(video, engine, gallery, motion=True, idle_interval=NO_IDLE_DETECTION_S)
    assert [i for i in only_motion if i < 125] == [0], only_motion
    assert min(i for i in only_motion if i >= 125) == first_face["gated"]
    assert [p for p, _ in only_motion_tracks] == ["obama"], only_motion_tracks
    # The default idle_unchanged_s: heartbeats on a picture unchanged since the last look are
    # skipped; obama is found as soon.
    skipping, skipping_tracks, _ = run(video, engine, gallery, motion=True, idle_unchanged_s=30.0)
    assert [i for i in skipping if i < 125] == [0], skipping
    assert min(i for i in skipping if i >= 125) == first_face["gated"]
    assert [p for p, _ in skipping_tracks] == ["obama"], skipping_tracks


def test_scenario_people_and_names_are_the_same_gated(engine, scenario_video, enrolled_gallery, tmp_path):
    """The daemon tests' scenario (four people crossing, one leaving and coming back): motion
    gating, with crops around the motion and without, finds the same people with the same
    names, and loses no track."""
    gallery = gallery_copy(enrolled_gallery, tmp_path / "g")
    _, always, always_started = run(scenario_video, engine, gallery, motion=False)
    used: list[Pipeline] = []
    for crops in (False, True):
        _, gated, gated_started = run(scenario_video, engine, gallery, motion=True, crops=crops, pipelines=used)
        assert sorted(str(p) for p, _ in gated) == sorted(str(p) for p, _ in always), (crops, always, gated)
        assert gated_started == always_started, crops
    assert used[1].crop_detections > 0  # crops were really used


def test_crops_on_the_crowd_video_lose_no_track(engine, tmp_path):
    """The real crowd video at 1080p: detecting around the motion (at full resolution) finds at
    least the tracks the always-on detector finds on the whole frame scaled to 960 px."""
    from .conftest import DATA

    video = DATA / "video" / "crowd_1080p.mp4"
    used: list[Pipeline] = []
    _, always, always_started = run(video, engine, tmp_path / "a.db", motion=False)
    _, gated, gated_started = run(video, engine, tmp_path / "b.db", motion=True, crops=True, pipelines=used)
    print("crowd: confirmed always", len(always), "gated", len(gated), "started", always_started, gated_started,
          "crop detections", used[0].crop_detections)
    assert len(gated) >= len(always), (always, gated)


def test_quiet_frames_skip_the_cut_check_and_cuts_between_still_shots_are_found(engine, tmp_path):
    """Motion first: with no track, a frame in which nothing moved is no cut, so only about one
    quiet frame a second is checked for one. Three still, noisy shots, 80 frames each: the cut
    to a darker one is found on its frame (motion sees a change of lighting); the cut between
    two colours of the same brightness, which motion does not see, within a second."""
    from edged.io.video import encode

    rng = np.random.default_rng(7)
    frames = []
    # BGR: a green wall, a purple one of the same brightness (grey 110), then a dark blue one.
    for colour in ((90, 140, 60), (170, 80, 150), (120, 30, 20)):
        wall = cv2.GaussianBlur(rng.normal(0, 30, (SIZE[1], SIZE[0])), (0, 0), 4)[..., None] + colour
        frames += [np.clip(wall + rng.normal(0, 3, wall.shape), 0, 255).astype(np.uint8) for _ in range(80)]
    video = tmp_path / "three-shots.mp4"
    encode(frames, FPS, video, gop=50)
    with Gallery(tmp_path / "g.db") as gallery:
        tracking = FaceTracking(engine, gallery, TrackingSettings(detector=engine.detector.settings), camera="door")
        pipeline = Pipeline(VideoFrames(video), tracking, AlertEngine(AlertSettings("none")), [], detect_fps=5.0)
        pipeline.motion = MotionDetector(MotionSettings())
        checked: list[int] = []
        check = tracking.cut_detector.check

        def counted(image: np.ndarray) -> bool:
            checked.append(pipeline.source.index - 1)
            return check(image)

        tracking.cut_detector.check = counted  # type: ignore[method-assign]
        while not pipeline.source.stats.ended:
            pipeline.poll(pipeline.source.index / FPS)
    cuts = [round(t * FPS) for t in tracking.cuts]
    print("frames checked for a cut:", checked, "cuts at frames", cuts)
    assert len(cuts) == 2 and 80 <= cuts[0] <= 80 + FPS and cuts[1] == 160, cuts
    assert len(checked) <= 14, checked


def test_the_daemon_says_when_nothing_moves(detector, enrolled_gallery, tmp_path):
    """A daemon on an empty, noisy scene: /status, MQTT's stats figures and `edged status` say
    that nothing moves and detection runs at idle_detect_fps; a wrong motion key is refused by
    name before anything starts."""
    from services import Daemon, config, free_port, wait_until

    from .conftest import run_edged

    video = render(tmp_path / "empty.mp4", [], 100, detector, noise=5.0)
    port = free_port()
    text = config(video, gallery_copy(enrolled_gallery, tmp_path / "g"), port) + "[motion]\nidle_detect_fps = 0.25\n"
    daemon = Daemon(tmp_path, text)
    daemon.start()
    try:
        def idle():
            stats = ((daemon.status(port) or {}).get("stats") or {})
            return stats if stats.get("detect_mode") == "idle" else None

        stats = wait_until(idle, 60, "the daemon idle on an empty scene")
        assert stats["detect_fps_target"] == 0.25 and 0 <= stats["motion_percent"] < 1, stats
        assert not stats["falling_behind"], "heartbeats skipped on an unchanged picture are no shortfall"
        said = run_edged("status", "--url", f"http://127.0.0.1:{port}/status").stdout
        assert "of 0.2/s" in said and "nothing moves" in said, said
    finally:
        assert daemon.stop() == 0, daemon.text()[-3000:]
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("idle_detect_fps = 0.25", "idle_detect_fps = 0.01\nthreshold = 300"))
    refused = run_edged("config", "check", "--config", str(bad))
    assert refused.returncode == 78
    assert "motion.idle_detect_fps: 0.01 is out of range" in refused.stderr, refused.stderr
    assert "motion.threshold: 300 is out of range" in refused.stderr, refused.stderr
