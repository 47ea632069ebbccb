"""Unicode code point ranges -> UTF-8 byte-range sequences.

A code point range becomes a few sequences of byte ranges; each sequence is the cartesian product of
its byte ranges and the sequences together encode exactly the code points of the range (surrogates,
which UTF-8 cannot encode, are left out).
"""

from __future__ import annotations

MAX_CODEPOINT = 0x10FFFF
_SURROGATES = (0xD800, 0xDFFF)
# Highest code point encoded with 1, 2, 3 and 4 bytes.
_LENGTH_LIMITS = (0x7F, 0x7FF, 0xFFFF, 0x10FFFF)

ByteRange = tuple[int, int]


def _encode(cp: int) -> bytes:
    return chr(cp).encode("utf-8", "surrogatepass")


def _split_by_length(lo: int, hi: int):
    start = lo
    for limit in _LENGTH_LIMITS:
        if start > hi:
            return
        if start <= limit:
            end = min(hi, limit)
            yield start, end
            start = end + 1


def _aligned(lo: int, hi: int, nbytes: int):
    """Split [lo, hi] (same encoded length) until each piece is a product of byte ranges."""
    for i in range(1, nbytes):
        mask = (1 << (6 * i)) - 1
        if lo & ~mask != hi & ~mask:
            if lo & mask:
                yield from _aligned(lo, lo | mask, nbytes)
                yield from _aligned((lo | mask) + 1, hi, nbytes)
                return
            if hi & mask != mask:
                yield from _aligned(lo, (hi & ~mask) - 1, nbytes)
                yield from _aligned(hi & ~mask, hi, nbytes)
                return
    a, b = _encode(lo), _encode(hi)
    yield tuple(zip(a, b))


def utf8_sequences(lo: int, hi: int) -> list[tuple[ByteRange, ...]]:
    """Byte-range sequences that encode exactly the code points lo..hi (inclusive)."""
    pieces: list[tuple[int, int]] = []
    s_lo, s_hi = _SURROGATES
    if lo < s_lo:
        pieces.append((lo, min(hi, s_lo - 1)))
    if hi > s_hi:
        pieces.append((max(lo, s_hi + 1), hi))
    out: list[tuple[ByteRange, ...]] = []
    for p_lo, p_hi in pieces:
        for a, b in _split_by_length(p_lo, p_hi):
            nbytes = len(_encode(a))
            out.extend(_aligned(a, b, nbytes))
    return out


def codepoints_to_ranges(codepoints) -> list[tuple[int, int]]:
    """Sorted, merged inclusive ranges of a set of code points."""
    ranges: list[tuple[int, int]] = []
    for cp in sorted(codepoints):
        if ranges and ranges[-1][1] + 1 == cp:
            ranges[-1] = (ranges[-1][0], cp)
        else:
            ranges.append((cp, cp))
    return ranges


def complement_ranges(ranges: list[tuple[int, int]], first: int = 0,
                      last: int = MAX_CODEPOINT) -> list[tuple[int, int]]:
    """Code points first..last not covered by the sorted, merged ranges (which lie within first..last)."""
    out = []
    nxt = first
    for lo, hi in ranges:
        if lo > nxt:
            out.append((nxt, lo - 1))
        nxt = hi + 1
    if nxt <= last:
        out.append((nxt, last))
    return out
