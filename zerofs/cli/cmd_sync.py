"""Between repositories: ``push`` (copy this HEAD into another) and ``pull`` (the reverse).

Both run ``_transfer``, which opens the two repositories (never one
twice) and words a refusal for the side the user is on.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

from zerofs.cli.context import Settings, Shared, is_same_repository, locate, with_repository
from zerofs.cli.options import command
from zerofs.errors import ConflictError, UsageError

if TYPE_CHECKING:
    import typer

    from zerofs.repo import Repository
    from zerofs.services.sync import NotFastForwardError, TransferResult

FORCE_HELP = "Move the other HEAD even if it is not an ancestor (drops its commits)."
DRY_RUN_HELP = "Count what would be copied; change nothing."


@command()
def push(
    destination: Annotated[
        str, typer.Argument(metavar="DESTINATION", help="Repository to copy into (a directory made by init).")
    ],
    force: Annotated[bool, typer.Option("--force", "-f", help=FORCE_HELP)] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help=DRY_RUN_HELP)] = False,
    *,
    shared: Shared,
) -> None:
    """Copy this repository's HEAD, with the commits and objects DESTINATION lacks, and move its HEAD.

    Only what DESTINATION lacks is sent, so a small change costs little in a
    tree of any size; records are copied as stored and verified on the way.
    DESTINATION's HEAD moves last, by compare-and-swap, and only forward (its
    HEAD must be an ancestor of this one, or it must be fresh from init)
    unless --force. An interrupted push can simply be run again: it sends
    only what is still missing. Chunk sizes may differ between the two.
    An encrypted DESTINATION with another password reads it from
    ZEROFS_OTHER_PASSWORD_FILE, ZEROFS_OTHER_PASSWORD_COMMAND or
    ZEROFS_OTHER_PASSWORD. Example: zerofs push /mnt/backup/zerofs
    """
    here = shared.settings()
    there = locate(destination, "DESTINATION")
    _transfer("push", here, there, force=force, dry_run=dry_run, quiet=shared.quiet, as_json=shared.as_json)


@command()
def pull(
    source: Annotated[str, typer.Argument(metavar="SOURCE", help="Repository to copy from.")],
    force: Annotated[bool, typer.Option("--force", "-f", help=FORCE_HELP)] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", "-n", help=DRY_RUN_HELP)] = False,
    *,
    shared: Shared,
) -> None:
    """Copy SOURCE's HEAD, with the commits and objects this repository lacks, and move this HEAD to it.

    The reverse of push, with the same guarantees: only what is missing is
    copied, verified, and this repository's HEAD moves last, only forward
    unless --force. A live mount of this repository commits first and then
    shows the pulled tree. An encrypted SOURCE with another password reads
    it from ZEROFS_OTHER_PASSWORD_FILE, ZEROFS_OTHER_PASSWORD_COMMAND or
    ZEROFS_OTHER_PASSWORD. Example: zerofs pull /mnt/backup/zerofs
    """
    here = shared.settings()
    there = locate(source, "SOURCE")
    _transfer("pull", there, here, force=force, dry_run=dry_run, quiet=shared.quiet, as_json=shared.as_json)


def _transfer(
    verb: str, source: Settings, dest: Settings, *, force: bool, dry_run: bool, quiet: bool, as_json: bool
) -> None:
    """Open both repositories (never one twice), transfer, render.

    Raises:
        UsageError: both name the same repository.
        ConflictError: not a fast-forward (without ``force``), or the destination's HEAD moved.
    """
    from zerofs.cli.progress import TransferBar
    from zerofs.services.sync import NotFastForwardError, transfer

    if is_same_repository(source, dest):
        raise UsageError(f"{source.repo_path} and {dest.repo_path} are the same repository: nothing to {verb}")
    # The source is only read (a live mount on it commits first, like any reader);
    # the transfer takes the destination's writer lease itself, between two gcs.
    with (
        with_repository(source, readonly=True) as source_repo,
        with_repository(dest, readonly=dry_run, writer_lease=False) as dest_repo,
        TransferBar(not quiet and not as_json and sys.stderr.isatty(), f"{verb}ing") as bar,
    ):
        try:
            result = transfer(
                source_repo,
                dest_repo,
                force=force,
                dry_run=dry_run,
                on_progress=bar.update if bar.enabled else None,
            )
        except NotFastForwardError as exc:
            raise ConflictError(_not_fast_forward(verb, exc, source_repo, dest_repo)) from exc
    _render(verb, result, source.repo_path, dest.repo_path, quiet=quiet, as_json=as_json)


def _not_fast_forward(verb: str, exc: NotFastForwardError, source: Repository, dest: Repository) -> str:
    """Word a refused transfer for the side the user is on (the repository of --repo is "this")."""
    ids = f"its HEAD {exc.dest_head.hex()[:12]} is not an ancestor of {exc.source_head.hex()[:12]}"
    if verb == "push":
        return (
            f"push refused: {dest.path} has commits this repository lacks ({ids}); "
            f"pull first, or pass --force to replace its HEAD"
        )
    return (
        f"pull refused: this repository has commits {source.path} lacks ({ids}); "
        "pass --force to replace this repository's HEAD"
    )


def _render(verb: str, result: TransferResult, source: str, dest: str, *, quiet: bool, as_json: bool) -> None:
    from zerofs.cli import render

    if as_json:
        render.print_json(
            {
                "direction": verb,
                "source": source,
                "destination": dest,
                "dry_run": result.dry_run,
                "up_to_date": result.is_up_to_date,
                "fast_forward": result.is_fast_forward,
                "head_before": result.dest_head_before.hex(),
                "head_after": result.dest_head_after.hex(),
                "source_head": result.source_head.hex(),
                "commits": result.commits,
                "objects": result.objects,
                "bytes": result.stored_bytes,
            }
        )
        return
    if quiet:
        return
    # The destination's HEAD as it is or will be: across keys, the source's HEAD has another id there.
    new_head = (result.source_head_in_dest or result.source_head).hex()[:12]
    if result.is_up_to_date:
        sys.stderr.write(f"{dest} is up to date ({new_head})\n")
        return
    done = f"would {verb}" if result.dry_run else f"{verb}ed"
    forced = "" if result.is_fast_forward else " (forced: its old HEAD is no longer in its history)"
    sys.stderr.write(
        f"{done} {result.commits} commits, {result.objects} objects, {render.human_size(result.stored_bytes)} "
        f"{'to' if verb == 'push' else 'from'} {dest if verb == 'push' else source}: HEAD "
        f"{result.dest_head_before.hex()[:12]} -> {new_head}{forced}\n"
    )
