"""Entry point: run a command, turn errors into one line and an exit code.

``cat`` and ``ls`` of small things must answer in well under 50 ms as whole
processes, and importing typer and click alone costs about 80 ms here. So
``fast.try_run`` first parses the command line from a spec generated from
the typer app and runs it without typer; anything it is not sure of (help,
usage errors, ``--version``, ``--debug``) goes to the typer app, which
defines every command, its help, the man pages and completions. Both run
the same command functions (one ``cmd_<concept>.py`` module per command or
group) and end in the same handlers here.
"""

from __future__ import annotations

import errno
import os
import sys

from zerofs.cli.hints import hint_text
from zerofs.errors import EXIT_BUG, EXIT_INTERRUPTED, HostIOError, ZerofsError

COMPLETE_VAR = "_ZEROFS_COMPLETE"
"""Set by the shell completion scripts in completions/ (see cli/docs.py)."""


def _take_debug(args: list[str]) -> tuple[list[str], bool]:
    """``args`` without ``--debug``, and whether it (or ``ZEROFS_DEBUG=1``) asked for tracebacks.

    ``--debug`` may stand anywhere before ``--``, before the command name or
    after it: an error says "rerun with --debug", and the user appends it.
    """
    end = args.index("--") if "--" in args else len(args)
    kept = [arg for arg in args[:end] if arg != "--debug"] + args[end:]
    return kept, len(kept) < len(args) or os.environ.get("ZEROFS_DEBUG") == "1"


def main(argv: list[str] | None = None) -> int:
    """Run zerofs with ``argv`` (default: sys.argv[1:]); return the exit code."""
    args, debug = _take_debug(list(sys.argv[1:] if argv is None else argv))
    _claim_closed_streams()
    try:
        from zerofs.cli.fast import try_run

        handled = try_run(args)
        code = handled if handled is not None else _run_app(args)
        # Flush here, not at exit, so a reader that went away is handled below.
        sys.stdout.flush()
        return code
    except ZerofsError as exc:
        if debug:
            raise
        _print_error(f"{exc.message}{_learn_more(exc)}")
        return exc.exit_code
    except KeyboardInterrupt:
        sys.stderr.write("zerofs: interrupted\n")
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # The reader went away (zerofs cat x | head): not an error worth a message.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        if debug:
            raise
        if not _is_output_error(exc):
            return _internal_error(exc)
        # Drop what is still buffered, or the interpreter's last flush fails again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        reason = "it is closed" if exc.errno == errno.EBADF else exc.strerror
        sys.stderr.write(f"zerofs: cannot write to standard output: {reason}\n")
        return HostIOError.exit_code
    except Exception as exc:
        if debug:
            raise
        return _internal_error(exc)


def _claim_closed_streams() -> None:
    """Give a standard stream the process was started without (``zerofs ls >&-``) a descriptor that fails.

    Python leaves ``sys.stdout`` None when fd 1 is closed, and the next file
    opened gets fd 1: a pack or the index could then receive what a library
    writes to "standard output". /dev/null opened the wrong way round holds
    the number, so writing standard output fails with EBADF (one error line,
    exit 8, as a full disk does) and reading standard input fails; ``write``
    still sees ``sys.stdin`` None and says so. Without stderr, the error line
    is lost, but the exit code still tells.
    """
    for fd, stream, flags in ((0, "stdin", os.O_WRONLY), (1, "stdout", os.O_RDONLY), (2, "stderr", os.O_WRONLY)):
        if getattr(sys, stream) is not None:
            continue
        held = os.open(os.devnull, flags)
        if held != fd:  # the fd was open after all (Python had other reasons): leave it
            os.close(held)
            continue
        if stream != "stdin":
            # The stream lives as long as the process, as the one Python would have made.
            setattr(sys, stream, open(fd, "w", encoding="utf-8", errors="backslashreplace", closefd=False))  # noqa: SIM115


def _internal_error(exc: Exception) -> int:
    _print_error(f"internal error: {type(exc).__name__}: {exc} (rerun with --debug for a traceback)")
    return EXIT_BUG


def _print_error(text: str) -> None:
    """Print ``zerofs: TEXT`` on stderr as one line, whatever a path or value in it holds.

    Store paths arrive escaped (``StorePath.shown``), but host paths, the
    repository's location and values echoed back by the parser arrive as
    given; a newline or carriage return in one must not split the line a
    script reads, nor an escape sequence reach the terminal.
    """
    from zerofs.paths import one_line

    sys.stderr.write(f"zerofs: {one_line(text)}\n")


def _is_output_error(exc: OSError) -> bool:
    """True for what writing standard output raises when it cannot go on (zerofs cat x > /dev/full).

    Errors on host files carry their file name; those on standard output do not.
    """
    return exc.filename is None and exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO, errno.EBADF)


def _learn_more(exc: ZerofsError) -> str:
    """The error's hint in the command line's words (cli/hints.py), in parentheses, or ""."""
    text = hint_text(exc)
    return f" ({text})" if text else ""


def _run_app(args: list[str]) -> int:
    # typer 0.29 vendors click as typer._click; its exceptions are the ones raised.
    import typer
    import typer._click.exceptions as click
    import typer.main

    from zerofs.cli.app import app
    from zerofs.errors import UsageError

    command = typer.main.get_command(app)
    # What command.main() would do, minus its handling of Ctrl-C, EOF and a
    # closed pipe (exit 130 silently, or exit 1): those reach main()'s
    # handlers, as they do from the fast path, so both behave the same.
    if COMPLETE_VAR in os.environ:
        from typer._completion_classes import completion_init

        completion_init()  # registers typer's bash/zsh/fish classes, as Typer.__call__ does
        command._main_shell_completion({}, "zerofs", COMPLETE_VAR)
    try:
        with command.make_context("zerofs", args) as ctx:
            result = command.invoke(ctx)
    except click.NoArgsIsHelpError as exc:
        if exc.ctx.parent is None:  # zerofs alone: a short summary, not the whole help
            from zerofs.cli.cmd_help import summary

            sys.stderr.write(summary())
        else:
            sys.stderr.write(exc.ctx.get_help() + "\n")
        return UsageError.exit_code
    except click.UsageError as exc:
        if exc.ctx is not None and exc.ctx.parent is None and exc.format_message().startswith("Missing command"):
            from zerofs.cli.cmd_help import summary  # zerofs --repo X alone: as zerofs alone

            sys.stderr.write(summary())
            return UsageError.exit_code
        message = _house_style(exc.format_message())
        name = f"{exc.ctx.command.name} " if exc.ctx and exc.ctx.parent else ""
        hint = "" if message.endswith("?)") else f" (see 'zerofs {name}--help')"
        _print_error(f"{message}{hint}")
        return UsageError.exit_code
    except typer.Exit as exc:
        return int(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("zerofs: interrupted\n")
        return EXIT_INTERRUPTED
    return int(result) if isinstance(result, int) else 0


def _house_style(message: str) -> str:
    """Click's sentence ("No such command 'x'. Did you mean 'y'?") as ours read: lower case, no period."""
    import re

    message = re.sub(r"\.? Did you mean (.+)\?$", r" (did you mean \1?)", message)
    message = re.sub(
        r" \(Possible options: (.+)\)$", lambda m: f" (did you mean {' or '.join(m[1].split(', '))}?)", message
    )
    message = message.removesuffix(".")
    return message[:1].lower() + message[1:]
