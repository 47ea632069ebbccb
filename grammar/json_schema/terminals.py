"""The terminal pool of one schema grammar: its string and number value sets (Term), each added once,
with the containment between them, and the intersections that keep them laminar for the lexer (any two
disjoint or nested, so the innermost can win by priority)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

from ...fsm.fsm_product import covered, disjoint, intersection, is_subset, pattern_dfa
from ...fsm.multiples import multiple_fsm
from ...fsm.python_regex import from_interegular
from ..errors import GrammarError
from ..regex import lark_pattern
from .keywords import schema_error
from .string_lengths import interval_relation, length_content

MAX_TERM_INTERSECTIONS = 64  # value sets made as intersections of overlapping ones (see Terminals.finalize)


class TooManyOverlaps(GrammarError):
    """More than MAX_TERM_INTERSECTIONS value sets overlap partially."""


class Term:
    """One value set: a literal, a pattern, an interval of string lengths, or the intersection of parts."""

    def __init__(self, name: str, family: str, pattern: Optional[str], literal: Optional[str], where: str,
                 length: Optional[tuple[int, Optional[int]]] = None, parts: tuple["Term", ...] = (),
                 multiple: Optional[tuple[int, int]] = None):
        self.name, self.family, self.pattern, self.literal, self.where = name, family, pattern, literal, where
        self.length = length  # (lo, hi) for the strings of length_content(lo, hi): compared without automata
        self.parts = parts    # an intersection: the strings every one of these terms matches (pattern: parts[0]'s)
        self.multiple = multiple  # (m, e): not a terminal, a part: the multiples of m / 10**e (multiple_fsm)
        self._fsm = None

    @property
    def language(self) -> tuple:
        """What decides the strings the term matches, as a key: its multiple, its parts', or its pattern."""
        if self.multiple:
            return ("multipleOf", *self.multiple)
        if self.parts:
            return ("and", *(p.language for p in self.parts))
        return ("pattern", self.pattern)

    def directive_item(self):
        """How an intersect directive names this part."""
        return {"multipleOf": list(self.multiple)} if self.multiple else lark_pattern(self.pattern)

    @property
    def fsm(self):
        if self._fsm is None:
            if self.multiple:
                self._fsm = from_interegular(multiple_fsm(*self.multiple))
            elif self.parts:
                self._fsm = intersection(*(p.fsm for p in self.parts))
            else:
                self._fsm = pattern_dfa(lark_pattern(self.pattern))
        return self._fsm

    def matches(self, text: str) -> bool:
        if self.multiple:
            return self.fsm.matches(text)
        if self.parts:
            return all(p.matches(text) for p in self.parts)
        return re.fullmatch(lark_pattern(self.pattern), text) is not None


class Terminals:
    """String and number terminals of one schema grammar, with the containment relation between them."""

    def __init__(self):
        self.terms: dict[str, Term] = {}
        self.by_key: dict[tuple, str] = {}
        self.alias: dict[str, str] = {}
        self.made: set[str] = set()    # intersections of overlapping value sets (see finalize)
        self.made_by_parts: dict[frozenset, str] = {}  # the same, by the names of the terms intersected
        self.multiples: dict[tuple[int, int], Term] = {}  # multipleOf steps (m, e) -> their part
        self.hidden: set[str] = set()  # terminals every string of which the lexer gives to one inside them

    def add(self, family: str, pattern: str, literal: Optional[str], where: str,
            length: Optional[tuple[int, Optional[int]]] = None) -> str:
        key = (family, literal) if literal is not None else (family, "re", pattern)
        if key not in self.by_key:
            name = f"{family[0].upper()}{len(self.terms)}"
            self.terms[name] = Term(name, family, pattern, literal, where, length)
            self.by_key[key] = name
        return self.by_key[key]

    def relation(self, a: Term, b: Term) -> str:
        if a.literal is not None and b.literal is not None:
            return "disjoint"
        if a.literal is not None:
            return "sub" if b.matches(a.literal) else "disjoint"
        if b.literal is not None:
            return "super" if a.matches(b.literal) else "disjoint"
        if a.length and b.length:
            return interval_relation(a.length, b.length)
        return by_language(_automata_relation, a, b)

    def finalize(self) -> tuple[dict[str, set], dict[str, int]]:
        """Containment (name -> names it contains, itself included) and lexer priorities.

        The lexer sees one terminal per value set and gives a string to the highest-priority terminal
        that matches it, so every value set must lie inside or outside every other. Two that overlap
        otherwise get their intersection as one more terminal (closed under intersection, so the most
        specific terminal matching a string lies inside every value set the string belongs to)."""
        queue = [n for n in self.terms if n not in self.alias]
        inside = {n: {n} for n in queue}
        depth = {n: 0 for n in queue}
        live: list[str] = []
        made = self.made_by_parts
        while queue:
            a = queue.pop(0)
            ta = self.terms[a]
            rels = []
            for b in live:
                tb = self.terms[b]
                if ta.family == tb.family:
                    rel = self.relation(ta, tb)
                    if rel == "equal":
                        self.alias[a] = b
                        break
                    rels.append((b, rel))
            if a in self.alias:
                continue
            live.append(a)
            for b, rel in rels:
                if rel == "sub":
                    inside[b].add(a)
                    depth[a] += 1
                elif rel == "super":
                    inside[a].add(b)
                    depth[b] += 1
                elif rel == "overlap":
                    c = self._intersection(ta, self.terms[b], made)
                    if c not in inside:
                        inside[c], depth[c] = {c}, 0
                        queue.append(c)
        for b, a in self.alias.items():
            if a in inside:
                inside[a] |= inside.get(b, set())
        self.hidden = {t for t in live if self._covered(t, inside)}
        return inside, depth

    def _covered(self, name: str, inside: dict) -> bool:
        """Does every string of `name` belong to an intersection terminal inside it (which the lexer
        prefers)? Then the lexer never produces `name`: its value sets take the terminals inside it."""
        subs = [t for t in inside[name] if t != name and t not in self.alias]
        if not any(t in self.made for t in subs):
            return False
        return covered(self.terms[name].fsm, [self.terms[t].fsm for t in subs])

    def both(self, a: str, b: str) -> str:
        """The terminal for the strings/numbers both terminals match."""
        return self._intersection(self.terms[a], self.terms[b], self.made_by_parts)

    def multiple_of(self, name: str, step: tuple[int, int], where: str) -> str:
        """The terminal for the numbers of terminal `name` that are multiples of m / 10**e (step = (m, e))."""
        part = self.multiples.setdefault(step, Term(f"M{len(self.multiples)}", "number", None, None, where,
                                                    multiple=step))
        return self._intersection(self.terms[name], part, self.made_by_parts)

    def _intersection(self, a: Term, b: Term, made: dict) -> str:
        parts = tuple(sorted({*(a.parts or (a,)), *(b.parts or (b,))}, key=lambda t: (t.multiple is not None, t.name)))
        key = frozenset(t.name for t in parts)
        if key in made:
            return made[key]
        if len(made) >= MAX_TERM_INTERSECTIONS:
            raise TooManyOverlaps(str(schema_error(
                f"the strings/numbers allowed at {a.where} and at {b.where} overlap without one containing the "
                f"other, and more than {MAX_TERM_INTERSECTIONS} such overlaps arise", a.where)))
        name = f"{a.family[0].upper()}{len(self.terms)}"
        if a.length and b.length:  # an interval's language: the common interval's
            his = [x for x in (a.length[1], b.length[1]) if x is not None]
            lo, hi = max(a.length[0], b.length[0]), (min(his) if his else None)
            term = Term(name, a.family, f'"{length_content(lo, hi)}"', None, a.where, (lo, hi))
        else:
            term = Term(name, a.family, parts[0].pattern, None, a.where, parts=parts)
        self.terms[name] = term
        made[key] = name
        self.made.add(name)
        return name


class Language:
    """A term as the key of its language, for caches kept across schemas (their value sets repeat: numbers,
    formats, patterns): equal keys, equal languages. The term itself is read only while the cache misses."""

    __slots__ = ("key", "term")

    def __init__(self, term: Term):
        self.key, self.term = term.language, term

    def __hash__(self) -> int:
        return hash(self.key)

    def __eq__(self, other) -> bool:
        return isinstance(other, Language) and self.key == other.key


def by_language(cached, a: Term, *args):
    """cached(Language(a), *args) (args: Terms as Languages too), the cache left holding keys, not terms."""
    keys = [Language(a), *(Language(x) if isinstance(x, Term) else x for x in args)]
    try:
        return cached(*keys)
    finally:
        for k in keys:
            if isinstance(k, Language):
                k.term = None


@lru_cache(maxsize=4096)
def _automata_relation(a: Language, b: Language) -> str:
    """How two value sets' languages relate (disjoint, equal, sub, super, overlap), from their automata."""
    fa, fb = a.term.fsm, b.term.fsm
    if disjoint(fa, fb):
        return "disjoint"
    sub, sup = is_subset(fa, fb), is_subset(fb, fa)
    if sub and sup:
        return "equal"
    if sub:
        return "sub"
    if sup:
        return "super"
    return "overlap"
