"""The start-up fast path behaves exactly like the typer app.

Every command line in the tables runs twice as ``python -m zerofs``: once as
users run it (the fast path takes what it understands) and once with
``ZEROFS_NO_FAST_PATH=1`` (typer parses everything). Stdout, stderr and the
exit code must be the same. Read-only lines share one repository; a line
that changes the repository gets a fresh copy of the same repository for
each run, at the same path, and the resulting trees are compared too.
Commit ids and times depend on the clock, so those two tables compare them
masked.

Each row also says whether the fast path is expected to take the line, so
that a fast path that gave up on everything cannot pass by comparing typer
with itself.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import CACHE_HOME, cli_env, zerofs_argv
from zerofs.cli import fast, spec

FAST = True
TYPER = False


@dataclass(frozen=True)
class Run:
    """What one run of zerofs printed and returned."""

    code: int
    stdout: bytes
    stderr: str


def run_cli(argv: list[str], *, fast_path: bool, input: bytes | None = None, env: dict[str, str] | None = None) -> Run:
    environment = cli_env(env)
    environment.pop("ZEROFS_NO_FAST_PATH", None)
    if not fast_path:
        environment["ZEROFS_NO_FAST_PATH"] = "1"
    proc = subprocess.run(
        zerofs_argv(*argv),
        input=input,
        capture_output=True,
        env=environment,
        timeout=120,
        check=False,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr.decode("utf-8", "replace"))


@dataclass(frozen=True)
class Place:
    """Where the placeholders in a table's command lines point."""

    repo: Path
    host: Path
    out: Path
    config: Path
    tmp: Path

    def expand(self, words: tuple[str, ...]) -> list[str]:
        names = {"repo": self.repo, "host": self.host, "out": self.out, "cfg": self.config, "tmp": self.tmp}
        return [word.format(**{k: str(v) for k, v in names.items()}) for word in words]


def make_host_tree(root: Path) -> Path:
    (root / "d" / "e").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"alpha\n")
    (root / ".hidden").write_bytes(b"secret\n")
    (root / "d" / "b.txt").write_bytes(b"bravo\n")
    (root / "d" / "e" / "c.txt").write_bytes(b"charlie\n")
    os.symlink("d/b.txt", root / "link")
    for path in sorted(root.rglob("*"), reverse=True):
        os.utime(path, ns=(1_600_000_000_000_000_000, 1_600_000_000_000_000_000), follow_symlinks=False)
    return root


def build_repo(place: Place) -> None:
    """init, import the host tree at /src, and two more commits, through the CLI."""
    for argv, data in (
        (["init", "-q"], None),
        (["import", "-q", str(place.host), "/src"], None),
        (["mkdir", "-q", "/empty"], None),
        (["write", "-q", "/notes.txt"], b"note\n"),
    ):
        result = run_cli(["--repo", str(place.repo), *argv], fast_path=False, input=data)
        assert result.code == 0, result.stderr


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory, repo_mode: str) -> Place:
    """A built repository and the host files around it, shared by the module."""
    base = tmp_path_factory.mktemp("fast_path")
    place = Place(
        repo=base / "repo", host=make_host_tree(base / "host"), out=base / "out", config=base / "zerofs.toml", tmp=base
    )
    place.config.write_text(f'repository = "{place.repo}"\n')
    (base / "bad.toml").write_text("repository = [\n")
    (base / "empty.toml").write_text("")
    build_repo(place)
    return place


# -- read-only command lines: one shared repository -----------------------------------

READ_ONLY: list[tuple[tuple[str, ...], bool]] = [
    # cat
    (("--repo", "{repo}", "cat", "/src/a.txt"), FAST),
    (("--repo", "{repo}", "cat", "/src/a.txt", "/src/d/b.txt", "/notes.txt"), FAST),
    (("--repo", "{repo}", "cat", "--", "/src/a.txt"), FAST),
    (("--repo", "{repo}", "cat", "/src/link"), FAST),
    (("--repo", "{repo}", "cat"), TYPER),
    (("--repo", "{repo}", "cat", "--"), TYPER),
    (("--repo", "{repo}", "cat", "/nope"), FAST),
    (("--repo", "{repo}", "cat", "/src/d"), FAST),
    (("--repo", "{repo}", "cat", "relative"), FAST),
    (("--repo", "{repo}", "cat", "-x", "/src/a.txt"), TYPER),
    (("--repo", "{repo}", "cat", "--json", "/src/a.txt"), FAST),
    (("--repo", "{repo}", "cat", "--jsonx", "/src/a.txt"), TYPER),  # unknown option: typer reports it
    (("--repo", "{repo}", "cat", "-h"), TYPER),
    (("--repo", "{repo}", "cat", "-q", "/src/a.txt", "/src/d/b.txt"), FAST),
    (("--repo", "{repo}", "cat", "--quiet", "/nope"), FAST),
    (("--repo", "{repo}", "cat", "-q", "--json", "/src/a.txt"), FAST),
    # ls
    (("--repo", "{repo}", "ls"), FAST),
    (("--repo", "{repo}", "ls", "/src"), FAST),
    (("--repo", "{repo}", "ls", "/src/a.txt"), FAST),
    (("--repo", "{repo}", "ls", "-l", "/src"), FAST),
    (("--repo", "{repo}", "ls", "-la", "/src"), FAST),
    (("--repo", "{repo}", "ls", "-al", "/src"), FAST),
    (("--repo", "{repo}", "ls", "-laR", "/src"), FAST),
    (("--repo", "{repo}", "ls", "-R"), FAST),
    (("--repo", "{repo}", "ls", "/src", "-a"), FAST),
    (("--repo", "{repo}", "ls", "--all", "--long", "--recursive", "/src"), FAST),
    (("--repo", "{repo}", "ls", "--json", "/src"), FAST),
    (("--repo", "{repo}", "ls", "-l", "-l", "/src"), FAST),
    (("--repo", "{repo}", "ls", "/src", "/src/d"), TYPER),
    (("--repo", "{repo}", "ls", "-l=1"), TYPER),
    (("--repo", "{repo}", "ls", "--long=yes"), TYPER),
    (("--repo", "{repo}", "ls", "--lon"), TYPER),
    (("--repo", "{repo}", "ls", "-lh"), TYPER),
    (("--repo", "{repo}", "ls", "--help"), TYPER),
    (("--repo", "{repo}", "ls", "--", "-l"), FAST),
    (("--repo", "{repo}", "ls", "-"), FAST),
    (("--repo", "{repo}", "ls", "/nope"), FAST),
    (("--repo", "{repo}", "ls", "/src/../src"), FAST),
    (("--repo", "{repo}", "ls", "-qR", "/src"), FAST),
    (("--repo", "{repo}", "ls", "-q", "/nope"), FAST),
    # stat, tree, log
    (("--repo", "{repo}", "stat", "/src/a.txt"), FAST),
    (("--repo", "{repo}", "stat", "--json", "/src"), FAST),
    (("--repo", "{repo}", "stat", "/"), FAST),
    (("--repo", "{repo}", "stat"), TYPER),
    (("--repo", "{repo}", "stat", "-q", "/src/a.txt"), FAST),
    (("--repo", "{repo}", "stat", "-q", "/nope"), FAST),
    (("--repo", "{repo}", "tree", "-q", "/src"), FAST),
    (("--repo", "{repo}", "log", "-q", "/src"), FAST),
    (("--repo", "{repo}", "tree"), FAST),
    (("--repo", "{repo}", "tree", "/src", "--json"), FAST),
    (("--repo", "{repo}", "tree", "/src/a.txt"), FAST),
    (("--repo", "{repo}", "log"), FAST),
    (("--repo", "{repo}", "log", "/src"), FAST),
    (("--repo", "{repo}", "log", "-n", "1"), FAST),
    (("--repo", "{repo}", "log", "-n1"), FAST),
    (("--repo", "{repo}", "log", "-n", "007"), FAST),
    (("--repo", "{repo}", "log", "--max-count=2", "--json"), FAST),
    (("--repo", "{repo}", "log", "-n", "0"), FAST),
    (("--repo", "{repo}", "log", "-n", "-1"), TYPER),
    (("--repo", "{repo}", "log", "-n", "x"), TYPER),
    (("--repo", "{repo}", "log", "-n", " 1"), TYPER),
    (("--repo", "{repo}", "log", "-n", "1.0"), TYPER),
    (("--repo", "{repo}", "log", "-n=1"), TYPER),
    (("--repo", "{repo}", "log", "-n"), TYPER),
    (("--repo", "{repo}", "log", "/src", "/empty"), TYPER),
    # where the repository comes from
    (("ls", "--repo", "{repo}", "/src"), FAST),
    (("ls", "--repo={repo}", "/src"), FAST),
    (("--repo={repo}", "ls"), FAST),
    (("-c", "{cfg}", "ls"), FAST),
    (("-c{cfg}", "ls"), FAST),
    (("--config={cfg}", "ls"), FAST),
    (("ls", "-c", "{cfg}"), FAST),
    (("ls", "-Rc", "{cfg}"), FAST),
    (("ls", "-Rc{cfg}"), FAST),
    (("--repo", "{tmp}/missing", "ls", "--repo", "{repo}"), FAST),
    (("--repo", "{repo}", "ls", "--repo", ""), FAST),
    (("--repo", "{tmp}/missing", "ls"), FAST),
    (("--repo", "{host}/a.txt", "ls"), FAST),
    (("-c", "{tmp}/missing.toml", "ls"), FAST),
    (("-c", "{tmp}/bad.toml", "ls"), FAST),
    (("-c", "{tmp}/empty.toml", "--repo", "{repo}", "ls"), FAST),
    (("ls", "--repo", "--json"), FAST),
    (("ls", "--repo"), TYPER),
    (("--repo",), TYPER),
    (("--repo", "{repo}", "--", "ls", "/src"), FAST),
    (("--repo", "{repo}", "--", "--json", "ls"), TYPER),
    # the root: help, version, debug, unknown commands and options
    ((), TYPER),
    (("--version",), TYPER),
    (("--repo", "{repo}", "--version", "ls"), TYPER),
    (("--help",), TYPER),
    (("-h",), TYPER),
    (("help",), FAST),
    (("help", "ls"), FAST),
    (("help", "nosuch"), FAST),
    (("nosuch",), TYPER),
    (("--repo", "{repo}"), TYPER),
    (("--repo", "{repo}", "--debug", "ls", "/src"), TYPER),
    (("--repo", "{repo}", "-l", "ls"), TYPER),
    (("--repo", "{repo}", "--json", "ls"), TYPER),
    (("--repo", "{repo}", "LS"), TYPER),
    (("--repo", "{repo}", "-cx"), TYPER),
]


@pytest.mark.parametrize(("words", "is_fast"), READ_ONLY, ids=[" ".join(w) or "(none)" for w, _ in READ_ONLY])
def test_read_only_lines_match_typer(template: Place, words: tuple[str, ...], is_fast: bool) -> None:
    argv = template.expand(words)
    assert (fast.parse(argv) is not None) == is_fast, "the fast path took a line it should leave, or the reverse"
    quick = run_cli(argv, fast_path=True)
    slow = run_cli(argv, fast_path=False)
    assert quick == slow
    assert "Traceback" not in quick.stderr


def test_environment_repository_matches_typer(template: Place) -> None:
    argv = ["ls", "-l", "/src"]
    assert fast.parse(argv) is not None
    env = {"ZEROFS_REPO": str(template.repo)}
    assert run_cli(argv, fast_path=True, env=env) == run_cli(argv, fast_path=False, env=env)


# -- command lines that change the repository: a fresh copy for each run ----------------

CHANGES: list[tuple[tuple[str, ...], bytes | None, bool]] = [
    (("clone", "/src", "/c"), None, FAST),
    (("clone", "/src"), None, FAST),
    (("clone",), None, FAST),
    (("clone", "-s", "/src", "-d", "/c"), None, FAST),
    (("clone", "--source=/src", "--destination", "/c"), None, FAST),
    (("clone", "-s/src", "/c"), None, FAST),
    (("clone", "/src", "/c", "-s", "/src"), None, FAST),
    (("clone", "/src", "/x/y/c"), None, FAST),
    (("clone", "-p", "/src", "/x/y/c"), None, FAST),
    (("clone", "/src", "/notes.txt"), None, FAST),
    (("clone", "-pf", "/src", "/notes.txt"), None, FAST),
    (("clone", "--json", "/src", "/c"), None, FAST),
    (("clone", "-q", "/src", "/c"), None, FAST),
    (("clone", "/src", "/c", "/d"), None, TYPER),
    (("clone", "-x", "/src", "/c"), None, TYPER),
    (("snapshot", "/src", "/s"), None, FAST),
    (("snap", "/src", "/s"), None, FAST),
    (("mkdir", "/m"), None, FAST),
    (("mkdir", "-p", "/m/n"), None, FAST),
    (("mkdir", "/m/n"), None, FAST),
    (("mkdir", "/empty"), None, FAST),
    (("mkdir", "-p", "/empty"), None, FAST),
    (("mkdir",), None, TYPER),
    (("write", "/w"), b"data\n", FAST),
    (("write", "-p", "--json", "/x/y/w"), b"data\n", FAST),
    (("write", "/src/d"), b"data\n", FAST),
    (("rm", "/src/a.txt"), None, FAST),
    (("rm", "/src"), None, FAST),
    (("rm", "-r", "/src"), None, FAST),
    (("rm", "-R", "--json", "/src"), None, FAST),
    (("rm", "-rf", "/nope"), None, FAST),
    (("rm", "/nope"), None, FAST),
    (("rm",), None, TYPER),
    (("mv", "/src/a.txt", "/b.txt"), None, FAST),
    (("mv", "/src/a.txt", "/src/d"), None, FAST),
    (("mv", "-f", "/src", "/empty"), None, FAST),
    (("mv", "/src/a.txt"), None, TYPER),
    (("import", "{host}", "/imp"), None, FAST),
    (("import", "--json", "{host}/d", "/imp"), None, FAST),
    (("import", "-p", "{host}/a.txt", "/x/y/a"), None, FAST),
    (("import", "{host}", "/x/y/imp"), None, FAST),
    (("import", "{tmp}/missing", "/imp"), None, FAST),
    (("import", "{host}"), None, TYPER),
    (("export", "/src", "{out}"), None, FAST),
    (("export", "--json", "/src/d", "{out}"), None, FAST),
    (("export", "/nope", "{out}"), None, FAST),
    (("export", "/src"), None, TYPER),
    (("init",), None, FAST),
]


@pytest.fixture
def fresh(template: Place, tmp_path: Path) -> tuple[Place, Place]:
    """A place whose repository can be reset to a copy of the template's, and the template."""
    place = Place(
        repo=tmp_path / "repo", host=template.host, out=tmp_path / "out", config=template.config, tmp=template.tmp
    )
    return place, template


def _reset(place: Place, template: Place) -> None:
    shutil.rmtree(place.repo, ignore_errors=True)
    shutil.rmtree(place.out, ignore_errors=True)
    shutil.copytree(template.repo, place.repo)
    # The host-file cache lives outside the repository, keyed by the repository's id, which the copy
    # keeps: without this, the second run of an import would find what the first one recorded.
    shutil.rmtree(Path(CACHE_HOME) / "zerofs", ignore_errors=True)


_MASKS = [
    (re.compile(rb"\b[0-9a-f]{12,64}\b"), b"<id>"),
    (re.compile(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d"), b"<time>"),
    (re.compile(rb'"time_ns": \d+'), b'"time_ns": <n>'),
]


def _masked(data: bytes) -> bytes:
    for pattern, replacement in _MASKS:
        data = pattern.sub(replacement, data)
    return data


def _outcome(place: Place, argv: list[str], input: bytes | None, fast_path: bool) -> tuple[object, ...]:
    result = run_cli(argv, fast_path=fast_path, input=input)
    after = run_cli(["--repo", str(place.repo), "tree", "/"], fast_path=False)
    exported = sorted(str(p.relative_to(place.out)) for p in place.out.rglob("*")) if place.out.exists() else None
    return (result.code, _masked(result.stdout), _masked(result.stderr.encode()), after.code, after.stdout, exported)


@pytest.mark.parametrize(("words", "input", "is_fast"), CHANGES, ids=[" ".join(w) for w, _, _ in CHANGES])
def test_changing_lines_match_typer(
    fresh: tuple[Place, Place], words: tuple[str, ...], input: bytes | None, is_fast: bool
) -> None:
    place, template = fresh
    argv = ["--repo", str(place.repo), *place.expand(words)]
    assert (fast.parse(argv) is not None) == is_fast, "the fast path took a line it should leave, or the reverse"
    _reset(place, template)
    quick = _outcome(place, argv, input, fast_path=True)
    _reset(place, template)
    slow = _outcome(place, argv, input, fast_path=False)
    assert quick == slow
    assert b"Traceback" not in quick[2]


def test_init_of_a_new_repository_matches_typer(tmp_path: Path) -> None:
    for words in (["init"], ["init", "--json"], ["init", "-q"]):
        runs = []
        for fast_path in (True, False):
            shutil.rmtree(tmp_path / "new", ignore_errors=True)
            runs.append(run_cli(["--repo", str(tmp_path / "new"), *words], fast_path=fast_path))
        assert runs[0] == runs[1]
        assert runs[0].code == 0


# -- the fast path stays fast, and its spec stays true ----------------------------------


def test_fast_path_imports_no_typer_click_rich_or_pydantic(template: Place) -> None:
    code = (
        "import sys\n"
        "from zerofs.cli.main import main\n"
        f"for argv in (['--repo', {str(template.repo)!r}, 'cat', '/src/a.txt'],\n"
        f"             ['--repo', {str(template.repo)!r}, 'ls', '-la', '/src'],\n"
        f"             ['--repo', {str(template.repo)!r}, 'log', '-n', '1']):\n"
        "    assert main(argv) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('typer', 'click', 'rich', 'pydantic'))\n"
        "print(heavy, file=sys.stderr)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, env=cli_env(), timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.decode().strip() == "[]"


def test_spec_file_is_up_to_date() -> None:
    assert spec.is_current(), "zerofs/cli/spec_data.py is stale: run python -m zerofs.cli.spec"


def test_every_command_function_takes_the_spec_parameters() -> None:
    built = spec.build_spec()
    for name, command in built["commands"].items():
        if not command["function"]:  # a group of subcommands (zerofs key): typer alone runs them
            assert not command["is_fast"], name
            continue
        module, _, name = command["function"].partition(":")
        function = getattr(importlib.import_module(f"zerofs.cli.{module}"), name)
        expected = {param["name"] for param in command["params"]}
        # ctx: the typer context, through which typer passes the global --repo/--config (the fast path merges them)
        assert set(inspect.signature(function).parameters) - {"ctx"} == expected, name
        assert command["is_fast"], f"{name}: the fast path cannot run this command at all"
