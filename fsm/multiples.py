"""Decimal numbers that are multiples of m / 10**e, as an automaton (JSON Schema `multipleOf`).

A number written -?(0|[1-9][0-9]*)(.[0-9]+)? is a multiple of m / 10**e exactly when it has no nonzero
digit past the e-th fraction digit and N = (the number times 10**e) is divisible by m. Reading digits left to
right, N's remainder modulo m is updated as r -> (10 r + digit) mod m, so the automaton has about
m * (e + 2) states. Exponents are not part of the language (a sound narrowing: json.dumps writes most
numbers without one). No regex of comparable size exists for most m, hence an automaton.
"""

from __future__ import annotations

from decimal import Decimal

from interegular.fsm import FSM, Alphabet, anything_else

MAX_BUILD = 20000  # m * (e + 2): states built before minimizing
MAX_STATES = 200   # states after minimizing


def multiple_parts(step) -> tuple[int, int]:
    """(m, e) with step == m / 10**e, m a positive integer; ValueError unless step is a positive number."""
    if isinstance(step, bool) or not isinstance(step, (int, float)) or not step > 0 or step != step \
            or step == float("inf"):
        raise ValueError("multipleOf must be a positive number")
    sign, digits, exp = Decimal(repr(step) if isinstance(step, float) else str(step)).normalize().as_tuple()
    m = int("".join(map(str, digits)))
    return (m * 10 ** exp, 0) if exp >= 0 else (m, -exp)


def multiple_fsm(m: int, e: int) -> FSM:
    """The spellings -?(0|[1-9][0-9]*)(.[0-9]+)? of the multiples of m / 10**e."""
    symbols = {"-": 0, ".": 1, anything_else: 12}
    symbols.update({str(d): 2 + d for d in range(10)})
    alphabet = Alphabet(symbols)
    # States: 0 start, 1 after '-', 2 after a leading "0", then ("int", r) and ("frac", r, k), numbered below.
    ids: dict = {}

    def sid(key) -> int:
        if key not in ids:
            ids[key] = 3 + len(ids)
        return ids[key]

    trans: dict[int, dict[int, int]] = {0: {0: 1, 2: 2}, 1: {2: 2}, 2: {}}
    finals = set()
    for d in range(1, 10):
        trans[0][2 + d] = trans[1][2 + d] = sid(("int", d % m))
    todo = [("int", d % m) for d in range(1, 10)]
    seen = set()
    trans[2][1] = sid(("frac", 0, 0))  # "0."
    todo.append(("frac", 0, 0))
    if 0 % m == 0:
        finals.add(2)
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        s = sid(key)
        edges = trans.setdefault(s, {})
        if key[0] == "int":
            r = key[1]
            if (r * 10 ** e) % m == 0:
                finals.add(s)
            for d in range(10):
                nxt = ("int", (10 * r + d) % m)
                edges[2 + d] = sid(nxt)
                todo.append(nxt)
            edges[1] = sid(("frac", r, 0))
            todo.append(("frac", r, 0))
        else:
            _, r, k = key
            if k >= 1 and (r * 10 ** (e - min(k, e))) % m == 0:
                finals.add(s)
            if k < e:
                for d in range(10):
                    nxt = ("frac", (10 * r + d) % m, k + 1)
                    edges[2 + d] = sid(nxt)
                    todo.append(nxt)
            else:  # past the e-th digit only zeros
                nxt = ("frac", r, k + 1 if k == 0 else k)
                edges[2] = sid(nxt)
                todo.append(nxt)
    states = set(trans) | set(ids.values())
    for s in states:
        trans.setdefault(s, {})
    return FSM(alphabet=alphabet, states=states, initial=0, finals=finals, map=trans).reduce()


def checked_multiple_fsm(m: int, e: int) -> FSM:
    """multiple_fsm, or ValueError when its automaton would be too large for the lexer."""
    if m * (e + 2) > MAX_BUILD:
        raise ValueError(f"{m}e-{e} has too many remainders to track (m * (e + 2) > {MAX_BUILD})")
    fsm = multiple_fsm(m, e)
    if len(fsm.states) > MAX_STATES:
        raise ValueError(f"the automaton of the multiples of {m}e-{e} has {len(fsm.states)} states "
                         f"(at most {MAX_STATES})")
    return fsm
