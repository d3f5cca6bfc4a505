"""Configuration: layering, environment, secrets, and an error naming file and key for each
kind of mistake."""

from dataclasses import replace

import pytest

from edged.config import Config, ConfigError, load_config, show

from .conftest import ROOT, run_edged


@pytest.fixture
def etc(tmp_path):
    (tmp_path / "conf.d").mkdir()
    return tmp_path


def write(path, text):
    path.write_text(text)
    return path


def test_defaults_without_any_file(tmp_path, monkeypatch):
    import edged.config

    monkeypatch.setattr(edged.config, "DEFAULT_FILE", tmp_path / "edged.toml")
    assert load_config(None, {}) == Config()


def test_layering_drop_ins_then_environment(etc):
    main = write(etc / "edged.toml", '[camera]\nname = "door"\nsource = "rtsp://cam/1"\n[mqtt]\nport = 1884\n')
    write(etc / "conf.d" / "20-box.toml", '[camera]\nname = "porch"\n')
    write(etc / "conf.d" / "10-fleet.toml", '[mqtt]\nhost = "broker.lan"\nenabled = true\n')
    config = load_config(main, {"EDGED_MQTT_PORT": "1999", "EDGED_ALERTS_IGNORE": '["alice"]', "EDGED_GALLERY": "x"})
    assert (config.camera.name, config.camera.source) == ("porch", "rtsp://cam/1")
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.enabled) == ("broker.lan", 1999, True)
    assert config.alerts.ignore == ["alice"]
    assert config.sources == (str(main), str(etc / "conf.d" / "10-fleet.toml"), str(etc / "conf.d" / "20-box.toml"),
                              "environment variable EDGED_ALERTS_IGNORE", "environment variable EDGED_MQTT_PORT")


def test_secret_files_and_credentials_directory(etc, monkeypatch):
    creds = etc / "creds"
    creds.mkdir()
    write(creds / "mqtt-password", "s3cret\n")
    main = write(etc / "edged.toml", '[mqtt]\npassword_file = "mqtt-password"\n')
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = load_config(main, {})
    assert config.mqtt.password == "s3cret"
    assert "s3cret" not in show(config) and 'password = "****************"' in show(config)


@pytest.mark.parametrize("text, message", [
    ('[camera]\nsorce = "x"\n', "edged.toml: camera.sorce: unknown key"),
    ('[mqtt]\nport = "1883"\n', "edged.toml: mqtt.port: expected a whole number, got '1883'"),
    ("[mqtt]\nport = 70000\n", "edged.toml: mqtt.port: 70000 is out of range; expected 1 to 65535"),
    ('[alerts]\nmode = "loud"\n', "alerts.mode: 'loud' is out of range; expected none, unknowns, knowns or all"),
    ("[tracker]\ncredence = true\n", "tracker.credence: expected a whole number, got True"),
    ('[cameras]\nname = "x"\n', "edged.toml: cameras takes one table per camera: [cameras.NAME]"),
    ('[camras.door]\nsource = "x"\n', "edged.toml: [camras] is not a section; did you mean 'cameras'?"),
    ('[cameras.door]\nsorce = "x"\n', "edged.toml: cameras.door.sorce: unknown key; did you mean 'source'?"),
    ('[cameras.door]\nname = "x"\n', "edged.toml: cameras.door.name: the table's name is the camera's name"),
    ('[cameras."front door"]\nsource = "x"\n', "edged.toml: [cameras.front door]: camera names are 1 to 64 ASCII"),
    ('[cameras.door]\nsource = "x"\n[cameras.door.mqtt]\nport = 1\n',
     "edged.toml: [cameras.door.mqtt] is not a per-camera table; a camera may override alerts, clips"),
    ('[cameras.door]\nsource = "x"\n[cameras.door.stream]\nport = 1\n',
     "edged.toml: cameras.door.stream.port: set in [stream] only (one web server serves every camera)"),
    ('[cameras.door.alerts]\nmode = "some"\n', "edged.toml: cameras.door.alerts.mode: 'some' is out of range"),
    ('[cameras.a]\nsource = "rtsp://cam/1"\n[cameras.b]\nsource = "rtsp://cam/1"\n',
     "edged.toml: cameras a and b both read 'rtsp://cam/1'"),
    ('[cameras.a]\ndetect_fps = 100\n', "edged.toml: cameras.a.detect_fps: 100.0 is out of range"),
    ("camera = 3\n", "edged.toml: camera must be a table"),
    ('[mqtt]\npassword_file = "/nonexistent/pw"\n', "mqtt.password_file: cannot read secret file /nonexistent/pw"),
    ("[mqtt\n", "edged.toml: not valid TOML"),
    ("[quality]\nzone = [[1, 2], [3, 4]]\n", "quality.zone: [[1, 2], [3, 4]] is out of range"),
    ('[camera]\nsource = "/dev/video0"\ndetect_source = "rtsp://cam/sub"\n', "edged.toml: camera.detect_source is "
     "set, so camera.source ('/dev/video0') is recorded for clips, which needs an rtsp:// stream or a file"),
])
def test_each_kind_of_error_names_file_and_key(etc, text, message):
    main = write(etc / "edged.toml", text)
    with pytest.raises(ConfigError, match=message.replace("[", "\\[").replace("]", "\\]")
                       .replace("(", "\\(").replace(")", "\\)")):
        load_config(main, {})


def test_errors_in_drop_ins_and_environment_name_them(etc):
    main = write(etc / "edged.toml", "")
    write(etc / "conf.d" / "50-bad.toml", "[tracker]\ncredence = 0\n")
    with pytest.raises(ConfigError, match="conf.d/50-bad.toml: tracker.credence: 0 is out of range"):
        load_config(main, {})
    (etc / "conf.d" / "50-bad.toml").unlink()
    with pytest.raises(ConfigError, match="environment variable EDGED_MQTT_PORT: mqtt.port: expected a whole"):
        load_config(main, {"EDGED_MQTT_PORT": "many"})


def test_missing_explicit_file(tmp_path):
    with pytest.raises(ConfigError, match="nope.toml: no such configuration file"):
        load_config(tmp_path / "nope.toml", {})


def test_example_documents_every_key_and_loads():
    example = ROOT / "systemd" / "edged.toml"
    config = load_config(example, {})
    text = example.read_text()
    assert "# [cameras.door]" in text and "# [cameras.door.alerts]" in text
    for section_name, section in vars(Config()).items():
        if section_name in ("sources", "cameras"):
            continue
        assert f"[{section_name}]" in text
        for key, value in vars(section).items():
            assert f"\n{key} = " in text, f"systemd/edged.toml does not show {section_name}.{key}"
            if (section_name, key) == ("camera", "source"):
                continue  # required: the example names one (a configuration without one is refused)
            assert getattr(getattr(config, section_name), key) == value, f"{section_name}.{key} differs from default"


def test_config_check_and_show_commands(etc):
    good = write(etc / "edged.toml", '[camera]\nsource = "/dev/video0"\n[mqtt]\npassword = "hunter2"\n')
    result = run_edged("config", "check", "--config", str(good), check=True)
    assert "is valid" in result.stdout
    shown = run_edged("config", "show", "--config", str(good), check=True).stdout
    assert "hunter2" not in shown and "[mqtt]" in shown
    bad = write(etc / "bad.toml", "[mqtt]\nport = 0\n")
    result = run_edged("config", "check", "--config", str(bad))
    assert result.returncode == 78 and "bad.toml: mqtt.port: 0 is out of range" in result.stderr


def test_every_error_of_a_file_is_reported_with_a_suggestion(etc):
    main = write(etc / "edged.toml", '[camera]\nsorce = "x"\nloop = "yes"\n[mqtt]\nport = 0\nhots = "b"\n'
                                     '[alert]\nmode = "all"\n')
    with pytest.raises(ConfigError) as caught:
        load_config(main, {})
    text = str(caught.value)
    assert text.startswith("5 problems in the configuration:")
    assert "camera.sorce: unknown key; did you mean 'source'?" in text
    assert "camera.loop: expected true or false, got 'yes'" in text
    assert "mqtt.port: 0 is out of range" in text
    assert "mqtt.hots: unknown key; did you mean 'host'?" in text
    assert "[alert] is not a section; did you mean 'alerts'?" in text
    assert all(line.strip().startswith(str(main)) for line in text.splitlines()[1:])


def test_a_file_that_is_not_utf8_is_named(etc):
    main = etc / "edged.toml"
    main.write_bytes(b'[camera]\nname = "k\xfcche"\n')  # Latin-1
    with pytest.raises(ConfigError, match="edged.toml: line 2: not UTF-8 text .byte 0xfc."):
        load_config(main, {})


def test_config_show_writes_toml_that_reads_back(etc):
    import tomllib

    main = write(etc / "edged.toml", '[camera]\nname = "door"\nsource = """rtsp://admin:hunter2@cam/1"""\n'
                                     '[alerts]\nignore = ["line\\nbreak", "quote\\"d", "tab\\there"]\n'
                                     '[stream]\ntoken = "0123456789abcdefXYZ"\n')
    shown = run_edged("config", "show", "--config", str(main), check=True).stdout
    assert "hunter2" not in shown and "rtsp://admin:***@cam/1" in shown and "0123456789abcdef" not in shown
    document = tomllib.loads(shown)
    assert document["alerts"]["ignore"] == ["line\nbreak", "quote\"d", "tab\there"]
    again = write(etc / "shown.toml", shown)
    assert "is valid" in run_edged("config", "check", "--config", str(again), check=True).stdout


def test_the_camera_url_may_come_from_a_credential_file(etc, monkeypatch):
    creds = etc / "creds"
    creds.mkdir()
    write(creds / "camera-url", "rtsp://admin:hunter2@cam.lan/stream1\n")
    main = write(etc / "edged.toml", '[camera]\nsource_file = "camera-url"\n')
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    config = load_config(main, {})
    assert config.camera.source == "rtsp://admin:hunter2@cam.lan/stream1"
    assert "hunter2" not in show(config)


def test_cameras_tables_override_the_global_sections_per_camera(etc):
    main = write(etc / "edged.toml", '[camera]\nrtsp_transport = "udp"\n[alerts]\nmode = "all"\n'
                 '[quality]\nmin_face_px = 30\n[detector]\ndetect_fps = 4\n'
                 '[cameras.door]\nsource = "rtsp://cam/door"\ndetect_fps = 2\n'
                 '[cameras.door.alerts]\nmode = "knowns"\ncooldown_s = 30\n'
                 '[cameras.yard]\nsource = "rtsp://cam/yard"\ndetect_source = "rtsp://cam/yard-sub"\n'
                 '[cameras.yard.quality]\nzone = [[0, 0], [1, 0], [1, 1]]\n[cameras.yard.stream]\nmax_width = 640\n')
    # A drop-in changes one camera's key, as fleets do.
    write(etc / "conf.d" / "50-door.toml", '[cameras.door.clips]\npre_roll_s = 2\n')
    config = load_config(main, {})
    door, yard = config.camera_configs()
    assert (door.camera.name, door.camera.source, door.camera.rtsp_transport) == ("door", "rtsp://cam/door", "udp")
    assert (door.detect_fps, yard.detect_fps) == (2.0, 4.0)
    assert (door.alerts.mode, door.alerts.cooldown_s, yard.alerts.mode) == ("knowns", 30.0, "all")
    assert (door.clips.pre_roll_s, yard.clips.pre_roll_s) == (2.0, 5.0)
    assert (door.quality.zone, yard.quality.zone) == ([], [[0, 0], [1, 0], [1, 1]])
    assert (door.quality.min_face_px, yard.quality.min_face_px) == (30.0, 30.0)
    assert (door.stream.max_width, yard.stream.max_width) == (1280, 640)
    assert yard.camera.detect_source == "rtsp://cam/yard-sub"
    assert config.camera.name == "door"  # "the" camera of the box is the first
    # Shown as TOML that reads back to the same cameras.
    shown = show(config)
    assert "[cameras.door.alerts]" in shown and "[camera]\n" not in shown
    (etc / "shown").mkdir()
    again = load_config(write(etc / "shown" / "edged.toml", shown), {})
    assert again.camera_configs() == [replace(v, sources=again.sources) for v in config.camera_configs()]


def test_one_camera_table_alone_is_still_one_camera(etc):
    config = load_config(write(etc / "edged.toml", '[camera]\nname = "porch"\nsource = "rtsp://cam/1"\n'), {})
    assert [c.camera.name for c in config.camera_configs()] == ["porch"] and config.cameras == ()


def test_a_camera_needs_a_source(etc, tmp_path):
    """A camera table without a source, a detect_source alone, or no configuration at all is
    refused by config check and run, never guessed to be /dev/video0."""
    for text in ('[cameras.door]\ndetect_fps = 2.0\n', '[camera]\ndetect_source = "rtsp://cam/sub"\n'):
        path = write(etc / "edged.toml", text)
        result = run_edged("config", "check", "--config", str(path))
        assert result.returncode == 78 and ".source is required" in result.stderr, result.stderr
    result = run_edged("run", env={"EDGED_GALLERY": str(tmp_path / "g.db")})  # no /etc/edged/edged.toml here
    assert result.returncode == 78 and "camera.source is required" in result.stderr, result.stderr[-500:]
