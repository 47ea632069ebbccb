"""The native LALR(1) construction (csrc/gm_lalr.c, grammar/lark_frontend.py build_lalr) against Lark's own.

Lark is the oracle: for each grammar, `Lark(text, parser="lalr", lexer="basic", start=...)` as grammask
loaded grammars before (its parse table, the shift/reduce conflicts it logs, the error it raises) against
grammask's load_lark. The tables must be isomorphic (a lockstep walk from the start states maps states one
to one and every shift, reduce, goto and accept entry agrees), the conflicts equal, the refusals equal.
"""

from __future__ import annotations

import json
import logging
import re
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

import grammask as gm
from bench import lark_compat as lc
from bench import schema_bench
from grammask import _core
from grammask.grammar import lark_frontend as lf
from grammask.grammar.directives import read_directives
from grammask.grammar.errors import GrammarError
from grammask.grammar.json_schema import schema_to_lark

from conftest import shared_corpus

lark = pytest.importorskip("lark")

MASKBENCH_PER_SPLIT = 30   # schemas spread over each split: about 200 grammars over the 7 splits
MASKBENCH_MIN = 150


class _Keep:
    """Lark's postlex slot, only so that it keeps terminals no rule uses (as grammask's load did)."""

    def __init__(self, names):
        self.always_accept = tuple(names)

    def process(self, stream):  # pragma: no cover - never parses
        return stream


def lark_reference(text: str, start: str, keep=()):
    """(Lark object, its shift/reduce conflicts as (terminal, rule)), or (None, the LarkError it raised)."""
    from lark import Lark, logger as lark_logger
    from lark import lexer as lark_lexer
    from lark.exceptions import LarkError

    log = lf._ConflictLog()
    saved = lark_logger.handlers[:], lark_logger.level, lark_logger.propagate, lark_lexer.has_interegular
    lark_logger.handlers, lark_logger.propagate, lark_lexer.has_interegular = [log], False, False
    lark_logger.setLevel(logging.DEBUG)
    try:
        parser = Lark(text, parser="lalr", lexer="basic", start=start, maybe_placeholders=False,
                      postlex=_Keep(keep) if keep else None)
        return parser, log.shift_reduce
    except (LarkError, OSError, ValueError, KeyError, AttributeError, TypeError) as exc:
        return None, exc
    finally:
        lark_logger.handlers, level, lark_logger.propagate, lark_lexer.has_interegular = saved
        lark_logger.setLevel(level)


def assert_isomorphic(table, native: lf.LalrTables, start: str) -> int:
    """Lark's parse table and the native tables walked in lockstep from their start states: states map
    one to one, and every action (shift target, reduced rule) and goto agrees. Returns the state count."""
    from lark.parsers.lalr_analysis import Shift

    column = {name: i for i, name in enumerate(native.terminals + native.nonterminals)}
    n_terms = len(native.terminals)
    to_native = {table.start_states[start]: native.start_state}
    to_lark = {native.start_state: table.start_states[start]}
    todo = [table.start_states[start]]
    while todo:
        s = todo.pop()
        q = to_native[s]
        acts = table.states[s]
        # every native entry has its Lark counterpart: counted, then each Lark entry matched
        n_native = int((native.trans[q] >= 0).sum() + (native.reduce[q] >= 0).sum())
        assert n_native == len(acts), (s, q, sorted(acts))
        for sym, (kind, arg) in acts.items():
            assert sym in column, sym
            j = column[sym]
            if kind is Shift:
                target = int(native.trans[q, j])
                assert target >= 0, (sym, s)
                if arg in to_native:
                    assert to_native[arg] == target, (sym, s)
                else:
                    assert target not in to_lark, (sym, s)
                    to_native[arg], to_lark[target] = target, arg
                    todo.append(arg)
            else:
                assert j < n_terms and native.trans[q, j] < 0, (sym, s)
                rule = native.rules[int(native.reduce[q, j])]
                assert str(rule) == str(arg) and len(rule.expansion) == len(arg.expansion), (sym, s)
    assert len(to_native) == len(table.states) == native.trans.shape[0]
    assert to_native[table.end_states[start]] == native.end_state
    return len(to_native)


def assert_parse_tables_isomorphic(old: lf.ParseTables, new: lf.ParseTables) -> None:
    """The engine's tables (ParseTables) from Lark's parse table and from the native one: a lockstep walk
    maps states one to one; shifts, reduces (rule left side and length), gotos (by nonterminal) agree."""
    assert old.action.shape == new.action.shape
    goto_new = {name: i for i, name in enumerate(new.nonterminals)}
    pairs = {old.start_state: new.start_state}
    back = {new.start_state: old.start_state}
    todo = [old.start_state]

    def pair(a, b):
        if a in pairs:
            assert pairs[a] == b
        else:
            assert b not in back
            pairs[a], back[b] = b, a
            todo.append(a)

    while todo:
        a = todo.pop()
        b = pairs[a]
        for t in range(old.action.shape[1]):
            x, y = int(old.action[a, t]), int(new.action[b, t])
            assert (x >= 0) == (y >= 0) and (x == lf.ERROR) == (y == lf.ERROR), (a, t, x, y)
            if x >= 0:
                pair(x, y)
            elif x <= -2:
                rx, ry = -2 - x, -2 - y
                assert old.nonterminals[old.rule_lhs[rx]] == new.nonterminals[new.rule_lhs[ry]], (a, t)
                assert old.rule_len[rx] == new.rule_len[ry], (a, t)
        for i, name in enumerate(old.nonterminals):
            x = int(old.goto[a, i]) if i < old.goto.shape[1] else lf.ERROR
            y = int(new.goto[b, goto_new[name]]) if name in goto_new else lf.ERROR
            assert (x >= 0) == (y >= 0), (a, name)
            if x >= 0:
                pair(x, y)
    assert len(pairs) == old.action.shape[0] == new.action.shape[0]
    assert pairs[old.end_state] == new.end_state
    assert set(old.nonterminals) == set(new.nonterminals)
    assert len(old.rule_lhs) == len(new.rule_lhs)


def old_parse_tables(parser, terminal_names: list[str]) -> lf.ParseTables:
    """ParseTables read out of Lark's parse table, as grammask did before the native construction."""
    from lark.parsers.lalr_analysis import Shift

    table = parser.parser.parser.parser.parse_table
    term_id = {name: i for i, name in enumerate(terminal_names)}
    term_id[lf.END] = len(terminal_names)
    nonterminals, rules, rule_lhs, rule_len = {}, {}, [], []
    for acts in table.states.values():
        for sym in acts:
            if sym not in term_id:
                nonterminals.setdefault(sym, len(nonterminals))
    index = {s: i for i, s in enumerate(sorted(table.states))}
    action = np.full((len(index), len(terminal_names) + 1), lf.ERROR, dtype=np.int32)
    goto = np.full((len(index), max(1, len(nonterminals))), lf.ERROR, dtype=np.int32)
    for s, acts in table.states.items():
        for sym, (kind, arg) in acts.items():
            if sym not in term_id:
                goto[index[s], nonterminals[sym]] = index[arg]
            elif kind is Shift:
                action[index[s], term_id[sym]] = index[arg]
            else:
                if arg not in rules:
                    rules[arg] = len(rule_lhs)
                    rule_lhs.append(arg.origin.name)
                    rule_len.append(len(arg.expansion))
                action[index[s], term_id[sym]] = -2 - rules[arg]
    for name in rule_lhs:
        nonterminals.setdefault(name, len(nonterminals))
    if goto.shape[1] < len(nonterminals):
        goto = np.concatenate([goto, np.full((len(index), len(nonterminals) - goto.shape[1]), lf.ERROR,
                                             dtype=np.int32)], axis=1)
    start = parser.options.start[0]
    return lf.ParseTables(action, goto, np.asarray([nonterminals[n] for n in rule_lhs], dtype=np.int32),
                          np.asarray(rule_len, dtype=np.int32), index[table.start_states[start]],
                          index[table.end_states[start]], sorted(nonterminals, key=nonterminals.get))


def old_conflicts(text: str, shift_reduce) -> list:
    out = []
    for terminal, rule in shift_reduce:
        line, col = lf._definition_line(text, rule.split(":")[0].strip().lstrip("<"))
        out.append((line, col, f"shift/reduce conflict on {terminal} in {rule}: resolved as shift (the longer match)"))
    return out


def _collision_named(message: str):
    """A refusal as compared: the message, but the two rules of a reduce/reduce conflict as a set (Lark
    lists them in no fixed order, and grammask keeps that order for two alternatives of one rule)."""
    m = re.search(r"^(.*)the same input can be '(.*)' or '(.*)' \(before (\S+)\)", message)
    return (m.group(1), frozenset(m.group(2, 3)), m.group(4)) if m else message


def _collisions(message: str) -> set:
    """(terminal, frozenset of rules) per collision Lark lists in its Reduce/Reduce message."""
    out = set()
    for part in message.split("\n\n"):
        head, *rules = part.split("\n\t- ")
        if head.startswith("Reduce/Reduce collision in Terminal("):
            out.add((head.split("'")[1], frozenset(r.strip() for r in rules)))
    return out


def compare(text: str, start: str, keep=(), what: str = "") -> str:
    """Lark's load and grammask's agree on `text`: tables, conflicts, terminals, or the refusal.
    Returns "ok", "refused" or "fallback"."""
    parser, ref = lark_reference(text, start, keep)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            native = lf.load_lark(text, start, keep_terminals=keep, warn_conflicts=False)
    except GrammarError as exc:
        assert parser is None, f"{what}: grammask refuses what Lark loads: {exc}"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                old_message = _old_error(text, start, keep)
        except Exception as old:  # noqa: BLE001 - the oracle's own refusal, as grammask read it before
            old_message = str(old)
        if _collision_named(str(exc)) != _collision_named(old_message):
            # Lark lists several collisions (or a collision of 3+ rules) in no fixed order: grammask names one
            lark_set = _collisions(str(ref))
            assert lark_set and (len(lark_set) > 1 or len(next(iter(lark_set))[1]) > 2), (what, str(exc), old_message)
        return "refused"
    assert parser is not None, f"{what}: grammask loads what Lark refuses: {ref}"
    table = parser.parser.parser.parser.parse_table
    assert_isomorphic(table, native.lalr, start)
    assert Counter(native.grammask_conflicts) == Counter(old_conflicts(text, ref)), what
    assert [(t.name, t.pattern, t.priority) for t in native.terminals] == \
        [(t.name, t.pattern, t.priority) for t in parser.terminals], what
    assert list(native.ignore_tokens) == list(parser.ignore_tokens), what
    specs, display = lf.terminal_specs(native)
    names = [s.name for s in specs]
    known = {t.name for t in parser.terminals}
    declared = sorted({sym for acts in table.states.values() for sym in acts
                       if sym.isupper() and sym not in known and sym != lf.END})
    assert names == declared + [t.name for t in parser.terminals], what
    assert_parse_tables_isomorphic(old_parse_tables(parser, names), lf.parse_tables(native, names, text, None))
    return "fallback" if native.lalr.by_lark else "ok"


def _old_error(text: str, start: str, keep) -> str:
    """grammask's refusal of the grammar before the native construction: Lark's error, mapped by load_lark's
    own mapping (the native path raises Lark's errors with Lark's messages into the same mapping)."""
    parser, ref = lark_reference(text, start, keep)
    assert parser is None
    return str(_mapped(text, start, ref))


def _mapped(text: str, start: str, exc) -> GrammarError:
    """The GrammarError load_lark makes of a Lark error (by raising it where Lark's load would)."""
    saved = lf.compile_grammar

    def raising(*args, **kwargs):
        raise exc

    lf.compile_grammar = raising
    try:
        lf.load_lark(text, start, warn_conflicts=False)
    except GrammarError as err:
        return err
    finally:
        lf.compile_grammar = saved
    raise AssertionError("no error")


# ---- the grammars ---------------------------------------------------------------------------------------

def _kept(text: str) -> list:
    return read_directives(text, None).kept_terminals()


@pytest.mark.parametrize("name", ["json", "json_object", "python3.11", "python3.12", "python3.13", "python3.14", "go"])
def test_builtin_grammars(name):
    g = gm.Grammar.builtin(name)
    assert compare(g.text, g.start, _kept(g.text), name) == "ok"


def _lark_files():
    for path in sorted((lc.lark_package_dir() / "grammars").glob("*.lark")):
        yield f"lark/{path.name}", path
    for path in sorted((Path(__file__).parent / "data").rglob("*.lark")):
        yield f"tests/{path.relative_to(Path(__file__).parent / 'data')}", path
    for path in sorted((Path(__file__).parent.parent / "grammar").glob("*.lark")):
        yield f"grammar/{path.name}", path


# Start rules of the files that have no `start` (Lark's python.lark: file_input and the others).
STARTS = {"lark/python.lark": ["file_input", "single_input", "eval_input"]}


@pytest.mark.parametrize("name,path", list(_lark_files()), ids=[n for n, _ in _lark_files()])
def test_lark_files(name, path):
    """Every .lark file Lark ships, the tests' and the built-ins' files (as Lark(text) reads them, no
    directive applied): the same tables or the same refusal (common.lark: no rules at all)."""
    text = path.read_text(encoding="utf-8")
    starts = STARTS.get(name, ["start"])
    for start in starts:
        for keep in ((), ("_NEWLINE",), ("_NL",)) if "python" in path.name else ((),):
            compare(text, start, keep, f"{name}:{start}")


@pytest.mark.parametrize("name", sorted(lc.CASES))
def test_lark_compat_cases(name):
    case = lc.CASES[name]
    compare(case.grammar_text(), case.start, (), name)


CONFLICTS = {
    "dangling else": ('start: stmt\nstmt: "if" "x" stmt | "if" "x" stmt "else" stmt | "s"\n%ignore " "', "ok"),
    "reduce/reduce": ('start: a | b\na: "x"\nb: "x"', "refused"),
    "reduce/reduce, priorities": ('start: a | b\na.2: "x"\nb: "x"', "ok"),
    "reduce/reduce, equal priorities": ('start: a | b\na.2: "x"\nb.2: "x"', "refused"),
    "three-way collision": ('start: a | b | c\na: "x"\nb: "x"\nc: "x"', "refused"),
    "several collisions": ('start: a "y" | b "y" | c "z" | d "z"\na: "x"\nb: "x"\nc: "w"\nd: "w"', "refused"),
    "nullable after start": ('start: start n | "a"\nn: ', "ok"),
    # reads cycles through two transitions (n m n m ...): Lark's construction answers (gm_lalr.c)
    "nullable chain": ('start: n m start | "x"\nn: | "n"\nm: | "m"', "fallback"),
    "ambiguous expression": ('start: e\ne: e "+" e | e "*" e | "n"', "ok"),
    "empty language": ('start: "a" start', "ok"),
    "missing start": ('rule: "x"', "refused"),
    "undefined rule": ('start: missing', "refused"),
    "zero width": ('start: A\nA: /a*/', "refused"),
    "bad regex": ('start: A\nA: /x\\1/', "refused"),
    "unused declared": ('%declare INDENT\nstart: "a" INDENT?', "ok"),
    "unreachable cycle": ('start: "a"\nx: y "b"\ny: x "c"', "ok"),
}


@pytest.mark.parametrize("name", sorted(CONFLICTS))
def test_conflicts_and_refusals(name):
    text, outcome = CONFLICTS[name]
    assert compare(text, "start", (), name) == outcome


def test_conflict_warnings_text():
    text = CONFLICTS["dangling else"][0]
    with pytest.warns(lf.GrammarWarning, match=r"^g:2:1: shift/reduce conflict on ELSE in <stmt : IF X stmt>: "
                                               r"resolved as shift \(the longer match\)$"):
        lf.load_lark(text, "start", source="g")


def test_reduce_reduce_message():
    with pytest.raises(GrammarError, match=r"^grammar:2:1: reduce/reduce conflict: the same input can be "
                                           r"'a: X' or 'b: X' \(before \$END\)"):
        lf.load_lark(CONFLICTS["reduce/reduce"][0], "start")


def test_maskbench_schema_grammars():
    shared_corpus("jsonschema", "maskbench-Glaiveai2K")
    seen = Counter()
    for split in schema_bench.splits():
        for path in schema_bench.pick(split, MASKBENCH_PER_SPLIT, spread=True):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    text = schema_to_lark(json.loads(path.read_text())["schema"], timeout=10)
            except GrammarError:
                continue  # refused before any grammar
            seen[compare(text, "start", _kept(text), f"{split.name}/{path.name}")] += 1
    assert sum(seen.values()) >= MASKBENCH_MIN, seen


# ---- the C entry point on its own: bounds, allocation failures, the deadline ----------------------------

def _flat(text: str, start: str = "start"):
    return lf._flat_grammar(lf.compile_grammar(text, start))


def test_bad_arrays_refused():
    rules, terms, nonterms, (nt, nn, lhs, begin, rhs, prio) = _flat(CONFLICTS["dangling else"][0])
    root = len(rules) - 1
    good = dict(n_terms=nt, n_nonterms=nn, rule_lhs=lhs, rule_begin=begin, rhs=rhs, rule_prio=prio,
                root_rule=root, end_term=nt - 1)
    assert _core.lalr_tables(**good)["n_states"] > 0
    bad = [
        dict(rhs=np.where(rhs == rhs.max(), nt + nn, rhs)),          # a symbol past the last
        dict(rhs=np.where(rhs == 0, -1, rhs)),                        # a negative symbol
        dict(rhs=np.where(rhs == 0, nt - 1, rhs)),                    # $END in a rule
        dict(rule_lhs=np.where(lhs == 0, nn, lhs)),                   # a left side past the last
        dict(rule_begin=np.r_[begin[:-1], begin[-1] + 1]),            # past the symbols
        dict(rule_begin=np.r_[begin[:1], begin[2:3], begin[1:2], begin[3:]]),  # decreasing
        dict(root_rule=len(rules)),
        dict(root_rule=0),                                            # not a lone rule of one nonterminal
        dict(end_term=nt),
        dict(n_terms=0),
        dict(n_nonterms=0),
        dict(n_terms=2 ** 30, n_nonterms=2 ** 30),
    ]
    for change in bad:
        with pytest.raises(ValueError):
            _core.lalr_tables(**{**good, **change})
    with pytest.raises(ValueError):
        _core.lalr_tables(**{**good, "rule_begin": begin[:-1]})


def test_allocation_failures():
    """Each allocation of the build, failing in turn, raises MemoryError and leaks nothing."""
    rules, _, _, (nt, nn, lhs, begin, rhs, prio) = _flat(gm.Grammar.builtin("json").text)
    live = _core._live_blocks()
    n = 1
    while True:
        _core._fail_allocation_after(n)
        try:
            _core.lalr_tables(nt, nn, lhs, begin, rhs, prio, len(rules) - 1, nt - 1)
        except MemoryError:
            assert _core._live_blocks() == live, n
            n += 1
            continue
        finally:
            _core._fail_allocation_after(0)
        break
    assert n > 10 and _core._live_blocks() == live


def test_deadline():
    """A build past its deadline stops with LalrTimeout, and load_lark says build_timeout."""
    g = gm.Grammar.builtin("python")
    rules, _, _, (nt, nn, lhs, begin, rhs, prio) = _flat(g.text, g.start)
    with pytest.raises(_core.LalrTimeout):
        _core.lalr_tables(nt, nn, lhs, begin, rhs, prio, len(rules) - 1, nt - 1, deadline=1e-9)
    with pytest.raises(GrammarError, match="build_timeout"):
        lf.load_lark(g.text, g.start, warn_conflicts=False, build_timeout=1e-9)


# ---- random grammars: nullable rules, left and right recursion, priorities, conflicts ------------------

def random_grammar(rng) -> str:
    """A small random Lark grammar over the literals a..d and rules start, r0..r3 (some empty, some with a
    priority), every rule defined."""
    names = ["start"] + [f"r{i}" for i in range(rng.randint(1, 4))]
    lines = []
    for name in names:
        alternatives = []
        for _ in range(rng.randint(1, 3)):
            symbols = [rng.choice(names + ['"a"', '"b"', '"c"', '"d"']) for _ in range(rng.randint(0, 3))]
            alternatives.append(" ".join(symbols))
        priority = f".{rng.randint(1, 3)}" if name != "start" and rng.random() < 0.2 else ""
        lines.append(f"{name}{priority}: " + " | ".join(alternatives))
    return "\n".join(lines) + "\n"


def test_random_grammars():
    import random

    rng = random.Random(20261203)
    seen = Counter()
    for i in range(400):
        text = random_grammar(rng)
        seen[compare(text, "start", (), f"random #{i}:\n{text}")] += 1
    assert seen["ok"] >= 100 and seen["refused"] >= 50, seen
