"""Lasting anonymous ids for people who match no enrolled person (pure).

Tracks of unknown people are grouped by face: a track joins the group whose mean embedding
is most similar to the track's own mean, when that similarity reaches the embedder's match
threshold plus a margin; otherwise it starts a new group. Comparing means, not single best
pairs, keeps one blurry frame from chaining two strangers together, and the margin is there
because a wrong merge (two strangers become one) costs more than a missed one. Groups known
from the gallery keep their `unknown-N` names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

CLUSTER_MARGIN = 0.1


def mean_direction(vectors: np.ndarray) -> np.ndarray:
    mean = np.asarray(vectors, np.float32).mean(0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


@dataclass
class UnknownGroup:
    name: str | None  # `unknown-N` from the gallery, or None until one is given
    vectors: list[np.ndarray] = field(default_factory=list)
    members: list[int] = field(default_factory=list)  # track ids

    def similarity(self, direction: np.ndarray) -> float:
        return float(mean_direction(np.stack(self.vectors)) @ direction) if self.vectors else -1.0


class UnknownClusters:
    """`assign(track_id, vectors) -> group index`; `groups` holds the result."""

    def __init__(self, match_threshold: float, known: dict[str, np.ndarray] | None = None) -> None:
        self.threshold = match_threshold + CLUSTER_MARGIN
        self.groups: list[UnknownGroup] = [UnknownGroup(name, list(vectors)) for name, vectors in (known or {}).items()]

    def assign(self, track_id: int, vectors: np.ndarray) -> int:
        """vectors: (K, D) unit embeddings of one track."""
        direction = mean_direction(vectors)
        scores = [group.similarity(direction) for group in self.groups]
        best = int(np.argmax(scores)) if scores else -1
        if best < 0 or scores[best] < self.threshold:
            self.groups.append(UnknownGroup(None))
            best = len(self.groups) - 1
        group = self.groups[best]
        group.vectors.extend(vectors)
        group.members.append(track_id)
        return best
