"""Where a repository's password comes from: a file, a command, the environment or the terminal (#15).

The sources and their order follow restic's (``resolvePassword`` and
``readPassword`` in its ``internal/global/global.go``)::

    ZEROFS_PASSWORD_FILE and ZEROFS_PASSWORD_COMMAND both set  -> refused (UsageError)
    ZEROFS_PASSWORD_COMMAND   run without a shell, its standard output
    ZEROFS_PASSWORD_FILE      the file's bytes
    ZEROFS_PASSWORD           the variable's bytes
    a prompt on /dev/tty      only when standard input is a terminal; twice when confirming

The first that is set wins, and a file or command silently outranks
``ZEROFS_PASSWORD``, as in restic. A variable set to the empty string counts
as unset (restic, and ``$ZEROFS_REPO`` here). From a file or a command one
trailing newline is removed and nothing else: the password is the bytes
as they are (restic trims all white space and converts UTF-16; this rule
must never change, or existing passwords stop opening). An empty password
is refused from every source, and so is one longer than
``MAX_PASSWORD_BYTES``.

The other repository of a push or pull (its DESTINATION or SOURCE) reads the
same way from ``ZEROFS_OTHER_PASSWORD_FILE``, ``ZEROFS_OTHER_PASSWORD_COMMAND``
and ``ZEROFS_OTHER_PASSWORD`` (restic's ``--from-password-*`` of ``copy``)
when one of them is set, and from the variables above when none is
(``OTHER``, ``OWN``; the CLI chooses).

Nothing here puts a password into a message, a repr, a log record, a
core dump or a process title: before a password is read, the process gives
up core dumps (``keep_out_of_core_dumps``), and it never changes its title;
a failed command is named by its program alone (its arguments may hold a
secret) and its output is never shown. The password command gets the
caller's environment without ``ZEROFS_PASSWORD`` and ``ZEROFS_OTHER_PASSWORD``, and
``/dev/null`` as its standard input (restic's choice: standard input may
carry data for ``zerofs write``); its standard error is the user's. The CLI
calls ``drop_password_variable`` once it has the password, so that no later
child (a mount's forked process, ``fusermount3``) inherits it.

This module stores nothing and imports only the standard library and
``zerofs.errors``; ``subprocess``, ``shlex`` and ``termios`` are imported by
the functions that need them, so importing it costs a plain repository
nothing.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Mapping, MutableMapping
from typing import TYPE_CHECKING, Final, NamedTuple

from zerofs.errors import UsageError

if TYPE_CHECKING:
    import subprocess


class Sources(NamedTuple):
    """The names of the environment variables a password is read from: a file, a command, the password itself."""

    file: str
    command: str
    value: str

    @property
    def no_password(self) -> str:
        """The error when none of them is set and there is no terminal."""
        return f"no password: set {self.file}, {self.command} or {self.value}, or run on a terminal"


OWN: Final = Sources("ZEROFS_PASSWORD_FILE", "ZEROFS_PASSWORD_COMMAND", "ZEROFS_PASSWORD")
"""Where a repository's password comes from."""
OTHER: Final = Sources("ZEROFS_OTHER_PASSWORD_FILE", "ZEROFS_OTHER_PASSWORD_COMMAND", "ZEROFS_OTHER_PASSWORD")
"""Where the other repository of a push or pull (its DESTINATION or SOURCE) takes its password, if one is set."""
FILE_VARIABLE: Final = OWN.file
COMMAND_VARIABLE: Final = OWN.command
PASSWORD_VARIABLE: Final = OWN.value
VALUE_VARIABLES: Final = (OWN.value, OTHER.value)
"""The variables that hold a password itself: no password command and no child process gets them."""

MAX_PASSWORD_BYTES: Final = 64 * 1024
"""Longer than any password or key file; a longer source is a mistake (a whole document, ``/dev/zero``, ``yes``)."""
_READ_LIMIT: Final = MAX_PASSWORD_BYTES + 2
"""Bytes read from a file or command at most: tells a password over the limit from one at it plus its newline."""
COMMAND_TIMEOUT_SECONDS: Final = 120.0
"""How long a password command may run: long enough to type a passphrase into a pinentry, short enough for cron."""
TERMINAL: Final = "/dev/tty"

NO_PASSWORD: Final = OWN.no_password


def read_password(
    *, purpose: str, confirm: bool, environ: Mapping[str, str], stdin_tty: bool, sources: Sources = OWN
) -> bytes:
    """Return the password from the first source that is set (see the module's docstring for the order).

    Args:
        purpose: what the password opens, in words ("repository /srv/r"); shown in the prompt only.
        confirm: ask twice and compare, when the password is typed (``init``, a new key); other
            sources are read once, as in restic.
        environ: the environment to read the variables from (``os.environ``); the password command
            runs with it, less ``ZEROFS_PASSWORD`` and ``ZEROFS_OTHER_PASSWORD``.
        stdin_tty: whether standard input is a terminal; without one zerofs never prompts, so a
            script or a pipeline fails at once instead of waiting for a password nobody types.
        sources: which variables to read (``OWN``; ``OTHER`` for the other repository of a push or pull).

    Returns:
        The password's bytes: what the terminal sent, the file's bytes or the command's output (less
        one trailing newline), or the variable's bytes (``os.fsencode``).

    Raises:
        UsageError: both a file and a command are set, a source cannot be read or gives an empty or
            over-long password, the two typed passwords differ, or there is no source and no terminal.
    """
    keep_out_of_core_dumps()
    file_path = environ.get(sources.file, "")
    command = environ.get(sources.command, "")
    if file_path and command:
        raise UsageError(f"{sources.file} and {sources.command} are both set: unset one of them")
    if command:
        return _from_command(command, environ, sources)
    if file_path:
        return _from_file(file_path, sources)
    value = environ.get(sources.value, "")
    if value:
        return _from_variable(value, sources)
    if not stdin_tty:
        raise UsageError(sources.no_password)
    return _from_terminal(purpose, confirm=confirm, no_password=sources.no_password)


_PR_SET_DUMPABLE: Final = 4


def keep_out_of_core_dumps() -> None:
    """Keep this process's memory (passwords, keys) out of core dumps and away from other processes' ptrace.

    ``RLIMIT_CORE`` 0 (soft and hard: inherited by every child, the forked
    mount process included) stops a core file; ``PR_SET_DUMPABLE`` 0 also
    stops a core piped to a handler (systemd-coredump, apport) and makes
    ``/proc/PID/mem`` and ``environ`` readable by root only. Both are what
    ssh-agent and gpg-agent do. Best effort: a refusal changes nothing else.
    """
    import ctypes
    import resource

    with contextlib.suppress(ValueError, OSError):
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    with contextlib.suppress(OSError, AttributeError):  # AttributeError: a libc without prctl (not Linux)
        ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def drop_password_variable(environ: MutableMapping[str, str]) -> None:
    """Remove ``ZEROFS_PASSWORD`` and ``ZEROFS_OTHER_PASSWORD`` from ``environ`` (``os.environ``: via unsetenv).

    The CLI calls this once it holds the password, so no process it starts
    or forks afterwards (a mount's process, ``fusermount3``) inherits it.
    ``unsetenv`` alone leaves the value in the block ``/proc/PID/environ``
    shows, which a forked mount process copies and keeps for its whole life:
    the value is overwritten there first (``_erase_from_start_environment``).
    """
    for name in VALUE_VARIABLES:
        if environ is os.environ and environ.get(name):
            _erase_from_start_environment(name)
        environ.pop(name, None)


def _erase_from_start_environment(name: str) -> None:
    """Overwrite with NUL bytes the value of ``name`` in the C ``environ`` strings (issue #15).

    The strings the process started with live in the block the kernel reads
    for ``/proc/PID/environ`` (of this process and of every process forked
    from it). Only the value's bytes are overwritten, in place, so no length
    or pointer changes; the variable is unset right after.
    """
    import ctypes

    prefix = os.fsencode(name) + b"="
    environ = ctypes.POINTER(ctypes.c_void_p).in_dll(ctypes.CDLL(None), "environ")
    index = 0
    while (address := environ[index]) is not None:
        entry = ctypes.string_at(address)
        if entry.startswith(prefix):
            ctypes.memset(address + len(prefix), 0, len(entry) - len(prefix))
        index += 1


def _from_variable(value: str, sources: Sources) -> bytes:
    """The bytes of ``ZEROFS_PASSWORD`` (``sources.value``) as the process received them."""
    try:
        password = os.fsencode(value)
    except UnicodeEncodeError:
        # Not from a real environment (os.environ decodes with surrogateescape). The
        # exception would quote a character of the password: drop it, do not chain it.
        raise UsageError(f"{sources.value} cannot be encoded as bytes") from None
    return _checked(
        password, too_long=f"{sources.value} is longer than {MAX_PASSWORD_BYTES} bytes", empty=sources.no_password
    )


def _checked(password: bytes, *, too_long: str, empty: str) -> bytes:
    """``password``, refused if longer than ``MAX_PASSWORD_BYTES`` (``too_long``) or empty (``empty``)."""
    if len(password) > MAX_PASSWORD_BYTES:
        raise UsageError(too_long)
    if not password:
        raise UsageError(empty)
    return password


def _without_newline(data: bytes) -> bytes:
    """``data`` less one trailing newline: what ``echo`` and editors add."""
    return data[:-1] if data.endswith(b"\n") else data


# --------------------------------------------------------------------------
# ZEROFS_PASSWORD_FILE


def _from_file(path: str, sources: Sources) -> bytes:
    """The bytes of the password file, less one trailing newline."""
    where = f"password file {path!r} ({sources.file})"
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        raise UsageError(f"cannot open the {where}: {exc.strerror}") from exc
    try:
        data = _read_at_most(fd, _READ_LIMIT)
    except OSError as exc:  # EISDIR for a directory, EIO
        raise UsageError(f"cannot read the {where}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    return _checked(
        _without_newline(data),
        too_long=f"the {where} is longer than {MAX_PASSWORD_BYTES} bytes: not a password",
        empty=f"the {where} is empty: an empty password is refused",
    )


def _read_at_most(fd: int, limit: int) -> bytes:
    """Read ``fd`` to its end or to ``limit`` bytes, whichever comes first (a pipe or FIFO too)."""
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        chunk = os.read(fd, limit - size)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


# --------------------------------------------------------------------------
# ZEROFS_PASSWORD_COMMAND


def _from_command(command: str, environ: Mapping[str, str], sources: Sources) -> bytes:
    """The standard output of the password command, less one trailing newline."""
    import shlex

    try:
        argv = shlex.split(command)
    except ValueError as exc:  # "No closing quotation": it quotes nothing of the command
        raise UsageError(f"{sources.command} cannot be split into words: {exc}") from None
    if not argv:
        raise UsageError(f"{sources.command} names no program")
    # Named by its program alone: its arguments may hold a secret ("echo hunter2").
    where = f"password command {argv[0]!r} ({sources.command})"
    env = {name: value for name, value in environ.items() if name not in VALUE_VARIABLES}
    output = _run_command(argv, env, where)
    return _checked(  # too_long is unreachable: _run_command already refused a longer output
        _without_newline(output),
        too_long=f"the {where} printed more than {MAX_PASSWORD_BYTES} bytes: not a password",
        empty=f"the {where} printed no password",
    )


def _run_command(argv: list[str], env: dict[str, str], where: str) -> bytes:
    """Run the command, return its standard output (a password's worth and its newline at most).

    Raises:
        UsageError: it cannot start, fails, or does not finish within ``COMMAND_TIMEOUT_SECONDS``.
    """
    import subprocess
    import time

    deadline = time.monotonic() + COMMAND_TIMEOUT_SECONDS
    try:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, env=env)
    except OSError as exc:  # not found, not executable
        raise UsageError(f"cannot run the {where}: {exc.strerror}") from exc
    try:
        output = _read_output(proc, deadline, where)
        if len(output) >= _READ_LIMIT:  # ``yes``: stop it now, not at the deadline
            raise UsageError(f"the {where} printed more than {MAX_PASSWORD_BYTES} bytes: not a password")
        returncode = proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:  # closed its output, still running
        raise UsageError(_timed_out(where)) from None
    finally:
        _stop(proc)
    if returncode < 0:
        raise UsageError(f"the {where} was killed by signal {-returncode}")
    if returncode:
        raise UsageError(f"the {where} failed with exit status {returncode}")
    return output


def _read_output(proc: subprocess.Popen[bytes], deadline: float, where: str) -> bytes:
    """Read the command's output to its end, or until the command has exited; give up at ``deadline``.

    Stops at ``_READ_LIMIT`` bytes. Once the command has exited,
    what it wrote is in the pipe, so an empty pipe means it is done even
    if a process it left behind (an agent it started) still holds the pipe
    open: Go's ``cmd.Output()`` in restic would wait for that process.
    """
    import select
    import time

    assert proc.stdout is not None  # stdout=PIPE
    fd = proc.stdout.fileno()
    exit_fd = _exit_watch(proc.pid)
    watched = [fd] if exit_fd is None else [fd, exit_fd]
    chunks: list[bytes] = []
    size = 0
    try:
        while size < _READ_LIMIT:
            readable, _, _ = select.select(watched, [], [], max(0.0, deadline - time.monotonic()))
            if not readable:
                raise UsageError(_timed_out(where))
            if fd not in readable:  # exited, and the pipe is empty
                break
            chunk = os.read(fd, _READ_LIMIT - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
    finally:
        if exit_fd is not None:
            os.close(exit_fd)
    return b"".join(chunks)


def _exit_watch(pid: int) -> int | None:
    """A pidfd that becomes readable when ``pid`` exits; None where the kernel has none (before Linux 5.3)."""
    try:
        return os.pidfd_open(pid)
    except (AttributeError, OSError):
        return None


def _timed_out(where: str) -> str:
    return f"the {where} did not finish within {COMMAND_TIMEOUT_SECONDS:g} s"


def _stop(proc: subprocess.Popen[bytes]) -> None:
    """Kill the command if it still runs, reap it, close our end of its output.

    Only the command itself is killed: a process it started and left behind
    gets EPIPE once it writes. We do not wait for the pipe's end, which such a
    process could hold open for ever.
    """
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    assert proc.stdout is not None
    proc.stdout.close()


# --------------------------------------------------------------------------
# The terminal


def _from_terminal(purpose: str, *, confirm: bool, no_password: str) -> bytes:
    """Ask on the controlling terminal with echo off; twice and compared if ``confirm``.

    Raises:
        UsageError: ``no_password`` when there is no controlling terminal; an empty or over-long password.
    """
    import hmac

    try:
        fd = os.open(TERMINAL, os.O_RDWR | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError:  # ENXIO: no controlling terminal (cron, a detached process)
        raise UsageError(no_password) from None
    try:
        shown = "".join(char if char.isprintable() else "?" for char in purpose)
        password = _prompt(fd, f"Password for {shown}: ")
        _checked(
            password,
            too_long=f"the password typed is longer than {MAX_PASSWORD_BYTES} bytes",
            empty="no password typed: an empty password is refused",
        )
        if confirm and not hmac.compare_digest(password, _prompt(fd, "The same password again: ")):
            raise UsageError("the two passwords typed differ")
    finally:
        os.close(fd)
    return password


def _prompt(fd: int, prompt: str) -> bytes:
    """Write ``prompt`` to the terminal, read one line with echo off, put echo back (on Ctrl-C too)."""
    import termios

    try:
        saved = termios.tcgetattr(fd)
    except termios.error:
        raise UsageError(f"cannot turn off echo on {TERMINAL}: refusing to ask for a password there") from None
    quiet = list(saved)
    quiet[3] &= ~termios.ECHO  # local modes; ECHONL stays as it was, ICANON keeps line editing
    termios.tcsetattr(fd, termios.TCSAFLUSH, quiet)
    try:
        os.write(fd, prompt.encode("utf-8", "replace"))
        return _read_line(fd)
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, saved)
        os.write(fd, b"\n")  # the Enter the user typed was not echoed


def _read_line(fd: int) -> bytes:
    """One line from the terminal, without its newline; at end of input (Ctrl-D), what came before it."""
    chunks: list[bytes] = []
    size = 0
    while size <= MAX_PASSWORD_BYTES:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
        if chunk.endswith(b"\n"):
            break
    return _without_newline(b"".join(chunks))
