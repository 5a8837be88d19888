"""The key slots of an encrypted repository: ``key list``, ``key add``, ``key remove``, ``key passwd`` (#15).

The current password comes from the usual sources (``cli/password.py``:
``ZEROFS_PASSWORD_FILE``, ``ZEROFS_PASSWORD_COMMAND``, ``ZEROFS_PASSWORD``,
the terminal). A new one never does, so a script cannot add its own
password by mistake: it is typed twice on the terminal, or read from
``--new-password-file`` (restic's ``--new-password-file``).
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

import typer

from zerofs.cli.context import Settings, Shared, repository_password, with_repository
from zerofs.cli.options import command
from zerofs.errors import ConflictError

if TYPE_CHECKING:
    from zerofs.repo import KeySlotInfo, Repository

key_app = typer.Typer(
    name="key",
    help="Manage the passwords (key slots) of an encrypted repository.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

NEW_PASSWORD_FILE_HELP = (
    "Read the new password from FILE (one trailing newline removed) instead of asking twice on the terminal; "
    "ZEROFS_PASSWORD* give the current password only."
)
NewPasswordFile = Annotated[
    str | None, typer.Option("--new-password-file", metavar="FILE", show_default=False, help=NEW_PASSWORD_FILE_HELP)
]


@command()
def list_(*, shared: Shared) -> None:
    """List the key slots: their ids, their KDF cost (argon2id), and which one the password given opened."""
    from zerofs.cli import render

    with _opened(shared.settings()) as repository:
        slots = repository.list_keys()
    if shared.as_json:
        render.print_json([_slot_json(slot) for slot in slots])
        return
    if shared.quiet:
        return
    for slot in slots:
        current = "  (the password given)" if slot.is_current else ""
        sys.stdout.write(
            f"{slot.slot_id}  argon2id t={slot.time_cost} m={slot.memory_kib}KiB p={slot.parallelism}{current}\n"
        )


@command()
def add(
    new_password_file: NewPasswordFile = None,
    *,
    shared: Shared,
) -> None:
    """Add a key slot: a new password that opens the repository too (the current one keeps working)."""
    found = shared.settings()
    with _opened(found) as repository:
        slot_id = repository.add_key(repository_password(found), _new_password(found, new_password_file))
    _report(shared, {"added": slot_id}, f"added key slot {slot_id}")


@command()
def remove(
    slot_id: Annotated[str, typer.Argument(metavar="ID", show_default=False, help="The key slot (zerofs key list).")],
    force: Annotated[
        bool,
        typer.Option("--force", help="Remove even the slot the password given opens (it then opens nothing)."),
    ] = False,
    *,
    shared: Shared,
) -> None:
    """Remove a key slot: its password no longer opens the repository. The last slot is never removed."""
    found = shared.settings()
    with _opened(found) as repository:
        current = next((slot for slot in repository.list_keys() if slot.is_current), None)
        if not force and current is not None and current.slot_id == slot_id:
            raise ConflictError(
                f"key slot {slot_id} is the one the password given opens: "
                "use --force to remove it anyway (or zerofs key passwd to change that password)"
            )
        repository.remove_key(slot_id, repository_password(found))
    _report(shared, {"removed": slot_id}, f"removed key slot {slot_id}")


@command()
def passwd(
    new_password_file: NewPasswordFile = None,
    *,
    shared: Shared,
) -> None:
    """Change the password given to a new one: a new key slot replaces the one it opened."""
    found = shared.settings()
    with _opened(found) as repository:
        slot_id = repository.change_password(repository_password(found), _new_password(found, new_password_file))
    _report(shared, {"added": slot_id}, f"changed the password: key slot {slot_id} replaces the old one")


def _opened(found: Settings) -> Repository:
    """The repository, opened read-only with its current password (key slots live beside its data)."""
    return with_repository(found, readonly=True, settle_mounts=False)


def _new_password(found: Settings, file_path: str | None) -> bytes:
    """The new password: from ``file_path``, else typed twice on the terminal; never from ``ZEROFS_PASSWORD*``."""
    from zerofs.cli.password import FILE_VARIABLE, read_password

    environ = {} if file_path is None else {FILE_VARIABLE: file_path}
    return read_password(
        purpose=f"a new key of {found.repo_path}",
        confirm=True,
        environ=environ,
        stdin_tty=sys.stdin.isatty(),
    )


def _slot_json(slot: KeySlotInfo) -> dict[str, object]:
    return {
        "id": slot.slot_id,
        "kdf": "argon2id",
        "time_cost": slot.time_cost,
        "memory_kib": slot.memory_kib,
        "parallelism": slot.parallelism,
        "is_current": slot.is_current,
    }


def _report(shared: Shared, data: dict[str, object], message: str) -> None:
    """What a key command did: JSON on stdout with --json, else one line on stderr."""
    if shared.as_json:
        from zerofs.cli import render

        render.print_json(data)
    else:
        shared.done(message)
