"""Exceptions that carry a message naming the thing that was wrong."""


class EdgedError(Exception):
    """An error the command line reports as one clear line, without a traceback."""


class ImageError(EdgedError):
    """An image file that cannot be read or has an unsupported layout."""


class ModelError(EdgedError):
    """A model that is missing, corrupt, or does not match its spec."""


class GalleryError(EdgedError):
    """A gallery operation that cannot be done as asked."""


class ConfigError(EdgedError):
    """A configuration value that is unknown, of the wrong type, or out of range."""
