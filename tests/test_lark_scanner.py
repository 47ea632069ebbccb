"""Lark's scanner rule (fsm/lark_scan.py): the first terminal in Lark's order that matches wins, not the
longest; a keyword a same-priority regex spells is that regex's lexeme, retyped. Judged against Lark on
every short text over the grammars' alphabet."""

from __future__ import annotations

import itertools

import lark
import pytest

import grammask as gm

from conftest import lark_accepts

# Each terminal is followed by its own mark, so a text parses only if it is lexed into the right terminals.
PRIORITY = r"""
start: (NAME "," | IF ";" | CONST "." )*
CONST.2: "pi" | "e"
IF: "if"
NAME: /[a-z]+/
"""
# "if"i is not embedded in NAME (its flags are not NAME's) but still retypes NAME's lexeme "If"; LONG, of
# a higher priority, is tried first.
FLAGS = r"""
start: (NAME "," | IF ";" | LONG "!")*
IF: "if"i
LONG.1: "ifp" | "iff"
NAME: /[a-z]+/i
"""
# A longer literal Lark tries before NAME where both match: "iffy" is LONG, "iff" is NAME.
ORDER = r"""
start: (NAME "," | LONG ";" | SHORT ".")*
LONG: "iffy"
SHORT: "f"
NAME: /[a-z]+/
"""

CASES = {"priority": (PRIORITY, "pie,;."), "flags": (FLAGS, "iIfp,;!"), "order": (ORDER, "ify,;.")}


@pytest.mark.parametrize("case", list(CASES))
@pytest.mark.parametrize("lexer", ["basic", "contextual"])
def test_every_short_text_as_lark(case, lexer):
    grammar_text, alphabet = CASES[case]
    parser = lark.Lark(grammar_text, parser="lalr", lexer=lexer)
    grammar = gm.Grammar.from_lark(grammar_text, lexer=lexer)
    texts = ["".join(p) for n in range(1, 6) for p in itertools.product(alphabet, repeat=n)]
    wrong = [t for t in texts if grammar.validate(t).ok != lark_accepts(parser, t)]
    assert sum(lark_accepts(parser, t) for t in texts) > 100
    assert not wrong, wrong[:20]


def test_priority_first_not_longest():
    g = gm.Grammar.from_lark(PRIORITY)
    assert not g.validate("pie,").ok and g.validate("pi.e.").ok  # `pie` is CONST CONST, never a NAME
    assert gm.Grammar(PRIORITY).validate("pie,").ok  # grammask's own longest-match rule: one NAME
