"""Regular expressions -> Lark regex text, character by character.

One parser (Python's own `re` parser, with ECMA-262 meanings for \\d \\w \\s and `.`, as JSON Schema
patterns use them) and one emitter that writes each character set through a *speller*: `raw_spelling`
writes the characters themselves (Grammar.from_regex), `json_spelling` writes every way the characters
may be spelled inside a JSON string (JSON Schema `pattern`, `format`, string constants).

The text emitted is Lark regex text and, with the same meaning, a Python `re` pattern: a literal
backslash is written `[\\\\]` (Lark rewrites a backslash before a double quote), control and non-ASCII
characters as `\\uXXXX` escapes, `/` as `\\/`.
"""

from __future__ import annotations

import re
import re._constants as C
import re._parser as sre_parse
from functools import lru_cache
from typing import Callable, Iterable

from ..fsm.utf8 import MAX_CODEPOINT, complement_ranges
from .errors import GrammarError

Ranges = list[tuple[int, int]]

# ECMA-262 classes (JSON Schema patterns are ECMA regexes; Python's \d would take every Unicode digit).
_DIGIT = [(0x30, 0x39)]
_WORD = [(0x30, 0x39), (0x41, 0x5A), (0x5F, 0x5F), (0x61, 0x7A)]
_SPACE = [(0x09, 0x0D), (0x20, 0x20), (0xA0, 0xA0), (0x1680, 0x1680), (0x2000, 0x200A), (0x2028, 0x2029),
          (0x202F, 0x202F), (0x205F, 0x205F), (0x3000, 0x3000), (0xFEFF, 0xFEFF)]
_LINE_TERMINATORS = [(0x0A, 0x0A), (0x0D, 0x0D), (0x2028, 0x2029)]


def normalize(ranges: Iterable[tuple[int, int]]) -> Ranges:
    out: Ranges = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], hi))
        else:
            out.append((lo, hi))
    return out


def complement(ranges: Ranges) -> Ranges:
    return complement_ranges(normalize(ranges))


def subtract(ranges: Ranges, minus: Ranges) -> Ranges:
    return intersect(ranges, complement(minus))


def intersect(a: Ranges, b: Ranges) -> Ranges:
    out = []
    for lo1, hi1 in normalize(a):
        for lo2, hi2 in normalize(b):
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            if lo <= hi:
                out.append((lo, hi))
    return normalize(out)


_CLASS_SPECIAL = set("\\]^-[")
_OUTSIDE_SPECIAL = set(".^$*+?{}[]|()\\")


def class_char(cp: int) -> str:
    """One code point as Lark text inside a character class."""
    ch = chr(cp)
    if cp == 0x5C:
        return "\\\\"
    if cp < 0x20 or 0x7F <= cp <= 0xA0 or 0xD800 <= cp <= 0xDFFF:
        return f"\\u{cp:04x}" if cp <= 0xFFFF else f"\\U{cp:08x}"
    if ch in _CLASS_SPECIAL or ch == "/":
        return "\\" + ch
    return ch


def char_class(ranges: Ranges) -> str:
    """A character class for the code points in `ranges` (Lark text); '' if empty."""
    ranges = normalize(ranges)
    if not ranges:
        return ""
    if len(ranges) == 1 and ranges[0][0] == ranges[0][1]:
        cp = ranges[0][0]
        if cp == 0x5C:
            return "[\\\\]"
        ch = chr(cp)
        if ch.isascii() and ch.isalnum() or ch in " \"'#%&,:;<=>@_`~!":
            return ch
    negate = sum(hi - lo + 1 for lo, hi in ranges) > 0x10000
    if negate:
        # Large sets as a negated class: interegular enumerates the characters of a positive class.
        # Surrogates never occur in UTF-8 text, so whether they are in the complement does not matter.
        ranges = subtract(complement(ranges), [(0xD800, 0xDFFF)])
        if not ranges:
            return "(?:[^\\n]|\\n)"
    parts = []
    for lo, hi in ranges:
        parts.append(class_char(lo) if lo == hi else f"{class_char(lo)}-{class_char(hi)}")
    return "[" + ("^" if negate else "") + "".join(parts) + "]"


def raw_spelling(ranges: Ranges) -> str:
    cls = char_class(ranges)
    if not cls:
        raise GrammarError("regex: empty character class (matches nothing)")
    return cls


# ---- JSON string spellings -------------------------------------------------------------------------
# The accepted spellings of a character inside a JSON string (what json.dumps writes, with or without
# ensure_ascii): printable ASCII raw, except '"' and '\' as \" and \\; \b \f \n \r \t for those
# controls; other controls as \u00xx; U+007F and above raw or as lowercase \uxxxx (a surrogate pair
# above U+FFFF). One spelling per ASCII character, so a key cannot be disguised as another string.
_SHORT = {0x22: '[\\\\]"', 0x5C: "[\\\\][\\\\]", 0x08: "[\\\\]b", 0x0C: "[\\\\]f", 0x0A: "[\\\\]n",
          0x0D: "[\\\\]r", 0x09: "[\\\\]t"}
_HEX = "0123456789abcdef"


def digit_range(lo: int, hi: int, width: int, base: int, cls: Callable[[int, int], str]) -> str:
    """Regex for exactly `width`-digit strings (leading zeros kept) whose value lies in [lo, hi];
    cls(a, b) is the class of the digits with values a..b."""
    if width == 0:
        return ""
    d = base ** (width - 1)
    lo_h, lo_r = divmod(lo, d)
    hi_h, hi_r = divmod(hi, d)
    rest = "" if width == 1 else cls(0, base - 1) + (f"{{{width - 1}}}" if width > 2 else "")
    if lo_h == hi_h:
        return cls(lo_h, lo_h) + digit_range(lo_r, hi_r, width - 1, base, cls)
    parts = []
    first, last = lo_h, hi_h
    if lo_r != 0:
        parts.append(cls(lo_h, lo_h) + digit_range(lo_r, d - 1, width - 1, base, cls))
        first += 1
    tail = None
    if hi_r != d - 1:
        tail = cls(hi_h, hi_h) + digit_range(0, hi_r, width - 1, base, cls)
        last -= 1
    if first <= last:
        parts.append(cls(first, last) + rest)
    if tail is not None:
        parts.append(tail)
    return parts[0] if len(parts) == 1 else "(?:" + "|".join(parts) + ")"


def decimal_class(a: int, b: int) -> str:
    if a == b:
        return str(a)
    return "[" + "".join(str(i) for i in range(a, b + 1)) + "]" if b - a < 3 else f"[{a}-{b}]"


def hex_class(a: int, b: int) -> str:
    chars = _HEX[a:b + 1]
    if len(chars) == 1:
        return chars
    ranges = []
    if a <= 9:
        ranges.append(f"{_HEX[a]}-{_HEX[min(b, 9)]}" if min(b, 9) > a else _HEX[a])
    if b >= 10:
        s = max(a, 10)
        ranges.append(f"{_HEX[s]}-{_HEX[b]}" if b > s else _HEX[s])
    return "[" + "".join(ranges) + "]"


def _hex4(lo: int, hi: int) -> str:
    # Hex digits with the letters lowercase, as json.dumps writes them. The alphabet for digit_range
    # must be ordered by value: 0-9 then a-f, and a class [0-f] would be wrong, so classes are spelled out.
    return digit_range(lo, hi, 4, 16, hex_class)


def json_spelling(ranges: Ranges) -> str:
    """Every accepted spelling, inside a JSON string, of one character of `ranges` (Lark text)."""
    ranges = subtract(normalize(ranges), [(0xD800, 0xDFFF)])  # lone surrogates are not characters
    alts = []
    raw = subtract(intersect(ranges, [(0x20, MAX_CODEPOINT)]), [(0x22, 0x22), (0x5C, 0x5C)])
    if raw:
        alts.append(char_class(raw))
    for cp, spelled in _SHORT.items():
        if intersect(ranges, [(cp, cp)]):
            alts.append(spelled)
    controls = subtract(intersect(ranges, [(0, 0x1F)]), [(c, c) for c in _SHORT])
    for lo, hi in controls:
        alts.append("[\\\\]u" + _hex4(lo, hi))
    bmp = intersect(ranges, [(0x7F, 0xFFFF)])
    for lo, hi in bmp:
        alts.append("[\\\\]u" + _hex4(lo, hi))
    for lo, hi in intersect(ranges, [(0x10000, MAX_CODEPOINT)]):
        alts.extend(_surrogate_pairs(lo, hi))
    if not alts:
        raise GrammarError("regex: empty character class (matches nothing)")
    return alts[0] if len(alts) == 1 else "(?:" + "|".join(alts) + ")"


def _surrogate_pairs(lo: int, hi: int) -> list[str]:
    def split(cp):
        v = cp - 0x10000
        return 0xD800 + (v >> 10), 0xDC00 + (v & 0x3FF)

    (h1, l1), (h2, l2) = split(lo), split(hi)
    out = []

    def pair(h_lo, h_hi, l_lo, l_hi):
        out.append("[\\\\]u" + _hex4(h_lo, h_hi) + "[\\\\]u" + _hex4(l_lo, l_hi))

    if h1 == h2:
        pair(h1, h1, l1, l2)
        return out
    pair(h1, h1, l1, 0xDFFF)
    if h1 + 1 <= h2 - 1:
        pair(h1 + 1, h2 - 1, 0xDC00, 0xDFFF)
    pair(h2, h2, 0xDC00, l2)
    return out


# ---- parsing and emitting ------------------------------------------------------------------------------

class RegexRefused(GrammarError):
    """A regex feature that cannot be turned into an exact automaton (look-around, back-reference...)."""


def parse(pattern: str, ecma: bool = True):
    try:
        return sre_parse.parse(pattern)
    except re.error as exc:
        raise RegexRefused(f"invalid regex {pattern!r}: {exc}") from None


def _category(cat, ecma: bool) -> Ranges:
    table = {C.CATEGORY_DIGIT: _DIGIT, C.CATEGORY_WORD: _WORD, C.CATEGORY_SPACE: _SPACE}
    neg = {C.CATEGORY_NOT_DIGIT: _DIGIT, C.CATEGORY_NOT_WORD: _WORD, C.CATEGORY_NOT_SPACE: _SPACE}
    if cat in table:
        return table[cat]
    if cat in neg:
        return complement(neg[cat])
    raise RegexRefused(f"unsupported regex class {cat}")


def _in_ranges(items, ecma: bool) -> Ranges:
    negate = False
    out: Ranges = []
    for op, av in items:
        if op is C.NEGATE:
            negate = True
        elif op is C.LITERAL:
            out.append((av, av))
        elif op is C.RANGE:
            out.append(av)
        elif op is C.CATEGORY:
            out.extend(_category(av, ecma))
        else:
            raise RegexRefused(f"unsupported regex class item {op}")
    out = normalize(out)
    return complement(out) if negate else out


class Emitter:
    """Walks a parsed regex and writes Lark regex text; ^ and $ are allowed only where they anchor the
    whole match (the caller decides what an unanchored end means)."""

    def __init__(self, spell: Callable[[Ranges], str], ecma: bool = True, dot_all: bool = False):
        self.spell = spell
        self.ecma = ecma
        self.dot_all = dot_all

    def emit(self, pattern: str) -> tuple[str, bool, bool]:
        """(body, anchored at start, anchored at end) for the whole pattern."""
        tree = parse(pattern, self.ecma)
        if tree.state.flags & (re.IGNORECASE | re.MULTILINE | re.VERBOSE):
            raise RegexRefused(f"regex {pattern!r}: inline flags (?i)/(?m)/(?x) are not supported")
        items = list(tree)
        # sre_parse moves a prefix every branch shares out of the alternation: ^a$|^b$ is ^(?:a$|b$).
        start = False
        while len(items) > 1 and items[0] == (C.AT, C.AT_BEGINNING):
            start = True
            items = items[1:]
        # A top-level alternation with anchors in every branch: a|b with ^/$ per branch.
        if len(items) == 1 and items[0][0] is C.BRANCH:
            branches = items[0][1][1]
            parts = [(seq, s or start, e) for seq, s, e in (self._anchored_seq(list(b)) for b in branches)]
            starts = {p[1] for p in parts}
            ends = {p[2] for p in parts}
            if len(starts) == 1 and len(ends) == 1:
                return "(?:" + "|".join(p[0] for p in parts) + ")", starts.pop(), ends.pop()
            # Mixed anchoring: make each branch explicit with the "anything" padding it needs.
            anyc = self.any_char(True)
            body = "|".join(("" if s else f"{anyc}*") + b + ("" if e else f"{anyc}*") for b, s, e in parts)
            return "(?:" + body + ")", True, True
        body, s, e = self._anchored_seq(items)
        return body, s or start, e

    def any_char(self, with_newline: bool) -> str:
        return self.spell([(0, MAX_CODEPOINT)] if with_newline else complement(_LINE_TERMINATORS))

    def _anchored_seq(self, items) -> tuple[str, bool, bool]:
        start = end = False
        while items and items[0] == (C.AT, C.AT_BEGINNING):
            start = True
            items = items[1:]
        while items and items[-1][0] is C.AT and items[-1][1] in (C.AT_END, C.AT_END_STRING):
            end = True
            items = items[:-1]
        return self._seq(items), start, end

    def _seq(self, items) -> str:
        return "".join(self._node(op, av) for op, av in items)

    def _node(self, op, av) -> str:
        if op is C.LITERAL:
            return self.spell([(av, av)])
        if op is C.NOT_LITERAL:
            return self.spell(complement([(av, av)]))
        if op is C.ANY:
            return self.any_char(self.dot_all)
        if op is C.IN:
            return self.spell(_in_ranges(av, self.ecma))
        if op is C.BRANCH:
            return "(?:" + "|".join(self._seq(list(b)) for b in av[1]) + ")"
        if op is C.SUBPATTERN:
            group, add_flags, del_flags, sub = av
            if add_flags & (re.IGNORECASE | re.MULTILINE | re.VERBOSE):
                raise RegexRefused("inline flags (?i)/(?m)/(?x) are not supported")
            return "(?:" + self._seq(list(sub)) + ")"
        if op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)):
            lo, hi, sub = av
            inner = "(?:" + self._seq(list(sub)) + ")"
            if hi is C.MAXREPEAT:
                return inner + ("*" if lo == 0 else "+" if lo == 1 else f"{{{lo},}}")
            if lo == hi:
                return inner + ("" if lo == 1 else f"{{{lo}}}")
            return inner + ("?" if (lo, hi) == (0, 1) else f"{{{lo},{hi}}}")
        if op is C.ATOMIC_GROUP if hasattr(C, "ATOMIC_GROUP") else False:
            raise RegexRefused("atomic groups are not supported")
        if op is C.AT:
            raise RegexRefused(f"anchor {av} inside the pattern is not supported (only ^ at the start, $ at the end)")
        if op in (C.ASSERT, C.ASSERT_NOT):
            raise RegexRefused("look-ahead/look-behind assertions cannot be compiled to an automaton")
        if op in (C.GROUPREF, C.GROUPREF_EXISTS):
            raise RegexRefused("back-references cannot be compiled to an automaton")
        raise RegexRefused(f"unsupported regex construct {op}")


def class_run(pattern: str) -> tuple[Ranges, int, int | None] | None:
    """For a pattern that is one character class repeated and anchored at both ends (^[a-z0-9_]{2,}$,
    ^\\d+$, ^.*$): (the class's code points, min count, max count or None); else None."""
    try:
        items = list(parse(pattern))
    except RegexRefused:
        return None
    if len(items) < 3 or items[0] != (C.AT, C.AT_BEGINNING) or items[-1][0] is not C.AT \
            or items[-1][1] not in (C.AT_END, C.AT_END_STRING):
        return None
    items = items[1:-1]
    if len(items) != 1 or items[0][0] not in (C.MAX_REPEAT, C.MIN_REPEAT):
        return None
    lo, hi, sub = items[0][1]
    sub = list(sub)
    if len(sub) != 1:
        return None
    op, av = sub[0]
    if op is C.LITERAL:
        ranges = [(av, av)]
    elif op is C.NOT_LITERAL:
        ranges = complement([(av, av)])
    elif op is C.ANY:
        ranges = complement(_LINE_TERMINATORS)
    elif op is C.IN:
        try:
            ranges = _in_ranges(av, True)
        except RegexRefused:
            return None
    else:
        return None
    return ranges, lo, None if hi is C.MAXREPEAT else hi


def lark_regex(body: str) -> str:
    """Lark text of a regex terminal body: `/.../`."""
    return "/" + body + "/"


def regex_to_lark(pattern: str) -> str:
    """Grammar.from_regex: a Lark grammar whose language is the strings the whole of `pattern` matches
    (Python `re` syntax, full match; ^ and $ at the ends are redundant and allowed)."""
    body, _, _ = Emitter(raw_spelling, ecma=False, dot_all=False).emit(pattern)
    return f"start: REGEX\nREGEX: {lark_regex(body)}\n// grammask: fullmatch REGEX\n"


@lru_cache(maxsize=65536)
def lark_pattern(text: str) -> str:
    """The pattern Lark (and so the lexer) makes of our regex text: \\uXXXX escapes become characters."""
    if "\\u" not in text and "\\U" not in text:
        return text
    out, i = [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            if nxt == "u":
                out.append(chr(int(text[i + 2:i + 6], 16)))
                i += 6
                continue
            if nxt == "U":
                out.append(chr(int(text[i + 2:i + 10], 16)))
                i += 10
                continue
            out.append(text[i:i + 2])
            i += 2
            continue
        out.append(ch)
        i += 1
    return "".join(out)
