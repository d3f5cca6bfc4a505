"""MQTT messages as pure functions: each returns (topic, payload, qos, retain), so the
topics and payloads are testable without a broker and the client only sends them."""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime

from edged import __version__
from edged.events import Alert, TrackEvent

Message = tuple[str, str | bytes, int, bool]
ON, OFF = "ON", "OFF"
EVENT_TYPES = {"confirmed": "new", "identity_changed": "update", "ended": "end"}
# Built-in binary sensors of a camera: a person's entity never takes one of these ids.
BUILT_IN_BINARY = ("stranger", "connected", "behind")


def slug(name: str) -> str:
    """An ASCII id for topics and Home Assistant ids: lower case letters, digits and _; a name
    that does not survive that unchanged gets a short hash of itself, so `José` and `Jose` (or
    two names in other scripts) never share one."""
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    base = re.sub(r"[^a-z0-9]+", "_", ascii_name.lower()).strip("_")
    if base == name:
        return base
    digest = hashlib.sha1(name.encode()).hexdigest()[:6]
    return f"{base}_{digest}" if base else f"p_{digest}"


@dataclass(frozen=True)
class Topics:
    prefix: str
    device: str
    camera: str

    @property
    def base(self) -> str:
        return f"{self.prefix}/{self.device}"

    @property
    def available(self) -> str:
        return f"{self.base}/available"

    @property
    def events(self) -> str:
        return f"{self.base}/{self.camera}/events"

    @property
    def alerts(self) -> str:
        return f"{self.base}/{self.camera}/alerts"

    @property
    def snapshot(self) -> str:
        return f"{self.base}/{self.camera}/snapshot"

    @property
    def camera_picture(self) -> str:
        """The live view as a picture now and then, for Home Assistant's camera entity."""
        return f"{self.base}/{self.camera}/camera"

    @property
    def frame(self) -> str:
        """The newest alert's whole frame, its face boxed (the snapshot is the face alone)."""
        return f"{self.base}/{self.camera}/frame"

    @property
    def last_person(self) -> str:
        return f"{self.base}/{self.camera}/last_person"

    @property
    def faces(self) -> str:
        return f"{self.base}/{self.camera}/faces"

    @property
    def stats(self) -> str:
        """The box's: the latest stats of any of its cameras (CPU and memory are the box's)."""
        return f"{self.base}/stats"

    @property
    def instance(self) -> str:
        """Which edged publishes as this device (retained JSON), to refuse a second one."""
        return f"{self.base}/instance"

    @property
    def instance_probe(self) -> str:
        """A starting instance asks here whether the claimant is alive; a running one answers
        by refreshing its claim at once."""
        return f"{self.base}/instance/probe"

    @property
    def camera_stats(self) -> str:
        return f"{self.base}/{self.camera}/stats"

    @property
    def trigger(self) -> str:
        """Home Assistant's device triggers: per alert its kind as plain text."""
        return f"{self.base}/{self.camera}/trigger"

    @property
    def event(self) -> str:
        """Home Assistant's event entity: one message per alert, {"event_type": ...}."""
        return f"{self.base}/{self.camera}/event"

    @property
    def stranger(self) -> str:
        return f"{self.base}/{self.camera}/stranger"

    @property
    def last_person_attributes(self) -> str:
        return f"{self.base}/{self.camera}/last_person/attributes"

    def person(self, person_id: int) -> str:
        """A person's presence, by their stable gallery id: a rename changes no topic."""
        return f"{self.base}/{self.camera}/person/{int(person_id)}"

    def old_person(self, name: str) -> str:
        """Where edged before 0.2 kept a person's presence (by name), cleared on connect."""
        return f"{self.base}/{self.camera}/person/{slug(name)}"

    def switch(self, what: str) -> str:
        """State topic of a control switch ("detection" or "alerts")."""
        return f"{self.base}/{what}/state"

    def switch_command(self, what: str) -> str:
        return f"{self.base}/{what}/set"

    def camera_switch(self, what: str) -> str:
        """State topic of this camera's own switch ("detection" or "alerts")."""
        return f"{self.base}/{self.camera}/{what}/state"

    def camera_switch_command(self, what: str) -> str:
        return f"{self.base}/{self.camera}/{what}/set"

    @property
    def gallery_command(self) -> str:
        """The owner's corrections: {"action": "reject" | "confirm", "person", "event" | "stranger"}."""
        return f"{self.base}/gallery/set"

    @property
    def gallery_result(self) -> str:
        return f"{self.base}/gallery/result"


def availability(topics: Topics, online: bool) -> Message:
    return topics.available, "online" if online else "offline", 1, True


def event_message(topics: Topics, event: TrackEvent) -> Message | None:
    """`new` / `update` / `end` for confirmed tracks; nothing for unconfirmed ones."""
    if event.kind not in EVENT_TYPES or not event.confirmed:
        return None
    body = {
        "type": EVENT_TYPES[event.kind], "id": event.id, "camera": event.camera, "track_id": event.track_id,
        "person": event.person, "similarity": round(event.similarity, 4), "confirmed": event.confirmed,
        "box": [round(v, 1) for v in event.box], "start_time": round(event.start_time, 3),
        "end_time": round(event.time, 3) if event.kind == "ended" else None,
        "snapshot": event.snapshot, "clip": event.clip, "identified": event.identified,
        "reason": event.reason,
    }
    if event.previous is not None or event.kind == "identity_changed":
        body["previous"] = event.previous
    return topics.events, json.dumps(body), 1, False


def alert_message(topics: Topics, alert: Alert) -> Message:
    return topics.alerts, json.dumps(alert.to_json()), 1, False


EVENT_KINDS = ("known", "stranger", "unidentified")


def alert_kind(alert: Alert) -> str:
    return {"known": "known", "unknown": "stranger"}.get(alert.reason, "unidentified")


def face_event(topics: Topics, alert: Alert) -> Message:
    """The alert for Home Assistant's event entity: its kind as `event_type`, the alert's
    fields as the event's attributes."""
    return topics.event, json.dumps({"event_type": alert_kind(alert), **alert.to_json()}), 1, False


def face_trigger(topics: Topics, alert: Alert) -> Message:
    """The alert for Home Assistant's device triggers: its kind alone, matched by `payload`."""
    return topics.trigger, alert_kind(alert), 1, False


def stranger_present(topics: Topics, present: bool) -> Message:
    return topics.stranger, ON if present else OFF, 1, True


def iso_time(epoch: float) -> str:
    """A time as Home Assistant shows and compares it: ISO 8601 with the box's UTC offset."""
    return datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


def last_person_attributes(topics: Topics, attributes: dict[str, object]) -> Message:
    """The last person's attributes; a `time` (epoch seconds) is given as an ISO timestamp."""
    shown = dict(attributes)
    if isinstance(shown.get("time"), (int, float)):
        shown["time"] = iso_time(float(shown["time"]))  # type: ignore[arg-type]
    return topics.last_person_attributes, json.dumps(shown), 1, True


def presence(topics: Topics, person_id: int, present: bool) -> Message:
    return topics.person(person_id), ON if present else OFF, 1, True


def last_person(topics: Topics, name: str) -> Message:
    return topics.last_person, name, 1, True


def faces_in_view(topics: Topics, count: int) -> Message:
    return topics.faces, str(count), 0, True


def stats_messages(topics: Topics, stats: dict[str, object]) -> list[Message]:
    """A camera's stats on its own topic; retained, so Home Assistant has values at once after
    its own restart."""
    return [(topics.camera_stats, json.dumps(stats), 0, True)]


def box_stats(topics: Topics, cameras: list[dict[str, object]]) -> Message:
    """The box's stats in one message, as Frigate's: its CPU (0-100, every core) and memory on
    top, each camera's figures under `cameras` (without their tracks); retained."""
    newest = max(cameras, key=lambda c: float(c.get("time") or 0))  # type: ignore[arg-type]
    body = {"time": newest.get("time"), "cpu_percent": newest.get("cpu_percent"), "rss_mb": newest.get("rss_mb"),
            "cameras": {str(c["camera"]): {k: v for k, v in c.items() if k not in ("tracks", "cpu_percent", "rss_mb")}
                        for c in cameras}}
    return topics.stats, json.dumps(body), 0, True


GALLERY_ACTIONS = ("reject", "confirm")


@dataclass(frozen=True)
class GalleryCommand:
    action: str
    person: str
    event: str | None
    stranger: str | None


def parse_gallery_command(payload: bytes) -> GalleryCommand:
    """A correction sent over MQTT, checked whole; a ValueError names what is wrong."""
    if len(payload) > 2048:
        raise ValueError("a command is at most 2048 bytes")
    try:
        body = json.loads(payload)
    except (ValueError, RecursionError):
        raise ValueError("not JSON") from None
    if not isinstance(body, dict):
        raise ValueError("expected a JSON object")
    unknown = sorted(set(body) - {"action", "person", "event", "stranger"})
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}")
    action, person, event, stranger = (body.get(k) for k in ("action", "person", "event", "stranger"))
    if action not in GALLERY_ACTIONS:
        raise ValueError(f"\"action\" must be one of {list(GALLERY_ACTIONS)}")
    if not isinstance(person, str) or not person:
        raise ValueError("\"person\" must be a name")
    if (event is None) == (stranger is None) or not isinstance(event or stranger, str):
        raise ValueError("give exactly one of \"event\" (an event id) or \"stranger\" (an unknown-N)")
    if stranger is not None and action != "confirm":
        raise ValueError("\"stranger\" goes with \"confirm\" (this stranger is that person)")
    return GalleryCommand(action, person, event, stranger)


def gallery_result(topics: Topics, request_id: str, ok: bool, message: str) -> Message:
    """The answer to a signed command: its nonce (so the sender matches it), whether it worked,
    and one line about that command only (never the gallery's path or who else is in it)."""
    return topics.gallery_result, json.dumps({"id": request_id, "ok": ok, "message": message}), 1, False


def switch_state(topics: Topics, what: str, on: bool) -> Message:
    return topics.switch(what), ON if on else OFF, 1, True


def camera_switch_state(topics: Topics, what: str, on: bool) -> Message:
    return topics.camera_switch(what), ON if on else OFF, 1, True


def snapshot(topics: Topics, jpeg: bytes) -> Message:
    return topics.snapshot, jpeg, 0, True


def camera_picture(topics: Topics, jpeg: bytes) -> Message:
    return topics.camera_picture, jpeg, 0, True


def alert_frame(topics: Topics, jpeg: bytes) -> Message:
    return topics.frame, jpeg, 0, True


def _node(topics: Topics) -> str:
    return f"edged_{topics.device}".replace("-", "_")


def device_info(topics: Topics, page_url: str = "") -> dict[str, object]:
    """The Home Assistant device every entity of the box joins; its page is the live view."""
    device: dict[str, object] = {"identifiers": [_node(topics)], "name": f"edged {topics.device}",
                                 "manufacturer": "edged", "model": "edged face tracker", "sw_version": __version__}
    if page_url:
        device["configuration_url"] = page_url
    return device


ORIGIN = {"name": "edged", "sw_version": __version__}  # who published the discovery configs


def discovery(topics: Topics, discovery_prefix: str, people: dict[str, int], page_url: str = "",
              box_wide: bool = True, camera_entity: bool = True) -> list[Message]:
    """Home Assistant MQTT discovery: one device per box with sensors for the last person seen
    and faces in view, a presence binary sensor per enrolled person, switches for detection and
    alerts, all tied to the availability topic. Retained, so Home Assistant finds them after
    its own restarts. `box_wide`: with the box's own entities (CPU, memory, switches), which
    one camera's connection publishes for the box."""
    node = _node(topics)
    device = device_info(topics, page_url)
    common = {"availability_topic": topics.available, "payload_available": "online",
              "payload_not_available": "offline", "device": device, "origin": ORIGIN}
    cam = topics.camera
    configs: list[tuple[str, dict[str, object]]] = [
        (f"sensor/{node}/{cam}_last_person", {"name": f"{cam} last person", "unique_id": f"{node}_{cam}_last_person",
                                              "state_topic": topics.last_person, "icon": "mdi:account-eye",
                                              "json_attributes_topic": topics.last_person_attributes}),
        (f"sensor/{node}/{cam}_faces", {"name": f"{cam} faces in view", "unique_id": f"{node}_{cam}_faces",
                                        "state_topic": topics.faces, "state_class": "measurement",
                                        "icon": "mdi:face-recognition"}),
        (f"event/{node}/{cam}_face", {"name": f"{cam} face", "unique_id": f"{node}_{cam}_face",
                                      "state_topic": topics.event, "event_types": list(EVENT_KINDS),
                                      "icon": "mdi:face-recognition"}),
        (f"image/{node}/{cam}_snapshot", {"name": f"{cam} snapshot", "unique_id": f"{node}_{cam}_snapshot",
                                          "image_topic": topics.snapshot, "content_type": "image/jpeg"}),
        (f"image/{node}/{cam}_frame", {"name": f"{cam} alert frame", "unique_id": f"{node}_{cam}_frame",
                                       "image_topic": topics.frame, "content_type": "image/jpeg"}),
        (f"binary_sensor/{node}/{cam}_stranger", {"name": f"{cam} stranger present",
                                                  "unique_id": f"{node}_{cam}_stranger", "state_topic": topics.stranger,
                                                  "payload_on": ON, "payload_off": OFF, "device_class": "occupancy"}),
    ]
    # Diagnostics from the stats messages (every stats_interval_s): the box's CPU and memory,
    # and per camera detections wanted and achieved, latency and whether inference keeps up.
    box: list[tuple[str, dict[str, object]]] = []
    for key, label, unit, kind in (("cpu_percent", "CPU", "%", None), ("rss_mb", "memory", "MB", "data_size")):
        box.append((f"sensor/{node}/{key}", {
            "name": label, "unique_id": f"{node}_{key}", "state_topic": topics.stats, "unit_of_measurement": unit,
            "value_template": f"{{{{ value_json.{key} }}}}", "state_class": "measurement",
            "entity_category": "diagnostic", **({"device_class": kind} if kind else {})}))
    for key, label, unit, kind in (("fps", "detections per second", "Hz", "frequency"),
                                   ("detect_fps_target", "detections per second wanted", "Hz", "frequency"),
                                   ("camera_fps", "camera frames per second", "Hz", "frequency"),
                                   ("latency_ms", "latency", "ms", "duration")):
        # A null value (latency while detection is off) renders as "None": Home Assistant's unknown.
        configs.append((f"sensor/{node}/{cam}_{key}", {
            "name": f"{cam} {label}", "unique_id": f"{node}_{cam}_{key}", "state_topic": topics.camera_stats,
            "unit_of_measurement": unit, "value_template": f"{{{{ value_json.{key} }}}}", "device_class": kind,
            "state_class": "measurement", "entity_category": "diagnostic"}))
    configs.append((f"binary_sensor/{node}/{cam}_connected", {
        "name": f"{cam} camera connected", "unique_id": f"{node}_{cam}_connected", "state_topic": topics.camera_stats,
        "value_template": "{{ 'ON' if value_json.source_connected else 'OFF' }}", "payload_on": ON,
        "payload_off": OFF, "device_class": "connectivity", "entity_category": "diagnostic"}))
    for what in ("detection", "alerts"):  # this camera's own; the box-wide pair turns every camera
        configs.append((f"switch/{node}/{cam}_{what}", {
            "name": f"{cam} {what}", "unique_id": f"{node}_{cam}_{what}", "state_topic": topics.camera_switch(what),
            "command_topic": topics.camera_switch_command(what), "payload_on": ON, "payload_off": OFF}))
    configs.append((f"binary_sensor/{node}/{cam}_behind", {
        "name": f"{cam} inference falling behind", "unique_id": f"{node}_{cam}_behind",
        "state_topic": topics.camera_stats, "value_template": "{{ 'ON' if value_json.falling_behind else 'OFF' }}",
        "payload_on": ON, "payload_off": OFF, "device_class": "problem", "entity_category": "diagnostic"}))
    for what in ("detection", "alerts"):
        box.append((f"switch/{node}/{what}", {
            "name": what, "unique_id": f"{node}_{what}", "state_topic": topics.switch(what),
            "command_topic": topics.switch_command(what), "payload_on": ON, "payload_off": OFF}))
    if camera_entity:  # inside edged's device, no token in any URL (the MJPEG stream needs one)
        configs.append((f"camera/{node}/{cam}_live", {"name": f"{cam} live", "unique_id": f"{node}_{cam}_live",
                                                      "topic": topics.camera_picture}))
    messages = [(f"{discovery_prefix}/{path}/config", json.dumps({**body, **common}), 1, True)
                for path, body in configs + (box if box_wide else [])]
    if not camera_entity:
        messages.append((f"{discovery_prefix}/camera/{node}/{cam}_live/config", "", 1, True))
    if box_wide:  # box-wide sensors of the one-camera edged, now per camera: cleared, so no ghost stays
        messages += [(f"{discovery_prefix}/sensor/{node}/{key}/config", "", 1, True) for key in ("fps", "latency_ms")]
    # Device triggers ("When edged <camera> saw a stranger" in the automation editor): one per
    # alert kind, on a topic carrying the kind as plain text. Triggers take no availability.
    for kind in EVENT_KINDS:
        trigger = {"automation_type": "trigger", "topic": topics.trigger, "type": f"{kind}_seen",
                   "subtype": cam, "payload": kind, "qos": 1, "device": device}
        messages.append((f"{discovery_prefix}/device_automation/{node}/{cam}_{kind}/config", json.dumps(trigger), 1,
                         True))
    return messages + [person_discovery(topics, discovery_prefix, name, pid, page_url=page_url)
                       for name, pid in people.items()]


def person_discovery(topics: Topics, discovery_prefix: str, name: str, person_id: int, removed: bool = False,
                     page_url: str = "") -> Message:
    """A person's presence sensor: the name shown, the stable gallery id in the unique id and
    the topics (a rename keeps the entity, its automations and its history; no name can take a
    built-in sensor's id); `removed` clears it (an empty retained config). No expire_after:
    OFF stays OFF at rest, and the availability topic says when the box is gone."""
    node, cam = _node(topics), topics.camera
    topic = f"{discovery_prefix}/binary_sensor/{node}/{cam}_person_{int(person_id)}/config"
    if removed:
        return topic, "", 1, True
    body = {"name": f"{name} at {cam}", "unique_id": f"{node}_{cam}_person_{int(person_id)}",
            "state_topic": topics.person(person_id), "payload_on": ON, "payload_off": OFF,
            "device_class": "occupancy", "availability_topic": topics.available, "payload_available": "online",
            "payload_not_available": "offline", "device": device_info(topics, page_url), "origin": ORIGIN}
    return topic, json.dumps(body), 1, True


def old_person_configs(topics: Topics, discovery_prefix: str, names: list[str]) -> list[Message]:
    """Clears what edged before 0.2 published per person by name (config and state), so no ghost
    entity stays; a name whose old id was a built-in sensor's is left alone (it is the sensor)."""
    node, cam = _node(topics), topics.camera
    messages: list[Message] = []
    for name in names:
        if slug(name) in BUILT_IN_BINARY:
            continue
        messages.append((f"{discovery_prefix}/binary_sensor/{node}/{cam}_{slug(name)}/config", "", 1, True))
        if not slug(name).isdigit():  # a name of digits had the topic a person id has now
            messages.append((topics.old_person(name), "", 1, True))
    return messages
