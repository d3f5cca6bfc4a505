"""The face engine: detector + embedder + gallery behind a few verbs the commands share."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edged.errors import EdgedError, ModelError
from edged.gallery import Gallery
from edged.manifest import ModelSpec, choose_embedder
from edged.runtime import ModelStore, RuntimeOptions
from edged.tracking.quality import QualitySettings, assess, failures
from edged.types import Faces, Identity
from edged.vision.detector import Detector, DetectorSettings
from edged.vision.embedder import Embedder
from edged.vision.pictures import card_jpeg, face_thumbnail

# A face this confident is taken for enrollment; MTCNN's doubtful extras sit at 0.80-0.85.
ENROLL_MIN_SCORE = 0.95


@dataclass(frozen=True)
class EngineOptions:
    models_dir: Path | None = None
    embedder: str | None = None  # manifest name; None = the preferred installed one
    detector: DetectorSettings = DetectorSettings()
    threads: int = 0
    providers: tuple[str, ...] = ("auto",)
    # Naming: an explicit cosine threshold, else the spec's point for this false-accept rate.
    match_threshold: float = 0.0
    false_accepts: str = "1%"


@dataclass(frozen=True)
class FaceResult:
    """One face of one image: where it is and who it is."""

    xyxy: np.ndarray  # (4,) float32 pixels
    score: float
    landmarks: np.ndarray  # (5, 2) float32 pixels
    identity: Identity | None = None

    def to_json(self) -> dict[str, object]:
        out: dict[str, object] = {
            "box": [round(float(v), 2) for v in self.xyxy],
            "score": round(self.score, 5),
            "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in self.landmarks],
        }
        if self.identity is not None:
            out["person"] = self.identity.person
            out["similarity"] = round(self.identity.similarity, 4)
        return out


@dataclass(frozen=True)
class EnrolledFace:
    vector: np.ndarray  # (D,)
    note: str  # which face of several was taken
    picture: bytes  # JPEG of the face, for the person's card
    quality: float


@dataclass(frozen=True)
class EnrollChoice:
    """Which face of a photo to enroll, and a note when the photo had several."""

    index: int
    note: str


def choose_enroll_face(faces: Faces, where: str) -> EnrollChoice:
    """The largest confident face; an error naming the photo when there is none."""
    if len(faces) == 0:
        raise EdgedError(f"{where}: no face found")
    confident = np.flatnonzero(faces.score >= ENROLL_MIN_SCORE)
    if len(confident) == 0:
        raise EdgedError(f"{where}: no confident face (best detector score {faces.score.max():.2f} "
                         f"< {ENROLL_MIN_SCORE})")
    index = int(confident[np.argmax(faces.area[confident])])
    note = ""
    if len(faces) > 1:
        x1, y1, x2, y2 = faces.xyxy[index]
        note = (f"{where}: {len(faces)} faces found, enrolled the largest confident one "
                f"({x2 - x1:.0f}x{y2 - y1:.0f} px at {x1:.0f},{y1:.0f})")
    return EnrollChoice(index, note)


class FaceEngine:
    """Loads the models once; `detect`, `identify` and `embed_for_enroll` reuse them."""

    def __init__(self, options: EngineOptions | None = None, need_embedder: bool = True) -> None:
        options = options or EngineOptions()
        self.store = ModelStore(options.models_dir, RuntimeOptions(intra_threads=options.threads,
                                                                   providers=options.providers))
        self.detector = Detector(self.store, options.detector, options.threads)
        self._spec: ModelSpec | None = None
        self._missing: ModelError | None = None
        try:
            self._spec = choose_embedder(self.store.specs, self.store.models_dir, options.embedder)
        except ModelError as exc:
            if need_embedder:
                raise
            self._missing = exc  # detection alone needs only the bundled MTCNN
        self.embedder = Embedder(self.store, self.embedder_spec.name) if need_embedder else None
        self.options = options

    @property
    def match_threshold(self) -> float:
        """Cosine similarity at or above which a face is named: explicit, or the spec's
        measured point for the configured false-accept rate."""
        return self.options.match_threshold or self.embedder_spec.threshold_for(self.options.false_accepts)

    def describe_threshold(self) -> str:
        spec = self.embedder_spec
        if self.options.match_threshold:
            return f"match threshold {self.options.match_threshold:.3f} (set in the configuration)"
        if spec.threshold_1pct:
            return (f"match threshold {self.match_threshold:.3f}: {self.options.false_accepts} of strangers "
                    f"named as someone in calibration ({spec.calibration})")
        return (f"match threshold {self.match_threshold:.3f}: {spec.name} was never calibrated "
                "(tools/calibrate.py), so its false-accept rate is not known")

    @property
    def has_embedder(self) -> bool:
        """False on a box with no embedder installed: faces are found and tracked, not named."""
        return self._spec is not None

    @property
    def embedder_spec(self) -> ModelSpec:
        if self._spec is None:
            assert self._missing is not None
            raise self._missing
        return self._spec

    def describe_embedder(self) -> str:
        if self._spec is None:
            return "no embedder installed: detection only"
        spec = self._spec
        return f"embedder in use: {spec.name} (id {spec.model_id}, {spec.output_size}-d, {spec.crop} crop)"

    def detect(self, image_bgr: np.ndarray) -> list[FaceResult]:
        faces = self.detector.detect(image_bgr)
        return [FaceResult(faces.xyxy[i], float(faces.score[i]), faces.landmarks[i]) for i in range(len(faces))]

    def embedder_loaded(self) -> Embedder:
        if self.embedder is None:
            self.embedder = Embedder(self.store, self.embedder_spec.name)
        return self.embedder

    def identify(self, image_bgr: np.ndarray, gallery: Gallery) -> list[FaceResult]:
        faces = self.detector.detect(image_bgr)
        embedder = self.embedder_loaded()
        vectors = embedder.embed(image_bgr, faces)
        identities = gallery.match(vectors, embedder.model_id, self.match_threshold)
        return [FaceResult(faces.xyxy[i], float(faces.score[i]), faces.landmarks[i], identities[i])
                for i in range(len(faces))]

    def find_face(self, image_bgr: np.ndarray, where: str) -> tuple[np.ndarray, Faces, str]:
        """The photo (with a border added when the face fills it: a face crop, an event's
        snapshot) and its largest confident face, with a note about the choice."""
        try:
            faces = self.detector.detect(image_bgr)
            choice = choose_enroll_face(faces, where)
        except EdgedError:
            pad = image_bgr.shape[0] // 3  # MTCNN needs some context around a face
            framed = cv2.copyMakeBorder(image_bgr, pad, pad, pad, pad, cv2.BORDER_CONSTANT)
            faces = self.detector.detect(framed)
            if not len(faces) or faces.score.max() < ENROLL_MIN_SCORE:
                raise
            image_bgr, choice = framed, choose_enroll_face(faces, where)
        return image_bgr, faces[[choice.index]], choice.note

    def enroll_face(self, image_bgr: np.ndarray, where: str, check_quality: bool = True) -> EnrolledFace:
        """The face to enroll from a photo: embedding, a note about the choice, a picture.
        `check_quality`: refuse a face the enrollment filters would not take."""
        image_bgr, chosen, note = self.find_face(image_bgr, where)
        settings = QualitySettings()
        quality = assess(image_bgr, chosen, settings)
        if check_quality and not quality.passed[0]:
            raise EdgedError(f"{where}: the face is not good enough to enroll: "
                             + ", ".join(failures(quality, 0, settings)))
        vector = self.embedder_loaded().embed(image_bgr, chosen)[0]
        picture = card_jpeg(face_thumbnail(image_bgr, chosen.xyxy[0]))
        return EnrolledFace(vector, note, picture, float(quality.score[0]))

    def embed_for_enroll(self, image_bgr: np.ndarray, where: str, check_quality: bool = True) -> tuple[np.ndarray, str]:
        """(D,) embedding of the face to enroll from a photo, and a note about the choice."""
        face = self.enroll_face(image_bgr, where, check_quality)
        return face.vector, face.note
