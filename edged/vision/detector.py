"""MTCNN face detector on ONNX Runtime: image pyramid, P/R/O-Net, box regression, NMS."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import NamedTuple

import cv2
import numpy as np

from edged.runtime import ModelStore, Session
from edged.types import Faces
from edged.vision.boxes import crop_windows, nms, regress, square
from edged.vision.lanes import Lanes, lanes_for
from edged.vision.resample import crops_area, integral, resize_area

# P-Net looks at 12x12 windows with a stride of 2 pixels.
PNET_CELL = 12
PNET_STRIDE = 2
# R-Net and O-Net batches below this many crops per lane run on one lane.
CROPS_PER_LANE = 16
# Pictures whose largest pyramid level has fewer pixels than this run on ONNX Runtime's own
# threads instead of lanes: their pieces are too small to pay for the hand-overs (measured
# with tools/bench_engine.py: at 640x360, lanes 16.7 frames/s, ONNX Runtime's threads 19.7;
# at 1080p, lanes 4.5, ONNX Runtime's threads 4.0, with 13% less CPU).
LANES_MIN_PIXELS = 100_000


@dataclass(frozen=True)
class DetectorSettings:
    """MTCNN knobs. Defaults are facenet-pytorch's; `edge()` gives the daemon's defaults.

    min_face_size: smallest face searched for, in source-frame pixels.
    max_side: when > 0, frames whose longer side exceeds it are downscaled before
        detection and the boxes are mapped back (an edge box rarely needs 1080p to find faces).
    """

    min_face_size: float = 20.0
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709
    max_side: int = 0

    @classmethod
    def edge(cls) -> DetectorSettings:
        """Detection on a frame at most 960 px wide, faces from 40 source pixels, P-Net at 0.7.

        P-Net at 0.7 instead of facenet-pytorch's 0.6 sends R-Net 28% fewer candidates: 11-17%
        less CPU a crowd frame, for 1 of the crowd video's 495 reference faces of 40 px and
        more, and 3 doubtful faces (O-Net scores 0.71-0.81) of 529 (tools/pnet_threshold.py)."""
        return cls(min_face_size=40.0, max_side=960, thresholds=(0.7, 0.7, 0.7))

    def __post_init__(self) -> None:
        if self.min_face_size < 12:
            raise ValueError(f"min_face_size {self.min_face_size} is below 12, MTCNN's smallest window")
        if not 0.1 < self.factor < 1.0:
            raise ValueError(f"pyramid factor {self.factor} must be between 0.1 and 1")
        if any(not 0.0 <= t <= 1.0 for t in self.thresholds) or len(self.thresholds) != 3:
            raise ValueError(f"thresholds {self.thresholds} must be three probabilities")


@dataclass
class StageTimes:
    """Milliseconds spent in each stage of the last `detect` call."""

    pnet_ms: float = 0.0  # pyramid resizing + P-Net + its per-level NMS
    rnet_ms: float = 0.0  # crops + R-Net
    onet_ms: float = 0.0  # crops + O-Net
    nms_ms: float = 0.0  # non-maximum suppression across levels and stages
    levels: int = 0
    candidates: list[int] = field(default_factory=list)  # boxes after P-Net, R-Net, O-Net


def pyramid_scales(height: int, width: int, min_face: float, factor: float) -> list[float]:
    """Scales at which P-Net's 12 px window covers faces from `min_face` pixels upward."""
    m = PNET_CELL / min_face
    side = min(height, width) * m
    scales = []
    scale = m
    while side >= PNET_CELL:
        scales.append(scale)
        scale *= factor
        side *= factor
    return scales


def pnet_candidates(reg: np.ndarray, prob: np.ndarray, scale: float, threshold: float) -> np.ndarray:
    """P-Net maps -> (K, 9) rows of x1 y1 x2 y2 score dx1 dy1 dx2 dy2 in level-0 pixels.

    reg: (4, h, w) box offsets; prob: (h, w) face probability.
    """
    ys, xs = np.nonzero(prob >= threshold)
    cells = np.stack([xs, ys], axis=1).astype(np.float32)
    q1 = np.floor((PNET_STRIDE * cells + 1) / scale)
    q2 = np.floor((PNET_STRIDE * cells + PNET_CELL) / scale)
    return np.concatenate([q1, q2, prob[ys, xs, None], reg[:, ys, xs].T], axis=1)


NETS = ("pnet", "rnet", "onet")


class Nets(NamedTuple):
    pnet: Session
    rnet: Session
    onet: Session


class Route(NamedTuple):
    """How one detection runs: its pieces on these lanes, with these sessions."""

    lanes: Lanes
    nets: Nets


class Detector:
    """Finds faces in BGR frames: `detect(image) -> Faces` in source-frame pixels.

    `threads`: cores one detection may use (0 = all). On a large picture its pieces run side by
    side on single-threaded sessions (see `Lanes`), in the same order, so the faces are the
    same; a small one runs on sessions with that many ONNX Runtime threads. Safe to call from
    several threads at once.
    """

    def __init__(self, store: ModelStore, settings: DetectorSettings | None = None, threads: int = 0,
                 lanes_min_pixels: int = LANES_MIN_PIXELS) -> None:
        """`lanes_min_pixels`: the largest pyramid level's size from which lanes are used (0:
        always; the benchmarks compare the ways)."""
        self.settings = settings or DetectorSettings()
        self.lanes_min_pixels = lanes_min_pixels
        self.lanes = Lanes(lanes_for(threads))
        single = Nets(*(store.session(f"mtcnn_{n}", threads=1) for n in NETS))
        self._side_by_side = Route(self.lanes, single)
        self._threaded = Route(Lanes(1), single if self.lanes.count == 1 else
                               Nets(*(store.session(f"mtcnn_{n}", threads=self.lanes.count) for n in NETS)))
        self.last_times = StageTimes()

    def warm_up(self) -> None:
        """Runs each network once so the first real frame is not slow."""
        self.detect(np.zeros((240, 320, 3), np.uint8))

    def detect(self, image_bgr: np.ndarray) -> Faces:
        times = StageTimes()
        self.last_times = times
        s = self.settings
        height, width = image_bgr.shape[:2]
        shrink = 1.0
        if s.max_side and max(height, width) > s.max_side:
            shrink = s.max_side / max(height, width)
            image_bgr = cv2.resize(image_bgr, (round(width * shrink), round(height * shrink)),
                                   interpolation=cv2.INTER_AREA)
            height, width = image_bgr.shape[:2]
        min_face = max(s.min_face_size * shrink, float(PNET_CELL))

        # One summed-area table serves every pyramid level and every crop of this frame.
        table = integral(image_bgr)
        largest = width * height * (PNET_CELL / min_face) ** 2
        route = self._side_by_side if largest >= self.lanes_min_pixels else self._threaded
        boxes = self._stage_pnet(route, table, min_face, times)
        if len(boxes):
            boxes = self._stage_rnet(route, table, boxes, times)
        faces = self._stage_onet(route, table, boxes, times) if len(boxes) else Faces.empty()
        if shrink != 1.0 and len(faces):
            faces.xyxy /= shrink
            faces.landmarks /= shrink
        return faces

    def detect_regions(self, image_bgr: np.ndarray, regions: list[tuple[int, int, int, int]]) -> Faces:
        """Faces in these parts of the frame (x1, y1, x2, y2 pixels), in the frame's pixels;
        a face found twice where crops touch is kept once."""
        found = []
        for x1, y1, x2, y2 in regions:
            faces = self.detect(image_bgr[y1:y2, x1:x2])
            faces.xyxy += np.array([x1, y1, x1, y1], np.float32)
            faces.landmarks += np.array([x1, y1], np.float32)
            found.append(faces)
        if not found:
            return Faces.empty()
        faces = Faces(np.concatenate([f.xyxy for f in found]), np.concatenate([f.score for f in found]),
                      np.concatenate([f.landmarks for f in found]))
        if len(found) > 1 and len(faces):
            faces = faces[nms(faces.xyxy, faces.score, 0.5)]
        return faces

    def _stage_pnet(self, route: Route, table: np.ndarray, min_face: float, times: StageTimes) -> np.ndarray:
        height, width = table.shape[1] - 1, table.shape[2] - 1
        start = time.perf_counter()
        scales = pyramid_scales(height, width, min_face, self.settings.factor)

        def level(scale: float) -> np.ndarray:
            size = (int(width * scale + 1), int(height * scale + 1))
            reg, prob = route.nets.pnet.run(resize_area(table, *size))
            found = pnet_candidates(reg[0], prob[0, 1], scale, self.settings.thresholds[0])
            return found[nms(found[:, :4], found[:, 4], 0.5)]

        # Consecutive levels by area, a lane's share each: at 2 lanes the largest level is
        # about half the work. Concatenated in scale order, as one thread would.
        areas = [width * height * scale * scale for scale in scales]
        parts = route.lanes.map(lambda part: [level(scale) for scale in scales[part]], route.lanes.groups(areas))
        per_scale = [found for part in parts for found in part]
        nms_s = 0.0
        boxes = np.concatenate(per_scale) if per_scale else np.empty((0, 9), np.float32)
        t = time.perf_counter()
        boxes = boxes[nms(boxes[:, :4], boxes[:, 4], 0.7)]
        nms_s += time.perf_counter() - t
        xyxy = square(regress(boxes[:, :4], boxes[:, 5:9], plus_one=False))
        times.pnet_ms = (time.perf_counter() - start - nms_s) * 1000
        times.nms_ms += nms_s * 1000
        times.levels = len(scales)
        times.candidates.append(len(xyxy))
        return np.concatenate([xyxy, boxes[:, 4:5]], axis=1)

    def _valid_windows(self, table: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        windows = crop_windows(boxes[:, :4], table.shape[2] - 1, table.shape[1] - 1)
        ok = (windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])
        return boxes[ok], windows[ok]

    @staticmethod
    def _run_crops(lanes: Lanes, net: Session, table: np.ndarray, windows: np.ndarray,
                   size: int) -> list[np.ndarray]:
        """The network on every window resized to size x size, a share of the windows per lane."""
        parts = lanes.map(lambda part: net.run(crops_area(table, windows[part], size)),
                          lanes.chunks(len(windows), CROPS_PER_LANE))
        return [np.concatenate(outputs) for outputs in zip(*parts, strict=True)]

    def _stage_rnet(self, route: Route, table: np.ndarray, boxes: np.ndarray, times: StageTimes) -> np.ndarray:
        start = time.perf_counter()
        boxes, windows = self._valid_windows(table, boxes)
        reg, prob = self._run_crops(route.lanes, route.nets.rnet, table, windows, 24)
        keep = prob[:, 1] > self.settings.thresholds[1]
        boxes = np.concatenate([boxes[keep, :4], prob[keep, 1:2]], axis=1)
        reg = reg[keep]
        t = time.perf_counter()
        pick = nms(boxes[:, :4], boxes[:, 4], 0.7)
        nms_s = time.perf_counter() - t
        boxes, reg = boxes[pick], reg[pick]
        boxes[:, :4] = square(regress(boxes[:, :4], reg, plus_one=True))
        times.rnet_ms = (time.perf_counter() - start - nms_s) * 1000
        times.nms_ms += nms_s * 1000
        times.candidates.append(len(boxes))
        return boxes

    def _stage_onet(self, route: Route, table: np.ndarray, boxes: np.ndarray, times: StageTimes) -> Faces:
        start = time.perf_counter()
        boxes, windows = self._valid_windows(table, boxes)
        reg, marks, prob = self._run_crops(route.lanes, route.nets.onet, table, windows, 48)
        keep = prob[:, 1] > self.settings.thresholds[2]
        boxes, reg, marks, score = boxes[keep, :4], reg[keep], marks[keep], prob[keep, 1]
        # Landmarks are fractions of the (pre-regression) box, with MTCNN's 1-based offset.
        w = (boxes[:, 2] - boxes[:, 0] + 1)[:, None]
        h = (boxes[:, 3] - boxes[:, 1] + 1)[:, None]
        xs = w * marks[:, :5] + boxes[:, 0:1] - 1
        ys = h * marks[:, 5:] + boxes[:, 1:2] - 1
        landmarks = np.stack([xs, ys], axis=2)
        xyxy = regress(boxes, reg, plus_one=True)
        t = time.perf_counter()
        pick = nms(xyxy, score, 0.7, method="min")
        nms_s = time.perf_counter() - t
        times.onet_ms = (time.perf_counter() - start - nms_s) * 1000
        times.nms_ms += nms_s * 1000
        times.candidates.append(len(pick))
        return Faces(xyxy[pick].astype(np.float32), score[pick].astype(np.float32),
                     landmarks[pick].astype(np.float32))
