"""The rules of an object's members: listed properties in schema order, other keys anywhere between,
the member count within [least, most], and one of the key sets satisfied (a small state machine over the
members, written as grammar rules)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Optional

if TYPE_CHECKING:
    from .translator import Translator


def object_rules(tr: Translator, base: str, members: list[str], req: list[frozenset], banned: list[frozenset],
                 n_sets: int, extra: Optional[str], least: int, most: Optional[int], ptr: str) -> list[str]:
    """Members in schema order, other keys anywhere between, the member count kept in [least, most], and
    the members of one of `n_sets` key sets present and absent as the set says (req[i], banned[i]: the
    sets that need member i, that ban it).

    O(i,c,s): after a member, c members so far (at most `top`, saturating at `least` without `most`), the
    last listed property written having index i-1, s the key sets no written or skipped member ruled out.
    A(i,c,s): the next member (after a comma or the brace). B(i,c,s): a listed property j >= i. Only
    productive rules are made (an empty choice would let a model write a prefix it cannot complete)."""
    n = len(members)
    top = most if most is not None else least
    bump = (lambda c: c + 1) if most is not None else (lambda c: min(c + 1, least))  # noqa: E731
    all_sets = frozenset(range(n_sets))
    alive_sets = [frozenset(j for j in range(n_sets) if bits >> j & 1) for bits in range(1, 1 << n_sets)]

    def name(kind: str, i: int, c: int, alive: frozenset) -> str:
        tag = "_s" + "".join(map(str, sorted(alive))) if n_sets > 1 else ""
        return f"{base}_{kind}{i}" + (f"_{c}" if top else "") + tag

    def satisfied(i: int, alive: frozenset) -> bool:  # a set alive needs no member from i on
        return any(all(j not in req[t] for t in range(i, n)) for j in alive)

    made: set[str] = set()

    def make(kind: str, i: int, c: int, alive: frozenset, alts: list[str]) -> None:
        if alts:
            tr.rule(name(kind, i, c, alive), alts, ptr)
            made.add(name(kind, i, c, alive))

    for i in range(n, -1, -1):
        for c in range(top, -1, -1):
            for alive in alive_sets:
                room = most is None or c < most
                closes = satisfied(i, alive) and c >= least
                if room and i < n:
                    kept = alive - banned[i]  # the sets still possible with member i
                    nxt = name("o", i + 1, bump(c), kept) if kept else None
                    b_alts = [f"{members[i]} {nxt}"] if nxt in made else []
                    rest = alive - req[i]  # the sets still possible without member i
                    if rest and i + 1 < n and name("b", i + 1, c, rest) in made:
                        b_alts.append(name("b", i + 1, c, rest))
                    make("b", i, c, alive, b_alts)
                if room:
                    nxt = name("o", i, bump(c), alive)
                    # O(i,c,s) itself when the count saturates: productive if it can close, or if B(i,c,s) is.
                    loops_back = bump(c) == c and (closes or name("b", i, c, alive) in made)
                    a_alts = [f"{extra} {nxt}"] if extra and (nxt in made or loops_back) else []
                    if name("b", i, c, alive) in made:
                        a_alts.append(name("b", i, c, alive))
                    make("a", i, c, alive, a_alts)
                o_alts = (["RB"] if closes else []) + \
                    ([f"COMMA {name('a', i, c, alive)}"] if name("a", i, c, alive) in made else [])
                make("o", i, c, alive, o_alts)
    alts = ["LB RB"] if satisfied(0, all_sets) and least == 0 else []
    if name("a", 0, 0, all_sets) in made:
        alts.append(f"LB {name('a', 0, 0, all_sets)}")
    return alts
