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
from itertools import chain
from typing import Optional

import numpy as np

from .. import _core
from .limits import LexerTooLarge, too_long, too_many_states
from .fsm_product import intersect
from .lark_scan import NO_VOID, LarkPattern, LookaheadUndecidable, lark_determinize, scan_rules
from .python_regex import CharDFA, RegexUnsupported, from_interegular, regex_dfa
from .utf8 import complement_ranges, utf8_sequences

DEAD = -1
ANY_TERMINAL = -1  # completable-set id meaning "no parser check needed"


class RegexError(ValueError):
    """A terminal's regex cannot be turned into a byte automaton."""

    def __init__(self, terminal: str, message: str):
        super().__init__(f"terminal {terminal}: {message}")
        self.terminal = terminal
        self.detail = message


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
    # Conditional states (a lookahead past the lexeme, Lark grammars only): where the terminal a lexeme
    # ending there produces depends on the next byte. cond[q]: -1, or a row of cond_rows; cond_rows[k, b]:
    # the terminal when byte b follows (column 256: the text ends there), -1 none. winner is -1 and final 0
    # in such a state. Both None when no state is conditional.
    cond: np.ndarray = None        # (n_states,) int32
    cond_rows: np.ndarray = None   # (n_cond, 257) int32
    # Where the character after a conditional state's lexeme decides its look-ahead but the first byte does
    # not (lark_scan.py): void[q] says what entering q, after that character failed it, leaves of the
    # lexeme kept to fall back to: NO_VOID (unchanged), a terminal (the row's next choice), VOID_DROP (none).
    # None when no state voids one.
    void: np.ndarray = None        # (n_states,) int32

    @property
    def n_states(self) -> int:
        return int(self.trans.shape[0])

    def ends_as(self, term: int) -> np.ndarray:
        """(n_states,) bool: a lexeme ending in the state can be `term` (whatever follows, for a
        conditional state)."""
        out = self.winner == term
        if self.cond is not None:
            in_row = (self.cond_rows == term).any(axis=1)
            out |= (self.cond >= 0) & in_row[np.maximum(self.cond, 0)]
        return out

    def winner_before(self, q: int, b: int) -> int:
        """The terminal a lexeme ending in state q produces when byte b (256: the end of the text) follows."""
        if self.cond is not None and self.cond[q] >= 0:
            return int(self.cond_rows[self.cond[q], b])
        return int(self.winner[q])

    def produced(self, states=None) -> set:
        """The terminals some lexeme ends as (in `states`, a bool mask, when given)."""
        sel = np.ones(self.n_states, dtype=bool) if states is None else states
        won = set(self.winner[sel & (self.winner >= 0)].tolist())
        if self.cond is not None:
            rows = self.cond_rows[self.cond[sel & (self.cond >= 0)]]
            won |= set(rows[rows >= 0].tolist())
        return won


# A state of a lookahead path (see _Fragment.look): inside the character after a conditional match whose
# first byte does not decide the condition, and the two ends of that character.
LOOK_INSIDE, LOOK_HOLDS, LOOK_FAILS = 1, 2, 3


class _ByteNFA:
    """Byte-level NFA over several terminals' automata (fragments), each laid after the ones before it."""

    def __init__(self) -> None:
        self.accept: list[int] = []  # the terminal that matches in the state, or -1
        self.cond: list = []         # None, or for a conditional match: a 257-bit mask of the next bytes
                                     # (bit 256: the end of the text) before which it matches
        self.undecided: list = []    # per state: a 256-bit mask of the first bytes after which the condition
                                     # is still open (the rest of the character decides: lookahead paths)
        self.look: list = []         # per state: 0, or LOOK_* on a lookahead path
        self._parts: list[tuple[int, "_Fragment"]] = []  # (first state, fragment)
        self._trans: list[list[tuple[int, int, int]]] = []  # per state: (lo, hi, target), made when asked
        self._listed = 0  # parts whose edges _trans holds

    def add(self, fragment: "_Fragment", term_id: int) -> int:
        """Lay `fragment` after the states so far, its accepting states matching `term_id`; returns its start."""
        offset = len(self.accept)
        self.accept += [term_id if a else -1 for a in fragment.accepting]
        self.cond += fragment.cond
        self.undecided += fragment.undecided
        self.look += fragment.look
        self._parts.append((offset, fragment))
        return offset

    @property
    def trans(self) -> list[list[tuple[int, int, int]]]:
        """Per state, its edges (lo, hi, target), in the order they were made (read by Lark's scanner rule
        and the contextual analysis; the native construction reads flat_edges)."""
        while self._listed < len(self._parts):
            offset, fragment = self._parts[self._listed]
            self._trans += [[(lo, hi, offset + t) for lo, hi, t in row] for row in fragment.rows]
            self._listed += 1
        return self._trans

    def flat_edges(self) -> tuple[np.ndarray, ...]:
        """The edges as arrays for the native construction: per state offsets into (lo, hi, target)."""
        n = len(self.accept)
        begin = np.zeros(n + 1, dtype=np.int32)
        if not self._parts:
            empty = np.zeros(0, dtype=np.int32)
            return begin, empty, empty, empty
        np.cumsum(np.concatenate([f.edge_counts for _, f in self._parts]), out=begin[1:])
        lo = np.concatenate([f.lo for _, f in self._parts])
        hi = np.concatenate([f.hi for _, f in self._parts])
        dst = np.concatenate([f.dst + np.int32(offset) for offset, f in self._parts])
        return begin, lo, hi, dst

    def matches_before(self, s: int, b: int) -> bool:
        """Whether state s matches when byte b (256: the end of the text) follows."""
        return self.accept[s] >= 0 and (self.cond[s] is None or bool(self.cond[s] >> b & 1))


@dataclass(frozen=True, eq=False)
class _Fragment:
    """One terminal's byte automaton, states numbered from its start state 0: made from its regexes alone
    (see _terminal_fragment), so a terminal met again (the same regexes in another grammar) is laid into the
    NFA as made before."""

    accepting: tuple[bool, ...]  # per state: the terminal matches there (conditionally, where cond is set)
    cond: tuple                  # per state: None, or the conditional match's mask of next bytes
    # A condition on the next character that its first byte does not decide (\b with Unicode \w after a
    # letter: U+00E9 and U+00D7 both begin with 0xC3): per state, the mask of such first bytes, and from
    # the state, for each, a lookahead path over the character's bytes to a LOOK_HOLDS or LOOK_FAILS state
    # (no edges out). Only Lark's scanner reads them (lark_scan.py); the paths match nothing themselves.
    undecided: tuple             # per state: 0, or the mask of undecided first bytes
    look: tuple                  # per state: 0, or LOOK_INSIDE / LOOK_HOLDS / LOOK_FAILS
    rows: tuple[tuple[tuple[int, int, int], ...], ...]  # per state: its edges (lo, hi, target), in order
    edge_counts: np.ndarray      # the same edges as arrays (int32): per state, how many ...
    lo: np.ndarray               # ... and all of them, state after state
    hi: np.ndarray
    dst: np.ndarray


END_COLUMN = 256
ALL_COLUMNS = (1 << 257) - 1


def _lead_byte_intervals() -> list:
    """Per byte: the code points whose UTF-8 form starts with it (surrogates left out), or None."""
    out: list = [None] * 256
    for b in range(0x80):
        out[b] = ((b, b),)
    for b in range(0xC2, 0xE0):
        out[b] = (((b & 0x1F) << 6, ((b & 0x1F) << 6) | 0x3F),)
    for b in range(0xE0, 0xF0):
        lo = max((b & 0x0F) << 12, 0x800)
        hi = ((b & 0x0F) << 12) | 0xFFF
        out[b] = ((lo, 0xD7FF),) if b == 0xED else ((lo, hi),)
    for b in range(0xF0, 0xF5):
        lo = max((b & 0x07) << 18, 0x10000)
        out[b] = ((lo, min(((b & 0x07) << 18) | 0x3FFFF, 0x10FFFF)),)
    return out


_LEAD_INTERVALS = _lead_byte_intervals()


def _next_byte_mask(ranges, at_end: bool) -> tuple[int, dict]:
    """A condition on the next character (the code point ranges where it holds; whether at the end of the
    text) as one on the next byte: the mask of the first bytes whose characters all satisfy it, and for each
    first byte whose characters some do and some do not, the ranges of those that do."""
    from bisect import bisect_right
    mask = 1 << END_COLUMN if at_end else 0
    undecided: dict = {}
    for b, spans in enumerate(_LEAD_INTERVALS):
        if spans is None:
            continue  # no character starts with it: a text with it there is invalid either way
        (lo, hi), = spans
        holding = []
        i = max(bisect_right(ranges, (lo, -1)) - 1, 0)
        while i < len(ranges) and ranges[i][0] <= hi:
            r_lo, r_hi = ranges[i]
            if min(hi, r_hi) >= max(lo, r_lo):
                holding.append((max(lo, r_lo), min(hi, r_hi)))
            i += 1
        covered = sum(h - l + 1 for l, h in holding)
        if covered == hi - lo + 1:
            mask |= 1 << b
        elif covered:
            undecided[b] = holding
    return mask, undecided


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


_NAMELESS = "\0"  # the terminal name fragments are built under (their errors get the real one)


def _add_terminal(nfa: _ByteNFA, term_id: int, spec: TerminalSpec, regex: str) -> int:
    """Lay the terminal's byte automaton (lexing `regex`) into `nfa`; returns its start state."""
    args = (regex, spec.fullmatch, spec.also)
    try:
        hash(args)
        build = _cached_fragment
    except TypeError:  # (a constraint with an unhashable argument: built each time)
        build = _terminal_fragment
    try:
        fragment = build(*args)
    except RegexError as exc:
        if exc.terminal != _NAMELESS:
            raise
        raise RegexError(spec.name, exc.detail) from None
    return nfa.add(fragment, term_id)


@lru_cache(maxsize=4096)
def _cached_fragment(regex: str, fullmatch: bool, also: tuple) -> _Fragment:
    # A terminal's fragment depends on its regexes only: each JSON Schema's grammar repeats the same string,
    # number and whitespace terminals, and each lexer mode that lexes a terminal needs it again.
    return _terminal_fragment(regex, fullmatch, also)


def _terminal_fragment(regex: str, fullmatch: bool, also: tuple) -> _Fragment:
    """The byte automaton of the lexemes of `regex` (intersected with `also`): the character automaton's
    states (accepting, or conditionally so), then the states inside multi-byte characters; its edges each
    character range's UTF-8 byte sequences. Errors name the terminal _NAMELESS."""
    name = _NAMELESS
    dfa = _regex_dfa(name, regex, fullmatch=fullmatch)
    for other in also:
        other_dfa = (_regex_dfa(name, other, fullmatch=True) if isinstance(other, str)
                     else _constraint_dfa(name, other))
        try:
            dfa = intersect(dfa, other_dfa)
        except RegexUnsupported as exc:
            raise RegexError(name, str(exc)) from None
    if dfa.accept[0] or dfa.cond[0] is not None:
        raise RegexError(name, f"/{regex}/ matches the empty string")
    if dfa.is_empty():
        raise RegexError(name, f"/{regex}/ and the regexes it is intersected with match nothing")
    accepting: list[bool] = []
    conds: list = []
    open_conditions: dict = {}  # char state -> {first byte: the ranges of its characters the condition holds for}
    for a, (acc, cond) in enumerate(zip(dfa.accept, dfa.cond)):
        if cond is not None:
            mask, undecided = _next_byte_mask(*cond)
            accepting.append(bool(mask or undecided))
            conds.append(mask if mask or undecided else None)
            if undecided:
                open_conditions[a] = undecided
        else:
            accepting.append(bool(acc))
            conds.append(None)
    rows: list[list[tuple[int, int, int]]] = [[] for _ in accepting]
    seen: list[set] = [set() for _ in accepting]  # rows' edges, for the membership test
    look = [0] * len(accepting)
    middle: dict[tuple, int] = {}

    def new_state(kind: int) -> int:
        rows.append([])
        seen.append(set())
        accepting.append(False)
        conds.append(None)
        look.append(kind)
        return len(rows) - 1

    def lay(source: int, seq: tuple, target: int, inside: int) -> None:
        """Edges for one UTF-8 byte sequence from `source` to `target`; the states inside one multi-byte
        character are shared by prefix, per (source, target)."""
        cur, last = source, len(seq) - 1
        for i, (blo, bhi) in enumerate(seq):
            if i == last:
                nxt = target
            else:
                key = (source, target, seq[: i + 1])
                nxt = middle.get(key)
                if nxt is None:
                    nxt = middle[key] = new_state(inside)
            edge = (blo, bhi, nxt)
            if edge not in seen[cur]:
                seen[cur].add(edge)
                rows[cur].append(edge)
            cur = nxt

    for a, row in enumerate(dfa.edges):
        for lo, hi, b in row:
            if hi < 0x80:
                # one byte, the same range: a row's ranges are disjoint, and no byte sequence edge starts
                # below 0x80, so the edge is new (and needs no entry in `seen`)
                rows[a].append((lo, hi, b))
                continue
            for seq in _utf8_sequences(lo, hi):
                lay(a, seq, b, 0)
    undecided = [0] * len(rows)
    if open_conditions:
        holds, fails = new_state(LOOK_HOLDS), new_state(LOOK_FAILS)
        for a, by_byte in open_conditions.items():
            for b, holding in by_byte.items():
                undecided[a] |= 1 << b
                for ranges, end in ((holding, holds), (complement_ranges(holding, *_LEAD_INTERVALS[b][0]), fails)):
                    for lo, hi in ranges:
                        for seq in _utf8_sequences(lo, hi):
                            lay(a, seq, end, LOOK_INSIDE)
        undecided += [0] * (len(rows) - len(undecided))
    flat = np.fromiter(chain.from_iterable(chain.from_iterable(rows)), dtype=np.int32,
                       count=3 * sum(map(len, rows))).reshape(-1, 3)
    arrays = [np.ascontiguousarray(flat[:, k]) for k in range(3)]
    for a in arrays:
        a.setflags(write=False)
    counts = np.fromiter(map(len, rows), dtype=np.int32, count=len(rows))
    counts.setflags(write=False)
    return _Fragment(tuple(accepting), tuple(conds), tuple(undecided), tuple(look), tuple(tuple(r) for r in rows),
                     counts, *arrays)


_INT32_MAX = 2**31 - 1


def _determinize(nfa: _ByteNFA, starts: list[int], term_rank: np.ndarray, max_states: int,
                 deadline: Optional[float]) -> tuple[np.ndarray, np.ndarray]:
    """Subset construction from the set of `starts` (gm_lex_determinize): states numbered breadth first, by
    byte within a state; each state's winner is its matching terminal of least term_rank."""
    begin, lo, hi, dst = nfa.flat_edges()
    rc, n_states, trans, winner = _core.lex_determinize(begin, lo, hi, dst, nfa.accept, starts, term_rank,
                                                        min(max_states, _INT32_MAX), _time_left(deadline))
    if rc == _core.LEX_TOO_MANY:
        raise LexerTooLarge(too_many_states(max_states))
    if rc == _core.LEX_TIMEOUT:
        raise LexerTooLarge(too_long(n_states))
    return trans, winner


def _time_left(deadline: Optional[float]) -> float:
    """Seconds the native construction may take (-1: no limit)."""
    return -1.0 if deadline is None else max(deadline - time.monotonic(), 0.0)


def _trim_minimize(trans: np.ndarray, winner: np.ndarray, mode: np.ndarray, cond: np.ndarray,
                   starts) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Drop states from which no accepting state (conditional ones too) can be reached (the start states stay),
    then merge equivalent states (states of different modes or winner rows stay apart), numbered by their first
    state so the start state stays state 0 (gm_lex_minimize). Returns the new trans and winner, which new
    states no byte leads out of, each old state's new number (-1: dropped), each new state's first old state."""
    out = _core.lex_minimize(trans, winner, mode, cond, starts)
    if out[0] == _core.LEX_NOTHING:
        raise RegexError("<all>", "no terminal matches any string")
    return out[1:]


def _completable_sets(trans, winner, ignored: list[bool], starts, cond=None, cond_rows=None):
    """Per state: the terminals that some continuation of the lexeme can still produce (in a conditional
    state: each terminal of its row), interned in order of first appearance; ANY_TERMINAL for the start
    states and where an ignored terminal can follow (gm_lex_csets)."""
    return _core.lex_csets(trans, winner, cond, cond_rows, ignored, sorted(starts))


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


def _used_cond_rows(cond: np.ndarray, row_ids: dict) -> tuple:
    """The states' winner rows renumbered densely, and the rows (257 per row, interned in row_ids as
    row -> id): (None, None) where no state is conditional."""
    if not (cond >= 0).any():
        return None, None
    used = sorted(set(cond[cond >= 0].tolist()))
    renum = {old: new for new, old in enumerate(used)}
    by_id = {k: r for r, k in row_ids.items()}
    cond_rows = np.asarray([by_id[k] for k in used], dtype=np.int32).reshape(len(used), 257)
    return np.asarray([renum.get(c, -1) for c in cond.tolist()], dtype=np.int32), cond_rows


def _term_ranks(terminals: list[TerminalSpec]) -> np.ndarray:
    """Each terminal's place in the order that picks a state's winner: highest priority, then string literals,
    then the order of definition."""
    order = sorted(range(len(terminals)),
                   key=lambda i: (-terminals[i].priority, 0 if terminals[i].is_literal else 1, i))
    ranks = np.empty(len(terminals), dtype=np.int32)
    ranks[order] = np.arange(len(terminals), dtype=np.int32)
    return ranks


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

    term_rank = _term_ranks(terminals)
    rules = scan_rules(terminals) if lark_scanner else None
    parts, offset, mode_start = [], 0, []
    row_ids: dict = {}  # winner rows over the next byte, interned across modes
    voids = []
    for mode in range(n_modes):
        nfa = _ByteNFA()
        starts = [_add_terminal(nfa, i, terminals[i], regex) for i, regex in by_mode[mode]]
        if rules is not None:
            try:
                trans, winner, rows, void = lark_determinize(nfa, dict(zip((i for i, _ in by_mode[mode]), starts)),
                                                             rules, max_states - offset, deadline)
            except LookaheadUndecidable as exc:
                raise RegexError(terminals[exc.term].name, exc.detail) from None
            cond = np.asarray([-1 if r is None else row_ids.setdefault(r, len(row_ids)) for r in rows],
                              dtype=np.int32)
            voids.append(np.asarray(void, dtype=np.int32))
        else:
            conditional = next((s for s, c in enumerate(nfa.cond) if c is not None), None)
            if conditional is not None:
                raise RegexError(terminals[nfa.accept[conditional]].name,
                                 "a lookahead (or $, \\b) reaches past the end of the lexeme: whether it holds "
                                 "depends on the text after it (Lark's scanner takes it: lexer \"basic\" or "
                                 "\"contextual\")")
            trans, winner = _determinize(nfa, starts, term_rank, max_states - offset, deadline)
            cond = np.full(len(winner), -1, dtype=np.int32)
            voids.append(np.full(len(winner), NO_VOID, dtype=np.int32))
        if offset or rules is not None:  # (the native construction marks no transition DEAD already)
            trans = np.where(trans >= 0, trans + offset, DEAD)
        parts.append((trans, winner, np.full(len(winner), mode), cond))
        mode_start.append(offset)
        offset += len(winner)
    if len(parts) == 1:  # one mode (a JSON Schema's grammar): nothing to lay end to end
        (trans, winner, lex_mode, cond), void = parts[0], voids[0]
    else:
        trans, winner, lex_mode, cond = (np.concatenate(x) for x in zip(*parts))
        void = np.concatenate(voids)
    # a state's winner row and its void stay with it: one key for the minimization (and a voiding state is
    # kept by the trim like an accepting one, though nothing may follow it)
    if (void != NO_VOID).any():
        keys: dict = {}
        state_key = np.asarray([-1 if c < 0 and v == NO_VOID else keys.setdefault((c, v), len(keys))
                                for c, v in zip(cond.tolist(), void.tolist())], dtype=np.int32)
    else:
        state_key = cond
    trans, winner, dead_end, new_state, first = _trim_minimize(trans, winner, lex_mode, state_key, mode_start)
    mode_start = new_state[mode_start]
    lex_mode = lex_mode[first].astype(np.int32)
    void = void[first] if (void[first] != NO_VOID).any() else None
    cond, cond_rows = _used_cond_rows(cond[first], row_ids)
    # a conditional state is never final: the byte after it decides its winner
    final = (dead_end & (winner >= 0)).astype(np.uint8) if cond is not None else dead_end
    cset, csets = _completable_sets(trans, winner, [t.ignored for t in terminals], set(mode_start.tolist()),
                                    cond, cond_rows)
    return LexerDFA(trans=np.ascontiguousarray(trans), winner=winner, final=final, cset=cset, csets=csets,
                    mode_start=mode_start, lex_mode=lex_mode, cond=cond, cond_rows=cond_rows, void=void)


def never_produced(lexer: LexerDFA, terminals: list[TerminalSpec]) -> list[int]:
    """Terminals that win no accepting state: every string they match lexes as another terminal."""
    won = lexer.produced()
    return [i for i, t in enumerate(terminals) if t.regex is not None and i not in won]
