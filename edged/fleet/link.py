"""The fleet on the broker: each person's record is a retained, signed message on
<prefix>/fleet/<fleet>/people/<uid>, and each box's heartbeat one on .../boxes/<box>. A box
reads every record at each connect (the broker keeps them), so a box that was offline catches
up; it publishes a record whenever its state differs from the broker's copy, until the broker
holds the merged state. The broker is the only shared part: no box is special.

A record that is not signed with the fleet's key, or is malformed, too large or of another
fleet, is ignored and counted by reason; it never reaches the gallery."""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from edged.config import MqttConfig
from edged.fleet.book import FleetBook
from edged.fleet.records import BOX, UID, HybridClock, PersonState, RecordError, decode, encode
from edged.gallery import Gallery
from edged.signing import SignatureError, Verifier, key_bytes, sign

log = logging.getLogger("edged.fleet")
HEARTBEAT_S = 30.0
REPUBLISH_S = 10.0  # a record published but not seen back from the broker is sent again after this
STEP_S = 0.5  # how often the gallery is compared with the records
# A signed record at most: 200 faces of a 512-d embedder and a picture fit (about 760 kB).
MAX_RECORD = 1024 * 1024
CATCH_UP_QUIET_S = 0.5  # the retained records have all come when none came for this long


@dataclass(frozen=True)
class Topics:
    root: str  # <prefix>/fleet/<fleet>

    def person(self, uid: str) -> str:
        return f"{self.root}/people/{uid}"

    def box(self, box: str) -> str:
        return f"{self.root}/boxes/{box}"


class FleetLink:
    """Keeps one gallery in step with the fleet's records on the broker, on a thread of its own."""

    def __init__(self, gallery: Gallery, settings: MqttConfig, fleet: str, box: str) -> None:
        if not settings.key:
            raise ValueError("the fleet needs mqtt.key (or mqtt.key_file): records are signed with it")
        self.fleet, self.box = fleet, box
        self.settings = settings
        self.key = key_bytes(settings.key)
        self.verifier = Verifier(self.key, max_size=MAX_RECORD)
        self.topics = Topics(f"{settings.prefix}/fleet/{fleet}")
        self.clock = HybridClock(box)
        self.book = FleetBook(gallery, fleet, self.clock)
        self.rejected: Counter[str] = Counter()
        self.received = 0
        self.published = 0
        self.boxes: dict[str, dict[str, Any]] = {}  # heartbeats seen, by box
        self._broker: dict[str, str] = {}  # uid -> digest of the broker's copy (as last received)
        self._sent: dict[str, tuple[str, float]] = {}  # uid -> (digest, when) of our last publication
        self._lock = threading.Lock()  # the counters and heartbeats, shared with paho's thread
        self._stepping = threading.Lock()  # one step at a time (the thread's, and the last one at stop)
        # Records received, for the fleet thread: paho's thread never waits for a step.
        self._incoming: queue.SimpleQueue[PersonState] = queue.SimpleQueue()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self.connected = False
        self._reconnected = False
        self._last_heartbeat = 0.0
        self._last_warning = 0.0
        from edged.sinks.mqtt import new_client

        self.client = new_client(settings, f"edged-fleet-{box}")
        self.client.reconnect_delay_set(1, 30)
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        # Set once the records the broker held at the first connect are in the gallery: a box
        # that starts then names people from its first frame.
        self.caught_up = threading.Event()
        self._subscribed = False
        self._subscribed_at = 0.0
        self._settled = False
        self._last_message = 0.0
        self._thread = threading.Thread(target=self._run, name="edged-fleet", daemon=True)

    def start(self) -> None:
        self.client.connect_async(self.settings.host, self.settings.port, self.settings.keepalive_s)
        self.client.loop_start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        self._thread.join(10)
        with self._stepping:
            self._step()  # what changed in the last moment is published before leaving
        self.client.disconnect()
        self.client.loop_stop()

    # -- broker callbacks (paho's thread) ---------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        if reason.is_failure:
            log.warning("fleet: the broker refused the connection (%s)", reason)
            return
        self.connected = True
        self._reconnected = True  # whatever the broker holds arrives again, as retained messages
        # Nothing is published until those have come: publishing first would send every record
        # again, and put older copies over newer ones this box has not read yet.
        self._settled = False
        self._subscribed = False
        client.subscribe(f"{self.topics.root}/#", qos=1)
        log.info("fleet %s: connected to %s:%d as box %s", self.fleet, self.settings.host, self.settings.port,
                 self.box)
        self._last_heartbeat = 0.0
        self._wake.set()

    def _on_subscribe(self, *args: Any) -> None:
        self._subscribed_at = time.monotonic()
        self._subscribed = True
        self._wake.set()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any, properties: Any) -> None:
        self.connected = False
        log.warning("fleet %s: lost the broker (%s); changes wait here and are published on reconnect",
                    self.fleet, reason)

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        try:
            self._take(message.topic, bytes(message.payload))
        except Exception:  # a bug here must not stop paho's thread
            log.exception("fleet: a record from %s could not be handled", message.topic)

    def _take(self, topic: str, payload: bytes) -> None:
        self._last_message = time.monotonic()
        if not payload:
            return  # a cleared retained topic
        kind, _, ident = topic[len(self.topics.root) + 1:].partition("/")
        if kind == "people" and UID.fullmatch(ident):
            state = self._open(payload, ident)
            if state is not None:
                self._incoming.put(state)
                self._wake.set()
        elif kind == "boxes" and BOX.fullmatch(ident):
            beat = self._open_heartbeat(payload, ident)
            if beat is not None:
                with self._lock:
                    self.boxes[ident] = beat
        else:
            self._reject("unknown topic", topic)

    def _open(self, payload: bytes, uid: str) -> PersonState | None:
        try:
            verified = self.verifier.verify(payload, replay_ok=True)
            state, _ = decode(verified.payload, self.fleet)
        except SignatureError as exc:
            self._reject(f"signature: {exc}", uid)
            return None
        except RecordError as exc:
            self._reject(f"record: {exc}", uid)
            return None
        if state.uid != uid:
            self._reject("record: its uid is not its topic's", uid)
            return None
        return state

    def _open_heartbeat(self, payload: bytes, box: str) -> dict[str, Any] | None:
        try:
            beat = json.loads(self.verifier.verify(payload, replay_ok=True).payload)
        except SignatureError as exc:
            self._reject(f"signature: {exc}", box)
            return None
        except (ValueError, RecursionError):
            self._reject("heartbeat: not JSON", box)
            return None
        if not isinstance(beat, dict) or beat.get("box") != box or beat.get("fleet") != self.fleet:
            self._reject("heartbeat: not this box's or this fleet's", box)
            return None
        return beat

    def _reject(self, reason: str, where: str) -> None:
        head = reason.split(":")[0] if reason.startswith("record") else reason.split(" (")[0]
        with self._lock:
            self.rejected[head[:80]] += 1
        now = time.monotonic()
        if now - self._last_warning > 60:
            self._last_warning = now
            log.warning("fleet: ignored a message on %s: %s (counted in /status; more are not logged for a minute)",
                        where, reason)

    # -- the fleet thread -------------------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(STEP_S)
            self._wake.clear()
            try:
                with self._stepping:
                    self._step()
                quiet = time.monotonic() - max(self._last_message, self._subscribed_at)
                if self._subscribed and self._incoming.empty() and quiet > CATCH_UP_QUIET_S and not self._settled:
                    self._settled = True  # the broker's records are in: publish what differs from them
                    self.caught_up.set()
                    self._wake.set()
            except Exception:
                log.exception("fleet: a step failed; trying again")
                time.sleep(1)

    def _step(self) -> None:
        if self._reconnected:
            self._reconnected = False
            self._broker.clear()
            self._sent.clear()
        while not self._incoming.empty():
            state = self._incoming.get()
            self._broker[state.uid] = state.digest()
            self.book.inbox.append(state)
            with self._lock:
                self.received += 1
        self.book.step()
        if not (self.connected and self._settled):
            return
        now = time.monotonic()
        for uid, state in self.book.states.items():
            digest = state.digest()
            if self._broker.get(uid) == digest:
                continue
            sent = self._sent.get(uid)
            if sent is not None and sent[0] == digest and now - sent[1] < REPUBLISH_S:
                continue  # on its way
            envelope = sign(self.key, encode(state, self.fleet, self.box))
            if len(envelope) > MAX_RECORD:
                log.warning("fleet: the record of %s (%s) is %d bytes, over %d: not published", uid,
                            state.name[0], len(envelope), MAX_RECORD)
                self._sent[uid] = (digest, now + 3600)
                continue
            self.client.publish(self.topics.person(uid), envelope, qos=1, retain=True)
            self._sent[uid] = (digest, now)
            self.published += 1
        if time.time() - self._last_heartbeat > HEARTBEAT_S:
            self._last_heartbeat = time.time()
            beat = {"fleet": self.fleet, "box": self.box, "time": round(time.time(), 3), **self._counts()}
            self.client.publish(self.topics.box(self.box), sign(self.key, json.dumps(beat)), qos=1, retain=True)

    def _counts(self) -> dict[str, Any]:
        states = self.book.states.values()
        live = [s for s in states if not s.is_gone]
        return {"people": sum(1 for s in live if not s.name[0].startswith("unknown-")),
                "strangers": sum(1 for s in live if s.name[0].startswith("unknown-")),
                "records": len(self.book.states), "digest": self.book.digest()}

    def status(self) -> dict[str, Any]:
        """For /status: in step with the broker, what was ignored and why, the boxes seen."""
        with self._stepping, self._lock:
            behind = sum(1 for uid, s in self.book.states.items() if self._broker.get(uid) != s.digest())
            return {"fleet": self.fleet, "box": self.box, "connected": self.connected, **self._counts(),
                    "unpublished": behind, "received": self.received, "published": self.published,
                    "rejected": dict(self.rejected), "rejected_total": sum(self.rejected.values()),
                    "boxes": {b: {k: beat.get(k) for k in ("time", "people", "strangers", "records", "digest")}
                              for b, beat in sorted(self.boxes.items())}}
