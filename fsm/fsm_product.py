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


def _walk(fsms: Sequence[FSM], accept: Accept, stop_at_final: bool, alive: Sequence[int]):
    """Breadth-first over the reachable product states (a missing state: that FSM is dead there), keeping
    only those where every FSM in `alive` lives (`accept` takes no state where one of them is dead). Returns
    (states, finals, transitions, alphabet); with stop_at_final, returns at the first final state found."""
    alphabet, new_to_old = Alphabet.union(*(f.alphabet for f in fsms))
    moves = [(f.map, f.finals, old) for f, old in zip(fsms, new_to_old)]
    # the keys to follow from a state: those the first FSM that must live has a transition on
    lead = alive[0]
    by_old: dict = {}
    for new, old in new_to_old[lead].items():
        by_old.setdefault(old, []).append(new)
    lead_map = fsms[lead].map
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
        rows = [None if s is None else m.get(s) for s, (m, _, _) in zip(current, moves)]
        for old_lead in lead_map.get(current[lead], ()):
            for key in by_old[old_lead]:
                nxt = tuple(None if r is None else r.get(old[key]) for r, (_, _, old) in zip(rows, moves))
                if any(nxt[k] is None for k in alive):
                    continue
                j = index.get(nxt)
                if j is None:
                    j = index[nxt] = len(states)
                    states.append(nxt)
                row[key] = j
        i += 1
    return states, finals, transitions, alphabet


def product(fsms: Sequence[FSM], accept: Accept, alive: Sequence[int]) -> FSM:
    """The FSM of the strings whose run through every FSM ends in a state `accept` takes (which it takes
    only where every FSM in `alive` lives)."""
    states, finals, transitions, alphabet = _walk(fsms, accept, stop_at_final=False, alive=alive)
    return FSM(alphabet=alphabet, states=range(len(states)), initial=0, finals=finals, map=transitions,
               __no_validation__=True)


def intersection(*fsms: FSM) -> FSM:
    return product(fsms, all, range(len(fsms)))


def some_string(fsms: Sequence[FSM], accept: Accept, alive: Sequence[int]) -> bool:
    """Whether some string's run through every FSM ends in a state `accept` takes (see _walk's alive)."""
    return bool(_walk(fsms, accept, stop_at_final=True, alive=alive)[1])


def disjoint(a: FSM, b: FSM) -> bool:
    return not some_string((a, b), all, (0, 1))


def is_subset(a: FSM, b: FSM) -> bool:
    return not some_string((a, b), lambda f: f[0] and not f[1], (0,))


def covered(a: FSM, parts: Sequence[FSM]) -> bool:
    """Whether every string of `a` is a string of one of `parts`."""
    return not some_string((a, *parts), lambda f: f[0] and not any(f[1:]), (0,))
