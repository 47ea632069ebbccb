"""Go's automatic semicolons in the lexer state, checked against the Go toolchain's parser (gofmt -e).

Uses tests/data/mini_go.lark, a small Go subset with the semicolons directive; every text it accepts
is Go, so gofmt is the oracle on where line ends end statements.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import grammask as gm
from conftest import BOTH_KINDS, BYTE_LEVEL, load_tokenizer, tokenizer_info, walk_text, word_walk

GRAMMAR = Path(__file__).parent / "data" / "mini_go.lark"
GOFMT = shutil.which("gofmt")

PROGRAMS = [
    "package main\n", "package main", 'package main\nimport "fmt"\nfunc main() {\n\tfmt(1)\n}\n',
    "package main\nfunc f(a int) int {\n\tif a < 1 {\n\t\treturn 0\n\t} else {\n\t\treturn a\n\t}\n}\n",
    "package main\nfunc f() { x := 1; x++ }\n", "package main\nfunc f() {\n\tx := 1 +\n\t\t2\n}\n",
    "package main\nfunc f() {\n\tx := 1\n\t+ 2\n}\n", "package main\nfunc f() {\n\tfor {\n\t\tbreak\n\t}\n} // c\n",
    "package main\nfunc f() { return }", "package main\nfunc f() {\n\tg(1,\n\t\t2)\n}\n",
    "package main; func f() {}", "package main\n\n\nfunc f() {}\n\n", "package main\nfunc f() {\n\treturn\n\t1\n}\n",
    'package main\n\nimport "os"\n\nfunc g(a int, b int) int {\n\tfor a < b {\n\t\ta++ // step\n\t}\n'
    '\tif a == b && b < 3 {\n\t\treturn g(a, b-1)\n\t}\n\treturn -a\n}\n',
    # invalid: a newline after the condition or the signature ends it; a comma needs the next line
    "package main\nfunc f() {\n\tif x\n\t{\n\t}\n}\n", "package main\nfunc f()\n{\n}\n",
    "package main\nfunc f() {\n\tg(1,\n\t\t2\n\t)\n}\n", "package main\nfunc f() {\n\tx := \n}\n",
]


def gofmt_ok(text: str) -> bool:
    if GOFMT is None:
        pytest.fail("gofmt not found: install Debian's golang-go (scripts/setup does, as root)")
    return subprocess.run([GOFMT, "-e"], input=text.encode(), capture_output=True, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def grammar():
    return gm.Grammar.from_file(GRAMMAR)


@pytest.mark.parametrize("text", PROGRAMS)
def test_validator_agrees_with_gofmt(grammar, text):
    assert grammar.validate(text).ok == gofmt_ok(text), grammar.validate(text).message


def test_line_break_mutations_agree_with_gofmt(grammar):
    rng = random.Random(3)
    checked = 0
    for text in PROGRAMS[:14]:
        for _ in range(15):
            chars = list(text)
            for _ in range(rng.randint(1, 2)):
                spots = [i for i, c in enumerate(chars) if c in " \n\t"]
                if not spots:
                    break
                i = rng.choice(spots)
                chars[i] = rng.choice(["\n", " ", "\n\t", " // x\n"])  # break, join, or comment a line end
            mutated = "".join(chars)
            assert grammar.validate(mutated).ok == gofmt_ok(mutated), repr(mutated)
            checked += 1
    assert checked == 14 * 15


@pytest.mark.parametrize("family", BOTH_KINDS)
def test_every_token_allowed(grammar, family, cache_dir):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    matcher = gm.compile(grammar, info, cache_dir=cache_dir).matcher()
    for text in PROGRAMS[:14]:
        walk_text(matcher, tok, text)
        assert info.stop_token_ids[0] in matcher.allowed_token_ids()


# Byte-level vocabularies: their line breaks come in many tokens, so that walks write multi-line programs
# (a SentencePiece vocabulary has one, the byte <0x0A>, among the walk's ~80 tokens).
@pytest.mark.parametrize("family", [BYTE_LEVEL, "gpt2"])
def test_walks_format(grammar, family, cache_dir):
    info = tokenizer_info(family)
    matcher = gm.compile(grammar, info, cache_dir=cache_dir).matcher()
    # Walks use the subset's words only (its NAME would take Go keywords it lacks, like "var").
    words = {b"", b"package", b"main", b"func", b"f", b"(", b")", b"{", b"}", b"x", b":=", b"1", b"return", b"if",
             b"else", b"for", b"++", b"+", b";", b"==", b"<", b"break", b"//", b"=", b"a", b"int", b","}
    rng = np.random.default_rng(5)
    ended = multiline = 0
    for _ in range(120):
        data, stopped = word_walk(matcher, info, words, rng, max_steps=80, stop_from=30)
        if stopped:
            ended += 1
            multiline += data.count(b"\n") > 2
            assert gofmt_ok(data.decode("utf-8")), data
        else:
            assert grammar.validate(data).prefix_ok
    assert ended >= 60 and multiline >= 10, (ended, multiline)
