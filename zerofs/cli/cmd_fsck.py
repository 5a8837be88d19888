"""``fsck``: check everything history reaches, and the storage below (first rebuilding the index, if asked).

The checks are ``services.fsck``'s; this module prints its findings as
they come and turns errors among them into exit 6 at the end.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Annotated

from zerofs.cli.context import Settings, Shared, warn, with_password, with_repository
from zerofs.cli.options import command
from zerofs.errors import CorruptionError

if TYPE_CHECKING:
    import typer


@command()
def fsck(
    read_data: Annotated[
        bool,
        typer.Option("--read-data", help="Also read every pack once, in order, and re-hash every object in it."),
    ] = False,
    rebuild_index: Annotated[
        bool,
        typer.Option(
            "--rebuild-index",
            help="First rebuild the index from the pack files and HEAD from the ref log (needs the repository "
            "to itself; on S3, index again what no intact index object names, while others write).",
        ),
    ] = False,
    *,
    shared: Shared,
) -> None:
    """Check that every object history reaches is present and matches its id, and the storage below.

    Nodes are always read, re-hashed and decoded; chunks are looked up in the
    index, or with --read-data read and re-hashed. The packs are checked
    against the index and HEAD against the ref log. Each problem is one line
    naming the store path it affects and the commit; exit status 6 if any.
    """
    # Raises CorruptionError (exit 6) after the output if anything was found with error severity.
    from zerofs.cli import render
    from zerofs.services.fsck import Finding, FsckProgress, Severity, check

    if rebuild_index:
        _rebuild_index(shared.settings(), quiet=shared.quiet or shared.as_json)
    findings: list[Finding] = []
    summary = None
    out = sys.stdout
    with (
        with_repository(shared, readonly=True) as repository,
        render.FsckBar(enabled=not shared.quiet and not shared.as_json and sys.stderr.isatty()) as bar,
    ):
        for event in check(repository, read_data=read_data):
            if isinstance(event, FsckProgress):
                bar.update(event.n_objects, event.read_bytes)
            elif isinstance(event, Finding):
                findings.append(event)
                if not shared.as_json:
                    out.write(render.finding_line(event) + "\n")
            else:
                summary = event
    if summary is None:  # check() always ends with its summary
        raise CorruptionError("fsck ended without a summary")
    if shared.as_json:
        render.print_json(
            {"findings": [render.finding_json(f) for f in findings], "summary": render.fsck_summary_json(summary)}
        )
    elif not shared.quiet:
        out.write(render.fsck_summary_line(summary) + "\n")
    n_errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    if n_errors:
        out.flush()
        raise CorruptionError(f"fsck found {n_errors} problem{'s' if n_errors != 1 else ''} (see above)")


def _rebuild_index(found: Settings, *, quiet: bool) -> None:
    """Rebuild the index from the packs; report what was found on stderr (stdout is fsck's)."""
    from zerofs.repo import Repository, is_s3_path

    if is_s3_path(found.repo_path):
        with with_repository(found, writer_lease=False) as repository:
            result = repository.rebuild_shared_index()
    else:
        result = with_password(found, lambda password: Repository.rebuild_index(found.repo_path, password))
    for problem in result.problems:
        warn(problem)
    if not quiet:
        head = result.head.hex()[:12] if result.head is not None else "none"
        sys.stderr.write(
            f"rebuilt the index from {result.n_packs} packs: {result.n_blobs} objects "
            f"({result.n_duplicates} duplicate copies), HEAD {head}\n"
        )
