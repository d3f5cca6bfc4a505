"""The face library page in headless Chromium (Debian's, driven by Playwright) against a real
daemon: what a person sees, actions performed by clicking and checked in the gallery, and the
POST endpoint refusing requests without the page's token, from another site, or too large."""

from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
from services import Daemon, config, free_port, gallery_copy, wait_until

from edged.gallery import Gallery

TOKEN = "library-test-token-0123456789"


def post(port: int, body: bytes, headers: dict[str, str] | None = None) -> tuple[int, dict[str, object]]:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/library?token={TOKEN}", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


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
        stranger = alerted(lambda p: p and p.startswith("unknown-"))[0]["person"]

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
    finally:
        assert daemon.stop() == 0, daemon.text()[-3000:]
