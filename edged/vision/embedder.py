"""Face embeddings: crop as the model spec says, normalise, run ONNX, L2-normalise."""

from __future__ import annotations

import numpy as np

from edged.manifest import ModelSpec
from edged.runtime import ModelStore
from edged.types import Faces
from edged.vision.align import crop_faces


class Embedder:
    """`embed(image, faces) -> (N, D) float32` unit vectors, for any model the spec describes."""

    def __init__(self, store: ModelStore, name: str, max_batch: int = 16) -> None:
        self.session = store.session(name)
        self.spec: ModelSpec = self.session.spec
        self.max_batch = max_batch
        # Per-channel affine in the model's channel order, applied as x * scale + offset.
        std = np.asarray(self.spec.std, np.float32)
        self._scale = (1.0 / std).reshape(1, 3, 1, 1)
        self._offset = (-np.asarray(self.spec.mean, np.float32) / std).reshape(1, 3, 1, 1)
        self.calls = 0  # embedding batches run, for statistics

    @property
    def model_id(self) -> str:
        return self.spec.model_id

    @property
    def dim(self) -> int:
        return self.spec.output_size

    def describe(self) -> str:
        w, h = self.spec.input_size
        return (f"{self.spec.name} (id {self.model_id}, {w}x{h} {self.spec.channel_order}, "
                f"{self.spec.crop} crop, {self.dim}-d)")

    def warm_up(self) -> None:
        w, h = self.spec.input_size
        self.embed_crops(np.zeros((1, h, w, 3), np.uint8))

    def crops(self, image_bgr: np.ndarray, faces: Faces) -> np.ndarray:
        """(N, h, w, 3) uint8 BGR crops, aligned for this model."""
        return crop_faces(image_bgr, faces.xyxy, faces.landmarks, self.spec.crop,
                          self.spec.input_size, self.spec.margin)

    def embed(self, image_bgr: np.ndarray, faces: Faces) -> np.ndarray:
        return self.embed_crops(self.crops(image_bgr, faces))

    def embed_crops(self, crops_bgr: np.ndarray) -> np.ndarray:
        """(N, h, w, 3) uint8 BGR -> (N, D) float32 L2-normalised embeddings."""
        if len(crops_bgr) == 0:
            return np.empty((0, self.dim), np.float32)
        pixels = crops_bgr if self.spec.channel_order == "BGR" else crops_bgr[..., ::-1]
        out = []
        for start in range(0, len(pixels), self.max_batch):
            batch = pixels[start:start + self.max_batch].transpose(0, 3, 1, 2).astype(np.float32)
            batch *= self._scale
            batch += self._offset
            out.append(self.session.run(batch)[0].reshape(len(batch), -1))
            self.calls += 1
        vectors = np.concatenate(out).astype(np.float32)
        if vectors.shape[1] != self.dim:
            raise ValueError(f"{self.spec.name} gave {vectors.shape[1]}-d output, spec says {self.dim}")
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        return vectors / np.maximum(norms, 1e-12)
