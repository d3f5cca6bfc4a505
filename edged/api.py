"""edged's Python API: faces in photos (detect, identify, enroll), the gallery with the owner's
corrections, and scans of video files. The HTTP API acts through it; programs import it as
`edged` (see docs/python.md). Names here are the stable surface: inner modules may change."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import numpy as np

from edged import corrections
from edged.engine import EngineOptions, FaceEngine, FaceResult
from edged.errors import EdgedError, GalleryError, ImageError
from edged.events import TrackEvent
from edged.gallery import FaceRecord, Gallery, is_anonymous_name
from edged.io.images import decode_image, load_image, to_bgr8
from edged.io.s3 import fetched
from edged.io.source import FrameSource, SourceSettings, kind_of
from edged.names import check_person_name
from edged.paths import default_gallery
from edged.scan import ScanResult, VideoReader, detect_every, scan_video
from edged.tracking.faces import FaceTracking, FrameResult

# A photo: a file's path, an image file's bytes (JPEG, PNG, ...), or a BGR uint8 array.
Image = Union[str, Path, bytes, np.ndarray]  # noqa: UP007  # a runtime alias: | needs 3.10 objects


@dataclass(frozen=True)
class Face:
    """One face in a photo: where it is and, when identified, who it is."""

    box: tuple[float, float, float, float]  # x1, y1, x2, y2 in pixels
    score: float  # the detector's confidence, 0..1
    landmarks: tuple[tuple[float, float], ...]  # eyes, nose, mouth corners (x, y)
    person: str | None = None  # an enrolled person's name, None when nobody matches
    similarity: float | None = None  # cosine similarity to the closest enrolled face; None when not identified

    def to_json(self) -> dict[str, object]:
        return {"box": [round(v, 2) for v in self.box], "score": round(self.score, 5),
                "landmarks": [[round(x, 2), round(y, 2)] for x, y in self.landmarks],
                "person": self.person,
                "similarity": None if self.similarity is None else round(self.similarity, 4)}


@dataclass(frozen=True)
class Enrolled:
    """A photo's face added to a person."""

    person: str
    face_id: int  # the stored face's id (delete_face removes it)
    note: str  # which face was taken when the photo had several ("" when one)


@dataclass(frozen=True)
class Person:
    """Someone the gallery holds: an enrolled person or a stranger (unknown-N)."""

    name: str
    stranger: bool
    faces: int  # stored embeddings of the model in use
    negatives: int  # faces the owner said were not them
    sightings: int
    created: float  # Unix time

    def to_json(self) -> dict[str, object]:
        return {"name": self.name, "stranger": self.stranger, "faces": self.faces, "negatives": self.negatives,
                "sightings": self.sightings, "created": round(self.created, 3)}


@dataclass(frozen=True)
class TrackedFace:
    """A face on one frame of a tracked video: its track, and who the track is so far."""

    box: tuple[float, float, float, float]
    score: float
    track_id: int
    person: str | None  # an enrolled name, None while unknown or not yet identified
    similarity: float
    identified: bool  # False: no answer yet (not embedded, or the votes have no clear leader)

    def to_json(self) -> dict[str, object]:
        return {"box": [round(v, 2) for v in self.box], "score": round(self.score, 5), "track_id": self.track_id,
                "person": self.person, "similarity": round(self.similarity, 4), "identified": self.identified}


@dataclass(frozen=True)
class TrackedFrame:
    """One frame detection ran on (`index` -1: the end of the video, with the last events)."""

    index: int
    time: float  # seconds from the start
    faces: list[TrackedFace]
    events: list[TrackEvent]  # what happened to tracks at this frame


def _live(settings: SourceSettings, detect_fps: float) -> Iterator[tuple[int, np.ndarray, float]]:
    """A camera's newest frame `detect_fps` times a second, timed from the first (the
    daemon's reader: reconnects with back-off); stops the reader when the caller stops."""
    feed = FrameSource(settings)
    feed.start()
    interval, due, start = 1.0 / detect_fps, 0.0, None
    try:
        while True:
            frame = feed.next_frame(timeout=1.0)
            if frame is None:
                if feed.stats.ended:
                    return
                continue
            start = frame.ts if start is None else start
            if frame.ts - start < due:
                continue
            due = max(due + interval, frame.ts - start)
            yield frame.index, frame.image, frame.ts - start
    finally:
        feed.stop()


def _tracked(result: FrameResult) -> TrackedFrame:
    faces = result.faces
    return TrackedFrame(result.index, result.ts, [
        TrackedFace((float(faces.xyxy[i][0]), float(faces.xyxy[i][1]), float(faces.xyxy[i][2]),
                     float(faces.xyxy[i][3])), float(faces.score[i]), int(faces.track_id[i]),
                    identity.person, float(identity.similarity), identity.identified)
        for i, identity in enumerate(result.identities)], list(result.events))


def _face(result: FaceResult, identified: bool) -> Face:
    box = tuple(float(v) for v in result.xyxy)
    landmarks = tuple((float(x), float(y)) for x, y in result.landmarks)
    identity = result.identity
    return Face((box[0], box[1], box[2], box[3]), result.score, landmarks,
                identity.person if identity else None,
                float(identity.similarity) if identified and identity else None)


def read_image(image: Image, where: str = "the photo") -> np.ndarray:
    """(H, W, 3) uint8 BGR from a path, an image file's bytes or an array, by the image rules
    the command line uses (size and pixel limits, truncated files refused)."""
    if isinstance(image, np.ndarray):
        return to_bgr8(image, where)
    if isinstance(image, (bytes, bytearray, memoryview)):
        return decode_image(bytes(image), where)
    if isinstance(image, (str, Path)):
        return load_image(Path(image))
    raise ImageError(f"{where}: expected a path, an image file's bytes or an array, not {type(image).__name__}")


class Faces:
    """Faces in photos, named from one gallery. Open with a gallery path (None: the daemon's
    default state folder) or an open Gallery and FaceEngine (the daemon shares its own).

        with edged.Faces("gallery.db") as faces:
            faces.enroll("alice", "alice.jpg")
            for face in faces.identify("door.jpg"):
                print(face.person, face.similarity, face.box)
    """

    def __init__(self, gallery: str | Path | Gallery | None = None, engine: FaceEngine | None = None, *,
                 models_dir: str | Path | None = None, embedder: str | None = None,
                 false_accepts: str = "1%", media_dir: str | Path | None = None) -> None:
        # The gallery file is opened on first use (detection alone never creates one).
        self._gallery = gallery if isinstance(gallery, Gallery) else None
        self._gallery_path = gallery.path if isinstance(gallery, Gallery) else (
            Path(gallery) if gallery is not None else default_gallery())
        self._own_gallery = not isinstance(gallery, Gallery)
        self._engine = engine
        self._options = EngineOptions(models_dir=Path(models_dir) if models_dir else None, embedder=embedder,
                                      false_accepts=false_accepts)
        # Where the daemon keeps alert faces: corrections by event id find them there.
        self.media_dir = Path(media_dir) if media_dir else self._gallery_path.parent / "media"

    @property
    def gallery(self) -> Gallery:
        if self._gallery is None:
            self._gallery = Gallery(self._gallery_path)
        return self._gallery

    def close(self) -> None:
        if self._own_gallery and self._gallery is not None:
            self._gallery.close()
            self._gallery = None

    def __enter__(self) -> Faces:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def engine(self) -> FaceEngine:
        """The models, loaded on first use (renaming or deleting needs none)."""
        if self._engine is None:
            self._engine = FaceEngine(self._options)
        return self._engine

    @engine.setter
    def engine(self, engine: FaceEngine) -> None:
        self._engine = engine

    @property
    def model_id(self) -> str:
        return self.engine.embedder_loaded().model_id

    @property
    def threshold(self) -> float:
        """The cosine similarity at or above which a face is named."""
        return self.engine.match_threshold

    # -- photos --------------------------------------------------------------------------
    def detect(self, image: Image) -> list[Face]:
        """Every face in the photo, without names."""
        return [_face(result, False) for result in self.engine.detect(read_image(image))]

    def identify(self, image: Image) -> list[Face]:
        """Every face in the photo with the enrolled person it is, or None (strangers are not
        named here: an unknown-N is the daemon's id for someone it tracked)."""
        return [_face(result, True) for result in self.engine.identify(read_image(image), self.gallery)]

    def enroll(self, name: str, image: Image, source: str = "") -> Enrolled:
        """Adds the photo's largest confident face to `name` (created when new), after the
        same quality checks as `edged enroll`; EdgedError says why a photo is refused.
        `source`: where the photo came from, kept with the face (default: its path, or "a photo")."""
        if isinstance(name, str) and is_anonymous_name(name.strip()):
            raise GalleryError(f"'{name}' is a stranger's id; choose a real name")
        name = check_person_name(name)
        where = str(image) if isinstance(image, (str, Path)) else "the photo"
        face = self.engine.enroll_face(read_image(image), where)
        face_id = self.gallery.add_face(name, face.vector, self.model_id, source or (
            where if isinstance(image, (str, Path)) else "a photo"))
        self.gallery.set_picture(name, face.picture, face.quality)
        return Enrolled(name, face_id, face.note)

    # -- the gallery ---------------------------------------------------------------------
    def people(self) -> list[Person]:
        """Enrolled people, by name."""
        return [p for p in self._everyone() if not p.stranger]

    def strangers(self) -> list[Person]:
        """The strangers the daemon gave an id (unknown-N), by name."""
        return [p for p in self._everyone() if p.stranger]

    def person(self, name: str) -> Person:
        """One person or stranger; GalleryError when there is none by that name."""
        for person in self._everyone(name):
            return person
        raise GalleryError(f"no person named '{name}' in the gallery")

    def add_person(self, name: str) -> bool:
        """A person with no faces yet; False when the name is taken."""
        if isinstance(name, str) and is_anonymous_name(name.strip()):
            raise GalleryError(f"'{name}' looks like a stranger's id; choose a real name")
        return self.gallery.add_person(name)

    def rename(self, name: str, new_name: str) -> None:
        """A new name for a person; refused when the new name is taken."""
        self.gallery.rename(name, new_name)

    def name_stranger(self, stranger: str, name: str) -> None:
        """"unknown-N is X": the stranger's faces and sightings move to X (merged when X exists)."""
        if not is_anonymous_name(stranger):
            raise GalleryError(f"'{stranger}' is not a stranger's id (unknown-N)")
        self.gallery.name_anonymous(stranger, name)

    def delete(self, name: str) -> int:
        """Removes a person or a stranger with all their faces; returns how many faces went."""
        return self.gallery.remove(name)

    def faces(self, name: str | None = None) -> list[FaceRecord]:
        """The stored faces (embeddings of every model) of one person, or of everyone."""
        if name is not None:
            self.person(name)
        return self.gallery.faces(name)

    def delete_face(self, face_id: int) -> FaceRecord:
        """Removes one stored face by its id."""
        return self.gallery.remove_face(face_id)

    def reject(self, name: str, image: Image | None = None, event: str | None = None) -> str:
        """"Not X": a face (a photo's, or an alert's by event id) that must not be named `name`."""
        face = self._correction_face(image, event)
        return corrections.reject(self.gallery, name, face, self.model_id).message

    def confirm(self, name: str, image: Image | None = None, event: str | None = None) -> str:
        """"This is X": a face (a photo's, or an alert's by event id) added to `name`."""
        outcome = corrections.confirm(self.gallery, self.engine, name, self._correction_face(image, event))
        if not outcome.ok:
            raise EdgedError(outcome.message)
        return outcome.message

    # -- video ---------------------------------------------------------------------------
    def scan(self, video: str | Path, detect_fps: float = 5.0, enroll: bool = False,
             progress: Callable[[int, int], None] | None = None) -> ScanResult:
        """Who is in a video file or an s3://bucket/key clip, and when: people (named, or
        unknown-N) with their intervals. `enroll`: remember the strangers found, as
        `edged scan --enroll` does."""
        with fetched(str(video)) as path:
            if not path.is_file():
                raise EdgedError(f"{path}: no such video file")
            return scan_video(path, self.engine, self.gallery, detect_every(path, detect_fps), enroll=enroll,
                              progress=progress, source=str(video))

    def track(self, source: str | Path | Iterable[np.ndarray], detect_fps: float = 5.0,
              fps: float = 25.0, rtsp_transport: str = "tcp") -> Iterator[TrackedFrame]:
        """Faces tracked through a video, as the daemon tracks a camera: one TrackedFrame per
        frame detection ran on, with track ids, each track's identity so far, and the track
        events of that moment (started, confirmed, identity_changed, ended). `source`: a video
        file, a camera (rtsp:// URL, /dev/videoN: read until the program stops iterating, and
        reconnected as the daemon does), or any iterable of BGR frames taken at `fps`.

            for frame in faces.track("door.mp4"):
                for face in frame.faces:
                    print(frame.time, face.track_id, face.person)
        """
        tracking = FaceTracking(self.engine, self.gallery)
        timed: Iterable[tuple[int, np.ndarray, float]]
        if isinstance(source, str) and kind_of(source) != "file":
            timed = _live(SourceSettings(source, camera="python", rtsp_transport=rtsp_transport), detect_fps)
        elif isinstance(source, (str, Path)):
            path = Path(source)
            if not path.is_file():
                raise EdgedError(f"{path}: no such video file")
            reader = VideoReader(path, detect_every(path, detect_fps))
            timed = ((i, image, i / reader.fps) for i, image in reader)
        else:
            every = max(1, round(fps / detect_fps))
            timed = ((i, f, i / fps) for i, f in enumerate(source) if i % every == 0)
        last = 0.0
        for index, image, last in timed:
            result = tracking.process(read_image(image, f"frame {index}"), last, index)
            yield _tracked(result)
        tracking.finish()
        ended = tracking.take_events()
        if ended:
            yield TrackedFrame(-1, last, [], ended)

    def _correction_face(self, image: Image | None, event: str | None) -> corrections.Face:
        if (image is None) == (event is None):
            raise EdgedError("a correction needs one face: a photo, or an alert's event id")
        if event is not None:
            return corrections.face_from_event(self.engine, self.media_dir, event)
        picture = read_image(image)  # type: ignore[arg-type]  # not None: checked above
        vector, _ = self.engine.embed_for_enroll(picture, "the photo", check_quality=False)
        return corrections.Face(vector, "a photo", picture)

    def _everyone(self, name: str | None = None) -> Iterable[Person]:
        model_id = self.model_id
        for summary in self.gallery.people():
            if name is not None and summary.name != name:
                continue
            negatives = 0 if summary.anonymous else self.gallery.negatives(summary.name)
            yield Person(summary.name, summary.anonymous, summary.embeddings.get(model_id, 0), negatives,
                         summary.sightings, summary.created)

