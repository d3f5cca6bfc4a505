"""facenet-pytorch's own MTCNN, run as the baseline and reference in tools/ benchmarks.

facenet-pytorch imports torchvision for two small functions (batched NMS and to_tensor), and
there is no CPU torchvision build to install here, so this module registers a minimal
stand-in for exactly those two before importing it. Only tools/ use this (it imports torch).
"""

from __future__ import annotations

import sys
import types

import numpy as np
import torch


def _nms(boxes: torch.Tensor, scores: torch.Tensor, threshold: float) -> torch.Tensor:
    """torchvision.ops.nms semantics: IoU with w*h areas, drop IoU > threshold, best first."""
    order = torch.argsort(scores, descending=True)
    x1, y1, x2, y2 = boxes.unbind(1)
    area = (x2 - x1) * (y2 - y1)
    keep = []
    while order.numel():
        i = order[0]
        keep.append(i)
        rest = order[1:]
        w = (torch.minimum(x2[i], x2[rest]) - torch.maximum(x1[i], x1[rest])).clamp(min=0)
        h = (torch.minimum(y2[i], y2[rest]) - torch.maximum(y1[i], y1[rest])).clamp(min=0)
        inter = w * h
        order = rest[inter / (area[i] + area[rest] - inter) <= threshold]
    return torch.stack(keep) if keep else torch.empty(0, dtype=torch.long)


def _batched_nms(boxes: torch.Tensor, scores: torch.Tensor, idxs: torch.Tensor, threshold: float) -> torch.Tensor:
    if boxes.numel() == 0:
        return torch.empty(0, dtype=torch.long)
    offsets = idxs.to(boxes) * (boxes.max() + 1)
    return _nms(boxes + offsets[:, None], scores, threshold)


def _install_torchvision_stand_in() -> None:
    if "torchvision" in sys.modules:
        return
    names = ["torchvision", "torchvision.transforms", "torchvision.transforms.functional",
             "torchvision.ops", "torchvision.ops.boxes"]
    modules = {name: types.ModuleType(name) for name in names}
    modules["torchvision.transforms"].functional = modules["torchvision.transforms.functional"]  # type: ignore[attr-defined]
    modules["torchvision.transforms.functional"].to_tensor = (  # type: ignore[attr-defined]
        lambda a: torch.from_numpy(np.asarray(a)).permute(2, 0, 1).float() / 255)
    modules["torchvision.ops.boxes"].batched_nms = _batched_nms  # type: ignore[attr-defined]
    sys.modules.update(modules)


def facenet_mtcnn(**kwargs: object) -> object:
    """facenet_pytorch.MTCNN(keep_all=True, **kwargs) on the CPU."""
    _install_torchvision_stand_in()
    from facenet_pytorch.models.mtcnn import MTCNN

    return MTCNN(keep_all=True, device="cpu", **kwargs)
