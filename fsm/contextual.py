"""Lark's contextual lexer, as lexer modes.

With Lark's default LALR lexer, a lexeme is lexed with only the terminals the parser state at its start
accepts (plus the %ignore'd ones): `intA` after a type keyword can be `int` `A` where the one lexer over
all terminals sees a single NAME, and a keyword can be an identifier where no keyword fits. The combined
lexer DFA (lexer.py) gives the same lexemes for most parser states; this module finds the states whose
terminal set lexes some text differently, so that only those get a lexer mode of their own.

A parser state's set S lexes like the combined lexer G when no text reachable within S's terminals
(1) ends a lexeme of an S terminal in a DFA state whose winner in G is not that terminal (a keyword S lacks,
winning over the NAME S has), or (2) ends one and G goes on with a byte after which no S terminal can
follow (G's longer lexeme would be a terminal S does not accept). Both are read off the subset
construction of G before minimization, for all sets at once (one bit per set).
"""

from __future__ import annotations

from typing import Optional

import numpy as np

from .lexer import TerminalSpec, _add_terminal, _ByteNFA


def lexer_rank(terminals: list[TerminalSpec]):
    """The order in which terminals win a lexeme both match (lexer.py's rule): priority, string literals
    over regexes, order of definition."""
    return lambda i: (-terminals[i].priority, 0 if terminals[i].is_literal else 1, i)


def _combined_subset_dfa(terminals: list[TerminalSpec], ids: list[int], deadline_check=None):
    """The combined lexer's DFA before minimization: per state its successor states, the terminals that
    accept there and the terminals some continuation can still complete (bit masks over terminal ids)."""
    nfa = _ByteNFA()
    owner: list[int] = []
    starts = []
    for i in ids:
        starts.append(_add_terminal(nfa, i, terminals[i], terminals[i].regex))
        owner.extend([i] * (len(nfa.trans) - len(owner)))
    # NFA states from which an accepting one can be reached (interegular's automata may keep dead states)
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
    start = frozenset(starts)
    index = {start: 0}
    order = [start]
    succs: list[list[int]] = []
    accepts: list[int] = []
    alive: list[int] = []
    i = 0
    while i < len(order):
        if deadline_check is not None and i % 256 == 0:
            deadline_check(len(order))
        members = order[i]
        i += 1
        edges = [e for s in members for e in nfa.trans[s]]
        out: set[int] = set()
        if edges:
            points = sorted({lo for lo, _, _ in edges} | {hi + 1 for _, hi, _ in edges})
            for a, b in zip(points, points[1:]):
                targets = frozenset(t for lo, hi, t in edges if lo <= a <= hi and live[t])
                if not targets:
                    continue
                j = index.get(targets)
                if j is None:
                    j = index[targets] = len(order)
                    order.append(targets)
                out.add(j)
        succs.append(sorted(out))
        acc = 0
        for s in members:
            if nfa.accept[s] >= 0:
                acc |= 1 << nfa.accept[s]
        accepts.append(acc)
        al = 0
        for s in members:
            if live[s]:
                al |= 1 << owner[s]
        alive.append(al)
    return succs, accepts, alive


def _bits(matrix: np.ndarray) -> list[int]:
    """Each row of a boolean matrix as an int whose bit j is column j."""
    if matrix.shape[1] == 0:
        return [0] * matrix.shape[0]
    packed = np.packbits(matrix, axis=1, bitorder="little")
    return [int.from_bytes(row.tobytes(), "little") for row in packed]


def differing_contexts(terminals: list[TerminalSpec], contexts: list[frozenset], deadline_check=None) -> list[bool]:
    """For each context (a set of terminal ids: what a parser state accepts, with the ignored terminals),
    whether lexing with only its terminals can give other lexemes than the combined lexer."""
    ids = [i for i, t in enumerate(terminals) if t.regex is not None]
    if not contexts:
        return []
    succs, accepts, alive = _combined_subset_dfa(terminals, ids, deadline_check)
    rank = lexer_rank(terminals)
    n_t, n_s, n_g = len(terminals), len(contexts), len(succs)
    member = np.zeros((n_s, n_t), dtype=bool)
    for k, ctx in enumerate(contexts):
        member[k, list(ctx)] = True

    def as_matrix(masks: list[int]) -> np.ndarray:
        m = np.zeros((n_g, n_t), dtype=bool)
        for g, mask in enumerate(masks):
            while mask:
                low = mask & -mask
                m[g, low.bit_length() - 1] = True
                mask ^= low
        return m

    alive_m, accept_m = as_matrix(alive), as_matrix(accepts)
    as_f = member.T.astype(np.float32)
    alive_in = (alive_m.astype(np.float32) @ as_f) > 0     # (g, context): an S terminal can still follow
    accept_in = (accept_m.astype(np.float32) @ as_f) > 0   # an S terminal accepts here
    winner = np.asarray([min((j for j in range(n_t) if acc >> j & 1), key=rank) if acc else -1 for acc in accepts])
    winner_in = np.where(winner[:, None] >= 0, member[:, np.maximum(winner, 0)].T, False)
    bad = accept_in & ~winner_in                         # (1): G's winner is a terminal S lacks
    for g in range(n_g):                                 # (2): G goes on where S's lexeme must end
        for h in succs[g]:
            bad[g] |= accept_in[g] & ~alive_in[h]
    alive_bits, bad_bits = _bits(alive_in), _bits(bad)
    # Which contexts reach each DFA state with one of their terminals alive all the way.
    reach = [0] * n_g
    reach[0] = (1 << n_s) - 1
    work = [0]
    while work:
        g = work.pop()
        for h in succs[g]:
            add = reach[g] & alive_bits[h] & ~reach[h]
            if add:
                reach[h] |= add
                work.append(h)
    differs = 0
    for g in range(n_g):
        differs |= reach[g] & bad_bits[g]
    return [bool(differs >> k & 1) for k in range(n_s)]


def contextual_plan(terminals: list[TerminalSpec], action: np.ndarray, always: set[int],
                    dynamic_after: set[int], deadline_check=None) -> Optional[tuple]:
    """Lexer modes for Lark's contextual lexer, or None when the combined lexer already lexes every parser
    state's text as Lark would. Returns (terminals with their modes, restart mode per terminal (-1 the
    lexeme's own mode, -2 the parser state decides), lexer mode per LR state).

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
    differs = differing_contexts(terminals, contexts, deadline_check)
    if not any(differs):
        return None
    # Mode 0 is the combined lexer (contexts that lex like it); each differing context gets the next mode.
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
    out = [t if t.regex is None else _with_modes(t, tuple(modes_of_term[i])) for i, t in enumerate(terminals)]
    state_mode = mode_of_context[context_of_state].astype(np.int32)
    restart = np.full(n_t, -1, dtype=np.int32)
    for i, t in enumerate(terminals):
        if t.ignored or t.regex is None:
            continue  # the parser state does not change: the lexeme's own mode
        targets = action[:, i][action[:, i] >= 0]
        after = set(state_mode[targets].tolist())
        restart[i] = -2 if i in dynamic_after or len(after) != 1 else after.pop()
    return out, restart, state_mode


def _with_modes(t: TerminalSpec, modes: tuple) -> TerminalSpec:
    import dataclasses

    return dataclasses.replace(t, modes=modes)
