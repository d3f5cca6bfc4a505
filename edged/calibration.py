"""Match thresholds from labelled face embeddings: open-set trials, false accepts, operating points (pure).

Protocol (docs/recognition.md, "How far to trust a name"): people, never photos, are split into a fitting
half and a checking half. A trial enrolls `gallery_size` people of one half with
`enroll_photos` photos each; their other photos are genuine probes, and every photo of that
half's people who were not enrolled is a stranger probe. A stranger probe whose best
similarity to the gallery reaches the threshold is a false accept (it would be named as
someone); a genuine probe is named correctly when its best match is its own person at or
above the threshold.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

MATCHING_RULES = ("max", "mean")  # a person's score: best of their photos, or their mean embedding


@dataclass(frozen=True)
class TrialSettings:
    gallery_size: int
    enroll_photos: int = 1
    matching: str = "max"
    trials: int = 20

    def __post_init__(self) -> None:
        if self.gallery_size < 1 or self.enroll_photos < 1 or self.trials < 1:
            raise ValueError("gallery_size, enroll_photos and trials must be >= 1")
        if self.matching not in MATCHING_RULES:
            raise ValueError(f"matching '{self.matching}' is not one of {MATCHING_RULES}")


@dataclass(frozen=True)
class TrialScores:
    """Every probe of every trial: stranger best scores; genuine best scores and correctness."""

    stranger: np.ndarray  # (S,) best similarity of each stranger probe to anyone enrolled
    genuine: np.ndarray  # (G,) best similarity of each enrolled person's probe
    genuine_correct: np.ndarray  # (G,) bool: that best match is the probe's own person
    trials: int


@dataclass(frozen=True)
class OperatingPoint:
    """What one threshold does on one set of trials, with the counts behind each rate."""

    threshold: float
    false_accepts: int
    strangers: int
    named_correctly: int
    named_wrongly: int  # enrolled people named as another enrolled person
    genuine: int

    @property
    def false_accept_rate(self) -> float:
        return self.false_accepts / max(self.strangers, 1)

    @property
    def identification_rate(self) -> float:
        return self.named_correctly / max(self.genuine, 1)


def split_people(labels: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The person labels in two halves (fit, check), shuffled by `seed`."""
    people = np.unique(labels)
    order = np.random.default_rng(seed).permutation(len(people))
    half = len(people) // 2
    return np.sort(people[order[:half]]), np.sort(people[order[half:]])


def run_trials(vectors: np.ndarray, labels: np.ndarray, people: np.ndarray, settings: TrialSettings,
               seed: int) -> TrialScores | None:
    """Open-set identification trials among `people`; None when too few have enough photos."""
    rng = np.random.default_rng(seed)
    rows_of = {person: np.flatnonzero(labels == person) for person in people}
    eligible = [p for p in people if len(rows_of[p]) > settings.enroll_photos]
    if len(eligible) < settings.gallery_size or len(people) == settings.gallery_size:
        return None
    stranger, genuine, correct = [], [], []
    for _ in range(settings.trials):
        enrolled = rng.choice(len(eligible), settings.gallery_size, replace=False)
        enrolled_people = [eligible[i] for i in enrolled]
        gallery_rows, owner, probe_rows, probe_owner = [], [], [], []
        for index, person in enumerate(enrolled_people):
            rows = rng.permutation(rows_of[person])
            gallery_rows += rows[:settings.enroll_photos].tolist()
            owner += [index] * settings.enroll_photos
            probe_rows += rows[settings.enroll_photos:].tolist()
            probe_owner += [index] * (len(rows) - settings.enroll_photos)
        enrolled_set = set(enrolled_people)
        stranger_rows = [r for p in people if p not in enrolled_set for r in rows_of[p]]
        person_vectors = _gallery(vectors[gallery_rows], np.array(owner), settings)
        best_genuine, who = _best(vectors[probe_rows], person_vectors, np.array(owner), settings)
        best_stranger, _ = _best(vectors[stranger_rows], person_vectors, np.array(owner), settings)
        stranger.append(best_stranger)
        genuine.append(best_genuine)
        correct.append(who == np.array(probe_owner))
    return TrialScores(np.concatenate(stranger), np.concatenate(genuine), np.concatenate(correct),
                       settings.trials)


def _gallery(vectors: np.ndarray, owner: np.ndarray, settings: TrialSettings) -> np.ndarray:
    if settings.matching == "max":
        return vectors
    means = np.stack([vectors[owner == i].mean(0) for i in range(owner.max() + 1)])
    return means / np.maximum(np.linalg.norm(means, axis=1, keepdims=True), 1e-12)


def _best(probes: np.ndarray, gallery: np.ndarray, owner: np.ndarray,
          settings: TrialSettings) -> tuple[np.ndarray, np.ndarray]:
    """Each probe's best score and best person (index), as Gallery.match decides."""
    similarity = probes @ gallery.T
    if settings.matching == "max":
        people = owner.max() + 1
        per_person = np.full((len(probes), people), -2.0, np.float32)
        for i in range(people):
            per_person[:, i] = similarity[:, owner == i].max(axis=1)
        similarity = per_person
    return similarity.max(axis=1), similarity.argmax(axis=1)


def threshold_for(stranger: np.ndarray, false_accept_rate: float) -> float:
    """The lowest threshold (rounded up to 0.001) that names at most this share of strangers."""
    if len(stranger) == 0:
        raise ValueError("no stranger probes to fit a threshold on")
    allowed = math.floor(false_accept_rate * len(stranger))
    ranked = np.sort(stranger)[::-1]
    # Strangers scoring at or above the threshold are accepted: sit just above the (allowed+1)-th.
    above = float(ranked[allowed]) if allowed < len(ranked) else float(ranked[-1]) - 1e-3
    return math.floor(above * 1000) / 1000 + 0.001


CONFIDENCE_Z = 1.645  # one-sided 95%: the stated rate should hold for people never seen


@dataclass(frozen=True)
class FittedThreshold:
    """A threshold for a false-accept rate, raised by its own uncertainty over people."""

    threshold: float
    raw: float  # the rate's point on all the fitting people
    spread: float  # standard deviation of `raw` from one sample of people to another


def fit_threshold(vectors: np.ndarray, labels: np.ndarray, people: np.ndarray, settings: TrialSettings,
                  false_accept_rate: float, seed: int, resplits: int = 20) -> FittedThreshold:
    """The rate's threshold on `people`, plus CONFIDENCE_Z times its spread.

    Which strangers happen to look like someone enrolled dominates the false accepts, so a
    threshold fitted on 150 people moves by about 0.01 from one 150 to another. The spread is
    measured by fitting on random halves of `people` (a half's spread shrinks by sqrt(2) for
    the whole)."""
    scores = run_trials(vectors, labels, people, settings, seed)
    if scores is None:
        raise ValueError(f"too few people with {settings.enroll_photos + 1}+ photos for "
                         f"{settings.gallery_size}-person galleries")
    raw = threshold_for(scores.stranger, false_accept_rate)
    rng = np.random.default_rng(seed + 1)
    halves = []
    for attempt in range(resplits):
        shuffled = rng.permutation(people)
        for part in (shuffled[:len(people) // 2], shuffled[len(people) // 2:]):
            half = run_trials(vectors, labels, np.sort(part), settings, seed + attempt)
            if half is not None:
                halves.append(threshold_for(half.stranger, false_accept_rate))
    spread = float(np.std(halves)) / math.sqrt(2) if len(halves) > 1 else 0.0
    return FittedThreshold(math.ceil((raw + CONFIDENCE_Z * spread) * 1000) / 1000, raw, spread)


def operating_point(scores: TrialScores, threshold: float) -> OperatingPoint:
    accepted = scores.genuine >= threshold
    return OperatingPoint(
        threshold=threshold,
        false_accepts=int((scores.stranger >= threshold).sum()),
        strangers=len(scores.stranger),
        named_correctly=int((accepted & scores.genuine_correct).sum()),
        named_wrongly=int((accepted & ~scores.genuine_correct).sum()),
        genuine=len(scores.genuine),
    )


def same_person_floor(vectors: np.ndarray, labels: np.ndarray, percentile: float = 5.0) -> tuple[float, int]:
    """The cosine that all but `percentile`% of pairs of one person's photos exceed, and the
    number of pairs: below it, two faces are almost never the same person."""
    similarity = vectors @ vectors.T
    upper = np.triu_indices(len(labels), 1)
    same = (labels[:, None] == labels[None])[upper]
    genuine = similarity[upper][same]
    return math.floor(float(np.percentile(genuine, percentile)) * 1000) / 1000, int(len(genuine))


def mirror_average(vectors: np.ndarray, mirrored: np.ndarray) -> np.ndarray:
    """Test-time augmentation: the mean of a face's and its mirror image's embeddings, unit length."""
    mean = vectors + mirrored
    return mean / np.maximum(np.linalg.norm(mean, axis=1, keepdims=True), 1e-12)
