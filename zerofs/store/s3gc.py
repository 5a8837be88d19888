"""gc across hosts on an S3 repository: the plans a gc publishes, and what writers do about them.

There is no lock server and no transaction spanning two objects, and a
writer on another host may at any moment reference a blob its cache says
the repository has. The protocol:

1. gc takes ``gc/lock`` (created with ``If-None-Match: *``: one gc at a
   time), marks what the retained commits reach (``services/gc.py``), reads
   every index object and lists the packs (``L0``).
2. It picks the *doomed* packs (no live blob, or at least the dead share
   of ``DEAD_SHARE`` in ``services/gc.py``) and publishes a *plan*,
   ``gc/plans/MS-RAND.plan``: the doomed packs, and the *doomed* blobs:
   unmarked blobs in them with no copy in a pack that stays.
3. It waits the repository's grace period ``G`` (``gc_grace_s`` in its
   config, fixed at ``init``), measured on its own ``CLOCK_BOOTTIME``.
4. It marks again, from every commit that landed meanwhile (``L1``: HEAD and
   the index objects are read after the wait), and copies every marked blob
   whose only copies are in doomed packs into a new pack.
5. It writes index objects holding every entry of the ``L1`` index objects
   outside the doomed packs, deletes the ``L1`` index objects, creates
   ``gc/plans/MS-RAND.done``, then deletes the doomed packs, and packs that
   no index object named at ``L0`` and still none names at ``L1``
   (left by writers that died between a pack and its index object).

Writers (``GcWatch``, ``S3Batch``) keep one rule: **every publication (an
index object, a ref move) lands within G/2 of a look at ``gc/plans/``
that showed nothing against it** (own clock, ``CLOCK_BOOTTIME``). They look
when they open the repository for writing, when a batch starts, and again
whenever their last look is older than G/4 before they publish (G/4 is the
allowance for the publishing requests themselves). A blob in a plan they
know is not "in the repository" for them (``has`` says no, so they store
their own copy), and a node they store that references a doomed blob they
did not store makes them copy that blob (and whatever doomed is below it)
into their batch, while the doomed pack still exists; a plan learnt in the
middle of a batch makes them check the nodes they stored before. A pack's
index object is published within G/2 of the pack's upload starting, or
the pack is uploaded again under a new name.

Why nothing a retained commit or a writer in flight references is deleted:
take a ref move that lands at time m and references blob b of plan P
(published at p; the re-mark runs at r >= p + G; the deletion comes after).
If m < r, the re-mark reaches b from the new commit and gc copies it. If
m >= r, the writer's last look before m was at some k > m - G/2 >= p + G/2
> p, so it knew P: b was either copied by the writer (if b was referenced
through a node it stored) or stored anew (``has`` said no). The same
argument covers index objects: one naming a pack listed at ``L0`` lands
before ``L1``, so that pack is never taken for an orphan. Only each
host's own elapsed time is measured, never two clocks compared; the
assumption is that two hosts' clocks run at rates within a factor of two of
each other (NTP keeps them within 0.05%), and that a request sent within
G/4 of a look lands within G/4 (the default G of 30 minutes leaves far more
than the client's bounded timeouts and retries). ``CLOCK_BOOTTIME`` counts a
suspended laptop's sleep; a process stopped (SIGSTOP) longer than G/4
between its look and its request is the one case the margin does not
cover, and a writer notices afterwards and says so.

Why a time margin at all: a writer's "the repository has b" and its ref
move are two separate moments, and nothing in S3 can make gc's deletion and
that ref move exclusive without a lock every writer would wait on. The
margin is what stands in for the lock; it delays only when space comes
back, never a writer.
"""

from __future__ import annotations

import secrets
import struct
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Final, NamedTuple

from zerofs.errors import ConflictError, CorruptionError, DamagedObjectError
from zerofs.objects import ID_BYTES, ObjectId
from zerofs.store.objects_s3 import ObjectStore
from zerofs.store.packs import NAME_BYTES
from zerofs.store.s3cache import DONE_SUFFIX, HostCache, seal, unseal

if TYPE_CHECKING:
    from zerofs.store.sealer import Sealer

GC_PREFIX: Final = "gc"
LOCK_KEY: Final = "gc/lock"
PLANS_PREFIX: Final = "gc/plans"
PLAN_SUFFIX: Final = ".plan"
PLAN_MAGIC: Final = b"ZFGP\x01"
DEFAULT_GRACE_S: Final = 1800
"""G: 30 minutes. Only how soon a gc gives space back depends on it."""
_COUNT: Final = struct.Struct("<I")


def clock() -> float:
    """Seconds on this host's boot clock (it counts suspended time, unlike the monotonic clock)."""
    return time.clock_gettime(time.CLOCK_BOOTTIME)


class Plan(NamedTuple):
    """What one gc deletes: packs, and the blobs that go with them and that no kept commit reached."""

    packs: frozenset[bytes]
    doomed: frozenset[ObjectId]


def plan_key(now_ns: int | None = None) -> str:
    """A new plan's key: milliseconds since the epoch (12 hex digits), then 8 random ones."""
    millis = (time.time_ns() if now_ns is None else now_ns) // 1_000_000
    return f"{PLANS_PREFIX}/{millis:012x}-{secrets.token_hex(4)}{PLAN_SUFFIX}"


def done_key(key: str) -> str:
    """The key of the marker that says the plan at ``key`` is carried out (or abandoned)."""
    return key.removesuffix(PLAN_SUFFIX) + DONE_SUFFIX


def encode_plan(plan: Plan) -> bytes:
    """The bytes of a plan object."""
    body = _COUNT.pack(len(plan.packs)) + b"".join(sorted(plan.packs)) + b"".join(sorted(plan.doomed))
    return seal(PLAN_MAGIC, body)


def decode_plan(data: bytes, where: str) -> Plan:
    """A plan object's packs and doomed blobs.

    Raises:
        CorruptionError: it fails its checksum or does not decode.
    """
    body = unseal(PLAN_MAGIC, data, f"gc plan {where}")
    if len(body) < _COUNT.size:
        raise CorruptionError(f"gc plan {where} is damaged (it is too short)")
    (count,) = _COUNT.unpack_from(body)
    ids_at = _COUNT.size + count * NAME_BYTES
    if len(body) < ids_at or (len(body) - ids_at) % ID_BYTES:
        raise CorruptionError(f"gc plan {where} is damaged (its length does not add up)")
    packs = frozenset(body[at : at + NAME_BYTES] for at in range(_COUNT.size, ids_at, NAME_BYTES))
    doomed = frozenset(body[at : at + ID_BYTES] for at in range(ids_at, len(body), ID_BYTES))
    return Plan(packs, doomed)


class GcDeletedError(ConflictError):
    """A blob this change reused was deleted by a gc while the change was being made: run it again."""


class GcWatch:
    """What this process knows of the gc plans of one repository, and when it last looked.

    ``doomed``: blobs of every plan this process learnt after its first
    look (and of plans still pending at its first look): a writer treats
    them as absent and copies those it references. Plans that had finished
    before this process first looked need not be known: the host cache is
    rebuilt from the index objects those gcs left, and nothing of this
    process predates that look.
    """

    def __init__(
        self, objects: ObjectStore, cache: HostCache, url: str, grace_s: float, sealer: Sealer | None = None
    ) -> None:
        """Watch the plans of the repository at ``url``; ``grace_s`` is its G; ``sealer``: its plans are sealed."""
        self.objects = objects
        self.sealer = sealer
        self.cache = cache
        self.url = url
        self.grace_s = grace_s
        self.doomed: set[ObjectId] = set()
        self.packs: set[bytes] = set()
        self._seen: set[str] = set()
        self._looked_at: float | None = None
        self._lock = threading.Lock()

    @property
    def age(self) -> float:
        """Seconds since the last look began (infinite before the first)."""
        return float("inf") if self._looked_at is None else clock() - self._looked_at

    @property
    def is_fresh(self) -> bool:
        """True if a publication may start now: the last look began at most G/4 ago."""
        return self.age <= self.grace_s / 4

    def look(self, rebuild: Callable[[set[str]], None]) -> set[ObjectId]:
        """List ``gc/plans/``, learn new plans, and rebuild the cache if a gc finished that it does not reflect.

        ``rebuild(done_keys)`` reloads the host cache from the index objects
        as they are now. Returns the blobs that became doomed for this process.
        """
        with self._lock:
            started = clock()
            listed = [info.key for info in self.objects.list(PLANS_PREFIX)]
            finished = {key for key in listed if key.endswith(DONE_SUFFIX)}
            is_first = self._looked_at is None
            newly: set[ObjectId] = set()
            for key in listed:
                if key in self._seen or not key.endswith(PLAN_SUFFIX):
                    continue
                if is_first and done_key(key) in finished:
                    self._seen.add(key)
                    continue
                plan = self._read_plan(key)
                self._seen.add(key)
                if plan is not None:
                    newly |= plan.doomed - self.doomed
                    self.doomed |= plan.doomed
                    self.packs |= plan.packs
            if not finished <= self.cache.finished_gcs():
                rebuild(finished)
            self._looked_at = started
            return newly

    def _read_plan(self, key: str) -> Plan | None:
        found = self.objects.get(key)
        if found is None:  # removed since the listing: it is long finished
            return None
        data = found.data
        if self.sealer is not None:
            try:
                data = self.sealer.open_object(key, data)
            except DamagedObjectError as exc:
                raise CorruptionError(
                    f"gc plan {self.url}/{key} fails authentication: changed, copied from another key, "
                    "or sealed with another key"
                ) from exc
        return decode_plan(data, f"{self.url}/{key}")


def pack_names_of(keys: Iterable[str]) -> dict[str, bytes]:
    """Pack names by key, for keys of the form ``packs/H/HEX.pack`` (others are skipped)."""
    names: dict[str, bytes] = {}
    for key in keys:
        stem = key.rsplit("/", 1)[-1].removesuffix(".pack")
        try:
            name = bytes.fromhex(stem)
        except ValueError:
            continue
        if len(name) == NAME_BYTES and key.endswith(".pack"):
            names[key] = name
    return names
