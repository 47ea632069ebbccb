"""Boolean questions about interegular FSMs, by one product construction over hashed states.

interegular's own product (`&`, `-`, `issubset`) looks each new product state up in a list, which is
quadratic in the states: a length-bounded JSON string (a few hundred states) next to a format took
seconds per question. Here product states are tuples in a dict, and the questions that only ask whether
some string exists (disjointness, inclusion) stop at the first product state that answers them.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Callable, Sequence

import interegular
from interegular.fsm import FSM, Alphabet

# accept(finals): whether a product state is final, from whether each FSM's own state is final
Accept = Callable[[tuple], bool]


@lru_cache(maxsize=4096)
def pattern_fsm(pattern: str) -> FSM:
    """interegular's FSM of a regex, kept across grammars: schemas repeat their string and number patterns
    (FSMs are not changed by the operations here)."""
    return interegular.parse_pattern(pattern).to_fsm()


def _walk(fsms: Sequence[FSM], accept: Accept, stop_at_final: bool):
    """Breadth-first over the reachable product states (a missing state: that FSM is dead there). Returns
    (states, finals, transitions, alphabet); with stop_at_final, returns at the first final state found."""
    alphabet, new_to_old = Alphabet.union(*(f.alphabet for f in fsms))
    moves = [(f.map, f.finals, old) for f, old in zip(fsms, new_to_old)]
    keys = list(alphabet.by_transition)
    start = tuple(f.initial for f in fsms)
    index = {start: 0}
    states, finals, transitions = [start], set(), {}
    i = 0
    while i < len(states):
        current = states[i]
        if accept(tuple(s is not None and s in fin for s, (_, fin, _) in zip(current, moves))):
            finals.add(i)
            if stop_at_final:
                break
        row = transitions[i] = {}
        for key in keys:
            nxt = tuple(None if s is None else m.get(s, {}).get(old[key]) for s, (m, _, old) in zip(current, moves))
            if all(s is None for s in nxt):
                continue
            j = index.get(nxt)
            if j is None:
                j = index[nxt] = len(states)
                states.append(nxt)
            row[key] = j
        i += 1
    return states, finals, transitions, alphabet


def product(fsms: Sequence[FSM], accept: Accept) -> FSM:
    """The FSM of the strings whose run through every FSM ends in a state `accept` takes."""
    states, finals, transitions, alphabet = _walk(fsms, accept, stop_at_final=False)
    return FSM(alphabet=alphabet, states=range(len(states)), initial=0, finals=finals, map=transitions,
               __no_validation__=True)


def intersection(*fsms: FSM) -> FSM:
    return product(fsms, all)


def some_string(fsms: Sequence[FSM], accept: Accept) -> bool:
    """Whether some string's run through every FSM ends in a state `accept` takes."""
    return bool(_walk(fsms, accept, stop_at_final=True)[1])


def disjoint(a: FSM, b: FSM) -> bool:
    return not some_string((a, b), all)


def is_subset(a: FSM, b: FSM) -> bool:
    return not some_string((a, b), lambda f: f[0] and not f[1])


def covered(a: FSM, parts: Sequence[FSM]) -> bool:
    """Whether every string of `a` is a string of one of `parts`."""
    return not some_string((a, *parts), lambda f: f[0] and not any(f[1:]))
