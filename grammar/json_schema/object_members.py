"""The rules of an object's members: listed properties in schema order or in any order, other keys
anywhere between, the member count within [least, most], and one of the key sets satisfied (a small state
machine over the members, written as grammar rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Iterable, Optional

from .keywords import schema_error

if TYPE_CHECKING:
    from .translator import Translator

MAX_MEMBER_STATES = 20000  # reachable (position, count, key sets) states of one object's members


def member_positions(n: int, any_order: bool) -> list[int]:
    """The positions of an object of n listed members, each after every position it leads to. In schema
    order a position is the next listed index i; in any order it is the bitmask of the members written.
    Position 0 is the start in both."""
    if not any_order:
        return list(range(n, -1, -1))
    return sorted(range(1 << n), key=lambda mask: -bin(mask).count("1"))


def may_come(n: int, p: int, any_order: bool) -> Iterable[int]:
    """The listed members (indices) that may still come at position p."""
    if not any_order:
        return range(p, n)
    return [j for j in range(n) if not p >> j & 1]


def key_set_met(req: list[frozenset], p: int, alive: frozenset, any_order: bool) -> bool:
    """Does some key set still alive need no listed member that may still come at position p (req[j]: the
    sets that need member j)? Then the object may close here."""
    return any(all(s not in req[j] for j in may_come(len(req), p, any_order)) for s in alive)


def position_after(p: int, j: int, any_order: bool) -> tuple[int, Iterable[int]]:
    """The position after member j comes at position p, and the members passed over (in schema order, those
    between: they can no longer come, so the key sets needing them die)."""
    if not any_order:
        return j + 1, range(p, j)
    return p | 1 << j, ()


def object_rules(tr: Translator, base: str, members: list[str], req: list[frozenset], banned: list[frozenset],
                 n_sets: int, extra: Optional[str], least: int, most: Optional[int], any_order: bool,
                 ptr: str) -> list[str]:
    """Listed members in schema order or in any order (member_positions), other keys anywhere
    between, the member count kept in [least, most], and the members of one of `n_sets` key sets present
    and absent as the set says (req[i], banned[i]: the sets that need member i, that ban it).

    O(p,c,s): after a member, at position p (member_positions), c members so far (at most `top`,
    saturating at `least` without `most`), s the key sets no written or passed-over member ruled out.
    A(p,c,s): the next member (after a comma or the brace). B(p,c,s): a listed property that may come at
    p. Only productive rules are made (an empty choice would let a model write a prefix it cannot
    complete)."""
    n = len(members)
    top = most if most is not None else least
    bump = (lambda c: c + 1) if most is not None else (lambda c: min(c + 1, least))  # noqa: E731
    all_sets = frozenset(range(n_sets))
    mask = lambda alive: sum(1 << s for s in alive)  # noqa: E731

    def name(kind: str, p: int, c: int, alive: frozenset) -> str:
        tag = f"_s{mask(alive)}" if n_sets > 1 else ""
        return f"{base}_{kind}{p}" + (f"_{c}" if top else "") + tag

    made: set[str] = set()

    def make(kind: str, p: int, c: int, alive: frozenset, alts: list[str]) -> None:
        if alts:
            tr.rule(name(kind, p, c, alive), alts, ptr)
            made.add(name(kind, p, c, alive))

    def member_alt(j: int, after: int, c: int, alive: frozenset) -> list[str]:
        kept = alive - banned[j]  # the sets still possible with member j
        nxt = name("o", after, bump(c), kept) if kept else None
        return [f"{members[j]} {nxt}"] if nxt in made else []

    # The states reachable from the opening brace, forward; the rules are then made backward over them.
    reachable: dict[tuple, set] = {}  # (p, c) -> the key-set tags s reachable there
    todo = [("a", 0, 0, all_sets)]
    seen = set()
    while todo:
        state = todo.pop()
        if state in seen:
            continue
        seen.add(state)
        if len(seen) > MAX_MEMBER_STATES:
            raise schema_error(f"the object's members take more than {MAX_MEMBER_STATES} states (key sets, "
                               "counts and positions)", ptr)
        kind, p, c, alive = state
        reachable.setdefault((p, c), set()).add(alive)
        if kind == "o":
            todo.append(("a", p, c, alive))
        elif most is not None and c >= most:
            continue
        elif kind == "a":
            todo += [("o", p, bump(c), alive)] if extra else []
            todo.append(("b", p, c, alive))
        elif any_order:
            todo += [("o", position_after(p, j, any_order)[0], bump(c), alive - banned[j])
                     for j in may_come(n, p, any_order) if alive - banned[j]]
        elif p < n:
            todo += [("o", p + 1, bump(c), alive - banned[p])] if alive - banned[p] else []
            todo += [("b", p + 1, c, alive - req[p])] if alive - req[p] and p + 1 < n else []
    for p in member_positions(n, any_order):
        for c in range(top, -1, -1):
            for alive in sorted(reachable.get((p, c), ()), key=mask):
                room = most is None or c < most
                closes = key_set_met(req, p, alive, any_order) and c >= least
                if room and not any_order and p < n:
                    # B(i): member i, or pass it over (the sets needing it die) to B(i+1): linear in n.
                    b_alts = member_alt(p, p + 1, c, alive)
                    rest = alive - req[p]
                    if rest and p + 1 < n and name("b", p + 1, c, rest) in made:
                        b_alts.append(name("b", p + 1, c, rest))
                    make("b", p, c, alive, b_alts)
                elif room and any_order:  # B(mask): each member not written yet
                    make("b", p, c, alive, [alt for j in may_come(n, p, any_order)
                                            for alt in member_alt(j, position_after(p, j, any_order)[0], c, alive)])
                if room:
                    nxt = name("o", p, bump(c), alive)
                    # O(p,c,s) itself when the count saturates: productive if it can close, or if B(p,c,s) is.
                    loops_back = bump(c) == c and (closes or name("b", p, c, alive) in made)
                    a_alts = [f"{extra} {nxt}"] if extra and (nxt in made or loops_back) else []
                    if name("b", p, c, alive) in made:
                        a_alts.append(name("b", p, c, alive))
                    make("a", p, c, alive, a_alts)
                o_alts = (["RB"] if closes else []) + \
                    ([f"COMMA {name('a', p, c, alive)}"] if name("a", p, c, alive) in made else [])
                make("o", p, c, alive, o_alts)
    alts = ["LB RB"] if key_set_met(req, 0, all_sets, any_order) and least == 0 else []
    if name("a", 0, 0, all_sets) in made:
        alts.append(f"LB {name('a', 0, 0, all_sets)}")
    return alts
