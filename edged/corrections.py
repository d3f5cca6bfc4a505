"""The owner's corrections ("not X", "this is X") and what the box's own strangers say about
its threshold. The command line, MQTT and the web page all act through these functions."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edged.engine import FaceEngine
from edged.errors import EdgedError, GalleryError
from edged.gallery import Gallery, is_anonymous_name
from edged.io.images import load_image

# Event ids are "<start time>-<camera>-<track>": digits, a dot, camera letters, dashes.
EVENT_ID = re.compile(r"^[0-9]+\.[0-9]{3}-[A-Za-z0-9_-]+-[0-9]+$")


@dataclass(frozen=True)
class Face:
    """One face to correct with: where it came from and its embedding."""

    vector: np.ndarray
    source: str
    image: np.ndarray  # BGR, for enrolling it after a quality check


@dataclass(frozen=True)
class Outcome:
    ok: bool
    message: str

    def to_json(self) -> dict[str, object]:
        return {"ok": self.ok, "message": self.message}


def face_from_photo(engine: FaceEngine, path: Path) -> Face:
    image = load_image(path)
    vector, _ = engine.embed_for_enroll(image, str(path), check_quality=False)
    return Face(vector, str(path), image)


def event_face_path(media_dir: Path, event_id: str) -> Path:
    """The best face the daemon kept for an event (its alert snapshot); the id is checked
    against the event id pattern first, so a crafted one cannot reach outside the folder."""
    if not EVENT_ID.match(event_id):
        raise EdgedError(f"'{event_id}' is not an event id (like 1763800000.123-door-4)")
    path = media_dir / f"{event_id}-face.jpg"
    if not path.is_file():
        raise EdgedError(f"no face kept for event {event_id} in {media_dir} (faces are kept for alerts)")
    return path


def face_from_event(engine: FaceEngine, media_dir: Path, event_id: str) -> Face:
    face = face_from_photo(engine, event_face_path(media_dir, event_id))
    return Face(face.vector, f"event {event_id}", face.image)


def reject(gallery: Gallery, person: str, face: Face, model_id: str) -> Outcome:
    """"Not X": the face is stored as one of X's negatives; from now on a face closer to it
    than to X's own embeddings is not named X."""
    count = gallery.reject(person, face.vector, model_id, face.source)
    return Outcome(True, f"{face.source} is not {person} (now {count} face(s) marked as not {person})")


def confirm(gallery: Gallery, engine: FaceEngine, person: str, face: Face) -> Outcome:
    """"This is X": the face is added to X when it passes the enrollment filters."""
    try:
        enrolled = engine.enroll_face(face.image, face.source)
    except EdgedError as exc:
        return Outcome(False, f"{exc}; {person} left as they were")
    gallery.enroll(person, enrolled.vector[None], engine.embedder_loaded().model_id, face.source)
    gallery.set_picture(person, enrolled.picture, enrolled.quality)
    return Outcome(True, f"{face.source} added to {person}")


def name_stranger(gallery: Gallery, stranger: str, person: str) -> Outcome:
    """"unknown-N is X": the stranger's faces and sightings move to X (merged if X exists)."""
    if not is_anonymous_name(stranger):
        raise GalleryError(f"'{stranger}' is not an anonymous id (unknown-N)")
    moved = gallery.name_anonymous(stranger, person)
    return Outcome(True, f"{stranger} is {person}: {moved} face(s) and their sightings moved")


def apply(gallery: Gallery, engine: FaceEngine, media_dir: Path, action: str, person: str, *,
          event: str | None = None, photo: Path | None = None, stranger: str | None = None) -> Outcome:
    """One correction, as every way in (command line, MQTT, web page) asks for it: "reject"
    (not `person`) or "confirm" (is `person`) a face from an event or a photo, or confirm
    that a stranger is `person`."""
    if stranger is not None:
        if action != "confirm":
            raise EdgedError("a stranger can only be confirmed as someone")
        return name_stranger(gallery, stranger, person)
    if photo is not None:
        face = face_from_photo(engine, photo)
    elif event is not None:
        face = face_from_event(engine, media_dir, event)
    else:
        raise EdgedError("a correction needs a face: an event, a photo or a stranger")
    if action == "reject":
        return reject(gallery, person, face, engine.embedder_loaded().model_id)
    if action == "confirm":
        return confirm(gallery, engine, person, face)
    raise EdgedError(f"unknown correction '{action}' (reject or confirm)")


@dataclass(frozen=True)
class InSituEstimate:
    """The box's own strangers as impostors: how many of their faces the threshold would name."""

    threshold: float
    strangers: int  # unknown-N ids
    faces: int  # their embeddings
    false_accepts: int  # of those faces, matched to an enrolled person at the threshold

    @property
    def rate(self) -> float | None:
        return self.false_accepts / self.faces if self.faces else None

    def to_json(self) -> dict[str, object]:
        return {"threshold": round(self.threshold, 4), "strangers": self.strangers, "faces": self.faces,
                "false_accepts": self.false_accepts,
                "rate": None if self.rate is None else round(self.rate, 4)}


def in_situ_false_accepts(gallery: Gallery, model_id: str, threshold: float) -> InSituEstimate:
    """Every face of every `unknown-N` against the enrolled people. A lower bound: a stranger
    who was named as someone never became an unknown-N."""
    strangers = gallery.anonymous_vectors(model_id)
    faces = [v for vectors in strangers.values() for v in vectors]
    if not faces:
        return InSituEstimate(threshold, len(strangers), 0, 0)
    matches = gallery.match(np.stack(faces), model_id, threshold)
    return InSituEstimate(threshold, len(strangers), len(faces), sum(m.person is not None for m in matches))
