"""A person as the fleet shares them: one record per person, a state every box merges the same
way (a state-based CRDT), so boxes that saw the same records hold the same person whatever
order the records came in, and a record seen twice changes nothing.

- `name` and `gone` (deleted, or merged into another person) are registers: the value with the
  later hybrid logical clock wins, the box id breaking ties.
- `faces` and `negatives` are sets of embeddings keyed by their content (model id and vector):
  each element carries its own clock and whether it is present, so a removal is a tombstone
  that a later re-add can undo. Embeddings of every model id are kept and passed on; a box
  uses only its own model's.
- `picture` keeps the best-quality face; `seen` the first and last time any box saw them.

Pure logic: no gallery, no broker."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from edged.errors import GalleryError
from edged.names import check_person_name

FORMAT = 1
MAX_ELEMENTS = 200  # faces or negatives in one person's record
MAX_DIMENSION = 4096
MAX_PICTURE = 48 * 1024  # bytes of JPEG (a card is 160 px, about 8 kB)
UID = re.compile(r"[0-9a-f]{32}")
BOX = re.compile(r"[A-Za-z0-9_-]{1,64}")
MODEL = re.compile(r"[A-Za-z0-9_.@:+-]{1,128}")

Clock = tuple[int, int, str]  # (wall milliseconds, counter, box): a hybrid logical clock reading
ZERO: Clock = (0, 0, "")


class RecordError(ValueError):
    """A record with a wrong shape, size or value; the reason is counted in /status."""


class HybridClock:
    """Readings that grow on every call and never fall behind any reading seen from another
    box (Kulkarni et al.'s hybrid logical clock), so "later" means the same on every box even
    when their clocks are seconds apart."""

    def __init__(self, box: str, wall: Any = time.time) -> None:
        self.box = box
        self.wall = wall
        self._last = (0, 0)
        self._lock = threading.Lock()

    def now(self) -> Clock:
        with self._lock:
            wall_ms = int(self.wall() * 1000)
            ms, counter = self._last
            self._last = (wall_ms, 0) if wall_ms > ms else (ms, counter + 1)
            return (*self._last, self.box)

    def seen(self, clock: Clock) -> None:
        with self._lock:
            if clock[:2] > self._last:
                self._last = (clock[0], clock[1])


@dataclass(frozen=True)
class Element:
    """One embedding of a set: which model made it, the vector, and whether it is present."""

    model: str
    vector: bytes  # float32 little-endian
    clock: Clock
    present: bool = True


def element_key(model: str, vector: bytes) -> str:
    return hashlib.sha256(model.encode() + b"\0" + vector).hexdigest()[:32]


@dataclass
class PersonState:
    uid: str
    name: tuple[str, Clock] = ("", ZERO)
    gone: tuple[bool, str | None, Clock] = (False, None, ZERO)  # deleted, merged into (uid), when
    faces: dict[str, Element] = field(default_factory=dict)
    negatives: dict[str, Element] = field(default_factory=dict)
    picture: tuple[bytes, float, Clock] | None = None
    seen: tuple[float, float] | None = None  # first and last seen, Unix time

    @property
    def is_gone(self) -> bool:
        return self.gone[0]

    def present(self, kind: str) -> dict[str, Element]:
        elements = self.faces if kind == "faces" else self.negatives
        return {k: e for k, e in elements.items() if e.present}

    def latest(self) -> Clock:
        clocks = [self.name[1], self.gone[2], *(e.clock for e in self.faces.values()),
                  *(e.clock for e in self.negatives.values())]
        if self.picture:
            clocks.append(self.picture[2])
        return max(clocks)

    def digest(self) -> str:
        """Equal for equal states. Kept once made: states are replaced, never changed in place."""
        made = self.__dict__.get("_digest")
        if made is None:
            made = self.__dict__["_digest"] = hashlib.sha256(encode(self, "", "").encode()).hexdigest()
        return str(made)


def merge(a: PersonState, b: PersonState) -> PersonState:
    """The state holding both: commutative, associative, idempotent."""
    assert a.uid == b.uid
    pictures = [p for p in (a.picture, b.picture) if p is not None]
    seens = [s for s in (a.seen, b.seen) if s is not None]
    return PersonState(
        a.uid,
        max(a.name, b.name, key=lambda v: (v[1], v[0])),
        max(a.gone, b.gone, key=lambda v: (v[2], v[0], v[1] or "")),
        _merge_set(a.faces, b.faces), _merge_set(a.negatives, b.negatives),
        max(pictures, key=lambda p: (p[1], p[2], p[0])) if pictures else None,
        (min(s[0] for s in seens), max(s[1] for s in seens)) if seens else None)


def _merge_set(a: dict[str, Element], b: dict[str, Element]) -> dict[str, Element]:
    merged = dict(a)
    for key, element in b.items():
        mine = merged.get(key)
        if mine is None or (element.clock, element.present) > (mine.clock, mine.present):
            merged[key] = element
    return merged


def with_element(state: PersonState, kind: str, element: Element) -> PersonState:
    elements = dict(state.faces if kind == "faces" else state.negatives)
    elements[element_key(element.model, element.vector)] = element
    return replace(state, faces=elements) if kind == "faces" else replace(state, negatives=elements)


# -- the wire ---------------------------------------------------------------------------------
def _clock_json(clock: Clock) -> list[object]:
    return [clock[0], clock[1], clock[2]]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def encode(state: PersonState, fleet: str, box: str) -> str:
    """The record's JSON text (what is signed): keys sorted, so equal states read the same."""
    def elements(items: dict[str, Element]) -> list[list[object]]:
        return [[e.model, _b64(e.vector), _clock_json(e.clock), e.present] for _, e in sorted(items.items())]

    document = {
        "format": FORMAT, "fleet": fleet, "from": box, "uid": state.uid,
        "name": [state.name[0], _clock_json(state.name[1])],
        "gone": [state.gone[0], state.gone[1], _clock_json(state.gone[2])],
        "faces": elements(state.faces), "negatives": elements(state.negatives),
        "picture": None if state.picture is None else [_b64(state.picture[0]), state.picture[1],
                                                       _clock_json(state.picture[2])],
        "seen": None if state.seen is None else list(state.seen),
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def _clock(value: object, where: str) -> Clock:
    if (not isinstance(value, list) or len(value) != 3 or not all(isinstance(v, int) and not isinstance(v, bool)
                                                                   for v in value[:2])
            or not isinstance(value[2], str) or not (value[2] == "" or BOX.fullmatch(value[2]))
            or not 0 <= value[0] < 2**53 or not 0 <= value[1] < 2**31):
        raise RecordError(f"{where}: not a clock [milliseconds, counter, box]")
    return (value[0], value[1], value[2])


def _bytes(value: object, where: str, limit: int) -> bytes:
    if not isinstance(value, str) or len(value) > limit * 4 // 3 + 4:
        raise RecordError(f"{where}: not base64 of at most {limit} bytes")
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise RecordError(f"{where}: not base64") from None


def _elements(value: object, where: str) -> dict[str, Element]:
    if not isinstance(value, list) or len(value) > MAX_ELEMENTS:
        raise RecordError(f"{where}: not a list of at most {MAX_ELEMENTS} embeddings")
    elements: dict[str, Element] = {}
    for i, item in enumerate(value):
        at = f"{where}[{i}]"
        if (not isinstance(item, list) or len(item) != 4 or not isinstance(item[0], str)
                or not isinstance(item[3], bool)):
            raise RecordError(f"{at}: not [model, vector, clock, present]")
        if not MODEL.fullmatch(item[0]):
            raise RecordError(f"{at}: not a model id")
        vector = _bytes(item[1], at, MAX_DIMENSION * 4)
        if not vector or len(vector) % 4:
            raise RecordError(f"{at}: the vector is not float32 values")
        values = np.frombuffer(vector, "<f4")
        if not np.all(np.isfinite(values)):
            raise RecordError(f"{at}: the vector holds a value that is not a number")
        element = Element(item[0], vector, _clock(item[2], at), item[3])
        elements[element_key(element.model, vector)] = element
    return elements


def decode(text: str, fleet: str) -> tuple[PersonState, str]:
    """A record's state and the box that sent it; RecordError names what is wrong."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        raise RecordError("not JSON") from None
    if not isinstance(document, dict):
        raise RecordError("not an object")
    if document.get("format") != FORMAT:
        raise RecordError(f"format {document.get('format')!r}, not {FORMAT}")
    if document.get("fleet") != fleet:
        raise RecordError(f"for fleet {document.get('fleet')!r}, not {fleet!r}")
    uid, sender = document.get("uid"), document.get("from")
    if not isinstance(uid, str) or not UID.fullmatch(uid):
        raise RecordError("uid is not 32 hex digits")
    if not isinstance(sender, str) or not BOX.fullmatch(sender):
        raise RecordError("from is not a box id")
    name = document.get("name")
    if not isinstance(name, list) or len(name) != 2 or not isinstance(name[0], str):
        raise RecordError("name is not [name, clock]")
    name_clock = _clock(name[1], "name")
    if name_clock != ZERO:
        try:
            check_person_name(name[0], anonymous_ok=True)
        except GalleryError as exc:
            raise RecordError(f"name: {exc}") from None
    gone = document.get("gone")
    if (not isinstance(gone, list) or len(gone) != 3 or not isinstance(gone[0], bool)
            or not (gone[1] is None or (isinstance(gone[1], str) and UID.fullmatch(gone[1])))):
        raise RecordError("gone is not [deleted, merged into, clock]")
    picture = document.get("picture")
    picture_value: tuple[bytes, float, Clock] | None = None
    if picture is not None:
        if (not isinstance(picture, list) or len(picture) != 3 or not isinstance(picture[1], (int, float))
                or isinstance(picture[1], bool) or not 0 <= picture[1] <= 1e6):
            raise RecordError("picture is not [jpeg, quality, clock]")
        jpeg = _bytes(picture[0], "picture", MAX_PICTURE)
        if not jpeg.startswith(b"\xff\xd8\xff"):
            raise RecordError("picture is not a JPEG")
        picture_value = (jpeg, float(picture[1]), _clock(picture[2], "picture"))
    seen = document.get("seen")
    seen_value: tuple[float, float] | None = None
    if seen is not None:
        if (not isinstance(seen, list) or len(seen) != 2 or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v < 2**40 for v in seen)):
            raise RecordError("seen is not [first, last]")
        seen_value = (float(seen[0]), float(seen[1]))
    state = PersonState(uid, (name[0], name_clock), (gone[0], gone[1], _clock(gone[2], "gone")),
                        _elements(document.get("faces"), "faces"), _elements(document.get("negatives"), "negatives"),
                        picture_value, seen_value)
    return state, sender
