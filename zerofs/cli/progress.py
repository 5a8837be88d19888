"""Progress bars on stderr, shown only when stderr is a terminal."""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Self

if TYPE_CHECKING:
    from zerofs.services.importer import ImportProgress
    from zerofs.services.sync import TransferProgress

_REFRESH_SECONDS = 0.1


class _Bar:
    def __init__(self, enabled: bool, label: str, unit: str = "files") -> None:
        self.enabled = enabled
        self.label = label
        self.unit = unit
        self._progress: Any = None
        self._task: Any = None
        self._last = 0.0

    def __enter__(self) -> Self:
        if self.enabled:
            from rich.console import Console
            from rich.progress import (
                DownloadColumn,
                Progress,
                SpinnerColumn,
                TextColumn,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            self._progress = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}"),
                DownloadColumn(),
                TransferSpeedColumn(),
                TextColumn("{task.fields[files]} " + self.unit),
                TimeElapsedColumn(),
                transient=True,
                # stderr, which is the terminal we checked; stdout may be a pipe carrying data.
                console=Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")), highlight=False),
            )
            # The task first, so start() draws it at once: a short operation still shows it.
            self._task = self._progress.add_task(self.label, total=None, files=0)
            self._progress.start()
        return self

    def _show(self, files: int, done_bytes: int) -> None:
        if self._progress is None:
            return
        now = time.monotonic()
        if now - self._last >= _REFRESH_SECONDS:
            self._last = now
            self._progress.update(self._task, completed=done_bytes, files=files)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()


class ImportBar(_Bar):
    """Files and bytes imported so far."""

    def __init__(self, enabled: bool) -> None:
        super().__init__(enabled, "importing")

    def update(self, progress: ImportProgress) -> None:
        """Called by the importer after each file."""
        self._show(progress.files, progress.bytes_total)


class ExportBar(_Bar):
    """Files and bytes exported so far."""

    def __init__(self, enabled: bool) -> None:
        super().__init__(enabled, "exporting")

    def update(self, files: int, written_bytes: int) -> None:
        """Called by the exporter after each file."""
        self._show(files, written_bytes)


class TransferBar(_Bar):
    """Objects and stored bytes copied so far by a push or pull."""

    def __init__(self, enabled: bool, label: str) -> None:
        """Show nothing unless ``enabled``; ``label`` is the verb ("pushing", "pulling")."""
        super().__init__(enabled, label, "objects")

    def update(self, progress: TransferProgress) -> None:
        """Called by the transfer after each object."""
        self._show(progress.objects, progress.stored_bytes)


class GcBar:
    """gc's phases on stderr: marking what kept commits reach, then objects deleted so far."""

    def __init__(self, enabled: bool) -> None:
        """Show nothing unless ``enabled`` (stderr is a terminal, not --quiet, not --json)."""
        self.enabled = enabled
        self._status: Any = None

    def __enter__(self) -> Self:
        if self.enabled:
            from rich.console import Console

            console = Console(stderr=True, no_color=bool(os.environ.get("NO_COLOR")), highlight=False)
            self._status = console.status("gc: marking what the kept commits reach")
            self._status.start()
            self._status.update("gc: marking what the kept commits reach")  # draws it now
        return self

    def update(self, phase: str, count: int) -> None:
        """Called by gc after marking ("marked", objects) and after each deletion step ("deleted", objects)."""
        if self._status is not None:
            what = {"marked": "objects reachable", "planned": "objects planned for deletion; waiting the grace period"}
            self._status.update(f"gc: {count:,} {what.get(phase, 'objects deleted')}")

    def __exit__(self, *exc: object) -> None:
        if self._status is not None:
            self._status.stop()
