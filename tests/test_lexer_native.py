"""The lexer DFA's native construction (csrc/gm_lexbuild.c, driven by fsm/lexer.py) against the Python one it
replaced, kept here as the reference oracle (and only here: the library has no Python version any more).

`oracle_build` is fsm/lexer.py's _build as it was before the construction moved to C: the byte NFA and Lark's
scanner (lark_determinize) are the library's own, shared by both; the subset construction, the trimming, the
Moore refinement and the completable sets are the Python originals. Every LexerDFA array must come out
identical: the built-in grammars, the Lark grammars of the tests, and MaskBench schemas (where the shared
corpus is present).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Optional

import numpy as np
import pytest

import grammask as gm
from conftest import shared_corpus
from grammask.fsm import lexer
from grammask.fsm.lark_scan import lark_determinize, scan_rules
from grammask.fsm.lexer import DEAD, ANY_TERMINAL, LexerDFA, LexerTooLarge, RegexError, _add_terminal, _ByteNFA
from grammask.fsm.limits import check_limits, union_of_successors
from grammask.grammar import table_cache, tables as tables_module

DATA = Path(__file__).parent / "data"
N_MASKBENCH = 210  # schemas, spread over the splits (some are refused before the lexer)


# ---- the oracle: the Python construction --------------------------------------------------------------

def _determinize(nfa, starts, rank, max_states, deadline):
    start = frozenset(starts)
    index = {start: 0}
    order = [start]
    rows, winners = [], []
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


def _trim(trans, winner, starts, cond):
    n = trans.shape[0]
    preds = [set() for _ in range(n)]
    for q in range(n):
        for t in set(trans[q][trans[q] >= 0].tolist()):
            preds[t].add(q)
    alive = (winner >= 0) | (cond >= 0)
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
    remap = np.full(n + 1, DEAD, dtype=np.int32)
    remap[keep] = np.arange(len(keep), dtype=np.int32)
    return remap[trans[keep]], winner[keep], remap


def _minimize(trans, winner, mode, cond):
    _, labels = np.unique(np.stack([winner, mode, cond], axis=1), axis=0, return_inverse=True)
    labels = labels.reshape(-1)
    n_classes = labels.max() + 1
    while True:
        succ = np.where(trans >= 0, labels[np.maximum(trans, 0)], -1)
        sig = np.ascontiguousarray(np.concatenate([labels[:, None], succ], axis=1), dtype=np.int32)
        _, new_labels = np.unique(sig.view(np.dtype((np.void, sig.shape[1] * 4))).ravel(), return_inverse=True)
        new_labels = new_labels.reshape(-1)
        if new_labels.max() + 1 == n_classes:
            break
        labels, n_classes = new_labels, new_labels.max() + 1
    _, first = np.unique(labels, return_index=True)
    order = np.argsort(first)
    renum = np.empty_like(order)
    renum[order] = np.arange(len(order))
    labels = renum[labels]
    reps = first[order]
    new_trans = np.where(trans[reps] >= 0, labels[np.maximum(trans[reps], 0)], DEAD).astype(np.int32)
    return new_trans, winner[reps].astype(np.int32), labels


def _completable_sets(trans, winner, ignored, starts, cond=None, cond_rows=None):
    n = trans.shape[0]
    succs = [sorted(set(trans[q][trans[q] >= 0].tolist())) for q in range(n)]
    own = [1 << int(winner[q]) if winner[q] >= 0 else 0 for q in range(n)]
    if cond is not None:
        row_bits = [sum(1 << t for t in set(r.tolist()) if t >= 0) for r in cond_rows]
        for q in np.nonzero(cond >= 0)[0].tolist():
            own[q] |= row_bits[cond[q]]
    reach = union_of_successors(succs, own)
    ignored_mask = sum(1 << i for i, ig in enumerate(ignored) if ig)
    csets, ids = [], {}
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


def oracle_build(terminals, max_states=lexer.DEFAULT_MAX_LEXER_STATES, deadline: Optional[float] = None,
                 lark_scanner: bool = False) -> LexerDFA:
    from collections import defaultdict
    by_mode = defaultdict(list)
    for i, spec in enumerate(terminals):
        if spec.regex is not None:
            for mode in spec.modes:
                by_mode[mode].append((i, spec.regex))
        for mode, regex in spec.mode_regexes:
            by_mode[mode].append((i, regex))
    n_modes = max(by_mode, default=0) + 1

    def rank(i):
        return (-terminals[i].priority, 0 if terminals[i].is_literal else 1, i)

    rules = scan_rules(terminals) if lark_scanner else None
    parts, offset, mode_start = [], 0, []
    row_ids: dict = {}
    voids = []
    for mode in range(n_modes):
        nfa = _ByteNFA()
        starts = [_add_terminal(nfa, i, terminals[i], regex) for i, regex in by_mode[mode]]
        if rules is not None:
            trans, winner, rows, void = lark_determinize(nfa, dict(zip((i for i, _ in by_mode[mode]), starts)),
                                                         rules, max_states - offset, deadline)
            cond = np.asarray([-1 if r is None else row_ids.setdefault(r, len(row_ids)) for r in rows],
                              dtype=np.int32)
            voids.append(np.asarray(void, dtype=np.int32))
        else:
            trans, winner = _determinize(nfa, starts, rank, max_states - offset, deadline)
            cond = np.full(len(winner), -1, dtype=np.int32)
            voids.append(np.full(len(winner), -1, dtype=np.int32))
        parts.append((np.where(trans >= 0, trans + offset, DEAD), winner, np.full(len(winner), mode), cond))
        mode_start.append(offset)
        offset += len(winner)
    trans, winner, lex_mode, cond = (np.concatenate(x) for x in zip(*parts))
    void = np.concatenate(voids)
    keys: dict = {}  # a state's winner row and void: one key, as lexer._build makes it
    state_key = np.asarray([-1 if c < 0 and v == -1 else keys.setdefault((c, v), len(keys))
                            for c, v in zip(cond.tolist(), void.tolist())], dtype=np.int32)
    trans, winner, remap = _trim(trans, winner, mode_start, state_key)
    kept = remap[:-1] >= 0
    lex_mode, cond, void, state_key = lex_mode[kept], cond[kept], void[kept], state_key[kept]
    mode_start = remap[mode_start]
    trans, winner, labels = _minimize(trans, winner, lex_mode, state_key)
    mode_start = labels[mode_start].astype(np.int32)
    _, first = np.unique(labels, return_index=True)
    lex_mode = lex_mode[first].astype(np.int32)
    void = void[first] if (void[first] != -1).any() else None
    cond, cond_rows = lexer._used_cond_rows(cond[first], row_ids)
    final = ((trans < 0).all(axis=1) & (winner >= 0)).astype(np.uint8) if cond is not None else \
        (trans < 0).all(axis=1).astype(np.uint8)
    cset, csets = _completable_sets(trans, winner, [t.ignored for t in terminals], set(mode_start.tolist()),
                                    cond, cond_rows)
    return LexerDFA(trans=np.ascontiguousarray(trans), winner=winner, final=final, cset=cset, csets=csets,
                    mode_start=mode_start, lex_mode=lex_mode, cond=cond, cond_rows=cond_rows, void=void)


# ---- comparison -----------------------------------------------------------------------------------------

FIELDS = ("trans", "winner", "final", "cset", "mode_start", "lex_mode", "cond", "cond_rows", "void")


def assert_same_lexer(native: LexerDFA, oracle: LexerDFA, what: str) -> None:
    for name in FIELDS:
        a, b = getattr(native, name), getattr(oracle, name)
        if a is None or b is None:
            assert a is None and b is None, f"{what}: {name}"
            continue
        assert a.dtype == b.dtype and a.shape == b.shape, f"{what}: {name} {a.dtype}{a.shape} vs {b.dtype}{b.shape}"
        assert np.array_equal(a, b), f"{what}: {name} differs"
    assert native.csets == oracle.csets, f"{what}: csets"


def lexer_inputs(build):
    """The (terminals, max_states, lark_scanner) of every build_lexer call that `build` makes (tables built
    afresh, no disk cache)."""
    calls = []
    real = tables_module.build_lexer

    def recording(terminals, max_states=lexer.DEFAULT_MAX_LEXER_STATES, deadline=None, lark_scanner=False):
        calls.append((terminals, max_states, lark_scanner))
        return real(terminals, max_states, deadline, lark_scanner)

    tables_module.build_lexer = recording
    try:
        build()
    finally:
        tables_module.build_lexer = real
    return calls


def fresh_tables(grammar):
    return table_cache.build_tables(grammar.text, grammar.start, grammar.name, grammar.max_lexer_states,
                                    grammar.build_timeout, warn_conflicts=False, source_path=grammar.source_path,
                                    lexer_kind=grammar.lexer, postlex=getattr(grammar, "postlex", None))


def check_grammar(grammar, what: str) -> int:
    calls = lexer_inputs(lambda: fresh_tables(grammar))
    assert calls, what
    for terminals, max_states, lark_scanner in calls:
        native = lexer.build_lexer(terminals, max_states, None, lark_scanner)
        assert_same_lexer(native, oracle_build(terminals, max_states, None, lark_scanner), what)
    return len(calls)


@pytest.mark.parametrize("name", ["json", "python", "go"])
def test_builtin_grammars(name):
    check_grammar(gm.Grammar.builtin(name), name)


def _lark_grammars():
    out = sorted((DATA / "lark_compat").glob("*.lark")) + sorted(DATA.glob("*.lark"))
    return [pytest.param(p, id=p.name) for p in out]


@pytest.mark.parametrize("path", _lark_grammars())
@pytest.mark.parametrize("kind", ["contextual", "basic", "longest"])
def test_lark_grammars(path, kind):
    text = path.read_text()
    try:
        grammar = gm.Grammar.from_lark(text, lexer=kind)
        fresh_tables(grammar)
    except gm.GrammarError as exc:
        pytest.skip(f"{path.name} with lexer {kind}: {exc}")
    check_grammar(grammar, f"{path.name} ({kind})")


LOOKAHEADS = [
    # conditional states: a lookahead past the lexeme (Lark's scanner only)
    'start: (WORD | QMARK | NUM)+\nWORD: /[a-z]+(?![0-9])/\nQMARK: /[?](?![a-z])/\nNUM: /[0-9]+/\n%ignore " "\n',
    'start: (A | B)+\nA: /ab(?=c)/\nB: /[a-z]/\n',
    'start: (KW | NAME)+\nKW.2: /(?a)if\\b/\nNAME: /(?a)\\w+/\n%ignore " "\n',
]


@pytest.mark.parametrize("text", LOOKAHEADS)
@pytest.mark.parametrize("kind", ["contextual", "basic"])
def test_conditional_states(text, kind):
    grammar = gm.Grammar.from_lark(text, lexer=kind)
    check_grammar(grammar, text)


# The ones whose lexers took longest to build in Python (long maxLength bounds, many enum values).
SLOW_SCHEMAS = ["maskbench-Snowplow/sp_258_Normalized.json", "maskbench-Snowplow/sp_175_Normalized.json",
                "maskbench-Snowplow/sp_369_Normalized.json", "maskbench-Github_easy/o30802.json"]


def _maskbench_schemas():
    root = shared_corpus("jsonschema", "maskbench-Glaiveai2K").parent
    splits = sorted(p for p in root.iterdir() if p.name.startswith("maskbench-"))
    per_split = -(-N_MASKBENCH // len(splits))
    out = [root / name for name in SLOW_SCHEMAS]
    for split in splits:
        files = sorted(split.glob("*.json"))
        step = max(len(files) // per_split, 1)
        out.extend(p for p in files[::step][:per_split] if p not in out)
    return out


def test_maskbench_schemas():
    compared = 0
    for path in _maskbench_schemas():
        doc = json.loads(path.read_text())
        try:
            grammar = gm.Grammar.from_json_schema(doc["schema"], build_timeout=10)
            calls = lexer_inputs(lambda: fresh_tables(grammar))
        except (gm.GrammarError, ValueError, RecursionError):
            continue  # refused before or by the lexer: compared below only where it builds
        for terminals, max_states, lark_scanner in calls:
            native = lexer.build_lexer(terminals, max_states, None, lark_scanner)
            assert_same_lexer(native, oracle_build(terminals, max_states, None, lark_scanner), str(path))
            compared += 1
    assert compared >= 150, compared


POOL = [r"[a-z]+", r"if|in|int", r"[0-9]+(\.[0-9]*)?", r"[a-c]{2,5}", r"x[a-z]{0,3}y", r'"([^"\\]|\\.)*"',
        r"[ \t]+", r"//[^\n]*", r"(ab|ba)+", r"[\u00e0-\u00ff\u4e00-\u4e2f]+", r"0x[0-9a-f]{1,4}", r"a|aa|aaa",
        r"[^a-z]{1,3}", r"(?i)select|from"]


def test_random_terminal_sets():
    """Random sets of terminals (priorities, literals, ignored ones, two modes) build the same lexer."""
    import random
    rng = random.Random(22)
    for trial in range(60):
        chosen = rng.sample(POOL, rng.randint(1, 6))
        terms = [lexer.TerminalSpec(f"T{i}", r, priority=rng.choice([0, 0, 1]), is_literal=rng.random() < 0.3,
                                    ignored=rng.random() < 0.2, modes=(0, 1) if rng.random() < 0.5 else (0,))
                 for i, r in enumerate(chosen)]
        if not any(1 in t.modes for t in terms):
            terms = [lexer.TerminalSpec(t.name, t.regex, t.priority, t.is_literal, t.ignored) for t in terms]
        assert_same_lexer(lexer.build_lexer(terms), oracle_build(terms), f"trial {trial}: {chosen}")


# ---- limits and errors ------------------------------------------------------------------------------------

def _specs(*regexes, **kw):
    return [lexer.TerminalSpec(f"T{i}", r, **kw) for i, r in enumerate(regexes)]


def test_max_states_message():
    terms = _specs(r"[a-z]{1,30}x", r"[a-z]{1,30}y")
    with pytest.raises(LexerTooLarge) as native:
        lexer.build_lexer(terms, max_states=50)
    with pytest.raises(LexerTooLarge) as oracle:
        oracle_build(terms, max_states=50)
    assert str(native.value) == str(oracle.value) == \
        "the lexer needs more than 50 DFA states (limit: max_lexer_states)"


def test_max_states_exact_boundary():
    """Exactly max_states states build; one fewer allowed does not (as the Python construction)."""
    terms = _specs(r"abc|abd", r"[0-9]+")
    n = len(_determinize_count(terms))
    lexer.build_lexer(terms, max_states=n)
    oracle_build(terms, max_states=n)
    for build in (lexer.build_lexer, oracle_build):
        with pytest.raises(LexerTooLarge):
            build(terms, max_states=n - 1)


def _determinize_count(terms):
    nfa = _ByteNFA()
    starts = [_add_terminal(nfa, i, t, t.regex) for i, t in enumerate(terms)]
    return _determinize(nfa, starts, lambda i: i, 10**9, None)[1]


def test_deadline_message():
    terms = _specs(r"[a-z]{1,60}x[a-z]{1,60}", r"[a-z]{1,60}y[a-z]{1,60}")
    with pytest.raises(LexerTooLarge, match="took too long"):
        lexer.build_lexer(terms, deadline=time.monotonic())


def test_deadline_in_the_native_construction():
    """Past the deadline, the subset construction stops with the Python construction's message."""
    terms = _specs(r"[a-z]+x", r"[0-9]+")
    nfa = _ByteNFA()
    starts = [_add_terminal(nfa, i, t, t.regex) for i, t in enumerate(terms)]
    past = time.monotonic() - 1
    with pytest.raises(LexerTooLarge) as native:
        lexer._determinize(nfa, starts, lexer._term_ranks(terms), 1000, past)
    with pytest.raises(LexerTooLarge) as oracle:
        _determinize(nfa, starts, lambda i: i, 1000, past)
    assert str(native.value) == str(oracle.value) == \
        "the lexer took too long (1 DFA states so far; limit: build_timeout)"


def test_nothing_matches():
    # (terminals that match nothing are refused before the lexer is built: the stage itself, directly)
    trans = np.full((2, 256), -1, dtype=np.int32)
    trans[0, ord("a")] = 1
    winner = np.array([-1, -1], dtype=np.int32)
    zeros = np.zeros(2, dtype=np.int32)
    with pytest.raises(RegexError, match="no terminal matches any string"):
        lexer._trim_minimize(trans, winner, zeros, zeros - 1, [0])


def test_bad_input_is_refused():
    from grammask import _core
    ok = dict(edge_begin=[0, 1, 1], edge_lo=[97], edge_hi=[97], edge_dst=[1], accept=[-1, 0], starts=[0],
              term_rank=[0])
    assert _core.lex_determinize(*ok.values(), 100, -1.0)[:2] == (0, 2)
    for key, bad in (("edge_dst", [2]), ("edge_hi", [256]), ("edge_lo", [-1]), ("accept", [-1, 1]),
                     ("starts", [5]), ("edge_begin", [0, 2, 1])):
        args = dict(ok, **{key: bad})
        with pytest.raises(ValueError):
            _core.lex_determinize(*args.values(), 100, -1.0)
    trans = np.full((2, 256), -1, dtype=np.int32)
    trans[0, 0] = 2  # out of range
    with pytest.raises(ValueError):
        _core.lex_minimize(trans, [0, 0], [0, 0], [-1, -1], [0])
    with pytest.raises(ValueError):
        _core.lex_csets(np.full((2, 256), -1, np.int32), [0, 3], None, None, [0, 0], [0])


def test_arrays_without_elements_for_their_length_are_refused():
    """len() of an array of shape (n, 0) is n, but it holds no element: the wrappers passed such a count to C
    with a one-element placeholder array, so C read past it (lex_determinize's edge_lo, accept, starts and
    term_rank, lex_minimize's starts, lex_csets' ignored and starts). Each must be refused."""
    from grammask import _core

    def empty_rows(a):
        return np.zeros((len(a), 0), dtype=np.int32)

    nfa = dict(edge_begin=[0, 1], edge_lo=[97], edge_hi=[97], edge_dst=[0], accept=[0], starts=[0], term_rank=[0])
    assert _core.lex_determinize(*nfa.values(), 100, -1.0)[:2] == (0, 1)
    for key in ("edge_lo", "edge_hi", "edge_dst", "accept", "starts", "term_rank"):
        args = dict(nfa, **{key: empty_rows(nfa[key])})
        with pytest.raises(ValueError, match=key):
            _core.lex_determinize(*args.values(), 100, -1.0)
    trans = np.full((1, 256), -1, dtype=np.int32)
    assert _core.lex_minimize(trans, [0], [0], [-1], [0])[0] == 0
    with pytest.raises(ValueError, match="starts"):
        _core.lex_minimize(trans, [0], [0], [-1], empty_rows([0]))
    assert _core.lex_csets(trans, [0], None, None, [0], [0])[1] == []
    with pytest.raises(ValueError, match="ignored"):
        _core.lex_csets(trans, [0], None, None, empty_rows([0]), [0])
    with pytest.raises(ValueError, match="starts"):
        _core.lex_csets(trans, [0], None, None, [0], empty_rows([0]))


def test_allocation_failures_leak_nothing():
    from grammask import _core
    terms = _specs(r'"([^"\\]|\\.)*"', r"[0-9]+(\.[0-9]+)?", r"true|false|null", r"[ \t\n]+")
    terms[3] = lexer.TerminalSpec("WS", r"[ \t\n]+", ignored=True)
    expected = lexer.build_lexer(terms)
    before = _core._live_blocks()
    failures = 0
    for n in range(1, 400):
        _core._fail_allocation_after(n)
        try:
            got = lexer.build_lexer(terms)
        except MemoryError:
            failures += 1
            continue
        finally:
            _core._fail_allocation_after(0)
        assert_same_lexer(got, expected, f"allocation {n}")
        break
    assert failures > 10
    assert _core._live_blocks() == before


def test_a_terminal_met_again_is_laid_as_made_before_and_its_errors_name_it():
    """The byte automaton of a terminal's regexes is made once (_cached_fragment) and laid at each use's own
    offset, with each use's terminal id; an error names the terminal that met it, each time."""
    lexer._cached_fragment.cache_clear()
    terms = _specs(r"[a-zé]+", r"[0-9]+(?![0-9])", r"\d+", r"[a-zé]+")
    nfa = _ByteNFA()
    starts = [_add_terminal(nfa, i, t, t.regex) for i, t in enumerate(terms)]
    assert lexer._cached_fragment.cache_info().hits == 1  # the fourth is the first, again
    first = nfa.trans[starts[0]:starts[1]]
    again = nfa.trans[starts[3]:]
    assert again == [[(lo, hi, t - starts[0] + starts[3]) for lo, hi, t in row] for row in first]
    assert [a for a in nfa.accept[starts[3]:] if a >= 0] and {a for a in nfa.accept[starts[3]:]} <= {-1, 3}
    assert nfa.cond[starts[1]:starts[2]].count(None) < starts[2] - starts[1]  # the lookahead: conditional
    begin, lo, hi, dst = nfa.flat_edges()
    assert [list(zip(lo[begin[s]:begin[s + 1]].tolist(), hi[begin[s]:begin[s + 1]].tolist(),
                     dst[begin[s]:begin[s + 1]].tolist())) for s in range(len(nfa.accept))] == nfa.trans
    for name in ("A", "B"):
        with pytest.raises(RegexError, match=f"^terminal {name}: /a\\*/ matches the empty string") as err:
            _add_terminal(_ByteNFA(), 0, lexer.TerminalSpec(name, "a*"), "a*")
        assert err.value.terminal == name
