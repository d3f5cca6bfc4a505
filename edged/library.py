"""The face library behind the web page: who is enrolled, which strangers were seen, recent
tracks with their kept faces, and the owner's actions on them, through the same functions as
the command line (edged/corrections.py and the gallery)."""

from __future__ import annotations

import hmac
import re
import secrets
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from edged import corrections
from edged.corrections import Outcome
from edged.engine import FaceEngine
from edged.errors import EdgedError
from edged.gallery import Gallery

ACTIONS = ("confirm", "reject", "name", "rename", "delete", "undo")
MAX_FIELD = 200  # characters of any one form field
UNDO_S = 600.0  # how long a deleted person can be put back from the page
UNDO_KEPT = 20  # deleted people kept for undo at most (each holds their faces in memory)


def natural_key(name: str) -> tuple[object, ...]:
    """unknown-2 before unknown-10: runs of digits compare as numbers."""
    return tuple(int(part) if part.isdigit() else part.casefold() for part in re.split(r"(\d+)", name))


def last_seen(recent: Iterable[dict[str, object]]) -> dict[str, dict[str, object]]:
    """Each person's newest alert among the recent events: which camera, and when."""
    seen: dict[str, dict[str, object]] = {}
    for item in recent:
        person = item.get("person")
        if item.get("type") == "alert" and isinstance(person, str):
            seen[person] = {"camera": item.get("camera"), "time": item.get("time")}
    return seen


def latest_faces(recent: Iterable[dict[str, object]]) -> dict[str, str]:
    """Each person's newest kept face (an alert's snapshot) among the recent events."""
    faces: dict[str, str] = {}
    for item in recent:
        person, snapshot = item.get("person"), item.get("snapshot")
        if item.get("type") == "alert" and isinstance(person, str) and isinstance(snapshot, str):
            faces[person] = snapshot
    return faces


def library_view(gallery: Gallery, model_id: str, recent: list[dict[str, object]]) -> dict[str, object]:
    """Everything the page shows, as plain data (names are data: the page sets them as text).
    Recent alerts show the name their person has now: unknown-7 named paul shows as paul."""
    now_called = gallery.current_names()
    recent = [{**item, "person": now_called.get(str(item["person"]), item["person"])}
              if isinstance(item.get("person"), str) else item for item in recent]
    faces = latest_faces(recent)
    seen = last_seen(recent)
    pictures = gallery.pictures()
    people, strangers = [], []
    for person in gallery.people():
        picture = f"library/face/{pictures[person.name]}.jpg" if person.name in pictures else None
        row = {"name": person.name, "embeddings": person.embeddings.get(model_id, 0),
               "sightings": person.sightings, "face": picture or faces.get(person.name),
               "last_seen": seen.get(person.name)}
        if person.anonymous:
            strangers.append(row)
        else:
            people.append({**row, "negatives": gallery.negatives(person.name)})
    strangers.sort(key=lambda row: natural_key(str(row["name"])))
    people.sort(key=lambda row: natural_key(str(row["name"])))
    tracks = [{"event": item.get("id"), "person": item.get("person"), "reason": item.get("reason"),
               "time": item.get("time"), "face": item.get("snapshot"), "frame": item.get("frame"),
               "clip": item.get("clip"), "camera": item.get("camera")}
              for item in reversed(recent) if item.get("type") == "alert" and item.get("snapshot")]
    return {"model_id": model_id, "people": people, "strangers": strangers, "tracks": tracks[:20]}


@dataclass
class Library:
    """The page's data and actions for one daemon; `csrf` must come back with every action."""

    gallery: Gallery
    engine: FaceEngine
    media_dir: Path
    recent: Callable[[], list[dict[str, object]]]
    csrf: str = ""
    # Deleted people, newest last: name -> (when, their rows), for the page's undo.
    deleted: dict[str, tuple[float, dict[str, list[tuple[object, ...]]]]] = field(default_factory=dict)
    clock: Callable[[], float] = time.monotonic

    def __post_init__(self) -> None:
        self.csrf = self.csrf or secrets.token_urlsafe(24)

    def view(self) -> dict[str, object]:
        model_id = self.engine.embedder_spec.model_id if self.engine.has_embedder else "no embedder installed"
        view = library_view(self.gallery, model_id, self.recent())
        return {**view, "csrf": self.csrf}

    def picture(self, person_id: int) -> bytes | None:
        return self.gallery.picture(person_id)

    def check_token(self, token: str) -> None:
        if not hmac.compare_digest(token.encode(), self.csrf.encode()):
            raise PermissionError("the page's form token is missing or wrong: reload the page")

    def enroll_photo(self, name: str, image_bgr: np.ndarray, token: str) -> Outcome:
        """A photo uploaded on the page: its face enrolled under `name`, as `edged enroll` does."""
        self.check_token(token)
        if not name or len(name) > MAX_FIELD:
            raise EdgedError("the photo needs a person's name")
        face = self.engine.enroll_face(image_bgr, "the photo")
        model_id = self.engine.embedder_loaded().model_id
        self.gallery.enroll(name, face.vector[None], model_id, "photo uploaded on the page")
        self.gallery.set_picture(name, face.picture, face.quality)
        note = f" ({face.note})" if face.note else ""
        return Outcome(True, f"enrolled a photo as {name}{note}")

    def act(self, form: dict[str, str]) -> Outcome:
        """One action from the page; every field is checked before anything changes."""
        self.check_token(form.get("csrf", ""))
        if any(len(v) > MAX_FIELD for v in form.values()):
            raise EdgedError(f"a form field is longer than {MAX_FIELD} characters")
        action, person = form.get("action", ""), form.get("person", "")
        if action not in ACTIONS:
            raise EdgedError(f"unknown action '{action}'; expected one of {list(ACTIONS)}")
        if not person:
            raise EdgedError("the action needs a person's name")
        if action in ("confirm", "reject"):
            return corrections.apply(self.gallery, self.engine, self.media_dir, action, person,
                                     event=form.get("event") or None)
        if action == "name":
            return corrections.name_stranger(self.gallery, form.get("stranger", ""), person)
        if action == "rename":
            self.gallery.rename(person, form.get("new_name", ""))
            return Outcome(True, f"renamed {person} to {form.get('new_name')}")
        if action == "undo":
            return self._undo(person)
        rows = self.gallery.take_out(person)
        self._keep_for_undo(person, rows)
        return Outcome(True, f"removed {person} ({len(rows['embeddings'])} face(s)); undo is offered for "
                       f"{UNDO_S / 60:.0f} minutes")

    def _keep_for_undo(self, name: str, rows: dict[str, list[tuple[object, ...]]]) -> None:
        now = self.clock()
        self.deleted = {k: v for k, v in self.deleted.items() if now - v[0] < UNDO_S and k != name}
        self.deleted[name] = (now, rows)
        while len(self.deleted) > UNDO_KEPT:
            self.deleted.pop(next(iter(self.deleted)))

    def _undo(self, name: str) -> Outcome:
        kept = self.deleted.get(name)
        if kept is None or self.clock() - kept[0] >= UNDO_S:
            raise EdgedError(f"nothing to undo for '{name}' (a delete can be undone for {UNDO_S / 60:.0f} "
                             "minutes, until the daemon restarts)")
        self.gallery.put_back(kept[1])
        del self.deleted[name]
        return Outcome(True, f"put {name} back")
