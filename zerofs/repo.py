"""A repository: a store plus its recorded configuration.

This is the only way nodes reach or leave the store: ``Repository`` decodes
(and verifies) what it reads, and ``Staging`` encodes what a change is about
to write, so that the change can be written in one batch, objects first.
It must not move refs (``history`` does) or know about paths (``tree``).
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections import OrderedDict
from typing import Final, NamedTuple, TypeVar

from zerofs.chunking import ChunkParams
from zerofs.errors import ConflictError, CorruptionError, RepositoryError
from zerofs.objects import (
    ChunkListNode,
    Commit,
    DirNode,
    FileNode,
    Kind,
    Node,
    ObjectId,
    SymlinkNode,
    decode,
    encode,
    iter_child_ids,
    object_id,
)
from zerofs.store import ObjectStore, WriteBatch, open_store
from zerofs.store.codec import decode_record, encode_record

REPO_FORMAT_VERSION: Final = 1
"""Bump when a change makes old code misread the repository."""
CONFIG_KEY: Final = b"config"
DEFAULT_COMPRESSION_LEVEL: Final = 3
NODE_CACHE_SIZE: Final = 4096

N = TypeVar("N", FileNode, ChunkListNode, DirNode, SymlinkNode, Commit)


class RepoConfig(NamedTuple):
    """What is fixed for a repository at ``init``."""

    format_version: int
    chunk_params: ChunkParams
    compression_level: int
    repo_id: str
    created_ns: int

    def to_json(self) -> bytes:
        """Return the canonical JSON stored in the repository's metadata."""
        return json.dumps(
            {
                "format_version": self.format_version,
                "chunking": self.chunk_params.to_dict(),
                "compression_level": self.compression_level,
                "repo_id": self.repo_id,
                "created_ns": self.created_ns,
            },
            sort_keys=True,
        ).encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> RepoConfig:
        """Parse stored config, refusing formats this version cannot read.

        Raises:
            RepositoryError: unreadable config or a newer format version.
        """
        try:
            data = json.loads(raw)
            version = int(data["format_version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RepositoryError(f"repository at {where} has unreadable configuration") from exc
        if version > REPO_FORMAT_VERSION:
            raise RepositoryError(
                f"repository at {where} has format version {version}; this zerofs reads up to "
                f"version {REPO_FORMAT_VERSION}: upgrade zerofs"
            )
        try:
            chunking = data["chunking"]
            return cls(
                version,
                ChunkParams(
                    chunking["avg_bytes"], chunking["min_bytes"], chunking["max_bytes"], chunking["normalization"]
                ),
                int(data["compression_level"]),
                str(data["repo_id"]),
                int(data["created_ns"]),
            )
        except (KeyError, TypeError) as exc:
            raise RepositoryError(f"repository at {where} has incomplete configuration") from exc


class Repository:
    """An open repository: verified reads of nodes and chunks."""

    def __init__(self, store: ObjectStore, config: RepoConfig, path: str | os.PathLike[str] | None = None) -> None:
        """Wrap an open store whose config has been read."""
        self.store = store
        self.config = config
        self.path = None if path is None else os.fspath(path)
        self._nodes: OrderedDict[bytes, Node] = OrderedDict()
        self._cache_lock = threading.Lock()  # export reads from worker threads

    # -- lifecycle ------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        *,
        author: str,
        chunk_params: ChunkParams | None = None,
        compression_level: int = DEFAULT_COMPRESSION_LEVEL,
    ) -> Repository:
        """Create a repository at ``path`` (a new or empty directory).

        Writes the config, then an empty root directory and a first commit,
        then HEAD, in one batch.

        Raises:
            ConflictError: a repository (or other files) already exists there.
        """
        path = os.fspath(path)
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            if os.path.exists(os.path.join(path, "data.mdb")):
                raise ConflictError(f"a repository already exists at {path}")
            raise ConflictError(f"{path} exists and is not an empty directory (pass --repo a new or empty directory)")
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise RepositoryError(f"cannot create {path}: {exc.strerror}") from exc
        config = RepoConfig(
            REPO_FORMAT_VERSION, chunk_params or ChunkParams(), compression_level, os.urandom(16).hex(), time.time_ns()
        )
        store = open_store(path, create=True)
        repo = cls(store, config, path)
        staging = Staging(repo)
        root_id = staging.put(DirNode())
        commit = Commit(root_id, (), config.created_ns, author, "init", {"op": "init"})
        commit_id = staging.put(commit)
        with store.batch() as batch:
            batch.put_meta(CONFIG_KEY, config.to_json())
            staging.write_to(batch)
            batch.cas_ref(b"HEAD", None, commit_id)
        return repo

    @classmethod
    def open(
        cls, path: str | os.PathLike[str], *, readonly: bool = False, writer_lease: bool = True, readahead: bool = False
    ) -> Repository:
        """Open the repository at ``path`` (``writer_lease``, ``readahead``: see ``LmdbStore``).

        Raises:
            RepositoryError: none there, damaged, or of a newer format.
        """
        path = os.fspath(path)
        store = open_store(path, readonly=readonly, writer_lease=writer_lease, readahead=readahead)
        raw = store.get_meta(CONFIG_KEY)
        if raw is None:
            store.close()
            raise RepositoryError(f"{path} is not a zerofs repository (no configuration)")
        return cls(store, RepoConfig.from_json(raw, path), path)

    def close(self) -> None:
        """Close the store."""
        self.store.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------

    def get_record_body(self, node_id: ObjectId) -> tuple[Kind, bytes]:
        """Return (kind, body) of a stored object, verified against its id.

        Raises:
            CorruptionError: the object is missing or damaged.
        """
        record = self.store.get(node_id)
        if record is None:
            raise CorruptionError(f"object {node_id.hex()[:16]} is missing from the repository")
        return decode_record(node_id, record)

    def get_node(self, node_id: ObjectId) -> Node:
        """Return the decoded node with this id (cached; nodes are immutable)."""
        with self._cache_lock:
            node = self._nodes.get(node_id)
            if node is not None:
                self._nodes.move_to_end(node_id)
                return node
        kind, body = self.get_record_body(node_id)
        if kind is Kind.CHUNK:
            raise CorruptionError(f"object {node_id.hex()[:16]} is a chunk where a node was expected")
        node = decode(kind, body, node_id.hex())
        self.remember(node_id, node)
        return node

    def remember(self, node_id: ObjectId, node: Node) -> None:
        """Keep a decoded node in the cache."""
        with self._cache_lock:
            self._nodes[node_id] = node
            if len(self._nodes) > NODE_CACHE_SIZE:
                self._nodes.popitem(last=False)

    def get_typed(self, node_id: ObjectId, node_type: type[N]) -> N:
        """Return a node that must be of ``node_type``.

        Raises:
            CorruptionError: it is missing, damaged, or of another kind.
        """
        node = self.get_node(node_id)
        if not isinstance(node, node_type):
            raise CorruptionError(
                f"object {node_id.hex()[:16]} is a {type(node).__name__}, expected a {node_type.__name__}"
            )
        return node

    def read_chunk(self, chunk_id: ObjectId) -> bytes:
        """Return a chunk's bytes, verified against its id."""
        kind, body = self.get_record_body(chunk_id)
        if kind is not Kind.CHUNK:
            raise CorruptionError(f"object {chunk_id.hex()[:16]} is not a chunk")
        return body

    def resolve_commit(self, commit_id: ObjectId) -> Commit:
        """Return a commit node."""
        return self.get_typed(commit_id, Commit)

    def head_id(self) -> ObjectId:
        """Return the commit HEAD names.

        Raises:
            RepositoryError: HEAD is not set (an incomplete repository).
        """
        head = self.store.get_ref(b"HEAD")
        if head is None:
            raise RepositoryError(f"repository at {self.path} has no HEAD (incomplete init?)")
        return head

    def encode_node(self, node: Node) -> tuple[ObjectId, bytes]:
        """Return (id, record) for a node, compressed as configured."""
        body = encode(node)
        return object_id(node.kind, body), encode_record(node.kind, body, self.config.compression_level)

    def encode_chunk(self, data: bytes) -> tuple[ObjectId, bytes]:
        """Return (id, record) for a chunk of file content."""
        return object_id(Kind.CHUNK, data), encode_record(Kind.CHUNK, data, self.config.compression_level)


class Staging:
    """Nodes a change has built but not yet written, readable before they are."""

    def __init__(self, repo: Repository) -> None:
        """Stage on top of ``repo``."""
        self.repo = repo
        self._records: dict[bytes, bytes] = {}
        self._nodes: dict[bytes, Node] = {}

    def put(self, node: Node) -> ObjectId:
        """Encode and stage a node; return its id."""
        node_id, record = self.repo.encode_node(node)
        if node_id not in self._records:
            self._records[node_id] = record
            self._nodes[node_id] = node
        return node_id

    def write_to(self, batch: WriteBatch, top_id: ObjectId | None = None) -> None:
        """Write staged records into ``batch`` (objects go before refs).

        With ``top_id``, only the staged nodes reachable from it: path copying
        stages intermediate directories (one per level per step of a change)
        that the final tree no longer uses, and writing them would only make
        garbage for gc.
        """
        if top_id is None:
            for node_id, record in self._records.items():
                batch.put(node_id, record)
            return
        pending = [top_id]
        seen: set[bytes] = set()
        while pending:
            node_id = pending.pop()
            if node_id in seen or node_id not in self._records:
                continue
            seen.add(node_id)
            batch.put(node_id, self._records[node_id])
            pending.extend(child_id for _, child_id in iter_child_ids(self._nodes[node_id]))

    def get_typed(self, node_id: ObjectId, node_type: type[N]) -> N:
        """Return a staged or stored node of ``node_type``."""
        node = self._nodes.get(node_id)
        if isinstance(node, node_type):
            return node
        return self.repo.get_typed(node_id, node_type)

    def __len__(self) -> int:
        return len(self._records)
