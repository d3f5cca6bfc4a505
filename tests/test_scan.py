"""`edged scan` on scenario videos with exact truth, and on the real crowd video."""

import json
import os

import cv2
import pytest
from scenarios import Actor, Appearance, render, walk
from services import enroll_first_photos

from edged.engine import EngineOptions, FaceEngine
from edged.gallery import Gallery
from edged.scan import scan_video
from edged.tracking.faces import FaceTracking, TrackingSettings
from edged.tracking.reid import ReidSettings
from edged.vision.detector import DetectorSettings

from .conftest import DATA, run_edged

ENROLLED = [("obama", "obama.jpg"), ("biden", "biden.jpg"), ("rose_leslie", "img1.jpg"),
            ("kit_harington", "john1.jpeg"), ("alex_lacamoire", "img1.jpg")]
# Second photos of enrolled people, and paul_rudd, who is not enrolled: he leaves and comes back.
SCENARIO = [
    Actor("obama", "obama2.jpg", (walk(10, 140, 20, 480),)),
    Actor("biden", "biden2.jpg", (walk(20, 150, 480, 40, y=150),)),  # crosses obama, passing in front
    Actor("rose_leslie", "img2.jpg", (walk(60, 170, 520, 420, y=230),)),
    Actor("paul_rudd", "1.jpg", (walk(0, 60, 250, 300, y=10), walk(120, 190, 300, 250, y=10))),
]
TRUTH = {"obama": [(10, 140)], "biden": [(20, 150)], "rose_leslie": [(60, 170)], "paul_rudd": [(0, 60), (120, 190)]}


@pytest.fixture(scope="module")
def engine():
    return FaceEngine(EngineOptions(detector=DetectorSettings.edge()))  # the default embedder, as the CLI's


@pytest.fixture(scope="module")
def gallery_path(engine, tmp_path_factory):
    return enroll_first_photos(engine, tmp_path_factory.mktemp("scan") / "gallery.db", ENROLLED)


@pytest.fixture(scope="module")
def scenario(engine, tmp_path_factory):
    return render(tmp_path_factory.mktemp("video") / "scenario.mp4", SCENARIO, 200, engine.detector)


def copy_gallery(source, folder):
    """A private copy of the module's gallery, so that each test starts from the same people."""
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / "gallery.db"
    with Gallery(source) as g:
        g._db.execute("VACUUM INTO ?", (str(target),))
    return target


def assert_within(found: list[tuple[int, int]], truth: list[tuple[int, int]], every: int, who: str) -> None:
    assert len(found) == len(truth), f"{who}: intervals {found}, truth {truth}"
    for (first, last), (true_first, true_last) in zip(found, truth, strict=True):
        assert abs(first - true_first) <= every and abs(last - true_last) <= every, (
            f"{who}: on screen {first}-{last}, truth {true_first}-{true_last} (detection every {every})")


@pytest.mark.parametrize("every", [1, 2, 3])
def test_scenario_people_names_and_times(engine, gallery_path, scenario, tmp_path, every):
    with Gallery(copy_gallery(gallery_path, tmp_path)) as gallery:
        result = scan_video(scenario, engine, gallery, every, TrackingSettings(detector=engine.detector.settings))
    names = sorted(p.name for p in result.people)
    assert [n if not n.startswith("new-") else "new" for n in names] == ["biden", "new", "obama", "rose_leslie"], names
    for person in result.people:
        who = "paul_rudd" if person.anonymous else person.name
        assert_within([(i.first_frame, i.last_frame) for i in person.intervals], TRUTH[who], every, who)
        if person.anonymous:
            assert len(person.tracks) == 2, "the stranger's two appearances are one anonymous person"
    assert result.identity_switches == 0
    # Seconds agree with frame numbers.
    obama = next(p for p in result.people if p.name == "obama")
    assert obama.first_seen == pytest.approx(obama.intervals[0].first_frame / 25.0)


def test_back_off_cuts_embeddings_tenfold_with_the_same_answers(engine, gallery_path, tmp_path):
    """A 20-second scenario: two enrolled people and a stranger stay in view, moving slowly."""
    actors = [
        Actor("kit_harington", "john2.jpeg", (Appearance(0, 499, (30, 60), (200, 80)),)),
        Actor("obama", "obama2.jpg", (Appearance(0, 499, (480, 60), (330, 90)),)),
        Actor("paul_rudd", "1.jpg", (Appearance(0, 499, (250, 200), (260, 220)),)),
    ]
    video = render(tmp_path / "long.mp4", actors, 500, engine.detector)
    answers = {}
    for back_off in (True, False):
        settings = TrackingSettings(detector=engine.detector.settings, reid=ReidSettings(enabled=back_off))
        with Gallery(copy_gallery(gallery_path, tmp_path / str(back_off))) as gallery:
            result = scan_video(video, engine, gallery, 1, settings)
        answers[back_off] = result
    with_back_off, without = answers[True], answers[False]
    assert sorted(p.name for p in with_back_off.people) == sorted(p.name for p in without.people)
    assert [p.anonymous for p in sorted(with_back_off.people, key=lambda p: p.name)] == [False, True, False]
    assert without.embeddings_per_frame == pytest.approx(3.0, abs=0.05)  # every face, every frame
    reduction = with_back_off.faces_per_frame / with_back_off.embeddings_per_frame
    assert reduction >= 10, f"back-off cut embeddings only {reduction:.1f}x"
    assert with_back_off.identity_switches == 0


def test_crowd_video_tracks_stay_close_to_people(engine, tmp_path):
    """About 9 people show a face of 40 px or more in the crowd video (counted by eye on
    frames 0, 50 and 100); tracks should not multiply far beyond that."""
    with Gallery(tmp_path / "g.db") as gallery:
        result = scan_video(DATA / "video" / "crowd_1080p.mp4", engine, gallery, 3,
                            TrackingSettings(detector=engine.detector.settings))
    tracks = result.confirmed_tracks
    assert 6 <= tracks <= 12, f"{tracks} confirmed tracks"
    assert len(result.people) <= tracks


def test_enroll_keeps_strangers_ids_and_naming_moves_their_history(scenario, gallery_path, tmp_path):
    gallery = copy_gallery(gallery_path, tmp_path)
    env = {"EDGED_GALLERY": str(gallery)}
    out = tmp_path / "first.json"
    run_edged("scan", str(scenario), "--edge", "--enroll", "--json", str(out), env=env, check=True)
    first = json.loads(out.read_text())
    strangers = [p for p in first["people"] if p["anonymous"]]
    assert [p["name"] for p in strangers] == ["unknown-1"]

    again = json.loads(run_edged("scan", str(scenario), "--edge", "--json", "-", env=env, check=True).stdout)
    assert [p["name"] for p in again["people"] if p["anonymous"]] == ["unknown-1"]
    assert not any(p["new"] for p in again["people"])

    run_edged("gallery", "name", "unknown-1", "paul", env=env, check=True)
    listing = json.loads(run_edged("gallery", "list", "--json", env=env, check=True).stdout)
    paul = next(p for p in listing["people"] if p["name"] == "paul")
    assert paul["anonymous"] is False and paul["sightings"] == 2  # both appearances of the first scan
    third = json.loads(run_edged("scan", str(scenario), "--edge", "--json", "-", env=env, check=True).stdout)
    assert sorted(p["name"] for p in third["people"]) == ["biden", "obama", "paul", "rose_leslie"]


def test_report_folder(scenario, gallery_path, tmp_path, chromium):
    env = {"EDGED_GALLERY": str(copy_gallery(gallery_path, tmp_path))}
    report = tmp_path / "report"
    result = run_edged("scan", str(scenario), "--edge", "--report", str(report), env=env, check=True)
    assert "obama:" in result.stdout and "new-" in result.stdout
    document = json.loads((report / "report.json").read_text())
    assert len(document["people"]) == 4
    for person in document["people"]:
        thumbnail = cv2.imread(str(report / person["thumbnail"]))
        assert thumbnail is not None and thumbnail.shape[0] > 40
    timeline = cv2.imread(str(report / "timeline.png"))
    assert timeline is not None and timeline.shape[0] >= 40 + 4 * 56
    page = (report / "index.html").read_text()
    assert "timeline.png" in page and "rose_leslie" in page and document["people"][0]["thumbnail"] in page
    # Not a terminal: progress comes as plain lines, at least the last one.
    assert "scan: 100% (" in result.stderr and "\r" not in result.stderr

    # As rendered in Chromium, on a phone and on a desktop: nothing wider than the screen, a
    # bar for every interval of every person, readable names, 64-px thumbnails.
    for width in (390, 1024, 1440, 1920):
        page = chromium.new_page(viewport={"width": width, "height": 900})
        page.goto((report / "index.html").as_uri())
        page.wait_for_load_state("load")
        seen = page.evaluate("""() => ({
            scroll: document.documentElement.scrollWidth,
            bars: [...document.querySelectorAll('.timeline .bar')].map(b => b.getBoundingClientRect().width),
            names: [...document.querySelectorAll('.timeline .who')].map(w => [w.textContent,
                     parseFloat(getComputedStyle(w).fontSize), w.scrollWidth <= w.clientWidth]),
            thumbs: [...document.querySelectorAll('img.thumb')].map(i => [i.width, i.height, i.naturalWidth > 0]),
        })""")
        page.close()
        assert seen["scroll"] <= width, f"{width} px: the report is {seen['scroll']} px wide"
        assert len(seen["bars"]) == sum(len(p["intervals"]) for p in document["people"])
        assert min(seen["bars"]) >= 3, seen["bars"]
        people = [(n, size, fits) for n, size, fits in seen["names"] if n]
        assert sorted(n for n, _, _ in people) == sorted(p["name"] for p in document["people"])
        assert all(size >= 12 and fits for _, size, fits in people), people
        assert seen["thumbs"] == [[64, 64, True]] * 4, seen["thumbs"]




def test_progress_lines_for_logs_every_few_seconds():
    import io

    from edged.scan import ScanProgress

    clock = iter([0.0, 1.0, 4.9, 5.2, 7.0, 10.3, 11.0])
    out = io.StringIO()
    progress = ScanProgress(every_s=5.0, stream=out, clock=lambda: next(clock))
    for done in (10, 49, 52, 70, 103):
        progress(done, 110)
    progress(110, 110)  # the end always gets its line
    assert out.getvalue().splitlines() == ["scan: 47% (52 of ~110 frames) after 5 s",
                                           "scan: 94% (103 of ~110 frames) after 10 s",
                                           "scan: 100% (110 of ~110 frames) after 11 s"]


def test_enroll_from_video(engine, tmp_path):
    video = render(tmp_path / "shea.mp4", [Actor("shea_whigham", "1.jpg", (walk(0, 80, 50, 400),))], 90,
                   engine.detector)
    env = {"EDGED_GALLERY": str(tmp_path / "g.db")}
    result = run_edged("enroll", "shea", "--from-video", str(video), "--edge", env=env, check=True)
    assert "as 'shea'" in result.stdout
    found = json.loads(run_edged("identify", str(DATA / "faces" / "shea_whigham" / "1.jpg"), "--json",
                                 env=env, check=True).stdout)
    assert found["images"][0]["faces"][0]["person"] == "shea"
    missing = run_edged("enroll", "x", "--from-video", str(video), "--person", "unknown-9", env=env)
    assert missing.returncode == 1, missing.stderr
    assert "'unknown-9' is not in the video; found: shea at 0." in missing.stderr, missing.stderr


def test_scan_an_s3_clip(s3_server, scenario, gallery_path, tmp_path):
    import boto3

    old = {k: os.environ.get(k) for k in s3_server}
    os.environ.update(s3_server)
    try:
        client = boto3.client("s3")
        client.create_bucket(Bucket="clips")
        client.upload_file(str(scenario), "clips", "cam1/scenario.mp4")
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    env = {**s3_server, "EDGED_GALLERY": str(copy_gallery(gallery_path, tmp_path))}
    document = json.loads(run_edged("scan", "s3://clips/cam1/scenario.mp4", "--edge", "--json", "-",
                                    env=env, check=True).stdout)
    assert document["video"] == "s3://clips/cam1/scenario.mp4"
    assert sorted(p["name"] if not p["new"] else "new" for p in document["people"]) == [
        "biden", "new", "obama", "rose_leslie"]
    missing = run_edged("scan", "s3://clips/nope.mp4", "--edge", env=env)
    assert missing.returncode == 1 and "s3://clips/nope.mp4: cannot fetch" in missing.stderr


def test_match_threshold_setting_overrides_the_models_own(engine, gallery_path, scenario, tmp_path):
    """A threshold no face reaches turns every enrolled person into a stranger."""
    strict = TrackingSettings(detector=engine.detector.settings, match_threshold=0.99)
    with Gallery(copy_gallery(gallery_path, tmp_path)) as gallery:
        result = scan_video(scenario, engine, gallery, 3, strict)
    assert all(p.anonymous for p in result.people)


def test_a_daemons_tracking_keeps_no_records_of_ended_tracks(engine, scenario, gallery_path, tmp_path):
    """A scan needs every track's record for its summary; a daemon, running for months, must not
    keep them (thumbnails and embeddings of every track ever: memory growing without end)."""
    capture = cv2.VideoCapture(str(scenario))
    with Gallery(copy_gallery(gallery_path, tmp_path)) as gallery:
        kept = FaceTracking(engine, gallery)
        daemon_like = FaceTracking(engine, gallery, keep_records=False)
        index, ended = 0, 0
        while True:
            ok, frame = capture.read()
            if not ok:
                break
            if index % 2 == 0:
                kept.process(frame, index / 25, index)
                ended += sum(e.kind == "ended" for e in daemon_like.process(frame, index / 25, index).events)
            index += 1
        assert len(kept.finish()) >= 4
        assert daemon_like.finish() == []
        ended += sum(e.kind == "ended" for e in daemon_like.take_events())
        assert ended >= 4  # its tracks ended, and their events went out


def test_new_stranger_ids_hold_when_someone_else_is_enrolled(engine, scenario, tmp_path):
    """The trap from a bare clone: scan, enroll one `new-N`, scan again. The others keep their
    ids, so `--person` picks the face the owner saw; and enrolling says where each face is from."""
    gallery = enroll_first_photos(engine, tmp_path / "gallery.db", [("rose_leslie", "img1.jpg")])
    env = {"EDGED_GALLERY": str(gallery)}

    def strangers() -> dict[str, tuple[int, int]]:
        document = json.loads(run_edged("scan", str(scenario), "--edge", "--json", "-", env=env, check=True).stdout)
        return {p["name"]: (p["intervals"][0]["first_frame"], p["intervals"][0]["last_frame"])
                for p in document["people"] if p["anonymous"]}

    before = strangers()
    assert len(before) == 3 and all(name.startswith("new-") for name in before), before
    # Who is who, by the scenario's truth: each stranger is whoever entered nearest their first frame.
    who_is = {min(("obama", "biden", "paul_rudd"), key=lambda who: abs(TRUTH[who][0][0] - first)): name
              for name, (first, _) in before.items()}
    obama_id, biden_id = who_is["obama"], who_is["biden"]

    report = tmp_path / "report"
    dry = run_edged("enroll", "obama", "--from-video", str(scenario), "--edge", "--person", obama_id,
                    "--dry-run", "--report", str(report), env=env, check=True)
    assert "nothing was changed" in dry.stdout and f"{obama_id} is on screen at " in dry.stdout, dry.stdout
    assert "face 1: from the track on screen at" in dry.stdout
    assert "faces kept from:" in (report / "index.html").read_text()
    assert strangers() == before  # the dry run enrolled nobody

    done = run_edged("enroll", "obama", "--from-video", str(scenario), "--edge", "--person", obama_id,
                     env=env, check=True)
    assert "as 'obama'" in done.stdout
    after = strangers()
    assert after == {name: span for name, span in before.items() if name != obama_id}, (before, after)
    assert biden_id in after
    found = json.loads(run_edged("identify", str(DATA / "faces" / "obama" / "obama2.jpg"), "--json",
                                 env=env, check=True).stdout)
    assert found["images"][0]["faces"][0]["person"] == "obama"
