"""history.resolve_revision and paths.RevPath: HEAD~N, ^ chains, id prefixes, errors, no writes."""

from __future__ import annotations

import contextlib
import itertools

import pytest

from zerofs.errors import InvalidNameError, NotFoundError, UsageError
from zerofs.history import iter_log, resolve_revision
from zerofs.objects import Commit
from zerofs.paths import RevPath, StorePath
from zerofs.repo import Repository, Staging
from zerofs.services import edit


@pytest.fixture
def chain(repo: Repository) -> list[bytes]:
    """Four commits after init; returns commit ids newest first (index = HEAD~index)."""
    for name in ("a", "b", "c", "d"):
        edit.mkdir(repo, StorePath.parse(f"/{name}"))
    return [commit_id for commit_id, _ in iter_log(repo)]


def test_head_and_head_tilde_zero_are_head(repo: Repository, chain: list[bytes]) -> None:
    assert resolve_revision(repo, "HEAD") == chain[0]
    assert resolve_revision(repo, "HEAD~0") == chain[0]
    assert resolve_revision(repo, None) == chain[0]


@pytest.mark.parametrize(
    ("text", "back"),
    [
        ("HEAD~1", 1),
        ("HEAD~", 1),
        ("HEAD^", 1),
        ("HEAD^^", 2),
        ("HEAD~2^", 3),
        ("HEAD^~2", 3),
        ("HEAD~1~1~1", 3),
        ("HEAD~4", 4),
    ],
)
def test_head_steps_follow_first_parents(repo: Repository, chain: list[bytes], text: str, back: int) -> None:
    assert resolve_revision(repo, text) == chain[back]


def test_head_past_the_first_commit_is_not_found(repo: Repository, chain: list[bytes]) -> None:
    with pytest.raises(NotFoundError, match="past the first commit") as info:
        resolve_revision(repo, "HEAD~5")
    assert info.value.exit_code == 3
    with pytest.raises(NotFoundError):
        resolve_revision(repo, "HEAD~4^")


@pytest.mark.parametrize("digits", [4, 5, 7, 12, 64])
def test_unique_prefixes_of_any_length_from_four_digits(repo: Repository, chain: list[bytes], digits: int) -> None:
    for commit_id in chain:
        assert resolve_revision(repo, commit_id.hex()[:digits]) == commit_id
        assert resolve_revision(repo, commit_id.hex()[:digits].upper()) == commit_id


def test_prefix_with_steps(repo: Repository, chain: list[bytes]) -> None:
    assert resolve_revision(repo, chain[1].hex()[:8] + "~2") == chain[3]
    assert resolve_revision(repo, chain[1].hex()[:8] + "^") == chain[2]


@pytest.mark.parametrize("text", ["a", "ab", "abc"])
def test_prefix_shorter_than_four_digits_is_a_usage_error(repo: Repository, chain: list[bytes], text: str) -> None:
    with pytest.raises(UsageError, match="at least 4 hex digits") as info:
        resolve_revision(repo, text)
    assert info.value.exit_code == 2


@pytest.mark.parametrize("text", ["", "head", "HEAD~x", "HEAD~-1", "main", "HEAD:", "12g4", "HEAD^2x"])
def test_malformed_revision_is_a_usage_error(repo: Repository, chain: list[bytes], text: str) -> None:
    with pytest.raises(UsageError, match="invalid revision"):
        resolve_revision(repo, text)


def test_unknown_prefix_is_not_found(repo: Repository, chain: list[bytes]) -> None:
    taken = {c.hex()[:8] for c in chain}
    unknown = next(p for p in (f"{n:08x}" for n in itertools.count()) if p not in taken)
    with pytest.raises(NotFoundError, match="unknown revision") as info:
        resolve_revision(repo, unknown)
    assert info.value.exit_code == 3


def test_prefix_of_a_non_commit_object_is_not_a_revision(repo: Repository, chain: list[bytes]) -> None:
    root_id = repo.resolve_commit(chain[0]).root_id
    with pytest.raises(NotFoundError):
        resolve_revision(repo, root_id.hex()[:12])


def test_ambiguous_prefix_lists_candidates(repo: Repository) -> None:
    """Two stored commits whose ids share 5 hex digits: 4 and 5 digits are ambiguous, 6+ are not."""
    root_id = repo.resolve_commit(repo.head_id()).root_id
    staging = Staging(repo)
    seen: dict[str, Commit] = {}
    for time_ns in itertools.count():
        commit = Commit(root_id, (), time_ns, "test@host", "made up", {"op": "test"})
        commit_id, _ = repo.encode_node(commit)
        other = seen.setdefault(commit_id.hex()[:5], commit)
        if other is not commit:
            break
    first_id, second_id = staging.put(other), staging.put(commit)
    with repo.batch() as batch:
        staging.write_to(batch)
    shared = first_id.hex()[:5]
    assert second_id.hex().startswith(shared)
    for text in (shared[:4], shared):
        with pytest.raises(UsageError, match="ambiguous revision") as info:
            resolve_revision(repo, text)
        assert first_id.hex()[:12] in info.value.message
        assert second_id.hex()[:12] in info.value.message
        assert info.value.exit_code == 2
    length = next(n for n in range(6, 65) if first_id.hex()[:n] != second_id.hex()[:n])
    assert resolve_revision(repo, first_id.hex()[:length]) == first_id


def test_resolving_never_writes(repo: Repository, chain: list[bytes]) -> None:
    before = list(repo.iter_blobs()), repo.head_id()
    for text in ("HEAD", "HEAD~2", chain[2].hex()[:6], "HEAD~9", "zzz", "abc"):
        with contextlib.suppress(NotFoundError, UsageError):
            resolve_revision(repo, text)
    assert (list(repo.iter_blobs()), repo.head_id()) == before


def test_rev_path_parsing() -> None:
    assert RevPath.parse("/data/x") == RevPath(None, StorePath.parse("/data/x"))
    assert RevPath.parse("HEAD~3:/data") == RevPath("HEAD~3", StorePath.parse("/data"))
    assert RevPath.parse("3f9a2c1:/") == RevPath("3f9a2c1", StorePath())
    # An absolute path is never split, whatever colons its names hold.
    assert RevPath.parse("/a:/b") == RevPath(None, StorePath.parse("/a:/b"))
    assert str(RevPath.parse("HEAD^:/a/b")) == "HEAD^:/a/b"
    assert str(RevPath.parse("/a")) == "/a"
    assert RevPath.parse("/a").is_head


@pytest.mark.parametrize("text", [":/data", "data", "HEAD:data", "HEAD"])
def test_rev_path_rejects_what_is_not_rev_colon_absolute_path(text: str) -> None:
    with pytest.raises(UsageError):
        RevPath.parse(text)


def test_rev_path_validates_names() -> None:
    with pytest.raises(InvalidNameError):
        RevPath.parse("HEAD:/a/../b")
