"""HTTP byte ranges (RFC 9110, one range per request): what a phone's video player asks for
before it plays an MP4. Pure logic: a header and a file size in, the bytes to send out."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ByteRange:
    start: int  # first byte, inclusive
    end: int  # last byte, inclusive

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    def content_range(self, size: int) -> str:
        return f"bytes {self.start}-{self.end}/{size}"


class Unsatisfiable(ValueError):
    """The range lies outside the file: answered with 416."""


def parse_range(header: str | None, size: int) -> ByteRange | None:
    """The range asked for, or None for the whole file (no header, or one this server does not
    honour, such as several ranges, which a client must then accept as a 200)."""
    if not header:
        return None
    unit, _, spec = header.strip().partition("=")
    if unit.strip().lower() != "bytes" or "," in spec:
        return None
    first, dash, last = spec.strip().partition("-")
    if not dash:
        return None
    try:
        if not first:  # "-N": the last N bytes
            suffix = int(last)
            if suffix <= 0 or size == 0:
                raise Unsatisfiable(header)
            return ByteRange(max(size - suffix, 0), size - 1)
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None  # not a number: ignore the header, as RFC 9110 allows
    if start >= size:
        raise Unsatisfiable(header)
    if start < 0 or end < start:
        return None
    return ByteRange(start, min(end, size - 1))
