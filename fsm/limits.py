"""The bounds every automaton construction of the lexer keeps: a number of DFA states and a deadline."""

from __future__ import annotations

import time
from typing import Optional


class LexerTooLarge(ValueError):
    """The combined lexer DFA exceeds the state or time limit."""


def check_limits(n_states: int, step: int, max_states: int, deadline: Optional[float], what: str = "the lexer") -> None:
    """Raise LexerTooLarge once a construction holds more than max_states states, or (looked at every 64th
    step) once time.monotonic() is past the deadline."""
    if n_states > max_states:
        raise LexerTooLarge(too_many_states(max_states, what))
    if deadline is not None and step % 64 == 0 and time.monotonic() > deadline:
        raise LexerTooLarge(too_long(n_states, what))


def too_many_states(max_states: int, what: str = "the lexer") -> str:
    return f"{what} needs more than {max_states:,} DFA states (limit: max_lexer_states)"


def too_long(n_states: int, what: str = "the lexer") -> str:
    return f"{what} took too long ({n_states:,} DFA states so far; limit: build_timeout)"


def union_of_successors(succs: list, values: list, through=None) -> list:
    """Each state's value or'ed with those of every state reachable from it (only through states for which
    `through` is true, when given): bit masks of what a lexeme can still become."""
    out = list(values)
    changed = True
    while changed:
        changed = False
        for a in range(len(succs) - 1, -1, -1):
            v = out[a]
            for b in succs[a]:
                if through is None or through[b]:
                    v |= out[b]
            if v != out[a]:
                out[a] = v
                changed = True
    return out
