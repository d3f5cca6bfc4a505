"""The alert history on disk: bounded by count and age, kept across restarts, shown on the
camera page, the clips page (rendered in Chromium) and by `edged clips list`."""

import json
import time
import urllib.request

from services import Daemon, config, free_port, gallery_copy, wait_until

from edged.events import Alert
from edged.history import AlertHistory

from .conftest import chromium_page, run_edged


def alert(n: int, t: float, camera: str = "door", person: str | None = "alice") -> Alert:
    return Alert(camera, n, t, t, person, 0.8, (0, 0, 10, 10), "known" if person else "unknown",
                 snapshot=f"media/{t:.3f}-{camera}-{n}-face.jpg", clip=f"clips/{camera}-{n}.mp4")


def test_the_history_is_bounded_kept_and_survives_damage(tmp_path):
    path = tmp_path / "alerts.jsonl"
    history = AlertHistory(path, max_count=50, max_age_days=1)
    now = time.time()
    history.add(alert(0, now - 3 * 86400))  # too old by the time the file is read again
    for n in range(1, 121):
        history.add(alert(n, now - 121 + n, camera="door" if n % 2 else "yard"))
    with path.open("ab") as f:
        f.write(b'{"cut short by a power c')
    again = AlertHistory(path, max_count=50, max_age_days=1)
    recent = again.recent(500)
    assert len(recent) == 50 and recent[0]["track_id"] == 120 and recent[-1]["track_id"] == 71
    assert {a["camera"] for a in again.recent(10, "yard")} == {"yard"}
    assert again.for_clip("door-119.mp4")[0]["person"] == "alice"
    assert len(path.read_text().splitlines()) == 50, "the file is rewritten within its bounds"
    assert AlertHistory(tmp_path / "missing.jsonl").recent() == []


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as response:
        return json.loads(response.read())


def test_alerts_and_clips_outlive_the_live_list_and_a_restart(scenario_video, enrolled_gallery, tmp_path):
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path / "state")
    text = config(scenario_video, gallery, port) + "[clips]\npre_roll_s = 1.0\npost_roll_s = 2.0\n"
    daemon = Daemon(tmp_path, text)
    daemon.start()
    base = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: len(list((tmp_path / "state" / "clips").glob("*.mp4"))) >= 2, 120, "two clips")
        wait_until(lambda: len(get_json(f"{base}/alerts.json?camera=door")["alerts"]) >= 4, 60, "alerts")
    finally:
        assert daemon.stop() == 0
    daemon.start()
    try:
        wait_until(lambda: daemon.status(port), 60, "the daemon back")
        alerts = get_json(f"{base}/alerts.json?camera=door&limit=500")["alerts"]
        assert len(alerts) >= 4 and all(a["camera"] == "door" for a in alerts)
        assert alerts == sorted(alerts, key=lambda a: -a["time"]), "newest first"
        assert get_json(f"{base}/alerts.json?camera=yard")["alerts"] == []
        clips = get_json(f"{base}/clips.json")["clips"]
        named = [c for c in clips if c["alerts"]]
        assert named and all(c["camera"] == "door" for c in clips)
        people = {a["person"] for c in named for a in c["alerts"]}
        # The clips page, as a person sees it: a player per clip, who it shows, a download link.
        dom, picture = chromium_page(f"{base}/clips/", tmp_path)
        assert dom.count("<video") >= len(clips) and dom.count(" download=") >= len(clips)  # more may finish meanwhile
        assert any(str(p) in dom for p in people if p), (people, dom[:2000])
        assert picture.shape[1] >= 1000 and picture[100:400].std() > 5
        # The library's recent faces come from the history too: which camera, the frame and the clip.
        dom, _ = chromium_page(f"{base}/library", tmp_path)
        assert "· door" in dom and ">clip</a>" in dom and ">frame</a>" in dom, dom[:3000]
        # The camera page lists the kept alerts beside the live events.
        dom, _ = chromium_page(f"{base}/", tmp_path)
        assert 'id="alerts"' in dom and dom.count('class="event"') >= 4
    finally:
        assert daemon.stop() == 0
    listed = run_edged("clips", "list", "--dir", str(tmp_path / "state" / "clips"), "--json", check=True).stdout
    rows = json.loads(listed)["clips"]
    assert any(a["person"] in people for r in rows for a in r["alerts"])
    text = run_edged("clips", "list", "--dir", str(tmp_path / "state" / "clips"), check=True).stdout
    assert "(alert " in text
