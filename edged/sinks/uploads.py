"""What a client sends to the HTTP API: a multipart form (parsed by the `multipart` library,
Bottle's parser), a JSON document, a urlencoded form, or an image as the whole body. The size
is checked from Content-Length before a byte is read, and every refusal is an UploadError
with the HTTP status to answer."""

from __future__ import annotations

import io
import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs

import multipart

MAX_UPLOAD = 20 * 2**20  # bytes of a request body: more than a phone's full-size JPEG or two
MAX_PARTS = 16  # files and fields of one multipart form
MAX_FIELD = 4096  # characters of a text field
# A body must arrive within 10 s plus its size at 200 kB/s (a 20 MB upload gets 115 s): a
# client that sends a byte now and then would otherwise hold a server thread indefinitely.
BODY_GRACE_S = 10.0
BODY_MIN_RATE = 200_000  # bytes per second
CHUNK = 64 * 1024


class UploadError(ValueError):
    """A body the API will not take; `status` is the HTTP answer (400, 411, 413, 415)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Upload:
    fields: dict[str, str] = field(default_factory=dict)  # text fields (a form's, or the query's for raw bodies)
    files: list[tuple[str, bytes]] = field(default_factory=list)  # (field name, bytes), in the order sent
    document: dict[str, Any] | None = None  # a JSON body


def body_length(headers: Mapping[str, str], limit: int = MAX_UPLOAD) -> int:
    """The body's size from Content-Length (`headers` with lower-case names), refused before
    reading when it is too large, or sent in chunks."""
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise UploadError(411, "send the body with a Content-Length (chunked uploads are not taken)")
    try:
        length = int(headers.get("content-length", "0") or "0")
    except ValueError:
        raise UploadError(400, "Content-Length is not a number") from None
    if length < 0:
        raise UploadError(400, "Content-Length is negative")
    if length > limit:
        raise UploadError(413, f"the body is {length} bytes; at most {limit // 2**20} MB is taken")
    return length


def body_deadline_s(length: int) -> float:
    return BODY_GRACE_S + length / BODY_MIN_RATE


def read_body(read: Callable[[int], bytes], length: int, deadline_s: float) -> bytes:
    """`length` bytes, which must all arrive within `deadline_s`."""
    chunks, got, deadline = [], 0, time.monotonic() + deadline_s
    while got < length:
        if time.monotonic() > deadline:
            raise UploadError(408, f"the body did not arrive within {deadline_s:.0f} s ({got} of {length} bytes)")
        chunk = read(min(CHUNK, length - got))
        if not chunk:
            raise UploadError(400, f"the body ended after {got} of {length} bytes")
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


def read_upload(headers: Mapping[str, str], read: Callable[[int], bytes], limit: int = MAX_UPLOAD) -> Upload:
    """The request's body, by its Content-Type; `headers` with lower-case names; `read(n)`
    returns at most n bytes, fewer when that is what has arrived."""
    length = body_length(headers, limit)
    body = read_body(read, length, body_deadline_s(length))
    kind, options = multipart.parse_options_header(headers.get("content-type", ""))
    kind = kind.lower()
    if not body:
        return Upload()
    if kind == "multipart/form-data":
        return _multipart(body, options.get("boundary", ""))
    if kind == "application/json":
        return Upload(document=_json(body))
    if kind == "application/x-www-form-urlencoded":
        return Upload(fields=_form(body))
    if kind.startswith("image/") or kind in ("application/octet-stream", ""):
        return Upload(files=[("image", body)])
    raise UploadError(415, f"a body of type '{kind}' is not taken: send multipart/form-data, JSON, or the image")


def _multipart(body: bytes, boundary: str) -> Upload:
    if not boundary:
        raise UploadError(400, "multipart/form-data without a boundary")
    upload = Upload()
    try:
        # Everything stays in memory (the body is bounded already): nothing is spooled to disk.
        parser = multipart.MultipartParser(io.BytesIO(body), boundary, len(body), part_limit=MAX_PARTS,
                                           partsize_limit=MAX_UPLOAD, spool_limit=MAX_UPLOAD + 1,
                                           memory_limit=MAX_UPLOAD + 1, disk_limit=0)
        for part in parser:
            if part.filename is not None:
                upload.files.append((part.name, part.raw))
            else:
                if part.size > MAX_FIELD:
                    raise UploadError(400, f"form field '{part.name[:40]}' is longer than {MAX_FIELD} bytes")
                upload.fields[part.name] = part.value
    except multipart.ParserLimitReached as exc:
        raise UploadError(413, f"the form has too many or too large parts ({exc}; at most {MAX_PARTS} parts)") from None
    except (multipart.MultipartError, UnicodeDecodeError) as exc:
        raise UploadError(400, f"not a well-formed multipart form ({exc})") from None
    return upload


def _json(body: bytes) -> dict[str, Any]:
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        raise UploadError(400, "the body is not JSON") from None
    if not isinstance(document, dict):
        raise UploadError(400, "the JSON body must be an object")
    return document


def _form(body: bytes) -> dict[str, str]:
    try:
        fields = parse_qs(body.decode("utf-8"), max_num_fields=MAX_PARTS, strict_parsing=False)
    except (UnicodeDecodeError, ValueError) as exc:
        raise UploadError(400, f"not a well-formed form ({exc})") from None
    if any(len(v[0]) > MAX_FIELD for v in fields.values()):
        raise UploadError(400, f"a form field is longer than {MAX_FIELD} characters")
    return {k: v[0] for k, v in fields.items()}
