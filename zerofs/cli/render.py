"""Turn service results into output: rich on a TTY, plain lines when piped, or JSON.

The human and JSON forms come from the same result objects. rich is
imported only when a TTY needs it, so piped output starts fast.
"""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterable
from typing import IO, TYPE_CHECKING, Any

from zerofs.objects import DirEntry, Kind
from zerofs.paths import one_line

if TYPE_CHECKING:
    from zerofs.services.browse import Listed, LogEntry, StatInfo

KIND_NAMES = {Kind.FILE: "file", Kind.DIR: "dir", Kind.SYMLINK: "symlink", Kind.SPECIAL: "special"}
SPECIAL_NAMES = {stat.S_IFIFO: "fifo", stat.S_IFSOCK: "socket", stat.S_IFCHR: "chardev", stat.S_IFBLK: "blockdev"}
"""The JSON ``type`` of a special file, by the file type in its entry's mode."""


def type_name(entry: DirEntry) -> str:
    """The documented JSON ``type`` of an entry: file, dir, symlink, fifo, socket, chardev or blockdev."""
    if entry.kind is Kind.SPECIAL:
        return SPECIAL_NAMES.get(stat.S_IFMT(entry.mode), "special")
    return KIND_NAMES[entry.kind]


def device_text(device: int) -> str:
    """A device number as ``ls -l`` shows it in place of the size: ``major,minor``."""
    return f"{os.major(device)},{os.minor(device)}"


def is_tty(stream: IO[str] | None = None) -> bool:
    """True if ``stream`` (default stdout) is an interactive terminal."""
    return (stream or sys.stdout).isatty()


def use_rich() -> bool:
    """True when stdout is a terminal: rich tables for people (NO_COLOR only drops the colours)."""
    return is_tty()


def console(stderr: bool = False) -> Any:
    """Return a rich Console (imported lazily)."""
    from rich.console import Console  # 70 ms; only TTY output needs it

    return Console(stderr=stderr, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)


def fs(name: bytes) -> str:
    """Decode a stored name for display (undecodable bytes escaped)."""
    return os.fsdecode(name)


def iso_time(time_ns: int) -> str:
    """Format nanoseconds since the epoch as local ISO time (seconds)."""
    import datetime  # only long listings, stat and log print times

    return datetime.datetime.fromtimestamp(time_ns / 1e9).astimezone().isoformat(timespec="seconds")


def human_size(size: int) -> str:
    """Format a byte count like ls -h."""
    value = float(size)
    for unit in ("", "K", "M", "G", "T"):
        if value < 1024 or unit == "T":
            return f"{int(value)}B" if unit == "" else f"{value:.1f}{unit}"
        value /= 1024
    return str(size)


def entry_json(
    entry: DirEntry, path: str | None = None, target: bytes | None = None, device: int | None = None
) -> dict[str, object]:
    """Return the documented JSON form of a directory entry (a device's number as ``major``, ``minor``)."""
    data: dict[str, object] = {
        "name": fs(entry.name),
        "type": type_name(entry),
        "mode": f"{stat.S_IMODE(entry.mode):04o}",
        "uid": entry.uid,
        "gid": entry.gid,
        "size": entry.size_bytes,
        "mtime_ns": entry.mtime_ns,
        "atime_ns": entry.atime_ns,
        "ctime_ns": entry.ctime_ns,
        "id": entry.id.hex(),
    }
    if path is not None:
        data["path"] = path
    if target is not None:
        data["target"] = fs(target)
    if device is not None:
        data["major"] = os.major(device)
        data["minor"] = os.minor(device)
    return data


def content_json(path: str, data: bytes) -> dict[str, object]:
    """Return the documented JSON form of a file's contents for ``cat --json``."""
    try:
        return {"path": path, "size": len(data), "encoding": "utf-8", "content": data.decode("utf-8")}
    except UnicodeDecodeError:
        import base64

        return {"path": path, "size": len(data), "encoding": "base64", "content": base64.b64encode(data).decode()}


def print_json(data: object) -> None:
    """Write one JSON document to stdout."""
    sys.stdout.write(json.dumps(data, indent=2) + "\n")


def render_listing(rows: Iterable[Listed], *, long: bool, show_all: bool, recursive: bool, as_json: bool) -> None:
    """Render ``ls`` output."""
    visible = [r for r in rows if show_all or not r.entry.name.startswith(b".")]
    if as_json:
        print_json([entry_json(r.entry, str(r.path), r.target, r.device) for r in visible])
        return
    out = sys.stdout
    if use_rich():
        _rich_listing(visible, long=long, recursive=recursive)
        return
    for row in visible:
        name = str(row.path) if recursive else fs(row.entry.name)
        if long:
            size = device_text(row.device) if row.device is not None else str(row.entry.size_bytes)
            out.write(f"{stat.filemode(row.entry.mode)}\t{size}\t{iso_time(row.entry.mtime_ns)}\t{name}")
            if row.target is not None:
                out.write(f" -> {fs(row.target)}")
            out.write("\n")
        else:
            out.write(name + ("/" if row.entry.kind is Kind.DIR and recursive else "") + "\n")


def _styled_name(row: Listed, text: str) -> str:
    from rich.markup import escape

    if row.entry.kind is Kind.DIR:
        return f"[bold blue]{escape(text)}/[/]"
    if row.entry.kind is Kind.SYMLINK:
        target = f" -> {escape(fs(row.target))}" if row.target is not None else ""
        return f"[cyan]{escape(text)}[/]{target}"
    if row.entry.kind is Kind.SPECIAL:
        return f"[yellow]{escape(text)}[/]"
    if row.entry.mode & 0o111:
        return f"[green]{escape(text)}[/]"
    return escape(text)


def _rich_listing(rows: list[Listed], *, long: bool, recursive: bool) -> None:
    con = console()
    if not long:
        for row in rows:
            con.print(_styled_name(row, str(row.path) if recursive else fs(row.entry.name)))
        return
    from rich.table import Table

    table = Table(box=None, show_header=True, header_style="bold", pad_edge=False)
    for column, justify in (("mode", "left"), ("size", "right"), ("modified", "left"), ("name", "left")):
        table.add_column(column, justify=justify)  # type: ignore[arg-type]
    for row in rows:
        table.add_row(
            stat.filemode(row.entry.mode),
            device_text(row.device) if row.device is not None else human_size(row.entry.size_bytes),
            iso_time(row.entry.mtime_ns),
            _styled_name(row, str(row.path) if recursive else fs(row.entry.name)),
        )
    con.print(table)


def stat_json(info: StatInfo) -> dict[str, object]:
    """Return the documented JSON form of ``stat``."""
    data = entry_json(info.entry, str(info.path), info.target, info.device)
    data["name"] = fs(info.path.name) if not info.path.is_root else "/"
    data["entries"] = info.n_entries
    data["chunks"] = info.n_chunks
    data["commit"] = info.commit_id.hex()
    return data


def render_stat(info: StatInfo, *, as_json: bool) -> None:
    """Render ``stat`` output."""
    data = stat_json(info)
    if as_json:
        print_json(data)
        return
    rows = [
        ("path", str(info.path)),
        ("type", str(data["type"])),
        ("mode", stat.filemode(info.entry.mode) + f" ({data['mode']})"),
        ("size", str(info.entry.size_bytes)),
        ("uid/gid", f"{info.entry.uid}/{info.entry.gid}"),
        ("modified", iso_time(info.entry.mtime_ns)),
        ("accessed", iso_time(info.entry.atime_ns)),
        ("changed", iso_time(info.entry.ctime_ns)),
        ("id", info.entry.id.hex()),
    ]
    if info.n_entries is not None:
        rows.append(("entries", str(info.n_entries)))
    if info.n_chunks is not None:
        rows.append(("chunks", str(info.n_chunks)))
    if info.target is not None:
        rows.append(("target", fs(info.target)))
    if info.device is not None:
        rows.append(("device", device_text(info.device)))
    if use_rich():
        from rich.table import Table

        table = Table(box=None, show_header=False, pad_edge=False)
        table.add_column(style="bold")
        table.add_column()
        for key, value in rows:
            table.add_row(key, value)
        console().print(table)
        return
    for key, value in rows:
        sys.stdout.write(f"{key}\t{value}\n")


def log_json(item: LogEntry) -> dict[str, object]:
    """Return the documented JSON form of one commit."""
    commit = item.commit
    return {
        "commit": item.commit_id.hex(),
        "parents": [p.hex() for p in item.parent_ids],
        "root": commit.root_id.hex(),
        "time_ns": commit.time_ns,
        "author": commit.author,
        "message": commit.message,
        "operation": commit.operation,
    }


def render_log(items: Iterable[LogEntry], *, as_json: bool) -> None:
    """Render ``log``: one line per commit, or JSON lines."""
    out = sys.stdout
    if as_json:
        for item in items:
            out.write(json.dumps(log_json(item)) + "\n")
        return
    if use_rich():
        con = console()
        from rich.markup import escape

        for item in items:
            con.print(
                f"[yellow]{item.commit_id.hex()[:12]}[/] [dim]{iso_time(item.commit.time_ns)}[/] "
                f"{escape(one_line(item.commit.message))}"
            )
        return
    for item in items:
        out.write(f"{item.commit_id.hex()[:12]}\t{iso_time(item.commit.time_ns)}\t{one_line(item.commit.message)}\n")


def render_tree(rows: Iterable[Listed], root_label: str, *, as_json: bool) -> None:
    """Render ``tree``: indented when piped, a rich tree on a TTY."""
    if as_json:
        print_json([entry_json(r.entry, str(r.path), r.target) for r in rows])
        return
    items = list(rows)
    base = len(items[0].path.parts) if items else 0
    if use_rich():
        from rich.markup import escape
        from rich.tree import Tree

        top = Tree(f"[bold blue]{escape(root_label)}[/]")
        stack = [top]
        for row in items:
            depth = len(row.path.parts) - base
            del stack[depth + 1 :]
            node = stack[depth].add(_styled_name(row, fs(row.entry.name)))
            stack.append(node)
        console().print(top)
        return
    out = sys.stdout
    out.write(root_label + "\n")
    for row in items:
        depth = len(row.path.parts) - base
        suffix = "/" if row.entry.kind is Kind.DIR else ""
        target = f" -> {fs(row.target)}" if row.target is not None else ""
        out.write("    " * depth + fs(row.entry.name) + suffix + target + "\n")


# -- usage: du, stats, fsck (issue #4) ----------------------------------------------

if TYPE_CHECKING:
    from zerofs.services.fsck import Finding, FsckSummary
    from zerofs.services.usage import PathUsage, RepoStats


def du_json(usage: PathUsage) -> dict[str, object]:
    """Return the documented JSON form of one ``du`` row."""
    return {
        "path": str(usage.path),
        "type": KIND_NAMES.get(usage.kind, "file"),
        "apparent_bytes": usage.apparent_bytes,
        "stored_bytes": usage.stored_bytes,
        "unique_bytes": usage.unique_bytes,
        "objects": usage.n_objects,
    }


def render_du(rows: Iterable[PathUsage], *, human: bool, as_json: bool) -> None:
    """Render ``du``: a header and one tab-separated line per path, or a JSON array."""
    if as_json:
        print_json([du_json(row) for row in rows])
        return

    def size(value: int) -> str:
        return human_size(value) if human else str(value)

    out = sys.stdout
    out.write("apparent\tstored\tunique\tpath\n")
    for row in rows:
        out.write(f"{size(row.apparent_bytes)}\t{size(row.stored_bytes)}\t{size(row.unique_bytes)}\t{row.path}\n")


def _ratio(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def stats_json(stats: RepoStats) -> dict[str, object]:
    """Return the documented JSON form of ``stats``."""
    return {
        "logical_bytes": stats.logical_bytes,
        "stored_bytes": stats.stored_bytes,
        "reachable_stored_bytes": stats.reachable_stored_bytes,
        "content_bytes": stats.content_bytes,
        "content_stored_bytes": stats.content_stored_bytes,
        "dedup_ratio": _ratio(stats.dedup_ratio),
        "compression_ratio": _ratio(stats.compression_ratio),
        "objects": stats.n_objects,
        "objects_by_kind": dict(stats.objects_by_kind),
        "commits": stats.n_commits,
        "disk_bytes": stats.disk_bytes,
        "packs": stats.n_packs,
        "pack_bytes": stats.pack_bytes,
        "index_bytes": stats.index_bytes,
    }


def render_stats(stats: RepoStats) -> None:
    """Render ``stats`` as ``key<TAB>value`` lines (JSON goes through ``stats_json``)."""

    def sized(value: int | None) -> str:
        return "-" if value is None else f"{value} ({human_size(value)})"

    def ratio(value: float | None) -> str:
        return "-" if value is None else f"{value:.2f}x"

    rows = [
        ("logical", sized(stats.logical_bytes)),
        ("stored", sized(stats.stored_bytes)),
        ("reachable", sized(stats.reachable_stored_bytes)),
        ("content", sized(stats.content_bytes)),
        ("content stored", sized(stats.content_stored_bytes)),
        ("dedup ratio", ratio(stats.dedup_ratio)),
        ("compression ratio", ratio(stats.compression_ratio)),
        ("commits", str(stats.n_commits)),
        ("objects", f"{stats.n_objects} (" + ", ".join(f"{k} {n}" for k, n in stats.objects_by_kind.items()) + ")"),
        ("on disk", sized(stats.disk_bytes)),
        ("packs", f"{stats.n_packs}, {sized(stats.pack_bytes)}"),
        ("index", sized(stats.index_bytes)),
    ]
    for key, value in rows:
        sys.stdout.write(f"{key}\t{value}\n")


def finding_json(finding: Finding) -> dict[str, object]:
    """Return the documented JSON form of one fsck finding."""
    return {
        "kind": finding.kind.value,
        "severity": finding.severity.value,
        "object": None if finding.object_id is None else finding.object_id.hex(),
        "path": None if finding.path is None else str(finding.path),
        "commit": None if finding.commit_id is None else finding.commit_id.hex(),
        "detail": finding.detail,
    }


def finding_line(finding: Finding) -> str:
    """Return one line for a finding: severity, kind, path, object, commit, detail."""
    if finding.object_id is None:  # damage below the objects: the index, a pack, the ref log, the config
        return f"{finding.severity.value}: {finding.kind.value}: {finding.detail}"
    where = "commit" if finding.path is None else str(finding.path)
    commit = f" in commit {finding.commit_id.hex()[:12]}" if finding.commit_id is not None else ""
    return (
        f"{finding.severity.value}: {finding.kind.value}: {where} "
        f"(object {finding.object_id.hex()[:16]}{commit}): {finding.detail}"
    )


def fsck_summary_json(summary: FsckSummary) -> dict[str, object]:
    """Return the documented JSON form of fsck's summary."""
    return {
        "commits": summary.n_commits,
        "objects": summary.n_objects,
        "chunks": summary.n_chunks,
        "read_bytes": summary.read_bytes,
        "read_data": summary.is_read_data,
        "errors": summary.n_errors,
        "warnings": summary.n_warnings,
    }


def fsck_summary_line(summary: FsckSummary) -> str:
    """Return fsck's closing line."""
    chunks = "read and re-hashed" if summary.is_read_data else "checked for presence"
    return (
        f"checked {summary.n_commits} commits, {summary.n_objects} objects "
        f"({summary.n_chunks} chunks {chunks}, {human_size(summary.read_bytes)} read): "
        f"{summary.n_errors} errors, {summary.n_warnings} warnings"
    )


class FsckBar:
    """Objects and bytes checked so far, on stderr, only when enabled (stderr is a TTY)."""

    def __init__(self, enabled: bool) -> None:
        """Draw nothing unless ``enabled``."""
        self.enabled = enabled
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> FsckBar:
        if self.enabled:
            from rich.progress import DownloadColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("checking"),
                DownloadColumn(),
                TextColumn("{task.fields[objects]} objects"),
                TimeElapsedColumn(),
                console=console(stderr=True),
                transient=True,
            )
            self._task = self._progress.add_task("checking", total=None, objects=0)
            self._progress.start()  # after the task, so it is drawn at once
        return self

    def update(self, n_objects: int, read_bytes: int) -> None:
        """Show the latest counts."""
        if self._progress is not None:
            self._progress.update(self._task, completed=read_bytes, objects=n_objects)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
