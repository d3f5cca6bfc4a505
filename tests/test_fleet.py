"""Fleet identity: the record merge rule on its own, galleries kept in step through records,
and three real daemons on one real Mosquitto (restarted with persistence in the middle) on
the scenario video."""

from __future__ import annotations

import itertools
import json
import random

import numpy as np
import pytest

from edged.fleet.book import FleetBook
from edged.fleet.records import Element, HybridClock, PersonState, RecordError, decode, encode, merge
from edged.gallery import Gallery

FLEET = "home"


def unit(seed: int, dimension: int = 8) -> np.ndarray:
    vector = np.random.default_rng(seed).normal(size=dimension).astype(np.float32)
    return vector / np.linalg.norm(vector)


class Box:
    """A gallery with its fleet book, and a hand-carried broker: `send` gives every record this
    box changed to the others, in whatever order the test chooses."""

    def __init__(self, tmp_path, name: str) -> None:
        self.name = name
        self.gallery = Gallery(tmp_path / f"{name}.db")
        self.book = FleetBook(self.gallery, FLEET, HybridClock(name))

    def step(self) -> list[PersonState]:
        return [self.book.states[uid] for uid in sorted(self.book.step())]

    def take(self, states: list[PersonState]) -> None:
        # Through the wire format, as the broker carries them.
        self.book.inbox.extend(decode(encode(s, FLEET, "x"), FLEET)[0] for s in states)

    def people(self) -> dict[str, tuple[int, int]]:
        return {p.name: (sum(p.embeddings.values()), self.gallery.negatives(p.name) if not p.anonymous else 0)
                for p in self.gallery.people()}


def settle(boxes: list[Box], rounds: int = 6) -> None:
    for _ in range(rounds):
        sent = {box.name: box.step() for box in boxes}
        if not any(sent.values()):
            return
        for box in boxes:
            for other, states in sent.items():
                if other != box.name:
                    box.take(states)
    raise AssertionError("the boxes did not settle")


def test_merge_is_commutative_associative_and_idempotent():
    states = []
    for i in range(4):
        box = f"b{i}"
        state = PersonState("a" * 32, (f"name{i}", (1000 + i % 2, i, box)),
                            (i == 3, None, (900 + i, 0, box)))
        for j in range(3):
            present = (i + j) % 2 == 0
            state.faces[f"k{j}"] = Element("m", unit(j).tobytes(), (1000 + i, j, box), present)
        states.append(state)
    digests = set()
    for order in itertools.permutations(states):
        merged = order[0]
        for s in order[1:]:
            merged = merge(merged, s)
        digests.add(merged.digest())
        assert merge(merged, merged).digest() == merged.digest()
    assert len(digests) == 1


def test_a_record_is_checked_before_it_is_believed():
    state = PersonState("b" * 32, ("alice", (5, 0, "a")))
    state.faces["k"] = Element("m@1", unit(1).tobytes(), (5, 1, "a"))
    text = encode(state, FLEET, "a")
    assert decode(text, FLEET)[0].digest() == state.digest()
    bad = json.loads(text)
    for change, reason in [
        ({"fleet": "other"}, "fleet"), ({"uid": "../x"}, "uid"), ({"name": ["<b>x</b>", [5, 0, "a"]]}, "name"),
        ({"faces": [["m", "!!", [1, 0, "a"], True]]}, "base64"),
        ({"faces": [["m", "AAAA", [1, 0, "a"], "yes"]]}, "present"),
        ({"faces": [["m", "AAC", [1, 0, "a"], True]]}, "base64"), ({"gone": [True, "nope", [1, 0, "a"]]}, "gone"),
        ({"picture": ["AAAA", 1.0, [1, 0, "a"]]}, "JPEG"), ({"format": 2}, "format"),
        ({"faces": [[]] * 201}, "at most"),
    ]:
        with pytest.raises(RecordError, match=reason):
            decode(json.dumps({**bad, **change}), FLEET)
    with pytest.raises(RecordError, match="number"):
        nan = np.array([np.nan] * 4, "<f4").tobytes()
        decode(json.dumps({**bad, "faces": [["m", __import__("base64").b64encode(nan).decode(), [1, 0, "a"], True]]}),
               FLEET)


def test_galleries_converge_through_records_in_any_order(tmp_path):
    a, b, c = (Box(tmp_path, n) for n in "abc")
    a.gallery.enroll("alice", unit(1)[None], "m")
    a.gallery.enroll("alice", unit(2)[None], "other-model")  # another model's: kept and passed on
    stranger = a.gallery.new_anonymous(unit(3)[None], "m")
    assert stranger.startswith("unknown-") and int(stranger.split("-")[1]) >= 100000  # drawn at random
    settle([a, b, c])
    for box in (b, c):
        assert box.people() == {"alice": (2, 0), stranger: (1, 0)}
        assert box.gallery.model_ids() == {"m": 2, "other-model": 1}
        # The same stranger on B's camera is matched to A's id.
        assert box.gallery.stranger_for(unit(3)[None], "m", 0.9) == stranger

    # "Not alice" on C, a rename on B, naming the stranger on A: everywhere.
    c.gallery.reject("alice", unit(4), "m")
    b.gallery.rename("alice", "Alice")
    a.gallery.name_anonymous(stranger, "paul")
    settle([a, b, c])
    for box in (a, b, c):
        assert box.people() == {"Alice": (2, 1), "paul": (1, 0)}, box.name
        assert box.gallery.current_names().get(stranger) == "paul"

    # Concurrent renames of one person on two boxes: one outcome everywhere.
    a.gallery.rename("paul", "Paul R")
    b.gallery.rename("paul", "Paul Rudd")
    settle([a, b, c])
    names = {box.name: sorted(box.people()) for box in (a, b, c)}
    assert len({tuple(v) for v in names.values()}) == 1 and names["a"][1] in ("Paul R", "Paul Rudd")

    # The same name enrolled on two boxes at once is one person, with both faces.
    a.gallery.enroll("zoe", unit(5)[None], "m")
    c.gallery.enroll("zoe", unit(6)[None], "m")
    settle([a, b, c])
    for box in (a, b, c):
        assert box.people()["zoe"] == (2, 0)

    # Deletions and a face removed, delivered in a shuffled order with duplicates.
    a.gallery.remove("zoe")
    face = [f for f in b.gallery.faces("Alice") if f.model_id == "m"][0]
    b.gallery.remove_face(face.id)
    sent = a.step() + b.step()
    random.Random(4).shuffle(sent)
    c.take(sent + sent[:1])
    settle([a, b, c])
    for box in (a, b, c):
        assert box.people() == {"Alice": (1, 1), names["a"][1]: (1, 0)}
    assert len({box.book.digest() for box in (a, b, c)}) == 1
    # A restart keeps the records (and whose they are): nothing to publish, nobody new.
    digest = a.book.digest()
    a.book = FleetBook(a.gallery, FLEET, HybridClock("a"))
    assert a.step() == [] and a.book.digest() == digest


def test_an_undo_on_the_page_puts_the_person_back_everywhere(tmp_path):
    a, b = Box(tmp_path, "a"), Box(tmp_path, "b")
    a.gallery.enroll("ann", unit(1)[None], "m")
    settle([a, b])
    rows = b.gallery.take_out("ann")
    settle([a, b])
    assert "ann" not in a.people()
    b.gallery.put_back(rows)
    settle([a, b])
    assert a.people() == {"ann": (1, 0)}


# -- three daemons on one broker --------------------------------------------------------------------
KEY = "fleet-test-key-0123456789abcdef"
TOKEN = "fleet-api-token-0123456789"


def api(port: int, method: str, path: str, body: bytes | None = None, kind: str = "application/json"):
    import http.client

    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        connection.request(method, path, body=body, headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": kind})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    except OSError:
        return 0, {}
    finally:
        connection.close()


def exported(folder) -> dict:
    """A box's gallery as an export, without what differs by nature between boxes (where a
    face came from, when it was stored)."""
    with Gallery(folder / "gallery.db") as gallery:
        result = {}
        for model_id in sorted(gallery.model_ids()):
            path = folder / f"export-{model_id}.json"
            gallery.export(path, model_id)
            document = json.loads(path.read_text())
            result[model_id] = {p["name"]: (sorted(v["vector"] for v in p["embeddings"]),
                                            sorted(v["vector"] for v in p["negatives"]))
                                for p in document["people"]}
        result["names"] = sorted(p.name for p in gallery.people())
        return result


@pytest.mark.shared
def test_three_boxes_one_memory_of_faces(tmp_path, scenario_video, enrolled_gallery, broker):
    import time

    import paho.mqtt.client as mqtt
    from services import Daemon, Subscriber, TcpProxy, config, free_port, gallery_copy, wait_until

    from .conftest import DATA, run_edged

    proxy = TcpProxy(broker.port)  # B's network, which the test cuts
    boxes: dict[str, tuple[Daemon, int]] = {}

    def start(name: str, broker_port: int) -> None:
        folder, port = tmp_path / name, free_port()
        text = config(scenario_video, gallery_copy(enrolled_gallery, folder), port,
                      extra=f'enabled = true\nport = {broker_port}\nkey = "{KEY}"\n[device]\nname = "{name}"\n'
                            '[fleet]\nenabled = true\nname = "test"\n')
        text = text.replace(f"[stream]\nport = {port}\n", f'[stream]\nport = {port}\ntoken = "{TOKEN}"\n')
        daemon = Daemon(folder, text)
        daemon.start()
        boxes[name] = (daemon, port)

    def port(name: str) -> int:
        return boxes[name][1]

    def fleet(name: str) -> dict:
        return (api(port(name), "GET", "/status")[1] or {}).get("fleet", {})

    def people(name: str) -> set[str]:
        return {p["name"] for p in api(port(name), "GET", "/api/v1/people")[1].get("people", [])}

    def in_step() -> bool:
        states = [fleet(n) for n in "abc"]
        return (all(s.get("connected") and s.get("unpublished") == 0 for s in states)
                and len({s.get("digest") for s in states}) == 1)

    def events(name: str) -> list[dict]:
        return (api(port(name), "GET", "/status")[1] or {}).get("recent_events", [])

    def photo(person: str, file: str) -> bytes:
        return (DATA / "faces" / person / file).read_bytes()

    try:
        # A alone first: the scenario's stranger (paul_rudd, never enrolled) gets A's id.
        start("a", broker.port)
        wait_until(lambda: api(port("a"), "GET", "/api/v1/strangers")[1].get("strangers"), 90, "a stranger on A")
        stranger = api(port("a"), "GET", "/api/v1/strangers")[1]["strangers"][0]["name"]
        wait_until(lambda: fleet("a").get("unpublished") == 0, 30, "A's records on the broker")
        # B and C join: they catch up from the broker before their cameras start, so the stranger
        # walking past B is called by A's id.
        start("b", proxy.port)
        start("c", broker.port)
        # (B cannot make up A's id, drawn at random from 900,000, by itself.)
        wait_until(lambda: any(e.get("person") == stranger for e in events("b")), 90, f"B naming {stranger}")
        wait_until(in_step, 60, "three boxes in step")

        # The broker restarts (persistence on): the records survive it, and the boxes reconnect.
        broker.stop()
        broker.start()
        wait_until(in_step, 60, "in step after the broker's restart")

        # Enroll on A: B and C name that person (the issue asks within 5 s; measured and printed,
        # not asserted, so that a loaded machine does not fail the test).
        enrolled_at = time.monotonic()
        paul = photo("paul_rudd", "1.jpg")
        assert api(port("a"), "POST", "/api/v1/people/paul_rudd/faces", paul, "image/jpeg")[0] == 200
        latency = {}
        for name in "bc":
            wait_until(lambda name=name: "paul_rudd" in people(name), 30, f"paul_rudd on {name}")
            latency[name] = time.monotonic() - enrolled_at
        print(f"enrolled on A, known on B after {latency['b']:.1f} s and on C after {latency['c']:.1f} s")
        for name in "bc":
            wait_until(lambda name=name: any(e.get("person") == "paul_rudd" for e in events(name)), 60,
                       f"{name} naming paul_rudd on its camera")
        # Home Assistant: each box has its own presence sensor for him, under the same name.
        discovery = Subscriber(broker.port, "homeassistant/binary_sensor/#", client_id="fleet-test-ha")

        def sensors() -> dict[str, str]:
            found = {}
            for topic, payload, _ in list(discovery.messages):
                body = json.loads(payload) if payload else {}
                if body.get("name") == "paul_rudd at door":
                    found[topic.split("/")[2]] = body["unique_id"]
            return found

        try:
            wait_until(lambda: set(sensors()) == {"edged_a", "edged_b", "edged_c"}, 60, "a sensor for him per box")
            assert len(set(sensors().values())) == 3
        finally:
            discovery.close()

        # "Not X" on C stops a false name on A: a photo of kit enrolled under obama by mistake
        # makes A name kit's other photo obama, until C says that face is not obama.
        mistake, wrong = photo("kit_harington", "john1.jpeg"), photo("kit_harington", "john2.jpeg")
        assert api(port("a"), "POST", "/api/v1/people/obama/faces", mistake, "image/jpeg")[0] == 200

        def named_on_a() -> list:
            return [f["person"] for f in api(port("a"), "POST", "/api/v1/identify", wrong, "image/jpeg")[1]["faces"]
                    if f["person"]]

        assert named_on_a() == ["obama"]
        wait_until(lambda: in_step(), 30, "the wrong face on every box")
        assert api(port("c"), "POST", "/api/v1/people/obama/reject", wrong, "image/jpeg")[0] == 200
        wait_until(lambda: named_on_a() == [], 30, "A no longer naming her obama")

        # B cut off for 60 s while A renames and C names (merges) the stranger.
        proxy.cut()
        cut_at = time.monotonic()
        wait_until(lambda: not fleet("b").get("connected"), 30, "B losing the broker")
        assert api(port("a"), "PATCH", "/api/v1/people/rose_leslie", b'{"name": "Rose"}')[0] == 200
        assert api(port("c"), "POST", f"/api/v1/strangers/{stranger}/name", b'{"name": "paul_rudd"}')[0] == 200
        time.sleep(max(0.0, 60 - (time.monotonic() - cut_at)))
        assert "rose_leslie" in people("b") and "Rose" not in people("b")  # B heard nothing meanwhile
        proxy.restore()
        wait_until(in_step, 90, "in step after B reconnects")
        for name in "abc":
            assert "Rose" in people(name) and "rose_leslie" not in people(name)
            assert stranger not in {p["name"] for p in api(port(name), "GET", "/api/v1/strangers")[1]["strangers"]}
        first = exported(tmp_path / "a")
        assert exported(tmp_path / "b") == first and exported(tmp_path / "c") == first

        # Concurrent renames of one person on two boxes: one outcome on all three.
        before = fleet("a")["digest"]
        assert api(port("a"), "PATCH", "/api/v1/people/Rose", b'{"name": "Rose L"}')[0] == 200
        assert api(port("c"), "PATCH", "/api/v1/people/Rose", b'{"name": "Rose Leslie"}')[0] == 200
        wait_until(lambda: in_step() and fleet("a")["digest"] != before, 60, "in step after two renames")
        outcome = {name: people(name) & {"Rose L", "Rose Leslie"} for name in "abc"}
        assert len({frozenset(v) for v in outcome.values()}) == 1 and len(outcome["a"]) == 1, outcome

        # Forged records (no signature; another key) change nothing and are counted.
        digest = fleet("a")["digest"]
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="forger")
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        from edged.fleet.records import PersonState, encode
        from edged.signing import sign

        forged = encode(PersonState("f" * 32, ("mallory", (2**40, 0, "a"))), "test", "a")
        client.publish("edged/fleet/test/people/" + "f" * 32, forged.encode(), qos=1, retain=True).wait_for_publish(5)
        client.publish("edged/fleet/test/people/" + "e" * 32, sign(b"another-key-0123456789", forged), qos=1,
                       retain=True).wait_for_publish(5)
        client.loop_stop()
        client.disconnect()
        wait_until(lambda: all(fleet(n).get("rejected_total", 0) >= 2 for n in "abc"), 30, "forgeries counted")
        assert all(fleet(n)["digest"] == digest for n in "abc")
        assert all("mallory" not in people(n) for n in "abc")
        assert fleet("a")["rejected"].keys() <= {"signature: not signed", "signature: wrong signature"}
        assert set(fleet("a")["boxes"]) == {"a", "b", "c"}

        # `edged fleet status`, from the command line of box C.
        shown = run_edged("fleet", "status", "--config", str(tmp_path / "c" / "edged.toml"), "--json", check=True)
        report = json.loads(shown.stdout)
        assert set(report["boxes"]) == {"a", "b", "c"} and report["here"] == report["on_broker"]
        assert not any(report["out_of_step"].values()) and sum(report["rejected"].values()) >= 2
        last = [r["name"] for box in report["boxes"].values() for r in box["last_records"]]
        assert {"Rose L", "Rose Leslie"} & set(last), last  # the latest change is among the boxes' last records
        text = run_edged("fleet", "status", "--config", str(tmp_path / "c" / "edged.toml"), check=True).stdout
        assert "in step" in text and "c: last heard" in text
    finally:
        for daemon, _ in boxes.values():
            daemon.stop()
        proxy.close()
    for daemon, _ in boxes.values():
        assert "Traceback" not in daemon.text(), daemon.text()[-3000:]


def test_a_large_record_crosses_between_two_boxes(tmp_path, broker):
    """A person with 60 faces of a 512-d embedder (a record of about 200 kB, beyond a command's
    64 kB) goes from one box to another through a real broker; the boxes' links alone."""
    import time

    from services import wait_until

    from edged.config import MqttConfig
    from edged.fleet.link import FleetLink

    settings = MqttConfig(enabled=True, host="127.0.0.1", port=broker.port, key="fleet-unit-key-0123456789")
    first, second = Gallery(tmp_path / "a.db"), Gallery(tmp_path / "b.db")
    links = [FleetLink(first, settings, FLEET, "a"), FleetLink(second, settings, FLEET, "b")]
    for link in links:
        link.start()
    try:
        first.enroll("many faces", np.stack([unit(i, 512) for i in range(60)]), "big-model")
        wait_until(lambda: second.model_ids().get("big-model") == 60, 30, "60 faces on the second box")
        assert links[1].status()["rejected_total"] == 0
        assert wait_until(lambda: set(links[0].status()["boxes"]) == {"a", "b"}, 40, "both heartbeats")
        # A reconnect reads the broker's records before publishing: nothing is sent again.
        wait_until(lambda: all(link.status()["unpublished"] == 0 for link in links), 30, "both in step")
        published = [link.published for link in links]
        broker.stop()
        wait_until(lambda: not any(link.connected for link in links), 30, "both losing the broker")
        broker.start()
        wait_until(lambda: all(link.status()["connected"] and link.status()["unpublished"] == 0 for link in links),
                   60, "both in step again")
        time.sleep(2)
        assert [link.published for link in links] == published
    finally:
        for link in links:
            link.stop()
        first.close()
        second.close()


def test_a_failed_step_leaves_records_and_gallery_as_they_were(tmp_path, monkeypatch):
    a, b = Box(tmp_path, "a"), Box(tmp_path, "b")
    a.gallery.enroll("ann", unit(1)[None], "m")
    sent = a.step()
    b.take(sent)
    before = (dict(b.book.states), dict(b.book.owner))

    def broken(*args):
        raise OSError("disk full")

    monkeypatch.setattr(b.book, "_apply", broken)
    with pytest.raises(OSError):
        b.book.step()
    assert (b.book.states, b.book.owner) == before and b.people() == {}
    monkeypatch.undo()
    b.step()  # the records received are still there to apply
    assert b.people() == {"ann": (1, 0)}
    settle([a, b])
    assert a.people() == b.people() == {"ann": (1, 0)}
