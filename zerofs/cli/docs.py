"""Generate the man pages and shell completion scripts from the typer app.

``python -m zerofs.cli.docs`` rewrites ``man/`` and ``completions/``;
``--check`` exits 1 if a shipped file differs from what the CLI would
generate (a test runs it). Nothing here is hand-edited output: help texts,
options and exit codes come from the same definitions as ``--help``.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from zerofs import __version__
from zerofs.cli.hints import exit_codes
from zerofs.cli.main import COMPLETE_VAR

SHELLS = {"bash": "zerofs.bash", "zsh": "_zerofs", "fish": "zerofs.fish"}
DATE = "2026-11-24"

EXAMPLES: dict[str, list[tuple[str, str]]] = {
    "init": [
        ("Create the default repository", "zerofs init"),
        ("Create one at a chosen place", "zerofs --repo /srv/zerofs init"),
    ],
    "upgrade": [("Convert a repository made by zerofs 0.1", "zerofs --repo ~/old-repo upgrade")],
    "import": [
        ("Import a directory", "zerofs import ~/photos /photos"),
        ("Import again: unchanged files are skipped", "zerofs import ~/photos /photos"),
    ],
    "clone": [
        ("Snapshot a directory, instantly", "zerofs clone /photos /snapshots/2026-11-24"),
        (
            "From cron, with a config file",
            "zerofs clone -c /etc/zerofs/config.toml --source /data --destination /snapshots/daily/$(date +%F) -p",
        ),
    ],
    "mount": [
        ("Mount the default repository, read-write, in the background", "mkdir -p ~/z && zerofs mount ~/z"),
        ("Restore a snapshot by renaming, in O(1)", "mv ~/z/data ~/z/data-broken && mv ~/z/snapshots/d1 ~/z/data"),
        ("A read-only view of an older tree", "zerofs mount --at HEAD~5 ~/old"),
        ("Stay attached, committing every second", "zerofs mount --foreground --commit-interval 1 ~/z"),
    ],
    "umount": [("Commit what is pending and unmount", "zerofs umount ~/z")],
    "snapshot": [("Same as clone", "zerofs snapshot /photos /snapshots/again")],
    "snap": [("Same as clone", "zerofs snap /photos /snapshots/x")],
    "write": [("Store standard input as a file", "echo hi | zerofs write /notes/today.txt -p")],
    "mkdir": [("Create a directory and its parents", "zerofs mkdir -p /a/b/c")],
    "rm": [("Remove a directory and what is in it", "zerofs rm -r /snapshots/old")],
    "mv": [("Rename, in O(1) whatever the size", "zerofs mv /data /data-broken")],
    "ls": [("Long listing", "zerofs ls -l /snapshots"), ("For scripts", "zerofs ls --json /photos")],
    "cat": [
        ("Copy a file out of the store", "zerofs cat /photos/2019/a.jpg > a.jpg"),
        ("Read a file back and check every chunk, printing nothing", "zerofs cat -q /images/disk.img"),
    ],
    "stat": [
        ("Metadata and node id", "zerofs stat /photos"),
        (
            "In a script: does today's snapshot exist?",
            "zerofs stat -q /snapshots/$(date +%F) || zerofs clone /data /snapshots/$(date +%F)",
        ),
    ],
    "tree": [("Everything below a directory", "zerofs tree /photos")],
    "log": [
        ("The last five commits", "zerofs log -n 5"),
        ("Commits that changed a path", "zerofs log /photos"),
        ("JSON lines", "zerofs log --json"),
    ],
    "export": [("Restore a snapshot to the host", "zerofs export /snapshots/2026-11-24 ~/restored")],
    "du": [
        ("Apparent, stored and unique bytes of the snapshots", "zerofs du -h /snapshots"),
        ("For scripts", "zerofs du --json /data /snapshots"),
    ],
    "stats": [("Dedup and compression ratios, object counts", "zerofs stats"), ("For scripts", "zerofs stats --json")],
    "fsck": [
        ("Check every node history reaches, chunks in the index, packs against it", "zerofs fsck"),
        ("Also read every pack once and re-hash every chunk", "zerofs fsck --read-data"),
        (
            "After damage to the index: rebuild it from the packs, then check everything",
            "zerofs fsck --rebuild-index --read-data",
        ),
    ],
    "diff": [
        ("What the last commit changed", "zerofs diff HEAD~1 HEAD"),
        ("A snapshot against the live tree, with byte counts", "zerofs diff /snapshots/monday /data --stat"),
        ("A path in an older commit against now", "zerofs diff 3f9a2c1:/data /data"),
        ("For scripts", "zerofs diff --json HEAD~5 HEAD"),
    ],
}

ENVIRONMENT = [
    ("ZEROFS_REPO", "The repository, when --repo is not given."),
    ("XDG_DATA_HOME", "The default repository is $XDG_DATA_HOME/zerofs (else ~/.local/share/zerofs)."),
    ("ZEROFS_PASSWORD_FILE", "An encrypted repository's password: the file's bytes, less one trailing newline."),
    (
        "ZEROFS_PASSWORD_COMMAND",
        "An encrypted repository's password: this command's output (run without a shell).",
    ),
    (
        "ZEROFS_PASSWORD",
        "An encrypted repository's password (a file or command outranks it); else the terminal.",
    ),
    (
        "ZEROFS_KEY_CACHE",
        "off: run the password's KDF in every process. A number: seconds an unused cached key lives (default 900).",
    ),
    (
        "XDG_RUNTIME_DIR",
        "Where the key cache keeps an encrypted repository's unlocked key (else /run/user/UID); must be mode 0700.",
    ),
    (
        "ZEROFS_OTHER_PASSWORD_FILE, ZEROFS_OTHER_PASSWORD_COMMAND, ZEROFS_OTHER_PASSWORD",
        "The password of push's DESTINATION or pull's SOURCE when it differs; if none is set, as the first's.",
    ),
    ("NO_COLOR", "When set, no colours on a terminal."),
    ("ZEROFS_DEBUG", "When 1, internal errors show a Python traceback (as --debug does)."),
]


def _esc(text: str) -> str:
    """Escape text for roff."""
    lines = text.replace("\\", "\\e").replace("-", "\\-").splitlines()
    return "\n".join(("\\&" + line) if line.startswith((".", "'")) else line for line in lines)


def _command() -> Any:
    import typer.main

    from zerofs.cli.app import app

    return typer.main.get_command(app)


def _option_rows(command: Any) -> list[tuple[str, str]]:
    rows = []
    for param in command.params:
        if param.param_type_name != "option" or param.hidden:
            continue
        names = ", ".join(param.opts + param.secondary_opts)
        if not param.is_flag:
            names += f" {param.metavar or param.name.upper()}"
        rows.append((names, param.help or ""))
    rows.append(("-h, --help", "Show the help and exit."))
    return rows


def _usage(name: str, command: Any) -> str:
    arguments = []
    for param in command.params:
        if param.param_type_name != "argument":
            continue
        metavar = param.metavar or param.name.upper()
        arguments.append(metavar if param.required else f"[{metavar}]")
    return f"zerofs {name} [OPTIONS] {' '.join(arguments)}".rstrip()


def _common_sections(see_also: list[str]) -> list[str]:
    out = [".SH EXIT STATUS", ".TP"]
    for code, meaning in exit_codes():
        out += [f".B {code}", _esc(meaning), ".TP"]
    out.pop()
    out.append(".SH ENVIRONMENT")
    for name, meaning in ENVIRONMENT:
        out += [".TP", f".B {name}", _esc(meaning)]
    out.append(".SH SEE ALSO")
    out.append(", ".join(f"\\fB{_esc(page)}\\fR(1)" for page in see_also))
    return out


def man_page(name: str, command: Any, all_names: list[str]) -> str:
    """Return the roff source of zerofs-NAME(1)."""
    summary = (command.help or "").strip().splitlines()[0].rstrip(".")
    out = [
        f'.TH ZEROFS\\-{name.upper()} 1 "{DATE}" "zerofs {__version__}" "zerofs manual"',
        ".SH NAME",
        f"zerofs\\-{_esc(name)} \\- {_esc(summary)}",
        ".SH SYNOPSIS",
        f".B {_esc(_usage(name, command))}",
        ".SH DESCRIPTION",
        _esc((command.help or "").strip()),
    ]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    if arguments:
        out.append(".SS Arguments")
        for param in arguments:
            out += [".TP", f".B {_esc(param.metavar or param.name.upper())}", _esc(getattr(param, "help", "") or "")]
    out.append(".SH OPTIONS")
    for names, help_text in _option_rows(command):
        out += [".TP", f".B {_esc(names)}", _esc(help_text)]
    out.append(".SH EXAMPLES")
    for title, example in EXAMPLES.get(name, []):
        out += [".PP", _esc(title) + ":", ".PP", ".RS", ".nf", _esc(example), ".fi", ".RE"]
    out += _common_sections(["zerofs", *[f"zerofs-{n}" for n in all_names if n != name][:4]])
    return "\n".join(out) + "\n"


MAIN_DESCRIPTION = """\
zerofs is a content-addressed, copy-on-write file store. File contents are cut into
content-defined chunks (FastCDC) and stored once per BLAKE3 id; files and directories are
immutable Merkle nodes; every change is a commit (see zerofs-log(1)).

Snapshots are clones. zerofs clone /data /snapshots/d1 adds one directory entry that
points at the existing tree of /data: it is instant whatever the size of /data, and the
two share every byte until one of them changes. Restoring is another clone, or an export.

Store paths are absolute (/data/x.txt); host paths are ordinary paths.

The repository is found in this order: --repo PATH; else $ZEROFS_REPO; else the repository
key of the TOML file given with -c/--config; else $XDG_DATA_HOME/zerofs (or
~/.local/share/zerofs). Only zerofs init creates a repository; any other command run before
it fails and names the command to run.

Revisions name commits: HEAD, HEAD~N (N first parents back), HEAD^, or any unique prefix of
at least 4 hex digits of a commit id (see zerofs-log(1)). Any command that reads a path takes
REV:/path to read it as it was in that commit: zerofs ls HEAD~3:/data, zerofs cat 3f9a2c1:/x,
and zerofs clone HEAD~3:/data /data-restored restores instantly. zerofs-diff(1) compares two
revisions or paths; zerofs-gc(1) cuts history to a retention policy and frees space."""


def main_page(command: Any) -> str:
    """Return the roff source of zerofs(1)."""
    names = [n for n, c in command.commands.items() if not c.hidden]
    out = [
        f'.TH ZEROFS 1 "{DATE}" "zerofs {__version__}" "zerofs manual"',
        ".SH NAME",
        "zerofs \\- a content\\-addressed, copy\\-on\\-write file store where a snapshot is a clone",
        ".SH SYNOPSIS",
        ".B zerofs [--repo PATH] [-c FILE] [--debug] COMMAND [ARGS]...",
        ".SH DESCRIPTION",
    ]
    for paragraph in MAIN_DESCRIPTION.split("\n\n"):
        out += [".PP", _esc(paragraph)]
    out.append(".SS Commands")
    for name in names:
        summary = (command.commands[name].help or "").strip().splitlines()[0]
        out += [".TP", f".B {_esc(name)}", _esc(summary) + f" See \\fBzerofs\\-{_esc(name)}\\fR(1)."]
    out.append(".SH OPTIONS")
    for names_text, help_text in _option_rows(command):
        out += [".TP", f".B {_esc(names_text)}", _esc(help_text)]
    out.append(".SH EXAMPLES")
    out += [".PP", ".RS", ".nf"]
    for line in (
        "zerofs init",
        "zerofs import ~/photos /photos",
        "zerofs mkdir /snapshots",
        "zerofs clone /photos /snapshots/2026-11-24",
        "zerofs ls -l /snapshots",
        "zerofs log",
    ):
        out.append(_esc(line))
    out += [".fi", ".RE"]
    out += _common_sections([f"zerofs-{n}" for n in names])
    return "\n".join(out) + "\n"


def completion_script(shell: str) -> str:
    """Return the completion script for ``shell`` (answered at run time by typer)."""
    from typer._completion_shared import get_completion_script

    return str(get_completion_script(prog_name="zerofs", complete_var=COMPLETE_VAR, shell=shell))


def generated_files(root: Path) -> dict[Path, str]:
    """Return every generated file under ``root`` and its content."""
    command = _command()
    names = [n for n, c in command.commands.items() if not c.hidden]
    files = {root / "man" / "zerofs.1": main_page(command)}
    for name in names:
        files[root / "man" / f"zerofs-{name}.1"] = man_page(name, command.commands[name], names)
    for shell, filename in SHELLS.items():
        files[root / "completions" / filename] = completion_script(shell)
    return files


def main(argv: list[str]) -> int:
    """Write (or with --check, compare) the generated files; return an exit code."""
    root = Path(__file__).resolve().parents[2]
    stale = []
    for path, content in generated_files(root).items():
        current = path.read_text() if path.exists() else None
        if current == content:
            continue
        stale.append(path)
        if "--check" not in argv:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content)
    if "--check" in argv and stale:
        sys.stderr.write("out of date (run python -m zerofs.cli.docs): " + ", ".join(map(str, stale)) + "\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
