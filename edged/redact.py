"""Secrets kept out of what edged shows: a camera URL's password (rtsp://admin:hunter2@cam)
becomes rtsp://admin:***@cam in logs, status, `edged status` and `config show`."""

from __future__ import annotations

import re

_USERINFO = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@\s]*)(?::[^@/\s]*)?@")


def mask_url(text: str) -> str:
    """`text` with the password of every URL in it replaced by ***."""
    return _USERINFO.sub(lambda m: f"{m['scheme']}{m['user']}:***@", text)
