"""The Python API (public names of `edged` only) on real photos and models, and the HTTP API of
a running daemon driven by the clients people already run: deepstack-python (what Home
Assistant's DeepStack face integration uses), compreface-sdk, and plain HTTP for the native
endpoints, with the refusals a hostile client meets."""

from __future__ import annotations

import contextlib
import http.client
import json
import socket
import time
import urllib.parse

import pytest
import requests
from services import Daemon, config, free_port, gallery_copy, wait_until

import edged

from .conftest import DATA

TOKEN = "api-test-token-0123456789abc"
FACES = DATA / "faces"
IMAGES = DATA / "images"
CONFIDENT = 0.95


def names(faces: list[edged.Face]) -> list[str]:
    """The names given (a photo's other faces, a face in the background, MTCNN's doubtful
    extras at 0.80-0.85, stay unnamed)."""
    return sorted(f.person for f in faces if f.person)


# -- the Python API ------------------------------------------------------------------------------
def test_python_api_enrolls_identifies_corrects_and_scans(tmp_path, scenario_video):
    with edged.Faces(tmp_path / "gallery.db") as faces:
        assert faces.identify(IMAGES / "obama_and_biden.jpg") and faces.people() == []
        enrolled = faces.enroll("obama", FACES / "obama" / "obama.jpg")
        assert enrolled.person == "obama" and enrolled.face_id > 0
        faces.enroll("biden", (FACES / "biden" / "biden.jpg").read_bytes())  # a file's bytes work too
        found = faces.identify(IMAGES / "obama_and_biden.jpg")
        assert names(found) == ["biden", "obama"]
        assert all(f.similarity is not None and f.similarity >= faces.threshold for f in found if f.person)
        assert all(f.person is None and f.similarity is None for f in faces.detect(IMAGES / "obama_and_biden.jpg"))
        # Someone never enrolled is nobody, with the similarity that kept them unnamed.
        (kit,) = faces.identify(IMAGES / "johnsnow_test1.jpg")
        assert kit.person is None and kit.similarity is not None and kit.similarity < faces.threshold

        # Corrections: "not obama" on obama's own second photo stops naming that face obama.
        second = FACES / "obama" / "obama2.jpg"
        assert faces.identify(second)[0].person == "obama"
        assert "is not obama" in faces.reject("obama", image=second)
        assert faces.identify(second)[0].person is None
        assert faces.person("obama").negatives == 1

        faces.rename("biden", "joe biden")
        assert [p.name for p in faces.people()] == ["joe biden", "obama"]
        stored = faces.faces("joe biden")
        assert len(stored) == 1 and stored[0].person == "joe biden"
        faces.delete_face(stored[0].id)
        assert faces.person("joe biden").faces == 0
        assert faces.delete("joe biden") == 0
        with pytest.raises(edged.EdgedError, match="no person named"):
            faces.person("joe biden")
        with pytest.raises(edged.EdgedError, match="no face found"):
            faces.enroll("nobody", _blank_jpeg())
        with pytest.raises(edged.EdgedError, match="stranger's id"):
            faces.enroll("unknown-3", FACES / "obama" / "obama.jpg")

    # A scan: who is in the video, and when (the scenario's actors, by their enrolled names).
    with edged.Faces(tmp_path / "scan.db") as faces:
        for person, photo in (("obama", "obama.jpg"), ("biden", "biden.jpg"), ("rose_leslie", "img1.jpg")):
            faces.enroll(person, FACES / person / photo)
        result = faces.scan(scenario_video, detect_fps=5)
        seen = {p.name: p for p in result.people}
        assert {"obama", "biden", "rose_leslie"} <= set(seen)
        assert all(p.intervals and p.last_seen > p.first_seen for p in seen.values())
        assert any(p.anonymous for p in result.people)  # paul_rudd was never enrolled


def test_python_api_tracks_a_video_and_a_programs_own_frames(tmp_path, scenario_video, monkeypatch, s3_server):
    import boto3
    import cv2

    with edged.Faces(tmp_path / "gallery.db") as faces:
        faces.enroll("obama", FACES / "obama" / "obama.jpg")
        frames = list(faces.track(scenario_video, detect_fps=5))
        events = [e for f in frames for e in f.events]
        assert all(isinstance(e, edged.TrackEvent) for e in events)
        obama = {face.track_id for f in frames for face in f.faces if face.person == "obama"}
        assert obama, "obama's track was named"
        started = {e.track_id for e in events if e.kind == "started"}
        ended = {e.track_id for e in events if e.kind == "ended"}
        assert obama <= started and started == ended  # every track begins and ends, the last at the end
        assert frames[-1].index == -1 and frames[-1].events
        assert [f.time for f in frames[:-1]] == sorted(f.time for f in frames[:-1])

        # A program's own frames (here read with OpenCV), at their own rate.
        capture = cv2.VideoCapture(str(scenario_video))
        own = []
        while len(own) < 60:
            ok, image = capture.read()
            if not ok:
                break
            own.append(image)
        capture.release()
        tracked = list(faces.track(iter(own), detect_fps=5, fps=25))
        assert len([f for f in tracked if f.index >= 0]) == 12  # every 5th of 60 frames
        assert any(face.track_id >= 0 for f in tracked for face in f.faces)

        # A scan of a clip in S3 (moto's server).
        for key, value in s3_server.items():
            monkeypatch.setenv(key, value)
        client = boto3.client("s3")
        client.create_bucket(Bucket="clips")
        client.upload_file(str(scenario_video), "clips", "door/scenario.mp4")
        result = faces.scan("s3://clips/door/scenario.mp4")
        assert result.video == "s3://clips/door/scenario.mp4" and "obama" in {p.name for p in result.people}
        with pytest.raises(edged.EdgedError, match="cannot fetch"):
            faces.scan("s3://clips/nope.mp4")


def _blank_jpeg() -> bytes:
    import cv2
    import numpy as np

    return cv2.imencode(".jpg", np.full((200, 200, 3), 128, np.uint8))[1].tobytes()


# -- a running daemon ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api_daemon(tmp_path_factory, scenario_video, enrolled_gallery):
    folder = tmp_path_factory.mktemp("api")
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, folder)
    text = config(scenario_video, gallery, port).replace(f"[stream]\nport = {port}\n",
                                                         f'[stream]\nport = {port}\ntoken = "{TOKEN}"\n')
    daemon = Daemon(folder, text)
    daemon.start()
    try:
        wait_until(lambda: call(port, "GET", "/api/v1/people")[0] == 200, 60, "the API to answer")
        yield port
    finally:
        daemon.stop()


def call(port: int, method: str, path: str, body: bytes | None = None, headers: dict[str, str] | None = None,
         token: str | None = TOKEN) -> tuple[int, dict]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        sent = dict(headers or {})
        if token:
            sent.setdefault("Authorization", f"Bearer {token}")
        connection.request(method, path, body=body, headers=sent)
        response = connection.getresponse()
        raw = response.read()
        assert response.getheader("Content-Type") == "application/json", raw[:200]
        return response.status, json.loads(raw)
    except OSError:
        return 0, {}
    finally:
        connection.close()


def test_deepstack_client_registers_recognizes_and_lists(api_daemon):
    from deepstack.core import DeepstackException, DeepstackFace

    face = DeepstackFace(ip="127.0.0.1", port=api_daemon, api_key=TOKEN, timeout=60)
    assert face.register("kit_harington", (FACES / "kit_harington" / "john1.jpeg").read_bytes()) == "face added"
    assert {"kit_harington", "obama", "biden", "rose_leslie"} <= set(face.get_registered_faces())
    predictions = face.recognize((IMAGES / "kit_with_rose.jpg").read_bytes())
    named = [p for p in predictions if p["userid"] != "unknown"]
    assert sorted(p["userid"] for p in named) == ["kit_harington", "rose_leslie"]
    assert all(0 < p["confidence"] <= 1 and p["x_max"] > p["x_min"] >= 0 for p in named)
    assert len([p for p in face.detect((IMAGES / "obama_and_biden.jpg").read_bytes())
                if p["confidence"] >= CONFIDENT]) >= 2
    # Someone not registered is "unknown", as DeepStack says it.
    (stranger,) = face.recognize((FACES / "paul_rudd" / "1.jpg").read_bytes())
    assert stranger["userid"] == "unknown"
    # Delete (the client has no call for it: the form DeepStack documents).
    answer = requests.post(f"http://127.0.0.1:{api_daemon}/v1/vision/face/delete",
                           data={"api_key": TOKEN, "userid": "kit_harington"}, timeout=30)
    assert answer.json() == {"success": True}
    assert "kit_harington" not in face.get_registered_faces()
    # A wrong key, and a photo with no face: the client's own errors, not a hang or a traceback.
    with pytest.raises(DeepstackException, match="401"):
        DeepstackFace(ip="127.0.0.1", port=api_daemon, api_key="wrong-key").recognize(
            (IMAGES / "obama1.jpg").read_bytes())
    with pytest.raises(DeepstackException, match="400"):
        face.register("nobody", _blank_jpeg())
    answer = requests.post(f"http://127.0.0.1:{api_daemon}/v1/vision/face/register", files={"image": _blank_jpeg()},
                           data={"api_key": TOKEN, "userid": "nobody"}, timeout=30)
    assert answer.status_code == 400 and answer.json()["success"] is False and "no face" in answer.json()["error"]


def test_compreface_client_recognizes_and_manages_subjects(api_daemon, tmp_path):
    from compreface import CompreFace

    recognition = CompreFace("http://127.0.0.1", str(api_daemon)).init_face_recognition(TOKEN)
    collection, subjects = recognition.get_face_collection(), recognition.get_subjects()
    added = collection.add(str(FACES / "kit_harington" / "john1.jpeg"), "kit")
    assert added["subject"] == "kit" and added["image_id"].isdigit()
    assert {"image_id": added["image_id"], "subject": "kit"} in collection.list()["faces"]
    result = recognition.recognize(str(IMAGES / "kit_with_rose.jpg"))["result"]
    named = sorted(r["subjects"][0]["subject"] for r in result if r["subjects"])
    assert named == ["kit", "rose_leslie"]
    assert all(r["box"]["probability"] >= 0.8 for r in result)  # CompreFace's det_prob_threshold

    assert subjects.update("kit", "kit_harington") == {"updated": True}
    assert "kit_harington" in subjects.list()["subjects"]
    assert subjects.add("shea") == {"subject": "shea"}
    assert "shea" in subjects.list()["subjects"]
    assert subjects.delete("shea") == {"subject": "shea"}
    assert collection.delete(added["image_id"]) == {"image_id": added["image_id"], "subject": "kit_harington"}
    assert collection.delete_all("kit_harington") == {"deleted": 0}
    blank = tmp_path / "blank.jpg"
    blank.write_bytes(_blank_jpeg())
    assert recognition.recognize(str(blank)) == {"message": "No face is found in the given image", "code": 28}
    wrong = CompreFace("http://127.0.0.1", str(api_daemon)).init_face_recognition("wrong-key")
    assert wrong.get_subjects().list()["code"] == 401


def test_native_api_transcript(api_daemon):
    port = api_daemon
    status, document = call(port, "GET", "/api/v1/openapi.json")
    assert status == 200 and document["openapi"].startswith("3.")
    from openapi_spec_validator import validate

    validate(document)  # a valid OpenAPI 3.0 document, by the reference validator
    assert {"/api/v1/identify", "/api/v1/people/{name}/faces", "/api/v1/strangers/{name}/name"} <= set(
        document["paths"])
    photo = (IMAGES / "obama_and_biden.jpg").read_bytes()
    status, answer = call(port, "POST", "/api/v1/identify", photo, {"Content-Type": "image/jpeg"})
    assert status == 200 and sorted(f["person"] for f in answer["faces"] if f["person"]) == ["biden", "obama"]
    # Enroll two photos in one multipart form; one has no face and is refused by name.
    boundary = "edgedtestboundary"
    form = b"".join(
        f"--{boundary}\r\nContent-Disposition: form-data; name=\"image\"; filename=\"{n}\"\r\n"
        f"Content-Type: image/jpeg\r\n\r\n".encode() + data + b"\r\n"
        for n, data in (("a.jpg", (FACES / "shea_whigham" / "1.jpg").read_bytes()), ("b.jpg", _blank_jpeg())))
    form += f"--{boundary}--\r\n".encode()
    name = urllib.parse.quote("Shea Whigham")
    status, answer = call(port, "POST", f"/api/v1/people/{name}/faces", form,
                          {"Content-Type": f"multipart/form-data; boundary={boundary}"})
    assert status == 200 and len(answer["enrolled"]) == 1 and answer["refused"][0]["photo"] == 1
    assert "no face" in answer["refused"][0]["error"]
    status, people = call(port, "GET", "/api/v1/people")
    assert "Shea Whigham" in [p["name"] for p in people["people"]]
    status, answer = call(port, "PATCH", f"/api/v1/people/{name}", b'{"name": "shea"}',
                          {"Content-Type": "application/json"})
    assert status == 200 and answer["name"] == "shea" and answer["faces"] == 1
    status, answer = call(port, "POST", "/api/v1/people/shea/reject", (FACES / "paul_rudd" / "1.jpg").read_bytes(),
                          {"Content-Type": "image/jpeg"})
    assert status == 200 and "is not shea" in answer["message"]
    assert call(port, "GET", "/api/v1/people/shea")[1]["negatives"] == 1
    status, answer = call(port, "DELETE", "/api/v1/people/shea")
    assert status == 200 and answer == {"deleted": "shea", "faces": 1}
    assert call(port, "GET", "/api/v1/people/shea")[0] == 404
    # Strangers the daemon met on its camera (paul_rudd walks through the scenario).
    wait_until(lambda: call(port, "GET", "/api/v1/strangers")[1].get("strangers"), 90, "a stranger on the camera")
    stranger = call(port, "GET", "/api/v1/strangers")[1]["strangers"][0]["name"]
    status, answer = call(port, "POST", f"/api/v1/strangers/{stranger}/name", b'{"name": "paul"}',
                          {"Content-Type": "application/json"})
    assert status == 200 and answer["name"] == "paul" and not answer["stranger"]
    assert call(port, "GET", "/api/v1/alerts?limit=5")[0] == 200
    assert "clips" in call(port, "GET", "/api/v1/clips")[1]


def raw_exchange(port: int, request: bytes, wait_s: float = 10.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait_s) as s:
        s.sendall(request)
        answer = b""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            chunk = s.recv(65536)
            if not chunk:
                break
            answer += chunk
        return answer


@pytest.mark.parametrize("path", ["/api/v1/identify", "/v1/vision/face/recognize", "/api/v1/recognition/recognize"])
def test_api_refusals_are_json_with_a_status(api_daemon, path):
    port = api_daemon
    # No token, a wrong one: 401 in each dialect's own shape.
    status, answer = call(port, "POST", path, b"x", {"Content-Type": "image/jpeg"}, token=None)
    assert status == 401 and answer
    status, _ = call(port, "POST", path, b"x", {"Content-Type": "image/jpeg", "x-api-key": "nope"}, token=None)
    assert status == 401
    auth = {"Authorization": f"Bearer {TOKEN}"}
    # A body announced larger than the limit is refused before it is sent.
    answer = raw_exchange(port, f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                                f"Content-Type: image/jpeg\r\nContent-Length: {500 * 2**20}\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 413") and b"at most 20 MB" in answer
    answer = raw_exchange(port, f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
                                "Transfer-Encoding: chunked\r\n\r\n".encode())
    assert answer.startswith(b"HTTP/1.0 411")
    # Bodies that are not what they claim: each refused by name.
    for body, kind, expected in [
        (b"not an image at all", "image/jpeg", "not an image"),
        ((IMAGES / "obama1.jpg").read_bytes()[:5000], "image/jpeg", "truncated"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x01\x00\x00\x00\x01\x00\x00\x08\x02\x00\x00\x00" + b"\x00" * 64
         + b"\x00\x00\x00\x00IEND\xaeB`\x82", "image/png", "megapixel"),  # 65536 x 65536, by its header
        (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"a\"\r\n\r\nabc", "multipart/form-data; "
         "boundary=b", "multipart"),
        (b"[" * 100000, "application/json", "JSON"),
        (b"{}", "text/html", "not taken"),
    ]:
        status, answer = call(port, "POST", path, body, {"Content-Type": kind, **auth}, token=None)
        assert 400 <= status < 500 and expected.lower() in json.dumps(answer).lower(), (path, kind, answer)
    # A page on another site cannot make a visitor's browser use the API.
    status, _ = call(port, "POST", path, (IMAGES / "obama1.jpg").read_bytes(),
                     {"Content-Type": "image/jpeg", "Origin": "http://evil.example"})
    assert status == 403


def test_api_names_and_routes_refused(api_daemon):
    port = api_daemon
    photo = (FACES / "angelina_jolie" / "1.jpg").read_bytes()
    for name in ["<script>alert(1)<%2Fscript>", "..%2F..%2Fetc", "a" * 80, "unknown-5"]:
        status, answer = call(port, "POST", f"/api/v1/people/{name}/faces", photo, {"Content-Type": "image/jpeg"})
        assert status == 400 and "name" in (answer.get("error", "") + json.dumps(answer.get("refused"))), answer
    assert call(port, "GET", "/api/v1/nothing")[0] == 404
    status, answer = call(port, "DELETE", "/api/v1/identify")
    assert status == 405 and "POST" in answer["error"]
    assert call(port, "PUT", "/status")[0] == 405
    assert call(port, "DELETE", "/api/v1/faces/abc")[0] == 400
    assert call(port, "DELETE", "/api/v1/faces/999999")[0] == 404
    status, answer = call(port, "PATCH", "/api/v1/people/obama", b'{"name": 5}', {"Content-Type": "application/json"})
    assert status == 400 and "'name'" in answer["error"]
    # Many parts, one form: refused by the parser's limit.
    form = b"".join(b"--b\r\nContent-Disposition: form-data; name=\"f%d\"\r\n\r\nx\r\n" % i for i in range(40))
    status, answer = call(port, "POST", "/api/v1/identify", form + b"--b--\r\n",
                          {"Content-Type": "multipart/form-data; boundary=b"})
    assert status == 413 and "parts" in answer["error"]


def test_slow_stalled_and_many_api_clients(api_daemon):
    """A body sent a byte at a time is cut off (408) on its deadline; clients that announce a
    body and send nothing do not keep others out; many identify requests at once are each
    answered (200, or 503 when the box is busy), never left hanging."""
    import concurrent.futures

    port = api_daemon
    head = (f"POST /api/v1/identify HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {TOKEN}\r\n"
            f"Content-Type: image/jpeg\r\nContent-Length: 100000\r\n\r\n").encode()
    stalled = []
    for _ in range(8):
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(head + b"\xff\xd8")
        stalled.append(s)
    dripping = socket.create_connection(("127.0.0.1", port), timeout=60)
    dripping.sendall(head)
    try:
        photo = (IMAGES / "obama1.jpg").read_bytes()
        # Answered beside them (a connection per request, as most clients make).
        status, answer = call(port, "POST", "/api/v1/identify", photo, {"Content-Type": "image/jpeg"})
        assert status == 200 and [f["person"] for f in answer["faces"] if f["person"]] == ["obama"]
        # The dripping client is cut off on its deadline (10 s + 0.5 s for 100 kB), not served forever.
        answer_bytes = b""
        for _ in range(60):
            try:
                dripping.sendall(b"\x00")
            except OSError:
                break  # the server has answered and closed
            dripping.settimeout(1.0)
            try:
                answer_bytes += dripping.recv(65536)
            except TimeoutError:
                continue
            if answer_bytes:
                break
        dripping.settimeout(10)
        with contextlib.suppress(OSError):
            while chunk := dripping.recv(65536):
                answer_bytes += chunk
        assert answer_bytes.startswith(b"HTTP/1.0 408"), answer_bytes[:200]
        assert b"did not arrive within" in answer_bytes

        with concurrent.futures.ThreadPoolExecutor(12) as pool:
            results = list(pool.map(lambda _: call(port, "POST", "/api/v1/identify", photo,
                                                   {"Content-Type": "image/jpeg"}), range(12)))
        statuses = [status for status, _ in results]
        assert set(statuses) <= {200, 503} and statuses.count(200) >= 1, statuses
        assert all("obama" in json.dumps(answer) for status, answer in results if status == 200)
    finally:
        for s in [*stalled, dripping]:
            s.close()


def test_python_api_tracks_a_live_camera(tmp_path, scenario_video):
    """An rtsp:// camera (a real RTSP server fed by ffmpeg): frames come as they are shot,
    detection_fps of them a second, until the program stops; the reader stops with it."""
    import threading

    from services import RtspServer

    server = RtspServer(scenario_video)
    server.start()
    try:
        with edged.Faces(tmp_path / "gallery.db") as faces:
            faces.enroll("obama", FACES / "obama" / "obama.jpg")
            seen: list[edged.TrackedFrame] = []
            for frame in faces.track(server.url, detect_fps=4, rtsp_transport="udp"):  # what this server takes
                seen.append(frame)
                if any(face.person == "obama" for face in frame.faces) or len(seen) >= 120:
                    break
            assert any(face.person == "obama" for face in seen[-1].faces), [f.faces for f in seen[-5:]]
            times = [f.time for f in seen]
            assert times == sorted(times) and times[0] == 0.0
            # About 4 a second of the camera's 25: the rest were passed over, not queued.
            assert len(seen) <= 4 * times[-1] + 2
        assert not [t for t in threading.enumerate() if t.name.startswith("edged-source")], "the reader stopped"
    finally:
        server.stop()
