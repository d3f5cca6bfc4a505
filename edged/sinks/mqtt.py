"""MQTT sink (the one paho-mqtt import): availability with a last will, events, alerts,
self-clearing presence per person, snapshots, stats, Home Assistant discovery and control
switches. Events and alerts go through an on-disk outbox and leave it only when the broker
acknowledges them (QoS 1); one sender thread hands them to paho in order, a few at a time,
and after a reconnect sends nothing new until paho has re-sent what was in flight, so order
holds across outages. A broker that stops answering (frozen, not closed) is noticed when an
acknowledgement is a keepalive late. Nothing here blocks the pipeline.

Every callback paho runs is guarded: a message of any shape, from any client on the broker, is
logged and dropped, never let out into paho's network thread (an exception there ends the loop
and, with it, all publishing). Gallery commands are accepted only when signed with
mqtt.key_file (signing.py), and run one at a time on one worker with a short queue."""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import queue
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import cv2

from edged.config import Config, MqttConfig
from edged.errors import EdgedError
from edged.events import Alert, TrackEvent
from edged.gallery import is_anonymous_name
from edged.links import absolute, link_key
from edged.pipeline import Pipeline, SinkItem, Stats
from edged.signing import SignatureError, Verifier, key_bytes
from edged.sinks import mqtt_messages as m
from edged.sinks.claims import CLAIM_REFRESH_S, Claim, claim_payload, contender, read_claim
from edged.sinks.outbox import Outbox
from edged.sinks.presence import PresenceState, load_presence, presence_file, save_presence

log = logging.getLogger("edged.mqtt")
IN_FLIGHT = 10  # kept messages handed to paho at once, waiting for their acknowledgement
GALLERY_CHECK_S = 5.0  # how soon enrolling or removing someone shows in Home Assistant
COMMAND_QUEUE = 8  # signed gallery commands waiting for the one worker; more are refused
CAMERA_PICTURE_WIDTH = 640  # the camera entity's picture: a dashboard tile, not the live stream
MAX_FRAME_BYTES = 2 * 2**20  # an alert frame larger than this (a huge camera) is not sent over MQTT
WARN_EVERY_S = 60.0  # the same warning about hostile or broken messages at most this often
F = TypeVar("F")


def guarded(callback: F) -> F:
    """A paho callback that can never raise into paho's network thread."""

    @functools.wraps(callback)  # type: ignore[arg-type]
    def wrapper(self: MqttSink, *args: Any) -> None:
        try:
            callback(self, *args)  # type: ignore[operator]
        except Exception:
            self.callback_errors += 1
            log.exception("MQTT: %s failed (the message was dropped; MQTT goes on)", callback.__name__)  # type: ignore[attr-defined]

    return wrapper  # type: ignore[return-value]


class MqttSink:
    def __init__(self, config: Config, outbox_path: Path, base_url: str = "", media_dir: Path | None = None,
                 primary: bool = True, box_stats: Callable[[], list[dict[str, object]]] | None = None) -> None:
        """`base_url`: how phones reach the box, for the absolute links alerts and events carry;
        `media_dir`: where alert faces are kept, for corrections that name an event; `primary`:
        this camera's connection also answers the box-wide gallery corrections and publishes
        the box's own entities (one camera's does, or each would be done once per camera);
        `box_stats()`: every camera's newest stats, for the box's one stats message."""
        import paho.mqtt.client as mqtt

        self.mqtt = mqtt
        c = config.mqtt
        self.settings = c
        device = config.device.resolved_name
        self.topics = m.Topics(c.prefix, device, config.camera.name)
        self.outbox = Outbox(outbox_path, c.outbox_max)
        self.base_url = base_url
        self.link_key = link_key(config.stream.token, config.stream.password)
        self.link_expiry_s = config.stream.link_expiry_s
        self.media_dir = media_dir or outbox_path.parent / "media"
        self._alerted: dict[int, tuple[str | None, str | None]] = {}  # track -> its alert's snapshot and clip
        # Presence as it was at the last stop or reload (presence.py): published before `online`.
        self.presence_path = presence_file(outbox_path.parent, config.camera.name)
        carried = load_presence(self.presence_path, time.time(), c.presence_timeout_s)
        self._strangers_live: set[int] = set()  # confirmed tracks of people not enrolled
        self._stranger_seen = carried.stranger or 0.0  # when the last of them ended
        self._stranger_on = carried.stranger is not None
        self.goodbye = True  # close() says offline; a reload turns it off (the box is not going away)
        self.page_url = f"{base_url.rstrip('/')}/cameras/{config.camera.name}/" if base_url else ""
        self.primary = primary
        self.box_stats = box_stats
        self.pipeline: Pipeline | None = None
        self.connected = False
        self.delivered = 0  # kept messages the broker acknowledged
        self.callback_errors = 0  # messages whose handling failed (logged and dropped)
        self.commands = {"done": 0, "refused_unsigned": 0, "refused_busy": 0, "refused_off": 0}
        self._warned: dict[str, float] = {}  # warning kind -> when last logged
        key = key_bytes(c.key) if c.key else None
        self.key = key
        self.verifier = Verifier(key) if key else None
        self.accept_commands = bool(key) and c.gallery_commands == "auto"
        self._commands: queue.Queue[tuple[str, bytes]] = queue.Queue(COMMAND_QUEUE)
        self._lock = threading.Lock()  # never held while calling paho: paho calls back under its own locks
        self._wake = threading.Event()  # something for the sender: a message, an acknowledgement, a connection
        self._acks: queue.SimpleQueue[int] = queue.SimpleQueue()  # acknowledged mids, from paho's thread
        self._in_flight: dict[int, tuple[int, float]] = {}  # paho mid -> (outbox seq, when handed over)
        self._draining = False  # after a reconnect: paho re-sends what was in flight before anything new
        self._live: dict[int, int] = {}  # track id -> id of the enrolled person it shows
        self._last_seen: dict[int, float] = dict(carried.people)  # person id -> when their last track ended
        self._present: set[int] = set(carried.people)
        self._ids: dict[str, int] = {}  # enrolled name -> stable person id
        self._announced_people: dict[int, str] = {}  # person id -> name in their published discovery config
        self._presence_lock = threading.Lock()  # the sink thread and the presence timer share them
        self._stop = threading.Event()
        self._outage_logged = False
        self.client_id = f"edged-{device}-{config.camera.name}"
        # Who publishes as this device: this box and state directory (a restart is the same
        # instance), since when; see claims.py.
        self.claim = own_claim(outbox_path.parent)
        self._claim_sent = 0.0
        client = new_client(c, self.client_id)
        topic, payload, qos, retain = m.availability(self.topics, online=False)
        client.will_set(topic, payload, qos, retain)
        client.reconnect_delay_set(1, 30)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        self.client = client
        self._timer = threading.Thread(target=self._clear_presence_loop, name="edged-mqtt-presence", daemon=True)
        self._timer.start()
        self._sender = threading.Thread(target=self._send_loop, name="edged-mqtt-sender", daemon=True)
        self._sender.start()
        self._worker = threading.Thread(target=self._command_loop, name="edged-mqtt-commands", daemon=True)
        self._worker.start()

    @property
    def loop_alive(self) -> bool:
        """paho's network thread still runs (it ends for good when something raises in it)."""
        thread = getattr(self.client, "_thread", None)  # paho's own: loop_start keeps it there
        return thread is not None and thread.is_alive()

    def health(self) -> dict[str, object]:
        return {"connected": self.connected, "loop_alive": self.loop_alive, "outbox": len(self.outbox),
                "delivered": self.delivered, "dropped_messages": self.callback_errors,
                "gallery_commands": dict(self.commands, accepted=self.accept_commands)}

    def _warn(self, kind: str, text: str, *args: object) -> None:
        """A warning about what other clients send, at most once a minute per kind."""
        now = time.monotonic()
        if now - self._warned.get(kind, -WARN_EVERY_S) >= WARN_EVERY_S:
            self._warned[kind] = now
            log.warning(text, *args)

    def bind(self, pipeline: Pipeline) -> None:
        """The pipeline whose switches the control topics turn, whose gallery discovery lists,
        and whose faces snapshots show; the connection starts only now, so the first connect
        already announces every enrolled person."""
        self.pipeline = pipeline
        c = self.settings
        self.client.connect_async(c.host, c.port, c.keepalive_s)
        self.client.loop_start()

    # -- paho callbacks (paho's network thread) ------------------------------------------------
    @guarded
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.error("MQTT broker %s:%d refused the connection: %s", self.settings.host, self.settings.port, reason)
            return
        log.info("MQTT connected to %s:%d", self.settings.host, self.settings.port)
        self._outage_logged = False
        # Ours, retained (the first camera's connection speaks for the daemon, so a clean stop
        # clears it for good); whether another claims the device was settled before starting.
        if self.primary:
            client.subscribe([(self.topics.instance, 1), (self.topics.instance_probe, 0)])
            self._send_claim()
        enrolled = self._enrolled()
        if self.settings.discovery:
            prefix = self.settings.discovery_prefix
            for message in m.old_person_configs(self.topics, prefix, list(enrolled)):
                self._send_now(message)
            for message in m.discovery(self.topics, prefix, enrolled, self.page_url, box_wide=self.primary,
                                       camera_entity=self.settings.camera_interval_s > 0):
                self._send_now(message)
            self._announced_people = {pid: name for name, pid in enrolled.items()}
        # The truth before `online`: whoever was present at the last stop or reload is still ON
        # (until the usual timeout, unless seen again), everyone else OFF, so a restart or a
        # reload changes no presence that did not change.
        with self._presence_lock:
            for pid in enrolled.values():
                self._send_now(m.presence(self.topics, pid, pid in self._present))
            self._send_now(m.stranger_present(self.topics, self._stranger_on))
        for what in ("detection", "alerts"):
            client.subscribe([(self.topics.switch_command(what), 1), (self.topics.camera_switch_command(what), 1)])
            if self.primary:
                self._send_now(m.switch_state(self.topics, what, self._switch(what)))
            self._send_now(m.camera_switch_state(self.topics, what, self._switch(what)))
        self._send_now(m.availability(self.topics, online=True))
        if self.primary and self.settings.gallery_commands != "off":
            client.subscribe(self.topics.gallery_command, qos=1)
        with self._lock:
            self.connected = True
            now = time.monotonic()
            self._in_flight = {mid: (seq, now) for mid, (seq, _) in self._in_flight.items()}
            self._draining = bool(self._in_flight)  # paho re-sends those right after this callback
            if len(self.outbox):
                log.info("%d MQTT messages kept while the broker was away are being delivered", len(self.outbox))
        self._wake.set()

    @guarded
    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any, properties: Any) -> None:
        self._acks.put(mid)  # paho holds its message lock here: the sender does the bookkeeping
        self._wake.set()

    @guarded
    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        with self._lock:
            self.connected = False
        if not self._outage_logged and not self._stop.is_set():
            log.warning("MQTT broker %s:%d is unreachable (%s); keeping alerts on disk until it is back",
                        self.settings.host, self.settings.port, reason)
            self._outage_logged = True

    @guarded
    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        if message.topic == self.topics.instance:
            self._check_claim(bytes(message.payload))
            return
        if message.topic == self.topics.instance_probe:
            if time.monotonic() - self._claim_sent >= 1.0:  # a flood of probes costs one claim a second
                self._send_claim()
            return
        if message.topic == self.topics.gallery_command:
            self._take_command(bytes(message.payload))
            return
        for what in ("detection", "alerts"):
            box_wide = message.topic == self.topics.switch_command(what)
            if box_wide or message.topic == self.topics.camera_switch_command(what):
                wanted = message.payload.decode(errors="replace").strip().upper()[:8]
                if wanted not in (m.ON, m.OFF):
                    self._warn(f"switch_{what}", "%s: expected ON or OFF, got %r", message.topic, wanted)
                    return
                self._set_switch(what, wanted == m.ON)
                if box_wide and self.primary:
                    self._send_now(m.switch_state(self.topics, what, wanted == m.ON))
                self._send_now(m.camera_switch_state(self.topics, what, wanted == m.ON))
                log.info("%s switched %s on camera %s over MQTT", what, wanted, self.topics.camera)

    def _take_command(self, raw: bytes) -> None:
        """A gallery command: checked here (cheap: a signature, a nonce), run by the worker.
        Unsigned, forged, replayed and surplus commands get no answer: an answer would tell a
        stranger on the broker what the box knows."""
        if not self.accept_commands or self.verifier is None:
            self.commands["refused_off"] += 1
            self._warn("commands_off", "MQTT gallery command on %s ignored: gallery commands need mqtt.key_file "
                       "(signed commands) and mqtt.gallery_commands = \"auto\"", self.topics.gallery_command)
            return
        try:
            verified = self.verifier.verify(raw)
        except SignatureError as exc:
            self.commands["refused_unsigned"] += 1
            self._warn("commands_unsigned", "MQTT gallery command refused: %s", exc)
            return
        try:
            self._commands.put_nowait((verified.nonce, verified.payload.encode()))
        except queue.Full:
            self.commands["refused_busy"] += 1
            self._warn("commands_busy", "MQTT gallery commands arrive faster than they can be applied; "
                       "refusing those past %d waiting", COMMAND_QUEUE)
            self._send_now(m.gallery_result(self.topics, verified.nonce, False, "busy: try again in a moment"))

    def _command_loop(self) -> None:
        while not self._stop.is_set():
            try:
                request_id, payload = self._commands.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._correct(request_id, payload)
            except Exception:  # a command must not end the worker
                log.exception("MQTT gallery command failed")
                self._send_now(m.gallery_result(self.topics, request_id, False, "failed (see the box's log)"))

    def _correct(self, request_id: str, payload: bytes) -> None:
        """An owner's signed correction from MQTT, through the same functions as the command
        line; the outcome is published on <p>/gallery/result."""
        from edged import corrections

        try:
            command = m.parse_gallery_command(payload)
            if self.pipeline is None:
                raise EdgedError("the daemon is still starting")
            tracking = self.pipeline.tracking
            outcome = corrections.apply(tracking.gallery, tracking.engine, self.media_dir, command.action,
                                        command.person, event=command.event, stranger=command.stranger)
            ok, message = outcome.ok, outcome.message
        except (ValueError, EdgedError) as exc:
            ok, message = False, str(exc)
        self.commands["done"] += 1
        log.info("gallery correction over MQTT: %s", message)
        self._send_now(m.gallery_result(self.topics, request_id, ok, message))

    # -- one instance per device name -----------------------------------------------------------
    def _send_claim(self) -> None:
        self._claim_sent = time.monotonic()
        self._send_now((self.topics.instance, claim_payload(self.claim, time.time(), self.key), 1, True))

    def _check_claim(self, payload: bytes) -> None:
        """Another claim on this device while running: a second edged started anyway (the
        broker was down when it checked), or any client's message. Either way this box keeps
        running and says so; see claims.py."""
        claim, why = read_claim(payload, self.verifier)
        live, ignored = contender(claim, self.claim, time.time())
        if live and claim is not None:
            self._warn("claim", "another edged (%s) claims device %r on %s:%d; this one keeps running: give each "
                       "edged its own device.name", claim.describe(), self.topics.device, self.settings.host,
                       self.settings.port)
        elif why or ignored:
            self._warn("claim_bad", "ignored a message on %s: %s", self.topics.instance, why or ignored)

    # -- switches ------------------------------------------------------------------------------
    def _switch(self, what: str) -> bool:
        if self.pipeline is None:
            return True
        return self.pipeline.detection_enabled if what == "detection" else self.pipeline.alerts.enabled

    def _set_switch(self, what: str, on: bool) -> None:
        if self.pipeline is None:
            return
        if what == "detection":
            self.pipeline.detection_enabled = on
        else:
            self.pipeline.alerts.enabled = on

    def _enrolled(self) -> dict[str, int]:
        """Enrolled people by name, with their stable ids (kept for presence's look-ups)."""
        if self.pipeline is None:
            return {}
        ids = self.pipeline.tracking.gallery.person_ids()
        self._ids = ids
        return ids

    def _person_id(self, name: str) -> int | None:
        pid = self._ids.get(name)
        if pid is None and self.pipeline is not None:  # enrolled since the last look
            pid = self._enrolled().get(name)
        return pid

    # -- sending -------------------------------------------------------------------------------
    def _send_now(self, message: m.Message) -> None:
        topic, payload, qos, retain = message
        self.client.publish(topic, payload, qos, retain)

    def _send_kept(self, message: m.Message) -> None:
        """Events and alerts: on disk first; the sender delivers them in order."""
        with self._lock:
            self.outbox.append(message)
        self._wake.set()

    def _send_loop(self) -> None:
        keepalive = self.settings.keepalive_s
        while not self._stop.is_set():
            self._wake.wait(0.5)
            self._wake.clear()
            self._take_acks()
            while not self._stop.is_set():
                with self._lock:
                    item = self._next_to_send()
                if item is None:
                    break
                seq, message = item
                info = self.client.publish(*message)
                # NO_CONN: the connection dropped meanwhile; paho keeps it and sends it on reconnect.
                if info.rc not in (self.mqtt.MQTT_ERR_SUCCESS, self.mqtt.MQTT_ERR_NO_CONN):
                    log.warning("MQTT publish to %s failed (%s); retrying", message[0], info.rc)
                    self._stop.wait(1.0)
                    break
                with self._lock:
                    self.outbox.mark_sent(seq)
                    self._in_flight[info.mid] = (seq, time.monotonic())
                self._take_acks()
            with self._lock:
                self._check_answering(keepalive)

    def _take_acks(self) -> None:
        while True:
            try:
                mid = self._acks.get_nowait()
            except queue.Empty:
                return
            with self._lock:
                entry = self._in_flight.pop(mid, None)
                if entry is None:  # a message that is not kept (stats, presence ...)
                    continue
                self.outbox.ack(entry[0])
                self.delivered += 1
                if not self._in_flight:
                    self._draining = False

    def _next_to_send(self) -> tuple[int, m.Message] | None:
        if not self.connected or self._draining or len(self._in_flight) >= IN_FLIGHT:
            return None
        return self.outbox.next_unsent()

    def _check_answering(self, keepalive: float) -> None:
        """A broker that takes a message and never acknowledges it is frozen or gone: close
        the connection so paho reconnects (and re-sends), rather than wait on TCP for minutes."""
        if not self.connected or not self._in_flight:
            return
        oldest = min(sent for _, sent in self._in_flight.values())
        if time.monotonic() - oldest < keepalive:
            return
        log.warning("MQTT broker %s:%d has not acknowledged a message for %d s; reconnecting",
                    self.settings.host, self.settings.port, keepalive)
        self.connected = False
        sock = self.client.socket()
        if isinstance(sock, socket.socket):
            with contextlib.suppress(OSError):  # closed already
                sock.shutdown(socket.SHUT_RDWR)  # paho's loop sees the error and reconnects

    # -- the pipeline's items (the sink thread) ----------------------------------------------------
    def _link(self, path: str | None) -> str | None:
        return absolute(self.base_url, path, self.link_key, self.link_expiry_s)

    def handle(self, item: SinkItem) -> None:
        if isinstance(item, TrackEvent):
            pictures = self._alerted.get(item.track_id)
            event = replace(item, snapshot=pictures[0], clip=pictures[1]) if pictures else item
            if item.kind == "ended":
                self._alerted.pop(item.track_id, None)
            message = m.event_message(self.topics, event)
            if message:
                self._send_kept(message)
            with self._presence_lock:
                self._track_presence(item)
        elif isinstance(item, Alert):
            alert = replace(item, snapshot=self._link(item.snapshot), frame=self._link(item.frame),
                            clip=self._link(item.clip))
            self._alerted[alert.track_id] = (alert.snapshot, alert.clip)
            self._send_kept(m.alert_message(self.topics, alert))
            self._send_kept(m.face_event(self.topics, alert))
            self._send_kept(m.face_trigger(self.topics, alert))
            if alert.reason == "known" and alert.person:
                self._send_now(m.last_person_attributes(self.topics, {
                    "person": alert.person, "time": alert.time, "similarity": round(alert.similarity, 4),
                    "snapshot": alert.snapshot, "clip": alert.clip}))
            self._snapshot(item)
            self._frame(item)
        elif isinstance(item, Stats):
            for message in m.stats_messages(self.topics, item.to_json()):
                self._send_now(message)
            if self.primary:
                cameras = self.box_stats() if self.box_stats is not None else []
                self._send_now(m.box_stats(self.topics, cameras or [item.to_json()]))
            self._send_now(m.faces_in_view(self.topics, item.faces_in_view))

    def _track_presence(self, event: TrackEvent) -> None:
        person = event.person
        known = person is not None and not is_anonymous_name(person)
        if event.kind == "ended":
            gone = self._live.pop(event.track_id, None)
            if gone is not None:
                self._last_seen[gone] = time.time()
            if event.track_id in self._strangers_live:
                self._strangers_live.discard(event.track_id)
                self._stranger_seen = time.time()
            return
        if not event.confirmed or event.kind not in ("confirmed", "identity_changed"):
            return
        if not known and not event.identified:  # no answer yet: neither a stranger nor anyone
            return
        if not known:
            self._live.pop(event.track_id, None)
            self._strangers_live.add(event.track_id)
            self._stranger_seen = time.time()
            if not self._stranger_on:
                self._stranger_on = True
                self._send_now(m.stranger_present(self.topics, True))
                self._save_presence()
            return
        assert person is not None
        self._strangers_live.discard(event.track_id)
        self._send_now(m.last_person(self.topics, person))
        self._send_now(m.last_person_attributes(self.topics, {
            "person": person, "time": event.time, "similarity": round(event.similarity, 4)}))
        pid = self._person_id(person)
        if pid is None:  # removed meanwhile
            return
        self._live[event.track_id] = pid
        self._last_seen[pid] = time.time()
        if pid not in self._present:
            self._present.add(pid)
            self._send_now(m.presence(self.topics, pid, True))
            self._save_presence()

    def _save_presence(self) -> None:
        """Who is ON now, with when they were last seen (now, for those in view)."""
        now = time.time()
        live = set(self._live.values())
        people = {pid: now if pid in live else self._last_seen.get(pid, now) for pid in self._present}
        stranger = (now if self._strangers_live else self._stranger_seen) if self._stranger_on else None
        save_presence(self.presence_path, PresenceState(people, stranger))

    def _send_camera_picture(self) -> None:
        """The annotated live view, 640 px wide, for Home Assistant's camera entity."""
        live = getattr(self.pipeline, "live", None)
        if live is None or not self.connected:
            return
        frame = live.jpeg(0, timeout=0.5, width=CAMERA_PICTURE_WIDTH)
        if frame is not None:
            self._send_now(m.camera_picture(self.topics, frame[1]))

    def _clear_presence_loop(self) -> None:
        last_save = last_gallery_check = last_claim = last_picture = time.monotonic()
        while not self._stop.wait(1.0):
            every = self.settings.camera_interval_s
            if every and time.monotonic() - last_picture >= every:
                last_picture = time.monotonic()
                self._send_camera_picture()
            with self._presence_lock:
                self._clear_presence(time.time())
                if (self._present or self._stranger_on) and time.monotonic() - last_save >= 10:
                    last_save = time.monotonic()  # so a kill -9 loses at most 10 s of "last seen"
                    self._save_presence()
            if self.primary and self.connected and time.monotonic() - last_claim >= CLAIM_REFRESH_S:
                last_claim = time.monotonic()
                self._send_claim()
            if time.monotonic() - last_gallery_check >= GALLERY_CHECK_S:
                last_gallery_check = time.monotonic()
                self._follow_gallery()

    def _follow_gallery(self) -> None:
        """Discovery follows the gallery while running: enrolled people get their sensor, a
        renamed one keeps it under the new name (same id, same entity), removed ones have it
        cleared (and their presence with it)."""
        if not (self.connected and self.settings.discovery and self.pipeline is not None):
            return
        try:
            now = {pid: name for name, pid in self._enrolled().items()}
        except Exception:  # the gallery busy or unreadable for a moment: try again next time
            log.debug("reading the gallery for discovery failed", exc_info=True)
            return
        prefix = self.settings.discovery_prefix
        for pid, name in sorted(now.items()):
            if self._announced_people.get(pid) != name:
                self._send_now(m.person_discovery(self.topics, prefix, name, pid, page_url=self.page_url))
                if pid not in self._announced_people:
                    self._send_now(m.presence(self.topics, pid, pid in self._present))
        for pid in sorted(set(self._announced_people) - set(now)):
            self._send_now(m.person_discovery(self.topics, prefix, self._announced_people[pid], pid, removed=True))
            self._send_now((self.topics.person(pid), "", 1, True))  # the retained state goes too
            with self._presence_lock:
                self._present.discard(pid)
                self._last_seen.pop(pid, None)
        self._announced_people = now

    def _clear_presence(self, now: float) -> None:
        changed = False
        if (self._stranger_on and not self._strangers_live
                and now - self._stranger_seen >= self.settings.presence_timeout_s):
            self._stranger_on = False
            self._send_now(m.stranger_present(self.topics, False))
            changed = True
        for pid in list(self._present):
            if pid in self._live.values():
                continue
            if now - self._last_seen.get(pid, now) >= self.settings.presence_timeout_s:
                self._present.discard(pid)
                self._send_now(m.presence(self.topics, pid, False))
                changed = True
        if changed:
            self._save_presence()

    def _frame(self, alert: Alert) -> None:
        """The alert's whole frame with the face boxed, as the media store wrote it (it runs first)."""
        if not alert.frame:
            return
        path = self.media_dir / Path(alert.frame).name
        with contextlib.suppress(OSError):  # not kept (a full disk): the face snapshot still goes
            if path.stat().st_size <= MAX_FRAME_BYTES:
                self._send_now(m.alert_frame(self.topics, path.read_bytes()))

    def _snapshot(self, alert: Alert) -> None:
        if self.pipeline is None:
            return
        face = self.pipeline.tracking.thumbnail(alert.track_id)
        if face is not None:
            ok, jpeg = cv2.imencode(".jpg", face, [cv2.IMWRITE_JPEG_QUALITY, 85])
            if ok:
                self._send_now(m.snapshot(self.topics, jpeg.tobytes()))

    def close(self) -> None:
        """Says goodbye (retained offline) when it can; undelivered messages stay on disk."""
        self._stop.set()
        self._wake.set()
        self._sender.join(5)
        with self._presence_lock:
            self._save_presence()
        if self.connected and self.goodbye:
            info = self.client.publish(*m.availability(self.topics, online=False))
            info.wait_for_publish(2)
            if self.primary:  # the device is free for a successor at once
                self.client.publish(self.topics.instance, "", 1, True).wait_for_publish(2)
        self.client.disconnect()
        self.client.loop_stop()


def new_client(settings: MqttConfig, client_id: str) -> Any:
    """A paho client with the broker's credentials and TLS as configured (not yet connected)."""
    import paho.mqtt.client as mqtt

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
    if settings.username:
        client.username_pw_set(settings.username, settings.password or None)
    if settings.tls:
        client.tls_set(ca_certs=settings.ca_file or None)
    return client


def own_claim(state: Path) -> Claim:
    """This instance's claim: this host and state directory (a restart is the same instance)."""
    now = round(time.time(), 3)
    return Claim(socket.gethostname(), str(state.resolve()), os.getpid(), now, now)


def find_other_instance(config: Config, state: Path, settle_s: float = 1.0, answer_s: float = 6.0,
                        connect_s: float = 5.0) -> str | None:
    """Before publishing anything: does another edged already run as this device on the broker?
    A short connection of its own (its own client id, so nobody's connection is taken over)
    reads the retained claim; a fresh one is asked to answer (a probe), and only a live answer
    counts. Returns who holds the device, or None (also when the broker cannot be reached:
    the daemon starts, and keeps its alerts on disk until the broker is back)."""

    c = config.mqtt
    topics = m.Topics(c.prefix, config.device.resolved_name, config.camera.name)
    verifier = Verifier(key_bytes(c.key)) if c.key else None
    ours = own_claim(state)
    seen: queue.SimpleQueue[tuple[bytes, bool]] = queue.SimpleQueue()
    connected = threading.Event()
    subscribed = threading.Event()
    client = new_client(c, f"edged-{topics.device}-check-{os.getpid()}")

    def on_connect(client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if not reason.is_failure:
            client.subscribe(topics.instance, qos=1)
            connected.set()

    def on_subscribe(*args: Any) -> None:
        subscribed.set()

    def on_message(client: Any, userdata: Any, message: Any) -> None:
        seen.put((bytes(message.payload), bool(message.retain)))

    client.on_connect, client.on_subscribe, client.on_message = on_connect, on_subscribe, on_message
    try:
        client.connect_async(c.host, c.port, c.keepalive_s)
        client.loop_start()
        if not (connected.wait(connect_s) and subscribed.wait(connect_s)):
            log.warning("MQTT broker %s:%d not reachable at start; not checking for another edged as device %r",
                        c.host, c.port, topics.device)
            return None
        deadline = time.monotonic() + settle_s
        suspect: Claim | None = None
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(queue.Empty):
                payload, _ = seen.get(timeout=left)
                claim, why = read_claim(payload, verifier)
                live, ignored = contender(claim, ours, time.time())
                if live:
                    suspect = claim
                elif why or ignored:
                    log.warning("ignored the claim on %s: %s", topics.instance, why or ignored)
        if suspect is None:
            return None
        client.publish(topics.instance_probe, "", 0, False)
        deadline = time.monotonic() + answer_s
        while (left := deadline - time.monotonic()) > 0:
            with contextlib.suppress(queue.Empty):
                payload, retained = seen.get(timeout=left)
                claim, _ = read_claim(payload, verifier)
                if not retained and claim is not None and contender(claim, ours, time.time())[0]:
                    return (f"another edged ({claim.describe()}) already publishes as device {topics.device!r} on "
                            f"{c.host}:{c.port}")
        log.warning("a claim on device %r (%s) did not answer within %.0f s: it is stale or forged; starting",
                    topics.device, suspect.describe(), answer_s)
        return None
    finally:
        client.disconnect()
        client.loop_stop()
