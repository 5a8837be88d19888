"""A repository: a store plus its recorded configuration, and the only door to the store.

``Repository`` decodes (and verifies) what it reads, encodes what is
written, and holds the local repository's locks; ``Staging`` is the one
node sink: it collects the nodes a change is about to write, so that the
change can be written in one batch, objects first, or writes them into a
batch at once. Every layer above reaches stored bytes only through
here (an import-linter contract forbids importing ``zerofs.store`` above
this module). This module must not move refs on its own account
(``history`` does) or know about paths (``tree``).

A file stored as one chunk has no FILE node: its entry names the chunk, so
a repository of many small files holds one object per file, not two.
``get_typed(file_id, FileNode)`` gives such a file's index all the same,
built from what the index knows of the chunk.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Final, NamedTuple, TypeVar

from zerofs.chunking import ChunkParams
from zerofs.errors import (
    ConflictError,
    CorruptionError,
    DamagedObjectError,
    Hint,
    MissingObjectError,
    RepositoryError,
    UsageError,
    WrongPasswordError,
)
from zerofs.objects import (
    ChunkListNode,
    ChunkRef,
    Commit,
    DirNode,
    FileNode,
    Kind,
    Node,
    ObjectId,
    SpecialNode,
    SymlinkNode,
    chunk_id,
    decode,
    encode,
    iter_child_ids,
    object_id,
)
from zerofs.store.base import BlobInfo, CachedFile, RefMovedError, Store, WriteBatch
from zerofs.store.codec import CODEC_SEALED, Record, decode_record, encode_record
from zerofs.store.local import PackStore, decode_config_file, is_local_repository
from zerofs.store.locks import RepoLocks

if TYPE_CHECKING:  # imported where they are used: reading a file needs none of them
    from zerofs.crypto.keys import Keys
    from zerofs.crypto.slots import KdfParams, KeySlot, Unlocked
    from zerofs.keycache import KeyCache
    from zerofs.store.filecache import FileCache
    from zerofs.store.legacy import UpgradeResult
    from zerofs.store.maintenance import RebuildResult
    from zerofs.store.objects_s3 import S3Objects
    from zerofs.store.results import ReclaimResult, ScannedRecord, StorageProblem, StorageUsage
    from zerofs.store.s3collect import SharedCollection
    from zerofs.store.s3config import S3Settings
    from zerofs.store.s3store import RefRecord, S3Store
    from zerofs.store.sealer import Sealer

__all__ = [
    "BlobInfo",
    "CachedFile",
    "Encryption",
    "KeySlotInfo",
    "RebuildResult",
    "ReclaimResult",
    "Record",
    "RefMovedError",
    "RepoBatch",
    "RepoConfig",
    "Repository",
    "S3Settings",
    "ScannedRecord",
    "Staging",
    "StorageProblem",
    "StorageUsage",
    "UpgradeResult",
]

_LAZY: Final = {
    "ReclaimResult": "zerofs.store.results",
    "ScannedRecord": "zerofs.store.results",
    "StorageProblem": "zerofs.store.results",
    "StorageUsage": "zerofs.store.results",
    "RebuildResult": "zerofs.store.maintenance",
    "UpgradeResult": "zerofs.store.legacy",
    "S3Settings": "zerofs.store.s3config",
}


def __getattr__(name: str) -> object:
    """The result types of maintenance, imported when first asked for (reading a file never does)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(module), name)


REPO_FORMAT_VERSION: Final = 3
ENCRYPTED_FORMAT_VERSION: Final = 4
"""The format of an encrypted repository (issue #15): a plain one stays at ``REPO_FORMAT_VERSION``.

A version of its own, so a zerofs that predates encryption refuses the
repository ("upgrade zerofs") instead of reading sealed packs as damage."""
ENCRYPTION_VERSION: Final = 1
"""Keys derived by HKDF-SHA256 (``crypto/keys.py``), blobs sealed with AES-256-GCM (``crypto/sealing.py``)."""
KEYED_CHUNKER: Final = "pyfastcdc-gear-xor-v1"
"""The keyed chunker of ``chunking.make_chunker(params, seed)``: the gear table XORed with a keyed value."""
DEVELOPMENT_FORMAT: Final = 2
"""Packs before zstd payloads carried the CRC of their frame: made only by unreleased builds."""
"""Bump when a change makes old code misread the repository. 2: pack files beside an LMDB index."""
LEGACY_DATA_FILE: Final = "data.mdb"
"""The one file of a format-1 repository (every object in one LMDB environment)."""
DEFAULT_COMPRESSION_LEVEL: Final = 3
NODE_CACHE_SIZE: Final = 4096
INDEX_BLOAT_LIMIT: Final = 1.25
"""A writer that closes compacts the index (if alone) once the file is this much larger than its entries."""
INDEX_TIDY_MAX_BYTES: Final = 64 << 20
"""...and only an index up to this size (about a million objects, a fraction of a second to rewrite);
a larger one waits for a compacting gc."""
HEAD: Final = b"HEAD"
IdFunction = Callable[[Kind, bytes | bytearray | memoryview], ObjectId]

N = TypeVar("N", FileNode, ChunkListNode, DirNode, SymlinkNode, SpecialNode, Commit)
T = TypeVar("T")


class Encryption(NamedTuple):
    """How an encrypted repository is encrypted, as its config records it (issue #15)."""

    version: int = ENCRYPTION_VERSION
    chunker: str = KEYED_CHUNKER

    def to_dict(self) -> dict[str, object]:
        """The config's ``encryption`` field."""
        return {"version": self.version, "chunker": self.chunker}

    @classmethod
    def from_dict(cls, data: object, where: str) -> Encryption:
        """Parse the config's ``encryption`` field.

        Raises:
            RepositoryError: malformed, or a scheme this zerofs does not know.
        """
        if not isinstance(data, dict):
            raise RepositoryError(f"repository at {where} has unreadable encryption settings")
        version, chunker = data.get("version"), data.get("chunker")
        if version != ENCRYPTION_VERSION or chunker != KEYED_CHUNKER:
            raise RepositoryError(
                f"repository at {where} is encrypted with a scheme this zerofs does not know "
                f"(version {version!r}, chunker {chunker!r}): upgrade zerofs"
            )
        return cls(version, chunker)


class KeySlotInfo(NamedTuple):
    """What ``Repository.list_keys`` tells of one key slot: its id, its KDF cost, and whether it opened this handle."""

    slot_id: str
    time_cost: int
    memory_kib: int
    parallelism: int
    is_current: bool


class RepoConfig(NamedTuple):
    """What is fixed for a repository at ``init``."""

    format_version: int
    chunk_params: ChunkParams
    compression_level: int
    repo_id: str
    created_ns: int
    gc_grace_s: int | None = None
    """An S3 repository's gc grace period (``store/s3gc.py``); None for a local one."""
    encryption: Encryption | None = None
    """How the repository is encrypted; None for a plain one (its format is then ``REPO_FORMAT_VERSION``)."""

    def to_json(self) -> bytes:
        """Return the canonical JSON stored in the repository's metadata."""
        fields: dict[str, object] = {
            "format_version": self.format_version,
            "chunking": self.chunk_params.to_dict(),
            "compression_level": self.compression_level,
            "repo_id": self.repo_id,
            "created_ns": self.created_ns,
        }
        if self.gc_grace_s is not None:
            fields["gc_grace_s"] = self.gc_grace_s
        if self.encryption is not None:
            fields["encryption"] = self.encryption.to_dict()
        return json.dumps(fields, sort_keys=True).encode()

    @classmethod
    def from_json_any(cls, raw: bytes, where: str) -> RepoConfig:
        """Parse stored config of any format this version can read or convert."""
        return cls._parse(raw, where, oldest=1)

    @classmethod
    def from_json(cls, raw: bytes, where: str) -> RepoConfig:
        """Parse stored config, refusing formats this version cannot read.

        Raises:
            RepositoryError: unreadable config, or a format version other than this one.
        """
        return cls._parse(raw, where, oldest=REPO_FORMAT_VERSION)

    @classmethod
    def _parse(cls, raw: bytes, where: str, *, oldest: int) -> RepoConfig:
        try:
            data = json.loads(raw)
            version = int(data["format_version"])
        except (ValueError, KeyError, TypeError) as exc:
            raise RepositoryError(f"repository at {where} has unreadable configuration") from exc
        if version > ENCRYPTED_FORMAT_VERSION or (version == ENCRYPTED_FORMAT_VERSION) != ("encryption" in data):
            raise RepositoryError(
                f"repository at {where} has format version {version}; this zerofs reads up to "
                f"version {ENCRYPTED_FORMAT_VERSION} (encrypted) and {REPO_FORMAT_VERSION} (plain): upgrade zerofs"
            )
        if version == DEVELOPMENT_FORMAT and oldest == REPO_FORMAT_VERSION:
            raise RepositoryError(
                f"repository at {where} has format version {version}, made by a development build of zerofs "
                f"(its compressed objects carry no checksum); this zerofs reads version {REPO_FORMAT_VERSION}: "
                "export its trees with the build that made it and import them into a new repository"
            )
        if version < oldest:
            raise RepositoryError(
                f"repository at {where} has format version {version}; convert it to version {REPO_FORMAT_VERSION}",
                hint=Hint.UPGRADE,
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
                int(data["gc_grace_s"]) if "gc_grace_s" in data else None,
                Encryption.from_dict(data["encryption"], where) if "encryption" in data else None,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise RepositoryError(f"repository at {where} has incomplete configuration") from exc


class Repository:
    """An open repository: verified reads of nodes and chunks, batches of writes, its locks."""

    def __init__(
        self,
        store: Store,
        config: RepoConfig,
        path: str | os.PathLike[str] | None = None,
        locks: RepoLocks | None = None,
        cache_dir: str | None = None,
        keys: Keys | None = None,
        slot_id: str | None = None,
    ) -> None:
        """Wrap an open store whose config has been read.

        ``locks``: a local repository's, if any. ``cache_dir``: where this
        user keeps caches (the host-file cache goes in a directory named by
        the repository's id); None: no host-file cache. ``keys``: an
        encrypted repository's (its store has their ``Sealer``), and
        ``slot_id`` the key slot that gave them up.
        """
        self._store = store
        self.config = config
        self.path = None if path is None else os.fspath(path)
        self._locks = locks
        self._cache_dir = cache_dir
        self._file_cache: FileCache | None = None
        self._nodes: OrderedDict[bytes, Node] = OrderedDict()
        self._cache_lock = threading.Lock()  # export reads from worker threads
        self._keys = keys
        self._slot_id = slot_id
        self.object_id: IdFunction = object_id if keys is None else keys.object_id
        """How this repository makes ids: BLAKE3, keyed with the id key in an encrypted repository."""
        self.chunk_id: Callable[[bytes | bytearray | memoryview], ObjectId] = (
            chunk_id if keys is None else functools.partial(keys.object_id, Kind.CHUNK)
        )
        """The id of a chunk of file content (``self.object_id`` of a CHUNK), one stable callable."""
        self.chunker_seed: bytes | None = None if keys is None else keys.chunker_seed
        """The seed of this repository's chunker (``chunking.make_chunker``); None: the plain chunker."""
        self._sealer = None if keys is None else _sealer(keys)
        """Seals chunks ahead for ``chunk_record`` (sharing the store's keys, so one nonce counter per key)."""

    @property
    def is_encrypted(self) -> bool:
        """True for an encrypted repository (issue #15)."""
        return self._keys is not None

    def has_same_keys(self, other: Repository) -> bool:
        """True if ``other`` makes the same ids and seals with the same keys (both plain, or one key)."""
        if self._keys is None or other._keys is None:
            return self._keys is other._keys
        return self._keys.id_key == other._keys.id_key

    # -- lifecycle ------------------------------------------------------------

    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str],
        *,
        author: str,
        chunk_params: ChunkParams | None = None,
        compression_level: int = DEFAULT_COMPRESSION_LEVEL,
        s3_settings: S3Settings | None = None,
        cache_dir: str | None = None,
        gc_grace_s: int | None = None,
        password: bytes | None = None,
        kdf: KdfParams | None = None,
        key_cache: KeyCache | None = None,
    ) -> Repository:
        """Create a repository at ``path`` (a new or empty directory, or an ``s3://`` URL).

        ``gc_grace_s``: an S3 repository's gc grace period (default ``DEFAULT_GRACE_S``
        of ``store/s3gc.py``); a local repository has none. ``password``: make
        an encrypted repository: a random master key and a first key slot
        wrapping it under ``password`` (argon2id with ``kdf``, default
        ``crypto.slots.DEFAULT_KDF``), a file ``keys/<slot id>`` or, on S3,
        an object of that key created with ``If-None-Match``; with
        ``key_cache``, the master key is also kept there for later processes
        (see ``open``), once the repository exists.

        Writes the key slot (encrypted), then the config, then an empty root
        directory and a first commit, then HEAD. An S3 repository needs
        ``s3_settings`` and a ``cache_dir`` (its host cache goes in a
        directory named by the repository's id).

        Raises:
            ConflictError: a repository (or other files) already exists there.
            UsageError: an empty password, or KDF parameters out of bounds.
        """
        path = os.fspath(path)
        config = RepoConfig(
            REPO_FORMAT_VERSION, chunk_params or ChunkParams(), compression_level, os.urandom(16).hex(), time.time_ns()
        )
        if password is not None:
            config = config._replace(format_version=ENCRYPTED_FORMAT_VERSION, encryption=Encryption())
        if is_s3_path(path):
            from zerofs.store.s3gc import DEFAULT_GRACE_S

            config = config._replace(gc_grace_s=DEFAULT_GRACE_S if gc_grace_s is None else gc_grace_s)
            first_slot = None if password is None else _new_slot(password, kdf)
            repo = cls._init_s3(path, config, _needs(s3_settings, path), _needs(cache_dir, path), first_slot)
            repo._first_commit(author)
            if first_slot is not None and password is not None:
                _remember(key_cache, config.repo_id, first_slot.master_key, first_slot.slot, password)
            return repo
        if gc_grace_s is not None:
            raise UsageError("a gc grace period is set for S3 repositories only (a local gc needs none)")
        if os.path.exists(path) and (not os.path.isdir(path) or os.listdir(path)):
            if is_local_repository(path) or os.path.exists(os.path.join(path, LEGACY_DATA_FILE)):
                raise ConflictError(f"a repository already exists at {path}")
            raise ConflictError(f"{path} exists and is not an empty directory", hint=Hint.NEW_REPOSITORY_DIR)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as exc:
            raise RepositoryError(f"cannot create {path}: {exc.strerror}") from exc
        first_slot = None if password is None else _first_key(path, password, kdf)
        keys, slot_id = (None, None) if first_slot is None else (first_slot.keys, first_slot.slot.slot_id)
        repo = cls(
            PackStore.create(path, config.to_json(), sealer=None if keys is None else _sealer(keys)),
            config,
            path,
            RepoLocks(path, readonly=False, writer_lease=True),
            keys=keys,
            slot_id=slot_id,
        )
        repo._first_commit(author)
        if first_slot is not None and password is not None:
            _remember(key_cache, config.repo_id, first_slot.master_key, first_slot.slot, password)
        return repo

    def _first_commit(self, author: str) -> None:
        """Write an empty root directory and the first commit, then HEAD."""
        staging = Staging(self)
        root_id = staging.put(DirNode())
        commit_id = staging.put(Commit(root_id, (), self.config.created_ns, author, "init", {"op": "init"}))
        with self.batch() as batch:
            staging.write_to(batch)
            batch.cas_ref(HEAD, None, commit_id)

    @classmethod
    def _init_s3(
        cls, url: str, config: RepoConfig, settings: S3Settings, cache_dir: str, first_slot: NewSlot | None
    ) -> Repository:
        """Create the config object of a new S3 repository (after checking the service can hold one).

        ``first_slot``: an encrypted repository's master key and first key
        slot; the slot's object is created before the config object, so the
        prefix is a repository only once its key exists. A config created
        meanwhile by another host's init makes this one delete its slot again.

        Raises:
            ConflictError: the bucket prefix holds a repository already.
            ObjectStoreError: the bucket is missing or unusable, or ignores conditional writes.
        """
        from zerofs.keyslots import create_bucket_slot, delete_bucket_slot
        from zerofs.store import s3store

        keys, slot_id = (None, None) if first_slot is None else (first_slot.keys, first_slot.slot.slot_id)
        objects = _s3_objects(url, settings)
        try:
            objects.check_bucket()
            if s3store.read_config(objects, objects.location.url) is not None:
                raise ConflictError(f"a repository already exists at {objects.location.url}")
            if next(iter(objects.list("")), None) is not None:  # leftovers of another repository, say
                raise ConflictError(f"{objects.location.url} is not empty (pass an empty bucket prefix)")
            objects.verify_conditional_writes()
            if first_slot is not None and not create_bucket_slot(objects, first_slot.slot):
                raise ConflictError(f"a repository is being created at {objects.location.url} by another host")
            if not s3store.create_config(objects, config.to_json()):
                if first_slot is not None:  # another init won: its slots alone may stay beside its config
                    delete_bucket_slot(objects, first_slot.slot.slot_id)
                raise ConflictError(f"a repository already exists at {objects.location.url}")
            known = s3store.known_config_path(cache_dir, objects.endpoint, objects.location.url)
            s3store.keep_config(known, config.to_json())
            store = s3store.S3Store(
                objects,
                objects.location.url,
                os.path.join(cache_dir, config.repo_id),
                s3store.repo_tag(config.repo_id),
                grace_s=_grace(config),
                sealer=None if keys is None else _sealer(keys),
            )
        except BaseException:
            objects.close()
            raise
        return cls(store, config, objects.location.url, None, cache_dir, keys=keys, slot_id=slot_id)

    @classmethod
    def _open_s3(
        cls,
        url: str,
        settings: S3Settings,
        cache_dir: str,
        *,
        readonly: bool,
        password: bytes | None,
        key_cache: KeyCache | None,
    ) -> Repository:
        """Open an S3 repository: its config from the bucket, its host cache in ``cache_dir``.

        An encrypted one's key slots are listed and read from ``keys/`` (a
        list and a read per slot: a removed slot must stop opening it at
        once, so no host keeps them), and HEAD is read with its keys.

        Raises:
            RepositoryError: no repository there (hint: init), or of another format;
                encrypted and no password given (hint: password).
            WrongPasswordError: encrypted, and no key slot opens with ``password``.
            ObjectStoreError: the bucket is missing, the service unreachable or the credentials refused.
        """
        from zerofs.store import s3store

        objects = _s3_objects(url, settings)
        try:
            where = objects.location.url
            unlock = functools.cache(lambda repo_id: _unlock(where, password, repo_id, key_cache, objects))
            known = s3store.known_config_path(cache_dir, objects.endpoint, where)
            raw = s3store.read_known_config(known)
            if raw is not None:  # one request (HEAD) for a command on this host's cache, not two
                # CorruptionError: the repository kept here was replaced by one encrypted otherwise (or not)
                with contextlib.suppress(s3store.ReplacedRepositoryError, CorruptionError):
                    config = RepoConfig.from_json(raw, where)
                    unlocked = None if config.encryption is None else unlock(config.repo_id)
                    head = _read_head(objects, config, unlocked)
                    if head is not None:
                        return cls._s3_repository(objects, config, cache_dir, readonly, head, unlocked)
            raw = s3store.read_config(objects, where)
            if raw is None:
                objects.check_bucket()  # a missing bucket says so, rather than "no repository"
                raise RepositoryError(f"no zerofs repository at {where}", hint=Hint.INIT)
            config = RepoConfig.from_json(raw, where)
            unlocked = None if config.encryption is None else unlock(config.repo_id)
            head = _read_head(objects, config, unlocked)
            s3store.keep_config(known, raw)
            return cls._s3_repository(objects, config, cache_dir, readonly, head, unlocked)
        except BaseException:
            objects.close()
            raise

    @classmethod
    def _s3_repository(
        cls,
        objects: S3Objects,
        config: RepoConfig,
        cache_dir: str,
        readonly: bool,
        head: RefRecord | None,
        unlocked: tuple[Keys, str] | None,
    ) -> Repository:
        """The repository over an open client, its config read, HEAD just read (``head``), its keys if encrypted."""
        from zerofs.store import s3store

        where = objects.location.url
        keys, slot_id = (None, None) if unlocked is None else unlocked
        store = s3store.S3Store(
            objects,
            where,
            os.path.join(cache_dir, config.repo_id),
            s3store.repo_tag(config.repo_id),
            readonly=readonly,
            read_ahead={HEAD: head},
            grace_s=_grace(config),
            sealer=None if keys is None else _sealer(keys),
        )
        return cls(store, config, where, None, cache_dir, keys=keys, slot_id=slot_id)

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        readonly: bool = False,
        writer_lease: bool = True,
        cache_dir: str | None = None,
        s3_settings: S3Settings | None = None,
        password: bytes | None = None,
        key_cache: KeyCache | None = None,
    ) -> Repository:
        """Open the repository at ``path`` (a directory or an ``s3://`` URL).

        A local repository's HEAD is checked against its ref log.
        ``writer_lease`` false: gc (which takes the lease exclusively in
        steps) and a mount (which takes it around each commit). ``cache_dir``:
        see ``__init__`` (an S3 repository needs it, and ``s3_settings``).
        ``password``: an encrypted repository's (one key slot's); a plain
        repository ignores it. Opening writes nothing a wrong password could spoil.
        ``key_cache``: where this host keeps unwrapped keys between processes
        (``zerofs.keycache``), so that opening costs no KDF if an entry is there.

        Raises:
            RepositoryError: none there, of an older format (hint: upgrade) or a newer one;
                encrypted and no password given (hint: password).
            WrongPasswordError: encrypted, and no key slot opens with ``password``.
            CorruptionError: its index is missing, damaged or behind its ref log (hint: rebuild).
            ObjectStoreError: an S3 repository's service cannot be used.
        """
        path = os.fspath(path)
        if is_s3_path(path):
            return cls._open_s3(
                path,
                _needs(s3_settings, path),
                _needs(cache_dir, path),
                readonly=readonly,
                password=password,
                key_cache=key_cache,
            )
        _require_current(path)
        locks = RepoLocks(path, readonly=readonly, writer_lease=writer_lease)
        try:
            store = PackStore(path, readonly=readonly)
            try:
                config = RepoConfig.from_json(store.read_config(), path)
                keys, slot_id = None, None
                if config.encryption is not None:
                    keys, slot_id = _unlock(path, password, config.repo_id, key_cache)
                    store.close()  # opened again with the keys: a plain one never pays for this
                    store = PackStore(path, readonly=readonly, sealer=_sealer(keys))
                repo = cls(store, config, path, locks, cache_dir, keys=keys, slot_id=slot_id)
                store.verify_refs(repo.first_parent)
            except BaseException:
                store.close()
                raise
        except BaseException:
            locks.close()
            raise
        return repo

    @staticmethod
    def exists(path: str | os.PathLike[str]) -> bool:
        """True if ``path`` holds a repository, of this format or an older one (an ``s3://`` URL: not checked here)."""
        path = os.fspath(path)
        if is_s3_path(path):
            return True
        return is_local_repository(path) or os.path.exists(os.path.join(path, LEGACY_DATA_FILE))

    @staticmethod
    def is_encrypted_at(path: str | os.PathLike[str]) -> bool:
        """True if the config file of the local repository at ``path`` says it is encrypted (issue #15).

        Reads that one small file: no lock, no index, nothing of ``zerofs.crypto``,
        so a command on a plain repository asks for no password and pays almost
        nothing. False for a plain repository, an ``s3://`` URL, or a config file
        that is missing or fails its checksum: opening the repository then says
        what is wrong (and still refuses an encrypted one without a password).
        """
        path = os.fspath(path)
        if is_s3_path(path):
            return False
        try:
            with open(os.path.join(path, "config"), "rb") as handle:
                config = decode_config_file(handle.read())
        except OSError:
            return False
        if config is None:
            return False
        try:
            data = json.loads(config)
        except ValueError:
            return False
        return isinstance(data, dict) and "encryption" in data

    @classmethod
    def rebuild_index(cls, path: str | os.PathLike[str], password: bytes | None = None) -> RebuildResult:
        """Rebuild the index from the pack files and HEAD from the ref log (nobody else may have it open).

        ``password``: an encrypted repository's, whose packs open only with its keys.

        Raises:
            RepositoryError: no repository there (or of format 1); encrypted and no password.
            WrongPasswordError: encrypted, and no key slot opens with ``password``.
            ConflictError: another process has it open.
            CorruptionError: the config file is damaged and no index holds a copy.
        """
        from zerofs.store import maintenance

        path = os.fspath(path)
        _refuse_s3(path, "rebuilding the index")
        _require_current(path)
        locks = RepoLocks(path, readonly=False, writer_lease=False)
        try:
            with locks.alone() as is_alone:
                if not is_alone:
                    raise ConflictError(
                        f"the repository at {path} is open in another process; close it (or unmount it) first"
                    )
                config = _readable_config(path)
                found = RepoConfig.from_json_any(config, path)
                sealer = None if found.encryption is None else _sealer(_unlock(path, password, found.repo_id)[0])
                return maintenance.rebuild_index(path, config, sealer)
        finally:
            locks.close()

    @classmethod
    def upgrade(cls, path: str | os.PathLike[str], on_progress: Callable[[int], None] | None = None) -> UpgradeResult:
        """Convert a format-1 repository to this format, in place and crash-safely (see store/legacy.py).

        A repository already of this format is left as it is (``is_current``),
        but for files an interrupted conversion left behind.

        Raises:
            RepositoryError: no repository there.
            ConflictError: another process has it open.
        """
        from zerofs.store import legacy

        path = os.fspath(path)
        _refuse_s3(path, "upgrade")
        if not legacy.is_format1(path):
            if is_local_repository(path):  # nothing to convert; remove what a kill after the switch left
                RepoConfig.from_json(_readable_config(path), path)  # a development format cannot be converted
                return legacy.UpgradeResult(
                    0, 0, 0, is_current=True, removed_leftovers=legacy.remove_legacy_files(path)
                )
            raise RepositoryError(f"no zerofs repository at {path}")
        locks = RepoLocks(path, readonly=False, writer_lease=False)
        try:
            with locks.alone() as is_alone:
                if not is_alone:
                    raise ConflictError(
                        f"the repository at {path} is open in another process; close it (or unmount it) first"
                    )
                old = RepoConfig.from_json_any(legacy.read_config(path), path)
                new = old._replace(format_version=REPO_FORMAT_VERSION)
                return legacy.upgrade(path, new.to_json(), on_progress)
        finally:
            locks.close()

    def close(self) -> None:
        """Close the store (sealing its open pack), then release the locks.

        A writable handle first compacts the index if copy-on-write left it
        much larger than its entries and nobody else has the repository open
        (a large import, a gc): a cheap rewrite of the index alone.
        """
        try:
            self._tidy_index()
            self._store.close()
            if self._file_cache is not None:
                self._file_cache.close()
        finally:
            if self._locks is not None:
                self._locks.close()

    def __enter__(self) -> Repository:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reads ----------------------------------------------------------------

    def get_record_body(self, node_id: ObjectId) -> tuple[Kind, bytes]:
        """Return (kind, body) of a stored object, verified against its id.

        Raises:
            MissingObjectError: it is not stored.
            DamagedObjectError: it does not decode to what its id says.
        """
        record = self._store.get(node_id)
        if record is None:
            raise MissingObjectError(f"object {node_id.hex()[:16]} is missing from the repository")
        return record.kind, decode_record(node_id, record, self.object_id)

    def read_record(self, object_id: ObjectId) -> tuple[Record, bytes]:
        """Return an object's record as stored and the body it decodes to, verified against its id.

        For copying an object to another repository as it is stored (no
        re-compression): the record is checked here, between leaving this
        store and being handed to another.

        Raises:
            MissingObjectError: it is not stored.
            DamagedObjectError: it does not decode to what its id says.
        """
        record = self._store.get(object_id)
        if record is None:
            raise MissingObjectError(f"object {object_id.hex()[:16]} is missing from the repository")
        return record, decode_record(object_id, record, self.object_id)

    def get_node(self, node_id: ObjectId) -> Node:
        """Return the decoded node with this id (cached; nodes are immutable)."""
        node = self._cached(node_id)
        if node is not None:
            return node
        return self._decode_node(node_id, *self.get_record_body(node_id))

    def _cached(self, node_id: ObjectId) -> Node | None:
        with self._cache_lock:
            node = self._nodes.get(node_id)
            if node is not None:
                self._nodes.move_to_end(node_id)
            return node

    def _decode_node(self, node_id: ObjectId, kind: Kind, body: bytes) -> Node:
        """Decode a node read from the store and keep it in the cache."""
        if kind is Kind.CHUNK or kind is Kind.GRAFTS:
            raise CorruptionError(f"object {node_id.hex()[:16]} is a {kind.name.lower()} where a node was expected")
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
        """Return a node that must be of ``node_type`` (for a file stored as one chunk, its index).

        Raises:
            CorruptionError: it is missing, damaged, or of another kind.
        """
        if node_type is FileNode:
            return self.get_file(node_id)  # type: ignore[return-value]  # N is FileNode here
        return _expect(node_id, self.get_node(node_id), node_type)

    def get_file(self, file_id: ObjectId) -> FileNode:
        """The chunk index of a file: its FILE node, or for a file stored as one chunk, one naming it.

        Raises:
            CorruptionError: it is missing, damaged, or neither a file nor a chunk.
        """
        cached = self._cached(file_id)
        if isinstance(cached, FileNode):
            return cached
        info = self._store.info(file_id)
        if info is None:
            raise MissingObjectError(f"object {file_id.hex()[:16]} is missing from the repository")
        if info.kind is Kind.CHUNK:
            node = FileNode(info.raw_bytes, 0, (ChunkRef(file_id, info.raw_bytes),))
            self.remember(file_id, node)
            return node
        return _expect(file_id, self.get_node(file_id), FileNode)

    def read_file_start(self, file_id: ObjectId) -> FileNode | bytes:
        """A file's bytes if it is stored as one chunk (one lookup, one read), else its chunk index.

        Raises:
            CorruptionError: it is missing, damaged, or neither a file nor a chunk.
        """
        cached = self._cached(file_id)
        if isinstance(cached, FileNode):
            return cached
        kind, body = self.get_record_body(file_id)
        if kind is Kind.CHUNK:
            return body
        return _expect(file_id, self._decode_node(file_id, kind, body), FileNode)

    def read_chunk(self, chunk_id: ObjectId) -> bytes:
        """Return a chunk's bytes, verified against its id."""
        kind, body = self.get_record_body(chunk_id)
        if kind is not Kind.CHUNK:
            raise CorruptionError(f"object {chunk_id.hex()[:16]} is not a chunk")
        return body

    def read_blob(self, blob_id: ObjectId, kind: Kind) -> bytes:
        """Return the body of a stored value of ``kind`` that is not a node (a graft table)."""
        found, body = self.get_record_body(blob_id)
        if found is not kind:
            raise CorruptionError(
                f"object {blob_id.hex()[:16]} is a {found.name.lower()}, expected {kind.name.lower()}"
            )
        return body

    def blob_info(self, blob_id: ObjectId) -> BlobInfo | None:
        """Kind and lengths of a stored object, from the index (nothing is read), or None."""
        return self._store.info(blob_id)

    def has(self, blob_id: ObjectId) -> bool:
        """True if an object is stored under ``blob_id``."""
        return self._store.has(blob_id)

    def has_checker(self) -> AbstractContextManager[Callable[[ObjectId], bool]]:
        """A fast ``has`` over one read snapshot, for checking many ids in a row."""
        return self._store.has_checker()

    def iter_blobs(self, prefix: bytes = b"") -> Iterator[tuple[ObjectId, BlobInfo]]:
        """Every stored object whose id starts with ``prefix``, in id order, with what the index knows of it."""
        return self._store.iter_blobs(prefix)

    def resolve_commit(self, commit_id: ObjectId) -> Commit:
        """Return a commit node."""
        return self.get_typed(commit_id, Commit)

    def first_parent(self, commit_id: ObjectId) -> ObjectId | None:
        """The first parent a commit records (not grafted), or None."""
        parents = self.resolve_commit(commit_id).parent_ids
        return parents[0] if parents else None

    def head_id(self) -> ObjectId:
        """Return the commit HEAD names.

        Raises:
            RepositoryError: HEAD is not set (an incomplete repository).
        """
        head = self._store.get_ref(HEAD)
        if head is None:
            raise RepositoryError(f"repository at {self.path} has no HEAD (incomplete init?)")
        return head

    def get_ref(self, name: bytes) -> ObjectId | None:
        """The value of a ref (HEAD, GRAFTS), or None."""
        return self._store.get_ref(name)

    def cached_files(self, host_directory: bytes) -> dict[bytes, CachedFile]:
        """What the last import on this host recorded of a host directory's files (empty without a cache)."""
        cache = self._host_file_cache()
        return {} if cache is None else cache.directory_files(host_directory)

    def remember_files(self, records: dict[bytes, dict[bytes, CachedFile]]) -> None:
        """Record host directories' files in this host's cache (a hint: failures are ignored)."""
        cache = self._host_file_cache()
        if cache is not None:
            cache.remember(records)

    def _host_file_cache(self) -> FileCache | None:
        if self._file_cache is None and self._cache_dir is not None:
            from zerofs.store.filecache import FileCache  # only imports use it

            self._file_cache = FileCache(os.path.join(self._cache_dir, self.config.repo_id))
        return self._file_cache

    # -- key slots (an encrypted repository) ------------------------------------

    def list_keys(self) -> list[KeySlotInfo]:
        """The key slots that decode, in id order (a damaged one is left out: fsck's to report).

        Raises:
            RepositoryError: the repository is not encrypted.
        """
        slots, _ = self._read_slots()
        return [KeySlotInfo(slot.slot_id, *slot.params, is_current=slot.slot_id == self._slot_id) for slot in slots]

    def add_key(self, password: bytes, new_password: bytes, kdf: KdfParams | None = None) -> str:
        """Add a key slot that opens with ``new_password``; ``password`` must open one already. Returns its id.

        Writes the new slot durably (on S3: creates its object with
        ``If-None-Match``); nothing else changes.

        Raises:
            RepositoryError: the repository is not encrypted.
            WrongPasswordError: ``password`` opens no slot of it.
            UsageError: ``new_password`` is empty, or ``kdf`` is out of bounds.
        """
        from zerofs.crypto.slots import DEFAULT_KDF, make_slot

        with self._slots_locked():
            master_key = self._master_key(password).master_key
            slot = make_slot(master_key, new_password, kdf or DEFAULT_KDF)
            self._write_slot(slot)
        return slot.slot_id

    def remove_key(self, slot_id: str, password: bytes) -> None:
        """Remove the key slot ``slot_id``; ``password`` must open a slot (it may be that one).

        The removed slot's password no longer opens the repository. Deletes
        the slot's file durably (on S3: its object).

        On S3 no lock covers the slots: two hosts that each remove one of
        the last two slots both see another one left. So after the delete
        the slots are listed again, and if none is left, a new slot for
        ``password`` is written (this process holds the master key) and the
        removal is reported as a conflict: the repository never stays
        without a slot by our own doing, but a host that opens it between
        the two hosts' deletes and that write is refused (no slot), and one
        killed in that instant leaves no slot at all.

        Raises:
            RepositoryError: the repository is not encrypted.
            WrongPasswordError: ``password`` opens no slot of it.
            NotFoundError: there is no such slot.
            ConflictError: it is the last slot that opens (the repository would open with no password),
                or another host removed the others meanwhile (a slot for ``password`` was written again).
        """
        from zerofs.crypto.slots import without_slot

        with self._slots_locked():
            unlocked = self._master_key(password)
            slots = self._read_slots()[0]
            without_slot(slots, slot_id)
            params = next(slot.params for slot in slots if slot.slot_id == unlocked.slot_id)
            self._delete_keeping_one(slot_id, unlocked.master_key, password, params)

    def change_password(self, password: bytes, new_password: bytes, kdf: KdfParams | None = None) -> str:
        """Replace the key slot ``password`` opens with one that opens with ``new_password``; return its id.

        Writes the new slot durably, then deletes the old one: a crash in
        between leaves both passwords working, never neither.

        Raises:
            RepositoryError: the repository is not encrypted.
            WrongPasswordError: ``password`` opens no slot of it.
            UsageError: ``new_password`` is empty, or ``kdf`` is out of bounds.
            ConflictError: on S3, another host removed the new slot meanwhile (see ``remove_key``).
        """
        from zerofs.crypto.slots import DEFAULT_KDF, make_slot

        with self._slots_locked():
            unlocked = self._master_key(password)
            slot = make_slot(unlocked.master_key, new_password, kdf or DEFAULT_KDF)
            self._write_slot(slot)
            self._delete_keeping_one(unlocked.slot_id, unlocked.master_key, new_password, slot.params)
        if self._slot_id == unlocked.slot_id:
            self._slot_id = slot.slot_id
        return slot.slot_id

    def _delete_keeping_one(self, slot_id: str, master_key: bytes, password: bytes, params: KdfParams) -> None:
        """Delete slot ``slot_id``; if then no slot is left (S3: another host's removal raced this one), write one.

        The slot written back opens with ``password``, with KDF cost ``params``.

        Raises:
            ConflictError: no slot was left, and one was written back.
        """
        from zerofs.crypto.slots import make_slot

        self._delete_slot(slot_id)
        if self._read_slots()[0]:
            return
        restored = make_slot(master_key, password, params)
        self._write_slot(restored)
        raise ConflictError(
            f"key slot {slot_id} was removed while another host removed the others; "
            f"its password was written again as key slot {restored.slot_id}"
        )

    def _keyed_path(self) -> str:
        """This repository's directory or URL, if it is encrypted.

        Raises:
            RepositoryError: it is not encrypted.
        """
        if self._keys is None or self.path is None:
            raise RepositoryError(f"the repository at {self.path} is not encrypted: it has no keys")
        return self.path

    def _read_slots(self) -> tuple[list[KeySlot], list[str]]:
        """The key slots that decode and the names of damaged ones: files in ``keys/``, or objects on S3."""
        from zerofs.keyslots import read_bucket_slots, read_slots

        path = self._keyed_path()
        return read_bucket_slots(self._s3_store().objects) if self.is_shared else read_slots(path)

    def _write_slot(self, slot: KeySlot) -> None:
        """Write a new key slot durably (S3: create its object).

        Raises:
            ConflictError: on S3, an object of that slot's id holds other bytes (ids are random: not expected).
        """
        from zerofs.keyslots import create_bucket_slot, write_slot

        path = self._keyed_path()
        if not self.is_shared:
            write_slot(path, slot)
        elif not create_bucket_slot(self._s3_store().objects, slot):
            raise ConflictError(f"key slot {slot.slot_id} exists already in {path}")

    def _delete_slot(self, slot_id: str) -> None:
        from zerofs.keyslots import delete_bucket_slot, delete_slot

        path = self._keyed_path()
        if self.is_shared:
            delete_bucket_slot(self._s3_store().objects, slot_id)
        else:
            delete_slot(path, slot_id)

    def _slots_locked(self) -> AbstractContextManager[None]:
        """The lock on the set of slots: a local repository's ``flock``; S3 has none (see ``remove_key``)."""
        from zerofs.keyslots import slots_locked

        path = self._keyed_path()
        return _nothing() if self.is_shared else slots_locked(path)

    def _master_key(self, password: bytes) -> Unlocked:
        """The master key ``password`` unwraps, if it is this repository's (the caller holds the slots' lock).

        Raises:
            WrongPasswordError: it opens no slot, or opens one of another repository's key.
        """
        from zerofs.crypto.keys import derive_subkey

        unlocked = _open_slots(self._keyed_path(), self._read_slots(), password)
        assert self._keys is not None
        if derive_subkey(unlocked.master_key, "id") != self._keys.id_key:  # a slot copied in from elsewhere
            raise WrongPasswordError(f"key slot {unlocked.slot_id} holds another repository's key")
        return unlocked

    # -- writes ---------------------------------------------------------------

    def encode_node(self, node: Node) -> tuple[ObjectId, Record]:
        """Return (id, record) for a node, compressed as configured."""
        body = encode(node)
        return self.object_id(node.kind, body), encode_record(node.kind, body, self.config.compression_level)

    def chunk_record(self, data: bytes | bytearray | memoryview, chunk_id: ObjectId | None = None) -> Record:
        """Return the record of a chunk of file content (holding ``data`` itself when stored raw).

        ``chunk_id`` (the chunk's id): in an encrypted repository, the record
        comes sealed already (codec ``CODEC_SEALED``, as ``packfile.stored_blob``
        stores it), so the thread that makes it pays for the sealing rather
        than the one that writes it; a worker thread, during an import.
        """
        record = encode_record(Kind.CHUNK, data, self.config.compression_level)
        if chunk_id is None or self._sealer is None:
            return record
        return record._replace(codec=CODEC_SEALED, payload=self._sealer.seal_record(chunk_id, record))

    def encode_blob(self, kind: Kind, body: bytes) -> tuple[ObjectId, Record]:
        """Return (id, record) for a stored value that is not a node (a graft table)."""
        return self.object_id(kind, body), encode_record(kind, body, self.config.compression_level)

    @contextmanager
    def batch(self, *, index_later: bool = False) -> Iterator[RepoBatch]:
        """A write batch, committed (objects, then refs) when the block ends without error.

        ``index_later``: the batch only writes contents that the change
        committed next references (an import, a write, a mount's commit); the
        store may index them together with that change.

        Raises:
            RefMovedError: from the end of the block, when a ref passed to
                ``cas_ref`` moved meanwhile (the objects were kept).
        """
        with self._store.batch(index_later=index_later) as batch:
            yield RepoBatch(self, batch)

    # -- locks ----------------------------------------------------------------

    def writer_lease(self) -> AbstractContextManager[None]:
        """Hold the writer lease for a ``with`` block (a handle opened without one: a mount's commit)."""
        return self._locks.writer_lease() if self._locks is not None else _nothing()

    def writers_excluded(self) -> AbstractContextManager[bool]:
        """Try to exclude every writer, never blocking; the context yields whether it did (gc's steps)."""
        return self._locks.writers_excluded() if self._locks is not None else _granted()

    def alone(self) -> AbstractContextManager[bool]:
        """Hold the repository exclusively for a block if nobody else has it open; yields whether held."""
        return self._locks.alone() if self._locks is not None else _granted()

    @property
    def is_shared(self) -> bool:
        """True for a repository on S3: gc runs in phases (``store/s3gc.py``) and never excludes writers."""
        return self.path is not None and is_s3_path(self.path)

    def collecting(self, *, break_lock: bool = False) -> AbstractContextManager[bool]:
        """Hold the one-gc-at-a-time lock for a block if free; yields whether held.

        ``break_lock``: on S3, first remove the lock of a gc that died (a local
        gc's lock goes with its process).
        """
        if self.is_shared:
            from zerofs.store.s3collect import gc_lock

            return gc_lock(self._s3_store(), break_lock=break_lock)
        return self._locks.collecting() if self._locks is not None else _granted()

    def gc_lock_holder(self) -> str:
        """Who holds an S3 repository's gc lock, as it wrote it down."""
        from zerofs.store.s3collect import lock_holder

        return lock_holder(self._s3_store())

    def publish_collection(self, marked: set[ObjectId], dead_share: float) -> SharedCollection:
        """S3: publish a gc plan against what ``marked`` leaves unreached (``store/s3collect.py``)."""
        from zerofs.store.s3collect import SharedCollection

        return SharedCollection.publish(self._s3_store(), marked, dead_share)

    def rebuild_shared_index(self) -> RebuildResult:
        """S3: index again what no intact index object names, and remove damaged ones (``store/s3collect.py``)."""
        from zerofs.store.s3collect import rebuild_index

        return rebuild_index(self._s3_store())

    def _s3_store(self) -> S3Store:
        from zerofs.store.s3store import S3Store

        assert isinstance(self._store, S3Store)
        return self._store

    def is_open_elsewhere(self) -> bool:
        """True if another handle, in any process, has this repository open."""
        return self._locks.is_open_elsewhere() if self._locks is not None else False

    # -- the store as a whole -------------------------------------------------

    def scan(self) -> Iterator[ScannedRecord]:
        """Every stored object read once, in storage order (records are not verified here)."""
        return self._store.scan()

    def verify_scanned(self, scanned: ScannedRecord) -> tuple[Kind, bytes]:
        """Verify a record met by ``scan`` against its id; return (kind, body).

        Raises:
            DamagedObjectError: it does not decode to what its id says.
        """
        if scanned.record is None:
            raise DamagedObjectError(f"object {scanned.object_id.hex()[:16]} cannot be read: {scanned.problem}")
        return scanned.record.kind, decode_record(scanned.object_id, scanned.record, self.object_id)

    def check_storage(self) -> Iterator[StorageProblem]:
        """Problems below the objects: index against packs, refs against their log, the config."""
        return self._store.check_storage()

    def reclaim(self, dead_share: float, *, dry_run: bool = False) -> ReclaimResult:
        """Give back the space of forgotten objects (pack deletion and rewriting)."""
        return self._store.reclaim(dead_share, dry_run=dry_run)

    def usage(self) -> StorageUsage:
        """How much the store occupies."""
        return self._store.usage()

    def compact_index(self) -> tuple[int, int]:
        """Rewrite the index without free pages; (bytes before, after).

        Raises:
            ConflictError: another process has the repository open.
        """
        store = self._store
        if not isinstance(store, PackStore):
            return 0, 0
        with self.alone() as is_alone:
            if not is_alone:
                raise ConflictError(f"the repository at {self.path} is open in another process")
            return store.compact_index()

    def release_deleted_packs(self) -> None:
        """Close this handle's descriptors of packs gc deleted (a long-lived reader: a mount)."""
        if isinstance(self._store, PackStore):
            self._store.files.drop_deleted()

    def close_open_pack(self) -> None:
        """Close this handle's open pack (a long-lived writer between bursts of writes: a mount)."""
        if isinstance(self._store, PackStore):
            self._store.close_writer()

    def _tidy_index(self) -> None:
        store = self._store
        if not isinstance(store, PackStore) or store.readonly or store.index.file_bytes() > INDEX_TIDY_MAX_BYTES:
            return
        if store.index_bloat() < INDEX_BLOAT_LIMIT:
            return
        with self.alone() as is_alone:
            if is_alone:
                with contextlib.suppress(RepositoryError):  # a full disk: the index stays as it was
                    store.compact_index()

    def locate(self, blob_id: ObjectId) -> tuple[str, int, int] | None:
        """(pack file, offset, length) of a stored object, for tools that inspect packs on purpose."""
        store = self._store
        return store.locate(blob_id) if isinstance(store, PackStore) else None


def is_s3_path(path: str) -> bool:
    """True if ``path`` names an S3 repository (``s3://BUCKET/PREFIX``)."""
    return path.startswith("s3://")


def s3_settings_from_environment(environ: Mapping[str, str], home: str) -> S3Settings:
    """The AWS settings (endpoint, region, credentials) ``environ`` and the files under ``home`` give.

    Raises:
        UsageError: a malformed setting; ObjectStoreAccessError: no credentials.
    """
    from pathlib import Path

    from zerofs.store.s3config import settings_from_environment

    return settings_from_environment(environ, Path(home))


def _grace(config: RepoConfig) -> float:
    """The gc grace period of an S3 repository (one made before it was recorded: the default)."""
    from zerofs.store.s3gc import DEFAULT_GRACE_S

    return DEFAULT_GRACE_S if config.gc_grace_s is None else config.gc_grace_s


def _needs(value: T | None, url: str) -> T:
    """``value``, which an S3 repository needs (a caller's bug if missing)."""
    if value is None:
        raise RepositoryError(f"internal error: opening {url} needs S3 settings and a cache directory")
    return value


def _s3_objects(url: str, settings: S3Settings) -> S3Objects:
    """The object-store client for ``url`` (imported here: local repositories never load it)."""
    from zerofs.store.objects_s3 import S3Objects
    from zerofs.store.s3config import parse_s3_url

    return S3Objects(parse_s3_url(url), settings)


def _refuse_s3(path: str, what: str) -> None:
    """Refuse an operation this version does not do on S3.

    Raises:
        RepositoryError: ``path`` is an S3 URL.
    """
    if is_s3_path(path):
        raise RepositoryError(f"{what} is not supported on an S3 repository yet ({path})")


def _require_current(path: str) -> None:
    """Refuse a directory that holds no repository of this format.

    Raises:
        RepositoryError: none there, or one of format 1 (with the hint to convert it).
    """
    if is_local_repository(path):
        return
    if os.path.exists(os.path.join(path, LEGACY_DATA_FILE)):
        raise RepositoryError(
            f"the repository at {path} has format version 1 (every object inside one LMDB file); "
            f"this zerofs reads version {REPO_FORMAT_VERSION}: convert it first",
            hint=Hint.UPGRADE,
        )
    raise RepositoryError(f"no zerofs repository at {path}")


class NewSlot(NamedTuple):
    """A new repository's master key, its keys, and the first key slot that wraps it. The repr shows no key."""

    master_key: bytes
    keys: Keys
    slot: KeySlot

    def __repr__(self) -> str:
        return f"NewSlot(<secret>, slot_id={self.slot.slot_id!r})"


def _new_slot(password: bytes, kdf: KdfParams | None) -> NewSlot:
    """Make a new repository's master key and its first key slot (written by the caller).

    Raises:
        UsageError: an empty password, or KDF parameters out of bounds.
    """
    from zerofs.crypto.keys import Keys, new_master_key
    from zerofs.crypto.slots import DEFAULT_KDF, make_slot

    master_key = new_master_key()
    return NewSlot(master_key, Keys.derive(master_key), make_slot(master_key, password, kdf or DEFAULT_KDF))


def _first_key(path: str, password: bytes, kdf: KdfParams | None) -> NewSlot:
    """Make a new repository's master key and write its first key slot (before the config).

    Raises:
        UsageError: an empty password, or KDF parameters out of bounds.
    """
    from zerofs.keyslots import write_slot

    new = _new_slot(password, kdf)
    try:
        write_slot(path, new.slot)
    except OSError as exc:
        raise RepositoryError(f"cannot write the key slot of {path}: {exc.strerror}") from exc
    return new


def _remember(key_cache: KeyCache | None, repo_id: str, master_key: bytes, slot: KeySlot, password: bytes) -> None:
    """Keep the master key ``slot`` wraps in ``key_cache`` (if there is one), sealed to the slot and ``password``."""
    if key_cache is None:
        return
    from zerofs.crypto.slots import seal_key_cache

    key_cache.store(repo_id, seal_key_cache(master_key, slot, password))


def _unlock(
    where: str,
    password: bytes | None,
    repo_id: str,
    key_cache: KeyCache | None = None,
    objects: S3Objects | None = None,
) -> tuple[Keys, str]:
    """The keys of the encrypted repository at ``where`` (id ``repo_id``) and the slot ``password`` opened.

    Its key slots are files under ``where/keys``, or with ``objects`` (an S3
    repository) the objects ``keys/<id>`` of its bucket; none is read without
    a password. They are read every time, also when ``key_cache`` holds an
    entry for the repository: the entry opens only with a slot still there.

    Raises:
        RepositoryError: no password given (hint: password).
        WrongPasswordError: no key slot opens with it.
        KeySlotError: no key slot decodes.
    """
    from zerofs.crypto.keys import Keys
    from zerofs.keyslots import read_bucket_slots, read_slots

    if password is None:
        raise RepositoryError(f"the repository at {where} is encrypted: it needs a password", hint=Hint.PASSWORD)
    found = read_slots(where) if objects is None else read_bucket_slots(objects)
    if key_cache is None:
        unlocked = _open_slots(where, found, password)
    else:
        unlocked = _open_slots_cached(where, found, password, key_cache, repo_id)
    return Keys.derive(unlocked.master_key), unlocked.slot_id


def _open_slots_cached(
    where: str, found: tuple[list[KeySlot], list[str]], password: bytes, key_cache: KeyCache, repo_id: str
) -> Unlocked:
    """``_open_slots``, with no KDF if ``key_cache`` holds an entry this password opens; else it keeps one."""
    from zerofs.crypto.slots import open_key_cache

    slots = found[0]
    entry = key_cache.load(repo_id)
    cached = None if entry is None else open_key_cache(entry, slots, password)
    if cached is not None:
        return cached
    unlocked = _open_slots(where, found, password)
    slot = next(slot for slot in slots if slot.slot_id == unlocked.slot_id)
    _remember(key_cache, repo_id, unlocked.master_key, slot, password)
    return unlocked


def _read_head(objects: S3Objects, config: RepoConfig, unlocked: tuple[Keys, str] | None) -> RefRecord | None:
    """HEAD of an S3 repository, opened with its keys if it is encrypted (one request)."""
    from zerofs.store import s3store

    sealer = None if unlocked is None else _sealer(unlocked[0])
    return s3store.read_ref(objects, objects.location.url, HEAD, s3store.repo_tag(config.repo_id), sealer)


def _open_slots(where: str, found: tuple[list[KeySlot], list[str]], password: bytes) -> Unlocked:
    """The master key the first of the key slots ``found`` (decoded, damaged) that ``password`` opens unwraps.

    Raises:
        WrongPasswordError: none opens with it.
        KeySlotError: none decodes (every one damaged, or none there).
    """
    from zerofs.crypto.slots import KeySlotError, open_any

    slots, damaged = found
    if not slots:
        detail = f"{len(damaged)} damaged" if damaged else "none found"
        raise KeySlotError(f"the encrypted repository at {where} has no readable key slot ({detail})")
    return open_any(slots, password)


def _sealer(keys: Keys) -> Sealer:
    """The store's view of an encrypted repository's keys (imported here: a plain repository never loads it)."""
    from zerofs.store.sealer import Sealer

    return Sealer(keys)


def _readable_config(path: str) -> bytes:
    """The config file's bytes, or the copy in a readable old index.

    Raises:
        CorruptionError: neither can be read.
    """
    try:
        with open(os.path.join(path, "config"), "rb") as handle:
            config = decode_config_file(handle.read())
    except OSError:
        config = None
    if config is None:
        try:
            store = PackStore(path, readonly=True)
        except (CorruptionError, RepositoryError):
            store = None
        if store is not None:
            try:
                config = store.read_config()
            finally:
                store.close()
    if config is None:
        raise CorruptionError(f"the config file of the repository at {path} is damaged, and no index holds a copy")
    return config


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@contextmanager
def _granted() -> Iterator[bool]:
    yield True


class RepoBatch:
    """Writes of one batch, through the repository: objects as records, refs by compare-and-swap."""

    def __init__(self, repo: Repository, batch: WriteBatch) -> None:
        self.repo = repo
        self._batch = batch

    def has(self, blob_id: ObjectId) -> bool:
        """True if stored, or written earlier in this batch."""
        return self._batch.has(blob_id)

    def put(self, blob_id: ObjectId, record: Record) -> bool:
        """Store an encoded record unless the id is stored; True if new."""
        return self._batch.put(blob_id, record)

    def put_node(self, node: Node) -> tuple[ObjectId, int]:
        """Encode and store a node; return its id and the stored bytes it added (0 if it was there).

        A node already stored is not compressed again (a re-import rebuilds
        every directory, and almost all of them are unchanged).
        """
        body = encode(node)
        node_id = self.repo.object_id(node.kind, body)
        if self._batch.has(node_id):
            return node_id, 0
        record = encode_record(node.kind, body, self.repo.config.compression_level)
        return node_id, len(record.payload) if self._batch.put(node_id, record) else 0

    def put_blob(self, kind: Kind, body: bytes) -> ObjectId:
        """Store a value that is not a node (a graft table); return its id."""
        blob_id, record = self.repo.encode_blob(kind, body)
        self._batch.put(blob_id, record)
        return blob_id

    def get_ref(self, name: bytes) -> bytes | None:
        """A ref as this batch will leave it."""
        return self._batch.get_ref(name)

    def cas_ref(self, name: bytes, expected: bytes | None, new: bytes) -> bool:
        """Move a ref when the batch commits, if it is still ``expected``; False if it is already not."""
        return self._batch.cas_ref(name, expected, new)

    def delete(self, blob_id: ObjectId) -> bool:
        """Forget an object (gc only); True if it was stored."""
        return self._batch.delete(blob_id)

    def flush(self) -> None:
        """Make what was written so far durable."""
        self._batch.flush()


class Staging:
    """The one node sink: where a change, an import or a mount's commit puts the nodes it builds.

    Without a batch (a change under ``history.apply_change``), encoded
    records wait here, readable, until ``write_to`` writes the ones the new
    tree uses. With a batch (an import, ``write``, a mount's commit), each
    record goes into the batch at once and ``new_bytes`` counts the stored
    bytes that were new; with ``keeps_nodes`` the nodes stay readable here
    too, as a batch's writes cannot be read back before it commits (a
    mount's commit reads the directories it has just built).
    """

    def __init__(self, repo: Repository, batch: RepoBatch | None = None, *, keeps_nodes: bool = False) -> None:
        """Stage on top of ``repo``, into ``batch`` if given (then nodes stay readable only with ``keeps_nodes``)."""
        self.repo = repo
        self.batch = batch
        self.new_bytes = 0
        """Stored bytes that were new, of what went into ``batch``."""
        self._keeps_nodes = batch is None or keeps_nodes
        self._records: dict[bytes, Record] = {}
        self._nodes: dict[bytes, Node] = {}

    def put(self, node: Node) -> ObjectId:
        """Encode and stage (or write) a node; return its id."""
        if self.batch is not None:
            node_id, added = self.batch.put_node(node)
            self.new_bytes += added
            if self._keeps_nodes:
                self._nodes[node_id] = node
            return node_id
        node_id, record = self.repo.encode_node(node)
        if node_id not in self._records:
            self._records[node_id] = record
            self._nodes[node_id] = node
        return node_id

    def put_record(self, node_id: ObjectId, record: Record, node: Node | None = None) -> None:
        """Stage (or write) an already encoded record; ``node``, if given, is its decoded node."""
        if self.batch is not None:
            if self.batch.put(node_id, record):
                self.new_bytes += record.stored_bytes
        else:
            self._records.setdefault(node_id, record)
        if node is not None and self._keeps_nodes:
            self._nodes[node_id] = node

    def has(self, object_id: ObjectId) -> bool:
        """True if the object is stored, or staged or written here."""
        if self.batch is not None:
            return self.batch.has(object_id)
        return object_id in self._records or self.repo.has(object_id)

    def write_to(self, batch: RepoBatch, top_id: ObjectId | None = None) -> None:
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
            node = self._nodes.get(node_id)  # None: a chunk (it references nothing)
            if node is not None:
                pending.extend(child_id for _, child_id in iter_child_ids(node))

    def get_typed(self, node_id: ObjectId, node_type: type[N]) -> N:
        """Return a staged or stored node of ``node_type``."""
        node = self._nodes.get(node_id)
        if isinstance(node, node_type):
            return node
        return self.repo.get_typed(node_id, node_type)

    def __len__(self) -> int:
        return len(self._records)


def _expect(node_id: ObjectId, node: Node, node_type: type[N]) -> N:
    """``node``, if it is of ``node_type``.

    Raises:
        CorruptionError: it is of another type.
    """
    if not isinstance(node, node_type):
        found = type(node).__name__
        raise CorruptionError(f"object {node_id.hex()[:16]} is a {found}, expected a {node_type.__name__}")
    return node
