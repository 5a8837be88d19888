"""An encrypted S3 repository through the command line (issue #15): the mount, fsck, completion, push and pull.

Every command is a ``zerofs`` subprocess of a ``Host`` (its own cache
directory) on the real SeaweedFS the tests start; the password comes from
``ZEROFS_PASSWORD_FILE`` unless a test says otherwise. What the bucket holds
is read object by object, as anyone with read access to it could.
"""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.mountutil import eventually, force_unmount, is_mounted, require_fuse
from tests.s3.faultproxy import FaultProxy
from tests.s3.hosts import Host, make_tree, tree_listing
from tests.s3.seaweed import SeaweedServer
from zerofs.content import iter_chunk_ids
from zerofs.errors import CorruptionError
from zerofs.history import head
from zerofs.mount.run import mount_process
from zerofs.objects import FileNode
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.store.objects_s3 import S3Objects
from zerofs.store.packfile import BLOB_HEADER
from zerofs.store.s3config import S3Settings, parse_s3_url
from zerofs.store.s3store import pack_key
from zerofs.tree import lookup

PASSWORD = "correct horse battery staple"
MARKER = b"zerofs-s3-plaintext-marker-" + os.urandom(8).hex().encode()
"""A string written into the repositories: found in a plain one's bucket, never in an encrypted one's."""


def password_file(tmp_path: Path, password: str = PASSWORD) -> Path:
    """A file holding ``password`` and a newline, as ``ZEROFS_PASSWORD_FILE`` reads it."""
    path = tmp_path / f"password-{hashlib.sha256(password.encode()).hexdigest()[:8]}"
    path.write_text(password + "\n")
    return path


def encrypted_host(url: str, seaweed: SeaweedServer, cache: Path, password: Path) -> Host:
    """A host whose commands read the password from the file ``password``."""
    return Host(url, seaweed.endpoint, cache, ZEROFS_PASSWORD_FILE=str(password))


def bucket_contents(url: str, settings: S3Settings) -> dict[str, bytes]:
    """Every object under the repository's prefix, and its bytes."""
    with S3Objects(parse_s3_url(url), settings) as objects:
        contents = {}
        for info in objects.list(""):
            found = objects.get(info.key)
            assert found is not None, info.key
            contents[info.key] = bytes(found.data)
        return contents


def holds_marker(url: str, settings: S3Settings) -> bool:
    """True if an object of the repository holds the first 24 bytes of ``MARKER`` in the clear."""
    return any(MARKER[:24] in data for data in bucket_contents(url, settings).values())


def unmount(host: Host, point: Path) -> None:
    """``zerofs umount`` through ``host``, or a lazy detach if that fails (so a failed test wedges nothing)."""
    if is_mounted(point) and host.run("umount", str(point), expect=None).returncode != 0:
        force_unmount(point)


# -- the mount ------------------------------------------------------------------------------------------


def counting_command(tmp_path: Path, password: Path) -> tuple[str, Path]:
    """A ``ZEROFS_PASSWORD_COMMAND`` that prints the password in ``password`` and adds a line to a counter file."""
    counter = tmp_path / "asked"
    script = f"echo asked >> {shlex.quote(str(counter))}; cat {shlex.quote(str(password))}"
    return shlex.join(["sh", "-c", script]), counter


@pytest.mark.parametrize("source", ["ZEROFS_PASSWORD_FILE", "ZEROFS_PASSWORD_COMMAND", "ZEROFS_PASSWORD"])
def test_a_mount_of_an_encrypted_s3_repository_writes_clones_and_another_host_reads_it(
    url: str, seaweed: SeaweedServer, tmp_path: Path, source: str
) -> None:
    """Write through the mount, clone while mounted, unmount; a host with an empty cache reads it all back.

    The password is read once (the counting command runs once), before the
    mount process starts, and is in neither its environment nor its arguments.
    """
    require_fuse()
    secret = password_file(tmp_path)
    host = encrypted_host(url, seaweed, tmp_path / "cache-a", secret)
    host.run("init", "--encrypt", url, repo=False)
    tree = make_tree(tmp_path / "tree", files=6)
    host.run("import", "-q", str(tree), "/data")
    command, counter = counting_command(tmp_path, secret)
    value = {"ZEROFS_PASSWORD_FILE": str(secret), "ZEROFS_PASSWORD_COMMAND": command}.get(source, PASSWORD)
    mounter = Host(url, seaweed.endpoint, tmp_path / "cache-a", **{source: value})
    point = tmp_path / "mnt"
    point.mkdir()
    mounter.run("mount", str(point))
    try:
        assert is_mounted(point)
        assert tree_listing(point / "data") == tree_listing(tree)
        big = os.urandom(2 << 20)
        (point / "data" / "new.bin").write_bytes(big)
        (point / "notes").mkdir()
        (point / "notes" / "todo.txt").write_bytes(b"written through the mount\n")
        pid = mount_process(tmp_path / "cache-a" / "zerofs" / "s3-mounts" / _url_digest(url), point)
        assert pid is not None
        for name in ("environ", "cmdline"):
            assert PASSWORD.encode() not in Path(f"/proc/{pid}/{name}").read_bytes()
        host.run("clone", "/data", "/snap")  # the live mount commits first; it shows the clone within seconds
        eventually(lambda: _assert_equal((point / "snap" / "new.bin").read_bytes(), big), timeout=15)
    finally:
        unmount(mounter, point)
    assert not is_mounted(point)
    if source == "ZEROFS_PASSWORD_COMMAND":
        assert counter.read_text().splitlines() == ["asked"]
    reader = encrypted_host(url, seaweed, tmp_path / "cache-b", secret)
    assert reader.run("cat", "/notes/todo.txt").stdout == b"written through the mount\n"
    assert reader.run("cat", "/snap/new.bin").stdout == big
    reader.run("export", "/snap", str(tmp_path / "out"))
    assert tree_listing(tmp_path / "out") == {**tree_listing(tree), "new.bin": big}
    reader.run("fsck", "--read-data")
    wrong = Host(url, seaweed.endpoint, tmp_path / "cache-c", ZEROFS_PASSWORD="not it")
    assert len(wrong.stderr("cat", "/notes/todo.txt", expect=12).splitlines()) == 1


def _assert_equal(found: bytes, expected: bytes) -> None:
    assert found == expected


def _url_digest(url: str) -> str:
    """The name of the directory that holds a host's mounts of the S3 repository ``url`` (``s3_mount_dir``)."""
    return hashlib.sha256(url.encode()).hexdigest()[:32]


# -- fsck -----------------------------------------------------------------------------------------------


def flip_in_bucket(host: Host, settings: S3Settings, password: Path, object_id: bytes, offset: int) -> None:
    """Flip a bit ``offset`` bytes into the sealed payload of ``object_id`` in its pack in the bucket.

    The pack is found through the repository's index (opened with the
    password, in the host's cache); the change is a delete and a create of
    the pack object, as an attacker with write access to the bucket would.
    """
    with _opened(host, settings, password) as repo:
        store = repo._s3_store()  # where a blob lives is no part of the repository's public interface
        assert store.has(object_id)
        location = store.cache.locate(object_id)
        assert location is not None
        name = store.cache.pack_name(location.pack_no)
        assert name is not None
    key = pack_key(name)
    with S3Objects(parse_s3_url(host.url), settings) as objects:
        found = objects.get(key)
        assert found is not None, key
        data = bytearray(found.data)
        data[location.offset + BLOB_HEADER.size + offset] ^= 1
        objects.delete(key)
        assert objects.create(key, bytes(data)) is not None


def _opened(host: Host, settings: S3Settings, password: Path) -> Repository:
    secret = password.read_text().removesuffix("\n").encode()
    return Repository.open(
        host.url, readonly=True, s3_settings=settings, cache_dir=str(host.cache / "zerofs"), password=secret
    )


def ids_of(host: Host, settings: S3Settings, password: Path, file_path: str, dir_path: str) -> tuple[bytes, bytes]:
    """The first chunk of the file at ``file_path`` and the node of the directory at ``dir_path``, in HEAD."""
    with _opened(host, settings, password) as repo:
        root = head(repo)[1].root_id
        file_node = repo.get_typed(lookup(repo, root, StorePath.parse(file_path)).id, FileNode)
        chunk = next(chunk_id for chunk_id, _ in iter_chunk_ids(repo, file_node))
        return chunk, lookup(repo, root, StorePath.parse(dir_path)).id


def fsck_findings(host: Host, *args: str) -> set[tuple[str, str, str]]:
    """``zerofs fsck --json ARGS``: exit 6, every finding an authentication failure; (path, object, kind) of each."""
    proc = host.run("fsck", "--json", *args, expect=CorruptionError.exit_code)
    findings = json.loads(proc.stdout)["findings"]
    found = set()
    for finding in findings:
        assert (finding["kind"], finding["severity"]) == ("hash-mismatch", "error"), finding
        detail = finding["detail"]
        assert "fails authentication as a " in detail, detail
        found.add((finding["path"], finding["object"], detail.split("fails authentication as a ")[1].split(":")[0]))
    assert len(found) == len(findings)
    problems = "1 problem" if len(findings) == 1 else f"{len(findings)} problems"
    assert proc.stderr.decode() == f"zerofs: fsck found {problems} (see above)\n"
    return found


def test_fsck_names_the_store_paths_a_damaged_sealed_chunk_and_directory_affect_on_s3(
    url: str, seaweed: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    """A bit flipped in the bucket in a sealed chunk and a sealed directory: a host with an empty cache names them."""
    secret = password_file(tmp_path)
    host = encrypted_host(url, seaweed, tmp_path / "cache-a", secret)
    host.run("init", "--encrypt", url, repo=False)
    host.run("import", "-q", str(make_tree(tmp_path / "tree", files=6)), "/data")
    host.run("write", "-p", "/e/f.txt", input=b"below the damaged directory\n")
    host.run("clone", "/data", "/snap")
    chunk, directory = ids_of(host, s3_settings, secret, "/data/sub/deep/big.bin", "/e")
    flip_in_bucket(host, s3_settings, secret, chunk, 40)
    flip_in_bucket(host, s3_settings, secret, directory, 10)
    reader = encrypted_host(url, seaweed, tmp_path / "cache-b", secret)
    line = reader.stderr("cat", "/data/sub/deep/big.bin", expect=CorruptionError.exit_code)
    assert len(line.splitlines()) == 1
    assert "fails authentication" in line
    assert fsck_findings(reader) == {("/e", directory.hex(), "dir")}  # chunks: presence only
    assert fsck_findings(reader, "--read-data") == {
        ("/e", directory.hex(), "dir"),
        ("/data/sub/deep/big.bin", chunk.hex(), "chunk"),
        ("/snap/sub/deep/big.bin", chunk.hex(), "chunk"),
    }
    assert ("/e", directory.hex(), "dir") in fsck_findings(host, "--read-data")  # a host that wrote it reads it again


# -- completion -----------------------------------------------------------------------------------------


def completion_env(host: Host, words: str) -> dict[str, str]:
    """``host``'s environment for bash's completion of ``words`` (the last word is the one completed)."""
    return {
        **host.env,
        "ZEROFS_REPO": host.url,
        "_ZEROFS_COMPLETE": "complete_bash",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split()) - 1),
    }


def complete(host: Host, words: str) -> tuple[int, list[str], str]:
    """Complete ``words`` as bash would, with nothing on standard input: exit code, candidates, standard error."""
    proc = subprocess.run(
        [sys.executable, "-m", "zerofs"],
        capture_output=True,
        text=True,
        env=completion_env(host, words),
        stdin=subprocess.DEVNULL,
        check=False,
        timeout=60,
    )
    return proc.returncode, proc.stdout.split(), proc.stderr


def on_a_terminal(
    argv: list[str], env: dict[str, str], answers: dict[str, str] | None = None, timeout_s: float = 120.0
) -> tuple[int, bytes]:
    """Run ``argv`` with a pseudo-terminal as controlling terminal and stdin: its exit code and all it wrote there.

    Each password prompt that names a key of ``answers`` ("Password for
    repository PATH:") is answered with its value; a prompt nobody answers
    makes the test fail after ``timeout_s``, as does a child that neither
    writes nor finishes.
    """
    import pty
    import select

    pid, master = pty.fork()
    if pid == 0:  # the child: exec at once, nothing of pytest's state runs here
        os.execve(argv[0], argv, env)
    output = b""
    n_answered = 0
    try:
        while True:
            readable, _, _ = select.select([master], [], [], timeout_s)
            assert readable, f"{argv[3:]} neither finished nor wrote within {timeout_s} s: {output!r}"
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if output.count(b"assword") > n_answered and output.rstrip().endswith(b":"):
                prompt = output[output.rindex(b"assword") :].decode()
                answer = next(value for key, value in (answers or {}).items() if key in prompt)
                os.write(master, answer.encode() + b"\n")
                n_answered += 1
    finally:
        os.close(master)
        _, status = os.waitpid(pid, 0)
    return os.waitstatus_to_exitcode(status), output


def test_completion_on_an_encrypted_s3_repository_completes_nothing_and_never_asks(
    url: str, seaweed: SeaweedServer, bucket: str, tmp_path: Path
) -> None:
    """No password is read (the counting command never runs), none is asked on a terminal; a plain one completes."""
    secret = password_file(tmp_path)
    encrypted = encrypted_host(url, seaweed, tmp_path / "cache-a", secret)
    encrypted.run("init", "--encrypt", url, repo=False)
    encrypted.run("write", "-p", "/data/x.txt", input=b"x")
    plain = Host(f"s3://{bucket}/plain", seaweed.endpoint, tmp_path / "cache-p")
    plain.run("init", plain.url, repo=False)
    plain.run("write", "-p", "/data/x.txt", input=b"x")
    words_completed = {  # on a plain repository
        "zerofs cat /d": ["/data/"],
        "zerofs ls /data/": ["/data/x.txt"],
        "zerofs cat HEAD:/d": ["HEAD:/data/"],
        "zerofs diff H": ["HEAD", "HEAD~1"],
    }
    for words, candidates in words_completed.items():
        assert complete(plain, words) == (0, candidates, ""), words
    command, counter = counting_command(tmp_path, secret)
    for source in ({"ZEROFS_PASSWORD_FILE": str(secret)}, {"ZEROFS_PASSWORD_COMMAND": command}, {}):
        for cache in ("cache-a", "cache-new"):  # the host that wrote it, and one that knows nothing of it
            host = Host(url, seaweed.endpoint, tmp_path / cache, **source)
            for words in words_completed:
                assert complete(host, words) == (0, [], ""), (source, cache, words)
    assert not counter.exists()
    nobody = Host(url, seaweed.endpoint, tmp_path / "cache-a")
    for name in ("ZEROFS_PASSWORD", "ZEROFS_PASSWORD_FILE", "ZEROFS_PASSWORD_COMMAND"):
        nobody.env.pop(name, None)
    code, output = on_a_terminal([sys.executable, "-m", "zerofs"], completion_env(nobody, "zerofs cat /d"))
    assert (code, output.split()) == (0, [])
    assert b"assword" not in output


# -- push and pull --------------------------------------------------------------------------------------


def marked_tree(root: Path) -> Path:
    """``make_tree`` plus a file whose name and bytes hold ``MARKER``."""
    make_tree(root, files=6)
    (root / "sub" / "marked.txt").write_bytes(b"the marker: " + MARKER + b"\n")
    return root


def run_on(host: Host, repo: str, *args: str, expect: int = 0, input: bytes | None = None) -> bytes:
    """``zerofs --repo REPO ARGS`` in ``host``'s environment (its cache, its password source); its stdout."""
    return host.run("--repo", repo, *args, repo=False, expect=expect, input=input).stdout


def exported(host: Host, repo: str, store_path: str, out: Path) -> dict[str, bytes]:
    """``store_path`` of ``repo`` exported to ``out``, as ``tree_listing`` reads it."""
    run_on(host, repo, "export", store_path, str(out))
    return tree_listing(out)


def messages(host: Host, repo: str) -> list[str]:
    """The commit messages of ``repo``'s history, newest first."""
    return [json.loads(line)["message"] for line in run_on(host, repo, "log", "--json").splitlines()]


def local_holds_marker(repo: Path) -> bool:
    """True if a file of the local repository ``repo`` holds the first 24 bytes of ``MARKER`` in the clear."""
    return any(MARKER[:24] in path.read_bytes() for path in repo.rglob("*") if path.is_file())


def test_push_plain_to_encrypted_s3_and_pull_back(
    url: str, seaweed: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    """A plain local repository pushes into an encrypted S3 one and pulls its new commits back: all re-encrypted."""
    secret = password_file(tmp_path)
    host = encrypted_host(url, seaweed, tmp_path / "cache-a", secret)
    host.run("init", "--encrypt", url, repo=False)
    local = str(tmp_path / "local")
    tree = marked_tree(tmp_path / "tree")
    run_on(host, local, "init")
    run_on(host, local, "import", "-q", str(tree), "/data")
    pushed = json.loads(run_on(host, local, "push", "--json", url))
    assert pushed["objects"] > 10
    assert not holds_marker(url, s3_settings)
    reader = encrypted_host(url, seaweed, tmp_path / "cache-b", secret)
    assert exported(reader, url, "/data", tmp_path / "out-1") == tree_listing(tree)
    assert messages(reader, url) == messages(host, local)
    reader.run("write", "/data/from-s3.txt", input=b"written on S3 " + MARKER)
    reader.run("clone", "/data", "/snap")
    run_on(host, local, "pull", url)
    expected = {**tree_listing(tree), "from-s3.txt": b"written on S3 " + MARKER}
    assert exported(host, local, "/snap", tmp_path / "out-2") == expected
    assert messages(host, local) == messages(reader, url)
    assert local_holds_marker(Path(local))  # the check can fail: the plain end holds it in the clear
    assert not holds_marker(url, s3_settings)
    run_on(host, local, "fsck", "--read-data")
    reader.run("fsck", "--read-data")
    assert json.loads(run_on(host, local, "push", "--json", url))["up_to_date"] is True


def test_pull_encrypted_from_plain_s3_and_push_back(
    url: str, seaweed: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    """An encrypted local repository pulls from a plain S3 one and pushes back; its own files hold no plaintext."""
    secret = password_file(tmp_path)
    host = encrypted_host(url, seaweed, tmp_path / "cache-a", secret)
    host.run("init", url, repo=False)
    tree = marked_tree(tmp_path / "tree")
    host.run("import", "-q", str(tree), "/data")
    assert holds_marker(url, s3_settings)  # the check can fail: the plain end holds it in the clear
    local = str(tmp_path / "local")
    run_on(host, local, "init", "--encrypt")
    run_on(host, local, "pull", url)
    assert exported(host, local, "/data", tmp_path / "out-1") == tree_listing(tree)
    run_on(host, local, "write", "/data/from-local.txt", input=b"written locally " + MARKER)
    run_on(host, local, "rm", "/data/file0.txt")
    run_on(host, local, "push", url)
    assert not local_holds_marker(Path(local))
    expected = {**tree_listing(tree), "from-local.txt": b"written locally " + MARKER}
    del expected["file0.txt"]
    other = Host(url, seaweed.endpoint, tmp_path / "cache-b")  # a plain repository: no password needed
    assert exported(other, url, "/data", tmp_path / "out-2") == expected
    assert messages(other, url) == messages(host, local)
    other.run("fsck", "--read-data")
    run_on(host, local, "fsck", "--read-data")


def test_push_and_pull_between_two_encrypted_repositories_with_different_keys(
    url: str, seaweed: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    """A local and an S3 encrypted repository (each its own master key): commits get other ids, contents stay."""
    secret = password_file(tmp_path)
    host = encrypted_host(url, seaweed, tmp_path / "cache-a", secret)
    host.run("init", "--encrypt", url, repo=False)
    local = str(tmp_path / "local")
    run_on(host, local, "init", "--encrypt")
    tree = marked_tree(tmp_path / "tree")
    run_on(host, local, "import", "-q", str(tree), "/data")
    run_on(host, local, "push", url)
    reader = encrypted_host(url, seaweed, tmp_path / "cache-b", secret)
    assert exported(reader, url, "/data", tmp_path / "out-1") == tree_listing(tree)
    reader.run("write", "/data/from-s3.txt", input=b"written on S3 " + MARKER)
    run_on(host, local, "pull", url)
    expected = {**tree_listing(tree), "from-s3.txt": b"written on S3 " + MARKER}
    assert exported(host, local, "/data", tmp_path / "out-2") == expected
    assert messages(host, local) == messages(reader, url)
    local_ids = [json.loads(line)["commit"] for line in run_on(host, local, "log", "--json").splitlines()]
    s3_ids = [json.loads(line)["commit"] for line in reader.run("log", "--json").stdout.splitlines()]
    assert not set(local_ids) & set(s3_ids)  # keyed ids: the same commits have other ids under another key
    assert not holds_marker(url, s3_settings)
    assert not local_holds_marker(Path(local))
    run_on(host, local, "fsck", "--read-data")
    reader.run("fsck", "--read-data")


def test_push_and_pull_between_encrypted_repositories_with_different_passwords_on_a_terminal(
    url: str, seaweed: SeaweedServer, s3_settings: S3Settings, tmp_path: Path
) -> None:
    """Each repository's password is asked for on the terminal, naming it; each opens its own repository only."""
    s3_password, local_password = password_file(tmp_path, "s3 password"), password_file(tmp_path, "local password")
    host = encrypted_host(url, seaweed, tmp_path / "cache-a", s3_password)
    host.run("init", "--encrypt", url, repo=False)
    local = str(tmp_path / "local")
    run_on(encrypted_host(url, seaweed, tmp_path / "cache-a", local_password), local, "init", "--encrypt")
    tree = marked_tree(tmp_path / "tree")
    env = {name: value for name, value in host.env.items() if not name.startswith("ZEROFS_PASSWORD")}
    answers = {local: "local password", url: "s3 password"}

    def on_the_local_repository(*args: str) -> None:
        code, output = on_a_terminal([sys.executable, "-m", "zerofs", "--repo", local, *args], env, answers)
        assert code == 0, output
        assert output.count(b"assword") == (2 if args[0] in ("push", "pull") else 1), output
        assert b"s3 password" not in output  # never echoed
        assert b"local password" not in output

    on_the_local_repository("import", "-q", str(tree), "/data")
    on_the_local_repository("push", url)
    reader = encrypted_host(url, seaweed, tmp_path / "cache-b", s3_password)
    assert exported(reader, url, "/data", tmp_path / "out-1") == tree_listing(tree)
    reader.run("clone", "/data", "/snap")
    on_the_local_repository("pull", url)
    local_reader = encrypted_host(url, seaweed, tmp_path / "cache-b", local_password)
    assert exported(local_reader, local, "/snap", tmp_path / "out-2") == tree_listing(tree)
    assert len(reader.stderr("--repo", local, "ls", "/", expect=12).splitlines()) == 1  # the other password
    assert len(local_reader.stderr("ls", "/", expect=12).splitlines()) == 1
    assert not holds_marker(url, s3_settings)
    assert not local_holds_marker(Path(local))


# -- killed key changes ---------------------------------------------------------------------------------


def slot_keys(url: str, settings: S3Settings) -> set[str]:
    """The key slot objects of the repository at ``url`` (``keys/<id>``)."""
    with S3Objects(parse_s3_url(url), settings) as objects:
        return {info.key for info in objects.list("keys")}


def kill_when_slots_change(host: Host, settings: S3Settings, *args: str) -> set[str]:
    """Start ``zerofs ARGS`` on ``host``, SIGKILL it as soon as the set of slot objects changes; that new set.

    Fails if the command exits first.
    """
    before = slot_keys(host.url, settings)
    proc = host.start(*args)
    try:
        deadline = time.monotonic() + 120
        while (after := slot_keys(host.url, settings)) == before:
            assert proc.poll() is None, (
                f"zerofs {' '.join(args)} exited with {proc.returncode} before it changed a slot"
            )
            assert time.monotonic() < deadline, f"zerofs {' '.join(args)} changed no slot in 120 s"
        proc.send_signal(signal.SIGKILL)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=60)
    return after


def opening(url: str, seaweed: SeaweedServer, cache: Path, *passwords: str) -> set[str]:
    """Which of ``passwords`` open the repository (a host with the cache ``cache``); any other failure fails."""
    found = set()
    for password in passwords:
        proc = Host(url, seaweed.endpoint, cache, ZEROFS_PASSWORD=password).run("cat", "/a.txt", expect=None)
        assert proc.returncode in (0, 12), proc.stderr.decode()
        if proc.returncode == 0:
            assert proc.stdout == b"kept\n"
            found.add(password)
    return found


def test_key_passwd_and_key_remove_killed_on_s3_leave_a_password_that_opens(
    url: str, seaweed: SeaweedServer, s3_settings: S3Settings, proxy: FaultProxy, tmp_path: Path
) -> None:
    """Killed the moment their change reaches the bucket (their requests slowed down by a proxy).

    ``key passwd`` killed once its new slot exists: the new password opens
    (the old one too, unless its delete was already on its way); ``key
    remove`` killed once the slot is gone: the removed password never opens,
    the other always does, on the host that ran it and on a fresh one.
    """
    host = Host(url, seaweed.endpoint, tmp_path / "cache-a", ZEROFS_PASSWORD="old")
    host.run("init", "--encrypt", url, repo=False)
    host.run("write", "/a.txt", input=b"kept\n")
    new_file = password_file(tmp_path, "new")
    proxy.delay_s = 0.2  # every request of the killed commands waits: the kill lands between two of them
    slow = Host(url, proxy.endpoint, tmp_path / "cache-a", ZEROFS_PASSWORD="old")
    slots = kill_when_slots_change(slow, s3_settings, "key", "passwd", "--new-password-file", str(new_file))
    assert len(slots) in (1, 2)
    time.sleep(1.0)  # a delete the proxy still held reaches the bucket now, or never
    for cache in ("cache-a", "cache-fresh"):
        opened = opening(url, seaweed, tmp_path / cache, "old", "new")
        assert "new" in opened
        assert len(opened) == len(slot_keys(url, s3_settings))
    slow = Host(url, proxy.endpoint, tmp_path / "cache-a", ZEROFS_PASSWORD="new")
    slow.run("key", "add", "--new-password-file", str(password_file(tmp_path, "second")))
    [second] = [key for key in slot_keys(url, s3_settings) if key not in slots]
    slots = kill_when_slots_change(slow, s3_settings, "key", "remove", second.removeprefix("keys/"))
    assert second not in slots
    time.sleep(1.0)
    for cache in ("cache-a", "cache-fresh-2"):
        assert "second" not in opening(url, seaweed, tmp_path / cache, "second")
        assert opening(url, seaweed, tmp_path / cache, "new") == {"new"}
