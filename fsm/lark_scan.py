"""Lark's scanner, as a byte DFA.

Lark lexes with one Python regex per lexer, the alternation of its terminals in a fixed order (priority,
then the longest possible match, then the pattern's length, then the name), so the first terminal that
matches wins, not the longest match: with `CONST.2: "pi" | "e"` and NAME, `pie` is `pi` `e`. A string
terminal that a regex terminal of the same priority matches in full (a keyword and NAME) is left out of
the alternation and given back as the type of the regex's lexeme when the lexeme is that string.

The DFA below follows that rule. A state holds the alternation's live branches in order; when a branch
matches, the branches after it are cut (the regex engine would never try them once it has a match). The
state's winner is its first matching branch, retyped to an embedded string it spells. The engine's own
rule stays: a lexeme ends when the next byte cannot extend it; where the longest candidate dies, the
runtime falls back to the last complete lexeme it passed (`1e` as INT `1`, then `e`), as re backtracks.

A branch whose match depends on the next byte (a lookahead past the lexeme: /[?](?![a-z])/) matches only
before the bytes its condition allows: it cuts the branches after it on those bytes only, so the cut is
made per transition, and the state's winner is a row over the next byte (and the end of the text).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .limits import check_limits

DEAD = -1


@dataclass(frozen=True)
class LarkPattern:
    """What Lark's scanner knows of a terminal besides its regex."""

    sort_key: tuple          # Lark's order: (-priority, -max width, -len(pattern text), name)
    string: Optional[str]    # the text of a string terminal; None for a regex terminal
    flags: frozenset


@dataclass
class ScanRules:
    """Lark's order and keyword embedding over a grammar's terminals (ids as in the terminal list)."""

    rank: dict               # terminal id -> its position in Lark's order
    spells: dict             # regex terminal -> string terminals of its priority it matches in full
    embeds: dict             # ... of those, the ones left out of the alternation (flags allow it)

    def scanned(self, members) -> list[int]:
        """The alternation of a lexer over `members`, in order: embedded strings left out."""
        embedded = {z for r in members for z in self.embeds.get(r, ()) if z in members}
        return sorted((i for i in members if i not in embedded), key=self.rank.__getitem__)

    def retypes(self, members) -> dict:
        """regex terminal -> the strings (in order) its lexeme is retyped to, within `members`."""
        out = {}
        for r in members:
            zs = [z for z in self.spells.get(r, ()) if z in members]
            if zs:
                out[r] = sorted(zs, key=self.rank.__getitem__)
        return out


def scan_rules(terminals) -> ScanRules:
    """terminals: TerminalSpecs with `lark` set (a LarkPattern) wherever the lexer lexes them."""
    ids = [i for i, t in enumerate(terminals) if t.regex is not None]
    rank = {i: r for r, i in enumerate(sorted(ids, key=lambda i: terminals[i].lark.sort_key))}
    spells: dict = {}
    embeds: dict = {}
    for r in ids:
        pr = terminals[r].lark
        if pr.string is not None:
            continue
        compiled = re.compile(terminals[r].regex)
        for z in ids:
            pz = terminals[z].lark
            if pz.string is None or terminals[z].priority != terminals[r].priority:
                continue
            m = compiled.match(pz.string)
            if m is not None and m.group(0) == pz.string:
                spells.setdefault(r, []).append(z)
                if pz.flags <= pr.flags:
                    embeds.setdefault(r, []).append(z)
    return ScanRules(rank, spells, embeds)


def live_states(nfa) -> list[bool]:
    """NFA states from which an accepting state can be reached."""
    preds: list[list[int]] = [[] for _ in nfa.trans]
    for s, edges in enumerate(nfa.trans):
        for _, _, t in edges:
            preds[t].append(s)
    live = [a >= 0 for a in nfa.accept]
    stack = [s for s, ok in enumerate(live) if ok]
    while stack:
        for p in preds[stack.pop()]:
            if not live[p]:
                live[p] = True
                stack.append(p)
    return live


def _step(nfa, live, states: frozenset, lo: int) -> frozenset:
    return frozenset(t for s in states for a, b, t in nfa.trans[s] if a <= lo <= b and live[t])


def _accepts(nfa, states) -> bool:
    """It matches whatever follows."""
    return any(nfa.accept[s] >= 0 and nfa.cond[s] is None for s in states)


def _cond_mask(nfa, states) -> int:
    """The next bytes (bit 256: the end) before which it matches, for a branch that matches conditionally
    (0 if it does not match at all; only asked of branches that do not match unconditionally)."""
    m = 0
    for s in states:
        if nfa.accept[s] >= 0 and nfa.cond[s] is not None:
            m |= nfa.cond[s]
    return m


def lark_determinize(nfa, starts: dict, rules: ScanRules, max_states: int,
                     deadline: Optional[float]) -> tuple[np.ndarray, np.ndarray, list]:
    """The DFA of one Lark lexer: `starts` maps each of its terminals to its NFA start state. Returns dense
    transitions, each state's winner (-1: none), like lexer._determinize, and each state's winner row over
    the next byte (a 257-tuple, column 256 the end of the text) where it depends on it, else None."""
    live = live_states(nfa)
    members = set(starts)
    order = rules.scanned(members)
    retype = rules.retypes(members)
    shadows = sorted({z for zs in retype.values() for z in zs}, key=rules.rank.__getitem__)
    start = (tuple((i, frozenset([starts[i]])) for i in order), tuple((z, frozenset([starts[z]])) for z in shadows))
    index = {start: 0}
    states = [start]
    rows: list[np.ndarray] = []
    winners: list[int] = []
    cond_rows: list = []
    k = 0
    while k < len(states):
        check_limits(len(states), k, max_states, deadline)
        threads, shadow = states[k]
        k += 1
        # branches matching before some next bytes only: they cut the ones after them on those bytes
        conds = [_cond_mask(nfa, ss) for _, ss in threads]
        # (the shadows' edges split the byte ranges too: a keyword's letters inside NAME's range)
        edges = [e for _, ss in threads + shadow for s in ss for e in nfa.trans[s]]
        row = np.full(256, DEAD, dtype=np.int32)
        if edges:
            points = {lo for lo, _, _ in edges} | {hi + 1 for _, hi, _ in edges}
            if any(conds):
                points |= {c for c in range(1, 256) for m in conds if (m >> c & 1) != (m >> (c - 1) & 1)}
                points |= {0, 256}
            points = sorted(points)
            for a, b in zip(points, points[1:]):
                nxt = []
                for (term, ss), cond in zip(threads, conds):
                    moved = _step(nfa, live, ss, a)
                    if moved:
                        nxt.append((term, moved))
                        if _accepts(nfa, moved):
                            break  # the branches after a match are never tried
                    if cond >> a & 1:
                        break  # it matched before byte a: the same
                if not nxt:
                    continue
                nshadow = tuple((z, m) for z, ss in shadow if (m := _step(nfa, live, ss, a)))
                key = (tuple(nxt), nshadow)
                j = index.get(key)
                if j is None:
                    j = index[key] = len(states)
                    states.append(key)
                row[a:b] = j
        rows.append(row)
        w, by_byte = _winner(nfa, threads, conds, shadow, retype) if k > 1 else (-1, None)
        winners.append(w)
        cond_rows.append(by_byte)
    return np.stack(rows), np.asarray(winners, dtype=np.int32), cond_rows


def _winner(nfa, threads, conds, shadow, retype) -> tuple:
    """(the winner, None) when it does not depend on the next byte, else (-1, the winner per next byte)."""
    spelled = {z for z, zs in shadow if _accepts(nfa, zs)}

    def retyped(term):
        for z in retype.get(term, ()):
            if z in spelled:
                return z
        return term

    pending = []  # conditional branches before the first unconditional one: (term, mask)
    for (term, ss), cond in zip(threads, conds):
        if _accepts(nfa, ss):
            if not pending:
                return retyped(term), None
            fallback = retyped(term)
            break
        if cond:
            pending.append((retyped(term), cond))
    else:
        if not pending:
            return -1, None
        fallback = -1
    by_byte = tuple(next((t for t, m in pending if m >> c & 1), fallback) for c in range(257))
    if len(set(by_byte)) == 1:
        return by_byte[0], None
    return -1, by_byte
