"""The face library page in headless Chromium (Debian's, driven by Playwright) against a real
daemon: what a person sees, actions performed by clicking and checked in the gallery, and the
POST endpoint refusing requests without the page's token, from another site, or too large."""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.request

import numpy as np
import pytest
from services import Daemon, config, free_port, gallery_copy, wait_until

from edged.errors import GalleryError
from edged.gallery import Gallery
from edged.library import library_view, natural_key

from .conftest import DATA

TOKEN = "library-test-token-0123456789"


def post(port: int, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/library?token={TOKEN}", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def upload(port: int, body: bytes, csrf: str) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/library/photo?token={TOKEN}&person=x", data=body,
                                     method="POST", headers={"X-Edged-Form-Token": csrf, "Content-Type": "image/jpeg"})
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def test_strangers_sort_by_number_and_renamed_alerts_show_the_name_now(tmp_path):
    with Gallery(tmp_path / "g.db") as gallery:
        vector = np.ones((1, 4), np.float32) / 2
        for name in ("unknown-10", "unknown-2", "unknown-1"):
            gallery.enroll(name, vector, "m", anonymous_ok=True)
        gallery.enroll("ann", vector, "m")
        recent = [{"type": "alert", "person": "unknown-2", "camera": "door", "time": 1.0, "snapshot": "media/a.jpg"}]
        gallery.name_anonymous("unknown-2", "bob")
        view = library_view(gallery, "m", recent)
        assert [s["name"] for s in view["strangers"]] == ["unknown-1", "unknown-10"]
        assert view["tracks"][0]["person"] == "bob"
        bob = next(p for p in view["people"] if p["name"] == "bob")
        assert bob["last_seen"] == {"camera": "door", "time": 1.0}
        assert sorted(["unknown-10", "unknown-2", "unknown-1"], key=natural_key) == [
            "unknown-1", "unknown-2", "unknown-10"]


def test_take_out_and_put_back_keep_every_row(tmp_path):
    with Gallery(tmp_path / "g.db") as gallery:
        gallery.enroll("ann", np.eye(2, 4, dtype=np.float32), "m")
        gallery.reject("ann", np.eye(1, 4, 2, dtype=np.float32)[0], "m")
        gallery.set_picture("ann", b"jpeg", 0.5)
        gallery.add_sighting("ann", "video.mp4", 1.0, 2.0, 1)
        before = (gallery.person_ids(), gallery.people(), gallery.negatives("ann"), gallery.sightings())
        rows = gallery.take_out("ann")
        assert "ann" not in gallery.person_ids()
        assert gallery.put_back(rows) == "ann"
        assert (gallery.person_ids(), gallery.people(), gallery.negatives("ann"), gallery.sightings()) == before
        gallery.take_out("ann")
        gallery.enroll("ann", np.eye(1, 4, dtype=np.float32), "m")
        with pytest.raises(GalleryError, match="in use again"):
            gallery.put_back(rows)


def test_face_library_page_actions_by_clicking(chromium, scenario_video, enrolled_gallery, tmp_path):
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path)
    text = config(scenario_video, gallery, port).replace(f"[stream]\nport = {port}\n",
                                                         f'[stream]\nport = {port}\ntoken = "{TOKEN}"\n')
    daemon = Daemon(tmp_path, text)
    daemon.start()
    try:
        def status():
            request = urllib.request.Request(f"http://127.0.0.1:{port}/status?token={TOKEN}")
            try:
                with urllib.request.urlopen(request, timeout=5) as answer:
                    return json.loads(answer.read())
            except OSError:
                return None

        def alerted(check):
            events = (status() or {}).get("recent_events", [])
            return [e for e in events if e.get("type") == "alert" and e.get("snapshot") and check(e.get("person"))]

        wait_until(lambda: alerted(lambda p: p == "obama") and alerted(lambda p: p and p.startswith("unknown-")),
                   60, "alerts for obama and for the stranger")
        stranger_alert = alerted(lambda p: p and p.startswith("unknown-"))[0]
        stranger = stranger_alert["person"]

        page = chromium.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"http://127.0.0.1:{port}/library?token={TOKEN}")
        page.wait_for_selector(f'#strangers .card[data-name="{stranger}"]')
        page.screenshot(path=str(tmp_path / "library.png"), full_page=True)
        assert (tmp_path / "library.png").stat().st_size > 10_000
        # What a person sees: every enrolled person by name, faces shown at their size.
        people = page.locator("#people .who").all_inner_texts()
        assert sorted(people) == ["biden", "obama", "rose_leslie"]
        box = page.locator("#tracks .card img").first.bounding_box()
        assert box and round(box["width"]) == 64 and round(box["height"]) == 64
        # Every track, stranger and person shows a face that loaded (enrolled photos, the
        # stranger's best face from the track that made them).
        for card in ("#tracks", "#strangers", "#people"):
            widths = page.locator(f"{card} .card img").evaluate_all("images => images.map(i => i.naturalWidth)")
            assert widths and min(widths) > 0, f"{card}: a face did not load ({widths})"

        # "Name" a stranger by clicking: the gallery has paul with the stranger's history.
        card = page.locator(f'#strangers .card[data-name="{stranger}"]')
        card.locator("input").fill("José O'Brien")
        card.get_by_role("button", name="Name").click()
        page.wait_for_selector('#people .card[data-name="José O\'Brien"]')
        assert "is José O'Brien" in page.locator("#message").inner_text()
        # "Not obama" on obama's track by clicking: a negative stored for obama.
        page.locator("#tracks .card").filter(has_text="obama").first.get_by_role("button", name="Not obama").click()
        page.locator("#message").filter(has_text="is not obama").wait_for()  # (the page's CSP forbids eval)
        page.screenshot(path=str(tmp_path / "library-after.png"), full_page=True)
        with Gallery(gallery) as after:
            names = [p.name for p in after.people()]
            assert "José O'Brien" in names and stranger not in names
            assert after.negatives("obama") == 1
        # The stranger's recent track now says the name given, and cards say which camera.
        tracks = page.locator("#tracks .who").all_inner_texts()
        assert "José O'Brien" in tracks and stranger not in tracks, tracks
        obama_card = page.locator('#people .card[data-name="obama"] small').inner_text()
        assert f"last seen on {stranger_alert['camera']}" in obama_card, obama_card

        # Delete asks twice, and can be undone: biden comes back with his faces and his id.
        with Gallery(gallery) as before:
            biden_id = before.person_ids()["biden"]
            biden_faces = {p.name: p.embeddings for p in before.people()}["biden"]
        biden = page.locator('#people .card[data-name="biden"]')
        biden.get_by_role("button", name="Delete").click()
        assert biden.get_by_role("button", name="Delete biden?").is_visible()
        with Gallery(gallery) as after:
            assert "biden" in after.person_ids(), "one click deleted"
        biden.get_by_role("button", name="Delete biden?").click()
        page.locator("#message").filter(has_text="removed biden").wait_for()
        page.wait_for_selector('#people .card[data-name="biden"]', state="detached")
        with Gallery(gallery) as after:
            assert "biden" not in after.person_ids()
        page.locator("#undo").click()
        page.locator("#message").filter(has_text="put biden back").wait_for()
        page.wait_for_selector('#people .card[data-name="biden"]')
        with Gallery(gallery) as after:
            assert after.person_ids()["biden"] == biden_id
            assert {p.name: p.embeddings for p in after.people()}["biden"] == biden_faces

        # A photo uploaded on the page is enrolled, as `edged enroll` would.
        page.locator("#upload-name").fill("kit")
        page.locator("#upload-file").set_input_files(str(DATA / "faces" / "kit_harington" / "john1.jpeg"))
        page.get_by_role("button", name="Enroll photo").click()
        page.locator("#message").filter(has_text="enrolled a photo as kit").wait_for()
        page.wait_for_selector('#people .card[data-name="kit"]')
        kit_face = page.locator('#people .card[data-name="kit"] img').evaluate("i => i.naturalWidth")
        assert kit_face > 0

        # The page refreshes itself: a rename made elsewhere (the command line's gallery)
        # shows without a reload.
        with Gallery(gallery) as elsewhere:
            elsewhere.rename("rose_leslie", "rose")
        page.wait_for_selector('#people .card[data-name="rose"]', timeout=25_000)

        # The endpoint without the page: no token, a wrong one, another site, too much.
        assert post(port, b"action=delete&person=obama")[0] == 403
        assert post(port, b"action=delete&person=obama&csrf=wrong")[0] == 403
        csrf = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/library.json?token={TOKEN}").read())["csrf"]
        assert post(port, f"action=delete&person=obama&csrf={csrf}".encode(),
                    {"Origin": "http://evil.example"})[0] == 403
        assert post(port, b"x=" + b"a" * 5000)[0] == 413
        code, answer = post(port, f"action=explode&person=obama&csrf={csrf}".encode())
        assert code == 400 and "unknown action" in str(answer["error"])
        request = urllib.request.Request(f"http://127.0.0.1:{port}/library", data=b"", method="POST")
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 401
        with Gallery(gallery) as after:
            assert "obama" in [p.name for p in after.people()]

        # The upload endpoint without the page: no token, not an image, too large; each a
        # JSON refusal. The tab's icon needs no token.
        photo = (DATA / "faces" / "obama" / "obama2.jpg").read_bytes()
        assert upload(port, photo, "")[0] == 403
        code, answer = upload(port, b"not an image at all", csrf)
        assert code == 400 and "not an image" in str(answer["error"]), answer
        # Too large is refused from the header, before a byte of the body is read.
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        connection.putrequest("POST", f"/library/photo?token={TOKEN}&person=x")
        connection.putheader("Content-Length", str(21 * 2**20))
        connection.putheader("X-Edged-Form-Token", csrf)
        connection.endheaders()
        answer_413 = connection.getresponse()
        assert answer_413.status == 413 and b"20 MB" in answer_413.read()
        connection.close()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/favicon.ico", timeout=5) as icon:
            assert icon.status == 200 and icon.headers["Content-Type"] == "image/svg+xml"
            assert icon.read().startswith(b"<svg")
    finally:
        assert daemon.stop() == 0, daemon.text()[-3000:]
