"""A terminal's regex as Python's `re` means it -> a character automaton over code-point ranges.

Lark lexes a terminal with `re.match(regex, text, pos)`, so its lexemes are the strings s with
re.match(regex, s).group() == s: with a lazy quantifier or an alternative that matches first, `re` stops
early even where a longer match exists (/".*?"/ ends at the first quote, /a|ab/ lexes only "a"). The
automaton is built by a leftmost-first subset construction (as RE2 does): a state is the *ordered* list of
the NFA's threads, highest priority first, and a thread that reaches the end of the regex cuts the threads
after it; a state accepts iff its list holds that end. `fullmatch=True` gives the plain set language (any
way of matching the whole string), which is what an intersection ("must also match") means.

The regex is parsed by Python's own parser (flags i m s x a u, inline and scoped), and character classes
mean what `re` means: \\w \\d \\s are Unicode unless ASCII, IGNORECASE folds as `re` folds (computed by
`re` itself over every code point, once per class). Look-arounds are supported where they stay inside
the lexeme: a lookbehind is tracked by an automaton of its body run alongside, a lookahead is an
obligation its thread carries until the following characters settle it; \\b and ^ $ \\A \\Z are
look-arounds too. A lookahead still pending where the regex ends (/[?](?![a-z])/, /\\S+$/m) is a
*conditional* match: it holds or fails on the character after the lexeme alone (or the end of the text),
so the state accepts only when that character is in a set (CharDFA.cond), and the threads after it are cut
only on the characters where it holds. One that the next character cannot decide (/a(?!bc)/ at `a`, `$`
without flag m), or that reaches before the lexeme: RegexUnsupported.
"""

from __future__ import annotations

import re
import re._constants as C
import re._parser as sre_parse
from bisect import bisect_right
from functools import lru_cache
from typing import Optional

from .utf8 import MAX_CODEPOINT, complement_ranges

Ranges = tuple  # sorted, merged, inclusive (lo, hi) code-point ranges

MAX_NFA_NODES = 200_000
MAX_DFA_STATES = 200_000


class RegexUnsupported(ValueError):
    """The regex has no exact character automaton (a backreference, a look-around outside the lexeme)."""


class CharDFA:
    """States 0..n-1, 0 the initial one. edges[q]: sorted disjoint (lo, hi, target); accept[q]: bool.
    cond[q]: None, or (ranges, at_end) for a state that accepts only when the next character is in
    `ranges` or, if at_end, when the text ends there (accept[q] is then False)."""

    def __init__(self, edges: list, accept: list, cond: Optional[list] = None):
        self.edges = edges
        self.accept = accept
        self.cond = cond if cond is not None else [None] * len(accept)

    @property
    def has_conditions(self) -> bool:
        return any(c is not None for c in self.cond)

    @property
    def n_states(self) -> int:
        return len(self.accept)

    def matches(self, text: str) -> bool:
        q = 0
        for ch in text:
            cp = ord(ch)
            for lo, hi, t in self.edges[q]:
                if lo <= cp <= hi:
                    q = t
                    break
            else:
                return False
        return self.accept[q] or (self.cond[q] is not None and self.cond[q][1])

    def accepts_before(self, q: int, nxt: Optional[str]) -> bool:
        """Whether state q accepts when the character `nxt` follows (None: the text ends)."""
        if self.accept[q]:
            return True
        c = self.cond[q]
        if c is None:
            return False
        return c[1] if nxt is None else _contains(c[0], ord(nxt))

    def is_empty(self) -> bool:
        seen, todo = {0}, [0]
        while todo:
            q = todo.pop()
            if self.accept[q] or self.cond[q] is not None:
                return False
            for _, _, t in self.edges[q]:
                if t not in seen:
                    seen.add(t)
                    todo.append(t)
        return True


# ---- character sets ---------------------------------------------------------------------------------

def normalize(ranges) -> Ranges:
    out: list = []
    for lo, hi in sorted(ranges):
        if out and lo <= out[-1][1] + 1:
            if hi > out[-1][1]:
                out[-1] = (out[-1][0], hi)
        else:
            out.append((lo, hi))
    return tuple(out)


@lru_cache(maxsize=1)
def _every_code_point() -> str:
    import numpy as np
    return np.arange(MAX_CODEPOINT + 1, dtype="<u4").tobytes().decode("utf-32-le", "surrogatepass")


@lru_cache(maxsize=4096)
def _ranges_re_matches(flags: str, char_class: str) -> Ranges:
    """The code points a character class matches under inline `flags`, found by `re` itself over all of
    them."""
    return tuple((m.start(), m.end() - 1) for m in re.finditer(f"{flags}{char_class}+", _every_code_point()))


_CATEGORY_TEXT = {C.CATEGORY_DIGIT: r"\d", C.CATEGORY_NOT_DIGIT: r"\D", C.CATEGORY_SPACE: r"\s",
                  C.CATEGORY_NOT_SPACE: r"\S", C.CATEGORY_WORD: r"\w", C.CATEGORY_NOT_WORD: r"\W"}


def _escape(cp: int) -> str:
    return f"\\U{cp:08x}"


def _class_text(items, negate_first: bool = False) -> str:
    """A class that Python's parser reads back as the same items (for asking `re` what it matches)."""
    parts = []
    for op, av in items:
        if op is C.LITERAL:
            parts.append(_escape(av))
        elif op is C.RANGE:
            parts.append(f"{_escape(av[0])}-{_escape(av[1])}")
        elif op is C.CATEGORY:
            parts.append(_CATEGORY_TEXT[av])
        elif op is C.NEGATE:
            negate_first = True
        else:
            raise RegexUnsupported(f"class item {op} is not supported")
    return "[" + ("^" if negate_first else "") + "".join(parts) + "]"


def _flag_text(flags: int) -> str:
    return "(?" + ("i" if flags & C.SRE_FLAG_IGNORECASE else "") + ("a" if flags & C.SRE_FLAG_ASCII else "u") + ")"


def _char_set(op, av, flags: int) -> Ranges:
    """Code points one character item matches under `flags`."""
    if op is C.ANY:
        if flags & C.SRE_FLAG_DOTALL:
            return ((0, MAX_CODEPOINT),)
        return ((0, 9), (11, MAX_CODEPOINT))
    if op is C.LITERAL:
        items, negate = [(C.LITERAL, av)], False
    elif op is C.NOT_LITERAL:
        items, negate = [(C.LITERAL, av)], True
    elif op is C.IN:
        items, negate = av, False
    elif op is C.CATEGORY:
        items, negate = [(C.CATEGORY, av)], False
    else:
        raise RegexUnsupported(f"unexpected item {op}")
    needs_re = flags & C.SRE_FLAG_IGNORECASE or flags & C.SRE_FLAG_ASCII or any(o is C.CATEGORY for o, _ in items)
    if needs_re:  # folding and Unicode classes exactly as `re` applies them
        return _ranges_re_matches(_flag_text(flags), _class_text(items, negate))
    out, neg = [], negate
    for o, a in items:
        if o is C.LITERAL:
            out.append((a, a))
        elif o is C.RANGE:
            out.append(a)
        elif o is C.NEGATE:
            neg = True
        else:
            raise RegexUnsupported(f"class item {o} is not supported")
    rs = normalize(out)
    return tuple(complement_ranges(list(rs))) if neg else rs


# ---- NFA ----------------------------------------------------------------------------------------------

CHAR, SPLIT, MATCH, LOOK, START, END = range(6)


class _NFA:
    def __init__(self) -> None:
        self.kind: list[int] = []
        self.data: list = []     # CHAR: Ranges; SPLIT: [targets] in priority order; LOOK: look index
        self.out: list = []      # the next node (CHAR, LOOK, START)
        self.looks: list = []    # (ahead, negate, body start, width)
        self.loop_exit: dict = {}  # unbounded repeat's SPLIT node -> the node after the repeat

    def node(self, kind: int, data=None, out: Optional[int] = None) -> int:
        if len(self.kind) >= MAX_NFA_NODES:
            raise RegexUnsupported(f"the regex needs more than {MAX_NFA_NODES:,} automaton nodes")
        self.kind.append(kind)
        self.data.append(data)
        self.out.append(out)
        return len(self.kind) - 1


def _combine_flags(flags: int, add: int, delete: int) -> int:
    if add & sre_parse.TYPE_FLAGS:
        flags &= ~sre_parse.TYPE_FLAGS
    return (flags | add) & ~delete



class _Compiler:
    def __init__(self, nfa: _NFA, in_look: bool = False):
        self.nfa = nfa
        self.in_look = in_look

    def seq(self, items, flags: int, nxt: int) -> int:
        for op, av in reversed(list(items)):
            nxt = self.item(op, av, flags, nxt)
        return nxt

    def look(self, ahead: bool, negate: bool, items, flags: int, width: int, nxt: int) -> int:
        if self.in_look:
            raise RegexUnsupported("a look-around inside a look-around is not supported")
        nfa = self.nfa
        body = _Compiler(nfa, in_look=True).seq(items, flags, nfa.node(MATCH))
        nfa.looks.append((ahead, negate, body, width))
        return nfa.node(LOOK, len(nfa.looks) - 1, nxt)

    def item(self, op, av, flags: int, nxt: int) -> int:
        nfa = self.nfa
        if op in (C.LITERAL, C.NOT_LITERAL, C.IN, C.ANY, C.CATEGORY):
            if flags & C.SRE_FLAG_LOCALE:
                raise RegexUnsupported("the LOCALE flag is not supported")
            return nfa.node(CHAR, _char_set(op, av, flags), nxt)
        if op is C.SUBPATTERN:
            _, add, delete, p = av
            return self.seq(p, _combine_flags(flags, add, delete), nxt)
        if op is C.BRANCH:
            return nfa.node(SPLIT, [self.seq(alt, flags, nxt) for alt in av[1]])
        if op in (C.MAX_REPEAT, C.MIN_REPEAT):
            lo, hi, body = av
            lazy = op is C.MIN_REPEAT
            if hi == C.MAXREPEAT:
                loop = nfa.node(SPLIT, [])
                first = self.seq(body, flags, loop)
                nfa.data[loop] = [nxt, first] if lazy else [first, nxt]
                nfa.loop_exit[loop] = nxt
                tail = loop
            else:
                tail = nxt
                for _ in range(hi - lo):
                    first = self.seq(body, flags, tail)
                    tail = nfa.node(SPLIT, [nxt, first] if lazy else [first, nxt])
            for _ in range(lo):
                tail = self.seq(body, flags, tail)
            return tail
        if op in (C.ASSERT, C.ASSERT_NOT):
            direction, p = av
            lo, hi = p.getwidth()
            return self.look(direction == 1, op is C.ASSERT_NOT, p, flags, lo if direction != 1 else 0, nxt)
        if op is C.AT:
            return self.anchor(av, flags, nxt)
        if op in (C.GROUPREF, C.GROUPREF_EXISTS):
            raise RegexUnsupported("a backreference or conditional group (?(n)...) is not regular")
        if op in (C.ATOMIC_GROUP, C.POSSESSIVE_REPEAT):
            raise RegexUnsupported("atomic groups and possessive quantifiers are not supported")
        raise RegexUnsupported(f"regex feature {op} is not supported")

    def anchor(self, at, flags: int, nxt: int) -> int:
        nfa = self.nfa
        word = [(C.IN, [(C.CATEGORY, C.CATEGORY_WORD)])]
        if at in (C.AT_BOUNDARY, C.AT_NON_BOUNDARY):
            # \b: a word character on exactly one side; \B: on both or neither
            def side(before: bool, after: bool) -> int:
                inner = self.look(True, not after, word, flags, 0, nxt)
                return self.look(False, not before, word, flags, 1, inner)
            if at is C.AT_BOUNDARY:
                return nfa.node(SPLIT, [side(True, False), side(False, True)])
            return nfa.node(SPLIT, [side(True, True), side(False, False)])
        if at is C.AT_BEGINNING and flags & C.SRE_FLAG_MULTILINE:
            return self.look(False, False, [(C.LITERAL, 10)], flags, 1, nxt)
        if at in (C.AT_BEGINNING, C.AT_BEGINNING_STRING):
            return nfa.node(START, None, nxt)
        if self.in_look:
            raise RegexUnsupported("$ or \\Z inside a look-around is not supported")
        # $ and \Z as lookaheads whose END node no character settles: they hold only past the lexeme
        end = nfa.node(END)
        if at is C.AT_END_STRING:
            body = end
        elif at is C.AT_END and flags & C.SRE_FLAG_MULTILINE:
            body = nfa.node(SPLIT, [nfa.node(CHAR, ((10, 10),), nfa.node(MATCH)), end])
        elif at is C.AT_END:
            body = nfa.node(SPLIT, [nfa.node(CHAR, ((10, 10),), end), end])
        else:
            raise RegexUnsupported(f"anchor {at} is not supported")
        nfa.looks.append((True, False, body, 0))
        return nfa.node(LOOK, len(nfa.looks) - 1, nxt)


def parse(regex: str) -> tuple[_NFA, int]:
    """Python's parse of `regex` as an NFA; (nfa, start node). RegexUnsupported, re.error."""
    p = sre_parse.parse(regex, 0)
    nfa = _NFA()
    start = _Compiler(nfa).seq(p, p.state.flags, nfa.node(MATCH))
    return nfa, start


# ---- subset construction ------------------------------------------------------------------------------

class _Builder:
    """Subset construction. A DFA state is (threads, ctx): the threads in priority order, each an NFA
    character node (or MATCH) with the lookahead obligations it still carries; ctx is the lexeme's length
    (capped at the widest lookbehind) and, per lookbehind, the nodes of its body reached so far."""

    def __init__(self, nfa: _NFA, start: int, fullmatch: bool):
        self.nfa = nfa
        self.start = start
        self.fullmatch = fullmatch
        behind = [i for i, lk in enumerate(nfa.looks) if not lk[0]]
        self.behind = behind
        self.pos_cap = max([nfa.looks[i][3] for i in behind] + [1 if START in nfa.kind else 0])
        self._set_closure: dict = {}
        self._thread_closure: dict = {}
        self._conditions: dict = {}

    # unordered closure, for look-around bodies
    def set_closure(self, node: int) -> frozenset:
        got = self._set_closure.get(node)
        if got is None:
            kind, data, out = self.nfa.kind, self.nfa.data, self.nfa.out
            seen, todo, keep = {node}, [node], set()
            while todo:
                n = todo.pop()
                k = kind[n]
                if k == SPLIT:
                    for t in data[n]:
                        if t not in seen:
                            seen.add(t)
                            todo.append(t)
                elif k in (CHAR, MATCH, END):
                    keep.add(n)
                else:
                    raise RegexUnsupported("a look-around inside a look-around is not supported")
            got = self._set_closure[node] = frozenset(keep)
        return got

    def step_set(self, nodes, cp: int) -> frozenset:
        out = set()
        for n in nodes:
            if self.nfa.kind[n] == CHAR and _contains(self.nfa.data[n], cp):
                out |= self.set_closure(self.nfa.out[n])
        return frozenset(out)

    def has_match(self, nodes) -> bool:
        return any(self.nfa.kind[n] == MATCH for n in nodes)

    def thread_closure(self, node: int, obls: frozenset, ctx) -> tuple:
        """Ordered threads (node, obligations) reachable from `node` without a character; the last is
        (MATCH, ...) when the regex can end here (threads after it are cut)."""
        key = (node, obls, ctx)
        got = self._thread_closure.get(key)
        if got is not None:
            return got
        nfa = self.nfa
        kind, data, out = nfa.kind, nfa.data, nfa.out
        pos, behind_sets = ctx
        result: list = []
        seen: set = set()
        loop_exit = nfa.loop_exit
        # each item carries the repeats entered on its path: back at one of them without a character
        # read, the iteration matched nothing, and `re` then leaves the repeat instead of iterating again
        stack = [(node, obls, frozenset())]
        while stack:
            n, ob, entered = stack.pop()
            if n in entered:
                stack.append((loop_exit[n], ob, entered))
                continue
            if (n, ob) in seen:
                continue
            seen.add((n, ob))
            k = kind[n]
            if k == CHAR:
                result.append((n, ob))
            elif k == SPLIT:
                inner = entered | {n} if n in loop_exit else entered
                for t in reversed(data[n]):
                    stack.append((t, ob, inner))
            elif k == MATCH:
                if ob:
                    if self.fullmatch:
                        raise RegexUnsupported("a lookahead (or $, \\Z, \\b) reaches past the end of the "
                                               "lexeme: whether it holds depends on the text after it")
                    ranges, at_end = self.condition(ob)
                    if not ranges and not at_end:
                        continue  # it never holds: the thread fails
                    if ranges != _EVERY_CHAR or not at_end:
                        result.append((n, ob))  # a conditional match: the threads after it stay
                        continue
                    ob = frozenset()  # it always holds
                result.append((n, ob))
                if not self.fullmatch:
                    break
            elif k == START:
                if pos == 0:
                    raise RegexUnsupported("^ or \\A at the start of the lexeme depends on where the lexeme "
                                           "starts in the text")
            elif k == LOOK:
                ahead, negate, body, width = nfa.looks[data[n]]
                if ahead:
                    nodes = self.set_closure(body)
                    if self.has_match(nodes):
                        holds = True
                    elif not nodes:
                        holds = False
                    else:
                        stack.append((out[n], ob | {(data[n], nodes)}, entered))
                        continue
                else:
                    if pos < width:
                        raise RegexUnsupported("a lookbehind (or ^ under MULTILINE, \\b) reaches before the "
                                               "start of the lexeme: whether it holds depends on the text before it")
                    if width == 0:
                        holds = self.has_match(self.set_closure(body))
                    else:
                        holds = self.has_match(behind_sets[self.behind.index(data[n])])
                if holds != negate:
                    stack.append((out[n], ob, entered))
            else:
                raise RegexUnsupported(f"internal: node kind {k}")
        got = self._thread_closure[key] = tuple(result)
        return got

    def closure(self, seeds, ctx) -> tuple:
        result, seen = [], set()
        for node, obls in seeds:
            for th in self.thread_closure(node, obls, ctx):
                if th in seen:
                    continue
                seen.add(th)
                result.append(th)
                if self.nfa.kind[th[0]] == MATCH and not th[1] and not self.fullmatch:
                    return tuple(result)
        return tuple(result)

    def condition(self, obls: frozenset) -> tuple:
        """Where a match with lookahead obligations `obls` pending at the end of the lexeme holds: (the
        next characters, as ranges; whether at the end of the text). RegexUnsupported when the next
        character alone does not decide it."""
        got = self._conditions.get(obls)
        if got is not None:
            return got
        kind, data = self.nfa.kind, self.nfa.data
        sets = [data[m] for _, nodes in obls for m in nodes if kind[m] == CHAR]
        points = sorted({0, MAX_CODEPOINT + 1} | {lo for rs in sets for lo, _ in rs}
                        | {hi + 1 for rs in sets for _, hi in rs})
        holds = []
        for a, b in zip(points, points[1:]):
            after = self.advance_obligations(obls, a)
            if after:
                raise RegexUnsupported("a lookahead (or $, \\Z, \\b) reaches more than one character past "
                                       "the end of the lexeme: the character after it does not decide it ($ "
                                       "without flag m holds before a last newline too: flag m or \\Z can say it)")
            if after is not None:
                holds.append((a, b - 1))
        # at the end of the text a body matches iff it reached $'s END node (MATCH settled it before)
        at_end = all(any(kind[m] == END for m in nodes) != self.nfa.looks[look][1] for look, nodes in obls)
        got = self._conditions[obls] = (normalize(holds), at_end)
        return got

    def advance_obligations(self, obls: frozenset, cp: int) -> Optional[frozenset]:
        """Obligations after one more character; None if one of them now fails."""
        if not obls:
            return obls
        out = set()
        for look, nodes in obls:
            negate = self.nfa.looks[look][1]
            nxt = self.step_set(nodes, cp)
            if self.has_match(nxt):
                if negate:
                    return None
            elif not nxt:
                if not negate:
                    return None
            else:
                out.add((look, nxt))
        return frozenset(out)

    def build(self, max_states: int) -> CharDFA:
        nfa = self.nfa
        kind, data, out = nfa.kind, nfa.data, nfa.out
        ctx0 = (0, tuple(frozenset() for _ in self.behind))
        init = (self.closure([(self.start, frozenset())], ctx0), ctx0)
        index = {init: 0}
        order = [init]
        edges: list = []
        accept: list = []
        conds: list = []
        i = 0
        while i < len(order):
            if len(order) > max_states:
                raise RegexUnsupported(f"the regex's automaton has more than {max_states:,} states")
            threads, ctx = order[i]
            i += 1
            # conditional matches (MATCH with obligations), in priority order, each with where it holds
            matches = [(j, self.condition(ob)) for j, (n, ob) in enumerate(threads) if kind[n] == MATCH and ob]
            accept.append(any(kind[n] == MATCH and not ob for n, ob in threads))
            conds.append(None if accept[-1] or not matches else
                         (normalize(r for _, (rs, _) in matches for r in rs), any(e for _, (_, e) in matches)))
            pos, behind_sets = ctx
            # every character set that can tell characters apart in this state
            sets = [data[n] for n, _ in threads if kind[n] == CHAR]
            sets.extend(rs for _, (rs, _) in matches)
            for _, ob in threads:
                for _, nodes in ob:
                    sets.extend(data[m] for m in nodes if kind[m] == CHAR)
            behind_starts = [self.set_closure(nfa.looks[lk][2]) for lk in self.behind]
            for s, st in zip(behind_sets, behind_starts):
                sets.extend(data[m] for m in s | st if kind[m] == CHAR)
            if not any(kind[n] == CHAR for n, _ in threads):
                edges.append([])
                continue
            points = sorted({lo for rs in sets for lo, _ in rs} | {hi + 1 for rs in sets for _, hi in rs})
            row: list = []
            cache: dict = {}
            for a, b in zip(points, points[1:]):
                # a conditional match that holds before character a cuts the threads after it
                end = next((j for j, (rs, _) in matches if _contains(rs, a)), len(threads))
                live = tuple(j for j, (n, _) in enumerate(threads[:end])
                             if kind[n] == CHAR and _contains(data[n], a))
                if not live:
                    continue
                new_pos = min(pos + 1, self.pos_cap)
                if self.behind:
                    new_behind = tuple(self.step_set(s | st, a) for s, st in zip(behind_sets, behind_starts))
                    sig = (live, new_behind,
                           tuple(_obl_signature(self, threads[j][1], a) for j in live))
                else:
                    new_behind = ()
                    sig = (live, tuple(_obl_signature(self, threads[j][1], a) for j in live))
                target = cache.get(sig)
                if target is None:
                    ctx2 = (new_pos, new_behind)
                    seeds = []
                    for j in live:
                        n, ob = threads[j]
                        ob2 = self.advance_obligations(ob, a)
                        if ob2 is not None:
                            seeds.append((out[n], ob2))
                    state = (self.closure(seeds, ctx2), ctx2)
                    if not state[0]:
                        target = cache[sig] = -1
                    else:
                        target = index.get(state)
                        if target is None:
                            target = index[state] = len(order)
                            order.append(state)
                        cache[sig] = target
                if target < 0:
                    continue
                if row and row[-1][2] == target and row[-1][1] == a - 1:
                    row[-1] = (row[-1][0], b - 1, target)
                else:
                    row.append((a, b - 1, target))
            edges.append(row)
        return CharDFA(edges, accept, conds)


_EVERY_CHAR = ((0, MAX_CODEPOINT),)


def _obl_signature(builder: _Builder, obls: frozenset, cp: int):
    if not obls:
        return ()
    return builder.advance_obligations(obls, cp)


def _contains(ranges: Ranges, cp: int) -> bool:
    i = bisect_right(ranges, (cp, MAX_CODEPOINT + 1)) - 1
    return i >= 0 and ranges[i][1] >= cp


# A regex without any of re's special characters matches only itself (a JSON Schema's keys and enum values).
_LITERAL = re.compile(r"[^\\.^$*+?{}\[\]|()]+")


def regex_dfa(regex: str, fullmatch: bool = False, max_states: int = MAX_DFA_STATES) -> CharDFA:
    """The automaton of the strings `regex` matches whole when re.match is run on them (fullmatch=False:
    Lark's lexing of one terminal), or of those re.fullmatch accepts (fullmatch=True).
    RegexUnsupported or re.error when there is none or the regex is invalid."""
    if _LITERAL.fullmatch(regex) and len(regex) < max_states:
        return CharDFA([[(ord(c), ord(c), i + 1)] for i, c in enumerate(regex)] + [[]],
                       [False] * len(regex) + [True])
    if fullmatch:
        # long repetitions of a prefix-free unit (JSON Schema's length bounds): the same language, built as
        # a chain of the unit's automaton (regex_repeat.py); where that does not apply, or a part of the regex
        # is refused, the subset construction below decides
        from .regex_repeat import structural_dfa
        try:
            dfa = structural_dfa(regex, max_states)
        except RegexUnsupported:
            dfa = None
        if dfa is not None:
            return dfa
    nfa, start = parse(regex)
    return _Builder(nfa, start, fullmatch).build(max_states)


# ---- other automata in range form ----------------------------------------------------------------------

def from_interegular(fsm) -> CharDFA:
    """An interegular FSM (multiples.py, free_text.py) as a CharDFA."""
    from interegular.fsm import anything_else

    by_symbol: dict = {}
    explicit: list = []
    else_symbol = None
    for char, symbol in fsm.alphabet._symbol_mapping.items():
        if char is anything_else:
            else_symbol = symbol
        else:
            by_symbol.setdefault(symbol, []).append((ord(char), ord(char)))
            explicit.append((ord(char), ord(char)))
    ranges = {sym: normalize(rs) for sym, rs in by_symbol.items()}
    if else_symbol is not None:
        ranges[else_symbol] = tuple(complement_ranges(list(normalize(explicit))))
    states = [fsm.initial] + sorted((s for s in fsm.states if s != fsm.initial), key=repr)
    ids = {s: i for i, s in enumerate(states)}
    edges = []
    for s in states:
        row = []
        for symbol, dst in fsm.map.get(s, {}).items():
            row.extend((lo, hi, ids[dst]) for lo, hi in ranges.get(symbol, ()))
        row.sort()
        edges.append(row)
    return CharDFA(edges, [s in fsm.finals for s in states])


def intersect(a: CharDFA, b: CharDFA, max_states: int = MAX_DFA_STATES) -> CharDFA:
    """Product automaton: the strings both accept."""
    if a.has_conditions or b.has_conditions:
        raise RegexUnsupported("a lookahead past the end of the lexeme cannot be intersected with another regex")
    index = {(0, 0): 0}
    order = [(0, 0)]
    edges, accept = [], []
    i = 0
    while i < len(order):
        if len(order) > max_states:
            raise RegexUnsupported(f"the intersection has more than {max_states:,} states")
        p, q = order[i]
        i += 1
        accept.append(a.accept[p] and b.accept[q])
        row = []
        ea, eb = a.edges[p], b.edges[q]
        x = y = 0
        while x < len(ea) and y < len(eb):
            lo1, hi1, t1 = ea[x]
            lo2, hi2, t2 = eb[y]
            lo, hi = max(lo1, lo2), min(hi1, hi2)
            if lo <= hi:
                key = (t1, t2)
                t = index.get(key)
                if t is None:
                    t = index[key] = len(order)
                    order.append(key)
                row.append((lo, hi, t))
            if hi1 < hi2:
                x += 1
            else:
                y += 1
        edges.append(row)
    return CharDFA(edges, accept)
