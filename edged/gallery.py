"""Face gallery in SQLite: people and their embeddings, each tagged with the model that made it."""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from edged import durable
from edged.errors import GalleryError
from edged.files import read_regular_file
from edged.names import check_person_name
from edged.types import Identity

SCHEMA_VERSION = 5  # 2: people.anonymous and sightings; 3: negatives; 4: pictures; 5: former_names
EXPORT_FORMAT = "edged-gallery"
EXPORT_VERSION = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS people (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    anonymous INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS embeddings (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    vector BLOB NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS embeddings_model ON embeddings(model_id);
-- "Not this person": faces the owner said were not them. A face closer to one of a person's
-- negatives than to their own embeddings is not given their name.
CREATE TABLE IF NOT EXISTS negatives (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    model_id TEXT NOT NULL,
    vector BLOB NOT NULL,
    source TEXT NOT NULL DEFAULT '',
    created REAL NOT NULL
);
-- One picture per person for the face library: the best-quality face seen or enrolled.
CREATE TABLE IF NOT EXISTS pictures (
    person_id INTEGER PRIMARY KEY REFERENCES people(id) ON DELETE CASCADE,
    jpeg BLOB NOT NULL,
    quality REAL NOT NULL
);
-- Names a person had before a rename or a naming (unknown-7 -> paul), so that what was
-- recorded under the old name (recent alerts on the page) shows the current one.
CREATE TABLE IF NOT EXISTS former_names (
    name TEXT PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE
);
CREATE TABLE IF NOT EXISTS sightings (
    id INTEGER PRIMARY KEY,
    person_id INTEGER NOT NULL REFERENCES people(id) ON DELETE CASCADE,
    source TEXT NOT NULL,
    start REAL NOT NULL,
    end REAL NOT NULL,
    tracks INTEGER NOT NULL DEFAULT 1
);
"""
ANONYMOUS_PREFIX = "unknown-"
# Every table with a person's rows, the person first (the others refer to it).
_PERSON_TABLES = ("people", "embeddings", "negatives", "pictures", "former_names", "sightings")
MAX_IMPORT_BYTES = 256 * 2**20  # an export of 10,000 people with 10 faces each is about 60 MB


@dataclass(frozen=True)
class PersonSummary:
    name: str
    embeddings: dict[str, int]  # model id -> count
    created: float
    anonymous: bool = False
    sightings: int = 0


@dataclass(frozen=True)
class FaceRecord:
    """One stored embedding: the face an enrollment or a correction added."""

    id: int
    person: str
    model_id: str
    source: str
    created: float


@dataclass(frozen=True)
class Sighting:
    person: str
    source: str  # video file or camera
    start: float  # seconds: from the video's start, or Unix time for a camera
    end: float
    tracks: int


def _encode(vector: np.ndarray) -> bytes:
    return np.asarray(vector, "<f4").tobytes()


def _decode(blob: bytes) -> np.ndarray:
    return np.frombuffer(blob, "<f4")


F = TypeVar("F", bound=Callable[..., Any])


def _locked(method: F) -> F:
    """Runs a Gallery method under the gallery's lock: the daemon's threads share it."""

    @functools.wraps(method)
    def wrapper(self: Gallery, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


def is_anonymous_name(name: str) -> bool:
    return name.startswith(ANONYMOUS_PREFIX) and name[len(ANONYMOUS_PREFIX):].isdigit()


ImportedVector = tuple[bytes, str, float]  # vector, source, created
ImportedPerson = tuple[str, list[ImportedVector], list[ImportedVector]]  # name, embeddings, negatives


def parse_export(document: dict[str, Any], dimension: int, path: Path) -> list[ImportedPerson]:
    """Checks every part of an export document: names by the name rule, vectors as strict
    base64 of `dimension` little-endian float32 values, finite and of unit length."""
    people = document.get("people")
    if not isinstance(people, list):
        raise GalleryError(f"{path}: \"people\" must be a list")
    parsed: list[ImportedPerson] = []
    for i, person in enumerate(people):
        where = f"{path}: people[{i}]"
        if not isinstance(person, dict) or not isinstance(person.get("embeddings"), list):
            raise GalleryError(f"{where}: must be an object with \"name\" and a list \"embeddings\"")
        if isinstance(person.get("name"), str) and is_anonymous_name(person["name"]):
            continue  # another box's stranger ids mean nothing here, and unknown-N is this box's to give
        try:
            name = check_person_name(person.get("name"))
        except GalleryError as exc:
            raise GalleryError(f"{where}.name: {exc}") from exc
        negatives = person.get("negatives", [])
        if not isinstance(negatives, list):
            raise GalleryError(f"{where}.negatives: must be a list")
        embeddings = [_parse_vector(item, dimension, f"{where}.embeddings[{j}]")
                      for j, item in enumerate(person["embeddings"])]
        rejected = [_parse_vector(item, dimension, f"{where}.negatives[{j}]") for j, item in enumerate(negatives)]
        parsed.append((name, embeddings, rejected))
    return parsed


def _parse_vector(item: object, dimension: int, at: str) -> ImportedVector:
    if not isinstance(item, dict) or not isinstance(item.get("vector"), str):
        raise GalleryError(f"{at}: must be an object with a base64 \"vector\"")
    source, created = item.get("source", ""), item.get("created", 0.0)
    if not isinstance(source, str) or isinstance(created, bool) or not isinstance(created, int | float):
        raise GalleryError(f"{at}: \"source\" must be text and \"created\" a number")
    try:
        blob = base64.b64decode(item["vector"], validate=True)
    except ValueError as exc:
        raise GalleryError(f"{at}.vector: not valid base64 ({exc})") from exc
    if len(blob) != 4 * dimension:
        raise GalleryError(f"{at}.vector: {len(blob)} bytes, but this model's embeddings are "
                           f"{dimension} float32 values ({4 * dimension} bytes)")
    vector = _decode(blob)
    norm = float(np.linalg.norm(vector)) if np.isfinite(vector).all() else float("nan")
    if not abs(norm - 1.0) < 1e-3:
        raise GalleryError(f"{at}.vector: not a unit-length embedding (length {norm:.4g})")
    return blob, source, float(created)


class Gallery:
    """People and embeddings. Writes are single transactions in WAL mode with full sync, so a
    power cut mid-write leaves either the old or the new state, never a half of one."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.RLock()
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            # One connection shared by the daemon's threads; every use holds self._lock.
            self._db = sqlite3.connect(str(path), timeout=10.0, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=FULL")
            self._db.execute("PRAGMA foreign_keys=ON")
            self._db.executescript(_SCHEMA)
            self._migrate()
        except sqlite3.DatabaseError as exc:
            raise GalleryError(f"{path}: not a usable gallery database ({exc})") from exc
        self._cache: dict[tuple[str, bool], tuple[np.ndarray, np.ndarray, list[str]]] = {}
        self._negatives: dict[str, tuple[np.ndarray, list[str]]] = {}
        self._data_version = -1  # SQLite's count of other connections' commits, to drop stale caches
        self.version = 0  # grows with every change made through this Gallery (the fleet watches it)
        # Numbers for new strangers: None = the next of this gallery's own count; a fleet draws
        # them at random, so that boxes never give two strangers one id.
        self.number_strangers: Callable[[], int] | None = None

    def _migrate(self) -> None:
        """Brings a gallery written by an older edged up to this schema, in one transaction."""
        with self._transaction():
            row = self._db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else SCHEMA_VERSION
            if version < 2:
                columns = {r[1] for r in self._db.execute("PRAGMA table_info(people)")}
                if "anonymous" not in columns:
                    self._db.execute("ALTER TABLE people ADD COLUMN anonymous INTEGER NOT NULL DEFAULT 0")
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Gallery:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- writing -------------------------------------------------------------------------
    @_locked
    def enroll(self, name: str, vectors: np.ndarray, model_id: str, source: str = "",
               anonymous_ok: bool = False) -> int:
        """Adds (N, D) embeddings to `name`, creating the person; returns how many were added.
        `anonymous_ok`: `name` may be an unknown-N (the box's own strangers only)."""
        name = check_person_name(name, anonymous_ok)
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        now = time.time()
        with self._transaction():
            self._db.execute("INSERT OR IGNORE INTO people(name, created, anonymous) VALUES (?, ?, ?)",
                             (name, now, int(is_anonymous_name(name))))
            (person_id,) = self._db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            self._db.executemany(
                "INSERT INTO embeddings(person_id, model_id, vector, source, created) VALUES (?, ?, ?, ?, ?)",
                [(person_id, model_id, _encode(v), source, now) for v in vectors])
        self._forget()
        return len(vectors)

    @_locked
    def add_face(self, name: str, vector: np.ndarray, model_id: str, source: str = "") -> int:
        """Adds one (D,) embedding to `name` (created if new); returns the new face's id."""
        self.enroll(name, vector[None], model_id, source)
        (face_id,) = self._db.execute("SELECT MAX(e.id) FROM embeddings e JOIN people p ON p.id = e.person_id "
                                      "WHERE p.name = ?", (check_person_name(name),)).fetchone()
        return int(face_id)

    @_locked
    def new_anonymous(self, vectors: np.ndarray, model_id: str, source: str = "") -> str:
        """Creates the next `unknown-N` with these embeddings. N is never reused, even after
        an anonymous person is named or removed, so an old report's ids stay unambiguous."""
        if self.number_strangers is not None:
            number = self.number_strangers()
            while self._db.execute("SELECT 1 FROM people WHERE name = ?", (f"{ANONYMOUS_PREFIX}{number}",)).fetchone():
                number = self.number_strangers()
        else:
            with self._transaction():
                row = self._db.execute("SELECT value FROM meta WHERE key = 'next_anonymous'").fetchone()
                number = int(row[0]) if row else 1
                self._db.execute("INSERT OR REPLACE INTO meta VALUES ('next_anonymous', ?)", (str(number + 1),))
        name = f"{ANONYMOUS_PREFIX}{number}"
        self.enroll(name, vectors, model_id, source, anonymous_ok=True)
        return name

    @_locked
    def stranger_for(self, vectors: np.ndarray, model_id: str, threshold: float, source: str = "") -> str:
        """The `unknown-N` whose embeddings the mean of these (N, D) unit vectors matches, else a
        new one: one step under the lock, so two cameras meeting one stranger at once make one id."""
        mean = vectors.mean(0)
        mean /= max(float(np.linalg.norm(mean)), 1e-12)
        match = self.match(mean[None], model_id, threshold, anonymous=True)[0]
        return match.person or self.new_anonymous(vectors, model_id, source)

    @_locked
    def name_anonymous(self, anonymous: str, name: str) -> int:
        """Gives `unknown-N` a real name. Its embeddings and sightings follow; if `name`
        exists already, they are added to that person. Returns the embeddings moved."""
        name = check_person_name(name)
        if is_anonymous_name(name):
            raise GalleryError(f"'{name}' looks like an anonymous id; choose a real name")
        with self._transaction():
            source_id = self._person_id(anonymous)
            target = self._db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
            (count,) = self._db.execute("SELECT COUNT(*) FROM embeddings WHERE person_id = ?",
                                        (source_id,)).fetchone()
            self._db.execute("INSERT OR REPLACE INTO former_names VALUES (?, ?)", (anonymous, source_id))
            if target is None:
                self._db.execute("UPDATE people SET name = ?, anonymous = 0 WHERE id = ?", (name, source_id))
            else:
                for table in ("embeddings", "negatives", "sightings", "former_names"):
                    self._db.execute(f"UPDATE {table} SET person_id = ? WHERE person_id = ?", (target[0], source_id))
                self._db.execute("INSERT OR IGNORE INTO pictures SELECT ?, jpeg, quality FROM pictures "
                                 "WHERE person_id = ?", (target[0], source_id))
                self._db.execute("DELETE FROM people WHERE id = ?", (source_id,))
        self._forget()
        return int(count)

    @_locked
    def reject(self, name: str, vector: np.ndarray, model_id: str, source: str = "") -> int:
        """Stores a face the owner says is not `name`; returns how many negatives `name` has.
        The same face said twice (the same event sent again) is kept once."""
        blob = _encode(vector)
        with self._transaction():
            person_id = self._person_id(name)
            if self._db.execute("SELECT 1 FROM negatives WHERE person_id = ? AND model_id = ? AND vector = ?",
                                (person_id, model_id, blob)).fetchone() is None:
                self._db.execute("INSERT INTO negatives(person_id, model_id, vector, source, created) "
                                 "VALUES (?, ?, ?, ?, ?)", (person_id, model_id, blob, source, time.time()))
            (count,) = self._db.execute("SELECT COUNT(*) FROM negatives WHERE person_id = ?", (person_id,)).fetchone()
        self._forget()
        return int(count)

    @_locked
    def set_picture(self, name: str, jpeg: bytes, quality: float) -> None:
        """Keeps `jpeg` as the person's picture unless the one they have is of better quality."""
        with self._transaction():
            self._db.execute(
                "INSERT INTO pictures(person_id, jpeg, quality) VALUES (?, ?, ?) ON CONFLICT(person_id) DO UPDATE "
                "SET jpeg = excluded.jpeg, quality = excluded.quality WHERE excluded.quality > pictures.quality",
                (self._person_id(name), jpeg, quality))

    @_locked
    def pictures(self) -> dict[str, int]:
        """People who have a picture: name -> the id their picture is fetched by."""
        return {name: int(pid) for name, pid in self._db.execute(
            "SELECT p.name, p.id FROM pictures x JOIN people p ON p.id = x.person_id")}

    @_locked
    def person_ids(self) -> dict[str, int]:
        """Enrolled people (not unknown-N): name -> their stable id, which a rename keeps."""
        return {name: int(pid) for name, pid in self._db.execute(
            "SELECT name, id FROM people WHERE anonymous = 0 ORDER BY name")}

    @_locked
    def picture(self, person_id: int) -> bytes | None:
        row = self._db.execute("SELECT jpeg FROM pictures WHERE person_id = ?", (person_id,)).fetchone()
        return bytes(row[0]) if row else None

    @_locked
    def negatives(self, name: str) -> int:
        (count,) = self._db.execute("SELECT COUNT(*) FROM negatives WHERE person_id = ?",
                                    (self._person_id(name),)).fetchone()
        return int(count)

    @_locked
    def anonymous_vectors(self, model_id: str) -> dict[str, np.ndarray]:
        """The embeddings of every `unknown-N` made by `model_id`, by name."""
        matrix, owner, names = self._matrix(model_id, anonymous=True)
        return {name: matrix[owner == i] for i, name in enumerate(names)}

    @_locked
    def add_sighting(self, name: str, source: str, start: float, end: float, tracks: int = 1) -> None:
        with self._transaction():
            self._db.execute("INSERT INTO sightings(person_id, source, start, end, tracks) VALUES (?, ?, ?, ?, ?)",
                             (self._person_id(name), source, start, end, tracks))

    @_locked
    def sightings(self, name: str | None = None) -> list[Sighting]:
        query = ("SELECT p.name, s.source, s.start, s.end, s.tracks FROM sightings s "
                 "JOIN people p ON p.id = s.person_id")
        rows = (self._db.execute(query + " WHERE p.name = ? ORDER BY s.id", (name,)) if name
                else self._db.execute(query + " ORDER BY s.id"))
        return [Sighting(*row) for row in rows]

    @_locked
    def current_names(self) -> dict[str, str]:
        """Former name -> the name that person has now (a name in use now is not former)."""
        return {old: new for old, new in self._db.execute(
            "SELECT f.name, p.name FROM former_names f JOIN people p ON p.id = f.person_id "
            "WHERE f.name NOT IN (SELECT name FROM people)")}

    @_locked
    def take_out(self, name: str) -> dict[str, list[tuple[object, ...]]]:
        """Removes a person and returns every row that was theirs, for `put_back` (the page's
        undo). The rows keep their ids, so a person put back has the same stable id."""
        with self._transaction():
            person_id = self._person_id(name)
            rows = {table: [tuple(r) for r in self._db.execute(
                        f"SELECT * FROM {table} WHERE {'id' if table == 'people' else 'person_id'} = ?",
                        (person_id,))]
                    for table in _PERSON_TABLES}
            self._db.execute("DELETE FROM people WHERE id = ?", (person_id,))
        self._forget()
        return rows

    @_locked
    def put_back(self, rows: dict[str, list[tuple[object, ...]]]) -> str:
        """Restores what `take_out` removed; refused when the name has been taken since."""
        (person,) = rows["people"]
        name = str(person[1])
        with self._transaction():
            if self._db.execute("SELECT 1 FROM people WHERE name = ? OR id = ?", (name, person[0])).fetchone():
                raise GalleryError(f"cannot put '{name}' back: that name is in use again")
            for table in _PERSON_TABLES:
                for row in rows[table]:
                    marks = ", ".join("?" * len(row))
                    self._db.execute(f"INSERT OR IGNORE INTO {table} VALUES ({marks})", row)
        self._forget()
        return name

    @_locked
    def remove(self, name: str) -> int:
        """Deletes a person and all their embeddings; returns how many embeddings went."""
        with self._transaction():
            person_id = self._person_id(name)
            (count,) = self._db.execute("SELECT COUNT(*) FROM embeddings WHERE person_id = ?",
                                        (person_id,)).fetchone()
            self._db.execute("DELETE FROM people WHERE id = ?", (person_id,))
        self._forget()
        return int(count)

    @_locked
    def add_person(self, name: str) -> bool:
        """A person with no faces yet (an API's "add subject"); False when the name exists."""
        name = check_person_name(name)
        with self._transaction():
            added = self._db.execute("INSERT OR IGNORE INTO people(name, created, anonymous) VALUES (?, ?, 0)",
                                     (name, time.time())).rowcount
        self._forget()
        return bool(added)

    @_locked
    def faces(self, name: str | None = None) -> list[FaceRecord]:
        """Each stored embedding as a face with its own id (oldest first), of one person or all."""
        query = ("SELECT e.id, p.name, e.model_id, e.source, e.created FROM embeddings e "
                 "JOIN people p ON p.id = e.person_id")
        rows = (self._db.execute(query + " WHERE p.name = ? ORDER BY e.id", (name,)) if name is not None
                else self._db.execute(query + " ORDER BY e.id"))
        return [FaceRecord(int(i), n, m, s, float(c)) for i, n, m, s, c in rows]

    @_locked
    def remove_face(self, face_id: int) -> FaceRecord:
        """Deletes one stored embedding by its id; the person stays, with their other faces."""
        with self._transaction():
            row = self._db.execute("SELECT e.id, p.name, e.model_id, e.source, e.created FROM embeddings e "
                                   "JOIN people p ON p.id = e.person_id WHERE e.id = ?", (face_id,)).fetchone()
            if row is None:
                raise GalleryError(f"no face with id {face_id} in the gallery")
            self._db.execute("DELETE FROM embeddings WHERE id = ?", (face_id,))
        self._forget()
        return FaceRecord(int(row[0]), row[1], row[2], row[3], float(row[4]))

    @_locked
    def rename(self, old: str, new: str) -> None:
        new = check_person_name(new)
        with self._transaction():
            person_id = self._person_id(old)
            if self._db.execute("SELECT 1 FROM people WHERE name = ?", (new,)).fetchone():
                raise GalleryError(f"cannot rename '{old}' to '{new}': '{new}' already exists "
                                   "(remove it first, or enroll more photos under that name)")
            self._db.execute("UPDATE people SET name = ?, anonymous = ? WHERE id = ?",
                             (new, int(is_anonymous_name(new)), person_id))
            self._db.execute("DELETE FROM former_names WHERE name = ?", (new,))
            self._db.execute("INSERT OR REPLACE INTO former_names VALUES (?, ?)", (old, person_id))
        self._forget()

    # -- reading -------------------------------------------------------------------------
    @_locked
    def people(self) -> list[PersonSummary]:
        rows = self._db.execute(
            "SELECT p.name, p.created, p.anonymous, "
            "(SELECT COUNT(*) FROM sightings s WHERE s.person_id = p.id), e.model_id, COUNT(e.id) "
            "FROM people p LEFT JOIN embeddings e ON e.person_id = p.id GROUP BY p.id, e.model_id ORDER BY p.name")
        summaries: dict[str, PersonSummary] = {}
        for name, created, anonymous, sightings, model_id, count in rows:
            summary = summaries.setdefault(name, PersonSummary(name, {}, created, bool(anonymous), sightings))
            if model_id is not None:
                summary.embeddings[model_id] = int(count)
        return list(summaries.values())

    @_locked
    def model_ids(self) -> dict[str, int]:
        """How many embeddings each model has in this gallery."""
        rows = self._db.execute("SELECT model_id, COUNT(*) FROM embeddings GROUP BY model_id")
        return {model_id: int(count) for model_id, count in rows}

    @_locked
    def match(self, vectors: np.ndarray, model_id: str, threshold: float,
              anonymous: bool = False) -> list[Identity]:
        """Best person for each (N, D) unit vector, by the person's most similar embedding.

        Only embeddings made by `model_id` are compared: vectors of different models live in
        different spaces. Below `threshold` (cosine) the answer is unknown (person None).
        `anonymous` chooses between enrolled people (False) and `unknown-N` ids (True).
        """
        matrix, owner, names = self._matrix(model_id, anonymous)
        vectors = np.atleast_2d(np.asarray(vectors, np.float32))
        if len(matrix) == 0:
            return [Identity(None, -1.0) for _ in vectors]
        if vectors.shape[1] != matrix.shape[1]:
            raise GalleryError(f"embeddings are {vectors.shape[1]}-d but the gallery holds "
                               f"{matrix.shape[1]}-d ones for model {model_id}")
        similarity = vectors @ matrix.T  # (N, E)
        best_per_person = np.full((len(vectors), len(names)), -2.0, np.float32)
        for person_index in range(len(names)):
            best_per_person[:, person_index] = similarity[:, owner == person_index].max(axis=1)
        # The owner's corrections: a face closer to one of X's negatives than to X is not X.
        negatives, negative_owner = self._negative_matrix(model_id)
        if len(negatives):
            closeness = vectors @ negatives.T
            for person_index, name in enumerate(names):
                mine = [i for i, owner_name in enumerate(negative_owner) if owner_name == name]
                if mine:
                    rejected = closeness[:, mine].max(axis=1) >= best_per_person[:, person_index]
                    best_per_person[rejected, person_index] = -2.0
        best = best_per_person.argmax(1)
        result = []
        for i, person_index in enumerate(best):
            score = float(best_per_person[i, person_index])
            result.append(Identity(names[person_index] if score >= threshold else None, max(score, -1.0)))
        return result

    def _negative_matrix(self, model_id: str) -> tuple[np.ndarray, list[str]]:
        self._drop_stale_cache()
        if model_id not in self._negatives:
            rows = self._db.execute(
                "SELECT p.name, n.vector FROM negatives n JOIN people p ON p.id = n.person_id "
                "WHERE n.model_id = ? ORDER BY n.id", (model_id,)).fetchall()
            matrix = np.stack([_decode(blob) for _, blob in rows]) if rows else np.empty((0, 0), np.float32)
            self._negatives[model_id] = (matrix, [name for name, _ in rows])
        return self._negatives[model_id]

    def _drop_stale_cache(self) -> None:
        """Another process (the command line, while the daemon runs) changed the gallery: the
        next match sees it at once."""
        (version,) = self._db.execute("PRAGMA data_version").fetchone()
        if version != self._data_version:
            self._data_version = version
            self._forget()

    def _forget(self) -> None:
        self._cache.clear()
        self._negatives.clear()
        self.version += 1

    def _matrix(self, model_id: str, anonymous: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
        self._drop_stale_cache()
        key = (model_id, anonymous)
        if key not in self._cache:
            rows = self._db.execute(
                "SELECT p.name, e.vector FROM embeddings e JOIN people p ON p.id = e.person_id "
                "WHERE e.model_id = ? AND p.anonymous = ? ORDER BY e.id", (model_id, int(anonymous))).fetchall()
            names = sorted({name for name, _ in rows})
            index = {name: i for i, name in enumerate(names)}
            matrix = (np.stack([_decode(blob) for _, blob in rows]) if rows
                      else np.empty((0, 0), np.float32))
            owner = np.array([index[name] for name, _ in rows], np.int64)
            self._cache[key] = (matrix, owner, names)
        return self._cache[key]

    # -- portable files ------------------------------------------------------------------
    @_locked
    def export(self, path: Path, model_id: str) -> int:
        """Writes every embedding (and the owner's negatives) of `model_id` to a portable JSON
        file; returns the count of embeddings."""
        people: dict[str, dict[str, list[dict[str, object]]]] = {}
        count = 0
        for table in ("embeddings", "negatives"):
            rows = self._db.execute(
                f"SELECT p.name, t.vector, t.source, t.created FROM {table} t "
                "JOIN people p ON p.id = t.person_id WHERE t.model_id = ? ORDER BY p.name, t.id",
                (model_id,)).fetchall()
            count += len(rows) if table == "embeddings" else 0
            for name, blob, source, created in rows:
                person = people.setdefault(name, {"embeddings": [], "negatives": []})
                person[table].append({"vector": base64.b64encode(blob).decode("ascii"), "source": source,
                                      "created": created})
        document = {"format": EXPORT_FORMAT, "version": EXPORT_VERSION, "model_id": model_id,
                    "dtype": "float32-le-base64",
                    "people": [{"name": n, **vectors} for n, vectors in sorted(people.items())]}
        durable.write_text(path, json.dumps(document, indent=1))
        return count

    @_locked
    def import_file(self, path: Path, model_id: str, dimension: int) -> int:
        """Adds the embeddings of an exported file; refuses a file made by another model. The
        whole file is checked before anything is written: one clear error, gallery unchanged."""
        try:
            document = json.loads(read_regular_file(path, MAX_IMPORT_BYTES).decode("utf-8"))
        except RecursionError:
            raise GalleryError(f"{path}: not an edged gallery export (nested too deeply)") from None
        except (OSError, ValueError) as exc:
            raise GalleryError(f"{path}: cannot read gallery export ({exc})") from exc
        if not isinstance(document, dict) or document.get("format") != EXPORT_FORMAT:
            raise GalleryError(f"{path}: not an edged gallery export (no \"format\": \"{EXPORT_FORMAT}\")")
        if document.get("model_id") != model_id:
            raise GalleryError(
                f"{path}: its embeddings were made by model {document.get('model_id')}, but this box "
                f"uses {model_id}; embeddings of different models cannot be compared. Re-enroll from "
                "photos, or pick that embedder with --embedder")
        people = parse_export(document, dimension, path)
        existing = {(table, p, bytes(v)) for table in ("embeddings", "negatives") for p, v in self._db.execute(
            f"SELECT p.name, t.vector FROM {table} t JOIN people p ON p.id = t.person_id "
            "WHERE t.model_id = ?", (model_id,))}
        added = 0
        now = time.time()
        with self._transaction():
            for name, embeddings, negatives in people:
                self._db.execute("INSERT OR IGNORE INTO people(name, created, anonymous) VALUES (?, ?, ?)",
                                 (name, now, int(is_anonymous_name(name))))
                (person_id,) = self._db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
                for table, vectors in (("embeddings", embeddings), ("negatives", negatives)):
                    for blob, source, created in vectors:
                        if (table, name, blob) in existing:
                            continue  # importing the same file twice adds nothing
                        self._db.execute(
                            f"INSERT INTO {table}(person_id, model_id, vector, source, created) "
                            "VALUES (?, ?, ?, ?, ?)", (person_id, model_id, blob, source, created or now))
                        added += table == "embeddings"
        self._forget()
        return added

    # -- helpers -------------------------------------------------------------------------
    def _person_id(self, name: str) -> int:
        row = self._db.execute("SELECT id FROM people WHERE name = ?", (name,)).fetchone()
        if row is None:  # said to MQTT and web clients too: neither the path nor who else is known
            raise GalleryError(f"no person '{name}' in the gallery (`edged gallery list` shows who is)")
        return int(row[0])

    @contextlib.contextmanager
    def locked_db(self) -> Iterator[sqlite3.Connection]:
        """The database under the gallery's lock, in one transaction, for a module that keeps
        tables of its own in the gallery file (the fleet's records); caches are dropped after."""
        with self._lock:
            with self._transaction():
                yield self._db
            self._forget()

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db, self._lock)


class _Transaction:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any error, so a write is all or nothing."""

    def __init__(self, db: sqlite3.Connection, lock: threading.RLock) -> None:
        self._db = db
        self._lock = lock

    def __enter__(self) -> None:
        self._lock.acquire()
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            self._db.execute("ROLLBACK" if exc_type else "COMMIT")
        finally:
            self._lock.release()
