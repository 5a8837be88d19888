"""Space: ``du`` (what store paths hold and would free) and ``stats`` (repository totals).

Both only read, and print the same result objects as text or JSON.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Optional

from zerofs.cli.completion import complete_store_path
from zerofs.cli.context import Shared, with_repository
from zerofs.cli.options import QUIET_DATA, command

if TYPE_CHECKING:
    import typer


@command(quiet_help=QUIET_DATA, context_settings={"help_option_names": ["--help"]})
def du(
    store_paths: Annotated[
        Optional[list[str]],  # noqa: UP045 (typer needs Optional for a list argument with a default)
        typer.Argument(metavar="STORE_PATH", autocompletion=complete_store_path, help="Paths to measure (default: /)."),
    ] = None,
    human: Annotated[bool, typer.Option("--human-readable", "-h", help="Sizes like 1.5M instead of bytes.")] = False,
    *,
    shared: Shared,
) -> None:
    """Show the apparent, stored and unique bytes of store paths.

    apparent: the sizes of the files below the path, counted once per path.
    stored: the records of the distinct objects the path reaches, after dedup
    and compression. unique: what deleting the path and running gc would free;
    history is retained, so content an earlier commit still holds is not
    unique. (-h means --human-readable here; use --help for help.)
    """
    from zerofs.cli import render
    from zerofs.history import resolve_revision
    from zerofs.paths import RevPath
    from zerofs.services.usage import PathUsage, disk_usage

    targets = [RevPath.parse(p) for p in store_paths or ["/"]]
    with with_repository(shared, readonly=True) as repository:
        rows: list[PathUsage] = []
        for target in targets:
            commit_id = None if target.rev is None else resolve_revision(repository, target.rev)
            rows.extend(disk_usage(repository, [target.path], commit_id=commit_id, rev=target.rev))
    if not shared.quiet or shared.as_json:
        render.render_du(rows, human=human, as_json=shared.as_json)


@command(quiet_help=QUIET_DATA)
def stats(*, shared: Shared) -> None:
    """Show repository totals: logical and stored bytes, dedup and compression ratios, objects.

    logical: the files of HEAD's tree. content: the distinct chunks history
    reaches, uncompressed. dedup ratio = logical / content; compression ratio
    = content / the records that store it. on disk: blocks of the repository
    directory, as du counts them; packs: the pack files (live and not yet
    reclaimed objects); index: the index's pages in use.
    """
    from zerofs.cli import render
    from zerofs.services.usage import repository_stats

    with with_repository(shared, readonly=True) as repository:
        totals = repository_stats(repository)
    if shared.as_json:
        render.print_json(render.stats_json(totals))
    elif not shared.quiet:
        render.render_stats(totals)
