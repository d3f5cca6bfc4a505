"""Links to what the box serves (alert pictures, clips), as a phone opens them: absolute, and,
when the box needs a token or a password, signed for that one file until an expiry, like an
S3 presigned link. A link never carries the token that administers the box: it goes to every
MQTT subscriber and notification service, and opens only the file it names, only for GET.
Used by notifications and MQTT alike; the web server checks them with `link_allows`."""

from __future__ import annotations

import hashlib
import hmac
import time
from urllib.parse import quote

LINK_EXPIRY_S = 7 * 86400  # as long as an S3 presigned link may live


def link_key(token: str, password: str = "") -> bytes:
    """The key links are signed with, derived from the box's web secrets (b"" when it has
    none: an open box needs no signature). Changing the token or password revokes every link."""
    if not (token or password):
        return b""
    return hmac.new(f"{token}\0{password}".encode(), b"edged file links v1", hashlib.sha256).digest()


def _signature(key: bytes, path: str, expires: int) -> str:
    return hmac.new(key, f"{path.lstrip('/')}\n{expires}".encode(), hashlib.sha256).hexdigest()[:32]


def box_link(base_url: str, path: str, key: bytes = b"", expiry_s: float = LINK_EXPIRY_S,
             now: float | None = None) -> str:
    """An absolute link to a file the box serves, signed for that file when the box needs it."""
    link = f"{base_url.rstrip('/')}/{quote(path.lstrip('/'))}"
    if not key:
        return link
    expires = int((time.time() if now is None else now) + expiry_s)
    return f"{link}?exp={expires}&sig={_signature(key, path, expires)}"


def absolute(base_url: str, path: str | None, key: bytes = b"", expiry_s: float = LINK_EXPIRY_S) -> str | None:
    """`path` (media/..., clips/...) as an absolute link; None stays None, and so does a link
    that is absolute already (an S3 one)."""
    if path is None or "://" in path or not base_url:
        return path
    return box_link(base_url, path, key, expiry_s)


def link_allows(key: bytes, path: str, expires: str, signature: str, now: float | None = None) -> bool:
    """A signed link's query opens `path` (the URL's path) until it expires."""
    if not key or not expires.isdigit() or len(expires) > 12 or not signature:
        return False
    if int(expires) < (time.time() if now is None else now):
        return False
    return hmac.compare_digest(_signature(key, path, int(expires)), signature)
