"""The `edged` command line, run as a real subprocess on real photos."""

import json

import cv2
import pytest

from .conftest import DATA, run_edged

OBAMA = DATA / "faces" / "obama"


@pytest.fixture
def env(tmp_path):
    return {"EDGED_GALLERY": str(tmp_path / "gallery.db")}


def test_detect_json_is_stable(tmp_path):
    result = run_edged("detect", str(DATA / "images" / "kit_with_rose.jpg"), "--json", check=True)
    document = json.loads(result.stdout)
    assert document["version"] == 1
    (image,) = document["images"]
    assert (image["width"], image["height"]) == cv2.imread(str(DATA / "images" / "kit_with_rose.jpg")).shape[1::-1]
    assert len(image["faces"]) == 2
    face = image["faces"][0]
    assert set(face) == {"box", "score", "landmarks"}
    assert len(face["box"]) == 4 and len(face["landmarks"]) == 5
    assert "embedder in use:" in result.stderr


def test_detect_annotate_writes_a_picture(tmp_path):
    out = tmp_path / "out.jpg"
    run_edged("detect", str(DATA / "images" / "two_people.jpg"), "--annotate", str(out), check=True)
    picture = cv2.imread(str(out))
    assert picture is not None and picture.shape == cv2.imread(str(DATA / "images" / "two_people.jpg")).shape


def test_enroll_picks_largest_face_and_keeps_good_photos_when_one_fails(tmp_path, env):
    no_face = tmp_path / "wall.jpg"
    cv2.imwrite(str(no_face), cv2.imread(str(DATA / "images" / "obama1.jpg"))[:40, :40])
    result = run_edged("enroll", "obama", str(OBAMA / "obama.jpg"), str(no_face), str(OBAMA / "obama2.jpg"), env=env)
    assert result.returncode == 1
    assert f"{no_face}: no face found" in result.stderr
    assert "obama.jpg: 2 faces found, enrolled the largest confident one" in result.stderr
    listed = run_edged("gallery", "list", "--json", env=env, check=True)
    assert "embedder in use: mobilefacenet" in listed.stderr
    listing = json.loads(listed.stdout)
    (person,) = listing["people"]
    assert person["name"] == "obama" and sum(person["embeddings"].values()) == 2


def test_enroll_refuses_a_blurred_face_and_says_why(tmp_path, env):
    blurred = tmp_path / "blurred.jpg"
    photo = cv2.imread(str(OBAMA / "obama2.jpg"))
    cv2.imwrite(str(blurred), cv2.GaussianBlur(photo, (0, 0), 18))
    result = run_edged("enroll", "obama", str(blurred), env=env)
    assert result.returncode == 1
    assert "blurred.jpg: the face is not good enough to enroll: blurred (sharpness" in result.stderr


def test_enroll_missing_file_is_named(tmp_path, env):
    result = run_edged("enroll", "ghost", str(tmp_path / "nope.jpg"), env=env)
    assert result.returncode == 1 and "nope.jpg: no such file" in result.stderr


def test_identify_json_gallery_commands_and_embedder_choice(tmp_path, env):
    run_edged("enroll", "obama", str(OBAMA / "obama2.jpg"), env=env, check=True)
    run_edged("enroll", "biden", str(DATA / "faces" / "biden" / "biden.jpg"), env=env, check=True)
    result = run_edged("identify", str(DATA / "images" / "obama_and_biden.jpg"), "--json", env=env, check=True)
    document = json.loads(result.stdout)
    assert document["embedder"].startswith("mobilefacenet_paddle@")  # the default
    people = sorted(f["person"] or "" for f in document["images"][0]["faces"])
    assert people[-2:] == ["biden", "obama"]

    run_edged("gallery", "rename", "obama", "barack", env=env, check=True)
    export = tmp_path / "people.json"
    run_edged("gallery", "export", str(export), env=env, check=True)
    run_edged("gallery", "remove", "biden", env=env, check=True)
    names = [p["name"] for p in json.loads(run_edged("gallery", "list", "--json", env=env).stdout)["people"]]
    assert names == ["barack"]

    other = {"EDGED_GALLERY": str(tmp_path / "other.db")}
    assert "imported 2 new embeddings" in run_edged("gallery", "import", str(export), env=other, check=True).stdout
    refused = run_edged("gallery", "import", str(export), "--embedder", "mobilefacenet", env=other)
    assert refused.returncode == 1 and "made by model mobilefacenet_paddle@" in refused.stderr

    # The same gallery seen through the other embedder has none of its people.
    other_model = run_edged("identify", str(OBAMA / "obama2.jpg"), "--json", "--embedder", "mobilefacenet",
                            env=env, check=True)
    assert "embedder in use: mobilefacenet" in other_model.stderr and "paddle" not in other_model.stderr
    assert json.loads(other_model.stdout)["images"][0]["faces"][0]["person"] is None


def test_identify_reports_bad_images_and_goes_on(tmp_path, env):
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a jpeg")
    result = run_edged("identify", str(bad), str(OBAMA / "obama2.jpg"), "--json", env=env)
    assert result.returncode == 1
    images = json.loads(result.stdout)["images"]
    assert "bad.jpg: not an image" in images[0]["error"]
    assert len(images[1]["faces"]) == 1


def test_models_lists_specs():
    document = json.loads(run_edged("models", "--json", check=True).stdout)
    by_name = {m["name"]: m for m in document["models"]}
    # The default is the most accurate installed embedder by its measured named rate (tools/calibrate.py).
    assert by_name["mobilefacenet_paddle"]["default"] is True
    assert by_name["mobilefacenet_paddle"]["named_1pct"] > by_name["mobilefacenet"]["named_1pct"] > 0
    said = run_edged("models").stderr
    assert "embedder in use: mobilefacenet_paddle (the most accurate installed embedder" in said, said
    assert by_name["mobilefacenet_paddle"]["channel_order"] == "BGR"
    assert by_name["mtcnn_pnet"]["installed"] is True


def test_unknown_embedder_is_a_clear_error(env):
    result = run_edged("identify", str(OBAMA / "obama2.jpg"), "--embedder", "nope", env=env)
    assert result.returncode == 1 and "embedder 'nope' is not in the manifest" in result.stderr


def test_scan_json_on_the_crowd_video(env):
    result = run_edged("scan", str(DATA / "video" / "crowd_1080p.mp4"), "--every", "5", "--edge", "--json", "-",
                       env=env, check=True)
    document = json.loads(result.stdout)
    assert document["version"] == 1 and document["frames"] == 105 and document["detections"] == 21
    assert document["embedder"].startswith("mobilefacenet_paddle@")
    assert document["people"] and all(p["anonymous"] and p["new"] for p in document["people"])
    for person in document["people"]:
        assert 0 <= person["first_seen"] <= person["last_seen"] <= 105 / 25
        assert person["intervals"][0]["first_frame"] % 5 == 0


def test_scan_inputs_are_checked_before_any_model_loads(env, tmp_path):
    """Each wrong input is one line naming it, said before the models load (the embedder's
    line comes only after the models load)."""
    (tmp_path / "report.txt").write_text("x")
    photo = str(OBAMA / "obama2.jpg")
    video = str(DATA / "video" / "crowd_1080p.mp4")
    cases = [
        (["scan", str(tmp_path / "none.mp4")], "none.mp4: no such file"),
        (["scan", str(tmp_path)], "is a folder: give one video file"),
        (["scan", photo], f"{photo} is a still image, not a video: `edged identify {photo}`"),
        (["scan", video, "--report", str(tmp_path / "report.txt")], "report.txt: exists and is not a folder"),
        (["enroll", "x", "--from-video", photo], "--from-video " + photo + " is a still image"),
        (["enroll", "x", photo, "--dry-run"], "--person, --report and --dry-run go with --from-video"),
        (["identify", str(tmp_path / "a.jpg"), str(tmp_path / "b.jpg")], "none of the 2 photos is a file"),
        (["detect", str(tmp_path / "a.jpg")], "a.jpg: no such file"),
    ]
    for argv, message in cases:
        result = run_edged(*argv, env=env)
        assert result.returncode == 1 and message in result.stderr, (argv, result.stderr)
        assert "embedder in use" not in result.stderr and "Traceback" not in result.stderr, (argv, result.stderr)
    # A report folder that cannot be made is one line too.
    result = run_edged("scan", video, "--every", "50", "--edge", "--report", str(tmp_path / "report.txt" / "sub"),
                       env=env)
    assert result.returncode == 1 and "Traceback" not in result.stderr and "report.txt" in result.stderr, result.stderr


def test_help_shows_what_each_command_takes():
    def help_of(*argv: str) -> str:
        return run_edged(*argv, "--help", check=True).stdout

    top = help_of()
    for command in ("detect", "identify", "enroll", "gallery", "run", "status", "clips", "config", "models", "scan"):
        assert f"    {command} " in top, command
    assert "name, rename, remove, reject, confirm, stats" in top
    gallery = help_of("gallery")
    for action in ("list", "remove", "rename", "name", "export", "import", "reject", "confirm", "stats"):
        assert f"    {action} " in gallery, action
    assert "recorded clips" in help_of("clips") and "    rm " in help_of("clips")
    # Options that do nothing for a command are not offered there.
    for argv, absent in ((("detect",), ("--threshold", "--gallery", "--false-accepts", "--embedder")),
                         (("models",), ("--threshold", "--gallery", "--detector", "--min-face")),
                         (("gallery", "list"), ("--threshold", "--detector", "--min-face", "--threads"))):
        text = help_of(*argv)
        assert not [a for a in absent if a in text], (argv, text)
    assert "--config" in help_of("config", "check")


def test_bench_measures_a_video_and_shares_inference_between_cameras(scenario_video, tmp_path):
    """`edged bench` on the scenario video, then on a configuration of two cameras: each gets
    figures for its own frames, and the rates it can have fit in the box's cores."""
    one = run_edged("bench", "--video", str(scenario_video), "--frames", "20", "--detections", "3", "--json",
                    check=True)
    document = json.loads(one.stdout)
    (video,) = document["cameras"]
    assert (video["width"], video["height"]) == (640, 360) and video["frames"] == 20
    assert video["decode_ms"] > 0 and video["detect_busy_ms"] > 0 and video["detect_idle_ms"] > 0
    assert video["faces_per_frame"] > 0 and video["embed_ms"] > 0
    assert "bench: camera video: decoding" in one.stderr  # progress, line by line off a terminal

    config = tmp_path / "edged.toml"
    (tmp_path / "yard.mp4").symlink_to(scenario_video)  # two cameras may not read one source
    config.write_text(f'[cameras.door]\nsource = "{scenario_video}"\ndetect_fps = 1.0\n'
                      f'[cameras.yard]\nsource = "{tmp_path / "yard.mp4"}"\n')
    two = json.loads(run_edged("bench", "--config", str(config), "--frames", "10", "--detections", "2", "--json",
                               check=True).stdout)
    door, yard = two["cameras"]
    assert (door["camera"], yard["camera"]) == ("door", "yard")
    assert door["detect_fps_wanted"] == 1.0 and door["detect_fps_possible"] <= 1.0
    # What both can have fits in the cores decoding leaves, and neither gets two at once.
    busy = sum(c["detect_fps_possible"] * c["detect_busy_cpu_ms"] for c in (door, yard))
    assert busy <= (two["cores"] - door["decode_cores"] - yard["decode_cores"]) * 1000 * 1.01, busy
    assert all(c["detect_fps_possible"] * c["detect_busy_ms"] <= 1000 * 1.01 for c in (door, yard))
    assert yard["detect_fps_possible"] > 0, two
    said = run_edged("bench", "--config", str(config), "--frames", "10", "--detections", "1", check=True).stdout
    assert "door (640x360 at 25 fps)" in said and "detections/s of the 1 asked for" in said, said
    assert run_edged("bench", "--frames", "1").returncode == 1
