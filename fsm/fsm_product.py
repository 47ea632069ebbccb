"""Boolean questions about character automata (CharDFA), by one product construction over code-point ranges.

Schema terminals must lie inside or outside each other (grammar/json_schema/terminals.py); these are the
questions that decides, asked of the very automata the lexer builds from the same regexes (so the answers
are about the strings the lexer takes, with Python `re`'s semantics). The product is built natively
(csrc/gm_product.c): product states are tuples of the automata's states, moves are maximal code-point
ranges (a class like [^"\\] stays one move, not a million characters), and the questions that only ask
whether some string exists (disjointness, inclusion, cover) stop at the first product state that answers.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from itertools import chain
from typing import Optional, Sequence

import numpy as np

from .. import _core
from .limits import LexerTooLarge
from .python_regex import MAX_DFA_STATES, CharDFA, RegexUnsupported


def pattern_dfa(pattern: str) -> CharDFA:
    """The automaton of the strings the regex matches whole, kept across grammars: schemas repeat their string
    and number patterns (the automata are never changed here). The lexer's cache holds it: a schema's
    terminals are lexed whole (its grammar's `fullmatch` directive), from the same automata."""
    from .lexer import _cached_regex_dfa

    dfa = _cached_regex_dfa(pattern, True)
    if dfa.has_conditions:
        raise RegexUnsupported("a lookahead past the end of the string cannot be compared with other patterns")
    return dfa


# Product states held at most (each a tuple of ints, with its moves): beyond, the question is refused.
MAX_PRODUCT_STATES = 4_000_000
_limits = threading.local()


@contextmanager
def time_limit(deadline: Optional[float]):
    """Products built in this thread meanwhile stop at `deadline` (time.monotonic) with LexerTooLarge."""
    previous = getattr(_limits, "deadline", None)
    _limits.deadline = deadline
    try:
        yield
    finally:
        _limits.deadline = previous


def _flat(dfa: CharDFA) -> tuple:
    """The automaton as arrays for the native product (edge offsets per state, lo, hi, target, accept); kept
    on it, since automata are never changed once built."""
    flat = dfa.__dict__.get("_flat")
    if flat is None:
        n = dfa.n_states
        begin = np.zeros(n + 1, dtype=np.int32)
        np.cumsum(np.fromiter(map(len, dfa.edges), dtype=np.int32, count=n), out=begin[1:])
        moves = np.fromiter(chain.from_iterable(chain.from_iterable(dfa.edges)), dtype=np.int32,
                            count=3 * int(begin[-1])).reshape(-1, 3)
        flat = dfa._flat = (begin, np.ascontiguousarray(moves[:, 0]), np.ascontiguousarray(moves[:, 1]),
                            np.ascontiguousarray(moves[:, 2]), np.asarray(dfa.accept, dtype=np.uint8))
    return flat


def _product(dfas: Sequence[CharDFA], rule: int, stop_at_final: bool):
    """(whether a final product state is reachable, the product's arrays or None with stop_at_final)."""
    deadline = getattr(_limits, "deadline", None)
    time_left = -1.0 if deadline is None else max(deadline - time.monotonic(), 0.0)
    rc, found, n_states, arrays = _core.char_product([_flat(d) for d in dfas], rule, stop_at_final,
                                                     MAX_PRODUCT_STATES, time_left)
    if rc == _core.PRODUCT_TIMEOUT:
        raise LexerTooLarge(f"comparing patterns took too long ({n_states:,} product states so far; "
                            "limit: build_timeout)")
    if rc == _core.PRODUCT_TOO_MANY:
        raise LexerTooLarge(f"comparing patterns needs more than {MAX_PRODUCT_STATES:,} product states")
    return found, arrays


def intersection(*dfas: CharDFA) -> CharDFA:
    _, (begin, lo, hi, dst, accept) = _product(dfas, _core.PRODUCT_ALL, stop_at_final=False)
    moves = list(zip(lo.tolist(), hi.tolist(), dst.tolist()))
    b = begin.tolist()
    out = CharDFA([moves[b[q]:b[q + 1]] for q in range(len(b) - 1)], [bool(a) for a in accept.tolist()])
    out._flat = (begin, lo, hi, dst, accept)
    return out


def intersect(a: CharDFA, b: CharDFA, max_states: int = MAX_DFA_STATES) -> CharDFA:
    """python_regex.intersect, built natively: the same automaton (the product's pairs numbered breadth-first,
    moves in code-point order, one per overlap of the two automata's moves), the same limit and refusals."""
    if a.has_conditions or b.has_conditions:
        raise RegexUnsupported("a lookahead past the end of the lexeme cannot be intersected with another regex")
    rc, _, _, arrays = _core.char_product([_flat(a), _flat(b)], _core.PRODUCT_ALL, False, max_states, -1.0)
    if rc == _core.PRODUCT_TOO_MANY:
        raise RegexUnsupported(f"the intersection has more than {max_states:,} states")
    begin, lo, hi, dst, accept = arrays
    moves = list(zip(lo.tolist(), hi.tolist(), dst.tolist()))
    b = begin.tolist()
    out = CharDFA([moves[b[q]:b[q + 1]] for q in range(len(b) - 1)], [bool(x) for x in accept.tolist()])
    out._flat = arrays
    return out


def disjoint(a: CharDFA, b: CharDFA) -> bool:
    return not _product((a, b), _core.PRODUCT_ALL, stop_at_final=True)[0]


def is_subset(a: CharDFA, b: CharDFA) -> bool:
    return not _product((a, b), _core.PRODUCT_FIRST_ONLY, stop_at_final=True)[0]


def covered(a: CharDFA, parts: Sequence[CharDFA]) -> bool:
    """Whether every string of `a` is a string of one of `parts`."""
    return not _product((a, *parts), _core.PRODUCT_FIRST_ONLY, stop_at_final=True)[0]
