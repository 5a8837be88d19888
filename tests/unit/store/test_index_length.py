"""The LMDB index never leaves its file shorter than its last page (store/index.py).

LMDB counts pages a transaction allocated and freed again without writing
them in its last page number, so a commit can leave the file shorter than
that page's end; the check at open (``_check_length``, which guards against
reading past the end of a truncated file) then took a healthy index for a
damaged one. Found by the SIGKILL-during-gc test, which failed once in CI.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from zerofs.store.index import LmdbIndex


def test_every_commit_leaves_the_file_covering_its_last_page(tmp_path: Path) -> None:
    index = LmdbIndex(str(tmp_path), create=True, sync=False)
    rng = random.Random(1)
    keys: list[bytes] = []
    try:
        for _ in range(400):  # with this seed, plain LMDB leaves the file short after one of these commits
            with index.writing() as txn:
                for _ in range(rng.randrange(1, 400)):
                    keys.append(rng.randbytes(32))
                    txn.put(keys[-1], rng.randbytes(20), db=index.blobs)
                for _ in range(rng.randrange(0, 300)):
                    if keys:
                        txn.delete(keys.pop(rng.randrange(len(keys))), db=index.blobs)
            needed = (index.env.info()["last_pgno"] + 1) * index.env.stat()["psize"]
            assert os.stat(index.path).st_size >= needed
    finally:
        index.close()
    LmdbIndex(str(tmp_path)).close()  # and it opens again
