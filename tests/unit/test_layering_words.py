"""The core never names a command-line option: only zerofs/cli/ spells ``--force``, ``--keep-daily`` ...

An error below the CLI says what went wrong and carries a ``Hint`` (what to
do); cli/hints.py words it. So no module outside zerofs/cli/ holds an
option-like string anywhere in its text: messages, docstrings or comments.
"""

from __future__ import annotations

import re
from pathlib import Path

import zerofs

PACKAGE = Path(zerofs.__file__).parent
OPTION_LIKE = re.compile(r"--[a-z]")


def core_sources() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if p.relative_to(PACKAGE).parts[0] != "cli")


def option_like_lines(path: Path) -> list[str]:
    """Each line of ``path`` that holds an option-like string, as ``file:line: text``."""
    relative = path.relative_to(PACKAGE.parent)
    lines = path.read_text().splitlines()
    return [f"{relative}:{n}: {line.strip()}" for n, line in enumerate(lines, 1) if OPTION_LIKE.search(line)]


def test_the_core_sources_are_all_read() -> None:
    names = {str(p.relative_to(PACKAGE)) for p in core_sources()}
    assert {"errors.py", "tree.py", "services/gc.py", "store/index.py", "mount/run.py"} <= names
    assert not any(name.startswith("cli/") for name in names)


def test_the_cli_does_spell_options_where_the_check_looks() -> None:
    """The pattern finds what it is for: the CLI's own words for the hints match it."""
    assert option_like_lines(PACKAGE / "cli" / "hints.py")


def test_no_module_outside_cli_names_an_option() -> None:
    offenders = [line for path in core_sources() for line in option_like_lines(path)]
    assert not offenders, "option-like strings outside zerofs/cli/ (raise a Hint instead):\n" + "\n".join(offenders)
