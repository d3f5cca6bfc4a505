"""The one rule for person names, applied wherever a name enters (enroll, rename, naming a
stranger, gallery import, corrections): letters of any script, digits, spaces and . _ - ',
starting with a letter or digit, at most 64 characters. Names reach web pages, MQTT topics,
file names and logs; a rule this narrow keeps markup and control characters out of all of them."""

from __future__ import annotations

import re
import unicodedata

from edged.errors import GalleryError

MAX_NAME_LENGTH = 64
PUNCTUATION = " ._-'"
RULE = f"letters, digits, spaces and {PUNCTUATION.strip()} (starting with a letter or digit, at most {MAX_NAME_LENGTH})"


def _allowed(char: str) -> bool:
    # L*: letters of every script; M*: the combining marks many scripts write letters with.
    category = unicodedata.category(char)
    return category[0] in "LM" or category == "Nd" or char in PUNCTUATION


ANONYMOUS = re.compile(r"unknown-[0-9]+", re.IGNORECASE)  # the box's own ids for strangers


def check_person_name(name: object, anonymous_ok: bool = False) -> str:
    """The name, normalised (NFC, outer spaces removed), or a GalleryError naming what is wrong.
    `unknown-N` is reserved for the strangers the box names itself (`anonymous_ok` there only):
    a person renamed or imported as one would turn anonymous, and the next stranger would be
    merged into them."""
    if not isinstance(name, str):
        raise GalleryError(f"{name!r} is not a usable name: a name is text ({RULE})")
    clean = unicodedata.normalize("NFC", name).strip()
    if not clean:
        raise GalleryError(f"an empty name is not usable: {RULE}")
    if len(clean) > MAX_NAME_LENGTH:
        raise GalleryError(f"'{clean[:MAX_NAME_LENGTH]}...' is too long for a name: {RULE}")
    bad = sorted({c for c in clean if not _allowed(c)})
    if bad:
        shown = ", ".join(repr(c) for c in bad[:5])
        raise GalleryError(f"{clean!r} is not a usable name: {shown} not allowed; use {RULE}")
    if not _allowed(clean[0]) or clean[0] in PUNCTUATION:
        raise GalleryError(f"{clean!r} is not a usable name: it must start with a letter or digit")
    if not anonymous_ok and ANONYMOUS.fullmatch(clean):
        raise GalleryError(f"{clean!r} is not a usable name: unknown-N is reserved for strangers the box names "
                           "itself; choose a real name")
    return clean
