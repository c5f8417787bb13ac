"""Key-range arithmetic shared by the stores.

Both backends order keys by their UTF-8 bytes (etcd compares bytes; SQLite's BINARY collation
compares the UTF-8 text with memcmp), which is also Python's ``str`` order (code point order).
A prefix scan is therefore the half-open range ``[prefix, prefix_end(prefix))``.
"""

from __future__ import annotations

_MAX_CP = 0x10FFFF
_SURROGATES = range(0xD800, 0xE000)


def prefix_end(prefix: str) -> str | None:
    """Smallest string greater than every string starting with ``prefix``; ``None`` = no bound.

    Bumps the last code point that can be bumped (skipping the surrogate block, which UTF-8
    cannot encode) and drops what follows it.
    """
    chars = list(prefix)
    while chars:
        cp = ord(chars[-1]) + 1
        if cp in _SURROGATES:
            cp = _SURROGATES.stop
        if cp <= _MAX_CP:
            chars[-1] = chr(cp)
            return "".join(chars)
        chars.pop()
    return None


def prefix_end_bytes(prefix: bytes) -> bytes:
    """etcd's ``range_end`` for a prefix: last byte + 1 (trailing 0xff bytes dropped); ``b"\\0"``
    means "to the end of the keyspace" in etcd's API."""
    b = bytearray(prefix)
    while b:
        if b[-1] < 0xFF:
            b[-1] += 1
            return bytes(b)
        b.pop()
    return b"\0"
