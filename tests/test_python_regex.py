"""Terminal regexes mean what Python's `re` means when Lark's lexer runs them (fsm/python_regex.py).

The oracle is `re` itself: a string is a lexeme of terminal T exactly when re.match(T, s) matches all of
s. Checked on the automaton directly, and end to end through Grammar.from_lark and its validator (the
byte-level lexer DFA the masks use)."""

from __future__ import annotations

import itertools
import random
import re

import lark
import pytest

import grammask as gm
from grammask.fsm.python_regex import RegexUnsupported, regex_dfa
from grammask.fsm.utf8 import MAX_CODEPOINT


def lexes_whole(regex: str, s: str) -> bool:
    m = re.match(regex, s)
    return m is not None and m.end() == len(s)


def strings(alphabet: str, max_len: int):
    for n in range(max_len + 1):
        for t in itertools.product(alphabet, repeat=n):
            yield "".join(t)


# ---- character classes: every code point, against re ------------------------------------------------

CLASSES = [r"\w", r"\W", r"\d", r"\D", r"\s", r"\S", r".", r"(?s:.)", r"[^\W\d]", r"[\w\-]", r"[^\s\d]",
           r"(?i)[a-z]", r"(?i)k", r"(?i)s", r"(?i)ß", r"(?i)[^k]", r"(?i:[\w])", r"(?a)\w", r"(?a:\s)", r"(?ai)k",
           r"[^a]", r"(?i)[^\W_]", r"\u00e9", r"(?i)\u0130"]


@pytest.mark.parametrize("cls", CLASSES)
def test_class_every_code_point(cls):
    dfa = regex_dfa(cls)
    accepting = [(lo, hi) for lo, hi, t in dfa.edges[0] if dfa.accept[t]]
    ours = bytearray(MAX_CODEPOINT + 1)
    for lo, hi in accepting:
        ours[lo:hi + 1] = b"\1" * (hi - lo + 1)
    oracle = re.compile(cls)
    wrong = [cp for cp in range(MAX_CODEPOINT + 1) if bool(ours[cp]) != bool(oracle.fullmatch(chr(cp)))]
    assert not wrong, f"{cls}: {len(wrong)} code points differ, e.g. {[hex(c) for c in wrong[:5]]}"


# ---- whole regexes on generated strings, against re ---------------------------------------------------

REGEXES = [
    (r'".*?"', '"ab'), (r"a|ab", "ab"), (r"ab|a", "ab"), (r"a+?", "ab"), (r"a*?b", "ab"), (r"(a|ab)(c|bcd)", "abcd"),
    (r"(?:a|ab)+", "ab"), (r"a{2,3}?", "a"), (r"a{1,3}b?", "ab"), (r"(ab|a)*?b", "ab"), (r"(?i:ab)c", "aAbBcC"),
    (r"(?i)abc|ABD", "abcdABCD"), (r"[^\W\d]\w*", "a1_é²\u0660 -"), (r"\d+(\.\d+)?", "1.\u0661"),
    (r"\s+", " \t\n\u00a0\u2028x"), (r"(?x) a  b # comment", "ab "), (r"(?s).+?x", "a\nx"), (r".+", "a\n"),
    (r'"(\\.|[^"\\])*"', '"\\ab'), (r'".*?(?<!\\)(\\\\)*?"', '"\\a'), (r"a(?=b)b", "ab"), (r"a(?!b).", "abc"),
    (r"a(?<=a)b|a(?<!a)c|ac", "abc"), (r"ab(?<!cb)c", "abc"), (r"[ab]x(?<=[a-z]x)y", "abxy"), (r"a\bb|a\b-", "ab-"),
    (r"a\B.", "ab-"), (r"(?:a|b(?=a))+c", "abc"), (r"a(?=bc|b)bc?", "abc"), (r"(a|)+b", "ab"),
    (r"c(?:b{0,2}?)+", "bc"), (r"(?:a|b??)*c?", "abc"), (r"(?:b*?)+a?", "ab"),  # an empty iteration ends a repeat
]


@pytest.mark.parametrize("regex,alphabet", REGEXES)
def test_regex_lexemes_are_re_matches(regex, alphabet):
    dfa = regex_dfa(regex)
    for s in strings(alphabet, 6 if len(alphabet) <= 4 else 4):
        assert dfa.matches(s) == lexes_whole(regex, s), (regex, s)


@pytest.mark.parametrize("regex,alphabet", [(r"a|ab", "ab"), (r"a+?", "a"), (r'".*?"', '"a'), (r"(?i)k", "kK\u212a")])
def test_fullmatch_is_the_set_language(regex, alphabet):
    dfa = regex_dfa(regex, fullmatch=True)
    for s in strings(alphabet, 5):
        assert dfa.matches(s) == (re.fullmatch(regex, s) is not None), (regex, s)


@pytest.mark.parametrize("regex,what", [
    (r"(a)\1", "backreference"), (r"(a)?(?(1)b|c)", "backreference"), (r"(?<=a)b", "before the start"),
    (r"a(?=bc)", "past the end"), (r"a$", "past the end"), (r"\ba", "before the start"),
    (r"^a", "start of the lexeme"), (r"(?>ab)", "atomic"), (r"a++", "atomic"),
])
def test_regex_without_exact_automaton(regex, what):
    with pytest.raises(RegexUnsupported, match=what):
        regex_dfa(regex)


@pytest.mark.parametrize("regex", [r"a(?=b)", r"a\b", r"a\Z"])
def test_a_lookahead_the_next_character_decides_is_a_conditional_match(regex):
    """(tests/test_lark_lookahead.py compares these with re.match); as an intersection (fullmatch) they are
    still refused."""
    assert regex_dfa(regex).has_conditions
    with pytest.raises(RegexUnsupported, match="past the end"):
        regex_dfa(regex, fullmatch=True)


def test_assertions_that_can_never_be_reached_inside_are_fine():
    # ^ after the first character never holds; the alternative is all that is left
    dfa = regex_dfa(r"a^b|ac")
    assert dfa.matches("ac") and not dfa.matches("ab")


# ---- end to end: Lark grammars, validator -------------------------------------------------------------

COMMON = "/".join(lark.__file__.split("/")[:-1]) + "/grammars/common.lark"
COMMON_TERMINALS = re.findall(r"^([A-Z][A-Z_]*)\s*:", open(COMMON, encoding="utf-8").read(), re.M)
ALPHABET = "0a.e+-\"\\ \t\n\r#/*_Zé"
SEEDS = ["/* a */", "/**/", "/* * / */", "# x", "// y", "-- z", '"a\\"b"', '"\\\\"', "1.5e+3", "-.5E-2", "12",
         "abc", "a_1", " \t\n", "\r\n\n", "\t "]


def lark_regex(text: str, name: str) -> str:
    parser = lark.Lark(text, parser="lalr")
    term = next(t for t in parser.terminals if t.name == name)
    return term.pattern.to_regexp()


@pytest.mark.parametrize("name", COMMON_TERMINALS)
def test_common_lark_terminals(name):
    text = f"start: {name}\n%import common.{name}\n"
    regex = lark_regex(text, name)
    g = gm.Grammar.from_lark(text)
    rng = random.Random(name)
    samples = set(strings("0a.e+\"\\", 3))
    samples |= {"".join(rng.choice(ALPHABET) for _ in range(rng.randint(1, 10))) for _ in range(2500)}
    samples |= set(SEEDS)
    # mutations of texts the regex lexes, so that the accepted side is well covered too
    base = [m.group() for s in list(samples) for m in [re.match(regex, s)] if m and m.group()]
    for s in base[:400]:
        i = rng.randint(0, len(s))
        samples.add(s[:i] + rng.choice(ALPHABET) + s[i:])
        samples.add(s + rng.choice(ALPHABET) + s)
    accepted = 0
    for s in sorted(samples):
        want = lexes_whole(regex, s)
        accepted += want
        assert g.validate(s).ok == want, (name, regex, s)
    assert accepted > 0


def test_escaped_string_from_lark():
    g = gm.Grammar.from_lark('start: ESCAPED_STRING\n%import common.ESCAPED_STRING\n')
    assert g.validate('"a\\"b"').ok
    assert g.validate('"a\\\\"').ok
    assert not g.validate('"a\\\\"b"').ok
    assert not g.validate('"a\\"').ok
    assert g.validate('"a\\"').prefix_ok


def test_unicode_identifier_regex_from_lark():
    g = gm.Grammar.from_lark(r'start: NAME' '\n' r'NAME: /[^\W\d]\w*/' '\n')
    for s in ["café", "π", "名前", "x²", "_1"]:
        assert g.validate(s).ok == lexes_whole(r"[^\W\d]\w*", s), s
    assert not g.validate("1a").ok


def test_alternation_order_from_lark():
    g = gm.Grammar.from_lark('start: A+\nA: /a|ab/\nB: "b"\n')
    assert g.validate("aa").ok and not g.validate("ab").ok


def test_backreference_is_a_grammar_error_naming_the_terminal():
    with pytest.raises(gm.GrammarError, match=r"QUOTED.*backreference.*not regular") as info:
        gm.Grammar.from_lark('start: QUOTED\nQUOTED: /(["\'])x\\1/\n')
    assert info.value.line == 2


def test_lookahead_past_the_lexeme_is_a_grammar_error():
    """Unless the next byte decides it (tests/test_lark_lookahead.py)."""
    with pytest.raises(gm.GrammarError, match=r"KEY.*past the end"):
        gm.Grammar.from_lark('start: KEY ":"\nKEY: /\\w+(?=::)/\n')
    g = gm.Grammar.from_lark('start: KEY ":"\nKEY: /\\w+(?=:)/\n')
    assert g.validate("ab:").ok and not g.validate("ab").ok


def test_case_insensitive_literal_folds_as_re_does():
    g = gm.Grammar.from_lark('start: SEL\nSEL: "select"i\n')
    regex = lark_regex('start: SEL\nSEL: "select"i\n', "SEL")
    for s in ["select", "SeLeCt", "\u017felect", "SELEC\u212a", "selecT", "selec", "sel\u0435ct"]:
        assert g.validate(s).ok == lexes_whole(regex, s), s


def test_fullmatch_directive_reads_the_regex_as_a_set():
    lark_meaning = gm.Grammar.from_lark("start: N\nN: /[0-9]|[1-9][0-9]/\n")
    as_set = gm.Grammar.from_lark("start: N\nN: /[0-9]|[1-9][0-9]/\n// grammask: fullmatch N\n")
    assert lark_meaning.validate("7").ok and not lark_meaning.validate("12").ok
    assert as_set.validate("7").ok and as_set.validate("12").ok
    assert gm.Grammar.from_regex("a|ab").validate("ab").ok  # from_regex: the strings the whole pattern matches
