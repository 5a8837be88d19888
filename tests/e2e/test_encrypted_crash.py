"""SIGKILL during ``zerofs key passwd`` and ``zerofs key remove`` (issue #15): never a repository no password opens.

A change of password writes the new key slot durably, then deletes the old
one; a removal deletes one slot file durably (``keyslots.py``). Killed at
any instant, the repository must therefore open with the old password or
the new one (or both, between the two steps), never with neither; and once
``key remove`` has returned, the removed slot's password never opens it.

As in ``test_crash_kill.py``, each command is run as a child process and
killed with SIGKILL at instants drawn from a seeded ``random.Random`` as
fractions of how long it takes left alone, each time on a fresh copy of
the same repository. The step in between, which those instants rarely hit
(the old and the new slot both on disk for a few milliseconds), is
reached by stopping the process (SIGSTOP) the moment the keys directory
changes: the repository is checked while it is stopped, then it is killed.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import cli_env, run_zerofs, zerofs_command
from tests.e2e.test_crash_kill import KILLS, kill_fractions, reaped, run_and_kill, timed

pytestmark = pytest.mark.plain_only("it makes its own encrypted repositories, with passwords of its own")

OLD = "the old password"
NEW = "the new password"
CONTENT = b"kept through every change of key\n"
STOPS = 3
"""Attempts at stopping ``key passwd`` between writing its new slot and deleting the old one."""


def opens_with(repo: Path, password: str, context: str) -> bool:
    """True if ``password`` opens the repository (and it reads back); False if it is the wrong password (exit 12)."""
    proc = run_zerofs("cat", "/d/a.txt", repo=repo, input=b"", env={"ZEROFS_PASSWORD": password}, expect=None)
    assert proc.returncode in (0, 12), f"{context}: cat with {password!r}: exit {proc.returncode}\n{proc.stderr}"
    if proc.returncode == 0:
        assert proc.stdout == CONTENT, f"{context}: cat with {password!r} read other bytes"
    return proc.returncode == 0


def slot_ids(repo: Path, password: str) -> list[str]:
    """The ids of the key slots, listed by ``zerofs key list`` with ``password``."""
    proc = run_zerofs("key", "list", "--json", repo=repo, input=b"", env={"ZEROFS_PASSWORD": password})
    return [slot["id"] for slot in json.loads(proc.stdout)]


def slot_files(repo: Path) -> set[str]:
    """The names of the key slot files in ``keys/`` (16 hex digits; a writer's temporary file is not one)."""
    return {name for name in os.listdir(repo / "keys") if len(name) == 16 and set(name) <= set("0123456789abcdef")}


@pytest.fixture
def template(tmp_path: Path) -> Path:
    """An encrypted repository whose one key slot opens with ``OLD``, holding /d/a.txt."""
    repo = tmp_path / "template"
    run_zerofs("init", "--encrypt", "-q", repo=repo, input=b"", env={"ZEROFS_PASSWORD": OLD})
    run_zerofs("write", "-p", "-q", "/d/a.txt", repo=repo, input=CONTENT, env={"ZEROFS_PASSWORD": OLD})
    return repo


@pytest.fixture
def new_password_file(tmp_path: Path) -> Path:
    path = tmp_path / "new-password"
    path.write_text(NEW + "\n")
    return path


def check_after(repo: Path, context: str, *, finished: bool, must_open: str | None, gone: str | None) -> set[str]:
    """The passwords of ``OLD`` and ``NEW`` that open the repository now, after checking the invariants.

    At least one opens, and ``must_open`` does; ``gone`` (the password
    whose slot goes) no longer opens once the command ``finished``; the
    slots ``key list`` shows are as many as the passwords that open (one
    each); fsck passes.
    """
    opening = {password for password in (OLD, NEW) if opens_with(repo, password, context)}
    assert opening, f"{context}: neither the old nor the new password opens the repository"
    if must_open is not None:
        assert must_open in opening, f"{context}: {must_open!r} no longer opens the repository"
    if finished and gone is not None:
        assert gone not in opening, f"{context}: {gone!r} still opens the repository after the command returned"
    for password in opening:
        assert len(slot_ids(repo, password)) == len(opening), f"{context}: key list disagrees with {opening}"
    proc = run_zerofs("fsck", repo=repo, input=b"", env={"ZEROFS_PASSWORD": min(opening)}, expect=None)
    assert proc.returncode == 0, f"{context}: fsck exit {proc.returncode}\n{proc.stdout!r}\n{proc.stderr}"
    return opening


def stop_when_keys_change(repo: Path, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start ``zerofs ARGS`` and SIGSTOP it as soon as the set of slot files in ``keys/`` changes.

    Returns the stopped process (or the finished one, if it finished before the change was seen).
    """
    before = slot_files(repo)
    proc = subprocess.Popen(
        zerofs_command(repo, *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**cli_env(), **env},
    )
    deadline = time.monotonic() + 60
    while proc.poll() is None and slot_files(repo) == before:
        assert time.monotonic() < deadline, f"zerofs {args[0]} {args[1]} did not change the key slots in 60 s"
    if proc.poll() is None:
        proc.send_signal(signal.SIGSTOP)
    return proc


# -- key passwd -----------------------------------------------------------------------------------------


def test_sigkill_during_key_passwd_leaves_the_old_or_the_new_password(
    template: Path, new_password_file: Path, tmp_path: Path
) -> None:
    seed = 1501
    args = ["key", "passwd", "--new-password-file", str(new_password_file)]
    env = {"ZEROFS_PASSWORD": OLD}
    undisturbed = tmp_path / "undisturbed"
    shutil.copytree(template, undisturbed)
    duration, _ = timed(undisturbed, *args, env=env)
    assert check_after(undisturbed, "undisturbed", finished=True, must_open=NEW, gone=OLD) == {NEW}

    seen = _kill_rounds(template, tmp_path, args, env, seed, duration, must_open=None, gone=OLD)
    assert frozenset({OLD}) in seen, f"no kill came before the new slot was written: {seen}"

    stopped: list[set[str]] = []
    while len(stopped) < STOPS and {OLD, NEW} not in stopped:  # stopped before the old slot's delete, once
        repo = tmp_path / f"stopped{len(stopped)}"
        shutil.copytree(template, repo)
        proc = stop_when_keys_change(repo, args, env)
        with reaped(proc):
            assert proc.poll() is None, "key passwd finished before it was stopped"
            context = "key passwd stopped once its new slot was written"
            stopped.append(check_after(repo, context, finished=False, must_open=NEW, gone=OLD))
            proc.send_signal(signal.SIGKILL)
        assert check_after(repo, f"{context}, then killed", finished=False, must_open=NEW, gone=OLD) == stopped[-1]
    assert {OLD, NEW} in stopped, f"key passwd was never stopped between its two steps: {stopped}"


def _kill_rounds(
    template: Path,
    tmp_path: Path,
    args: list[str],
    env: dict[str, str],
    seed: int,
    duration: float,
    *,
    must_open: str | None,
    gone: str,
) -> list[frozenset[str]]:
    """Run ``args`` on fresh copies of ``template``, SIGKILLed at ``kill_fractions`` of ``duration``; check each.

    Returns the set of passwords that opened each copy afterwards.
    """
    what = " ".join(args[:2])
    seen: list[frozenset[str]] = []
    killed = 0
    for k, fraction in enumerate(kill_fractions(random.Random(seed)), start=1):
        delay = fraction * duration
        context = f"{what}, seed {seed}, round {k}, SIGKILL after {delay:.3f} s ({fraction:.2f} of {duration:.2f} s)"
        repo = tmp_path / f"repo{k}"
        shutil.copytree(template, repo)
        was_killed = run_and_kill(repo, args, delay, env=env)
        killed += was_killed
        seen.append(frozenset(check_after(repo, context, finished=not was_killed, must_open=must_open, gone=gone)))
        shutil.rmtree(repo)
    assert killed >= KILLS // 2, f"only {killed} of {KILLS} {what} were still running when killed"
    return seen


# -- key remove -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("removed", [NEW, OLD], ids=["another-slot", "its-own-slot"])
def test_sigkill_during_key_remove_never_leaves_neither_and_a_removed_password_never_opens(
    template: Path, new_password_file: Path, tmp_path: Path, removed: str
) -> None:
    """Two slots (``OLD``, ``NEW``); ``OLD`` removes the slot of ``removed`` (``--force`` if it is its own)."""
    seed = 1502 if removed == NEW else 1503
    env = {"ZEROFS_PASSWORD": OLD}
    [old_slot] = slot_ids(template, OLD)
    added = run_zerofs(
        "key", "add", "--json", "--new-password-file", str(new_password_file), repo=template, input=b"", env=env
    )
    new_slot = json.loads(added.stdout)["added"]
    kept = OLD if removed == NEW else NEW
    args = ["key", "remove", new_slot] if removed == NEW else ["key", "remove", "--force", old_slot]
    undisturbed = tmp_path / "undisturbed"
    shutil.copytree(template, undisturbed)
    duration, _ = timed(undisturbed, *args, env=env)
    assert check_after(undisturbed, "undisturbed", finished=True, must_open=kept, gone=removed) == {kept}

    seen = _kill_rounds(template, tmp_path, args, env, seed, duration, must_open=kept, gone=removed)
    assert frozenset({OLD, NEW}) in seen, f"no kill came before the slot was removed: {seen}"

    repo = tmp_path / "stopped"
    shutil.copytree(template, repo)
    proc = stop_when_keys_change(repo, args, env)
    with reaped(proc):
        assert proc.poll() is None, "key remove finished before it was stopped"
        context = "key remove stopped once the slot file was deleted"
        assert check_after(repo, context, finished=True, must_open=kept, gone=removed) == {kept}
        proc.send_signal(signal.SIGKILL)
    assert check_after(repo, f"{context}, then killed", finished=True, must_open=kept, gone=removed) == {kept}
