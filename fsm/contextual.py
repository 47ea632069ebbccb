"""Lark's contextual lexer, as lexer modes.

With Lark's default LALR lexer, a lexeme is lexed with only the terminals the parser state at its start
accepts (plus the %ignore'd ones): `intA` after a type keyword can be `int` `A` where the lexer over all
terminals sees a single NAME, and a keyword can be an identifier where no keyword fits. The lexer over all
terminals (mode 0) gives the same lexemes in most parser states; this module finds the states whose
terminal set lexes some text differently, so that only those get a lexer mode of their own.

Each parser state's lexer is compared with the full one on one automaton (_augmented_dfa): every terminal's
lexeme followed at once, none cut, with the terminals that matched a proper prefix of it. What any subset's
Lark lexer (lark_scan.py: the first terminal in Lark's order wins, the ones after a match are cut) does
at a state can be read off it, so one automaton serves all parser states. A state's lexer differs where,
on some text, it ends the lexeme with another terminal or at another length than the full lexer does.
A terminal that matches only before some next bytes (a lookahead past the lexeme) is counted as matched
on the transitions by those bytes, and as matching at a state for those columns (byte or end of text).
"""

from __future__ import annotations

import dataclasses
from typing import Optional

import numpy as np

from .lark_scan import ScanRules, live_states, scan_rules
from .lexer import DEFAULT_MAX_LEXER_STATES, TerminalSpec, _add_terminal, _ByteNFA, _time_limit
from .limits import check_limits, union_of_successors


def _augmented_dfa(terminals: list[TerminalSpec], ids: list[int], rules: ScanRules, max_states: int,
                   deadline: Optional[float]):
    """Every terminal's lexeme followed at once, none cut, plus which terminals matched a proper prefix of it:
    what any one Lark lexer over a subset of the terminals does can be read off these states (its branches
    are the subset's, cut after the first one that matched before). Bit r of a mask is the terminal of rank r
    in Lark's order. Per state: successor states, each with the terminals matching before its bytes; the
    terminal sets matching here, one per distinct next byte or end of text; those still in progress; and
    those that matched a proper prefix."""
    nfa = _ByteNFA()
    owner: list[int] = []
    starts = []
    for i in ids:
        starts.append(_add_terminal(nfa, i, terminals[i], terminals[i].regex))
        owner.extend([1 << rules.rank[i]] * (len(nfa.trans) - len(owner)))
    live = live_states(nfa)
    start = (frozenset(starts), 0)
    index = {start: 0}
    order = [start]
    succs: list[list[tuple[int, int]]] = []
    accepts: list[tuple[int, ...]] = []
    alive: list[int] = []
    before: list[int] = []
    i = 0
    while i < len(order):
        check_limits(len(order), i, max_states, deadline, "the contextual lexer's analysis")
        members, matched_before = order[i]
        i += 1
        acc = al = 0
        conds = []  # (owner, next-byte mask, undecided first bytes) of the conditional matches
        for s in members:
            al |= owner[s]
            if nfa.accept[s] >= 0:
                if nfa.cond[s] is None:
                    acc |= owner[s]
                else:
                    conds.append((owner[s], nfa.cond[s], nfa.undecided[s]))

        def acc_before(c: int) -> list[int]:
            """What matches before byte c: one mask, or, where the character after c decides a match
            (lark_scan.py's tentative matches), each way it can go."""
            held = acc | sum({o for o, m, _ in conds if m >> c & 1})
            open_ = sorted({o for o, m, u in conds if u >> c & 1 and not m >> c & 1})
            return [held | sum(o for j, o in enumerate(open_) if pick >> j & 1) for pick in range(1 << len(open_))]

        edges = [e for s in members for e in nfa.trans[s]]
        out: set[tuple[int, int]] = set()
        if edges:
            points = {lo for lo, _, _ in edges} | {hi + 1 for _, hi, _ in edges}
            if conds:
                points |= set(range(257))
            points = sorted(points)
            for a, b in zip(points, points[1:]):
                targets = frozenset(t for lo, hi, t in edges if lo <= a <= hi and live[t])
                if not targets:
                    continue
                for acc_a in acc_before(a):
                    key = (targets, matched_before | acc_a)
                    j = index.get(key)
                    if j is None:
                        j = index[key] = len(order)
                        order.append(key)
                    out.add((j, acc_a))
        succs.append(sorted(out))
        accepts.append(tuple({x for c in range(257) for x in acc_before(c)}) if conds else (acc,))
        alive.append(al)
        before.append(matched_before)
    return succs, accepts, alive, before


class _Lexer:
    """One Lark lexer (a set of terminals) read off the augmented DFA's states."""

    def __init__(self, members: set, rules: ScanRules):
        self.members = sum(1 << rules.rank[i] for i in members)
        self.scanned = sum(1 << rules.rank[i] for i in rules.scanned(members))
        self.retype = {rules.rank[r]: sum(1 << rules.rank[z] for z in zs) for r, zs in rules.retypes(members).items()}

    def _uncut(self, before: int) -> int:
        first = before & self.scanned  # its first matched branch cuts the ones after it
        return -1 if not first else ((first & -first) << 1) - 1

    def alive(self, alive: int, before: int) -> bool:
        return bool(alive & self.scanned & self._uncut(before))

    def winner(self, accept: int, before: int) -> int:
        """The rank of the terminal the lexeme is if it ends here, or -1."""
        acc = accept & self.scanned & self._uncut(before)
        if not acc:
            return -1
        y = (acc & -acc).bit_length() - 1
        spelled = self.retype.get(y, 0) & accept
        return (spelled & -spelled).bit_length() - 1 if spelled else y


def differing_contexts(terminals: list[TerminalSpec], contexts: list[frozenset], rules: ScanRules,
                       max_states: int, deadline: Optional[float]) -> list[bool]:
    """For each context (a set of terminal ids: what a parser state accepts, with the ignored terminals),
    whether Lark's lexer over only its terminals can lex some text otherwise than the lexer over all."""
    ids = [i for i, t in enumerate(terminals) if t.regex is not None]
    if not contexts:
        return []
    succs, accepts, alive, before = _augmented_dfa(terminals, ids, rules, max_states, deadline)
    n = len(succs)
    full = _Lexer(set(ids), rules)
    full_alive = [full.alive(alive[a], before[a]) for a in range(n)]
    full_winner = [[full.winner(acc, before[a]) for acc in accepts[a]] for a in range(n)]
    # The terminals the full lexer can still make of a lexeme from each state on.
    produces = union_of_successors([sorted({b for b, _ in out}) for out in succs],
                                   [sum({1 << w for w in ws if w >= 0}) for ws in full_winner], through=full_alive)
    out = []
    for ctx in contexts:
        lex = _Lexer(set(ctx), rules)
        out.append(_differs(lex, full, succs, accepts, alive, before, full_alive, full_winner, produces))
    return out


def _differs(lex: _Lexer, full: _Lexer, succs, accepts, alive, before, full_alive, full_winner, produces) -> bool:
    """Walk the states the context's lexer reaches; at each, compare its lexeme with the full lexer's."""
    seen = {0}
    work = [0]
    while work:
        a = work.pop()
        for acc, wf in zip(accepts[a], full_winner[a]):  # per next byte, where a lookahead decides
            w = lex.winner(acc, before[a])
            if (w >= 0 and wf != w) or (wf >= 0 and lex.members >> wf & 1 and w != wf):
                return True
        for b, acc in succs[a]:
            w = lex.winner(acc, before[a])  # where the lexeme ends if this one stops before the byte
            on = lex.alive(alive[b], before[b])
            if on and not full_alive[b]:
                return True  # the full lexer ends the lexeme (or fails) where this one goes on
            if full_alive[b] and not on and (w >= 0 or produces[b] & lex.members):
                return True  # this one ends it (or fails) where the full lexer goes on
            if on and b not in seen:
                seen.add(b)
                work.append(b)
    return False


def contextual_plan(terminals: list[TerminalSpec], action: np.ndarray, always: set[int],
                    dynamic_after: set[int], max_states: int = DEFAULT_MAX_LEXER_STATES,
                    deadline: Optional[float] = None) -> Optional[tuple]:
    """Lexer modes for Lark's contextual lexer, or None when the full lexer already lexes every parser
    state's text as Lark would. Returns (terminals with their modes, restart mode per terminal (-1 the
    lexeme's own mode, -2 the parser state decides), lexer mode per LR state).

    Raises LexerTooLarge past max_states or the deadline (a time.monotonic() value), as build_lexer does.
    `action` is the LR action table (columns: terminals, then $END); `always` the terminals every context
    lexes (ignored ones, those a directive handles); `dynamic_after` terminals after which more terminals
    may be fed than the LR table shows (a directive's NEWLINE, INDENT, ...), so the parser state decides."""
    n_t = len(terminals)
    lexable = {i for i, t in enumerate(terminals) if t.regex is not None}
    contexts: list[frozenset] = []
    context_of_state = np.empty(action.shape[0], dtype=np.int64)
    seen: dict[frozenset, int] = {}
    for p in range(action.shape[0]):
        ctx = frozenset((set(np.nonzero(action[p, :n_t] != -1)[0].tolist()) | always) & lexable)
        k = seen.get(ctx)
        if k is None:
            k = seen[ctx] = len(contexts)
            contexts.append(ctx)
        context_of_state[p] = k
    with _time_limit(deadline):  # (interegular's own determinization, too: lexer.build_lexer's guard)
        differs = differing_contexts(terminals, contexts, scan_rules(terminals), max_states, deadline)
    if not any(differs):
        return None
    # Mode 0 is the full lexer (contexts that lex like it); each differing context gets the next mode.
    mode_of_context = np.zeros(len(contexts), dtype=np.int32)
    n_modes = 1
    for k, d in enumerate(differs):
        if d:
            mode_of_context[k] = n_modes
            n_modes += 1
    modes_of_term: list[list[int]] = [[0] for _ in range(n_t)]
    for k, ctx in enumerate(contexts):
        if differs[k]:
            for i in ctx:
                modes_of_term[i].append(int(mode_of_context[k]))
    out = [t if t.regex is None else dataclasses.replace(t, modes=tuple(modes_of_term[i]))
           for i, t in enumerate(terminals)]
    state_mode = mode_of_context[context_of_state].astype(np.int32)
    restart = np.full(n_t, -1, dtype=np.int32)
    for i, t in enumerate(terminals):
        if t.ignored or t.regex is None:
            continue  # the parser state does not change: the lexeme's own mode
        targets = action[:, i][action[:, i] >= 0]
        after = set(state_mode[targets].tolist())
        restart[i] = -2 if i in dynamic_after or len(after) != 1 else after.pop()
    return out, restart, state_mode
