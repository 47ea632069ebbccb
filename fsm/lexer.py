"""Terminal regexes -> one combined, minimal byte-level lexer DFA.

Lexing rule (the same everywhere in grammask: validator, masks and matcher): maximal munch over all
terminals at once. A lexeme ends when the next byte cannot extend it; the terminal it produces is the
"winner" of its final DFA state: highest priority, then string literals over regexes (so keywords beat
identifiers of the same length), then the order of definition. There is no backtracking: a lexeme that
cannot be extended and is not a complete terminal is an error.
"""

from __future__ import annotations

import re
import signal
import threading
import time
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Optional

import numpy as np

from .limits import LexerTooLarge, check_limits, union_of_successors
from .lark_scan import LarkPattern, lark_determinize, scan_rules
from .python_regex import CharDFA, RegexUnsupported, from_interegular, intersect, regex_dfa
from .utf8 import utf8_sequences

DEAD = -1
ANY_TERMINAL = -1  # completable-set id meaning "no parser check needed"


class RegexError(ValueError):
    """A terminal's regex cannot be turned into a byte automaton."""

    def __init__(self, terminal: str, message: str):
        super().__init__(f"terminal {terminal}: {message}")
        self.terminal = terminal


@dataclass(frozen=True)
class TerminalSpec:
    name: str
    regex: Optional[str]  # Python `re` syntax, flags inline; None for a terminal the lexer never
                          # produces (%declare'd, e.g. INDENT, made from the context instead)
    priority: int = 0
    is_literal: bool = False
    ignored: bool = False
    also: tuple = ()  # what a lexeme must match as well (intersection): regexes, ("multipleOf", m, e)
    modes: tuple = (0,)       # lexer modes in which `regex` is lexed (mode 0 unless the grammar has modes)
    mode_regexes: tuple = ()  # (mode, regex) pairs: the terminal lexed with another regex in that mode
    fullmatch: bool = False   # lexemes: the strings the regex matches whole in any way (re.fullmatch), not
                              # only where re.match stops (Lark's meaning; lazy quantifiers, alternative order)
    # Lark's view of it (order, string, flags), for Lark's scanner rule: needed only while building the lexer,
    # so the table cache does not keep it and equality ignores it
    lark: Optional["LarkPattern"] = field(default=None, compare=False)


@dataclass
class LexerDFA:
    """Dense byte DFA. State 0 is the start state (no lexeme begun)."""

    trans: np.ndarray          # (n_states, 256) int32, DEAD where the byte cannot be taken
    winner: np.ndarray         # (n_states,) int32 terminal id, -1 if not accepting
    final: np.ndarray          # (n_states,) uint8: no byte can extend the lexeme
    cset: np.ndarray           # (n_states,) int32 completable-set id, ANY_TERMINAL if no check needed
    csets: list[tuple[int, ...]]  # completable sets: terminals some continuation can produce
    mode_start: np.ndarray = None  # (n_modes,) int32 each lexer mode's start state (mode 0: state 0)
    lex_mode: np.ndarray = None    # (n_states,) int32 the mode each state belongs to

    @property
    def n_states(self) -> int:
        return int(self.trans.shape[0])


class _ByteNFA:
    def __init__(self) -> None:
        self.trans: list[list[tuple[int, int, int]]] = []
        self.accept: list[int] = []

    def new_state(self, accept: int = -1) -> int:
        self.trans.append([])
        self.accept.append(accept)
        return len(self.trans) - 1


def _regex_dfa(name: str, regex: str, fullmatch: bool = False) -> CharDFA:
    """The terminal's lexemes as Lark's `re.match` finds them (fullmatch: the strings re.fullmatch accepts,
    for intersections)."""
    try:
        return _cached_regex_dfa(regex, fullmatch)
    except RegexUnsupported as exc:
        raise RegexError(name, f"{exc} in /{regex}/") from None
    except re.error as exc:
        raise RegexError(name, f"cannot parse /{regex}/: {exc}") from None


def _constraint_dfa(name: str, constraint: tuple) -> CharDFA:
    # interegular (with .multiples and .free_text) loads only when such a constraint is built
    from .free_text import FREE_TEXT, free_text_fsm
    from .multiples import checked_multiple_fsm

    kind, *args = constraint
    try:
        if kind == "multipleOf":
            return from_interegular(checked_multiple_fsm(*args))
        if kind == FREE_TEXT:
            return from_interegular(free_text_fsm(list(args[1:]), args[0]))
    except ValueError as exc:
        raise RegexError(name, str(exc)) from None
    raise RegexError(name, f"unknown constraint {kind!r}")


@lru_cache(maxsize=4096)
def _cached_regex_dfa(regex: str, fullmatch: bool) -> CharDFA:
    # Built once per regex (never changed after): the contextual analysis and each lexer mode that lexes
    # a terminal need the same automaton.
    return regex_dfa(regex, fullmatch=fullmatch)


@lru_cache(maxsize=65536)
def _utf8_sequences(lo: int, hi: int) -> tuple:
    return tuple(utf8_sequences(lo, hi))


def _add_terminal(nfa: _ByteNFA, term_id: int, spec: TerminalSpec, regex: str) -> int:
    dfa = _regex_dfa(spec.name, regex, fullmatch=spec.fullmatch)
    for other in spec.also:
        other_dfa = (_regex_dfa(spec.name, other, fullmatch=True) if isinstance(other, str)
                     else _constraint_dfa(spec.name, other))
        try:
            dfa = intersect(dfa, other_dfa)
        except RegexUnsupported as exc:
            raise RegexError(spec.name, str(exc)) from None
    if dfa.accept[0]:
        raise RegexError(spec.name, f"/{regex}/ matches the empty string")
    if dfa.is_empty():
        raise RegexError(spec.name, f"/{regex}/ and the regexes it is intersected with match nothing")
    state_ids = [nfa.new_state(term_id if acc else -1) for acc in dfa.accept]
    # Intermediate states inside one multi-byte character are shared by prefix, per (source, target).
    middle: dict[tuple, int] = {}
    for src, row in enumerate(dfa.edges):
        a = state_ids[src]
        for lo, hi, dst in row:
            b = state_ids[dst]
            for seq in _utf8_sequences(lo, hi):
                cur = a
                for i, (blo, bhi) in enumerate(seq):
                    if i == len(seq) - 1:
                        nxt = b
                    else:
                        key = (a, b, seq[: i + 1])
                        nxt = middle.get(key)
                        if nxt is None:
                            nxt = middle[key] = nfa.new_state()
                    if (blo, bhi, nxt) not in nfa.trans[cur]:
                        nfa.trans[cur].append((blo, bhi, nxt))
                    cur = nxt
    return state_ids[0]


def _determinize(nfa: _ByteNFA, starts: list[int], rank, max_states: int,
                 deadline: Optional[float]) -> tuple[np.ndarray, np.ndarray]:
    start = frozenset(starts)
    index = {start: 0}
    order = [start]
    rows: list[np.ndarray] = []
    winners: list[int] = []
    i = 0
    while i < len(order):
        check_limits(len(order), i, max_states, deadline)
        members = order[i]
        i += 1
        edges = [e for s in members for e in nfa.trans[s]]
        row = np.full(256, DEAD, dtype=np.int32)
        if edges:
            points = sorted({lo for lo, _, _ in edges} | {hi + 1 for _, hi, _ in edges})
            for a, b in zip(points, points[1:]):
                targets = frozenset(t for lo, hi, t in edges if lo <= a <= hi)
                if not targets:
                    continue
                j = index.get(targets)
                if j is None:
                    j = index[targets] = len(order)
                    order.append(targets)
                row[a:b] = j
        rows.append(row)
        accepting = {nfa.accept[s] for s in members if nfa.accept[s] >= 0}
        winners.append(min(accepting, key=rank) if accepting else -1)
    return np.stack(rows), np.asarray(winners, dtype=np.int32)


def _trim(trans: np.ndarray, winner: np.ndarray, starts) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Drop states from which no accepting state can be reached (the start states stay); also returns the
    old-to-new state map."""
    n = trans.shape[0]
    preds: list[set[int]] = [set() for _ in range(n)]
    for q in range(n):
        for t in set(trans[q][trans[q] >= 0].tolist()):
            preds[t].add(q)
    alive = winner >= 0
    stack = list(np.nonzero(alive)[0])
    while stack:
        t = stack.pop()
        for p in preds[t]:
            if not alive[p]:
                alive[p] = True
                stack.append(p)
    if not alive[0]:
        raise RegexError("<all>", "no terminal matches any string")
    alive[list(starts)] = True
    keep = np.nonzero(alive)[0]
    remap = np.full(n + 1, DEAD, dtype=np.int32)  # index -1 (DEAD) maps to DEAD
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    return remap[trans[keep]], winner[keep], remap


def _minimize(trans: np.ndarray, winner: np.ndarray,
              mode: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Moore partition refinement (states of different modes stay apart); the start state stays state 0.
    Also returns each old state's new number."""
    _, labels = np.unique(np.stack([winner, mode], axis=1), axis=0, return_inverse=True)
    labels = labels.reshape(-1)
    n_classes = labels.max() + 1
    while True:
        succ = np.where(trans >= 0, labels[np.maximum(trans, 0)], -1)
        sig = np.ascontiguousarray(np.concatenate([labels[:, None], succ], axis=1), dtype=np.int32)
        # rows as single opaque values: sorting those is much faster than np.unique(axis=0)
        _, new_labels = np.unique(sig.view(np.dtype((np.void, sig.shape[1] * 4))).ravel(), return_inverse=True)
        new_labels = new_labels.reshape(-1)
        if new_labels.max() + 1 == n_classes:
            break
        labels, n_classes = new_labels, new_labels.max() + 1
    # Renumber classes in order of first appearance so the start state's class is 0.
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    renum = np.empty_like(order)
    renum[order] = np.arange(len(order))
    labels = renum[labels]
    reps = first[order]
    new_trans = np.where(trans[reps] >= 0, labels[np.maximum(trans[reps], 0)], DEAD).astype(np.int32)
    return new_trans, winner[reps].astype(np.int32), labels


def _completable_sets(trans, winner, ignored: list[bool], starts):
    """Per state: the terminals that some continuation of the lexeme can still produce."""
    n = trans.shape[0]
    succs = [sorted(set(trans[q][trans[q] >= 0].tolist())) for q in range(n)]
    reach = union_of_successors(succs, [1 << int(winner[q]) if winner[q] >= 0 else 0 for q in range(n)])
    ignored_mask = sum(1 << i for i, ig in enumerate(ignored) if ig)
    csets: list[tuple[int, ...]] = []
    ids: dict[int, int] = {}
    cset = np.empty(n, dtype=np.int32)
    for q in range(n):
        if q in starts or reach[q] & ignored_mask:
            cset[q] = ANY_TERMINAL
            continue
        r = reach[q]
        if r not in ids:
            ids[r] = len(csets)
            csets.append(tuple(i for i in range(r.bit_length()) if r >> i & 1))
        cset[q] = ids[r]
    return cset, csets


DEFAULT_MAX_LEXER_STATES = 100_000


def build_lexer(terminals: list[TerminalSpec], max_states: int = DEFAULT_MAX_LEXER_STATES,
                deadline: Optional[float] = None, lark_scanner: bool = False) -> LexerDFA:
    """Build the combined lexer DFA; terminal ids are positions in `terminals`. `deadline` is a
    time.monotonic() value past which the build stops with LexerTooLarge. lark_scanner: each mode's lexeme
    is the one Lark's scanner takes (lark_scan.py: first terminal in Lark's order, keywords embedded),
    rather than the longest one (the rule above)."""
    if not terminals:
        raise RegexError("<none>", "the grammar has no terminals")
    with _time_limit(deadline):
        return _build(terminals, max_states, deadline, lark_scanner)


@contextmanager
def _time_limit(deadline: Optional[float]):
    """Stop the build at `deadline`, inside a terminal's own automaton too (its determinization can explode,
    e.g. /[a-z]{1,60}x[a-z]{1,60}/). Needs SIGALRM, so it works in the main thread; elsewhere only the
    lexer's own loop checks the deadline."""
    usable = (deadline is not None and hasattr(signal, "setitimer")
              and threading.current_thread() is threading.main_thread())
    if not usable:
        yield
        return

    def expired(signum, frame):
        raise _Expired()  # a BaseException: library code that catches Exception cannot swallow it

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, max(deadline - time.monotonic(), 1e-3), 0.05)
    try:
        yield
    except _Expired:
        raise LexerTooLarge("building the lexer took too long (limit: build_timeout)") from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class _Expired(BaseException):
    pass


def _build(terminals: list[TerminalSpec], max_states: int, deadline: Optional[float],
           lark_scanner: bool = False) -> LexerDFA:
    # Each mode is a DFA of its own terminals; their state spaces are laid end to end (mode 0 first).
    by_mode: dict[int, list[tuple[int, str]]] = defaultdict(list)
    for i, spec in enumerate(terminals):
        if spec.regex is not None:
            for mode in spec.modes:
                by_mode[mode].append((i, spec.regex))
        for mode, regex in spec.mode_regexes:
            by_mode[mode].append((i, regex))
    n_modes = max(by_mode, default=0) + 1
    if any(not by_mode[m] for m in range(n_modes)):
        raise RegexError("<all>", "a lexer mode has no terminals")

    def rank(i: int):
        return (-terminals[i].priority, 0 if terminals[i].is_literal else 1, i)

    rules = scan_rules(terminals) if lark_scanner else None
    parts, offset, mode_start = [], 0, []
    for mode in range(n_modes):
        nfa = _ByteNFA()
        starts = [_add_terminal(nfa, i, terminals[i], regex) for i, regex in by_mode[mode]]
        if rules is not None:
            trans, winner = lark_determinize(nfa, dict(zip((i for i, _ in by_mode[mode]), starts)), rules,
                                             max_states - offset, deadline)
        else:
            trans, winner = _determinize(nfa, starts, rank, max_states - offset, deadline)
        parts.append((np.where(trans >= 0, trans + offset, DEAD), winner, np.full(len(winner), mode)))
        mode_start.append(offset)
        offset += len(winner)
    trans, winner, lex_mode = (np.concatenate(x) for x in zip(*parts))
    trans, winner, remap = _trim(trans, winner, mode_start)
    lex_mode = lex_mode[remap[:-1] >= 0]
    mode_start = remap[mode_start]
    trans, winner, labels = _minimize(trans, winner, lex_mode)
    mode_start = labels[mode_start].astype(np.int32)
    _, first = np.unique(labels, return_index=True)
    lex_mode = lex_mode[first].astype(np.int32)
    final = (trans < 0).all(axis=1).astype(np.uint8)
    cset, csets = _completable_sets(trans, winner, [t.ignored for t in terminals], set(mode_start.tolist()))
    return LexerDFA(trans=np.ascontiguousarray(trans), winner=winner, final=final, cset=cset, csets=csets,
                    mode_start=mode_start, lex_mode=lex_mode)


def never_produced(lexer: LexerDFA, terminals: list[TerminalSpec]) -> list[int]:
    """Terminals that win no accepting state: every string they match lexes as another terminal."""
    won = set(lexer.winner[lexer.winner >= 0].tolist())
    return [i for i, t in enumerate(terminals) if t.regex is not None and i not in won]
