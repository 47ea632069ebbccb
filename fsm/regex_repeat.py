"""Long repetitions of a prefix-free unit, built as a chain of copies of the unit's automaton instead of by
the subset construction over the unrolled NFA (python_regex._Builder).

JSON Schema's length bounds write regexes like "(?:[ !#-\\[\\]-~]|[\\\\]["\\\\bfnrt]){4,256}": a unit (one
JSON string character in its spellings) repeated up to 256 times. The subset construction walks each of
the unrolled NFA's 500-600 states in Python (15-45 ms per regex); here the unit's automaton is built once
(by the subset construction, on the unit alone), minimized, and laid out n times with its accepting state
glued to the next copy's start (list comprehensions over the unit's rows), and the parts around the repeats
are joined to it.

Only fullmatch=True (the set language of the regex: re.fullmatch) is built here, and only regexes without
look-arounds, anchors or backreferences: there the language is all an automaton of the regex means, and
the leftmost-first priorities of Lark's lexing (fullmatch=False) do not enter. The automaton need not have
the general builder's states, but it has the same language, and everything downstream asks only about the
language: the terminal relations (fsm_product: disjointness, inclusion, cover, intersection), and the
lexer, whose byte DFA is determinized, minimized and numbered by first appearance, so the same languages
give the same lexer. tests/test_regex_repeat.py checks the automata against the general builder's
(minimized), and grammars and lexers built both ways.

Why it is exact. A regex is split at its first repeat (or alternative with a long repeat inside) into a
prefix P, that item, and the rest R, built the same way (an empty R: the empty word).
- The repeat X{m,n} followed by R. Let X's language be prefix-free (no word of it a proper prefix of
  another) without the empty string, and D its minimal trim automaton: D has one accepting state, without
  moves (a move from it would lead to a longer word of X). A word of X^j splits as x1...xj (xi in X) in
  exactly one way, and D run on it from its start accepts exactly at the end of x1 (accepting at a proper
  prefix p of x1 would put p and x1 in X). So running D and restarting it in the next copy whenever it
  accepts follows the word's unique split, counting the units read: boundary k, k = 0..n (X{m,}: k
  saturates at m), accepting when m <= k and R accepts the empty word. A boundary offers X's first
  characters while k < n and R's first ones while k >= m; where it offers both (m <= k < n), no character
  may be a first character of both (checked), so the next character says whether another unit or R
  begins; inside a unit R cannot begin (the unit ends at one place), and once R began no unit follows.
- Alternatives followed by R: (A|B)R = AR|BR, built side by side behind their product (a state per tuple
  of the alternatives' states, where more than one is alive).
- P before the item: when P's language is prefix-free, P's automaton accepts exactly once, at the end of
  the word's unique P-part, and its accepting state (without moves) is the rest's start.
Anything else (a unit or prefix that is not prefix-free, first characters in common): None, and the
general builder builds the regex.
"""

from __future__ import annotations

import re
import re._constants as C
import re._parser as sre_parse
from typing import Optional

from .python_regex import (MATCH, MAX_DFA_STATES, MAX_NFA_NODES, CharDFA, RegexUnsupported, _Builder, _combine_flags,
                           _Compiler, _NFA)

# A repeat whose unrolled NFA has at least this many copies of its body is built as a chain; shorter ones
# (and everything without such a repeat) are left to the subset construction.
CHAIN_MIN_COPIES = 8

_CHAR_OPS = (C.LITERAL, C.NOT_LITERAL, C.IN, C.ANY, C.CATEGORY)
_REPEAT_OPS = (C.MAX_REPEAT, C.MIN_REPEAT)


def structural_dfa(regex: str, max_states: int = MAX_DFA_STATES) -> Optional[CharDFA]:
    """The automaton of re.fullmatch(regex, ·), built structurally, or None where this construction does not
    apply (no long repeat, a look-around or anchor, a repeated unit that is not prefix-free, a regex the
    general builder refuses for its size): then python_regex's subset construction builds it.
    RegexUnsupported where a part of it is refused or it has more than max_states states (the general
    builder then decides)."""
    if not _LONG_BOUND.search(regex):
        return None  # (without parsing it: most regexes are not for us)
    parsed = sre_parse.parse(regex, 0)
    if not _long_repeat_inside(parsed) or not _plain(parsed):
        return None
    if _nfa_nodes(parsed) + 1 > MAX_NFA_NODES:  # (+1: the MATCH node) the general builder refuses it
        return None
    built = _build(_flat(parsed, parsed.state.flags), 0, max_states)
    if built is None:
        return None
    if len(built[1]) > max_states:
        raise _too_many(max_states)
    return CharDFA(*built)


# A repeat of CHAIN_MIN_COPIES (8) copies or more is written with a bound of 7 or more ({7,} has 8 copies,
# {0,8} 8): a regex without one has no long repeat. (A false alarm, such as [{]9, only costs the parse.)
_LONG_BOUND = re.compile(r"\{(?:[0-9]*,)?(?:[0-9]{2,}|[7-9])")


# ---- which regexes ------------------------------------------------------------------------------------------

def _copies(av) -> int:
    """How many copies of its body a repeat's NFA holds (python_regex._Compiler.item)."""
    lo, hi, _ = av
    return lo + 1 if hi == C.MAXREPEAT else hi


def _long_repeat_inside(items) -> bool:
    for op, av in items:
        if op in _REPEAT_OPS and (_copies(av) >= CHAIN_MIN_COPIES or _long_repeat_inside(av[2])):
            return True
        if op is C.SUBPATTERN and _long_repeat_inside(av[3]):
            return True
        if op is C.BRANCH and any(_long_repeat_inside(alt) for alt in av[1]):
            return True
    return False


def _plain(items) -> bool:
    """Characters, groups, alternatives and repeats only (no look-around, anchor, backreference, atomic)."""
    for op, av in items:
        if op in _CHAR_OPS:
            continue
        if op is C.SUBPATTERN:
            if not _plain(av[3]):
                return False
        elif op is C.BRANCH:
            if not all(_plain(alt) for alt in av[1]):
                return False
        elif op in _REPEAT_OPS:
            if not _plain(av[2]):
                return False
        else:
            return False
    return True


def _nfa_nodes(items) -> int:
    """The nodes python_regex._Compiler makes for `items` (plain ones), without making them."""
    total = 0
    for op, av in items:
        if op in _CHAR_OPS:
            total += 1
        elif op is C.SUBPATTERN:
            total += _nfa_nodes(av[3])
        elif op is C.BRANCH:
            total += 1 + sum(_nfa_nodes(alt) for alt in av[1])
        else:
            lo, hi, body = av
            b = _nfa_nodes(body)
            total += 1 + b + lo * b if hi == C.MAXREPEAT else (hi - lo) * (b + 1) + lo * b
    return total


# ---- automata as (edges, accept) lists ------------------------------------------------------------------
# Each part is laid out whole, where it lands in the final automaton (`base`: the number its start gets;
# its moves name final numbers), so that no state's row is copied again once made: a chain's rows are list
# comprehensions over the unit's rows, and that is most of the time left.

def _build(items: list, base: int, max_states: int):
    """(edges, accept) of the set language of `items` ((op, av, flags) triples, groups without alternatives
    opened), its start numbered `base`, or None where this construction does not apply. The first repeat
    or alternative with a long repeat inside splits them: before it a prefix P (subset construction; it
    must be prefix-free: it ends where the rest starts), then the repeat (a chain followed by the rest) or
    the alternatives (each one followed by the rest: (A|B)R = AR|BR)."""
    split = next((i for i, (op, av, _) in enumerate(items)
                  if op in _REPEAT_OPS or (op is C.BRANCH and _long_repeat_inside([(op, av)]))), None)
    if split is None:
        return _shifted(_subset(items, max_states), base) if items else ([[]], [True])  # (the empty word)
    if not split:
        return _middle(items, base, max_states)
    prefix = _prefix_free(_minimal(_subset(items[:split], max_states)))
    if prefix is None:
        return None
    (p_edges, p_accept), acc = prefix
    # P's accepting state (no moves: P is prefix-free) is the middle's start: P's other states, then the middle
    n_p = len(p_accept) - 1
    number = [base + (q if q < acc else q - 1) for q in range(n_p + 1)]
    number[acc] = base + n_p
    middle = _middle(items[split:], base + n_p, max_states)
    if middle is None:
        return None
    edges = [[(lo, hi, number[t]) for lo, hi, t in row] for q, row in enumerate(p_edges) if q != acc]
    accept = [a for q, a in enumerate(p_accept) if q != acc]
    edges += middle[0]
    accept += middle[1]
    return edges, accept


def _middle(items: list, base: int, max_states: int):
    """`items` starting with a repeat or alternatives, laid out from `base`."""
    op, av, flags = items[0]
    rest = items[1:]
    if op is C.BRANCH:
        return _union([_flat(alt, flags) + rest for alt in av[1]], base, max_states)
    unit = _build(_flat(av[2], flags), 0, max_states)
    if unit is None:
        return None
    return _chain(unit, av[0], None if av[1] == C.MAXREPEAT else av[1], rest, base, max_states)


def _shifted(dfa, base: int):
    edges, accept = dfa
    if not base:
        return [list(row) for row in edges], list(accept)
    return [[(lo, hi, t + base) for lo, hi, t in row] for row in edges], list(accept)


def _flat(items, flags: int) -> list:
    """(op, av, flags) for each item, groups opened (an alternative inside one stays one item)."""
    out = []
    for op, av in items:
        if op is C.SUBPATTERN:
            _, add, delete, p = av
            out.extend(_flat(p, _combine_flags(flags, add, delete)))
        else:
            out.append((op, av, flags))
    return out


def _too_many(max_states: int) -> RegexUnsupported:
    return RegexUnsupported(f"the regex's automaton has more than {max_states:,} states")


_subset_cache: dict = {}


def _subset(items: list, max_states: int):
    """The subset construction (fullmatch: the set language) on a part without long repeats; kept by the
    part's parse (units such as a JSON string character recur in every length bound). Never changed."""
    key = (repr([(op, av) for op, av, _ in items]), tuple(f for _, _, f in items), max_states)
    got = _subset_cache.get(key)
    if got is None:
        nfa = _NFA()
        compiler = _Compiler(nfa)
        start = nfa.node(MATCH)
        for op, av, flags in reversed(items):
            start = compiler.item(op, av, flags, start)
        dfa = _Builder(nfa, start, True).build(max_states)
        if len(_subset_cache) >= 256:
            _subset_cache.clear()
        got = _subset_cache[key] = (dfa.edges, dfa.accept)
    return got


def _prefix_free(minimal):
    """(minimal, its accepting state) when the minimal trim automaton's language is prefix-free and lacks the
    empty string (one accepting state, not the start, without moves), else None."""
    edges, accept = minimal
    accepting = [q for q, a in enumerate(accept) if a]
    if len(accepting) != 1 or accepting[0] == 0 or edges[accepting[0]]:
        return None
    return minimal, accepting[0]


def _chain(unit, lo: int, hi: Optional[int], rest: list, base: int, max_states: int):
    """X{lo,hi} (hi None: X{lo,}) followed by T (the automaton of `rest`), where X is prefix-free without the
    empty string and, unless lo == hi, no first character of T is a first character of X (see the module's
    docstring: the chain is exact; a boundary k offers X's first moves while k < hi and T's while k >= lo,
    and where it offers both the next character says which); None where that fails. With D the minimal
    automaton of X, acc its accepting state: block k (k = 0.. units read) holds the boundary, then D's states
    inside unit k + 1 (acc is the next block's boundary). Bounded: the last boundary alone after the blocks;
    unbounded: block lo's units come back to its boundary. T's states follow."""
    got = _prefix_free(_minimal(unit))
    if got is None:
        return None
    (d_edges, d_accept), acc = got
    reenter = any(t == 0 for row in d_edges for _, _, t in row)
    # a block's places: the boundary (D's start), D's other states but acc, and D's start again where a move
    # of D returns to it (inside the unit, that start is not a boundary)
    places = [q for q in range(1, len(d_accept)) if q != acc]
    place = {q: i + 1 for i, q in enumerate(places)}
    width = len(places) + 1 + reenter
    n_blocks = hi if hi is not None else lo + 1
    n_chain = n_blocks * width + (1 if hi is not None else 0)
    if n_chain > max_states:
        raise _too_many(max_states)
    tail = _build(rest, base + n_chain, max_states)
    if tail is None:
        return None
    t_edges, t_accept = tail
    if (hi is None or lo < hi) and _overlap(d_edges[0], t_edges[0]):
        return None  # a boundary where both another unit and T may start, on the same character
    # D's rows with targets relative to the block: acc -> the next boundary (width), D's start -> its place
    rel = [[(a, b, width if t == acc else (width - 1 if t == 0 else place[t])) for a, b, t in d_edges[q]]
           for q in [0] + places]
    t_first = t_edges[0]
    tail_accepts = bool(t_accept[0])
    edges: list = []
    accept: list = []
    for k in range(n_blocks):
        at = base + k * width
        if hi is None and k == lo:  # saturated: a unit read here comes back to this boundary
            rows = [[(a, b, at if t == width else at + t) for a, b, t in row] for row in rel]
        else:
            rows = [[(a, b, at + t) for a, b, t in row] for row in rel]
        if reenter:
            rows.append(rows[0])
        if k >= lo:
            edges.append(sorted(rows[0] + t_first))
            accept.append(tail_accepts)
        else:
            edges.append(rows[0])
            accept.append(False)
        edges += rows[1:]
        accept += [False] * (width - 1)
    if hi is not None:  # the last boundary: only T may follow
        edges.append(list(t_first))
        accept.append(tail_accepts)
    edges += t_edges
    accept += t_accept
    return edges, accept


def _overlap(row_a, row_b) -> bool:
    i = j = 0
    while i < len(row_a) and j < len(row_b):
        lo_a, hi_a, _ = row_a[i]
        lo_b, hi_b, _ = row_b[j]
        if lo_a <= hi_b and lo_b <= hi_a:
            return True
        if hi_a < hi_b:
            i += 1
        else:
            j += 1
    return False


def _union(alternatives: list, base: int, max_states: int):
    """The alternatives' automata side by side, behind a product of them for the words that leave more than
    one alive (a state per tuple of their states; a tuple with one alive member is that member's state).
    Laid out: the product's start at `base`, the alternatives, the product's other states."""
    starts, alts, at = [], [], base + 1
    for items in alternatives:
        alt = _build(items, at, max_states)
        if alt is None:
            return None
        starts.append(at)
        alts.append(alt)
        at += len(alt[1])
        if at - base > max_states:
            raise _too_many(max_states)

    def moves(i, q):
        return alts[i][0][q - starts[i]]

    def accepting(i, q):
        return alts[i][1][q - starts[i]]

    def key(states):
        """The tuple without its dead members; a lone live member stands for itself (an int)."""
        live = [(i, q) for i, q in enumerate(states) if q is not None and (moves(i, q) or accepting(i, q))]
        if len(live) == 1:
            return live[0][1]
        return tuple(q if (i, q) in live else None for i, q in enumerate(states)) if live else None

    start = key(tuple(starts))
    if not isinstance(start, tuple):
        return None  # at most one alternative matches anything: left to the general builder
    index = {start: base}
    order = [start]
    head_rows, more_rows, more_accept = [], [], []
    for j, states in enumerate(order):
        row = []
        for lo, hi, targets in _sweep([moves(i, q) if q is not None else () for i, q in enumerate(states)]):
            nxt = key(tuple(targets))
            if nxt is None:
                continue
            if isinstance(nxt, tuple):
                t = index.get(nxt)
                if t is None:
                    t = index[nxt] = at + len(order) - 1
                    order.append(nxt)
                    if t - base >= max_states:
                        raise _too_many(max_states)
                nxt = t
            row.append((lo, hi, nxt))
        acc = any(q is not None and accepting(i, q) for i, q in enumerate(states))
        if j == 0:
            head_rows, head_accept = row, acc
        else:
            more_rows.append(row)
            more_accept.append(acc)
    edges, accept = [head_rows], [head_accept]
    for alt_edges, alt_accept in alts:
        edges += alt_edges
        accept += alt_accept
    edges += more_rows
    accept += more_accept
    return edges, accept


def _sweep(rows):
    """The code-point intervals where some row moves, with each row's target there (None where it has none)."""
    points = sorted({lo for r in rows for lo, _, _ in r} | {hi + 1 for r in rows for _, hi, _ in r})
    at = [0] * len(rows)
    out = []
    for a, b in zip(points, points[1:]):
        targets = []
        for i, r in enumerate(rows):
            j = at[i]
            while j < len(r) and r[j][1] < a:
                j += 1
            at[i] = j
            targets.append(r[j][2] if j < len(r) and r[j][0] <= a else None)
        if any(t is not None for t in targets):
            out.append((a, b - 1, targets))
    return out


def _minimal(dfa):
    """The minimal trim automaton of a small (edges, accept) automaton, numbered breadth-first: Moore's
    refinement over the states that can still accept."""
    d_edges, d_accept = dfa
    n = len(d_accept)
    back: list = [[] for _ in range(n)]
    for q, row in enumerate(d_edges):
        for _, _, t in row:
            back[t].append(q)
    alive = {q for q in range(n) if d_accept[q]}
    todo = list(alive)
    while todo:
        for p in back[todo.pop()]:
            if p not in alive:
                alive.add(p)
                todo.append(p)
    if 0 not in alive:
        return [[]], [False]

    def signature(q, block):
        out: list = []
        for lo, hi, t in d_edges[q]:
            if t in alive:
                b = block[t]
                if out and out[-1][2] == b and out[-1][1] == lo - 1:
                    out[-1] = (out[-1][0], hi, b)
                else:
                    out.append((lo, hi, b))
        return tuple(out)

    block = {q: int(bool(d_accept[q])) for q in alive}
    n_blocks = len(set(block.values()))
    while True:
        ids: dict = {}
        refined = {q: ids.setdefault((block[q], signature(q, block)), len(ids)) for q in alive}
        if len(ids) == n_blocks:
            break
        block, n_blocks = refined, len(ids)
    first: dict = {}
    for q in sorted(alive):
        first.setdefault(block[q], q)
    number = {block[0]: 0}
    order = [block[0]]
    edges, accept = [], []
    i = 0
    while i < len(order):
        rep = first[order[i]]
        i += 1
        accept.append(bool(d_accept[rep]))
        row = []
        for lo, hi, b in signature(rep, block):
            if b not in number:
                number[b] = len(order)
                order.append(b)
            row.append((lo, hi, number[b]))
        edges.append(row)
    return edges, accept
