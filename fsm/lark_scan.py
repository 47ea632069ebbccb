r"""Lark's scanner, as a byte DFA.

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

Where the next character decides but its first byte does not (`\b` with Unicode `\w`: U+00E9 and U+00D7
both begin with 0xC3), the branch matches tentatively before that byte (the row names it, so the runtime
keeps it as the lexeme to fall back to) and cuts nothing yet; its lookahead path follows the character's
bytes (lexer.py's LOOK_* states). When the character holds, the branches after it are cut then. When it
fails, the match before it is void: the state after the character says so (its `void`: the runtime's
fallback becomes the row's first choice before the character that the character did not fail, or none),
unless a terminal wins there whatever follows (the runtime then drops the fallback anyway). With no such
choice the runtime can only drop the fallback, which is exact only if no earlier complete lexeme can be
pending (checked per state; grammars where one can are refused, naming the terminal).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional

import numpy as np

from .limits import check_limits

DEAD = -1
NO_VOID = -1     # a state's void: nothing to undo
VOID_DROP = -2   # ... the fallback the runtime keeps is void, with nothing to fall back to instead
_LOOK_INSIDE, _LOOK_HOLDS, _LOOK_FAILS = 1, 2, 3  # lexer.LOOK_* (lexer imports this module)


class LookaheadUndecidable(Exception):
    """A terminal's lookahead that the next character decides, but that the runtime cannot undo when it fails."""

    def __init__(self, term: int, detail: str):
        super().__init__(detail)
        self.term = term
        self.detail = detail


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


def live_states(nfa, lookahead: bool = False) -> list[bool]:
    """NFA states from which an accepting state can be reached (lookahead: or the end of a lookahead path)."""
    preds: list[list[int]] = [[] for _ in nfa.trans]
    for s, edges in enumerate(nfa.trans):
        for _, _, t in edges:
            preds[t].append(s)
    live = [a >= 0 or (lookahead and k in (_LOOK_HOLDS, _LOOK_FAILS)) for a, k in zip(nfa.accept, nfa.look)]
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


def _cond_masks(nfa, states) -> tuple[int, int]:
    """For a branch that matches conditionally: the next bytes (bit 256: the end) before which it matches,
    and the first bytes after which the rest of the character decides (0, 0 if it does not match at all;
    only asked of branches that do not match unconditionally)."""
    holds = undecided = 0
    for s in states:
        if nfa.accept[s] >= 0 and nfa.cond[s] is not None:
            holds |= nfa.cond[s]
            undecided |= nfa.undecided[s]
    return holds, undecided


def lark_determinize(nfa, starts: dict, rules: ScanRules, max_states: int,
                     deadline: Optional[float]) -> tuple[np.ndarray, np.ndarray, list, list]:
    """The DFA of one Lark lexer: `starts` maps each of its terminals to its NFA start state. Returns dense
    transitions, each state's winner (-1: none), like lexer._determinize, each state's winner row over the
    next byte (a 257-tuple, column 256 the end of the text) where it depends on it, else None, and each
    state's void (NO_VOID, a terminal, VOID_DROP: see the module's docstring)."""
    live = live_states(nfa, lookahead=True)
    members = set(starts)
    order = rules.scanned(members)
    retype = rules.retypes(members)
    shadows = sorted({z for zs in retype.values() for z in zs}, key=rules.rank.__getitem__)
    # a state: its branches, the shadows, and while inside the character after a tentative match, the row's
    # choices before it (else None); after that character failed it, the state's void
    start = (tuple((i, frozenset([starts[i]])) for i in order), tuple((z, frozenset([starts[z]])) for z in shadows),
             None, NO_VOID)
    index = {start: 0}
    states = [start]
    rows: list[np.ndarray] = []
    winners: list[int] = []
    cond_rows: list = []
    voids: list[int] = []
    dropping: list = []        # (state, byte, terminal): tentative matches only in the row's choices
    dropped: set = set()       # (state, byte) into a state whose void is VOID_DROP
    k = 0
    while k < len(states):
        check_limits(len(states), k, max_states, deadline)
        threads, shadow, inside, void = states[k]
        k += 1
        # branches matching before some next bytes only: they cut the ones after them on those bytes
        conds = [_cond_masks(nfa, ss) for _, ss in threads]
        w, by_byte, open_bytes = _winner(nfa, threads, conds, shadow, retype) if k > 1 else (-1, None, {})
        # (the shadows' edges split the byte ranges too: a keyword's letters inside NAME's range)
        edges = [e for _, ss in threads + shadow for s in ss for e in nfa.trans[s]]
        row = np.full(256, DEAD, dtype=np.int32)
        if edges:
            points = {lo for lo, _, _ in edges} | {hi + 1 for _, hi, _ in edges}
            if any(h or u for h, u in conds):
                points |= {c for c in range(1, 256) for h, u in conds for m in (h, u)
                           if (m >> c & 1) != (m >> (c - 1) & 1)}
                points |= {0, 256}
            points = sorted(points)
            for a, b in zip(points, points[1:]):
                nxt, held, failed_ = _advance(nfa, live, threads, conds, a)
                nshadow = tuple((z, m) for z, ss in shadow if (m := _step(nfa, live, ss, a)))
                now_inside, now_void = None, NO_VOID
                if a in open_bytes:
                    now_inside = open_bytes[a]
                    if all(tentative for _, _, tentative in now_inside):
                        dropping.append((k - 1, a, now_inside[0][0]))
                elif inside is not None and not held | failed_:
                    if any(nfa.look[t] == _LOOK_INSIDE for _, ss in nxt for t in ss):
                        now_inside = inside  # the character goes on
                elif inside is not None and inside[0][0] in failed_ \
                        and not _wins_whatever_follows(nfa, nxt, nshadow, retype):
                    # the first choice is void: the first one the character did not fail, or none
                    now_void = next((shown for term, shown, tentative in inside if not tentative or term in held),
                                    VOID_DROP)
                    if now_void == VOID_DROP:
                        dropped.add((k - 1, a))
                if not nxt:
                    if now_void == NO_VOID:
                        continue
                key = (tuple(nxt), nshadow, now_inside, now_void)
                j = index.get(key)
                if j is None:
                    j = index[key] = len(states)
                    states.append(key)
                row[a:b] = j
        rows.append(row)
        winners.append(w)
        cond_rows.append(by_byte)
        voids.append(void)
    trans = np.stack(rows)
    winners = np.asarray(winners, dtype=np.int32)
    _check_drops(trans, winners, cond_rows, dropping, dropped)
    return trans, winners, cond_rows, voids


def _advance(nfa, live, threads, conds, a: int) -> tuple[list, set, set]:
    """The branches after byte a, in order, and the terminals whose tentative match the character that byte
    a ends held, and failed."""
    nxt = []
    held, failed = set(), set()
    for (term, ss), (holds, _) in zip(threads, conds):
        moved = _step(nfa, live, ss, a)
        kinds = {nfa.look[t] for t in moved}
        if _LOOK_HOLDS in kinds or _LOOK_FAILS in kinds:
            moved = frozenset(t for t in moved if nfa.look[t] not in (_LOOK_HOLDS, _LOOK_FAILS))
            (held if _LOOK_HOLDS in kinds else failed).add(term)
        if moved:
            nxt.append((term, moved))
            if _accepts(nfa, moved):
                break  # the branches after a match are never tried
        if holds >> a & 1 or _LOOK_HOLDS in kinds:
            break  # it matched before byte a (or before the character a ends): the same
    return nxt, held, failed


def _wins_whatever_follows(nfa, threads, shadow, retype) -> bool:
    """Some terminal wins a state of these branches whatever byte follows (the runtime then drops any
    lexeme it was keeping to fall back to)."""
    w, by_byte, _ = _winner(nfa, threads, [_cond_masks(nfa, ss) for _, ss in threads], shadow, retype)
    return w >= 0 and by_byte is None


def _check_drops(trans: np.ndarray, winners: np.ndarray, cond_rows: list, dropping: list, dropped: set) -> None:
    """A tentative match with no next choice whose character can fail it into a state that drops the runtime's
    fallback: exact only if no earlier complete lexeme can be pending when the lexeme reaches its state."""
    pending = None
    for q, b, term in dropping:
        if not _reaches(trans, int(trans[q, b]), dropped):
            continue
        if pending is None:
            pending = _fallback_pending(trans, winners, cond_rows)
        if pending[q]:
            raise LookaheadUndecidable(term, "a look-ahead past the end of the lexeme that the character after it "
                                       "decides, where a shorter lexeme may already be complete: when the "
                                       "character fails the look-ahead, the byte-level lexer cannot go back to "
                                       "that one")


def _reaches(trans: np.ndarray, q: int, edges: set) -> bool:
    """Whether the rest of a character (up to three continuation bytes) can take state q over one of `edges`
    ((state, byte) pairs)."""
    frontier = {q} if q >= 0 else set()
    for _ in range(3):
        step = set()
        for p in frontier:
            for c in range(0x80, 0xC0):
                if (p, c) in edges:
                    return True
                t = int(trans[p, c])
                if t >= 0:
                    step.add(t)
        frontier = step
    return False


def _fallback_pending(trans: np.ndarray, winners: np.ndarray, cond_rows: list) -> np.ndarray:
    """Per state: whether the runtime can be holding a complete lexeme to fall back to there (gm_feed.h's
    track_fallback: one is kept from a byte before which the lexeme was complete, through states without a
    winner of their own; the start state holds none)."""
    n = trans.shape[0]
    complete_before = np.zeros((n, 256), dtype=bool)
    for q in range(n):
        complete_before[q] = np.asarray(cond_rows[q][:256]) >= 0 if cond_rows[q] is not None else winners[q] >= 0
    complete_before[0] = False
    taken = trans >= 0
    pending = np.zeros(n, dtype=bool)
    frontier = np.unique(trans[complete_before & taken])
    while frontier.size:
        frontier = frontier[(winners[frontier] < 0) & ~pending[frontier] & (frontier != 0)]
        pending[frontier] = True
        nxt = trans[frontier]
        frontier = np.unique(nxt[nxt >= 0])
    return pending


def _winner(nfa, threads, conds, shadow, retype) -> tuple:
    """(the winner, None, {}) when it does not depend on the next byte, else (-1, the winner per next byte,
    the bytes where that winner's match is tentative: byte -> the row's choices there, in order, each
    (terminal, the terminal it is shown as, whether tentative), the unconditional match last)."""
    spelled = {z for z, zs in shadow if _accepts(nfa, zs)}

    def retyped(term):
        for z in retype.get(term, ()):
            if z in spelled:
                return z
        return term

    pending = []  # conditional branches before the first unconditional one: (term, holds, undecided)
    last = ()     # the unconditional one, as a choice
    for (term, ss), (holds, undecided) in zip(threads, conds):
        if _accepts(nfa, ss):
            if not pending:
                return retyped(term), None, {}
            last = ((term, retyped(term), False),)
            break
        if holds or undecided:
            pending.append((term, holds, undecided))
    else:
        if not pending:
            return -1, None, {}
    by_byte = []
    open_bytes = {}
    for c in range(257):
        choices = tuple((t, retyped(t), bool(u >> c & 1)) for t, h, u in pending if (h | u) >> c & 1) + last
        by_byte.append(choices[0][1] if choices else -1)
        if choices and choices[0][2]:
            open_bytes[c] = choices
    by_byte = tuple(by_byte)
    if len(set(by_byte)) == 1 and not open_bytes:
        return by_byte[0], None, {}
    return -1, by_byte, open_bytes
