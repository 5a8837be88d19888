"""A debug counter of the FUSE requests a mount serves, by kind, for benchmarks.

With ``ZEROFS_MOUNT_REQUEST_COUNTS=FILE`` in its environment, a mount process
counts every request it is sent (``lookup``, ``getattr``, ``getxattr``...) and
writes the counts to FILE as JSON when it exits. ``benchmarks/mount_bench.py``
divides them by the number of operations it made: requests per file created,
per file read. The count is taken where pyfuse3 calls the file system, so it
includes requests answered with an error (ENOSYS included, which the kernel
remembers for ``flush`` and stops sending). SIGUSR1 makes the mount process
write the counts so far to FILE as well: the benchmark takes one snapshot
before and one after each timed phase, and reports the difference.
"""

from __future__ import annotations

import inspect
import json
import os
import signal
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, Final

ENV: Final = "ZEROFS_MOUNT_REQUEST_COUNTS"
"""Read by the CLI's ``mount`` (the core reads no environment)."""


def count_requests(ops: Any, operations_class: type) -> Counter[str]:
    """Wrap every request handler of ``ops`` (an instance of a subclass of ``operations_class``) to count its calls."""
    counts: Counter[str] = Counter()
    for name, member in vars(operations_class).items():
        if not name.startswith("_") and inspect.iscoroutinefunction(member):
            setattr(ops, name, _counted(getattr(ops, name), name, counts))
    return counts


def write_on_signal(path: str, counts: Counter[str]) -> None:
    """Have SIGUSR1 write ``counts`` to ``path`` (call from the main thread, before serving)."""

    def on_signal(signum: int, frame: object) -> None:
        write_counts(path, counts)

    signal.signal(signal.SIGUSR1, on_signal)


def _counted(handler: Callable[..., Awaitable[Any]], name: str, counts: Counter[str]) -> Callable[..., Awaitable[Any]]:
    async def counted(*args: Any) -> Any:
        counts[name] += 1
        return await handler(*args)

    return counted


def write_counts(path: str, counts: Counter[str]) -> None:
    """Write ``counts`` to ``path`` as JSON (replacing it atomically)."""
    temporary = f"{path}.{os.getpid()}.tmp"
    with open(temporary, "w", encoding="utf-8") as out:
        json.dump(dict(sorted(counts.items())), out)
    os.replace(temporary, path)
