"""Error messages name the object the user typed and, where there is one, the fix that works.

Each test runs the bad command line for real, checks its one error line and
exit code (and that the repository is unchanged), and where the message
offers a fix, runs the fix too.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests import damage
from tests.conftest import Zerofs, cli_env, repo_secrets, run_zerofs, zerofs_argv, zerofs_command
from tests.e2e.helpers import assert_fails, assert_one_error_line, log_json
from tests.e2e.helpers import unreadable_file as unreadable
from zerofs.errors import ConflictError, CorruptionError, HostIOError, NotFoundError, RepositoryError, UsageError

if TYPE_CHECKING:
    from zerofs.objects import ObjectId
    from zerofs.repo import Staging


@pytest.fixture
def stocked(zerofs: Zerofs, cli_repo: Path) -> Path:
    """A repository holding /data/a.txt, /file and /dir, then a clone /snap (the last commit)."""
    zerofs("mkdir", "/data")
    zerofs("write", "/data/a.txt", input=b"alpha")
    zerofs("write", "/file", input=b"file")
    zerofs("mkdir", "/dir")
    zerofs("clone", "/data", "/snap")
    return cli_repo


def run_without_repo_option(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    """Run zerofs without --repo, so that $ZEROFS_REPO, the config or the default location decides."""
    return subprocess.run(
        zerofs_argv(*args),
        capture_output=True,
        text=True,
        env=cli_env(env),
        cwd=cwd,
        timeout=120,
        check=False,
    )


# -- usage errors from the command line parser ------------------------------------------


def test_parser_errors_read_like_ours(zerofs: Zerofs, cli_repo: Path) -> None:
    """Lower case, no sentence period, suggestions as '(did you mean ...?)'."""
    line = assert_fails(cli_repo, "lss", "/", expect=UsageError.exit_code)
    assert line == "zerofs: no such command 'lss' (did you mean 'ls'?)"
    line = assert_fails(cli_repo, "cat", expect=UsageError.exit_code)
    assert line == "zerofs: missing argument 'STORE_PATH...' (see 'zerofs cat --help')"
    line = assert_fails(cli_repo, "clone", "--forc", "/a", "/b", expect=UsageError.exit_code)
    assert line == "zerofs: no such option: --forc (did you mean --force or --source?)"


# -- where the repository is --------------------------------------------------------------


def test_config_file_that_is_not_toml(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    as_json = tmp_path / "zerofs.json"
    as_json.write_text('{"repository": "/x"}')
    line = assert_fails(cli_repo, "-c", str(as_json), "ls", "/", expect=UsageError.exit_code)
    assert f"config file {as_json} is not valid TOML" in line
    not_text = tmp_path / "binary.toml"
    not_text.write_bytes(b"\xff\xfe repository")
    line = assert_fails(cli_repo, "-c", str(not_text), "ls", "/", expect=UsageError.exit_code)
    assert line == f"zerofs: config file {not_text} is not valid TOML: it is not UTF-8 text"
    line = assert_fails(cli_repo, "-c", str(tmp_path), "ls", "/", expect=UsageError.exit_code)
    assert line == f"zerofs: cannot read config file {tmp_path}: Is a directory"


def test_config_compression_level_names_the_file_and_the_value(zerofs: Zerofs, tmp_path: Path) -> None:
    config = tmp_path / "zerofs.toml"
    config.write_text("[defaults]\ncompression_level = 99\n")
    proc = zerofs("-c", str(config), "init", expect=UsageError.exit_code)
    line = assert_one_error_line(proc)
    assert f"config file {config}" in line
    assert "not 99" in line
    assert not (tmp_path / "repo").exists()


def test_repository_path_that_is_a_file(zerofs: Zerofs, tmp_path: Path) -> None:
    a_file = tmp_path / "file"
    a_file.write_text("x")
    line = assert_one_error_line(zerofs("ls", "/", repo=a_file, expect=RepositoryError.exit_code))
    assert line == (
        f"zerofs: {a_file} (--repo) is a file, not a zerofs repository (pass --repo the repository's directory)"
    )


def test_directory_of_other_files_is_not_offered_init(zerofs: Zerofs, tmp_path: Path) -> None:
    """init would refuse a non-empty directory, so the message must not suggest it."""
    other = tmp_path / "documents"
    other.mkdir()
    (other / "letter.txt").write_text("x")
    line = assert_one_error_line(zerofs("ls", "/", repo=other, expect=RepositoryError.exit_code))
    assert f"no zerofs repository at {other} (--repo)" in line
    assert "init" not in line
    assert "pass --repo" in line
    line = assert_one_error_line(zerofs("init", repo=other, expect=ConflictError.exit_code))
    assert line == f"zerofs: {other} exists and is not an empty directory (pass --repo a new or empty directory)"
    zerofs("init", repo=tmp_path / "new")  # the fix


def test_default_location_mentions_init_and_repo(tmp_path: Path) -> None:
    proc = run_without_repo_option("ls", "/", env={"XDG_DATA_HOME": str(tmp_path / "xdg")}, cwd=tmp_path)
    assert proc.returncode == RepositoryError.exit_code
    line = assert_one_error_line(proc)
    assert line == (
        f"zerofs: no zerofs repository at {tmp_path / 'xdg' / 'zerofs'} (default); "
        "create one with: zerofs init (or pass --repo to use another)"
    )


def test_repository_path_of_an_unknown_user(zerofs: Zerofs, tmp_path: Path) -> None:
    """Path.expanduser raises RuntimeError for ~nosuchuser: that was an internal error (exit 1)."""
    line = assert_one_error_line(zerofs("ls", "/", repo=Path("~zerofs-no-such-user/r"), expect=UsageError.exit_code))
    assert "'~zerofs-no-such-user/r' (--repo)" in line
    proc = run_without_repo_option("ls", "/", env={"ZEROFS_REPO": "~zerofs-no-such-user/r"}, cwd=tmp_path)
    assert proc.returncode == UsageError.exit_code
    assert "($ZEROFS_REPO)" in assert_one_error_line(proc)


def test_unreadable_repository_names_it_once(zerofs: Zerofs, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    zerofs("init", repo=broken)
    (broken / "index.mdb").write_bytes(os.urandom(64 * 1024))
    line = assert_one_error_line(zerofs("ls", "/", repo=broken, expect=CorruptionError.exit_code))
    assert line.startswith(f"zerofs: the index of the repository at {broken} is damaged: "), line
    assert line.endswith("(nothing is lost from the packs: run zerofs fsck --rebuild-index)"), line
    assert line.count(str(broken)) == 1, line


def test_unreadable_format1_repository_names_it_once(zerofs: Zerofs, tmp_path: Path) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "data.mdb").write_bytes(os.urandom(64 * 1024))
    line = assert_one_error_line(zerofs("ls", "/", repo=broken, expect=RepositoryError.exit_code))
    assert "has format version 1" in line, line
    assert line.endswith("(run zerofs upgrade)"), line
    line = assert_one_error_line(zerofs("upgrade", repo=broken, expect=RepositoryError.exit_code))
    assert line.startswith(f"zerofs: cannot read the format-1 repository at {broken}: "), line
    assert line.count(str(broken)) == 1, line
    assert sorted(p.name for p in broken.iterdir()) == ["data.mdb", "open.lock"]


# -- store paths and revisions ------------------------------------------------------------


BAD_PATHS = [
    (
        ("ls", "data"),
        "store paths are absolute: 'data' does not start with '/' (did you mean /data?)",
        ("ls", "/data"),
    ),
    (
        ("cat", "/data/../file"),
        "invalid store path '/data/../file': '..' is not allowed in a store path (did you mean /file?)",
        ("cat", "/file"),
    ),
    (
        ("ls", "/data/./a.txt"),
        "invalid store path '/data/./a.txt': '.' is not allowed in a store path (did you mean /data/a.txt?)",
        ("ls", "/data/a.txt"),
    ),
    (
        ("ls", "HEAD~1:data"),
        "invalid path 'HEAD~1:data': the path after ':' starts with '/' (did you mean HEAD~1:/data?)",
        ("ls", "HEAD~1:/data"),
    ),
    (
        ("ls", "head~1:/data"),
        "invalid revision 'head~1': expected HEAD, HEAD~N, HEAD^ or a commit id prefix of at least 4 hex digits "
        "(did you mean HEAD~1?)",
        ("ls", "HEAD~1:/data"),
    ),
    (
        ("diff", "data", "HEAD"),
        "'data' is neither a revision (HEAD~1, a commit id) nor a store path (did you mean /data?)",
        ("diff", "/data", "HEAD:/data"),
    ),
]


@pytest.mark.parametrize(
    ("args", "expected", "fixed"),
    BAD_PATHS,
    ids=["relative", "dot-dot", "dot", "rev-relative", "head-lower-case", "diff-bare-word"],
)
def test_bad_paths_suggest_the_one_meant(
    stocked: Path, zerofs: Zerofs, args: tuple[str, ...], expected: str, fixed: tuple[str, ...]
) -> None:
    assert assert_fails(stocked, *args, expect=UsageError.exit_code) == f"zerofs: {expected}"
    zerofs(*fixed)  # the suggestion works


def test_revision_past_the_first_commit_names_the_first(stocked: Path, zerofs: Zerofs) -> None:
    n_commits = len(log_json(stocked))
    line = assert_fails(stocked, "ls", "HEAD~99:/", expect=NotFoundError.exit_code)
    first = f"HEAD~{n_commits - 1}"
    assert line == f"zerofs: revision 'HEAD~99' goes back past the first commit (the first commit is {first})"
    zerofs("ls", f"{first}:/")


def test_a_revision_with_thousands_of_digits_is_past_the_first_commit(stocked: Path, zerofs: Zerofs) -> None:
    """Python refuses to parse an int of over 4,300 digits: that was an internal error."""
    first = f"HEAD~{len(log_json(stocked)) - 1}"
    line = assert_fails(stocked, "ls", "HEAD~" + "9" * 5000 + ":/", expect=NotFoundError.exit_code)
    assert line.endswith(f"goes back past the first commit (the first commit is {first})")
    assert zerofs("ls", "HEAD~" + "0" * 5000 + ":/").stdout == zerofs("ls", "/").stdout  # HEAD~0 is HEAD


def test_unknown_revision_points_at_log(stocked: Path) -> None:
    taken = {entry["commit"][:8] for entry in log_json(stocked)}
    unknown = next(p for p in ("deadbeef", "0badc0de", "facefeed") if p not in taken)
    line = assert_fails(stocked, "cat", f"{unknown}:/file", expect=NotFoundError.exit_code)
    assert line == f"zerofs: unknown revision '{unknown}': no commit id starts with it (zerofs log lists the commits)"


def test_missing_path_in_a_revision_names_the_revision(stocked: Path) -> None:
    """/snap exists in HEAD, not one commit earlier: 'no such path in the store' would read as false."""
    for command in ("ls", "cat", "stat", "tree", "du"):
        line = assert_fails(stocked, command, "HEAD~1:/snap", expect=NotFoundError.exit_code)
        assert line == "zerofs: no such path in HEAD~1: /snap", command
    line = assert_fails(stocked, "clone", "HEAD~1:/snap/a.txt", "/x", expect=NotFoundError.exit_code)
    assert line == "zerofs: no such path in HEAD~1: /snap"


# -- changes ------------------------------------------------------------------------------


def test_mkdir_of_an_existing_path_does_not_offer_force(stocked: Path, zerofs: Zerofs) -> None:
    """mkdir has no --force; place()'s 'use --force to replace it' is for clone."""
    line = assert_fails(stocked, "mkdir", "/dir", expect=ConflictError.exit_code)
    assert line == "zerofs: already exists: /dir (use -p to accept an existing directory)"
    zerofs("mkdir", "-p", "/dir")
    assert assert_fails(stocked, "mkdir", "/file", expect=ConflictError.exit_code) == "zerofs: already exists: /file"
    line = assert_fails(stocked, "clone", "/data", "/snap", expect=ConflictError.exit_code)
    assert line == "zerofs: already exists: /snap (use --force to replace it)"


def test_hints_of_tree_changes_name_the_option_and_it_works(stocked: Path, zerofs: Zerofs) -> None:
    """The core's hint (replace, create parents, recursive) reaches the user as the option that does it."""
    line = assert_fails(stocked, "write", "/new/x.txt", input=b"x", expect=NotFoundError.exit_code)
    assert line == "zerofs: parent directory does not exist: /new (use -p to create it)"
    zerofs("write", "-p", "/new/x.txt", input=b"x")
    line = assert_fails(stocked, "rm", "/data", expect=ConflictError.exit_code)
    assert line == "zerofs: directory not empty: /data (use -r to remove it and its contents)"
    zerofs("rm", "-r", "/new")
    line = assert_fails(stocked, "mv", "/dir", "/file", expect=ConflictError.exit_code)
    assert line == "zerofs: cannot replace file /file with directory /dir (use --force to replace it)"
    zerofs("mv", "--force", "/dir", "/file")
    assert zerofs("ls", "/").stdout == b"data\nfile\nsnap\n"


def test_names_not_utf8_or_with_a_newline_are_stored_and_logged_on_one_line(zerofs: Zerofs, cli_repo: Path) -> None:
    """A name may hold any byte but '/' and NUL; the commit message shows it escaped, JSON keeps it whole."""
    odd, newline = os.fsdecode(b"/\xff\xfe"), "/a\nb"
    zerofs("write", odd, input=b"odd bytes")
    zerofs("mkdir", newline)
    zerofs("clone", odd, "/copy")
    zerofs("mv", "/copy", os.fsdecode(b"/c\xff"))
    assert zerofs("cat", odd).stdout == b"odd bytes"
    assert zerofs("cat", os.fsdecode(b"/c\xff")).stdout == b"odd bytes"
    messages = [entry["message"] for entry in log_json(cli_repo)]
    assert messages[:4] == [
        "mv /copy -> /c\\xff",
        "clone /\\xff\\xfe -> /copy",
        "mkdir /a\\nb",
        "write /\\xff\\xfe (9 bytes)",
    ]
    assert len(zerofs("log").stdout.decode().splitlines()) == len(messages)  # one line per commit
    operation = log_json(cli_repo)[2]["operation"]
    assert os.fsencode(operation["path"]) == b"/a\nb"


def test_errors_naming_a_store_path_with_a_newline_or_not_utf8_are_one_line(stocked: Path, zerofs: Zerofs) -> None:
    """The name is escaped as in the log (a newline in it split the error line in two)."""
    newline, odd = "/a\nb", os.fsdecode(b"/c\xff")
    cases = [
        (("rm", newline), NotFoundError, "no such path in the store: /a\\nb"),
        (("mv", newline, "/q"), NotFoundError, "no such path in the store: /a\\nb"),
        (("cat", odd), NotFoundError, "no such path in the store: /c\\xff"),
        (("clone", odd, "/x"), NotFoundError, "no such path in the store: /c\\xff"),
        (("write", newline + "/f"), NotFoundError, "parent directory does not exist: /a\\nb (use -p to create it)"),
    ]
    for args, error, message in cases:
        assert assert_fails(stocked, *args, expect=error.exit_code, input=b"x") == f"zerofs: {message}", args
    zerofs("mkdir", newline)
    zerofs("write", odd, input=b"odd")
    cases = [
        (("write", newline), ConflictError, "is a directory: /a\\nb"),
        (("cat", newline), ConflictError, "is a directory: /a\\nb"),
        (("clone", "/data", newline + "/a.txt", "-p"), None, None),
        (("clone", "/data", newline), ConflictError, "already exists: /a\\nb (use --force to replace it)"),
        (
            ("mv", newline, odd),
            ConflictError,
            "cannot replace file /c\\xff with directory /a\\nb (use --force to replace it)",
        ),
        (("rm", newline), ConflictError, "directory not empty: /a\\nb (use -r to remove it and its contents)"),
        (("rm", newline + "/z*"), NotFoundError, "no match in the store for /a\\nb/z*"),
        (
            ("diff", newline, odd),
            ConflictError,
            "cannot diff a directory with a non-directory: /a\\nb is a directory, /c\\xff is not",
        ),
    ]
    for args, error, message in cases:
        if error is None:
            zerofs(*args)
            continue
        assert assert_fails(stocked, *args, expect=error.exit_code, input=b"x") == f"zerofs: {message}", args


def test_write_with_standard_input_closed(stocked: Path) -> None:
    before = log_json(stocked)
    command = zerofs_command(stocked, "write", "/new")
    proc = subprocess.run(
        ["sh", "-c", 'exec "$@" <&-', "sh", *command],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert proc.returncode == UsageError.exit_code, proc.stderr
    line = assert_one_error_line(proc)
    assert line == "zerofs: standard input is closed: write stores what it reads there (e.g. ... | zerofs write /new)"
    assert log_json(stocked) == before


# -- import -------------------------------------------------------------------------------


@pytest.fixture
def unreadable_file(tmp_path: Path) -> Iterator[Path]:
    """A regular file whose open() fails even for root."""
    with unreadable(tmp_path / "bad.bin") as bad:
        yield bad


def test_import_of_an_unreadable_file_itself_offers_no_skip(stocked: Path, unreadable_file: Path) -> None:
    """--skip-errors imports the rest of a tree; for the file itself there is no rest."""
    for args in (("import", str(unreadable_file), "/b"), ("import", "--skip-errors", str(unreadable_file), "/b")):
        line = assert_fails(stocked, *args, expect=HostIOError.exit_code)
        assert line == f"zerofs: cannot read {unreadable_file}: Permission denied"


def test_import_skips_the_repository_and_refuses_a_path_inside_it(zerofs: Zerofs, tmp_path: Path) -> None:
    """Reading the store's own files while writing them ended in 'mdb_txn_begin: Invalid argument'."""
    host = tmp_path / "home"
    host.mkdir()
    (host / "notes.txt").write_bytes(b"notes")
    repo = host / "repo"
    zerofs("init", repo=repo)
    for target in ("/first", "/second"):
        proc = zerofs("import", "--json", str(host), target, repo=repo)  # exit 0: complete without itself
        warning = f"zerofs: warning: skipped {repo}: it is the repository being imported into"
        assert warning in proc.stderr.splitlines(), proc.stderr
        assert json.loads(proc.stdout)["left_out"] == 0
    assert zerofs("ls", "/second", repo=repo).stdout == b"notes.txt\n"
    for inside in (repo, repo / "index.mdb"):
        line = assert_fails(repo, "import", str(inside), "/x", expect=UsageError.exit_code)
        assert line == f"zerofs: cannot import {inside}: it is the repository at {repo}, or inside it"


def test_import_of_a_path_longer_than_an_lmdb_key(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    """The host-file cache is keyed by the host path; over 511 bytes that was 'internal error: BadValsizeError'."""
    deep = tmp_path / "deep"
    for _ in range(5):
        deep = deep / ("d" * 120)
    deep.mkdir(parents=True)
    (deep / "f").write_bytes(b"deep")
    assert len(os.fsencode(deep / "f")) > 511
    for _ in range(2):  # the second import looks the path up in the cache
        zerofs("import", str(tmp_path / "deep"), "/deep")
    zerofs("cat", "/deep" + str(deep / "f").removeprefix(str(tmp_path / "deep")))


# -- export -------------------------------------------------------------------------------


def test_export_of_a_file_onto_a_directory(stocked: Path, zerofs: Zerofs, tmp_path: Path) -> None:
    """It said 'use --force to overwrite', and --force then failed too."""
    target = tmp_path / "out"
    target.mkdir()
    (target / "other").write_text("x")
    for args in (("export", "/file", str(target)), ("export", "--force", "/file", str(target))):
        line = assert_fails(stocked, *args, expect=ConflictError.exit_code)
        assert line == f"zerofs: {target} is a directory (name a path inside it, such as {target / 'file'})"
    zerofs("export", "/file", str(target / "file"))
    assert (target / "file").read_bytes() == b"file"


def test_export_hints_name_the_option_and_it_works(stocked: Path, zerofs: Zerofs, tmp_path: Path) -> None:
    """The core's hints (write into, replace) reach the user as --force, and --force does it."""
    target = tmp_path / "out"
    target.mkdir()
    (target / "mine").write_bytes(b"mine")
    line = assert_fails(stocked, "export", "/data", str(target), expect=ConflictError.exit_code)
    assert line == f"zerofs: {target} is not empty (use --force to export into it anyway)"
    zerofs("export", "--force", "/data", str(target))
    assert sorted(os.listdir(target)) == ["a.txt", "mine"]
    line = assert_fails(stocked, "export", "/file", str(target / "mine"), expect=ConflictError.exit_code)
    assert line == f"zerofs: {target / 'mine'} already exists (use --force to replace it)"
    zerofs("export", "--force", "/file", str(target / "mine"))
    assert (target / "mine").read_bytes() == b"file"


def test_export_into_a_missing_directory(stocked: Path, zerofs: Zerofs, tmp_path: Path) -> None:
    parent = tmp_path / "missing"
    line = assert_fails(stocked, "export", "/data", str(parent / "data"), expect=HostIOError.exit_code)
    assert line == f"zerofs: parent directory does not exist: {parent} (create it first: mkdir -p {parent})"
    subprocess.run(["mkdir", "-p", str(parent)], check=True)
    zerofs("export", "/data", str(parent / "data"))


def test_export_force_names_the_directory_in_the_way(stocked: Path, zerofs: Zerofs, tmp_path: Path) -> None:
    target = tmp_path / "out"
    (target / "a.txt").mkdir(parents=True)
    (target / "a.txt" / "mine").write_bytes(b"mine\n")  # --force replaces an empty directory, not this one
    line = assert_fails(stocked, "export", "--force", "/data", str(target), expect=ConflictError.exit_code)
    assert line == (
        f"zerofs: cannot replace directory {target / 'a.txt'} with a file: it is not empty"
        " (move it away and export again)"
    )
    os.rename(target / "a.txt", tmp_path / "moved")
    zerofs("export", "--force", "/data", str(target))


def test_export_names_the_host_entry_that_is_not_a_directory(stocked: Path, zerofs: Zerofs, tmp_path: Path) -> None:
    """On the way to the target: it said only 'cannot open X: Not a directory' (exit 8), whatever X was."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    a_file = tmp_path / "a-file"
    a_file.write_bytes(b"mine")
    (tmp_path / "to-dir").symlink_to(elsewhere)
    (tmp_path / "to-file").symlink_to(a_file)
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    expected = {
        tmp_path / "to-dir" / "out": f"{tmp_path / 'to-dir'} is a symlink, which export never follows "
        f"(name the directory it points to: {elsewhere})",
        tmp_path / "to-file" / "out": f"{tmp_path / 'to-file'} is a symlink to a regular file, not a directory",
        tmp_path
        / "to-file"
        / "deeper"
        / "out": f"{tmp_path / 'to-file'} is a symlink to a regular file, not a directory",
        a_file / "out": f"{a_file} is a regular file, not a directory",
        tmp_path
        / "dangling"
        / "out": f"{tmp_path / 'dangling'} is a symlink that leads nowhere (No such file or directory)",
    }
    for target, message in expected.items():
        for force in ((), ("--force",)):
            line = assert_fails(stocked, "export", *force, "/data", str(target), expect=ConflictError.exit_code)
            assert line == f"zerofs: {message}", target
    assert os.listdir(elsewhere) == []
    assert a_file.read_bytes() == b"mine"
    zerofs("export", "/data", str(elsewhere / "out"))  # the fix the message names
    assert (elsewhere / "out" / "a.txt").read_bytes() == b"alpha"


def test_export_names_a_host_symlink_where_the_store_has_a_directory(
    stocked: Path, zerofs: Zerofs, tmp_path: Path
) -> None:
    """As the target it is named, with or without --force; inside a forced export the link, never its target, goes."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    target = tmp_path / "out"
    target.mkdir()
    (target / "snap").symlink_to(elsewhere)
    for force in ((), ("--force",)):
        line = assert_fails(stocked, "export", *force, "/data", str(target / "snap"), expect=ConflictError.exit_code)
        assert line == f"zerofs: {target / 'snap'} exists and is a symlink, not a directory"
    (target / "data").mkdir()
    (target / "data" / "a.txt").symlink_to(elsewhere)  # and where the store has a file
    zerofs("export", "--force", "/", str(target))
    assert not (target / "snap").is_symlink()
    assert (target / "snap" / "a.txt").read_bytes() == b"alpha"
    assert (target / "data" / "a.txt").read_bytes() == b"alpha"
    assert os.listdir(elsewhere) == [], "export followed a host symlink"


# -- reading ------------------------------------------------------------------------------


def test_cat_of_a_symlink_shows_its_target_as_a_path(zerofs: Zerofs, cli_repo: Path, tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    os.symlink("/some/where", host / "link")
    zerofs("import", str(host), "/h")
    line = assert_fails(cli_repo, "cat", "/h/link", expect=ConflictError.exit_code)
    assert line == "zerofs: is a symlink: /h/link (it points to /some/where)"


def test_damage_points_at_fsck_read_data(stocked: Path, zerofs: Zerofs) -> None:
    """The layer that meets a damaged chunk knows its id; fsck --read-data names the paths (plain fsck does not)."""
    chunk = damage.chunk_ids_of(stocked, "/data/a.txt")[0]
    damage.flip_byte(stocked, chunk)
    line = assert_fails(stocked, "cat", "/data/a.txt", expect=CorruptionError.exit_code)
    assert line.startswith(f"zerofs: object {chunk.hex()[:16]} "), line
    # "damaged on disk" in a plain repository, "fails authentication" in an encrypted one
    assert line.endswith("(run zerofs fsck --read-data to see which paths it affects)"), line
    proc = zerofs("fsck", "--read-data", expect=CorruptionError.exit_code)
    assert "/data/a.txt" in proc.stdout.decode()
    assert "fsck found" in assert_one_error_line(proc)
    assert "--read-data" not in proc.stderr  # fsck's own error points at its output


# -- standard output that cannot be written -----------------------------------------------


@pytest.mark.parametrize("words", [("cat", "/data/a.txt"), ("ls", "/data"), ("log", "--json")])
def test_a_full_standard_output_is_one_line_and_exit_8(stocked: Path, words: tuple[str, ...]) -> None:
    """zerofs cat x > /dev/full: what went wrong and where, not 'internal error: OSError'."""
    before = log_json(stocked)
    with open("/dev/full", "wb") as full:
        proc = subprocess.run(
            zerofs_command(stocked, *words),
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            env=cli_env(),
            timeout=120,
            check=False,
        )
    assert proc.returncode == HostIOError.exit_code
    line = assert_one_error_line(proc)
    assert line == "zerofs: cannot write to standard output: No space left on device"
    assert log_json(stocked) == before


@pytest.mark.parametrize(
    ("table", "key"),
    [
        ('parents = "yes"', "parents"),
        ("skip_errors = 1", "skip_errors"),
        ("compression_level = true", "compression_level"),
        ('compression_level = "3"', "compression_level"),
        ("compression_level = 99", "compression_level"),
        ("paretns = true", "paretns"),
    ],
)
def test_config_defaults_are_type_checked_for_every_command(
    stocked: Path, zerofs: Zerofs, tmp_path: Path, table: str, key: str
) -> None:
    """A mistyped [defaults] value fails every command, naming the file and the key, before anything changes."""
    config = tmp_path / "zerofs.toml"
    config.write_text(f"[defaults]\n{table}\n")
    before = log_json(stocked)
    for words in (("ls", "/"), ("clone", "/data", "/copy")):
        line = assert_one_error_line(zerofs("-c", str(config), *words, expect=UsageError.exit_code))
        assert line.startswith(f"zerofs: config file {config}: ")
        assert key in line
    assert log_json(stocked) == before


def test_debug_works_after_the_command_name(stocked: Path, zerofs: Zerofs) -> None:
    """Errors say "rerun with --debug"; appending it to the line must work, not be an unknown option."""
    assert_one_error_line(zerofs("ls", "/nope", expect=NotFoundError.exit_code))
    for words in (("ls", "/nope", "--debug"), ("--debug", "ls", "/nope"), ("ls", "--debug", "/nope")):
        proc = zerofs(*words, expect=1)
        assert "Traceback" in proc.stderr
        assert "NotFoundError" in proc.stderr
    # After --, it is a name like any other: here not a valid store path.
    assert_one_error_line(zerofs("ls", "--", "--debug", expect=UsageError.exit_code))


def test_log_shows_a_message_with_a_newline_on_one_line(zerofs: Zerofs, cli_repo: Path) -> None:
    """Older versions put raw names in commit messages: log escapes them in text, keeps them in JSON."""
    from zerofs.history import apply_change
    from zerofs.paths import StorePath
    from zerofs.repo import Repository
    from zerofs.tree import ensure_dirs

    def change(staging: Staging, root_id: ObjectId, now_ns: int) -> ObjectId:
        return ensure_dirs(staging, root_id, StorePath.parse("/a\nb"), now_ns, 0o40755, 0, 0)

    with Repository.open(cli_repo, **repo_secrets()) as repo:
        apply_change(repo, change, message="write /a\nb (1 bytes)", operation={})
    lines = zerofs("log").stdout.decode().splitlines()
    assert len(lines) == len(log_json(cli_repo))
    assert lines[0].endswith("\twrite /a\\nb (1 bytes)")
    assert log_json(cli_repo)[0]["message"] == "write /a\nb (1 bytes)"


@pytest.mark.parametrize(
    "words",
    [
        ("--repo", "", "ls", "/"),
        ("ls", "--repo", "", "/"),
        ("ls", "--repo=", "/"),
        ("--config", "", "ls", "/"),
        ("ls", "-c", "", "/"),
    ],
)
def test_an_empty_repo_or_config_is_refused_not_replaced(stocked: Path, words: tuple[str, ...]) -> None:
    """``--repo "$UNSET"`` in a script used to fall back to $ZEROFS_REPO, the config or the default repository."""
    for fast_path in (True, False):
        env = cli_env({"ZEROFS_REPO": str(stocked)})
        if not fast_path:
            env["ZEROFS_NO_FAST_PATH"] = "1"
        proc = subprocess.run(zerofs_argv(*words), capture_output=True, text=True, env=env, timeout=60, check=False)
        assert proc.returncode == UsageError.exit_code, proc
        assert proc.stdout == ""
        option = "--config" if "-c" in words or "--config" in words else "--repo"
        assert proc.stderr.startswith(f"zerofs: {option} is empty: "), proc.stderr
        assert len(proc.stderr.splitlines()) == 1


# -- found by the second hostile-input probe (#14) ----------------------------------------


def _run_with_closed(
    fd_redirect: str, *words: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run zerofs through sh with a standard stream closed (``>&-``, ``<&-``)."""
    command = zerofs_argv(*words)
    return subprocess.run(
        ["sh", "-c", f'exec "$@" {fd_redirect}', "sh", *command],
        capture_output=True,
        text=True,
        env=cli_env(env),
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    "words",
    [("ls", "/data"), ("cat", "/data/a.txt"), ("log", "--json"), ("stat", "/data"), ("du", "/"), ("--version",)],
)
@pytest.mark.parametrize("fast_path", [True, False])
def test_a_closed_standard_output_is_one_line_and_exit_8(
    stocked: Path, words: tuple[str, ...], fast_path: bool
) -> None:
    """zerofs ls >&- was 'internal error: AttributeError: NoneType ...' (exit 1): Python leaves sys.stdout None."""
    before = log_json(stocked)
    env = {} if fast_path else {"ZEROFS_NO_FAST_PATH": "1"}
    proc = _run_with_closed(">&-", "--repo", str(stocked), *words, env=env)
    assert proc.returncode == HostIOError.exit_code, proc.stderr
    assert assert_one_error_line(proc) == "zerofs: cannot write to standard output: it is closed"
    assert log_json(stocked) == before


def test_a_closed_standard_output_is_not_given_to_a_repository_file(stocked: Path) -> None:
    """A change with stdout closed still commits, and its summary on stderr does not land in a pack or the index."""
    proc = _run_with_closed(">&-", "--repo", str(stocked), "mkdir", "/made")
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.startswith("[")
    assert log_json(stocked)[0]["message"] == "mkdir /made"
    run_zerofs("fsck", "--read-data", repo=stocked)


def test_a_closed_standard_error_still_gives_the_exit_code(stocked: Path) -> None:
    proc = _run_with_closed("2>&-", "--repo", str(stocked), "ls", "/nope")
    assert proc.returncode == NotFoundError.exit_code
    assert proc.stdout == ""


@pytest.mark.parametrize("device", ["/dev/zero"])
def test_a_config_file_that_never_ends_is_refused_not_read_into_memory(stocked: Path, device: str) -> None:
    """-c /dev/zero read until the kernel killed zerofs (exit -9): a config is read up to 1 MiB."""
    line = assert_fails(stocked, "-c", device, "ls", "/", expect=UsageError.exit_code)
    assert line == f"zerofs: config file {device} is too large to be one (over 1 MiB)"


def test_a_config_file_over_a_mebibyte_is_refused(stocked: Path, tmp_path: Path) -> None:
    config = tmp_path / "big.toml"
    config.write_text("# " + "x" * (1 << 20) + "\n")
    line = assert_fails(stocked, "-c", str(config), "mkdir", "/x", expect=UsageError.exit_code)
    assert line == f"zerofs: config file {config} is too large to be one (over 1 MiB)"


def test_an_empty_device_or_a_pipe_still_works_as_config(stocked: Path, zerofs: Zerofs, tmp_path: Path) -> None:
    assert zerofs("-c", "/dev/null", "ls", "/").stdout.decode().split() == ["data", "dir", "file", "snap"]
    pipe = subprocess.run(
        [
            "bash",
            "-c",
            'exec "$@" -c <(printf "[defaults]\\nparents = true\\n") ls /',
            "bash",
            *zerofs_command(stocked),
        ],
        capture_output=True,
        text=True,
        env=cli_env(),
        timeout=120,
        check=False,
    )
    assert pipe.returncode == 0, pipe.stderr
    assert pipe.stdout.split() == ["data", "dir", "file", "snap"]


@pytest.mark.parametrize("control", ["\n", "\r", "\x1b[31m"])
def test_a_repository_location_with_a_control_character_stays_on_one_line(
    stocked: Path, tmp_path: Path, control: str
) -> None:
    """ZEROFS_REPO=$'/x\\ny' split the error line in three."""
    location = f"{tmp_path}/re{control}po"
    proc = run_without_repo_option("ls", "/", env={"ZEROFS_REPO": location}, cwd=tmp_path)
    assert proc.returncode == RepositoryError.exit_code
    line = assert_one_error_line(proc)
    assert line.startswith(
        f"zerofs: no zerofs repository at {tmp_path}/re{control.encode('unicode_escape').decode()}po"
    )
    assert "\x1b" not in proc.stderr


def test_a_host_path_with_a_carriage_return_stays_on_one_line(stocked: Path, tmp_path: Path) -> None:
    """A host path in an error (export's target) arrives as given: it is escaped in the one line."""
    target = tmp_path / "no\rparent" / "out"
    line = assert_fails(stocked, "export", "/data", str(target), expect=HostIOError.exit_code)
    assert line.startswith(f"zerofs: parent directory does not exist: {tmp_path}/no\\rparent ")


def test_a_warning_about_a_host_path_with_a_newline_stays_on_one_line(
    stocked: Path, zerofs: Zerofs, tmp_path: Path
) -> None:
    source = tmp_path / "src"
    (source / "a\nb").mkdir(parents=True)
    with unreadable(source / "a\nb" / "f"):
        proc = zerofs("import", "--skip-errors", str(source), "/imported", expect=10)
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("zerofs: warning:")]
    assert len(warnings) == 1, proc.stderr
    assert "a\\nb/f" in warnings[0]
    assert all(line.startswith(("zerofs: ", "imported ")) for line in proc.stderr.splitlines()), proc.stderr
