"""Strings by length: the regex of a string's content of lo..hi characters in their JSON spellings, and
how two such languages relate (by their intervals alone, without building automata)."""

from __future__ import annotations

from typing import Optional

# Any character in its JSON spellings: the same language as json_spelling([(0, MAX_CODEPOINT)]), written
# prefix-factored so that its automaton is small (39 states instead of 71): bounded repetitions of it
# cost time quadratic in that size, in the lexer as well as in the terminal relations.
_HEX = "[0-9a-f]"
ANY_CHAR = (r'(?:[^"\\\u0000-\u001f]|[\\]["\\bfnrt]|[\\]u(?:00(?:0[0-7bef]|1' + _HEX + r')|007f|00[89a-f]'
            + _HEX + r'|0[1-9a-f]' + _HEX + '{2}|[1-9a-c]' + _HEX + '{3}|d[0-7]' + _HEX + '{2}|[ef]' + _HEX
            + r'{3}|d[89ab]' + _HEX + r'{2}[\\]ud[c-f]' + _HEX + '{2}))')
# A printable ASCII character, raw or as a two-character escape: the unit of long bounded strings.
_PLAIN_CHAR = r'(?:[ !#-\[\]-~]|[\\]["\\bfnrt])'
EXACT_LENGTH = 3   # strings up to this length: every spelling of every character
LENGTH_CAP = 256   # above EXACT_LENGTH, under a maxLength: printable ASCII and short escapes, at most this long
# The cap a schema is translated with again when LENGTH_CAP's strings overlap its patterns and formats in
# more ways than terminals.MAX_TERM_INTERSECTIONS allows (each length interval is a value set of its own).
SHORT_LENGTH_CAP = 64


def length_content(lo: int, hi: Optional[int]) -> str:
    """The content of a string of lo..hi characters. Exact up to EXACT_LENGTH characters and without an
    upper bound; beyond, a sound narrowing: longer strings are printable ASCII with short escapes (hi is
    capped at LENGTH_CAP by the caller). The automata of bounded repetitions of ANY_CHAR take seconds
    per character to build (the relations' automata, and the lexer's minimization): maxLength 128 took 40 s
    with interegular and Moore's minimization; printable ASCII up to 256 takes about 0.1 s with the native
    product and lexer (1024: up to 0.8 s, measured over MaskBench's length-bounded schemas)."""
    if hi is None:
        return f"(?:{ANY_CHAR})" + ("*" if lo == 0 else f"{{{lo},}}")
    if hi <= EXACT_LENGTH:
        return f"(?:{ANY_CHAR}){{{lo},{hi}}}"
    plain = f"(?:{_PLAIN_CHAR}){{{max(lo, EXACT_LENGTH + 1)},{hi}}}"
    return plain if lo > EXACT_LENGTH else f"(?:(?:{ANY_CHAR}){{{lo},{EXACT_LENGTH}}}|{plain})"


def interval_relation(a: tuple[int, Optional[int]], b: tuple[int, Optional[int]]) -> str:
    """How the languages of length_content(*a) and length_content(*b) relate: as their length intervals
    do, since the content language grows with the interval."""
    inf = float("inf")
    (alo, ahi), (blo, bhi) = a, b
    ahi, bhi = inf if ahi is None else ahi, inf if bhi is None else bhi
    if ahi < blo or bhi < alo:
        return "disjoint"
    if (alo, ahi) == (blo, bhi):
        return "equal"
    if blo <= alo and ahi <= bhi:
        return "sub"
    if alo <= blo and bhi <= ahi:
        return "super"
    return "overlap"
