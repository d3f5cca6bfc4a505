"""`edged fleet status`: what the broker holds for the fleet, read with a connection of its own,
against this box's own records (in the gallery file): the boxes seen and when each last said
so, how many records each holds, and which records are out of step between here and the
broker. Works whether or not the daemon is running."""

from __future__ import annotations

import contextlib
import json
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from edged.config import Config
from edged.errors import EdgedError
from edged.fleet.link import MAX_RECORD
from edged.fleet.records import BOX, UID, PersonState, RecordError, decode
from edged.signing import SignatureError, Verifier, key_bytes

QUIET_S = 1.0  # the retained records have all come when none came for this long


@dataclass
class FleetReport:
    fleet: str
    box: str
    broker: str
    boxes: dict[str, dict[str, Any]] = field(default_factory=dict)
    on_broker: dict[str, PersonState] = field(default_factory=dict)
    here: dict[str, PersonState] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    last_from: dict[str, list[PersonState]] = field(default_factory=dict)  # records as each box last published them

    def last_records(self, box: str, count: int = 3) -> list[dict[str, object]]:
        """The records a box published last (newest change first): whom, what, and when."""
        newest = sorted(self.last_from.get(box, []), key=lambda s: s.latest(), reverse=True)[:count]
        return [{"uid": s.uid, "name": s.name[0], "gone": s.is_gone, "changed": s.latest()[0] / 1000}
                for s in newest]

    def out_of_step(self) -> dict[str, list[str]]:
        """Record uids that differ: newer here (not yet published), only on the broker (not yet
        received here), or different on both."""
        only_here = sorted(set(self.here) - set(self.on_broker))
        only_broker = sorted(set(self.on_broker) - set(self.here))
        differ = sorted(u for u in set(self.here) & set(self.on_broker)
                        if self.here[u].digest() != self.on_broker[u].digest())
        return {"only_here": only_here, "only_on_broker": only_broker, "different": differ}

    def to_json(self) -> dict[str, object]:
        steps = self.out_of_step()
        names = {**{u: s.name[0] for u, s in self.on_broker.items()}, **{u: s.name[0] for u, s in self.here.items()}}
        boxes = {box: {**beat, "last_records": self.last_records(box)} for box, beat in self.boxes.items()}
        return {"fleet": self.fleet, "box": self.box, "broker": self.broker, "boxes": boxes,
                "on_broker": counts(self.on_broker), "here": counts(self.here),
                "out_of_step": {k: [{"uid": u, "name": names.get(u, "")} for u in v] for k, v in steps.items()},
                "rejected": self.rejected}


def counts(states: dict[str, PersonState]) -> dict[str, int]:
    live = [s for s in states.values() if not s.is_gone]
    return {"records": len(states), "people": sum(not s.name[0].startswith("unknown-") for s in live),
            "strangers": sum(s.name[0].startswith("unknown-") for s in live)}


def read_fleet(config: Config, gallery: Path, listen_s: float = 10.0) -> FleetReport:
    c = config.mqtt
    if not config.fleet.enabled:
        raise EdgedError("[fleet] is not enabled in this configuration (fleet.enabled = true)")
    verifier = Verifier(key_bytes(c.key), max_size=MAX_RECORD)
    root = f"{c.prefix}/fleet/{config.fleet.name}"
    report = FleetReport(config.fleet.name, config.device.resolved_name, f"{c.host}:{c.port}")
    report.here = _stored(gallery, config.fleet.name)
    from edged.sinks.mqtt import new_client

    client = new_client(c, f"edged-fleet-status-{os.getpid()}")
    received: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
    subscribed = threading.Event()
    client.on_connect = lambda cl, u, f, r, p: None if r.is_failure else cl.subscribe(f"{root}/#", qos=1)
    client.on_subscribe = lambda *args: subscribed.set()
    client.on_message = lambda cl, u, m: received.put((m.topic, bytes(m.payload)))
    try:
        client.connect_async(c.host, c.port, c.keepalive_s)
        client.loop_start()
        if not subscribed.wait(listen_s):
            raise EdgedError(f"the MQTT broker at {c.host}:{c.port} did not answer within {listen_s:.0f} s")
        while True:
            try:
                topic, payload = received.get(timeout=QUIET_S)
            except queue.Empty:
                break
            _read(report, verifier, root, topic, payload)
    finally:
        client.disconnect()
        client.loop_stop()
    return report


def _read(report: FleetReport, verifier: Verifier, root: str, topic: str, payload: bytes) -> None:
    if not payload:
        return
    kind, _, ident = topic[len(root) + 1:].partition("/")
    try:
        text = verifier.verify(payload, replay_ok=True).payload
        if kind == "people" and UID.fullmatch(ident):
            state, sender = decode(text, report.fleet)
            report.on_broker[ident] = state
            report.last_from.setdefault(sender, []).append(state)
        elif kind == "boxes" and BOX.fullmatch(ident):
            beat = json.loads(text)
            report.boxes[ident] = {k: beat.get(k) for k in ("time", "people", "strangers", "records", "digest")}
    except (SignatureError, RecordError, ValueError) as exc:
        reason = str(exc).split(" (")[0][:60]
        report.rejected[reason] = report.rejected.get(reason, 0) + 1


def _stored(gallery: Path, fleet: str) -> dict[str, PersonState]:
    import sqlite3

    if not gallery.is_file():
        return {}
    states: dict[str, PersonState] = {}
    with contextlib.closing(sqlite3.connect(f"file:{gallery}?mode=ro", uri=True, timeout=10)) as db:
        try:
            rows = db.execute("SELECT uid, state FROM fleet_people").fetchall()
        except sqlite3.OperationalError:  # this box never joined the fleet
            return {}
    for uid, text in rows:
        with contextlib.suppress(RecordError):
            states[uid] = decode(text, fleet)[0]
    return states


def print_report(report: FleetReport) -> None:
    here, broker = counts(report.here), counts(report.on_broker)
    print(f"fleet {report.fleet} on {report.broker}, this box: {report.box}")
    print(f"  on the broker: {broker['records']} records, {broker['people']} people, {broker['strangers']} strangers")
    print(f"  here:          {here['records']} records, {here['people']} people, {here['strangers']} strangers")
    print("  boxes:")
    now = time.time()
    for box, beat in sorted(report.boxes.items()):
        age = now - float(beat.get("time") or 0)
        print(f"    {box}: last heard {age:.0f} s ago, {beat.get('people')} people, {beat.get('strangers')} "
              f"strangers, {beat.get('records')} records, digest {beat.get('digest')}")
        for record in report.last_records(box):
            when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(float(record["changed"])))  # type: ignore[arg-type]
            print(f"      last: {record['name']}{' (deleted)' if record['gone'] else ''} at {when}")
    steps = report.out_of_step()
    if not any(steps.values()):
        print("  in step: every record here is the broker's")
    for label, key in (("newer here (not yet published)", "only_here"),
                       ("on the broker, not yet here", "only_on_broker"), ("different", "different")):
        if steps[key]:
            names = [(report.here.get(u) or report.on_broker[u]).name[0] for u in steps[key]]
            print(f"  {label}: {len(names)}: {', '.join(names[:10])}{' ...' if len(names) > 10 else ''}")
    if report.rejected:
        print(f"  ignored (not signed with this key, or malformed): {report.rejected}")
