"""The live view and web page: nothing encoded while nobody watches, privacy blur, the token
and basic auth, MJPEG frames that decode, and the page in a real headless Chromium."""

import base64
import json
import urllib.error
import urllib.request

import cv2
import numpy as np
import pytest
from services import Daemon, RtspServer, config, free_port, gallery_copy, wait_until

from edged.errors import ConfigError
from edged.sinks.stream import LiveView, check_exposure
from edged.sinks.web import WebServer
from edged.types import Identity

from .conftest import DATA, chromium_page, live_image_shown

TOKEN = "k3T9-vq0xZpL_8sWmA2r"


def frame_and_faces(detector):
    image = cv2.imread(str(DATA / "images" / "obama_and_biden.jpg"))
    faces = detector.detect(image)
    faces = faces[np.argsort(-faces.area)[:2]]  # obama and biden, the two large faces
    faces.track_id = np.arange(1, len(faces) + 1)
    return image, faces


def test_nothing_is_encoded_while_nobody_watches(detector):
    image, faces = frame_and_faces(detector)
    view = LiveView()
    for _ in range(50):
        view.update(image, faces, [Identity("obama", 0.7)] * len(faces), 5.0)
    assert view.encoded == 0
    first = view.jpeg()
    again = view.jpeg()
    assert first is not None and first == again and view.encoded == 1  # one encode, shared
    decoded = cv2.imdecode(np.frombuffer(first[1], np.uint8), cv2.IMREAD_COLOR)
    # A 2000-px photo goes out at most stream.max_width (1280) wide, boxes scaled with it.
    assert decoded.shape == (round(image.shape[0] * 1280 / image.shape[1]), 1280, 3)
    assert LiveView(max_width=0).jpeg(timeout=0.1) is None


def test_many_viewers_share_one_encoding_per_frame(detector):
    import threading

    image, faces = frame_and_faces(detector)
    view = LiveView(max_viewers=3)
    view.update(image, faces, [Identity("obama", 0.7)] * len(faces), 5.0)
    got = []
    threads = [threading.Thread(target=lambda: got.append(view.jpeg(0, timeout=10))) for _ in range(50)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(got) == 50 and all(g == got[0] and g is not None for g in got)
    assert view.encoded == 1, f"{view.encoded} encodings of one frame for 50 viewers"
    assert [view.watch() for _ in range(4)] == [True, True, True, False], "viewers are bounded"


def test_each_viewer_may_ask_for_a_narrower_picture(detector):
    image, faces = frame_and_faces(detector)
    view = LiveView(max_width=1280)
    view.update(image, faces, [Identity("obama", 0.7)] * len(faces), 5.0)

    def width(asked):
        frame = view.jpeg(0, timeout=5, width=asked)
        return cv2.imdecode(np.frombuffer(frame[1], np.uint8), cv2.IMREAD_COLOR).shape[1]

    assert [width(a) for a in (500, 480, 100, 5000, 0)] == [480, 480, 320, 1280, 1280]
    assert view.encoded == 3  # one encoding per width and frame, shared by every viewer at it


def test_labels_fit_their_faces_and_do_not_overlap():
    from edged.vision.draw import MIN_SCALE, fit_label, place_label

    scale, _, width, _, _ = fit_label("#12 José Núñez-Fernández 0.83", 60, 2)
    assert width <= 1.25 * 60 or scale == MIN_SCALE
    assert fit_label("#1 bob 0.91", 300, 2)[0] == 1.0  # a big face keeps the normal size
    taken = []
    boxes = [(100, 100, 180, 180), (150, 110, 230, 190), (120, 95, 200, 175)]  # three faces close together
    for box in boxes:
        taken.append(place_label(box, (70, 14), (640, 360), taken))
    for i, a in enumerate(taken):
        for b in taken[i + 1:]:
            assert not (a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]), taken
    assert all(r[1] >= 0 and r[3] <= 360 for r in taken)


def test_privacy_blur_hides_only_people_not_enrolled(detector):
    image, faces = frame_and_faces(detector)
    identities = [Identity("obama", 0.7), Identity(None, 0.1)]
    view = LiveView(blur_unknowns=True, max_width=0)
    view.update(image, faces, identities, 5.0)
    picture = cv2.imdecode(np.frombuffer(view.jpeg()[1], np.uint8), cv2.IMREAD_COLOR)

    def sharpness(img, box):
        x1, y1, x2, y2 = (int(v) for v in box)
        inner = img[y1 + 10:y2 - 10, x1 + 10:x2 - 10]
        return cv2.Laplacian(cv2.cvtColor(inner, cv2.COLOR_BGR2GRAY), cv2.CV_64F).var()

    known, stranger = faces.xyxy[0], faces.xyxy[1]
    assert sharpness(picture, stranger) < sharpness(image, stranger) / 5
    assert sharpness(picture, known) > sharpness(image, known) / 2


def test_listening_beyond_loopback_needs_a_secret():
    with pytest.raises(ConfigError, match="stream.bind = '0.0.0.0' listens beyond this machine"):
        check_exposure("0.0.0.0", "", "")
    check_exposure("0.0.0.0", TOKEN, "")
    check_exposure("127.0.0.1", "", "")


def fetch(url, headers=None):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except OSError:  # nothing listening yet
        return 0, b""


def test_token_and_basic_auth(detector):
    image, faces = frame_and_faces(detector)
    view = LiveView()
    view.update(image, faces, [Identity(None, 0.1)] * len(faces), 5.0)
    server = WebServer("127.0.0.1", 0, lambda: {"ok": True}, view, token=TOKEN, username="me", password="pw")
    server.start()
    base = f"http://127.0.0.1:{server.port}"
    try:
        assert fetch(f"{base}/status")[0] == 401
        assert fetch(f"{base}/status?token=wrong")[0] == 401
        assert fetch(f"{base}/status?token={TOKEN}") == (200, b'{"ok": true}')
        assert fetch(f"{base}/status", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        good = base64.b64encode(b"me:pw").decode()
        bad = base64.b64encode(b"me:nope").decode()
        assert fetch(f"{base}/snapshot.jpg", {"Authorization": f"Basic {good}"})[0] == 200
        assert fetch(f"{base}/snapshot.jpg", {"Authorization": f"Basic {bad}"})[0] == 401
        assert fetch(f"{base}/nothing?token={TOKEN}")[0] == 404
    finally:
        server.stop()


def mjpeg_frames(url: str, count: int, timeout: float = 20) -> list[np.ndarray]:
    frames: list[np.ndarray] = []
    buffer = b""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        assert response.headers["Content-Type"].startswith("multipart/x-mixed-replace")
        while len(frames) < count:
            buffer += response.read(4096)
            start, end = buffer.find(b"\xff\xd8"), buffer.find(b"\xff\xd9")
            if start >= 0 and end > start:
                frames.append(cv2.imdecode(np.frombuffer(buffer[start:end + 2], np.uint8), cv2.IMREAD_COLOR))
                buffer = buffer[end + 2:]
    return frames


def test_daemon_stream_status_and_page_in_chromium(scenario_video, enrolled_gallery, tmp_path):
    port = free_port()
    text = config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port).replace(
        "[stream]\n", '[stream]\ntoken = "let-me-in-0123456789"\n')
    daemon = Daemon(tmp_path, text)
    daemon.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: fetch(f"{base}/status?token=let-me-in-0123456789")[0] == 200, 60, "the web server")
        assert fetch(f"{base}/stream.mjpg")[0] == 401
        frames = mjpeg_frames(f"{base}/stream.mjpg?token=let-me-in-0123456789", 5)
        assert all(f is not None and f.shape == (360, 640, 3) for f in frames)
        phone = mjpeg_frames(f"{base}/stream.mjpg?token=let-me-in-0123456789&width=360", 2)
        assert all(f is not None and f.shape == (180, 320, 3) for f in phone)  # snapped down to 320
        assert fetch(f"{base}/stream.mjpg?token=let-me-in-0123456789&width=big")[0] == 400
        alerts = wait_until(lambda: [e for e in json.loads(fetch(f"{base}/status?token=let-me-in-0123456789")[1])[
            "recent_events"] if e["type"] == "alert"], 30, "an alert")
        for picture in (alerts[0]["snapshot"], alerts[0]["frame"]):
            status, body = wait_until(lambda p=picture: (lambda r: r if r[0] == 200 else None)(
                fetch(f"{base}/{p}?token=let-me-in-0123456789")), 10, f"{picture} to be stored")
            assert cv2.imdecode(np.frombuffer(body, np.uint8), cv2.IMREAD_COLOR) is not None
        assert fetch(f"{base}/{alerts[0]['snapshot']}")[0] == 401
        assert fetch(f"{base}/media/..%2Fgallery.db?token=let-me-in-0123456789")[0] == 404
        dom, picture = chromium_page(f"{base}/?token=let-me-in-0123456789", tmp_path)
    finally:
        daemon.stop()
    assert 'class="event"' in dom and "track" in dom, "the page lists no events"
    assert 'src="media/' in dom, "the page shows no alert snapshot"
    assert "camera" in dom and " fps · detections " in dom and "faces in view" in dom
    # Alerts lead the list: the first row is an alert.
    assert dom.index('class="alert"') < dom.index('class="event"') + 400
    assert live_image_shown(picture), "the live image is not on the page"


def test_rtsp_output_pushes_the_annotated_view(scenario_video, enrolled_gallery, tmp_path, monkeypatch):
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;udp")  # the test server serves UDP only
    server = RtspServer(scenario_video)
    server.start_server()  # edged itself publishes to it
    port = free_port()
    publish = f"rtsp://127.0.0.1:{server.source_port}/cam"
    text = config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port).replace(
        "[stream]\n", f'[stream]\nrtsp_url = "{publish}"\nrtsp_transport = "udp"\n')
    daemon = Daemon(tmp_path, text)
    daemon.start()
    try:
        def frames_from_server():
            capture = cv2.VideoCapture(server.url, cv2.CAP_FFMPEG)
            got = []
            while capture.isOpened() and len(got) < 20:
                ok, image = capture.read()
                if not ok:
                    break
                got.append(image)
            capture.release()
            return got if len(got) >= 20 else None

        frames = wait_until(frames_from_server, 120, "the pushed stream at the RTSP server")
    finally:
        daemon.stop()
        server.stop()
    assert all(f.shape == (360, 640, 3) for f in frames)
    # The annotated view: some frames carry the green label of a known person.
    green = [int((np.abs(f.astype(int) - (80, 200, 60)).sum(axis=2) < 60).sum()) for f in frames]
    assert max(green) > 300


def test_two_rtsp_test_servers_do_not_share_ports(scenario_video, monkeypatch):
    """The test RTSP server once fell back to UDP 20000 whatever it was told, so two of them
    (parallel tests) collided and answered DESCRIBE with 404. Both serve their stream at once."""
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;udp")
    servers = [RtspServer(scenario_video), RtspServer(scenario_video)]
    try:
        for server in servers:
            server.start()

        def both_readable():
            opened = [cv2.VideoCapture(server.url, cv2.CAP_FFMPEG) for server in servers]
            frames = [capture.read()[0] for capture in opened]
            for capture in opened:
                capture.release()
            return all(frames)

        wait_until(both_readable, 60, "frames from both test RTSP servers")
        assert servers[0].rtp_port != servers[1].rtp_port
    finally:
        for server in servers:
            server.stop()
