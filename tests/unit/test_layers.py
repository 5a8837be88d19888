"""The core takes configuration as arguments: no env reads, exits, prints or prompts outside cli/."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import zerofs

PACKAGE = Path(zerofs.__file__).parent
FORBIDDEN = {
    "os.environ": re.compile(r"\bos\.environ\b|\bos\.getenv\b"),
    "sys.exit": re.compile(r"\bsys\.exit\b"),
    "print(": re.compile(r"(?<![\w.])print\("),
    "input(": re.compile(r"(?<![\w.])input\("),
}


def core_sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "cli" not in p.relative_to(PACKAGE).parts)


def test_there_are_core_sources() -> None:
    names = {p.name for p in core_sources()}
    assert {"objects.py", "tree.py", "repo.py"} <= names


@pytest.mark.parametrize("what", sorted(FORBIDDEN))
def test_core_does_not_use(what: str) -> None:
    offenders = []
    for path in core_sources():
        for number, line in enumerate(path.read_text().splitlines(), 1):
            if FORBIDDEN[what].search(line):
                offenders.append(f"{path.relative_to(PACKAGE.parent)}:{number}: {line.strip()}")
    assert not offenders, f"{what} outside zerofs/cli/:\n" + "\n".join(offenders)


def test_only_the_repository_touches_its_store() -> None:
    """Services, mount, tree, history, content and the CLI go through Repository's methods, never its store.

    The import-linter contract forbids importing zerofs.store above repo.py; this catches an
    attribute reached at run time instead (``repo._store``, or a ``.store`` of old).
    """
    pattern = re.compile(r"\b(repo|repository|source\.repo|sink\.repo)\._?store\b")
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        relative = path.relative_to(PACKAGE)
        if relative.parts[0] == "store" or relative.name == "repo.py":
            continue
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if pattern.search(code) and "zerofs.store" not in code:
                offenders.append(f"{relative}:{number}: {line.strip()}")
    assert not offenders, "reaching into the repository's store:\n" + "\n".join(offenders)
