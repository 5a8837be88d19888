"""The command line's words for the hints errors carry: the one place a fix is spelled as options.

The core says what went wrong and, as a ``Hint``, what a user can do about
it; it never names an option. This module turns that into the text the
error line ends with. It must stay cheap to import: main.py imports it on
every run, the fast ``cat`` and ``ls`` included (it imports only errors.py).
"""

from __future__ import annotations

from typing import Final

from zerofs.errors import EXIT_BUG, CorruptionError, Hint, UnmountFrom, ZerofsError, exit_code_table

_WORDS: Final[dict[Hint, str]] = {
    Hint.CHECK_DAMAGE: "run zerofs fsck --read-data to see which paths it affects",
    Hint.REBUILD_INDEX: "nothing is lost from the packs: run zerofs fsck --rebuild-index",
    Hint.UPGRADE: "run zerofs upgrade",
    Hint.INIT: "create one with zerofs init",
    Hint.NEW_REPOSITORY_DIR: "pass --repo a new or empty directory",
    Hint.REPLACE: "use --force to replace it",
    Hint.WRITE_INTO: "use --force to export into it anyway",
    Hint.CREATE_PARENTS: "use -p to create it",
    Hint.ACCEPT_EXISTING: "use -p to accept an existing directory",
    Hint.RECURSIVE: "use -r to remove it and its contents",
    Hint.SKIP_ERRORS: "use --skip-errors to import the rest",
    Hint.NO_XATTRS: "use --no-xattrs to export without them",
    Hint.KEEP_RULE: "give a --keep option, for example --keep-daily 7",
    Hint.BREAK_LOCK: "if it is not, run gc with --break-lock",
    Hint.COMPACT_AGAIN: "close it (or unmount it) and run gc --compact again",
    Hint.WITHOUT_COMPACT: "run gc without --compact",
    Hint.WITHOUT_BREAK_LOCK: "run gc without --break-lock",
    Hint.PASSWORD: "set ZEROFS_PASSWORD_FILE, ZEROFS_PASSWORD_COMMAND or ZEROFS_PASSWORD, or run on a terminal",
}


def hint_text(exc: ZerofsError) -> str:
    """Return the words for what a user can do about ``exc``, or "" when there is nothing to say.

    Damage met by a command other than fsck gets the fsck hint even when it
    was raised without one: the layer that meets a damaged object knows its
    id, not the store paths that reach it, and fsck shows those same
    messages as its findings, so the hint is added here, not at the raise.
    """
    hint = exc.hint
    if isinstance(hint, UnmountFrom):
        return f"unmount it with: zerofs --repo {hint.repository} umount {hint.mountpoint}"
    if hint is None and isinstance(exc, CorruptionError) and "fsck" not in exc.message:
        hint = Hint.CHECK_DAMAGE
    return "" if hint is None else _WORDS[hint]


def exit_codes() -> list[tuple[int, str]]:
    """The exit-code table (``errors.exit_code_table``) in the command line's words, for help and man pages."""
    worded = {EXIT_BUG: "a bug in zerofs (a traceback with --debug or ZEROFS_DEBUG=1)"}
    return [(code, worded.get(code, meaning)) for code, meaning in exit_code_table()]
