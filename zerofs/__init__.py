"""zerofs: a content-addressed, copy-on-write file store where a snapshot is a clone."""

__version__ = "0.1.0"
