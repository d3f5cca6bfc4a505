"""edged: a face-tracking daemon for headless edge boxes."""

__version__ = "0.1.0"
