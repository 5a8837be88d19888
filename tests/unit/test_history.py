"""history.walk_commits: the one history walk, with the options log, gc, fsck and usage use."""

from __future__ import annotations

from collections.abc import Iterable

from zerofs.history import iter_history, iter_log, walk_commits
from zerofs.objects import Commit, DirNode, ObjectId
from zerofs.repo import Repository, Staging


def merge_history(repo: Repository) -> tuple[ObjectId, ObjectId, ObjectId, ObjectId]:
    """first <- one, first <- two, and a merge of (one, two); returns (first, one, two, merge)."""
    first = repo.head_id()
    staging = Staging(repo)
    root = staging.put(DirNode())
    one = staging.put(Commit(root, (first,), 1, "a", "one", {}))
    two = staging.put(Commit(root, (first,), 2, "a", "two", {}))
    merge = staging.put(Commit(root, (one, two), 3, "a", "merge", {}))
    with repo.batch() as batch:
        staging.write_to(batch)
    return first, one, two, merge


def ids(walk: Iterable[tuple[ObjectId, Commit]]) -> list[ObjectId]:
    return [commit_id for commit_id, _ in walk]


def test_all_parents_depth_first_each_commit_once(repo: Repository) -> None:
    first, one, two, merge = merge_history(repo)
    assert ids(walk_commits(repo, [merge])) == [merge, one, first, two]
    assert ids(iter_history(repo, [merge])) == [merge, one, first, two]


def test_first_parents_only(repo: Repository) -> None:
    first, one, _, merge = merge_history(repo)
    assert ids(walk_commits(repo, [merge], all_parents=False)) == [merge, one, first]
    assert ids(iter_log(repo, merge)) == [merge, one, first]


def test_a_stop_commit_is_neither_yielded_nor_walked_past(repo: Repository) -> None:
    first, one, two, merge = merge_history(repo)
    assert ids(walk_commits(repo, [merge], stop={one})) == [merge, two, first]
    assert ids(walk_commits(repo, [merge], all_parents=False, stop={one})) == [merge]


def test_a_graft_table_replaces_parents(repo: Repository) -> None:
    first, _, two, merge = merge_history(repo)
    assert ids(walk_commits(repo, [merge], grafts={merge: (two,)})) == [merge, two, first]
    assert ids(walk_commits(repo, [merge], grafts={merge: ()})) == [merge]


def test_a_reader_that_returns_none_skips_a_commit_and_what_only_it_reaches(repo: Repository) -> None:
    first, one, two, merge = merge_history(repo)
    skipped: list[ObjectId] = []

    def read(commit_id: ObjectId) -> Commit | None:
        if commit_id == one:
            skipped.append(commit_id)
            return None
        return repo.resolve_commit(commit_id)

    assert ids(walk_commits(repo, [merge], read=read)) == [merge, two, first]
    assert skipped == [one]
    assert ids(walk_commits(repo, [merge], all_parents=False, read=read)) == [merge]
