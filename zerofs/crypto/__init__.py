"""Encryption at rest (issue #15): key material, password key slots, sealed blobs.

Three modules, each importable on its own so a process pays only for what it
uses (argon2 is imported only when a password must be turned into a key):

- ``sealing``: ``AeadKey``, ``seal``/``open_sealed`` (AES-256-GCM with a random
  per-writer session key and a counter nonce), and the associated-data
  builders that bind a blob to its id and place.
- ``keys``: the random master key and the subkeys derived from it with
  HKDF-SHA256, one per purpose (ids, chunker, data, metadata), as ``Keys``.
- ``slots``: the master key wrapped under a password (argon2id), in small
  versioned key slots; ``WrongPasswordError``.

This package is level 1: it imports only ``zerofs.errors``, the standard
library, ``cryptography``, ``argon2`` and ``blake3``. It stores nothing, reads
no environment and prompts for nothing; the caller passes every key,
password and parameter. No function here puts a key or a password into a
message, a repr or a log record.
"""
