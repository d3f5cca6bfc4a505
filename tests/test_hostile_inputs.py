"""Files and names an attacker (or an accident) crafts: configuration files that nest without
end or hold bytes that are not text, galleries cut in half, outboxes that are not UTF-8, a
models folder with no embedder, FIFOs and devices given as photos, JPEGs cut short with an end
marker appended, and names that would pass for the box's own stranger ids. Each gets one clear
line naming what is wrong, within seconds, and nothing already captured is lost."""

import json
import os
import shutil
import signal
import time
from pathlib import Path

import pytest
from services import Daemon, Mosquitto, Subscriber, config, free_port, gallery_copy, wait_until

from edged.config import load_config
from edged.errors import ConfigError, GalleryError
from edged.gallery import Gallery

from .conftest import DATA, run_edged

OBAMA = DATA / "faces" / "obama"


def hostile_files(folder: Path) -> dict[str, Path]:
    """Configuration files that once crashed `config check` and a reload."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "password").write_bytes(b"\xff\xfe not utf-8 \x80")
    files = {
        "password_file": f'[mqtt]\npassword_file = "{folder / "password"}"\n',
        "dotted": "[" + ".".join(f"t{n}" for n in range(3000)) + "]\nx = 1\n",
        "nested": "x = " + "[" * 5000 + "]" * 5000 + "\n",
        "many_errors": "".join(f"[s{n}]\nk = 1\n" for n in range(500)),
    }
    paths = {}
    for name, text in files.items():
        paths[name] = folder / f"{name}.toml"
        paths[name].write_text(text)
    big = folder / "big.toml"
    with big.open("w") as f:
        for n in range(600_000):
            f.write(f"k{n} = {n}\n")
    paths["big"] = big
    return paths


def test_config_check_answers_every_hostile_file_with_one_message(tmp_path):
    for name, path in hostile_files(tmp_path).items():
        started = time.monotonic()
        result = run_edged("config", "check", "--config", str(path))
        assert result.returncode == 78, (name, result.stderr[-500:])
        assert "Traceback" not in result.stderr and len(result.stderr) < 12000, (name, result.stderr[-500:])
        assert time.monotonic() - started < 20, name
    assert "not UTF-8" in run_edged("config", "check", "--config", str(tmp_path / "password_file.toml")).stderr
    assert "larger than 1 MB" in run_edged("config", "check", "--config", str(tmp_path / "big.toml")).stderr
    assert "and 470 more" in run_edged("config", "check", "--config", str(tmp_path / "many_errors.toml")).stderr


def test_config_check_and_run_agree_on_exposure_and_camera_names(tmp_path):
    cases = {"bind": '[stream]\nbind = "0.0.0.0"\n', "cafe": '[cameras."café"]\nsource = "x.mp4"\n',
             "long": f'[cameras.{"c" * 300}]\nsource = "x.mp4"\n', "camera_name": '[camera]\nname = "café"\n'}
    for name, text in cases.items():
        path = tmp_path / f"{name}.toml"
        path.write_text(text)
        with pytest.raises(ConfigError):
            load_config(path, {})
        assert run_edged("config", "check", "--config", str(path)).returncode == 78, name
    daemon = Daemon(tmp_path / "run", cases["bind"])
    daemon.start()
    assert daemon.process.wait(30) == 78 and "listens beyond this machine" in daemon.text()


def test_a_bad_configuration_on_sighup_is_refused_and_the_daemon_runs_on(scenario_video, enrolled_gallery,
                                                                         tmp_path):
    port = free_port()
    gallery = gallery_copy(enrolled_gallery, tmp_path / "state")
    good = config(scenario_video, gallery, port)
    daemon = Daemon(tmp_path, good)
    daemon.start()
    try:
        wait_until(lambda: daemon.status(port), 60, "the status endpoint")
        for name, path in hostile_files(tmp_path / "hostile").items():
            refusals = daemon.text().count("reload refused")
            if name == "password_file":  # the running file with one secret that is not text
                hostile = good.replace("[mqtt]\n", f'[mqtt]\npassword_file = "{tmp_path / "hostile" / "password"}"\n')
            else:
                hostile = path.read_text()
            daemon.config.write_text(hostile)
            daemon.signal(signal.SIGHUP)
            wait_until(lambda seen=refusals: daemon.text().count("reload refused") > seen, 30, f"the refusal of {name}")
            assert daemon.process.poll() is None, name
            assert daemon.status(port)["last_reload"]["ok"] is False
        assert "Traceback" not in daemon.text()
        daemon.config.write_text(good)
        daemon.signal(signal.SIGHUP)
        wait_until(lambda: daemon.status(port)["last_reload"]["ok"], 30, "a good reload")
    finally:
        assert daemon.stop() == 0


def start_fails_fast(folder: Path, text: str, env: dict[str, str] | None = None) -> str:
    daemon = Daemon(folder, text, env=env)
    started = time.monotonic()
    daemon.start()
    code = daemon.process.wait(40)
    assert code == 78, daemon.text()[-800:]
    assert time.monotonic() - started < 40
    assert "Traceback" not in daemon.text()
    return daemon.text()


def test_start_up_errors_fail_within_seconds_with_one_line(scenario_video, enrolled_gallery, tmp_path):
    half = gallery_copy(enrolled_gallery, tmp_path / "half")
    data = half.read_bytes()
    half.write_bytes(data[:len(data) // 2])
    text = start_fails_fast(tmp_path / "gallery", config(scenario_video, half, free_port()))
    assert str(half) in text and "gallery" in text
    no_embedder = tmp_path / "models"
    no_embedder.mkdir()
    good = gallery_copy(enrolled_gallery, tmp_path / "good")
    text = start_fails_fast(tmp_path / "models-run", config(scenario_video, good, free_port())
                            + f'[models]\ndir = "{no_embedder}"\n')
    assert "embedder" in text


def test_an_outbox_that_is_not_utf8_loses_only_its_bad_lines(scenario_video, enrolled_gallery, tmp_path):
    broker = Mosquitto(tmp_path / "mosquitto")
    broker.start()
    state = tmp_path / "state"
    gallery = gallery_copy(enrolled_gallery, state)
    kept = {"seq": 1, "topic": "edged/box1/door/alerts", "payload": '{"kept": true}', "binary": False, "qos": 1,
            "retain": False}
    (state / "mqtt-outbox.jsonl").write_bytes(b"\xff\xfe\x00garbage\n" + json.dumps(kept).encode() + b"\n\x80\x81\n")
    port = free_port()
    subscriber = Subscriber(broker.port, topic="edged/box1/door/alerts", client_id="outbox-reader")
    text = config(scenario_video, gallery, port).replace("[mqtt]\nstats_interval_s = 1.0\n", "")
    daemon = Daemon(tmp_path, text + f'[device]\nname = "box1"\n[mqtt]\nenabled = true\nhost = "127.0.0.1"\n'
                    f"port = {broker.port}\n")
    daemon.start()
    try:
        wait_until(lambda: any(b'"kept": true' in p for p in subscriber.on("edged/box1/door/alerts")), 60,
                   "the message kept before the restart")
        assert "unreadable outbox line skipped" in daemon.text()
    finally:
        assert daemon.stop() == 0
        subscriber.close()
        broker.stop()


def test_fifos_devices_and_cut_jpegs_are_refused_and_the_other_files_read(tmp_path):
    fifo = tmp_path / "fifo.jpg"
    os.mkfifo(fifo)
    zero = tmp_path / "zero.jpg"
    zero.symlink_to("/dev/zero")
    whole = (OBAMA / "obama.jpg").read_bytes()
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(whole[:len(whole) // 2] + b"\xff\xd9")
    good = tmp_path / "good.jpg"
    shutil.copy(OBAMA / "obama2.jpg", good)
    started = time.monotonic()
    result = run_edged("identify", str(fifo), str(zero), str(cut), str(good), "--json",
                       env={"EDGED_GALLERY": str(tmp_path / "g.db")})
    assert time.monotonic() - started < 120
    images = json.loads(result.stdout)["images"]
    assert "not a regular file" in images[0]["error"] and "not a regular file" in images[1]["error"]
    assert "truncated" in images[2]["error"]
    assert len(images[3]["faces"]) == 1
    assert "MemoryError" not in result.stderr and "Traceback" not in result.stderr


def test_the_anonymous_id_form_is_reserved(tmp_path):
    vector = [1.0] + [0.0] * 511
    with Gallery(tmp_path / "g.db") as gallery:
        gallery.enroll("alice", [vector], "m1")
        stranger = gallery.new_anonymous([vector], "m1")
        for name in ("unknown-1", "Unknown-7", "unknown-99"):
            with pytest.raises(GalleryError, match="reserved"):
                gallery.rename("alice", name)
            with pytest.raises(GalleryError, match="reserved"):
                gallery.enroll(name, [vector], "m1")
            with pytest.raises(GalleryError, match="reserved"):
                gallery.name_anonymous(stranger, name)
        export = tmp_path / "export.json"
        gallery.export(export, "m1")
    document = json.loads(export.read_text())
    document["people"].append({"name": "unknown-3", "embeddings": document["people"][0]["embeddings"]})
    export.write_text(json.dumps(document))
    with Gallery(tmp_path / "other.db") as other:
        other.import_file(export, "m1", 512)
        names = [p.name for p in other.people()]
        assert "alice" in names and "unknown-3" not in names
        deep = tmp_path / "deep.json"
        deep.write_text('{"format": ' + "[" * 100000 + "]" * 100000 + "}")
        with pytest.raises(GalleryError, match="nested too deeply|not an edged gallery export"):
            other.import_file(deep, "m1", 512)
