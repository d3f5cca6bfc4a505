"""edged: a face-tracking daemon for headless edge boxes, and its Python API (docs/python.md):
`edged.Faces` for photos, the gallery, tracking and video scans. Loaded on first use, so that importing
edged for its command line does not load the models' libraries first."""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["EdgedError", "Enrolled", "Face", "FaceRecord", "Faces", "Person", "ScanResult", "TrackEvent",
           "TrackedFace", "TrackedFrame"]

_WHERE = {"Faces": "edged.api", "Face": "edged.api", "Person": "edged.api", "Enrolled": "edged.api",
          "TrackedFace": "edged.api", "TrackedFrame": "edged.api", "FaceRecord": "edged.gallery",
          "ScanResult": "edged.scan", "TrackEvent": "edged.events", "EdgedError": "edged.errors"}


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        import importlib

        return getattr(importlib.import_module(_WHERE[name]), name)
    raise AttributeError(f"module 'edged' has no attribute {name!r}")
