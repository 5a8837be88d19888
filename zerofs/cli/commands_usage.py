"""Command bodies for issue #4 (usage): same contract as ``commands.py``.

Plain functions taking parsed values, named like the typer command that calls
them; commands.__getattr__ finds them for the fast path.
"""

from __future__ import annotations

import sys

from zerofs.cli.context import Settings, open_repository, settings
from zerofs.errors import CorruptionError


def du(
    store_paths: list[str], *, human: bool, repo: str | None, config: str | None, quiet: bool = False, as_json: bool
) -> None:
    """Show apparent, stored and unique bytes of store paths (default: /)."""
    from zerofs.cli import render
    from zerofs.history import resolve_revision
    from zerofs.paths import RevPath
    from zerofs.services.usage import PathUsage, disk_usage

    targets = [RevPath.parse(p) for p in store_paths or ["/"]]
    with open_repository(settings(repo, config), readonly=True) as repository:
        rows: list[PathUsage] = []
        for target in targets:
            commit_id = None if target.rev is None else resolve_revision(repository, target.rev)
            rows.extend(disk_usage(repository, [target.path], commit_id=commit_id, rev=target.rev))
    if not quiet or as_json:
        render.render_du(rows, human=human, as_json=as_json)


def stats(*, repo: str | None, config: str | None, quiet: bool = False, as_json: bool) -> None:
    """Show repository totals."""
    from zerofs.cli import render
    from zerofs.services.usage import repository_stats

    with open_repository(settings(repo, config), readonly=True) as repository:
        totals = repository_stats(repository)
    if as_json:
        render.print_json(render.stats_json(totals))
    elif not quiet:
        render.render_stats(totals)


def fsck(
    *, read_data: bool, rebuild_index: bool, repo: str | None, config: str | None, quiet: bool, as_json: bool
) -> None:
    """Check the repository (first rebuilding its index, if asked); print one line per finding and a summary.

    Raises:
        CorruptionError: anything was found with error severity (exit 6), after the output.
    """
    from zerofs.cli import render
    from zerofs.services.fsck import Finding, FsckProgress, Severity, check

    if rebuild_index:
        _rebuild_index(settings(repo, config), quiet=quiet or as_json)
    findings: list[Finding] = []
    summary = None
    out = sys.stdout
    with (
        open_repository(settings(repo, config), readonly=True) as repository,
        render.FsckBar(enabled=not quiet and not as_json and sys.stderr.isatty()) as bar,
    ):
        for event in check(repository, read_data=read_data):
            if isinstance(event, FsckProgress):
                bar.update(event.n_objects, event.read_bytes)
            elif isinstance(event, Finding):
                findings.append(event)
                if not as_json:
                    out.write(render.finding_line(event) + "\n")
            else:
                summary = event
    if summary is None:  # check() always ends with its summary
        raise CorruptionError("fsck ended without a summary")
    if as_json:
        render.print_json(
            {"findings": [render.finding_json(f) for f in findings], "summary": render.fsck_summary_json(summary)}
        )
    elif not quiet:
        out.write(render.fsck_summary_line(summary) + "\n")
    n_errors = sum(1 for f in findings if f.severity is Severity.ERROR)
    if n_errors:
        out.flush()
        raise CorruptionError(f"fsck found {n_errors} problem{'s' if n_errors != 1 else ''} (see above)")


def _rebuild_index(found: Settings, *, quiet: bool) -> None:
    """Rebuild the index from the packs; report what was found on stderr (stdout is fsck's)."""
    from zerofs.repo import Repository, is_s3_path

    if is_s3_path(found.repo_path):
        with open_repository(found, writer_lease=False) as repository:
            result = repository.rebuild_shared_index()
    else:
        result = Repository.rebuild_index(found.repo_path)
    for problem in result.problems:
        sys.stderr.write(f"zerofs: warning: {problem}\n")
    if not quiet:
        head = result.head.hex()[:12] if result.head is not None else "none"
        sys.stderr.write(
            f"rebuilt the index from {result.n_packs} packs: {result.n_blobs} objects "
            f"({result.n_duplicates} duplicate copies), HEAD {head}\n"
        )
