"""Deterministic hashing of strings and integers: MurmurHash3 (x86, 32 bit), vectorised.

Python's ``hash()`` is salted per process, so it must never choose a feature column. This module
computes the same values as :func:`sklearn.utils.murmurhash3_32` (``positive=True``) on the UTF-8
bytes of each string, but for a whole Arrow array at once: the loop runs over 4-byte block
positions, each step one numpy operation over every string that is still that long.

>>> from sklearn.utils import murmurhash3_32
>>> hashes = hash_strings(pa.array(["JFK", "LGA", "", "Newark Liberty"]), seed=0)
>>> [int(h) for h in hashes] == [murmurhash3_32(s, seed=0, positive=True)
...                              for s in ["JFK", "LGA", "", "Newark Liberty"]]
True
>>> bucket_strings(pa.array(["JFK", "LGA", "JFK"]), n_buckets=8, seed=0).tolist()
[0, 3, 0]
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_C1 = np.uint32(0xCC9E2D51)
_C2 = np.uint32(0x1B873593)
# Strings longer than this are hashed one by one in C (few and long: the vectorised loop would
# run one numpy step per 4 bytes of the longest string for a handful of rows).
_LONG = 256


def _rotl(x: np.ndarray, r: int) -> np.ndarray:
    return (x << np.uint32(r)) | (x >> np.uint32(32 - r))


def _mix_block(k: np.ndarray) -> np.ndarray:
    k *= _C1
    k = _rotl(k, 15)
    k *= _C2
    return k


def murmurhash3_bytes(
    data: np.ndarray, starts: np.ndarray, lengths: np.ndarray, seed: int = 0
) -> np.ndarray:
    """MurmurHash3_x86_32 of the byte strings ``data[starts[i] : starts[i] + lengths[i]]``.

    >>> from sklearn.utils import murmurhash3_32
    >>> data = np.frombuffer(b"abcdefgh", dtype=np.uint8)
    >>> int(murmurhash3_bytes(data, np.array([0]), np.array([8]), 42)[0]) == murmurhash3_32(
    ...     b"abcdefgh", seed=42, positive=True)
    True
    """
    data = np.asarray(data, dtype=np.uint8)
    starts = np.asarray(starts, dtype=np.int64)
    lengths = np.asarray(lengths, dtype=np.int64)
    n = len(starts)
    out = np.empty(n, dtype=np.uint32)
    if n == 0:
        return out
    seed32 = np.uint32(seed & 0xFFFFFFFF)
    long_rows = np.flatnonzero(lengths > _LONG)
    if len(long_rows):
        # Here, not at the top: run profiles and drift import this module on a pool's client,
        # which otherwise never imports scikit-learn.
        from sklearn.utils import murmurhash3_32
    for i in long_rows:
        chunk = data[starts[i] : starts[i] + lengths[i]].tobytes()
        out[i] = murmurhash3_32(chunk, seed=int(seed32), positive=True)
    short = np.flatnonzero(lengths <= _LONG)
    if len(short) == 0:
        return out
    # Longest first, so the rows still active at block b are a prefix.
    nblocks = lengths[short] >> 2
    order = np.argsort(-nblocks, kind="stable")
    rows = short[order]
    blocks = nblocks[order]
    st = starts[rows]
    ln = lengths[rows]
    h = np.full(len(rows), seed32, dtype=np.uint32)
    active = np.searchsorted(-blocks, -np.arange(int(blocks[0]) if len(blocks) else 0), "left")
    for b, m in enumerate(active):
        pos = st[:m] + 4 * b
        k = (
            data[pos].astype(np.uint32)
            | (data[pos + 1].astype(np.uint32) << np.uint32(8))
            | (data[pos + 2].astype(np.uint32) << np.uint32(16))
            | (data[pos + 3].astype(np.uint32) << np.uint32(24))
        )
        hm = h[:m] ^ _mix_block(k)
        hm = _rotl(hm, 13)
        h[:m] = hm * np.uint32(5) + np.uint32(0xE6546B64)
    # Tail: the last 1-3 bytes.
    rem = ln & 3
    tail = st + (blocks << 2)
    k1 = np.zeros(len(rows), dtype=np.uint32)
    for nbytes, shift in ((3, 16), (2, 8), (1, 0)):
        sel = rem >= nbytes
        k1[sel] ^= data[tail[sel] + nbytes - 1].astype(np.uint32) << np.uint32(shift)
    has_tail = rem > 0
    h[has_tail] ^= _mix_block(k1[has_tail])
    # Finalisation.
    h ^= ln.astype(np.uint32)
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x85EBCA6B)
    h ^= h >> np.uint32(13)
    h *= np.uint32(0xC2B2AE35)
    h ^= h >> np.uint32(16)
    out[rows] = h
    return out


def _string_buffers(arr: pa.Array) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = arr.cast(pa.large_string())
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[arr.offset : arr.offset + len(arr) + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8) if data_buf is not None else np.zeros(0, np.uint8)
    )
    return data, offsets[:-1], np.diff(offsets)


def _empty_string_hash(seed: int) -> np.uint32:
    return murmurhash3_bytes(
        np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(1, np.int64), seed
    )[0]


def hash_strings(values: pa.Array | pa.ChunkedArray, seed: int = 0) -> np.ndarray:
    """MurmurHash3 (unsigned 32 bit) of each string's UTF-8 bytes; nulls hash as ``""``.

    Each distinct string is hashed once (dictionary encoding first), so repeated values cost a
    lookup, not a hash.
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks() if values.num_chunks else pa.array([], pa.large_string())
    if pa.types.is_dictionary(values.type):
        encoded = values
    else:
        encoded = pc.dictionary_encode(values.cast(pa.large_string()))
    uniques = pc.fill_null(encoded.dictionary.cast(pa.large_string()), "")
    data, starts, lengths = _string_buffers(uniques)
    unique_hashes = murmurhash3_bytes(data, starts, lengths, seed)
    codes = pc.fill_null(encoded.indices, 0).to_numpy(zero_copy_only=False)
    if len(unique_hashes) == 0:
        return np.full(len(values), _empty_string_hash(seed), np.uint32)
    out = unique_hashes[codes]
    if encoded.null_count:
        nulls = encoded.is_null().to_numpy(zero_copy_only=False)
        out[nulls] = _empty_string_hash(seed)
    return out


def hash_int64(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """MurmurHash3 of each integer's 8 little-endian bytes.

    >>> from sklearn.utils import murmurhash3_32
    >>> v = np.array([0, -1, 2**40], dtype=np.int64)
    >>> hash_int64(v, 3).tolist() == [murmurhash3_32(int(x).to_bytes(8, "little", signed=True),
    ...                                              seed=3, positive=True) for x in v]
    True
    """
    values = np.ascontiguousarray(values, dtype="<i8")
    n = len(values)
    return murmurhash3_bytes(
        values.view(np.uint8), np.arange(n, dtype=np.int64) * 8, np.full(n, 8, np.int64), seed
    )


def bucket_strings(values: pa.Array | pa.ChunkedArray, n_buckets: int, seed: int = 0) -> np.ndarray:
    """Bucket ``0 <= b < n_buckets`` of each string (``int64``), stable across processes."""
    return (hash_strings(values, seed) % np.uint32(n_buckets)).astype(np.int64)
