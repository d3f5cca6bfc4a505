"""The face library behind the web page: who is enrolled, which strangers were seen, recent
tracks with their kept faces, and the owner's actions on them, through the same functions as
the command line (edged/corrections.py and the gallery)."""

from __future__ import annotations

import hmac
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from edged import corrections
from edged.corrections import Outcome
from edged.engine import FaceEngine
from edged.errors import EdgedError
from edged.gallery import Gallery

ACTIONS = ("confirm", "reject", "name", "rename", "delete")
MAX_FIELD = 200  # characters of any one form field


def latest_faces(recent: Iterable[dict[str, object]]) -> dict[str, str]:
    """Each person's newest kept face (an alert's snapshot) among the recent events."""
    faces: dict[str, str] = {}
    for item in recent:
        person, snapshot = item.get("person"), item.get("snapshot")
        if item.get("type") == "alert" and isinstance(person, str) and isinstance(snapshot, str):
            faces[person] = snapshot
    return faces


def library_view(gallery: Gallery, model_id: str, recent: list[dict[str, object]]) -> dict[str, object]:
    """Everything the page shows, as plain data (names are data: the page sets them as text)."""
    faces = latest_faces(recent)
    pictures = gallery.pictures()
    people, strangers = [], []
    for person in gallery.people():
        picture = f"library/face/{pictures[person.name]}.jpg" if person.name in pictures else None
        row = {"name": person.name, "embeddings": person.embeddings.get(model_id, 0),
               "sightings": person.sightings, "face": picture or faces.get(person.name)}
        if person.anonymous:
            strangers.append(row)
        else:
            people.append({**row, "negatives": gallery.negatives(person.name)})
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

    def __post_init__(self) -> None:
        self.csrf = self.csrf or secrets.token_urlsafe(24)

    def view(self) -> dict[str, object]:
        view = library_view(self.gallery, self.engine.embedder_loaded().model_id, self.recent())
        return {**view, "csrf": self.csrf}

    def picture(self, person_id: int) -> bytes | None:
        return self.gallery.picture(person_id)

    def act(self, form: dict[str, str]) -> Outcome:
        """One action from the page; every field is checked before anything changes."""
        if not hmac.compare_digest(form.get("csrf", "").encode(), self.csrf.encode()):
            raise PermissionError("the page's form token is missing or wrong: reload the page")
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
        removed = self.gallery.remove(person)
        return Outcome(True, f"removed {person} ({removed} face(s))")
