"""Links to what the box serves (alert pictures, clips), as a phone opens them: absolute, with
the token when the box needs one. Used by notifications and MQTT alike."""

from __future__ import annotations

from urllib.parse import quote


def box_link(base_url: str, path: str, token: str = "") -> str:
    """An absolute link to a file the box serves, with the token when the box needs one."""
    return f"{base_url.rstrip('/')}/{path}" + (f"?token={quote(token)}" if token else "")


def absolute(base_url: str, path: str | None, token: str = "") -> str | None:
    """`path` (media/..., clips/...) as an absolute link; None stays None, and so does a link
    that is absolute already (an S3 one)."""
    if path is None or "://" in path or not base_url:
        return path
    return box_link(base_url, path, token)
