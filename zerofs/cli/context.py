"""Find and open the repository a command names: the one place every command opens it.

Each command receives the options it shares with the others as a
``Shared`` (``options.command`` builds it) and opens its repository with
``with_repository``. ``Shared.settings`` gives the location and the config
file's defaults to the commands that read those too (init, import, clone,
mount, push, pull); ``open_repository`` is the step below.

Where the repository is: ``--repo PATH``, else ``$ZEROFS_REPO``, else the
``repository`` key of the ``-c/--config`` TOML file, else
``$XDG_DATA_HOME/zerofs`` (or ``~/.local/share/zerofs``). A command run
before ``init`` fails with the exact ``init`` command to run; only ``init``
creates a repository. This module imports nothing heavy: the fast path for
``cat`` and ``ls`` uses it.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Final, NamedTuple, TypeVar

from zerofs.errors import Hint, IncompleteError, RepositoryError, UsageError
from zerofs.paths import one_line
from zerofs.repo import Repository, is_s3_path

if TYPE_CHECKING:
    from collections.abc import Callable

    from zerofs.keycache import KeyCache
    from zerofs.repo import S3Settings

REPOSITORY_ARGUMENTS: Final = ("DESTINATION", "SOURCE")
"""Command arguments that name a second repository (push, pull): ``locate``'s ``source``."""


class Settings(NamedTuple):
    """Where the repository is and the defaults a config file supplies."""

    repo_path: str
    source: str
    defaults: dict[str, object]


def load_config(path: str) -> dict[str, object]:
    """Read a zerofs TOML config file.

    Raises:
        UsageError: the file is missing, larger than ``CONFIG_MAX_BYTES`` or not valid TOML.
    """
    import tomllib  # only when a config file is named

    try:
        text = _read_config_bytes(path).decode("utf-8")
        data = tomllib.loads(text)
    except UnicodeDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: it is not UTF-8 text") from exc
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"config file {path} is not valid TOML: {exc}") from exc
    unknown = set(data) - {"repository", "defaults"}
    if unknown:
        raise UsageError(
            f"config file {path}: unknown key(s) {', '.join(sorted(unknown))} (known: repository, [defaults])"
        )
    return data


CONFIG_MAX_BYTES: Final = 1 << 20
"""A config file holds a few lines; anything larger is not one (``-c /dev/zero`` must not fill memory)."""


def _read_config_bytes(path: str) -> bytes:
    """The bytes of config file ``path``, at most ``CONFIG_MAX_BYTES`` of them.

    Read with a limit, not whole: ``-c /dev/zero`` would fill memory. A pipe
    (``-c <(...)``) and ``/dev/null`` still work.

    Raises:
        UsageError: naming the file and why it cannot be read, or that it is too large.
    """
    try:
        with open(path, "rb") as handle:
            data = handle.read(CONFIG_MAX_BYTES + 1)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except OSError as exc:
        raise UsageError(f"cannot read config file {path}: {exc.strerror or exc}") from exc
    if len(data) > CONFIG_MAX_BYTES:
        raise UsageError(f"config file {path} is too large to be one (over {CONFIG_MAX_BYTES >> 20} MiB)")
    return data


CONFIG_DEFAULTS: Final[dict[str, type]] = {"parents": bool, "skip_errors": bool, "compression_level": int}
"""The keys a config file's ``[defaults]`` table may hold, and the TOML type of each."""

COMPRESSION_LEVELS: Final = range(1, 20)
"""The zstd levels ``compression_level`` may name (20 and above need far more memory to read)."""


def settings(repo: str | None, config: str | None) -> Settings:
    """Resolve the repository location from options, environment and config.

    Raises:
        UsageError: ``--repo ''`` or ``--config ''`` (a script's unset variable), or a bad config file.
    """
    if repo == "":
        raise UsageError("--repo is empty: name the repository's directory or s3://BUCKET/PREFIX")
    if config == "":
        raise UsageError("--config is empty: name a TOML file")
    data: dict[str, object] = load_config(config) if config is not None else {}
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise UsageError(f"config file {config}: [defaults] must be a table")
    _check_defaults(defaults, str(config))
    if repo is not None:
        return Settings(_repo_path(repo, "--repo"), "--repo", defaults)
    env = os.environ.get("ZEROFS_REPO")
    if env:
        return Settings(_repo_path(env, "$ZEROFS_REPO"), "$ZEROFS_REPO", defaults)
    configured = data.get("repository")
    if configured:
        if not isinstance(configured, str):
            raise UsageError(f"config file {config}: repository must be a string")
        return Settings(_repo_path(configured, f"config {config}"), f"config {config}", defaults)
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Settings(os.path.join(xdg, "zerofs"), "default", defaults)


def _check_defaults(defaults: dict[str, object], config: str) -> None:
    """Refuse a ``[defaults]`` key zerofs does not know, or a value of the wrong type (``parents = "yes"``).

    Checked for every command, so a typo fails where it is, not silently in
    the one command that would read it.

    Raises:
        UsageError: naming the file, the key and what it must be.
    """
    for key, value in defaults.items():
        kind = CONFIG_DEFAULTS.get(key)
        if kind is None:
            known = ", ".join(CONFIG_DEFAULTS)
            raise UsageError(f"config file {config}: unknown key {key!r} in [defaults] (known: {known})")
        if type(value) is not kind:  # not isinstance: TOML's true is no compression level
            article = "an integer" if kind is int else "true or false"
            raise UsageError(f"config file {config}: [defaults] {key} must be {article}, not {value!r}")
    level = defaults.get("compression_level", COMPRESSION_LEVELS.start)
    if level not in COMPRESSION_LEVELS:
        raise UsageError(
            f"config file {config}: [defaults] compression_level must be from "
            f"{COMPRESSION_LEVELS.start} to {COMPRESSION_LEVELS.stop - 1}, not {level!r}"
        )


def locate(text: str, source: str) -> Settings:
    """Where another repository is, as named on the command line (push's DEST, pull's SRC).

    The one parser of such names: a path now; object storage (``s3://``)
    extends it. ``source`` names the argument in messages.

    Raises:
        UsageError: the name cannot be a repository's.
    """
    return Settings(_repo_path(text, source), source, {})


def is_same_repository(first: Settings, second: Settings) -> bool:
    """True if both name one repository (through any path: symlinks, ``..``; an S3 URL by its text)."""
    if is_s3_path(first.repo_path) or is_s3_path(second.repo_path):
        return first.repo_path.rstrip("/") == second.repo_path.rstrip("/")
    try:
        return os.path.samefile(first.repo_path, second.repo_path)
    except OSError:  # one of them does not exist: opening it will say so
        return False


def _repo_path(text: str, source: str) -> str:
    """The repository path ``source`` gives, with ``~`` expanded.

    Raises:
        UsageError: it holds a NUL, or names the home of a user that does not exist.
    """
    if "\0" in text:
        raise UsageError(f"invalid repository path {text!r} ({source}): contains NUL")
    path = os.path.expanduser(text)
    if path.startswith("~"):  # expanduser leaves ~nosuchuser (or ~ without a home) as it was
        raise UsageError(f"cannot expand {text!r} ({source}): no such user, or no home directory")
    return path


def user_cache_dir() -> str:
    """Where this user's zerofs caches live: ``$XDG_CACHE_HOME/zerofs``, else ``~/.cache/zerofs``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "zerofs")


def s3_mount_dir(url: str) -> str:
    """Where this host keeps the mounts of the S3 repository at ``url`` (records, sockets, spill files)."""
    import hashlib

    return os.path.join(user_cache_dir(), "s3-mounts", hashlib.sha256(url.encode()).hexdigest()[:32])


def s3_settings(path: str) -> S3Settings | None:
    """For an ``s3://`` repository, the AWS settings of this environment (variables and files); else None.

    Raises:
        UsageError: a malformed setting; ObjectStoreAccessError: no credentials.
    """
    if not is_s3_path(path):
        return None
    from zerofs.repo import s3_settings_from_environment

    return s3_settings_from_environment(os.environ, os.path.expanduser("~"))


def open_repository(
    found: Settings,
    *,
    readonly: bool = False,
    writer_lease: bool = True,
    cache_dir: str | None = None,
    settle_mounts: bool = True,
    may_ask_password: bool = True,
) -> Repository:
    """Open the repository, or fail with the command that creates it (``writer_lease``: see Repository.open).

    An encrypted repository is opened with its password (``repository_password``);
    ``may_ask_password`` false (completion): it is refused instead, and no password is read.

    ``settle_mounts``: first have every live mount commit what was written
    through it, so the command sees every write that returned to its program
    (``zerofs.mount.control``; a command that only reads warns and goes on
    if a mount does not answer in time).

    Raises:
        RepositoryError: no repository there, or it cannot be used.
        MountError: the command writes, and a live mount failed to commit.
    """
    path = found.repo_path
    if is_s3_path(path):
        if settle_mounts:  # this host's mounts of it; another host's commit on their own
            from zerofs.mount.control import commit_mounts

            commit_mounts(s3_mount_dir(path), writing=not readonly, warn=warn)
        aws = s3_settings(path)
        return with_password(
            found,
            lambda password: Repository.open(
                path,
                readonly=readonly,
                writer_lease=writer_lease,
                cache_dir=cache_dir or user_cache_dir(),
                s3_settings=aws,
                password=password,
                key_cache=key_cache(password),
            ),
            may_ask=may_ask_password,
        )
    if not Repository.exists(path):
        if os.path.exists(path) and not os.path.isdir(path):
            raise RepositoryError(
                f"{path} ({found.source}) is a file, not a zerofs repository "
                f"(pass {_naming(found)} the repository's directory)"
            )
        if _has_entries(path):  # init would refuse it: do not suggest init
            raise RepositoryError(
                f"no zerofs repository at {path} ({found.source}): it is a directory of other files "
                f"(pass {_naming(found)} the repository's directory)"
            )
        how = (
            "zerofs init (or pass --repo to use another)" if found.source == "default" else f"zerofs --repo {path} init"
        )
        raise RepositoryError(f"no zerofs repository at {path} ({found.source}); create one with: {how}")
    if settle_mounts:
        from zerofs.mount.control import commit_mounts

        commit_mounts(path, writing=not readonly, warn=warn)
    return with_password(
        found,
        lambda password: Repository.open(
            path,
            readonly=readonly,
            writer_lease=writer_lease,
            cache_dir=cache_dir,
            password=password,
            key_cache=key_cache(password),
        ),
        may_ask=may_ask_password,
    )


T = TypeVar("T")

_passwords: dict[str, bytes] = {}
"""The passwords read in this process, by repository path: a command that opens a repository twice
(``mount`` checks it, then its forked process opens it) asks once. Never written anywhere."""
_dropped: dict[str, str] = {}
"""``ZEROFS_PASSWORD`` and ``ZEROFS_OTHER_PASSWORD`` as they were before they were dropped from the
environment: the second repository of a push or pull reads them too, as it would a file."""


def repository_password(found: Settings) -> bytes:
    """The password of the encrypted repository ``found`` names, read once a process (see ``cli/password.py``).

    The other repository of a push or pull (named by its DESTINATION or
    SOURCE) reads ``ZEROFS_OTHER_PASSWORD*`` if one is set, else the same
    variables as the first. ``ZEROFS_PASSWORD`` and ``ZEROFS_OTHER_PASSWORD``
    are dropped from the environment once read, so no process started
    later (a password command, ``fusermount3``) inherits them.

    Raises:
        UsageError: no password source and no terminal, or a source that cannot be read.
    """
    path = found.repo_path
    password = _passwords.get(path)
    if password is None:
        from zerofs.cli.password import OTHER, OWN, VALUE_VARIABLES, drop_password_variable, read_password

        _dropped.update((name, os.environ[name]) for name in VALUE_VARIABLES if os.environ.get(name))
        environ = {**os.environ, **_dropped}
        is_other = found.source in REPOSITORY_ARGUMENTS and any(environ.get(name) for name in OTHER)
        password = read_password(
            purpose=f"repository {path}",
            confirm=False,
            environ=environ,
            stdin_tty=sys.stdin.isatty(),
            sources=OTHER if is_other else OWN,
        )
        drop_password_variable(os.environ)
        _passwords[path] = password
    return password


KEY_CACHE_VARIABLE: Final = "ZEROFS_KEY_CACHE"


def key_cache(password: bytes | None) -> KeyCache | None:
    """This user's key cache (``zerofs.keycache``) for opening an encrypted repository with ``password``.

    None when there is no password (a plain repository, which needs no cache),
    with ``ZEROFS_KEY_CACHE=off``, or without a private runtime directory.

    The cache lives in ``$XDG_RUNTIME_DIR`` (else ``/run/user/UID``); an entry
    lasts 15 minutes after its last use, or ``ZEROFS_KEY_CACHE`` seconds.

    Raises:
        UsageError: ``ZEROFS_KEY_CACHE`` is neither ``off`` nor a whole number of seconds above zero.
    """
    if password is None:
        return None
    from zerofs.keycache import DEFAULT_LIFETIME_S, KeyCache

    setting = os.environ.get(KEY_CACHE_VARIABLE, "")
    if setting == "off":
        return None
    lifetime = DEFAULT_LIFETIME_S
    if setting:
        if not (setting.isascii() and setting.isdigit() and int(setting) > 0):
            raise UsageError(f"{KEY_CACHE_VARIABLE} is {one_line(setting)!r}: use off, or a number of seconds above 0")
        lifetime = float(setting)
    runtime = os.environ.get("XDG_RUNTIME_DIR") or f"/run/user/{os.geteuid()}"
    return KeyCache.open(runtime, lifetime)


def password_if_encrypted(found: Settings) -> bytes | None:
    """The password of ``found``'s repository if its config says so; None for a plain one (none read)."""
    return repository_password(found) if Repository.is_encrypted_at(found.repo_path) else None


def with_password(found: Settings, open_: Callable[[bytes | None], T], *, may_ask: bool = True) -> T:
    """Call ``open_`` with the repository's password if it is encrypted (None if not), asking for it only then.

    The config file tells a local repository's encryption cheaply. Where it
    cannot (an S3 repository; a config only the index still holds), the
    repository is opened without one first, and refuses with the password
    hint if it needs one: opening writes nothing before that. ``may_ask``
    false: no password is read, and an encrypted repository refuses so.
    """
    if not may_ask:
        return open_(None)
    password = password_if_encrypted(found)
    if password is not None:
        return open_(password)
    try:
        return open_(None)
    except RepositoryError as exc:
        if exc.hint is not Hint.PASSWORD:
            raise
    return open_(repository_password(found))


class Shared(NamedTuple):
    """The options every command takes: which repository, and how to answer (``options.command`` declares them)."""

    repo: str | None
    config: str | None
    quiet: bool = False
    as_json: bool = False

    def settings(self) -> Settings:
        """Where the repository is, from ``--repo``, the environment and the config file."""
        return settings(self.repo, self.config)

    @property
    def is_silent(self) -> bool:
        """True for ``-q`` without ``--json``: a command that reads data checks it and prints nothing."""
        return self.quiet and not self.as_json

    def done(self, message: str) -> None:
        """Say on stderr what a command did, unless ``--quiet``."""
        if not self.quiet:
            sys.stderr.write(one_line(message) + "\n")


def fail_if_incomplete(what: str, left_out: int) -> None:
    """End a command that completed but left inputs out (each in a warning already shown) with its own exit code.

    A cron job tells a partial import from a complete one by the exit status
    alone (restic exits 3 for this; zerofs's 3 was taken, so 10).

    Raises:
        IncompleteError: ``left_out`` entries were left out.
    """
    if left_out:
        n = left_out
        raise IncompleteError(f"{what}, but left out {n} entr{'ies' if n != 1 else 'y'} (see the warnings above)")


def with_repository(
    where: Shared | Settings,
    *,
    readonly: bool = False,
    writer_lease: bool = True,
    cache_dir: str | None = None,
    settle_mounts: bool = True,
    may_ask_password: bool = True,
) -> Repository:
    """Open the repository a command names, to use in a ``with`` block (the options: see ``open_repository``).

    Raises:
        UsageError: a bad config file or repository path.
        RepositoryError: no repository there, or it cannot be used.
    """
    found = where.settings() if isinstance(where, Shared) else where
    return open_repository(
        found,
        readonly=readonly,
        writer_lease=writer_lease,
        cache_dir=cache_dir,
        settle_mounts=settle_mounts,
        may_ask_password=may_ask_password,
    )


def warn(message: str) -> None:
    """Print a warning on stderr, as one line whatever a host path in it holds: the command goes on."""
    sys.stderr.write(f"zerofs: warning: {one_line(message)}\n")


def _naming(found: Settings) -> str:
    """What names the repository on the command line: --repo, or a command's argument (push's DESTINATION)."""
    return found.source if found.source in REPOSITORY_ARGUMENTS else "--repo"


def _has_entries(path: str) -> bool:
    """True if ``path`` is a directory with something in it (False if it cannot be read)."""
    try:
        with os.scandir(path) as entries:
            return any(True for _ in entries)
    except OSError:
        return False
