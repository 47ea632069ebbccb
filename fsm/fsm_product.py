"""Boolean questions about character automata (CharDFA), by one product construction over code-point ranges.

Schema terminals must lie inside or outside each other (grammar/json_schema/terminals.py); these are the
questions that decides, asked of the very automata the lexer builds from the same regexes (so the answers
are about the strings the lexer takes, with Python `re`'s semantics). Product states are tuples in a dict,
edges are range intersections (a class like [^"\\] stays one edge, not a million characters), and the
questions that only ask whether some string exists (disjointness, inclusion) stop at the first product
state that answers them.
"""

from __future__ import annotations

from typing import Callable, Sequence

from .python_regex import CharDFA, RegexUnsupported

# accept(finals): whether a product state is final, from whether each automaton's own state is final
Accept = Callable[[tuple], bool]


def pattern_dfa(pattern: str) -> CharDFA:
    """The automaton of the strings the regex matches whole, kept across grammars: schemas repeat their string
    and number patterns (the automata are never changed here). The lexer's cache holds it: a schema's
    terminals are lexed whole (its grammar's `fullmatch` directive), from the same automata."""
    from .lexer import _cached_regex_dfa

    dfa = _cached_regex_dfa(pattern, True)
    if dfa.has_conditions:
        raise RegexUnsupported("a lookahead past the end of the string cannot be compared with other patterns")
    return dfa


MAX_CODEPOINT = 0x10FFFF


def _partition(dfa: CharDFA, q: int) -> tuple[list, list]:
    """State q's moves over the whole code-point range: (starts, targets), starts[0] == 0, a target per
    piece (None: no move), neighbouring pieces with the same target merged. Kept on the automaton."""
    cache = dfa.__dict__.setdefault("_partitions", {})
    part = cache.get(q)
    if part is None:
        starts, targets = [0], [None]
        for lo, hi, t in dfa.edges[q]:
            _piece_from(starts, targets, lo, t)
            if hi < MAX_CODEPOINT:
                _piece_from(starts, targets, hi + 1, None)
        part = cache[q] = (starts, targets)
    return part


def _piece_from(starts: list, targets: list, cp: int, target) -> None:
    """From code point cp on (up to a later piece), the move goes to `target`."""
    if starts[-1] == cp:
        targets[-1] = target
        if len(targets) > 1 and targets[-2] == target:
            starts.pop(), targets.pop()
    elif targets[-1] != target:
        starts.append(cp), targets.append(target)


_DEAD = ([0], [None])


def _walk(dfas: Sequence[CharDFA], accept: Accept, stop_at_final: bool, alive: Sequence[int]):
    """Breadth-first over the reachable product states (None in a place: that automaton is dead there),
    keeping only those where every automaton in `alive` lives (`accept` takes no state where one of them is
    dead). Returns (states, finals, edges); with stop_at_final, returns at the first final state found."""
    lead = alive[0]
    k = len(dfas)
    start = tuple(0 for _ in dfas)
    index = {start: 0}
    states, finals, edges = [start], set(), []
    i = 0
    while i < len(states):
        current = states[i]
        if accept(tuple(q is not None and d.accept[q] for q, d in zip(current, dfas))):
            finals.add(i)
            if stop_at_final:
                break
        parts = [_DEAD if q is None else _partition(d, q) for q, d in zip(current, dfas)]
        lead_starts, lead_targets = parts[lead]
        pos = [0] * k
        out = []
        for n, lead_target in enumerate(lead_targets):
            if lead_target is None:  # no product state lives where the lead is dead: skip the piece
                continue
            cp = lead_starts[n]
            piece_end = lead_starts[n + 1] if n + 1 < len(lead_starts) else MAX_CODEPOINT + 1
            while cp < piece_end:
                nxt, end = [], piece_end
                for c in range(k):
                    starts, targets = parts[c]
                    p = pos[c]
                    while p + 1 < len(starts) and starts[p + 1] <= cp:
                        p += 1
                    pos[c] = p
                    nxt.append(targets[p])
                    if p + 1 < len(starts) and starts[p + 1] < end:
                        end = starts[p + 1]
                nxt = tuple(nxt)
                if all(nxt[c] is not None for c in alive):
                    j = index.get(nxt)
                    if j is None:
                        j = index[nxt] = len(states)
                        states.append(nxt)
                    out.append((cp, end - 1, j))
                cp = end
        edges.append(out)
        i += 1
    return states, finals, edges


def product(dfas: Sequence[CharDFA], accept: Accept, alive: Sequence[int]) -> CharDFA:
    """The automaton of the strings whose run through every automaton ends in a state `accept` takes (which
    it takes only where every automaton in `alive` lives)."""
    states, finals, edges = _walk(dfas, accept, stop_at_final=False, alive=alive)
    return CharDFA(edges, [i in finals for i in range(len(states))])


def intersection(*dfas: CharDFA) -> CharDFA:
    return product(dfas, all, range(len(dfas)))


def some_string(dfas: Sequence[CharDFA], accept: Accept, alive: Sequence[int]) -> bool:
    """Whether some string's run through every automaton ends in a state `accept` takes (see _walk's alive)."""
    return bool(_walk(dfas, accept, stop_at_final=True, alive=alive)[1])


def disjoint(a: CharDFA, b: CharDFA) -> bool:
    return not some_string((a, b), all, (0, 1))


def is_subset(a: CharDFA, b: CharDFA) -> bool:
    return not some_string((a, b), lambda f: f[0] and not f[1], (0,))


def covered(a: CharDFA, parts: Sequence[CharDFA]) -> bool:
    """Whether every string of `a` is a string of one of `parts`."""
    return not some_string((a, *parts), lambda f: f[0] and not any(f[1:]), (0,))
