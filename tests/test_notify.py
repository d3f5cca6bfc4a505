"""Apprise notifications to a real local HTTP receiver (json://): the rendered message, the
attached face, retries, and a receiver that hangs stalling nothing."""

import base64
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np
import pytest
from services import Daemon, config, free_port, gallery_copy, wait_until

from edged.config import NotifyConfig
from edged.events import Alert
from edged.links import link_allows, link_key
from edged.sinks.notify import NotifySink, render, with_timeouts

from .conftest import DATA


class Receiver:
    """Collects POSTed JSON; `hang` makes it sit on requests, `fail` answers 500."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        self.hang = threading.Event()
        self.fail = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if outer.hang.is_set():
                    time.sleep(30)
                    return
                if outer.fail:
                    outer.fail -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.bodies.append(json.loads(data))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"json://127.0.0.1:{self.server.server_address[1]}/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.hang.clear()
        self.server.shutdown()


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def alert(snapshot="media/a-face.jpg", person="alice"):
    return Alert("door", 3, 1_700_000_000.0, 1_699_999_999.0, person, 0.81234, (0, 0, 10, 10),
                 "known" if person else "unknown", snapshot=snapshot)


def test_template_and_timeouts():
    text = render("${person} at ${camera} (${similarity}) ${snapshot_url} ${clip_url} ${nope}", alert(),
                  "http://box:8090/")
    assert text == "alice at door (0.81) http://box:8090/media/a-face.jpg none ${nope}"
    assert render("${person} ${similarity}", alert(person=None), "x") == "unknown n/a"
    clipped = Alert("door", 3, 1.0, 1.0, "alice", 0.8, (0, 0, 1, 1), "known", clip="clips/door-1.mp4")
    assert render("${clip_url}", clipped, "http://box") == "http://box/clips/door-1.mp4"
    assert render("${clip_url}", clipped, "http://box", lambda name: f"https://s3.example/{name}?sig") == (
        "https://s3.example/door-1.mp4?sig")
    assert with_timeouts("json://h/", 5) == "json://h/?cto=5&rto=5"
    assert with_timeouts("json://h/?rto=2", 5) == "json://h/?rto=2"


def test_message_and_attached_face(receiver, tmp_path):
    face = cv2.imread(str(DATA / "aligned" / "paul_rudd.png"))
    cv2.imwrite(str(tmp_path / "a-face.jpg"), face)
    sink = NotifySink(NotifyConfig(urls=[receiver.url], timeout_s=5), tmp_path, "http://box:8090")
    sink.handle(alert())
    wait_until(lambda: receiver.bodies, 15, "the notification")
    sink.close()
    body = receiver.bodies[0]
    assert body["title"] == "edged: alice at door"
    assert "alice was seen at door" in body["message"] and "http://box:8090/media/a-face.jpg" in body["message"]
    (attachment,) = body["attachments"]
    picture = cv2.imdecode(np.frombuffer(base64.b64decode(attachment["base64"]), np.uint8), cv2.IMREAD_COLOR)
    assert picture is not None and picture.shape == face.shape


def test_failures_are_retried(receiver, tmp_path):
    receiver.fail = 2
    sink = NotifySink(NotifyConfig(urls=[receiver.url], timeout_s=5, retries=3), tmp_path, "http://box")
    sink.handle(alert(snapshot=None))
    wait_until(lambda: receiver.bodies, 20, "the third try to get through")
    sink.close()
    assert sink.sent == 1 and sink.failed == 0


def test_only_the_failing_service_is_tried_again(receiver, tmp_path):
    broken = Receiver()
    broken.fail = 1000
    try:
        sink = NotifySink(NotifyConfig(urls=[receiver.url, broken.url], timeout_s=5, retries=2), tmp_path,
                          "http://box")
        sink.handle(alert(snapshot=None))
        wait_until(lambda: sink.failed == 1, 30, "the broken service to be given up")
        sink.close()
    finally:
        broken.close()
    assert len(receiver.bodies) == 1, "the working service got the message more than once"
    assert broken.fail == 1000 - 3, "the broken service was not tried three times"


def test_links_open_from_a_phone_and_the_frame_can_be_attached(receiver, tmp_path):
    frame = cv2.imread(str(DATA / "images" / "obama1.jpg"))
    cv2.imwrite(str(tmp_path / "a-frame.jpg"), frame)
    token = "0123456789abcdef-xyz"
    sink = NotifySink(NotifyConfig(urls=[receiver.url], timeout_s=5, attach="frame"), tmp_path,
                      "http://door-box:8090", link_key=link_key(token))
    clipped = Alert("door", 3, 1.0, 1.0, "alice", 0.8, (0, 0, 1, 1), "known", snapshot="media/a-face.jpg",
                    frame="media/a-frame.jpg", clip="clips/door-1.mp4")
    sink.handle(clipped)
    wait_until(lambda: receiver.bodies, 15, "the notification")
    sink.close()
    body = receiver.bodies[0]
    # Each link opens its own file only and never carries the token that administers the box.
    assert token not in body["message"]
    for path in ("media/a-face.jpg", "clips/door-1.mp4"):
        link = re.search(rf"http://door-box:8090/{re.escape(path)}\?exp=(\d+)&sig=(\w+)", body["message"])
        assert link, body["message"]
        assert link_allows(link_key(token), "/" + path, link[1], link[2])
        assert not link_allows(link_key(token), "/media/other.jpg", link[1], link[2])
        assert not link_allows(link_key("another-token-0123456"), "/" + path, link[1], link[2])
    (attachment,) = body["attachments"]
    picture = cv2.imdecode(np.frombuffer(base64.b64decode(attachment["base64"]), np.uint8), cv2.IMREAD_COLOR)
    assert picture.shape == frame.shape, "the whole frame is attached"


def test_a_hanging_receiver_blocks_nothing_and_times_out(receiver, tmp_path):
    receiver.hang.set()
    sink = NotifySink(NotifyConfig(urls=[receiver.url], timeout_s=1, retries=0), tmp_path, "http://box")
    started = time.monotonic()
    for _ in range(5):
        sink.handle(alert(snapshot=None))
    assert time.monotonic() - started < 0.1, "handing alerts over must not wait for the service"
    wait_until(lambda: sink.failed >= 1, 15, "the first notification to time out")
    sink._stop.set()


def test_daemon_notifies_and_keeps_going_while_the_receiver_hangs(receiver, scenario_video, enrolled_gallery,
                                                                  tmp_path):
    port = free_port()
    text = config(scenario_video, gallery_copy(enrolled_gallery, tmp_path), port, mode="knowns")
    text += f'[notify]\nurls = ["{receiver.url}"]\ntimeout_s = 2.0\nretries = 0\nbase_url = "http://edged.lan"\n'
    daemon = Daemon(tmp_path, text)
    daemon.start()
    try:
        wait_until(lambda: len(receiver.bodies) >= 2, 60, "notifications")
        people = {b["title"] for b in receiver.bodies}
        assert people <= {"edged: obama at door", "edged: biden at door", "edged: rose_leslie at door"}
        assert all(b["attachments"] for b in receiver.bodies), "the face is attached"
        assert all("http://edged.lan/media/" in b["message"] for b in receiver.bodies)
        receiver.hang.set()
        alerts_before = daemon.text().count("alert:")
        frames_before = daemon.status(port)["stats"]["frames"]
        time.sleep(9)  # more than one loop of the 8-second scenario
        assert daemon.status(port)["stats"]["frames"] > frames_before + 150, "frames stopped while it hung"
        assert daemon.text().count("alert:") > alerts_before, "alerts stopped while the receiver hung"
    finally:
        assert daemon.stop() == 0


def test_the_clip_link_says_recording_then_the_clip_is_announced(receiver, stamped_videos, enrolled_gallery,
                                                                 tmp_path):
    import urllib.error
    import urllib.request

    port = free_port()
    token = "0123456789abcdef-xyz"
    text = config(stamped_videos["packets"], gallery_copy(enrolled_gallery, tmp_path), port, mode="knowns",
                  loop=False).replace("[stream]\n", f'[stream]\ntoken = "{token}"\n')
    text += (f'[notify]\nurls = ["{receiver.url}"]\ntimeout_s = 5.0\nclip_ready = true\n'
             f'base_url = "http://127.0.0.1:{port}"\n[clips]\npre_roll_s = 1.0\npost_roll_s = 3.0\n')
    daemon = Daemon(tmp_path, text)
    daemon.start()
    try:
        first = wait_until(lambda: receiver.bodies, 60, "the alert's notification")[0]
        clip_url = next(w for w in first["message"].split() if "/clips/" in w)
        try:
            with urllib.request.urlopen(clip_url, timeout=5) as response:
                early = response.status
        except urllib.error.HTTPError as exc:
            early = exc.code
        ready = wait_until(lambda: [b for b in receiver.bodies if "clip ready" in b["title"]], 30,
                           "the clip-ready message")[0]
        link = ready["message"].split("ready: ", 1)[1].strip()
        with urllib.request.urlopen(link, timeout=5) as response:
            assert response.status == 200 and response.headers["Content-Type"] == "video/mp4"
        assert link.split("?")[0] == clip_url.split("?")[0]  # the same clip (each link signed when sent)
    finally:
        daemon.stop()
    assert early == 202, "while it records, the clip link answers 'recording, ready in N s'"


def test_a_hanging_service_costs_the_working_one_nothing(receiver, tmp_path):
    """A second service that accepts and never answers (30 s timeout): every alert reaches
    the working service while the hanging one is still on its first try."""
    hanging = Receiver()
    hanging.hang.set()
    try:
        sink = NotifySink(NotifyConfig(urls=[hanging.url, receiver.url], timeout_s=30, retries=3), tmp_path,
                          "http://box")
        for n in range(5):
            sink.handle(alert(snapshot=None, person=f"person{n}"))
        wait_until(lambda: len(receiver.bodies) == 5, 20, "all five at the working service")
        hung = sink.services[0]  # the URLs in their order
        assert hung.sent == 0 and hung.failed == 0, "the working service waited for the hanging one"
        assert [b["title"] for b in receiver.bodies] == [f"edged: person{n} at door" for n in range(5)]
    finally:
        sink._stop.set()
        hanging.hang.clear()
        hanging.close()
