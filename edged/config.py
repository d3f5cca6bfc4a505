"""Configuration: TOML files layered for fleets, then EDGED_* environment variables; every
value checked at start-up, every error naming the file, the key path and what was expected.

Order (later wins): the main file (/etc/edged/edged.toml, or --config FILE), then the
drop-ins in conf.d/ beside it in name order, then EDGED_<SECTION>_<KEY> variables. A key
ending in `_file` names a file holding a secret (relative names are looked up in systemd's
$CREDENTIALS_DIRECTORY first), so passwords stay out of fleet-wide TOML.
"""

from __future__ import annotations

import difflib
import os
import re
import sys
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any, get_args, get_origin, get_type_hints

from edged.errors import ConfigError
from edged.files import read_regular_file
from edged.redact import mask_url

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10 (JetPack 6)
    import tomli as tomllib

MAX_FILE_BYTES = 1 << 20  # a configuration file is a few KB; a larger one is refused unread
HIDDEN = "*" * 16  # a secret as `config show` prints it: as long as the shortest token allowed
MAX_ERRORS = 30  # problems listed in one message; the rest are counted
LOOPBACK = ("127.0.0.1", "localhost", "::1")
MIN_TOKEN_LENGTH = 16
KEY_ADVICE = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))'"
TOKEN_ADVICE = "generate one with: python3 -c 'import secrets; print(secrets.token_urlsafe(24))'"
CAMERA_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
CONFIG_EXIT = 78  # EX_CONFIG: systemd's RestartPreventExitStatus=78 stops restart loops on it
DEFAULT_FILE = Path("/etc/edged/edged.toml")
SECRET_KEYS = {"password", "token", "urls", "s3_access_key", "s3_secret_key", "key"}


def check(expect: str, ok: Any) -> dict[str, Any]:
    """Field metadata: a predicate on the value and the words for what it should be."""
    return {"expect": expect, "ok": ok}


def _positive(v: float) -> bool:
    return v > 0


@dataclass(frozen=True)
class DeviceConfig:
    # "" = this host's name: every box its own ids, client id and topics without configuring it.
    name: str = field(default="", metadata=check("letters, digits, - or _ (ASCII)", lambda v: not v or (
        v.isascii() and v.replace("-", "").replace("_", "").isalnum())))

    @property
    def resolved_name(self) -> str:
        import re
        import socket

        return self.name or re.sub(r"[^A-Za-z0-9_-]+", "-", socket.gethostname()).strip("-") or "edged"


@dataclass(frozen=True)
class CameraConfig:
    # One rule wherever a camera's name goes: URLs (/cameras/NAME/), MQTT topics, client ids, clip files.
    name: str = field(default="camera", metadata=check("1 to 64 ASCII letters, digits, - or _",
                                                       lambda v: bool(CAMERA_NAME.fullmatch(v))))
    # Required to run (needs_cameras): a configuration that names no camera never opens one by guess.
    source: str = ""
    # The camera's substream for detection and tracking ("" = detect on `source`); `source` is
    # then recorded for clips (its packets, never decoded) and must be a file or a stream.
    detect_source: str = ""
    loop: bool = False  # video files: start again at the end
    realtime: bool = True  # video files: paced at their own fps (False: as fast as possible)
    rtsp_transport: str = field(default="tcp", metadata=check("tcp or udp", lambda v: v in ("tcp", "udp")))
    open_timeout_s: float = field(default=10.0, metadata=check("> 0", _positive))
    reconnect_max_s: float = field(default=30.0, metadata=check("> 0", _positive))
    # Detections per second for this camera; 0 = [detector] detect_fps.
    detect_fps: float = field(default=0.0, metadata=check("0 ([detector] detect_fps) or between 0.1 and 60",
                                                          lambda v: v == 0 or 0.1 <= v <= 60))


@dataclass(frozen=True)
class DetectorConfig:
    profile: str = field(default="edge", metadata=check("edge or facenet", lambda v: v in ("edge", "facenet")))
    min_face_size: float = field(default=0.0, metadata=check("0 (profile's) or >= 12", lambda v: v == 0 or v >= 12))
    max_side: int = field(default=-1, metadata=check("-1 (profile's), 0 (none) or >= 64",
                                                     lambda v: v in (-1, 0) or v >= 64))
    detect_fps: float = field(default=5.0, metadata=check("between 0.1 and 60", lambda v: 0.1 <= v <= 60))
    # Cores one detection may use at once (its pyramid levels and crop batches side by side).
    threads: int = field(default=0, metadata=check("0 (one per core) to 64", lambda v: 0 <= v <= 64))


@dataclass(frozen=True)
class ModelsConfig:
    dir: str = ""  # "" = $EDGED_MODELS or the state directory's models/
    embedder: str = ""  # "" = the preferred installed one


PROVIDER_NAMES = ("auto", "TensorrtExecutionProvider", "CUDAExecutionProvider", "OpenVINOExecutionProvider",
                  "CPUExecutionProvider")


@dataclass(frozen=True)
class RuntimeConfig:
    # "auto": per model the best provider the installed onnxruntime offers; or names, best first.
    providers: list[str] = field(default_factory=lambda: ["auto"], metadata=check(
        f"a non-empty list of {', '.join(PROVIDER_NAMES)}", lambda v: bool(v) and all(
            p in PROVIDER_NAMES or p.endswith("ExecutionProvider") for p in v)))
    # Threads that run detection and tracking, each on the camera that waited longest: 0 = one
    # per camera, at most one per core.
    inference_workers: int = field(default=0, metadata=check("0 (one per camera, at most one per core) to 16",
                                                             lambda v: 0 <= v <= 16))


@dataclass(frozen=True)
class TrackerConfig:
    max_age_s: float = field(default=1.0, metadata=check("> 0", _positive))
    credence: int = field(default=3, metadata=check("1 to 100", lambda v: 1 <= v <= 100))
    reid_max_interval: int = field(default=16, metadata=check("1 to 1024", lambda v: 1 <= v <= 1024))


@dataclass(frozen=True)
class QualityConfig:
    min_face_px: float = field(default=40.0, metadata=check(">= 0", lambda v: v >= 0))
    min_sharpness: float = field(default=30.0, metadata=check(">= 0", lambda v: v >= 0))
    max_yaw: float = field(default=0.45, metadata=check("between 0 and 2", lambda v: 0 < v <= 2))
    zone: list[list[float]] = field(default_factory=list, metadata=check(
        "[] or at least 3 [x, y] points", lambda v: not v or (len(v) >= 3 and all(len(p) == 2 for p in v))))


@dataclass(frozen=True)
class MotionConfig:
    """Motion-gated detection (edged/vision/motion.py; Frigate's settings as the starting point)."""

    enabled: bool = True  # false: detect at detect_fps whatever happens (the old behaviour)
    # Detections per second while nothing moves and no track is alive: someone standing still
    # is still found. 0: none, detection only on motion (Frigate's way; the cheapest).
    idle_detect_fps: float = field(default=0.5, metadata=check("0 (only on motion) or between 0.05 and 60",
                                                               lambda v: v == 0 or 0.05 <= v <= 60))
    # An idle heartbeat is skipped while the picture is as the last whole-frame detection saw it
    # (by this section's threshold and contour_area, against that picture, so a slow arrival
    # still counts), for at most this many seconds; 0: every heartbeat detects.
    idle_unchanged_s: float = field(default=30.0, metadata=check("0 (never skipped) to 3600",
                                                                 lambda v: 0 <= v <= 3600))
    frame_height: int = field(default=120, metadata=check("60 to 480 rows", lambda v: 60 <= v <= 480))
    threshold: int = field(default=30, metadata=check("1 to 254 (of 255)", lambda v: 1 <= v <= 254))
    contour_area: int = field(default=10, metadata=check("1 to 10000 sampled pixels", lambda v: 1 <= v <= 10000))
    lightning_threshold: float = field(default=0.8, metadata=check("between 0.1 and 1", lambda v: 0.1 <= v <= 1))
    frame_alpha: float = field(default=0.01, metadata=check("between 0.001 and 0.5", lambda v: 0.001 <= v <= 0.5))
    # Detect only around the motion and the tracked faces when they cover a small part of the
    # frame, at the frame's own resolution (edged/vision/regions.py).
    detect_crops: bool = True


@dataclass(frozen=True)
class RecognitionConfig:
    gallery: str = ""  # "" = the state directory's gallery.db
    # Strangers named as someone, per face, measured by tools/calibrate.py (20 enrolled people).
    false_accepts: str = field(default="1%", metadata=check('"1%" or "5%"', lambda v: v in ("1%", "5%")))
    threshold: float = field(default=0.0, metadata=check("0 (from false_accepts) or a cosine in (0, 1)",
                                                         lambda v: 0 <= v < 1))


@dataclass(frozen=True)
class AlertsConfig:
    mode: str = field(default="unknowns", metadata=check("none, unknowns, knowns or all",
                                                         lambda v: v in ("none", "unknowns", "knowns", "all")))
    # One alert per visit: a person alerts again only after not being seen for this long (the
    # default is mqtt.presence_timeout_s's, so an alert and an arrival are the same visit).
    cooldown_s: float = field(default=30.0, metadata=check(">= 0 (0: once per track)", lambda v: v >= 0))
    # A track with no answer yet (faces too small or blurred to embed) alerts after this; 0 = never.
    unidentified_after_s: float = field(default=10.0, metadata=check(">= 0", lambda v: v >= 0))
    ignore: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class MqttConfig:
    enabled: bool = False
    host: str = "localhost"
    port: int = field(default=1883, metadata=check("1 to 65535", lambda v: 1 <= v <= 65535))
    prefix: str = field(default="edged", metadata=check("a topic level without + or #",
                                                        lambda v: bool(v) and not set(v) & set("+#")))
    username: str = ""
    password: str = ""
    tls: bool = False
    ca_file: str = ""
    # A broker that stops answering is noticed within this (an acknowledgement that late).
    keepalive_s: int = field(default=15, metadata=check("2 to 3600", lambda v: 2 <= v <= 3600))
    presence_timeout_s: float = field(default=30.0, metadata=check("> 0", _positive))
    discovery: bool = True
    discovery_prefix: str = "homeassistant"
    outbox_max: int = field(default=1000, metadata=check("1 to 1000000", lambda v: 1 <= v <= 1_000_000))
    stats_interval_s: float = field(default=10.0, metadata=check(">= 1", lambda v: v >= 1))
    # Home Assistant camera entity: the annotated live view as a picture this often (0: none).
    camera_interval_s: float = field(default=10.0, metadata=check("0 (off) or 1 to 3600",
                                                                  lambda v: v == 0 or 1 <= v <= 3600))
    # The key shared with whoever may command the box over MQTT (better in key_file or a systemd
    # credential): gallery commands and the instance claim are HMAC-signed with it.
    key: str = field(default="", metadata=check("\"\" or at least 16 characters", lambda v: not v or len(v) >= 16))
    # Gallery corrections on <prefix>/<device>/gallery/set: "auto" accepts signed ones when a key
    # is set (and none without one), "off" none.
    gallery_commands: str = field(default="auto", metadata=check("auto or off", lambda v: v in ("auto", "off")))


@dataclass(frozen=True)
class FleetConfig:
    # Several boxes sharing one memory of faces over [mqtt]'s broker: records signed with mqtt.key.
    enabled: bool = False
    name: str = field(default="home", metadata=check("letters, digits, - or _ (ASCII, at most 64)", lambda v: (
        0 < len(v) <= 64 and v.isascii() and v.replace("-", "").replace("_", "").isalnum())))


@dataclass(frozen=True)
class ClipsConfig:
    enabled: bool = True
    pre_roll_s: float = field(default=5.0, metadata=check("0 to 60", lambda v: 0 <= v <= 60))
    post_roll_s: float = field(default=10.0, metadata=check("1 to 300", lambda v: 1 <= v <= 300))
    max_length_s: float = field(default=60.0, metadata=check("5 to 600", lambda v: 5 <= v <= 600))
    max_buffer_mb: float = field(default=30.0, metadata=check("1 to 500", lambda v: 1 <= v <= 500))
    keep_days: float = field(default=7.0, metadata=check("> 0", _positive))
    keep_mb: float = field(default=2000.0, metadata=check("> 0", _positive))
    annotate: bool = False  # boxes and names drawn into clips (re-encodes even H.264 sources)
    s3_bucket: str = ""  # "" = clips stay on this box only
    s3_prefix: str = "edged/"
    s3_endpoint: str = ""  # "" = AWS, or $AWS_ENDPOINT_URL; MinIO: "http://minio.lan:9000"
    s3_access_key: str = ""  # "" = boto3's own (environment, ~/.aws); better: s3_access_key_file
    s3_secret_key: str = ""  # better: s3_secret_key_file
    s3_url_expiry_s: int = field(default=604800, metadata=check("60 to 604800 (7 days, S3's longest)",
                                                                lambda v: 60 <= v <= 604800))


@dataclass(frozen=True)
class NotifyConfig:
    urls: list[str] = field(default_factory=list)  # Apprise URLs; better in urls_file, one per line
    title: str = "edged: ${person} at ${camera}"
    body: str = ("${person} was seen at ${camera} at ${time} (similarity ${similarity}).\n"
                 "Snapshot: ${snapshot_url}\nClip: ${clip_url}")
    attach_snapshot: bool = True
    attach: str = field(default="face", metadata=check("face or frame", lambda v: v in ("face", "frame")))
    clip_ready: bool = False  # a second notification when the alert's clip is ready to play
    timeout_s: float = field(default=10.0, metadata=check("between 1 and 120", lambda v: 1 <= v <= 120))
    retries: int = field(default=3, metadata=check("0 to 10", lambda v: 0 <= v <= 10))
    base_url: str = ""  # how phones reach this box's web server; "" = http://<this host's name>:<stream.port>


@dataclass(frozen=True)
class StreamConfig:
    bind: str = "127.0.0.1"
    port: int = field(default=8090, metadata=check("0 to 65535", lambda v: 0 <= v <= 65535))
    token: str = ""
    username: str = ""
    password: str = ""
    fps: float = field(default=10.0, metadata=check("between 0.5 and 30", lambda v: 0.5 <= v <= 30))
    quality: int = field(default=80, metadata=check("JPEG quality 30 to 95", lambda v: 30 <= v <= 95))
    privacy_blur: str = field(default="none", metadata=check("none or unknowns", lambda v: v in ("none", "unknowns")))
    rtsp_url: str = field(default="", metadata=check("\"\" or an rtsp:// URL",
                                                     lambda v: not v or v.lower().startswith(("rtsp://", "rtsps://"))))
    rtsp_transport: str = field(default="tcp", metadata=check("tcp or udp", lambda v: v in ("tcp", "udp")))
    max_width: int = field(default=1280, metadata=check("0 (as captured) or 160 to 7680",
                                                        lambda v: v == 0 or 160 <= v <= 7680))
    max_viewers: int = field(default=10, metadata=check("1 to 100", lambda v: 1 <= v <= 100))
    # How long a link in an alert (signed for its one file) opens that file.
    link_expiry_s: int = field(default=604800, metadata=check("60 to 31536000 (a year)",
                                                              lambda v: 60 <= v <= 31_536_000))
    # Names the web server answers to besides this host's own and its addresses (a reverse
    # proxy's); a request for any other host is refused, so a web page cannot rebind to the box.
    host_names: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Config:
    device: DeviceConfig = DeviceConfig()
    camera: CameraConfig = CameraConfig()
    detector: DetectorConfig = DetectorConfig()
    models: ModelsConfig = ModelsConfig()
    runtime: RuntimeConfig = RuntimeConfig()
    tracker: TrackerConfig = TrackerConfig()
    quality: QualityConfig = QualityConfig()
    motion: MotionConfig = MotionConfig()
    recognition: RecognitionConfig = RecognitionConfig()
    alerts: AlertsConfig = AlertsConfig()
    mqtt: MqttConfig = MqttConfig()
    fleet: FleetConfig = FleetConfig()
    clips: ClipsConfig = ClipsConfig()
    notify: NotifyConfig = NotifyConfig()
    stream: StreamConfig = StreamConfig()
    sources: tuple[str, ...] = ()  # the files and variables it came from, for messages
    # With [cameras.NAME] tables: one whole configuration per camera (its camera table, and its
    # alerts, clips, motion, quality, stream and tracker tables over the global ones); () = [camera] alone.
    cameras: tuple[Config, ...] = ()

    def camera_configs(self) -> list[Config]:
        """The configuration of each camera, in the order the file gives them."""
        return list(self.cameras) or [self]

    @property
    def detect_fps(self) -> float:
        return self.camera.detect_fps or self.detector.detect_fps


NOT_SECTIONS = ("sources", "cameras")
# What a [cameras.NAME] table may hold besides the camera's own keys; server-wide stream keys
# stay in [stream] (one web server serves every camera).
PER_CAMERA_TABLES = ("alerts", "clips", "motion", "quality", "stream", "tracker")
SERVER_STREAM_KEYS = ("bind", "port", "token", "username", "password", "max_viewers", "link_expiry_s",
                      "host_names")


# -- loading ------------------------------------------------------------------------------------


def config_files(main: Path | None) -> list[Path]:
    """The main file and its drop-ins, in the order they apply."""
    explicit = main is not None
    main = main or DEFAULT_FILE
    if explicit and not main.is_file():
        raise ConfigError(f"{main}: no such configuration file")
    files = [main] if main.is_file() else []
    drop_ins = main.parent / "conf.d"
    if drop_ins.is_dir():
        files += sorted(p for p in drop_ins.iterdir() if p.suffix == ".toml")
    return files


def _read(path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(read_regular_file(path, MAX_FILE_BYTES).decode("utf-8"))
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror})") from None
    except RecursionError:
        raise ConfigError(f"{path}: not usable TOML: tables or arrays nested too deeply") from None
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[:exc.start].count(b"\n") + 1
        raise ConfigError(f"{path}: line {line}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x}); "
                          "save the file as UTF-8") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from None


def _merge(target: dict[str, Any], layer: dict[str, Any], origin: str, origins: dict[str, str],
           prefix: str = "") -> None:
    for key, value in layer.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            _merge(target[key], value, origin, origins, path + ".")
        else:
            target[key] = value
            _note(value, path, origin, origins)


def _note(value: Any, path: str, origin: str, origins: dict[str, str]) -> None:
    origins[path] = origin
    if isinstance(value, dict):
        for key, inner in value.items():
            _note(inner, f"{path}.{key}", origin, origins)


def _env_layer(environ: dict[str, str]) -> tuple[dict[str, Any], dict[str, str]]:
    """EDGED_SECTION_KEY=value -> {section: {key: value}}; values are TOML literals where they
    parse as one (5, 0.5, true, ["a"]), else plain strings."""
    sections = {f.name for f in fields(Config) if f.name not in NOT_SECTIONS}
    layer: dict[str, Any] = {}
    names: dict[str, str] = {}
    for name, raw in environ.items():
        if not name.startswith("EDGED_"):
            continue
        rest = name[len("EDGED_"):].lower()
        section = next((s for s in sections if rest.startswith(s + "_")), None)
        if section is None:
            continue  # EDGED_GALLERY, EDGED_MODELS ... belong to the command line
        key = rest[len(section) + 1:]
        try:
            value = tomllib.loads(f"v = {raw}")["v"]
        except tomllib.TOMLDecodeError:
            value = raw
        layer.setdefault(section, {})[key] = value
        names[f"{section}.{key}"] = f"environment variable {name}"
    return layer, names


def _secret(path_text: str, where: str) -> str:
    path = Path(path_text)
    credentials = os.environ.get("CREDENTIALS_DIRECTORY")
    if not path.is_absolute() and credentials and (Path(credentials) / path).is_file():
        path = Path(credentials) / path
    try:
        return read_regular_file(path, 64 * 1024).decode("utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{where}: cannot read secret file {path} ({exc.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{where}: secret file {path} is not UTF-8 text") from None


def _type_ok(value: Any, hint: Any) -> bool:
    origin = get_origin(hint)
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    if origin is list:
        (inner,) = get_args(hint)
        return isinstance(value, list) and all(_type_ok(v, inner) for v in value)
    return False


def _type_name(hint: Any) -> str:
    if get_origin(hint) is list:
        return f"a list of {_type_name(get_args(hint)[0])}"
    return {bool: "true or false", int: "a whole number", float: "a number", str: "a string"}.get(hint, str(hint))


def _suggest(key: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
    return f"did you mean {close[0]!r}? " if close else ""


def _build(cls: type, table: dict[str, Any], section: str, origins: dict[str, str], errors: list[str]) -> Any:
    """The section's dataclass from its table; every problem is added to `errors` (and the
    value it concerns left at its default), so one run reports them all."""
    hints = get_type_hints(cls)
    known = {f.name for f in fields(cls)}
    secrets = {f"{name}_file" for name in known}
    values: dict[str, Any] = {}
    for key, value in table.items():
        path = f"{section}.{key}"
        where = f"{origins.get(path, 'configuration')}: {path}"
        if key in secrets and key not in known:
            if not isinstance(value, str):
                errors.append(f"{where}: expected a file name, got {value!r}")
                continue
            try:
                secret = _secret(value, where)
            except ConfigError as exc:
                errors.append(str(exc))
                continue
            name = key[:-len("_file")]
            if get_origin(hints[name]) is list:  # one item a line; blank lines and # comments skipped
                values[name] = [line.strip() for line in secret.splitlines()
                                if line.strip() and not line.strip().startswith("#")]
            else:
                values[name] = secret
            continue
        if key not in known:
            errors.append(f"{where}: unknown key; {_suggest(key, known | secrets)}{section} takes {sorted(known)}")
            continue
        hint = hints[key]
        if isinstance(value, int) and not isinstance(value, bool) and hint is float:
            value = float(value)
        if not _type_ok(value, hint):
            errors.append(f"{where}: expected {_type_name(hint)}, got {value!r}")
            continue
        rule = next(f for f in fields(cls) if f.name == key).metadata
        if rule and not rule["ok"](value):
            shown = "the value given" if key in SECRET_KEYS else repr(value)  # a secret stays out of logs
            errors.append(f"{where}: {shown} is out of range; expected {rule['expect']}")
            continue
        values[key] = value
    return cls(**values)


def load_config(main: Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Reads, merges and checks the configuration; raises one ConfigError listing every
    problem (the first MAX_ERRORS), each naming the file (or variable), the key and what was
    expected. Whatever a file holds, the answer is a Config or a ConfigError."""
    try:
        return _load_config(main, environ)
    except ConfigError:
        raise
    except RecursionError:
        raise ConfigError("the configuration nests tables or arrays too deeply") from None
    except (ValueError, TypeError, OSError) as exc:
        raise ConfigError(f"the configuration cannot be used: {exc}") from None


def _load_config(main: Path | None, environ: dict[str, str] | None) -> Config:
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    files = config_files(main)
    for path in files:
        _merge(merged, _read(path), str(path), origins)
    env_layer, env_names = _env_layer(dict(os.environ if environ is None else environ))
    _merge(merged, env_layer, "environment", origins)
    origins.update(env_names)
    sections = {f.name: f for f in fields(Config) if f.name not in NOT_SECTIONS}
    built: dict[str, Any] = {}
    errors: list[str] = []
    cameras = merged.pop("cameras", None)
    for name, value in merged.items():
        where = origins.get(name, "configuration")
        if name not in sections:
            errors.append(f"{where}: [{name}] is not a section; {_suggest(name, set(sections) | {'cameras'})}"
                          f"expected one of {sorted([*sections, 'cameras'])}")
        elif not isinstance(value, dict):
            errors.append(f"{where}: {name} must be a table ([{name}])")
        else:
            built[name] = _build(get_type_hints(Config)[name], value, name, origins, errors)
    views: list[Config] = []
    if cameras is not None and not errors:
        views = _camera_views(Config(**built), cameras, merged, origins, errors)
    if not errors:
        for view in views or [Config(**built)]:
            errors += _cross_checks(view, origins)
        errors += _shared_sources(views, origins)
    if errors:
        shown = [e[:500] for e in errors[:MAX_ERRORS]]
        if len(errors) > MAX_ERRORS:
            shown.append(f"... and {len(errors) - MAX_ERRORS} more")
        raise ConfigError(mask_url(errors[0][:500] if len(errors) == 1 else f"{len(errors)} problems in the "
                                   "configuration:\n" + "\n".join(f"  {e}" for e in shown)))
    sources = tuple(str(p) for p in files) + tuple(sorted(set(env_names.values())))
    views = [replace(view, sources=sources) for view in views]
    if views:  # the global camera fields follow the first camera, for what names "the" camera
        built["camera"] = views[0].camera
    return Config(**built, sources=sources, cameras=tuple(views))


def _camera_views(base: Config, cameras: Any, merged: dict[str, Any], origins: dict[str, str],
                  errors: list[str]) -> list[Config]:
    """One Config per [cameras.NAME] table: [camera]'s keys are defaults for every camera, the
    camera's own tables override the global sections key by key."""
    where = origins.get("cameras", "configuration")
    if not isinstance(cameras, dict) or not cameras or not all(isinstance(t, dict) for t in cameras.values()):
        errors.append(f"{where}: cameras takes one table per camera: [cameras.NAME] with source = ...")
        return []
    name_rule = next(f for f in fields(CameraConfig) if f.name == "name").metadata
    views = []
    for name, table in cameras.items():
        section = f"cameras.{name}"
        here = origins.get(section, where)
        if not name_rule["ok"](name):
            errors.append(f"{here}: [{section}]: camera names are {name_rule['expect']}")
            continue
        own = {k: v for k, v in table.items() if not isinstance(v, dict)}
        if "name" in own:
            errors.append(f"{here}: {section}.name: the table's name is the camera's name; leave name out")
            continue
        camera_table = {**{k: v for k, v in merged.get("camera", {}).items() if k != "name"}, **own}
        overrides: dict[str, Any] = {"camera": _build(CameraConfig, camera_table, section, origins, errors)}
        overrides["camera"] = replace(overrides["camera"], name=name)
        for key, value in table.items():
            if not isinstance(value, dict):
                continue
            path = f"{section}.{key}"
            if key not in PER_CAMERA_TABLES:
                errors.append(f"{origins.get(path, here)}: [{path}] is not a per-camera table; a camera may "
                              f"override {', '.join(PER_CAMERA_TABLES)}")
                continue
            if key == "stream":
                for server_key in sorted(set(value) & set(SERVER_STREAM_KEYS)):
                    errors.append(f"{origins.get(f'{path}.{server_key}', here)}: {path}.{server_key}: set in "
                                  "[stream] only (one web server serves every camera)")
            values = {**merged.get(key, {}), **value}
            overrides[key] = _build(get_type_hints(Config)[key], values, path, origins, errors)
        views.append(replace(base, **overrides))
    return views


def _shared_sources(views: list[Config], origins: dict[str, str]) -> list[str]:
    """Two cameras reading one device or stream would fight over it (a local camera opens once)."""
    seen: dict[str, str] = {}
    errors = []
    for view in views:
        c = view.camera
        for source in filter(None, (c.source, c.detect_source)):
            if source in seen and seen[source] != c.name:
                where = origins.get(f"cameras.{c.name}.source", "configuration")
                errors.append(f"{where}: cameras {seen[source]} and {c.name} both read {mask_url(source)!r}")
            seen.setdefault(source, c.name)
    return errors


SOURCE_FORMS = "a device (/dev/video0), a camera index (\"0\"), a video file, or an rtsp:// URL"


def needs_cameras(config: Config) -> None:
    """What `run` and `config check` add to loading: every camera names its source (a camera
    table without one, or no configuration at all, would otherwise open /dev/video0)."""
    errors = []
    for view in config.camera_configs():
        if view.camera.source:
            continue
        section = f"cameras.{view.camera.name}" if config.cameras else "camera"
        where = ", ".join(config.sources) or f"no configuration file ({DEFAULT_FILE} or --config FILE)"
        errors.append(f"{where}: {section}.source is required: {SOURCE_FORMS}")
    if errors:
        raise ConfigError(errors[0] if len(errors) == 1 else "\n".join(errors))


def exposure_problem(bind: str, token: str, password: str = "") -> str | None:
    """A web server reachable beyond this machine needs a token or a password (one rule for
    `config check`, `run` and reloads)."""
    if token and len(token) < MIN_TOKEN_LENGTH:
        return f"stream.token is {len(token)} characters: use at least {MIN_TOKEN_LENGTH} ({TOKEN_ADVICE})"
    if bind not in LOOPBACK and not (token or password):
        return (f"stream.bind = {bind!r} listens beyond this machine: set stream.token (or stream.token_file), "
                "or stream.username and stream.password")
    return None


def _cross_checks(config: Config, origins: dict[str, str]) -> list[str]:
    """Rules between keys, each naming where the key was set."""
    exposed = exposure_problem(config.stream.bind, config.stream.token, config.stream.password)
    if exposed:
        return [f"{origins.get('stream.bind', origins.get('stream.token', 'configuration'))}: {exposed}"]
    if config.fleet.enabled and not config.mqtt.key:
        return [f"{origins.get('fleet.enabled', 'configuration')}: fleet.enabled needs mqtt.key (or mqtt.key_file, "
                "the same on every box of the fleet): the fleet's records are signed with it; "
                f"{KEY_ADVICE}"]
    c = config.camera
    local = c.source.isdigit() or c.source.startswith("/dev/video")
    if c.detect_source and config.clips.enabled and local:
        section = f"cameras.{c.name}" if f"cameras.{c.name}" in origins else "camera"
        where = origins.get(f"{section}.detect_source", origins.get(section, "configuration"))
        return [f"{where}: {section}.detect_source is set, so {section}.source ({c.source!r}) is recorded for "
                "clips, which needs an rtsp:// stream or a file, not a local camera"]
    return []


# -- showing ------------------------------------------------------------------------------------


def show(config: Config) -> str:
    """The merged configuration as TOML (written by tomli-w, so it reads back as it is), with
    secrets masked and passwords in URLs hidden."""
    import tomli_w

    def shown(table: Any, unlike: Any = None) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for item in fields(table):
            value = getattr(table, item.name)
            if unlike is not None and value == getattr(unlike, item.name):
                continue
            if item.name in SECRET_KEYS and value:
                # As long as the shortest token or key allowed, so a shown file still reads back.
                value = HIDDEN if isinstance(value, str) else ["***"] * len(value)
            elif isinstance(value, str):
                value = mask_url(value)
            values[item.name] = value
        return values

    document: dict[str, dict[str, Any]] = {}
    for section in fields(Config):
        if section.name not in NOT_SECTIONS and not (section.name == "camera" and config.cameras):
            document[section.name] = shown(getattr(config, section.name))
    if config.cameras:  # each camera whole, then only what its own tables change
        document["cameras"] = {}
        for view in config.cameras:
            table = {k: v for k, v in shown(view.camera).items() if k != "name"}
            for key in PER_CAMERA_TABLES:
                changed = shown(getattr(view, key), getattr(config, key))
                if changed:
                    table[key] = changed
            document["cameras"][view.camera.name] = table
    header = f"# merged from: {', '.join(config.sources) or 'built-in defaults'}".replace("\n", " ")
    return header + "\n\n" + tomli_w.dumps(document)
