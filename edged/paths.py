"""Where edged keeps its state: the service's state directory, or a per-user one."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """$STATE_DIRECTORY under systemd (StateDirectory=edged), /var/lib/edged for root when it
    exists, else $XDG_DATA_HOME/edged (~/.local/share/edged)."""
    if os.environ.get("STATE_DIRECTORY"):
        return Path(os.environ["STATE_DIRECTORY"].split(":")[0])
    system = Path("/var/lib/edged")
    if os.geteuid() == 0 and system.is_dir():
        return system
    data_home = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "edged"


def default_gallery() -> Path:
    return Path(os.environ.get("EDGED_GALLERY", state_dir() / "gallery.db"))
