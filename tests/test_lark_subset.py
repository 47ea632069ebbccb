"""grammar/lark_subset.py against Lark's own grammar compiler.

The oracle is `lark.load_grammar.load_grammar(text).compile([start], keep)`, what grammask used for every
grammar before: for each text the subset reads, the terminals (names, order, pattern type, value, flags,
priority, widths) and the rules (origin, symbols with their filter_out, order, alias, options) must be equal; for
each text outside the subset it must answer None, and grammask then compiles with Lark (its errors too).
"""

from __future__ import annotations

import json
import random
import warnings

import pytest

from bench import schema_bench
from grammask.grammar import lark_frontend, lark_subset
from grammask.grammar.errors import GrammarError
from grammask.grammar.json_schema import schema_to_lark
from grammask.grammar.regex import regex_to_lark

from conftest import shared_corpus

lark = pytest.importorskip("lark")


def lark_compiled(text: str, start: str = "start", keep=()):
    from lark.load_grammar import load_grammar

    grammar, _ = load_grammar(text, "<string>", [], False)
    return grammar.compile([start], set(keep))


def summary(compiled):
    terminals, rules, ignore = compiled
    options = lambda o: None if o is None else (  # noqa: E731
        o.keep_all_tokens, o.expand1, o.priority, o.template_source, o.empty_indices)
    # (the widths too: lark_subset gives a plain literal's without sre_parse; Lark's order and checks read them)
    return ([(t.name, type(t.pattern).__name__, t.pattern.value, tuple(t.pattern.flags), t.priority,
              t.pattern.min_width, t.pattern.max_width) for t in terminals],
            [(r.origin.name, [(s.name, s.is_term, getattr(s, "filter_out", None)) for s in r.expansion], r.order,
              r.alias, options(r.options)) for r in rules],
            list(ignore))


def assert_as_lark(text: str, start: str = "start", keep=()) -> None:
    ours = lark_subset.compile_subset(text, start, keep)
    assert ours is not None, f"outside the subset:\n{text}"
    assert summary(ours) == summary(lark_compiled(text, start, keep)), text


SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "string"}, "b": {"type": "integer", "minimum": 3}},
     "required": ["a"]},
    {"type": "array", "items": {"enum": ["x", 1, True, None, {"k": [1, 2]}]}, "minItems": 1},
    {"anyOf": [{"type": "string", "pattern": "^[a-z]+/[0-9]$"}, {"type": "number"}, {"type": "boolean"}]},
    {"type": "object", "additionalProperties": {"type": "string", "format": "date-time"}},
    {"type": "string", "maxLength": 5},
    {},
    {"type": "object", "properties": {"name": {"const": "é\t\"q\"/\\"}}},
]


@pytest.mark.parametrize("compact", [False, True])
@pytest.mark.parametrize("i", range(len(SCHEMAS)))
def test_schema_grammars(i, compact):
    assert_as_lark(schema_to_lark(SCHEMAS[i], compact=compact))


@pytest.mark.parametrize("pattern", [r"[a-z]+\d{2,3}", r"a/b|\u00e9+", r"(ab)*c?\\\t", r"\/x[^/]"])
def test_regex_grammars(pattern):
    assert_as_lark(regex_to_lark(pattern))


def test_maskbench_schema_grammars():
    shared_corpus("jsonschema", "maskbench-Glaiveai2K")
    seen = 0
    for split in schema_bench.splits():
        for path in schema_bench.pick(split, 30, spread=True):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    text = schema_to_lark(json.loads(path.read_text())["schema"], timeout=10)
            except GrammarError:
                continue
            assert_as_lark(text)
            seen += 1
    assert seen >= 150


# Lark's EBNF expansion, anonymous terminals and filtering, each on its own.
CASES = {
    "optional twice": 'start: A? b A?\nb: B\nA: /a/\nB: /b/\n',
    "shared repeat": 'start: x (A b)* | y\nx: (A b)* B\ny: b+ (A b)+\nb: B\nA: /a/\nB: /b/\n',
    "star and plus of one expression": 'start: b* A b+\nb: B\nA: /a/\nB: /b/\n',
    "one-symbol group": 'start: (b)* A b*\nb: B\nA: /a/\nB: /b/\n',
    "literals": 'start: "true" | "false" x | "null"\nx: "true" A "if"\nA: /a/\n',
    "punctuation literal": 'start: "," A\nA: /a/\n',
    "duplicate alternatives": 'start: A | B | A\n    | A B? | A\nA: /a/\nB: /b/\n',
    "unused rules and terminals": 'start: a\na: A\nb: B c\nc: b | C\nA: /a/\nB: /b/\nC: /c/\nD: /d/\n',
    "self recursion only": 'start: A\nloop: loop A\nA: /a/\n',
    "priorities": 'start: A B C\nA.2: /a/\nB.-1: /b/\nC.0: /c/\n',
    "escapes": 'start: A B C D E\nA: /\\t\\n[\\u00e9\\x41]/\nB: /a\\/b/\nC: /\\\\d\\"/\nD: /it\'s/\nE: /\\d+\\.\\w/\n',
    "comments and blank lines": '// a comment\nstart: A\n\n   // indented comment\nA: /a/\n// grammask: keep A\n',
    "empty alternative": 'start: A b\nb: B\n    | \nA: /a/\nB: /b/\n',
    "continuations": 'start: A\n    | B\n\t| start A\nA: /a/\nB: /b/\n',
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_cases(name):
    assert_as_lark(CASES[name])


def test_kept_terminals():
    text = 'start: A\nA: /a/\nNL: /\\n/\nX: /x/\n'
    assert_as_lark(text, keep=["NL"])
    assert [t.name for t in lark_subset.compile_subset(text, "start", ["NL"])[0]] == ["A", "NL"]


def test_other_start():
    assert_as_lark('start: A\nother: B other?\nA: /a/\nB: /b/\n', start="other")


OUTSIDE = {
    "import": '%import common.WS\nstart: WS\n',
    "ignore": 'start: A\nA: /a/\nWS: / /\n%ignore WS\n',
    "declare": '%declare X\nstart: A\nA: /a/\n',
    "alias": 'start: A -> a\nA: /a/\n',
    "inline rule": 'start: _a\n_a: A\nA: /a/\n',
    "expand1 rule": '?start: A\nA: /a/\n',
    "keep tokens rule": '!start: A\nA: /a/\n',
    "rule priority": 'start.2: A\nA: /a/\n',
    "template": 'start: t{A}\nt{x}: x\nA: /a/\n',
    "maybe brackets": 'start: [A] B\nA: /a/\nB: /b/\n',
    "alternatives in a group": 'start: (A | B)*\nA: /a/\nB: /b/\n',
    "nested group": 'start: ((A B)* B)*\nA: /a/\nB: /b/\n',
    "group without operator": 'start: (A B)\nA: /a/\nB: /b/\n',
    "literal with operator": 'start: "a"? B\nB: /b/\n',
    "literal in a group": 'start: ("a" B)*\nB: /b/\n',
    "literal named __ANON": 'start: "a b" B\nB: /b/\n',
    "literal name taken": 'start: "a" A\nA: /x/\n',
    "string terminal": 'start: A\nA: "a"\n',
    "terminal from terminals": 'start: A\nA: B B\nB: /b/\n',
    "regex flags": 'start: A\nA: /a/i\n',
    "undefined rule": 'start: a\nA: /a/\n',
    "undefined terminal": 'start: A\n',
    "defined twice": 'start: A\nstart: A\nA: /a/\n',
    "terminal defined twice": 'start: A\nA: /a/\nA: /b/\n',
    "no start rule": 'other: A\nA: /a/\n',
    "trailing comment": 'start: A // note\nA: /a/\n',
    "hash comment": '# note\nstart: A\nA: /a/\n',
    "bad escape": 'start: A\nA: /a\\/\n',
    "range": 'start: A\nA: "a".."z"\n',
    "spaced colon": 'start : A\nA: /a/\n',
    "question mark before a rule name": 'start: A?b\nb: B\nA: /a/\nB: /b/\n',
    "crlf": 'start: A\r\nA: /a/\r\n',
}


@pytest.mark.parametrize("name", sorted(OUTSIDE))
def test_outside_the_subset(name):
    assert lark_subset.compile_subset(OUTSIDE[name], "start") is None


def test_errors_still_lark_s():
    """Texts outside the subset reach Lark, with Lark's error (and its place) for a wrong one."""
    for text in (OUTSIDE["undefined terminal"], OUTSIDE["defined twice"], OUTSIDE["bad escape"]):
        with pytest.raises(GrammarError):
            lark_frontend.load_lark(text, "start")


def test_compile_grammar_uses_the_subset(monkeypatch):
    import lark.load_grammar

    def refuse(*args, **kwargs):
        raise AssertionError("Lark's grammar parser was used")

    monkeypatch.setattr(lark.load_grammar, "load_grammar", refuse)
    compiled = lark_frontend.compile_grammar(schema_to_lark(SCHEMAS[0]), "start")
    assert {t.name for t in compiled.terminals} >= {"LB", "RB", "COLON"}
    with pytest.raises(AssertionError):
        lark_frontend.compile_grammar(OUTSIDE["alias"], "start")


def _random_grammar(rng: random.Random) -> str:
    rules = [f"r{i}" for i in range(rng.randint(1, 5))]
    terms = [f"T{i}" for i in range(rng.randint(1, 4))]

    def symbol():
        return rng.choice(rules + terms + terms)

    lines = []
    for name in ["start"] + rules:
        alternatives = []
        for _ in range(rng.randint(1, 4)):
            items = []
            for _ in range(rng.randint(0, 4)):
                kind = rng.random()
                if kind < 0.55:
                    items.append(symbol())
                elif kind < 0.75:
                    items.append(symbol() + rng.choice("?*+"))
                elif kind < 0.85:
                    items.append(rng.choice(['"true"', '"false"', '","', '"if"']))
                else:
                    items.append("(" + " ".join(symbol() for _ in range(rng.randint(1, 3))) + ")" + rng.choice("?*+"))
            alternatives.append(" ".join(items))
        joiner = rng.choice([" | ", "\n    | "])
        lines.append(f"{name}: " + joiner.join(alternatives))
    for t in terms:
        prio = rng.choice(["", ".2", ".-1"])
        lines.append(f"{t}{prio}: /{t.lower()}[0-9]*/")
    rng.shuffle(lines)
    return "\n".join(lines) + "\n"


def test_random_grammars():
    rng = random.Random(20261203)
    checked = 0
    for _ in range(400):
        text = _random_grammar(rng)
        ours = lark_subset.compile_subset(text, "start")
        try:
            theirs = lark_compiled(text)
        except lark.exceptions.LarkError:  # e.g. an empty rule twice: the subset must not read it either
            assert ours is None, text
            continue
        assert ours is not None, text
        assert summary(ours) == summary(theirs), text
        checked += 1
    assert checked >= 300
