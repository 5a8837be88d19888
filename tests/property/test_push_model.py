"""push/pull (services.sync.transfer) between two real repositories over random changes, against a model.

The model of each repository is its files (``{name: bytes}``) and its history: the list of
commit ids from its first commit to HEAD. A transfer from S to D is a fast-forward when D's
history is a prefix of S's, or D holds only its first commit; then (or when forced) D takes
S's files and history, else it raises ``NotFastForwardError`` and nothing changes. A dry run
changes nothing and counts what the transfer would send. After every step both trees are
read back and compared with the model, and after a transfer the destination is checked
whole (fsck: every object reachable from every commit present and verified).
"""

from __future__ import annotations

import io
import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from tests.conftest import AUTHOR
from zerofs.chunking import ChunkParams
from zerofs.history import iter_log
from zerofs.objects import Kind
from zerofs.paths import StorePath
from zerofs.repo import Repository
from zerofs.services import browse, edit, fsck
from zerofs.services.sync import NotFastForwardError, transfer
from zerofs.tree import walk

NAMES = ["/a", "/b", "/d/c", "/d/e/f", "/d/e/g"]
SIDES = ("A", "B")
contents = st.sampled_from([b"", b"one", b"two" * 4000, bytes(range(256)) * 300]) | st.binary(max_size=200)


class PushModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.where = Path(tempfile.mkdtemp(prefix="zerofs-push-model-"))
        # Different chunk parameters: ids are content hashes, so objects still match.
        self.repos = {
            "A": Repository.init(self.where / "A", author=AUTHOR),
            "B": Repository.init(self.where / "B", author=AUTHOR, chunk_params=ChunkParams(16384, 4096, 65536)),
        }
        self.files: dict[str, dict[str, bytes]] = {side: {} for side in SIDES}
        self.history = {side: [repo.head_id()] for side, repo in self.repos.items()}

    def teardown(self) -> None:
        for repo in self.repos.values():
            repo.close()
        shutil.rmtree(self.where, ignore_errors=True)

    def _committed(self, side: str) -> None:
        head_id = self.repos[side].head_id()
        if head_id != self.history[side][-1]:
            self.history[side].append(head_id)

    @rule(side=st.sampled_from(SIDES), name=st.sampled_from(NAMES), data=contents)
    def write(self, side: str, name: str, data: bytes) -> None:
        edit.write_file(self.repos[side], StorePath.parse(name), io.BytesIO(data), parents=True)
        self.files[side][name] = data
        self._committed(side)

    @rule(side=st.sampled_from(SIDES), name=st.sampled_from(NAMES))
    def remove(self, side: str, name: str) -> None:
        edit.remove_path(self.repos[side], StorePath.parse(name), missing_ok=True)
        self.files[side].pop(name, None)
        self._committed(side)

    @rule(from_a=st.booleans(), force=st.booleans(), dry_run=st.booleans())
    def push(self, from_a: bool, force: bool, dry_run: bool) -> None:
        source, dest = ("A", "B") if from_a else ("B", "A")
        src_history, dst_history = self.history[source], self.history[dest]
        is_fast_forward = src_history[: len(dst_history)] == dst_history or len(dst_history) == 1
        if not is_fast_forward and not force:
            with pytest.raises(NotFastForwardError):
                transfer(self.repos[source], self.repos[dest], dry_run=dry_run)
            return
        planned = transfer(self.repos[source], self.repos[dest], force=force, dry_run=True)
        assert planned.dest_head_after == dst_history[-1]
        if dry_run:
            return
        result = transfer(self.repos[source], self.repos[dest], force=force)
        assert result.is_fast_forward == is_fast_forward
        assert (result.commits, result.objects, result.stored_bytes) == (
            planned.commits,
            planned.objects,
            planned.stored_bytes,
        )
        if src_history[-1] == dst_history[-1]:
            assert result.is_up_to_date
        self.files[dest] = dict(self.files[source])
        self.history[dest] = list(src_history)
        self._check_whole(dest)

    @precondition(lambda self: self.history["A"][-1] != self.history["B"][-1])
    @rule()
    def push_again_after_pushing_sends_nothing(self) -> None:
        if len(self.history["B"]) > 1 and self.history["A"][: len(self.history["B"])] != self.history["B"]:
            return  # not a fast-forward: the push rule covers that
        transfer(self.repos["A"], self.repos["B"])
        again = transfer(self.repos["A"], self.repos["B"])
        assert again.is_up_to_date
        assert again.objects == 0
        self.files["B"] = dict(self.files["A"])
        self.history["B"] = list(self.history["A"])

    def _check_whole(self, side: str) -> None:
        repo = self.repos[side]
        events = list(fsck.check(repo, read_data=True))
        findings = [e for e in events if isinstance(e, fsck.Finding)]
        assert findings == []

    @invariant()
    def trees_and_histories_match_the_model(self) -> None:
        for side, repo in self.repos.items():
            assert [commit_id for commit_id, _ in iter_log(repo)] == list(reversed(self.history[side]))
            head_root = repo.resolve_commit(repo.head_id()).root_id
            found = {}
            for path, entry in walk(repo, head_root, StorePath()):
                if entry.kind is not Kind.DIR:
                    found[str(path)] = b"".join(browse.read_file(repo, path))
            assert found == self.files[side]


TestPushModel = PushModel.TestCase
TestPushModel.settings = settings(TestPushModel.settings, stateful_step_count=25)
