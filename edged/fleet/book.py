"""The fleet's records kept beside the gallery, in its own table of the gallery file: each
person's shared state by fleet-wide id (uid), and which local person it is. One step, under
the gallery's lock, first makes the gallery what the records received say (apply), then turns
what changed here since into new record values (diff): an enrollment, a rename, a "not X", a
deletion or a merge made by any way in (command line, page, MQTT, HTTP) is found by comparing
the gallery with the records, so no code path can forget to tell the fleet."""

from __future__ import annotations

import logging
import secrets
import sqlite3
import time
from dataclasses import dataclass, replace

from edged.fleet.records import Element, HybridClock, PersonState, decode, element_key, encode, merge, with_element
from edged.gallery import ANONYMOUS_PREFIX, Gallery, is_anonymous_name

log = logging.getLogger("edged.fleet")

# person_id: the local person (who may be gone: the record then says so).
# person_id and person_created name the local person: SQLite gives a deleted person's id to
# the next one, and the creation time tells them apart.
_SCHEMA = ("CREATE TABLE IF NOT EXISTS fleet_people (uid TEXT PRIMARY KEY, person_id INTEGER, person_created REAL, "
           "state TEXT NOT NULL)")
MAX_ROUNDS = 8  # collisions resolved per step (each round settles at least one)


@dataclass
class Local:
    """One local person as the gallery holds them."""

    person_id: int
    created: float
    name: str
    faces: dict[str, tuple[int, str, bytes]]  # element key -> (row id, model, vector)
    negatives: dict[str, tuple[int, str, bytes]]
    picture_quality: float | None
    seen: tuple[float, float] | None


def new_uid() -> str:
    return secrets.token_hex(16)


def stranger_number(uid: str) -> int:
    """A stranger's number derived from their uid: a renamed loser of an id clash gets the same
    new id on every box."""
    return 100000 + int(uid[:12], 16) % 900000


class FleetBook:
    def __init__(self, gallery: Gallery, fleet: str, clock: HybridClock) -> None:
        self.gallery = gallery
        self.fleet = fleet
        self.clock = clock
        # Strangers' ids drawn at random (6 digits): two boxes never count up to the same one.
        gallery.number_strangers = lambda: 100000 + secrets.randbelow(900000)
        with gallery.locked_db() as db:
            db.execute(_SCHEMA)
            rows = db.execute("SELECT uid, person_id, person_created, state FROM fleet_people").fetchall()
        self.states: dict[str, PersonState] = {}
        self.owner: dict[str, tuple[int, float]] = {}  # uid -> the local person: (id, created)
        for uid, person_id, created, text in rows:
            try:
                state, _ = decode(text, fleet)
            except ValueError as exc:  # written by another fleet, or by hand: start that person afresh
                log.warning("fleet: dropped the stored record of %s (%s)", uid, exc)
                continue
            self.states[uid] = state
            if person_id is not None:
                self.owner[uid] = (int(person_id), float(created))
            clock.seen(state.latest())
        self._seen_version = -1
        self.inbox: list[PersonState] = []

    def _here(self, uid: str, locals_: dict[int, Local]) -> Local | None:
        """The local person of a record, when they still exist (the same id and creation time)."""
        owner = self.owner.get(uid)
        here = locals_.get(owner[0]) if owner else None
        return here if here is not None and owner is not None and here.created == owner[1] else None

    def step(self) -> set[str]:
        """Records what changed in the gallery since the last step (so a change made here is
        never mistaken for one received), merges what was received, and makes the gallery hold
        the result; returns the uids whose state changed. Cheap when nothing happened."""
        if not self.inbox and self.gallery.version == self._seen_version:
            return set()
        # A step that fails (the database busy, a full disk) is rolled back whole; the records
        # in memory go back with it, or the next step would take the rolled-back gallery for
        # deletions made here.
        before = (dict(self.states), dict(self.owner), list(self.inbox))
        try:
            return self._step()
        except BaseException:
            self.states, self.owner, self.inbox = before
            raise

    def _step(self) -> set[str]:
        with self.gallery.locked_db() as db:
            changed = self._diff(db)
            received, self.inbox = self.inbox, []
            pending = set()
            for state in received:
                self.clock.seen(state.latest())
                mine = self.states.get(state.uid)
                merged = state if mine is None else merge(mine, state)
                if mine is None or merged.digest() != mine.digest():
                    self.states[state.uid] = merged
                    pending.add(state.uid)
            changed |= pending
            for _ in range(MAX_ROUNDS):
                if not pending:
                    break
                pending = self._apply(db, pending)
                changed |= pending
            for uid in changed:
                owner = self.owner.get(uid)
                db.execute("INSERT OR REPLACE INTO fleet_people VALUES (?, ?, ?, ?)",
                           (uid, owner[0] if owner else None, owner[1] if owner else None,
                            encode(self.states[uid], self.fleet, self.clock.box)))
        self._seen_version = self.gallery.version
        return changed

    # -- records -> gallery -----------------------------------------------------------------
    def _apply(self, db: sqlite3.Connection, uids: set[str]) -> set[str]:
        """Makes the gallery hold these states; returns uids changed to settle a clash of names
        (they are applied again)."""
        locals_ = self._locals(db)
        clashes: set[str] = set()
        for uid in sorted(uids, key=lambda u: (not self.states[u].is_gone, u)):  # free names first
            state = self.states[uid]
            here = self._here(uid, locals_)
            if state.is_gone:
                if here is not None:
                    db.execute("DELETE FROM people WHERE id = ?", (here.person_id,))
                    locals_.pop(here.person_id, None)
                self.owner.pop(uid, None)
                merged_into = self._here(state.gone[1] or "", locals_)
                if merged_into is not None and state.name[0]:
                    db.execute("INSERT OR REPLACE INTO former_names VALUES (?, ?)",
                               (state.name[0], merged_into.person_id))
                continue
            name = state.name[0]
            if not name:
                continue
            other = next((p for p in locals_.values() if p.name == name and p is not here), None)
            if other is not None:
                clashes |= self._settle(db, uid, other, locals_)
                continue
            if here is None:
                created = time.time()
                cursor = db.execute("INSERT INTO people(name, created, anonymous) VALUES (?, ?, ?)",
                                    (name, created, int(is_anonymous_name(name))))
                here = Local(int(cursor.lastrowid or 0), created, name, {}, {}, None, None)
                self.owner[uid] = (here.person_id, created)
                locals_[here.person_id] = here
            elif here.name != name:
                db.execute("UPDATE people SET name = ?, anonymous = ? WHERE id = ?",
                           (name, int(is_anonymous_name(name)), here.person_id))
                db.execute("DELETE FROM former_names WHERE name = ?", (name,))
                db.execute("INSERT OR REPLACE INTO former_names VALUES (?, ?)", (here.name, here.person_id))
                here.name = name
            for kind, table in (("faces", "embeddings"), ("negatives", "negatives")):
                held = here.faces if kind == "faces" else here.negatives
                for key, element in (state.faces if kind == "faces" else state.negatives).items():
                    if element.present and key not in held:
                        cursor = db.execute(f"INSERT INTO {table}(person_id, model_id, vector, source, created) "
                                            "VALUES (?, ?, ?, ?, ?)", (here.person_id, element.model, element.vector,
                                                                       f"fleet ({element.clock[2]})", time.time()))
                        held[key] = (int(cursor.lastrowid or 0), element.model, element.vector)
                    elif not element.present and key in held:
                        db.execute(f"DELETE FROM {table} WHERE id = ?", (held.pop(key)[0],))
            if state.picture is not None and (here.picture_quality is None
                                              or state.picture[1] > here.picture_quality):
                db.execute("INSERT OR REPLACE INTO pictures VALUES (?, ?, ?)",
                           (here.person_id, state.picture[0], state.picture[1]))
                here.picture_quality = state.picture[1]
        return clashes

    def _settle(self, db: sqlite3.Connection, uid: str, other: Local, locals_: dict[int, Local]) -> set[str]:
        """Two live records want one name. Two people of one name are one person: the record
        with the smaller uid takes the other's faces and the other is marked merged into it.
        Two strangers given one id by chance: the larger uid takes an id derived from its uid.
        Every box settles a clash the same way."""
        other_uid = self._uid_for(other.person_id) or self._adopt(db, other)
        survivor, loser = sorted((uid, other_uid))
        now = self.clock.now()
        if is_anonymous_name(other.name):
            state = self.states[loser]
            self.states[loser] = replace(state, name=(f"{ANONYMOUS_PREFIX}{stranger_number(loser)}", now))
            return {loser}
        kept, lost = self.states[survivor], self.states[loser]
        for kind in ("faces", "negatives"):
            for element in lost.present(kind).values():
                if element_key(element.model, element.vector) not in kept.present(kind):
                    kept = with_element(kept, kind, Element(element.model, element.vector, now))
        if lost.picture is not None:
            kept = merge(kept, replace(kept, picture=lost.picture, faces={}, negatives={}))
        self.states[survivor] = kept
        self.states[loser] = replace(lost, gone=(True, survivor, now))
        log.info("fleet: two records named %s are one person; %s merged into %s", other.name, loser, survivor)
        return {survivor, loser}

    # -- gallery -> records -----------------------------------------------------------------
    def _diff(self, db: sqlite3.Connection) -> set[str]:
        changed: set[str] = set()
        locals_ = self._locals(db)
        by_person = {}
        for uid in list(self.owner):
            here = self._here(uid, locals_)
            if here is None:  # deleted here (or its id taken by someone new since)
                del self.owner[uid]
                state = self.states[uid]
                if not state.is_gone:
                    row = db.execute("SELECT person_id FROM former_names WHERE name = ?", (state.name[0],)).fetchone()
                    merged_into = next((u for u in self.owner if row and self.owner[u][0] == row[0]
                                        and self._here(u, locals_)), None)
                    self.states[uid] = replace(state, gone=(True, merged_into, self.clock.now()))
                    changed.add(uid)
            else:
                by_person[here.person_id] = uid
        for person_id, here in locals_.items():
            uid = by_person.get(person_id) or self._adopt(db, here)
            state = self.states[uid]
            before = state.digest()
            now = self.clock.now
            if state.is_gone:
                state = replace(state, gone=(False, None, now()))  # put back (the page's undo)
            if state.name[0] != here.name:
                state = replace(state, name=(here.name, now()))
            for kind in ("faces", "negatives"):
                held = here.faces if kind == "faces" else here.negatives
                present = state.present(kind)
                for key, (_, model, vector) in held.items():
                    if key not in present:
                        state = with_element(state, kind, Element(model, vector, now()))
                for key, element in present.items():
                    if key not in held:
                        state = with_element(state, kind, replace(element, clock=now(), present=False))
            if here.picture_quality is not None and (state.picture is None or here.picture_quality > state.picture[1]):
                (jpeg,) = db.execute("SELECT jpeg FROM pictures WHERE person_id = ?", (person_id,)).fetchone()
                state = replace(state, picture=(bytes(jpeg), here.picture_quality, now()))
            if here.seen is not None and (state.seen is None or here.seen[0] < state.seen[0]
                                          or here.seen[1] > state.seen[1]):
                state = merge(state, replace(state, seen=here.seen))
            if state.digest() != before:
                self.states[uid] = state
                changed.add(uid)
        return changed

    def _uid_for(self, person_id: int) -> str | None:
        return next((uid for uid, owner in self.owner.items() if owner[0] == person_id), None)

    def _adopt(self, db: sqlite3.Connection, here: Local) -> str:
        """A uid for a local person the fleet has not heard of (its state is filled by the diff)."""
        uid = new_uid()
        self.owner[uid] = (here.person_id, here.created)
        self.states[uid] = PersonState(uid)
        return uid

    def _locals(self, db: sqlite3.Connection) -> dict[int, Local]:
        people = {int(pid): Local(int(pid), float(created), name, {}, {}, None, None)
                  for pid, created, name in db.execute("SELECT id, created, name FROM people")}
        for kind, table in (("faces", "embeddings"), ("negatives", "negatives")):
            for row_id, pid, model, vector in db.execute(f"SELECT id, person_id, model_id, vector FROM {table}"):
                held = people[pid].faces if kind == "faces" else people[pid].negatives
                held[element_key(model, bytes(vector))] = (int(row_id), model, bytes(vector))
        for pid, quality in db.execute("SELECT person_id, quality FROM pictures"):
            people[pid].picture_quality = float(quality)
        # Unix times only: a scanned file's sightings are seconds into that file.
        for pid, first, last in db.execute("SELECT person_id, MIN(start), MAX(end) FROM sightings "
                                           "WHERE start > 1e9 GROUP BY person_id"):
            people[pid].seen = (float(first), float(last))
        return people

    def digest(self) -> str:
        """One digest of every record: two boxes in step have the same."""
        import hashlib

        return hashlib.sha256("".join(f"{uid}{self.states[uid].digest()}" for uid in sorted(self.states))
                              .encode()).hexdigest()[:16]
