"""Long repetitions built as chains (fsm/regex_repeat.py) mean what the subset construction means.

The oracle is python_regex's general builder (the subset construction over the unrolled NFA, itself
checked against `re` in test_python_regex.py) on the same regex with fullmatch=True: the two automata
must accept the same strings (their product, walked here, never separates them). Checked on the string
regexes the JSON Schema translator writes for length bounds (and every fullmatch regex MaskBench's
length-bounded schemas lead to), on random regexes of that shape, and end to end: grammars and lexers
built with and without the chains are identical."""

from __future__ import annotations

import json
import random
import re

import numpy as np
import pytest

import grammask as gm
from grammask.fsm import lexer as lexer_module
from grammask.fsm import regex_repeat
from grammask.fsm.python_regex import MAX_DFA_STATES, RegexUnsupported, _Builder, parse, regex_dfa
from grammask.fsm.regex_repeat import structural_dfa
from grammask.grammar.json_schema.string_lengths import ANY_CHAR, EXACT_LENGTH, LENGTH_CAP, length_content

from conftest import shared_corpus


def general_dfa(regex: str, max_states: int = MAX_DFA_STATES):
    nfa, start = parse(regex)
    return _Builder(nfa, start, True).build(max_states)


def _live(dfa) -> set:
    """States from which an accepting (or conditionally accepting) state can be reached."""
    back = [[] for _ in range(dfa.n_states)]
    for q, row in enumerate(dfa.edges):
        for _, _, t in row:
            back[t].append(q)
    live = {q for q in range(dfa.n_states) if dfa.accept[q] or dfa.cond[q] is not None}
    todo = list(live)
    while todo:
        for p in back[todo.pop()]:
            if p not in live:
                live.add(p)
                todo.append(p)
    return live


def same_language(a, b) -> bool:
    """Whether two automata accept the same strings (with the same conditions): their product, walked from
    the start pair, never pairs a state that accepts (or still can) with one that does not."""
    live_a, live_b = _live(a), _live(b)

    def label(dfa, live, q):
        return None if q is None or q not in live else (bool(dfa.accept[q]), dfa.cond[q])

    seen, todo = {(0, 0)}, [(0, 0)]
    while todo:
        p, q = todo.pop()
        if label(a, live_a, p) != label(b, live_b, q):
            return False
        if p is None or q is None:
            continue  # one side is dead, and so (same labels) is the other
        row_a = [(lo, hi, t) for lo, hi, t in a.edges[p] if t in live_a]
        row_b = [(lo, hi, t) for lo, hi, t in b.edges[q] if t in live_b]
        points = sorted({lo for lo, _, _ in row_a + row_b} | {hi + 1 for _, hi, _ in row_a + row_b})
        for lo in points:
            pair = (_target(row_a, lo), _target(row_b, lo))
            if pair not in seen:
                seen.add(pair)
                todo.append(pair)
    return True


def _target(row, cp):
    for lo, hi, t in row:
        if lo <= cp <= hi:
            return t
    return None


def assert_same_as_general(regex: str, must_apply: bool = True):
    fast = structural_dfa(regex)
    if fast is None:
        assert not must_apply, f"the chain construction does not apply to /{regex}/"
        return False
    assert not fast.has_conditions
    assert same_language(fast, general_dfa(regex)), f"/{regex}/: the chain's language differs"
    assert regex_dfa(regex, fullmatch=True) is not None
    return True


def string_regex(lo: int, hi) -> str:
    return f'"{length_content(lo, hi)}"'


# ---- the translator's length-bounded strings ------------------------------------------------------------

LENGTHS = [(lo, hi) for hi in (4, 5, 9, 64, LENGTH_CAP) for lo in (0, 1, 2, 3, 4, 5, 50) if lo <= hi]


@pytest.mark.parametrize("lo,hi", LENGTHS)
def test_length_bounded_strings(lo, hi):
    assert_same_as_general(string_regex(lo, hi), must_apply=hi >= regex_repeat.CHAIN_MIN_COPIES)


@pytest.mark.parametrize("lo", [7, 8, 20])
def test_length_without_upper_bound(lo):
    assert_same_as_general(string_regex(lo, None))


def test_exact_lengths_left_to_the_general_builder():
    # up to EXACT_LENGTH every spelling of every character: no long repeat, the subset construction's
    assert structural_dfa(string_regex(0, EXACT_LENGTH)) is None


# ---- shapes and conditions ------------------------------------------------------------------------------

@pytest.mark.parametrize("regex", [
    r"(?:ab|c){3,12}x(?:ab|c){9}",     # two chains, a prefix-free middle
    r"(?:ab|c){9,}x",                   # unbounded: the count saturates
    r"x(?:ab|c){0,9}",                  # nothing after the repeat
    r"(?:(?:ab)*c){8,10}d",             # the unit's start is re-entered inside it
    r"[0-9]{8}[0-9\-]",                 # lo == hi: no boundary offers both, first characters may overlap
    r"(?i:[a-j]){8,9}Z",                # flags reach the unit and the parts around it
    r"[a-z]+-[0-9]{8,9}",               # a short unbounded repeat before a long one
    r"(?:ab){2,9}?c",                   # lazy: the same set language
    r"(?:a{8}b){8}",                    # a chain inside a unit
    r"q(?:(?:a|bc){0,2}|(?:d|ef){8,12})z",  # alternatives, each followed by the rest
    r"(?:[a-c]|\\[nt]|\\u[0-9a-f]{2}){1,20}",
    r"(?:x(?:ab|c){8}|y){2}z",          # a short repeat of a unit with a chain inside
])
def test_shapes(regex):
    assert_same_as_general(regex)


@pytest.mark.parametrize("regex", [
    r"(?:ab?){8,9}",          # the unit is not prefix-free (a, ab)
    r"(?:a|ab){8,9}c",        # the same
    r"[a-z]{1,12}[a-z0-9]",   # a boundary where another unit and the rest both start with a letter
    r"(?:a|ab)[0-9]{8,9}",    # the prefix is not prefix-free
    r"(?:x(?:ab|c){8,9}|y){2}z",  # the unit is not prefix-free (xcccccccc, xccccccccc)
    r"(?i:[a-z]){8,9}K",      # K (and the Kelvin sign) is a letter under flag i: a boundary offers it twice
    r"(?=a)[a-z]{8,9}",       # a look-around
    r"^[a-z]{8,9}$",          # anchors
    r"(a)[a-z]{8,9}\1",       # a backreference
    r"[a-z]{2,5}",            # no long repeat
])
def test_not_applicable(regex):
    assert structural_dfa(regex) is None
    # regex_dfa builds it with the subset construction, as before
    try:
        expected = general_dfa(regex)
    except RegexUnsupported:
        with pytest.raises(RegexUnsupported):
            regex_dfa(regex, fullmatch=True)
        return
    assert same_language(regex_dfa(regex, fullmatch=True), expected)


def test_leftmost_first_lexing_untouched():
    # fullmatch=False (Lark's re.match lexemes) never takes the chain: /(?:a|ab){8}/ lexes differently
    regex = r'"(?:[ -!#-~]){4,20}"'
    lexing = regex_dfa(regex)
    nfa, start = parse(regex)
    general = _Builder(nfa, start, False).build(MAX_DFA_STATES)
    assert (lexing.edges, lexing.accept, lexing.cond) == (general.edges, general.accept, general.cond)


def test_state_limit():
    regex = string_regex(50, LENGTH_CAP)
    with pytest.raises(RegexUnsupported, match="more than 100 states"):
        structural_dfa(regex, max_states=100)
    # regex_dfa leaves the refusal to the general builder, which refuses it the same way
    with pytest.raises(RegexUnsupported, match="more than 100 states"):
        regex_dfa(regex, fullmatch=True, max_states=100)


def test_nfa_node_limit_left_to_the_general_builder():
    regex = f"(?:{ANY_CHAR}){{1,5000}}"
    assert structural_dfa(regex) is None
    with pytest.raises(RegexUnsupported, match="automaton nodes"):
        regex_dfa(regex, fullmatch=True)


# ---- random regexes of the translator's shape ----------------------------------------------------------

_UNITS = [r"[a-c]", r"[ab]|c", r"\\[nt]|[a-c]", r"\\u[0-9a-f]{2}|[a-f]", r"ab|c", r"a|ab", r"ab?", r"[a-c]d?e",
          r"(?:ab)*c", r"x[a-c]{2}", r"\\.|[^\\\"]", r"[0-9]", r"(?i:[a-c])", r"a|b|\\(?:[ab]|u[ab]{2})"]
_AROUND = ["", '"', "x", "a", "[ab]", "(?:xy|z)", "[0-9]?", "(?:a|ab)", "\\\\"]


def _random_repeat(rng: random.Random) -> str:
    lo = rng.choice([0, 0, 1, 2, 3, 4, 8, 9])
    hi = rng.choice([None, lo, lo + 1, lo + 3, max(lo, 8), lo + 9, 20])
    lazy = "?" if rng.random() < 0.2 else ""
    bounds = f"{{{lo},}}" if hi is None else f"{{{lo},{hi}}}"
    return f"(?:{rng.choice(_UNITS)}){bounds}{lazy}"


def _random_regex(rng: random.Random) -> str:
    if rng.random() < 0.4:
        middle = f"(?:{_random_repeat(rng)}|{_random_repeat(rng)})"
    else:
        middle = _random_repeat(rng)
    if rng.random() < 0.3:
        middle += rng.choice(_AROUND) + _random_repeat(rng)
    return rng.choice(_AROUND) + middle + rng.choice(_AROUND)


def test_random_regexes_against_the_general_builder():
    rng = random.Random(20261203)
    tried = applied = 0
    while tried < 400:
        regex = _random_regex(rng)
        try:
            general = general_dfa(regex, 20_000)
        except RegexUnsupported:
            continue
        tried += 1
        fast = structural_dfa(regex)
        if fast is None:
            continue
        applied += 1
        assert same_language(fast, general), f"/{regex}/: the chain's language differs"
        # and the strings re.fullmatch takes, on a sample
        for _ in range(20):
            s = "".join(rng.choice('abcxyz"\\nut0f') for _ in range(rng.randrange(12)))
            assert fast.matches(s) == (re.fullmatch(regex, s) is not None), (regex, s)
    assert applied >= 80, f"the chain applied to only {applied} of {tried} random regexes"


# ---- MaskBench: every fullmatch regex of the length-bounded schemas, and their grammars --------------------

def _length_bounded_schemas() -> list:
    root = shared_corpus("jsonschema")
    out = []
    for path in sorted(root.glob("maskbench-*/*.json")):
        text = path.read_text(encoding="utf-8")
        if '"maxLength"' in text or '"minLength"' in text:
            out.append(path)
    return out


def _uncached(monkeypatch):
    """Grammars built from scratch: no table cache on disk, no automata kept from earlier builds."""
    monkeypatch.setenv("GRAMMASK_CACHE_DIR", "")
    lexer_module._cached_regex_dfa.cache_clear()
    lexer_module._cached_fragment.cache_clear()
    regex_repeat._subset_cache.clear()


def test_maskbench_length_bounded_regexes(monkeypatch):
    schemas = _length_bounded_schemas()
    seen: set = set()
    real = lexer_module.regex_dfa

    def recording(regex, fullmatch=False, max_states=MAX_DFA_STATES):
        if fullmatch:
            seen.add(regex)
        return real(regex, fullmatch=fullmatch, max_states=max_states)

    _uncached(monkeypatch)
    monkeypatch.setattr(lexer_module, "regex_dfa", recording)
    for path in schemas:
        try:
            gm.Grammar.from_json_schema(json.loads(path.read_text(encoding="utf-8"))["schema"])
        except gm.GrammarError:
            pass  # refused either way (test_maskbench_grammars_unchanged compares refusals too)
    monkeypatch.undo()
    applied = sum(assert_same_as_general(regex, must_apply=False) for regex in sorted(seen))
    # the translator's bounded strings (printable units up to LENGTH_CAP) all take the chain
    assert applied >= 100, f"the chain applied to only {applied} of {len(seen)} regexes"


# A sample for the end-to-end check (scripts/check_regex_repeat.py runs it over every MaskBench schema):
# the slowest length-bounded schemas of the time-to-first-mask bench, and others spread over the splits.
_SAMPLE = ["Github_easy/o9773.json", "Snowplow/sp_0_Normalized.json", "Snowplow/sp_307_Normalized.json",
           "Snowplow/sp_19_Normalized.json", "Snowplow/sp_344_Normalized.json"]


def _build(path):
    try:
        g = gm.Grammar.from_json_schema(json.loads(path.read_text(encoding="utf-8"))["schema"])
    except gm.GrammarError as exc:
        return ("refused", str(exc))
    lex = g.tables.lexer
    arrays = {name: np.asarray(getattr(lex, name)).tolist() if getattr(lex, name) is not None else None
              for name in ("trans", "winner", "final", "cset", "mode_start", "lex_mode", "cond", "cond_rows")}
    return g.text, [(t.name, t.regex) for t in g.tables.terminals], [list(c) for c in lex.csets], arrays


def test_maskbench_grammars_unchanged(monkeypatch):
    root = shared_corpus("jsonschema")
    paths = [root / f"maskbench-{name}" for name in _SAMPLE if (root / f"maskbench-{name}").exists()]
    paths += _length_bounded_schemas()[::60]
    assert paths
    _uncached(monkeypatch)
    with_chains = [_build(p) for p in paths]
    _uncached(monkeypatch)
    monkeypatch.setattr(regex_repeat, "structural_dfa", lambda regex, max_states=MAX_DFA_STATES: None)
    without = [_build(p) for p in paths]
    for path, a, b in zip(paths, with_chains, without):
        assert a == b, f"{path.name}: the grammar or lexer changed"
