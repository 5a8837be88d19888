"""Store paths: parse and validate absolute paths inside the repository.

A store path is absolute (``/data/x.txt``); its components are entry names
(bytes) validated by ``objects.validate_name``. A path to read may name a
revision first (``HEAD~3:/data``, ``RevPath``); this module only splits the
text, ``history.resolve_revision`` finds the commit. Host paths never pass
through here.
"""

from __future__ import annotations

import os
from typing import Final, NamedTuple

from zerofs.errors import InvalidNameError, UsageError
from zerofs.objects import validate_name


class StorePath(NamedTuple):
    """An absolute path in the store, as a tuple of validated names."""

    parts: tuple[bytes, ...] = ()

    @classmethod
    def parse(cls, text: str | bytes) -> StorePath:
        """Parse ``/a/b`` (repeated and trailing slashes are tolerated).

        Raises:
            UsageError: the path is not absolute.
            InvalidNameError: a component is not a valid name.
        """
        raw = os.fsencode(text)
        shown = os.fsdecode(raw)
        if not raw.startswith(b"/"):
            raise UsageError(f"store paths are absolute: {shown!r} does not start with '/' (did you mean /{shown}?)")
        if b"\0" in raw:
            raise InvalidNameError(f"invalid store path {shown!r}: contains NUL")
        names = [p for p in raw.split(b"/") if p]
        dots = next((p for p in names if p in (b".", b"..")), None)
        if dots is not None:
            raise InvalidNameError(
                f"invalid store path {shown!r}: {dots.decode()!r} is not allowed in a store path "
                f"(did you mean {_without_dots(names)}?)"
            )
        return cls(tuple(validate_name(p) for p in names))

    @property
    def is_root(self) -> bool:
        """True for ``/``."""
        return not self.parts

    @property
    def name(self) -> bytes:
        """The last component (empty for the root)."""
        return self.parts[-1] if self.parts else b""

    @property
    def parent(self) -> StorePath:
        """The containing directory (the root's parent is the root)."""
        return StorePath(self.parts[:-1])

    def child(self, name: bytes) -> StorePath:
        """Return this path with one more component."""
        return StorePath((*self.parts, validate_name(name)))

    def is_within(self, other: StorePath) -> bool:
        """True if this path is ``other`` or below it."""
        return self.parts[: len(other.parts)] == other.parts

    def __str__(self) -> str:
        return "/" + "/".join(os.fsdecode(p) for p in self.parts)

    def shown(self) -> str:
        r"""The path for people, on one line: bytes that are not UTF-8 as ``\xNN``, control characters escaped.

        ``str`` keeps every byte (for JSON and the file system); this is for
        commit messages and other human text, which must encode as UTF-8.
        """
        return one_line("/" + "/".join(p.decode("utf-8", "backslashreplace") for p in self.parts))


def escaped(raw: bytes) -> str:
    r"""``raw`` for people, on one line: bytes that are not UTF-8 as ``\xNN``, control characters escaped.

    For a name or symlink target in a message; ``StorePath.shown`` for a whole path.
    """
    return one_line(raw.decode("utf-8", "backslashreplace"))


_CONTROL: Final = {code: f"\\x{code:02x}" for code in (*range(32), 127)} | {10: "\\n", 9: "\\t", 13: "\\r"}
"""Control characters as escapes (a newline in a name must not split a line of output)."""


def one_line(text: str) -> str:
    r"""``text`` with its control characters escaped (``\n``, ``\x1b``), for one line of human output."""
    return text.translate(_CONTROL)


def _without_dots(names: list[bytes]) -> str:
    """The path ``names`` mean once '.' and '..' are resolved, as a shell would (/a/../b is /b)."""
    kept: list[bytes] = []
    for name in names:
        if name == b"..":
            del kept[-1:]
        elif name != b".":
            kept.append(name)
    return "/" + "/".join(os.fsdecode(n) for n in kept)


REV_SEPARATOR = ":/"


class RevPath(NamedTuple):
    """A store path to read, in a named revision (``rev`` None means HEAD)."""

    rev: str | None
    path: StorePath

    @classmethod
    def parse(cls, text: str) -> RevPath:
        """Parse ``/path`` (HEAD) or ``REV:/path``.

        Only text that does not start with '/' and contains ':/' is split, so
        an absolute path with a colon in a name stays a plain path.

        Raises:
            UsageError: the revision part is empty, or the path is not absolute.
            InvalidNameError: a component is not a valid name.
        """
        rev, colon, rest = text.partition(":")
        if rev and colon and "/" not in rev and not rest.startswith("/"):
            raise UsageError(f"invalid path {text!r}: the path after ':' starts with '/' (did you mean {rev}:/{rest}?)")
        if text.startswith("/") or REV_SEPARATOR not in text:
            return cls(None, StorePath.parse(text))
        if not rev:
            raise UsageError(f"invalid path {text!r}: nothing before ':' (write REV:/path, e.g. HEAD~1:/data)")
        return cls(rev, StorePath.parse(rest))

    @property
    def is_head(self) -> bool:
        """True when no revision was named."""
        return self.rev is None

    def __str__(self) -> str:
        return str(self.path) if self.rev is None else f"{self.rev}:{self.path}"

    def shown(self) -> str:
        """As ``StorePath.shown``: for people, on one line."""
        return self.path.shown() if self.rev is None else f"{self.rev}:{self.path.shown()}"
