"""Find and open the repository a command names.

Order: ``--repo PATH``, else ``$ZEROFS_REPO``, else the ``repository`` key
of the ``-c/--config`` TOML file, else ``$XDG_DATA_HOME/zerofs`` (or
``~/.local/share/zerofs``). A command run before ``init`` fails with the
exact ``init`` command to run; only ``init`` creates a repository. This
module imports nothing heavy: the fast path for ``cat`` and ``ls`` uses it.
"""

from __future__ import annotations

import os
from typing import NamedTuple

from zerofs.errors import RepositoryError, UsageError
from zerofs.repo import Repository


class Settings(NamedTuple):
    """Where the repository is and the defaults a config file supplies."""

    repo_path: str
    source: str
    defaults: dict[str, object]


def load_config(path: str) -> dict[str, object]:
    """Read a zerofs TOML config file.

    Raises:
        UsageError: the file is missing or not valid TOML.
    """
    import tomllib  # only when a config file is named

    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except FileNotFoundError:
        raise UsageError(f"config file not found: {path}") from None
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise UsageError(f"cannot read config file {path}: {exc}") from exc
    unknown = set(data) - {"repository", "defaults"}
    if unknown:
        raise UsageError(
            f"config file {path}: unknown key(s) {', '.join(sorted(unknown))} (known: repository, [defaults])"
        )
    return data


def settings(repo: str | None, config: str | None) -> Settings:
    """Resolve the repository location from options, environment and config."""
    data: dict[str, object] = load_config(config) if config else {}
    defaults = data.get("defaults", {})
    if not isinstance(defaults, dict):
        raise UsageError(f"config file {config}: [defaults] must be a table")
    if repo:
        return Settings(os.path.expanduser(repo), "--repo", defaults)
    env = os.environ.get("ZEROFS_REPO")
    if env:
        return Settings(os.path.expanduser(env), "$ZEROFS_REPO", defaults)
    configured = data.get("repository")
    if configured:
        if not isinstance(configured, str):
            raise UsageError(f"config file {config}: repository must be a string")
        return Settings(os.path.expanduser(configured), f"config {config}", defaults)
    xdg = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Settings(os.path.join(xdg, "zerofs"), "default", defaults)


def open_repository(found: Settings, *, readonly: bool = False, writer_lease: bool = True) -> Repository:
    """Open the repository, or fail with the command that creates it (``writer_lease``: see LmdbStore).

    Raises:
        RepositoryError: no repository there, or it cannot be used.
    """
    path = found.repo_path
    if not os.path.exists(os.path.join(path, "data.mdb")):
        how = "zerofs init" if found.source == "default" else f"zerofs --repo {path} init"
        if os.path.exists(path) and not os.path.isdir(path):
            raise RepositoryError(f"{path} is not a zerofs repository (it is not a directory)")
        raise RepositoryError(f"no zerofs repository at {path} ({found.source}); create one with: {how}")
    return Repository.open(path, readonly=readonly, writer_lease=writer_lease)
