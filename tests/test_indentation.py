"""The indenter: Python's NEWLINE / INDENT / DEDENT rules in the lexer state, checked against CPython.

Uses tests/data/mini_python.lark, a small Python subset with the indent directive, so that every text
it accepts is Python and CPython's ast.parse is the oracle on the rules the indenter implements.
"""

from __future__ import annotations

import ast
import random
from pathlib import Path

import numpy as np
import pytest

import grammask as gm
from conftest import BOTH_KINDS, SENTENCEPIECE, load_tokenizer, tokenizer_info, walk_text, word_walk

GRAMMAR = Path(__file__).parent / "data" / "mini_python.lark"

PROGRAMS = [
    "x = 1\n", "x = 1", "", "\n\n", "# only a comment\n", "if x:\n    y = 1\nelse:\n    y = 2\n",
    "def f(a, b):\n    if a:\n        return b\n    return [a,\n  b]\n", "while x:\n    pass\nelse: pass\n",
    "x = (1 +\n2)\n", "x = 1 + \\\n  2\n", "if x:\n    # comment\n\n    y = 1\n# end\n", "def f(): return\n",
    "if x:\n    pass\n    \n", "x = 1;", "x = 1; y = 2\n", "if x: pass\n  \n", "x = [\n1,\n]\n",
    "def g(x):\n\tif x:\n\t\treturn f(x, [1, 2])\n\treturn 0\n\n\nz = g(3)\n",
    "if a:\n  if b:\n    if c:\n      pass\n  elif d:\n    pass\nelse:\n  pass\n",
    # invalid: unexpected indent, expected indent, dedent to no level, tabs/spaces, unclosed
    "  x = 1\n", "if x:\ny = 1\n", "if x:\n    y = 1\n  z = 2\n", "if x:\n\ty = 1\n        z = 2\n",
    "if x:\n        a\n\tb\n", "if x:\n\ta\n        b\n", "if x:\n  if y:\n    pass\n z = 1\n", "if x:\n",
    "def f(\n", "f(x\n", "x = 1\n  \n y = 2\n", "if x: pass\n    y = 1\n",
    # a backslash continuation may not end the text; anything after it may
    "x = 1 \\\n", "\\\n", "x = 1\n\\\n", "x = 1 \\\n\\\n", "x = 1 \\\n   ", "x = 1 \\\n# c",
    "\\\n\n", "x = 1 \\\n\\\n\n",
]


def cpython_ok(text: str) -> bool:
    try:
        ast.parse(text)
        return True
    except SyntaxError:
        return False


@pytest.fixture(scope="module")
def grammar():
    return gm.Grammar.from_file(GRAMMAR)


@pytest.mark.parametrize("text", PROGRAMS)
def test_validator_agrees_with_cpython(grammar, text):
    assert grammar.validate(text).ok == cpython_ok(text), grammar.validate(text).message


def _mutations(text: str, rng: random.Random, n: int):
    """Indentation-only edits (the statements stay in the subset): re-indent, dedent, tab, blank lines."""
    lines = text.split("\n")
    for _ in range(n):
        ls = list(lines)
        for _ in range(rng.randint(1, 2)):
            i = rng.randrange(len(ls))
            kind = rng.randrange(5)
            if kind == 0:
                ls[i] = " " * rng.choice([1, 2, 4, 8]) + ls[i]
            elif kind == 1:
                ls[i] = ls[i].lstrip(" \t")
            elif kind == 2:
                ls[i] = "\t" + ls[i]
            elif kind == 3 and i:
                ls[i] = ls[i - 1][: len(ls[i - 1]) - len(ls[i - 1].lstrip())] + ls[i].lstrip()
            else:
                ls.insert(i, rng.choice(["", "   ", "\t# note", "  # x"]))
        yield "\n".join(ls)


def test_indentation_mutations_agree_with_cpython(grammar):
    rng = random.Random(7)
    checked = 0
    for text in PROGRAMS[:19]:
        for mutated in _mutations(text, rng, 40):
            assert grammar.validate(mutated).ok == cpython_ok(mutated), repr(mutated)
            checked += 1
    assert checked == 19 * 40


@pytest.mark.parametrize("family", BOTH_KINDS)
def test_every_token_allowed_and_walks_parse(grammar, family, cache_dir):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    matcher = gm.compile(grammar, info, cache_dir=cache_dir).matcher()
    for text in PROGRAMS[:19]:
        walk_text(matcher, tok, text)
        assert matcher.is_accepting() and info.stop_token_ids[0] in matcher.allowed_token_ids()
    rng = np.random.default_rng(0)
    # Walks use the subset's own words and whitespace (and comments), so that they write blocks.
    words = {b"", b"if", b"x", b":", b"pass", b"else", b"elif", b"def", b"f", b"(", b")", b"while", b"return",
             b"=", b"1", b"y", b",", b"[", b"]", b"#", b"+"}
    ended = indented = 0
    for _ in range(200):
        data, stopped = word_walk(matcher, info, words, rng, max_steps=100, stop_from=25)
        if stopped:
            text = data.decode("utf-8")
            ended += 1
            indented += "\n " in text or "\n\t" in text
            assert cpython_ok(text), text
        else:
            assert grammar.validate(data).prefix_ok
    assert ended >= 100 and indented >= 20, (ended, indented)


@pytest.mark.parametrize("family", [SENTENCEPIECE, "llama2"])
def test_sentencepiece_leading_space_is_not_an_indent(grammar, family):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    matcher = gm.compile(grammar, info, cache_dir=False).matcher()
    ids = tok.encode("x = 1\n", add_special_tokens=False)
    assert tok.convert_ids_to_tokens(ids[0]).startswith("\u2581")  # "▁x": decode() drops the space
    assert matcher.accept_tokens(ids) and matcher.is_accepting()
