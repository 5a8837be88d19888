"""Where a password comes from (zerofs/cli/password.py): each source, their order, and that nothing leaks.

The file, command and environment sources are read in this process, with
real files and real commands. The prompt is driven through a real
pseudo-terminal: a child process in its own session takes the pty as its
controlling terminal, and the test types into the master side and reads
what the terminal showed.
"""

from __future__ import annotations

import os
import select
import shlex
import signal
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import zerofs
from zerofs.cli import password
from zerofs.cli.password import (
    COMMAND_VARIABLE,
    FILE_VARIABLE,
    MAX_PASSWORD_BYTES,
    NO_PASSWORD,
    PASSWORD_VARIABLE,
    drop_password_variable,
    read_password,
)
from zerofs.crypto import slots
from zerofs.errors import UsageError

SOURCE_ROOT = str(Path(zerofs.__file__).parent.parent)


def read(environ: dict[str, str], *, stdin_tty: bool = False, confirm: bool = False) -> bytes:
    return read_password(purpose="repository /r", confirm=confirm, environ=environ, stdin_tty=stdin_tty)


def refused(environ: dict[str, str], *, stdin_tty: bool = False) -> str:
    """The message of the UsageError ``read`` raises for ``environ``."""
    with pytest.raises(UsageError) as caught:
        read(environ, stdin_tty=stdin_tty)
    assert caught.value.exit_code == 2
    assert "\n" not in caught.value.message
    return caught.value.message


def command(*argv: str) -> str:
    """A ZEROFS_PASSWORD_COMMAND value that runs ``argv``."""
    return shlex.join(argv)


def sh(script: str, *args: str) -> str:
    """A ZEROFS_PASSWORD_COMMAND value that runs ``script`` with sh (``$0`` is the first of ``args``)."""
    return command("sh", "-c", script, *args)


def write(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


# --------------------------------------------------------------------------
# Precedence


@pytest.fixture
def sources(tmp_path: Path) -> dict[str, str]:
    """One value of each variable, each giving a different password."""
    return {
        FILE_VARIABLE: write(tmp_path / "pw", b"from-file\n"),
        COMMAND_VARIABLE: command("printf", "from-command\\n"),
        PASSWORD_VARIABLE: "from-variable",
    }


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ((PASSWORD_VARIABLE,), b"from-variable"),
        ((FILE_VARIABLE,), b"from-file"),
        ((COMMAND_VARIABLE,), b"from-command"),
        ((FILE_VARIABLE, PASSWORD_VARIABLE), b"from-file"),
        ((COMMAND_VARIABLE, PASSWORD_VARIABLE), b"from-command"),
    ],
)
def test_the_first_source_set_wins(sources: dict[str, str], present: tuple[str, ...], expected: bytes) -> None:
    environ = {name: sources[name] for name in present}
    assert read(environ) == expected
    assert read(environ, stdin_tty=True) == expected, "a source is used without prompting, terminal or not"


@pytest.mark.parametrize(
    "present", [(FILE_VARIABLE, COMMAND_VARIABLE), (FILE_VARIABLE, COMMAND_VARIABLE, PASSWORD_VARIABLE)]
)
def test_a_file_and_a_command_together_are_refused(sources: dict[str, str], present: tuple[str, ...]) -> None:
    message = refused({name: sources[name] for name in present})
    assert message == f"{FILE_VARIABLE} and {COMMAND_VARIABLE} are both set: unset one of them"


@pytest.mark.parametrize(
    ("empty", "expected"),
    [(FILE_VARIABLE, b"from-command"), (COMMAND_VARIABLE, b"from-file"), (PASSWORD_VARIABLE, None)],
)
def test_a_variable_set_to_nothing_counts_as_unset(sources: dict[str, str], empty: str, expected: bytes | None) -> None:
    environ = {**sources, empty: ""}
    if empty == PASSWORD_VARIABLE:
        environ = {empty: ""}
        assert refused(environ) == NO_PASSWORD
    else:
        assert read(environ) == expected


def test_no_source_and_no_terminal_is_one_clear_error() -> None:
    assert refused({"HOME": "/root"}) == (
        "no password: set ZEROFS_PASSWORD_FILE, ZEROFS_PASSWORD_COMMAND or ZEROFS_PASSWORD, or run on a terminal"
    )


def test_confirm_reads_a_non_interactive_source_once(tmp_path: Path) -> None:
    counter = tmp_path / "runs"
    environ = {COMMAND_VARIABLE: sh('echo run >> "$0"; printf pw', str(counter))}
    assert read(environ, confirm=True) == b"pw"
    assert counter.read_text() == "run\n"


# --------------------------------------------------------------------------
# ZEROFS_PASSWORD


def test_the_variable_gives_its_bytes_as_the_process_received_them() -> None:
    raw = "pässwörd \udcff end"  # os.environ's form of a non-UTF-8 byte (surrogateescape)
    assert read({PASSWORD_VARIABLE: raw}) == os.fsencode(raw)
    assert read({PASSWORD_VARIABLE: "  spaces and a newline\n"}) == b"  spaces and a newline\n", "nothing stripped"


def test_a_variable_too_long_to_be_a_password() -> None:
    assert read({PASSWORD_VARIABLE: "v" * MAX_PASSWORD_BYTES}) == b"v" * MAX_PASSWORD_BYTES
    message = refused({PASSWORD_VARIABLE: "v" * (MAX_PASSWORD_BYTES + 1)})
    assert message == f"{PASSWORD_VARIABLE} is longer than {MAX_PASSWORD_BYTES} bytes"


def test_a_variable_that_is_no_bytes_is_refused_without_quoting_it() -> None:
    """Only a caller's own mapping can hold this (os.environ cannot); the codec's error would quote it."""
    secret = "S3cret-" + chr(0xD800)
    with pytest.raises(UsageError) as caught:
        read({PASSWORD_VARIABLE: secret})
    assert caught.value.message == f"{PASSWORD_VARIABLE} cannot be encoded as bytes"
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__
    shown = "".join(traceback.format_exception(caught.value))
    assert "S3cret" not in shown
    assert "ud800" not in shown


def test_drop_password_variable_keeps_it_from_every_later_child(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PASSWORD_VARIABLE, "s3cret-in-env")
    monkeypatch.setenv("ZEROFS_OTHER", "kept")
    assert read_password(purpose="r", confirm=False, environ=os.environ, stdin_tty=False) == b"s3cret-in-env"
    drop_password_variable(os.environ)
    child_env = subprocess.run(["env"], capture_output=True, check=True).stdout
    assert b"s3cret-in-env" not in child_env
    assert b"ZEROFS_OTHER=kept" in child_env
    drop_password_variable(os.environ)  # twice is harmless


# --------------------------------------------------------------------------
# ZEROFS_PASSWORD_FILE


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"hunter2\n", b"hunter2"),
        (b"hunter2", b"hunter2"),
        (b"hunter2\n\n", b"hunter2\n"),
        (b"  spaced  \n", b"  spaced  "),
        (b"crlf\r\n", b"crlf\r"),
        (b"\xff\xfe\x00binary\x80\n", b"\xff\xfe\x00binary\x80"),
        (b"x" * MAX_PASSWORD_BYTES, b"x" * MAX_PASSWORD_BYTES),
        (b"x" * MAX_PASSWORD_BYTES + b"\n", b"x" * MAX_PASSWORD_BYTES),
    ],
)
def test_a_file_gives_its_bytes_less_one_trailing_newline(tmp_path: Path, content: bytes, expected: bytes) -> None:
    assert read({FILE_VARIABLE: write(tmp_path / "pw", content)}) == expected


@given(content=st.binary(min_size=1, max_size=300).filter(lambda data: data != b"\n"))
def test_a_file_round_trips_any_bytes(tmp_path: Path, content: bytes) -> None:
    expected = content[:-1] if content.endswith(b"\n") else content
    assert read({FILE_VARIABLE: write(tmp_path / "pw", content)}) == expected


def test_a_file_can_be_a_pipe(tmp_path: Path) -> None:
    """``ZEROFS_PASSWORD_FILE=<(pass show x)``: process substitution hands over a pipe."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    writer = subprocess.Popen(["sh", "-c", 'printf "piped\\n" > "$0"', str(fifo)])
    try:
        assert read({FILE_VARIABLE: str(fifo)}) == b"piped"
    finally:
        writer.wait(timeout=60)


def test_a_missing_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    message = refused({FILE_VARIABLE: str(missing), PASSWORD_VARIABLE: "not-used"})
    assert message == f"cannot open the password file {str(missing)!r} ({FILE_VARIABLE}): No such file or directory"


def test_a_directory(tmp_path: Path) -> None:
    message = refused({FILE_VARIABLE: str(tmp_path)})
    assert message == f"cannot read the password file {str(tmp_path)!r} ({FILE_VARIABLE}): Is a directory"


@pytest.mark.parametrize("content", [b"", b"\n"])
def test_an_empty_file(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path / "pw", content)
    message = refused({FILE_VARIABLE: path})
    assert message == f"the password file {path!r} ({FILE_VARIABLE}) is empty: an empty password is refused"


@pytest.mark.parametrize(
    "content", [b"y" * (MAX_PASSWORD_BYTES + 1), b"y" * (MAX_PASSWORD_BYTES + 1) + b"\n", b"y\n" * MAX_PASSWORD_BYTES]
)
def test_a_file_too_long_to_be_a_password(tmp_path: Path, content: bytes) -> None:
    path = write(tmp_path / "big", content)
    message = refused({FILE_VARIABLE: path})
    assert (
        message
        == f"the password file {path!r} ({FILE_VARIABLE}) is longer than {MAX_PASSWORD_BYTES} bytes: not a password"
    )


def test_a_device_without_end_is_refused() -> None:
    assert refused({FILE_VARIABLE: "/dev/zero"}).endswith(f"is longer than {MAX_PASSWORD_BYTES} bytes: not a password")


def test_an_unreadable_file(tmp_path: Path) -> None:
    """Run in a child without the capabilities that let root read anything (as root, which these tests are)."""
    path = write(tmp_path / "pw", b"locked-away\n")
    os.chmod(path, 0)
    drop = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    result = run_harness(env={FILE_VARIABLE: path}, prefix=drop)
    assert result.returncode == 2
    assert result.stderr == f"zerofs: cannot open the password file {path!r} ({FILE_VARIABLE}): Permission denied\n"
    assert result.stdout == ""


# --------------------------------------------------------------------------
# ZEROFS_PASSWORD_COMMAND


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("printf", "pw\\n"), b"pw"),
        (("printf", "pw"), b"pw"),
        (("printf", "pw\\n\\n"), b"pw\n"),
        (("printf", "with space \\377\\n"), b"with space \xff"),
        (("echo", "two words"), b"two words"),
    ],
)
def test_a_command_gives_its_output_less_one_trailing_newline(argv: tuple[str, ...], expected: bytes) -> None:
    assert read({COMMAND_VARIABLE: command(*argv)}) == expected


def test_a_command_runs_without_a_shell(tmp_path: Path) -> None:
    marker = tmp_path / "expanded"
    value = f"printf '%s' $HOME;touch {marker}"  # a shell would expand $HOME and run touch
    assert read({COMMAND_VARIABLE: value, "HOME": "/home/x"}) == f"$HOME;touch{marker}".encode()
    assert not marker.exists()


def test_a_command_gets_the_environment_without_the_password_and_no_stdin(tmp_path: Path) -> None:
    script = 'env > "$0/env"; cat > "$0/stdin"; tr "\\0" " " < /proc/$PPID/cmdline > "$0/cmdline"; printf pw'
    environ = {
        COMMAND_VARIABLE: sh(script, str(tmp_path)),
        PASSWORD_VARIABLE: "s3cret-outranked",
        "ZEROFS_MARKER": "passed",
        "PATH": os.environ["PATH"],
    }
    assert read(environ) == b"pw"
    child_env = (tmp_path / "env").read_text()
    assert "ZEROFS_MARKER=passed" in child_env
    assert "s3cret-outranked" not in child_env
    assert (tmp_path / "stdin").read_bytes() == b""
    assert "s3cret-outranked" not in (tmp_path / "cmdline").read_text(), "never in our process title"


def test_a_command_that_fails_is_named_by_its_program_alone() -> None:
    message = refused({COMMAND_VARIABLE: sh("printf s3cret-printed; exit 3", "s3cret-argument")})
    assert message == f"the password command 'sh' ({COMMAND_VARIABLE}) failed with exit status 3"


def test_a_command_killed_by_a_signal() -> None:
    message = refused({COMMAND_VARIABLE: sh("printf pw; kill -9 $$")})
    assert message == f"the password command 'sh' ({COMMAND_VARIABLE}) was killed by signal 9"


def test_a_command_that_is_not_there() -> None:
    message = refused({COMMAND_VARIABLE: command("zerofs-no-such-program", "arg")})
    assert message == (
        f"cannot run the password command 'zerofs-no-such-program' ({COMMAND_VARIABLE}): No such file or directory"
    )


def test_a_command_that_is_not_executable(tmp_path: Path) -> None:
    path = write(tmp_path / "script", b"#!/bin/sh\nprintf pw\n")
    message = refused({COMMAND_VARIABLE: command(path)})
    assert message == f"cannot run the password command {path!r} ({COMMAND_VARIABLE}): Permission denied"


@pytest.mark.parametrize("argv", [("true",), ("printf", "\\n")])
def test_a_command_that_prints_nothing(argv: tuple[str, ...]) -> None:
    message = refused({COMMAND_VARIABLE: command(*argv)})
    assert message == f"the password command {argv[0]!r} ({COMMAND_VARIABLE}) printed no password"


@pytest.mark.parametrize(("value", "problem"), [("   ", "names no program"), ("'open", "cannot be split")])
def test_a_command_that_cannot_be_parsed(value: str, problem: str) -> None:
    assert problem in refused({COMMAND_VARIABLE: value})


@pytest.mark.parametrize("length", [MAX_PASSWORD_BYTES + 1, MAX_PASSWORD_BYTES + 2, 10 * MAX_PASSWORD_BYTES])
def test_a_command_that_prints_too_much(length: int) -> None:
    message = refused({COMMAND_VARIABLE: sh('head -c "$0" /dev/zero | tr "\\0" z', str(length))})
    assert message == (
        f"the password command 'sh' ({COMMAND_VARIABLE}) printed more than {MAX_PASSWORD_BYTES} bytes: not a password"
    )


def test_a_command_may_print_the_longest_password_and_a_newline() -> None:
    value = sh('head -c "$0" /dev/zero | tr "\\0" z; echo', str(MAX_PASSWORD_BYTES))
    assert read({COMMAND_VARIABLE: value}) == b"z" * MAX_PASSWORD_BYTES


def test_a_command_that_prints_without_end_is_stopped_at_once() -> None:
    message = refused({COMMAND_VARIABLE: command("yes")})
    assert message == (
        f"the password command 'yes' ({COMMAND_VARIABLE}) printed more than {MAX_PASSWORD_BYTES} bytes: not a password"
    )


@pytest.fixture
def short_timeout(monkeypatch: pytest.MonkeyPatch) -> float:
    """A timeout of one second for password commands, instead of two minutes."""
    monkeypatch.setattr(password, "COMMAND_TIMEOUT_SECONDS", 1.0)
    return 1.0


@pytest.fixture
def leftover(tmp_path: Path) -> Iterator[Path]:
    """A file a test's command writes a process id into; that process is killed after the test."""
    pid_file = tmp_path / "pid"
    yield pid_file
    if pid_file.exists():
        with pytest.raises(ProcessLookupError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


@pytest.mark.parametrize(
    "script",
    [
        'echo $$ > "$0"; printf s3cret-before-hang; exec sleep 600',  # hangs with its output open
        'echo $$ > "$0"; exec >&-; exec sleep 600',  # closed its output, still runs
    ],
)
def test_a_command_that_hangs_is_killed(short_timeout: float, leftover: Path, script: str) -> None:
    message = refused({COMMAND_VARIABLE: sh(script, str(leftover))})
    assert message == f"the password command 'sh' ({COMMAND_VARIABLE}) did not finish within 1 s"
    # The leftover fixture checks the command is gone (killed and reaped), not just abandoned.


def test_a_process_left_behind_does_not_hold_up_the_password(tmp_path: Path) -> None:
    """An agent the command starts may keep its output open; the command's own exit decides (restic waits)."""
    pid_file = tmp_path / "agent"
    environ = {COMMAND_VARIABLE: sh('sleep 600 & echo $! > "$0"; printf pw', str(pid_file))}
    try:
        assert read(environ) == b"pw"
    finally:
        os.kill(int(pid_file.read_text()), signal.SIGKILL)


# --------------------------------------------------------------------------
# Nothing leaks


LEAKY_FAILURES = {
    "file and command": lambda pw: {FILE_VARIABLE: pw, COMMAND_VARIABLE: command("cat", pw)},
    "command fails": lambda pw: {COMMAND_VARIABLE: sh('cat "$0"; exit 1', pw)},
    "command killed": lambda pw: {COMMAND_VARIABLE: sh('cat "$0"; kill -9 $$', pw)},
    "command prints too much": lambda pw: {COMMAND_VARIABLE: sh('cat "$0"; head -c 70000 /dev/zero', pw)},
    "file too long": lambda pw: {FILE_VARIABLE: pw + ".long"},
    "file missing": lambda pw: {FILE_VARIABLE: pw + ".missing"},
}
"""Failures while a password is at hand: each builds an environment from the path of a file holding it."""


def assert_not_shown(secret: bytes, *texts: str) -> None:
    forms = {secret, repr(secret)[2:-1].encode(), secret.hex().encode()}
    for text in texts:
        shown = text.encode("utf-8", "surrogateescape")
        for form in forms:
            assert form not in shown, f"{form!r} shown in {text!r}"


@pytest.mark.parametrize("failure", sorted(LEAKY_FAILURES))
@given(secret=st.binary(min_size=1, max_size=40).map(lambda tail: b"S3cret-" + tail))
def test_a_password_never_shows_in_a_failure(
    tmp_path: Path, capfd: pytest.CaptureFixture[str], failure: str, secret: bytes
) -> None:
    path = write(tmp_path / "pw", secret)
    write(tmp_path / "pw.long", secret * (MAX_PASSWORD_BYTES // len(secret) + 1))
    environ = {**LEAKY_FAILURES[failure](path), PASSWORD_VARIABLE: os.fsdecode(secret.replace(b"\0", b"0"))}
    with pytest.raises(UsageError) as caught:
        read(environ)
    captured = capfd.readouterr()
    chain = "".join(traceback.format_exception(caught.value))
    assert_not_shown(secret, caught.value.message, repr(caught.value), chain, captured.out, captured.err)


@given(secret=st.binary(min_size=1, max_size=40).map(lambda tail: b"S3cret-" + tail))
def test_a_wrong_password_never_shows(secret: bytes) -> None:
    slot = slots.make_slot(b"k" * 32, b"the right one", slots.KdfParams(1, 8, 1))
    with pytest.raises(slots.WrongPasswordError) as caught:
        slots.open_any([slot], secret)
    assert caught.value.exit_code == 12
    assert_not_shown(secret, str(caught.value), repr(caught.value), "".join(traceback.format_exception(caught.value)))


# --------------------------------------------------------------------------
# The prompt, through a real pseudo-terminal

HARNESS = r"""
import fcntl, os, signal, sys, termios
# A test run started in the background (cron, CI, "cmd &") inherits SIGINT ignored, and Python then
# installs no handler of its own: Ctrl-C at the prompt would do nothing. A user's shell gives zerofs the default.
signal.signal(signal.SIGINT, signal.default_int_handler)
terminal = int(sys.argv[1])
if terminal >= 0:
    fcntl.ioctl(terminal, termios.TIOCSCTTY, 0)  # our session's controlling terminal from now on
from zerofs.cli.password import read_password
from zerofs.errors import ZerofsError
try:
    pw = read_password(
        purpose=sys.argv[2], confirm=sys.argv[3] == "confirm", environ=os.environ, stdin_tty=os.isatty(0)
    )
except ZerofsError as exc:
    sys.stderr.write(f"zerofs: {exc.message}\n")
    sys.exit(exc.exit_code)
except KeyboardInterrupt:
    echo = termios.tcgetattr(terminal)[3] & termios.ECHO
    sys.stdout.write("interrupted, echo " + ("on" if echo else "off"))
    sys.exit(130)
sys.stdout.write(pw.hex())
"""
"""Reads a password as the CLI will, and reports it (hex) on stdout or its error on stderr."""

GUARD_SECONDS = 60.0
"""How long to wait for a prompt before failing: a guard against hanging, not a timing check."""


def harness_env(extra: dict[str, str]) -> dict[str, str]:
    env = {name: value for name, value in os.environ.items() if not name.startswith("ZEROFS_")}
    return {**env, "PYTHONPATH": SOURCE_ROOT, **extra}


def run_harness(
    *, env: dict[str, str], prefix: list[str] | None = None, confirm: bool = False
) -> subprocess.CompletedProcess[str]:
    """The harness with no terminal at all, in a session of its own."""
    argv = [*(prefix or []), sys.executable, "-c", HARNESS, "-1", "repository /r", "confirm" if confirm else "-"]
    return subprocess.run(
        argv,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=harness_env(env),
        start_new_session=True,
        timeout=GUARD_SECONDS,
        check=False,
    )


class Terminal:
    """The harness on a pseudo-terminal: the test types into the master side and reads what it shows."""

    def __init__(
        self,
        *,
        confirm: bool = False,
        stdin_is_terminal: bool = True,
        controlling: bool = True,
        purpose: str = "repository /r",
        env: dict[str, str] | None = None,
    ) -> None:
        self.master, slave = os.openpty()
        self.shown = b""
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-c",
                HARNESS,
                str(slave if controlling else -1),
                purpose,
                "confirm" if confirm else "once",
            ],
            stdin=slave if stdin_is_terminal else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=(slave,),
            start_new_session=True,
            env=harness_env(env or {}),
        )
        os.close(slave)

    def expect(self, text: bytes) -> None:
        """Read what the terminal shows until ``text`` has appeared."""
        deadline = time.monotonic() + GUARD_SECONDS
        while text not in self.shown:
            assert time.monotonic() < deadline, f"{text!r} never shown; the terminal showed {self.shown!r}"
            if not self._read(deadline - time.monotonic()):
                raise AssertionError(f"the terminal closed before showing {text!r}: {self.shown!r}")

    def type(self, keys: bytes) -> None:
        os.write(self.master, keys)

    def finish(self) -> tuple[int, str, str]:
        """Wait for the harness; return its exit code, stdout and stderr (everything shown is in ``shown``)."""
        out, err = self.proc.communicate(timeout=GUARD_SECONDS)
        while self._read(0):
            pass
        os.close(self.master)
        return self.proc.returncode, out.decode(), err.decode()

    def _read(self, timeout: float) -> bool:
        readable, _, _ = select.select([self.master], [], [], max(timeout, 0))
        if not readable:
            return timeout > 0
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: every slave descriptor is closed
            return False
        self.shown += chunk
        return bool(chunk)


def test_the_prompt_reads_without_echo() -> None:
    terminal = Terminal(purpose="repository /srv/team")
    terminal.expect(b"Password for repository /srv/team: ")
    terminal.type("s3cret-typed-pässwörd\n".encode())
    code, out, err = terminal.finish()
    assert (code, err) == (0, "")
    assert bytes.fromhex(out) == "s3cret-typed-pässwörd".encode()
    assert b"s3cret" not in terminal.shown, "echoed"
    assert terminal.shown.endswith(b"\r\n"), "the Enter the user typed is shown as a new line"


def test_confirm_asks_twice_and_accepts_the_same_password() -> None:
    terminal = Terminal(confirm=True)
    terminal.expect(b"Password for repository /r: ")
    terminal.type(b"s3cret-twice\n")
    terminal.expect(b"The same password again: ")
    terminal.type(b"s3cret-twice\n")
    code, out, err = terminal.finish()
    assert (code, bytes.fromhex(out), err) == (0, b"s3cret-twice", "")
    assert b"s3cret" not in terminal.shown


def test_confirm_fails_when_the_two_differ() -> None:
    terminal = Terminal(confirm=True)
    terminal.expect(b"Password for repository /r: ")
    terminal.type(b"s3cret-first\n")
    terminal.expect(b"The same password again: ")
    terminal.type(b"s3cret-second\n")
    code, out, err = terminal.finish()
    assert (code, out, err) == (2, "", "zerofs: the two passwords typed differ\n")
    assert b"s3cret" not in terminal.shown


@pytest.mark.parametrize("keys", [b"\n", b"\x04"], ids=["enter", "ctrl-d"])
def test_an_empty_typed_password_is_refused_without_asking_again(keys: bytes) -> None:
    terminal = Terminal(confirm=True)
    terminal.expect(b"Password for repository /r: ")
    terminal.type(keys)
    code, out, err = terminal.finish()
    assert (code, out, err) == (2, "", "zerofs: no password typed: an empty password is refused\n")
    assert b"again" not in terminal.shown


def test_ctrl_c_at_the_prompt_puts_echo_back() -> None:
    terminal = Terminal()
    terminal.expect(b"Password for repository /r: ")
    terminal.type(b"half-typ\x03")
    code, out, _ = terminal.finish()
    assert (code, out) == (130, "interrupted, echo on")
    assert b"half" not in terminal.shown


def test_a_source_outranks_the_terminal() -> None:
    terminal = Terminal(env={PASSWORD_VARIABLE: "from-variable"})
    code, out, err = terminal.finish()
    assert (code, bytes.fromhex(out), err) == (0, b"from-variable", "")
    assert terminal.shown == b"", "prompted although a source was set"


def test_no_prompt_when_stdin_is_not_a_terminal() -> None:
    """A pipeline (``producer | zerofs write``) never waits for a password: it fails at once."""
    terminal = Terminal(stdin_is_terminal=False)
    code, out, err = terminal.finish()
    assert (code, out, err) == (2, "", f"zerofs: {NO_PASSWORD}\n")
    assert terminal.shown == b"", "prompted on the controlling terminal"


def test_no_prompt_without_a_controlling_terminal() -> None:
    """stdin is a terminal, but not this session's (cron, a detached process): /dev/tty cannot be opened."""
    terminal = Terminal(controlling=False)
    code, out, err = terminal.finish()
    assert (code, out, err) == (2, "", f"zerofs: {NO_PASSWORD}\n")
    assert terminal.shown == b""


def test_no_terminal_at_all() -> None:
    result = run_harness(env={})
    assert (result.returncode, result.stdout, result.stderr) == (2, "", f"zerofs: {NO_PASSWORD}\n")


def test_a_process_that_read_a_password_dumps_no_core() -> None:
    """In a child process: after ``read_password`` no core limit is left, and the process is not dumpable."""
    script = (
        "import ctypes, os, resource\n"
        "from zerofs.cli.password import read_password\n"
        "assert ctypes.CDLL(None).prctl(3, 0, 0, 0, 0) == 1\n"  # PR_GET_DUMPABLE: dumpable before
        "read_password(purpose='r', confirm=False, environ={'ZEROFS_PASSWORD': 'pw'}, stdin_tty=False)\n"
        "print(ctypes.CDLL(None).prctl(3, 0, 0, 0, 0), *resource.getrlimit(resource.RLIMIT_CORE))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=True)
    assert proc.stdout.split() == ["0", "0", "0"]
