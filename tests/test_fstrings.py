"""f-strings in the built-in Python grammar: replacement fields, specs, conversions, nested f-strings and
the quotes they may use, against CPython's parser (ast.parse), in the validator and in the masks."""

from __future__ import annotations

import random
import re
from pathlib import Path

import numpy as np
import pytest

from bench import workload
from conftest import BOTH_KINDS, BYTE_LEVEL, compiled_for, load_tokenizer, tokenizer_info, walk_text
from grammask.decoding.closing import Closer, closing_candidates
from bench.python_oracle import cpython_error
from test_python import python  # noqa: F401 (a fixture)

DATA = Path(__file__).parent / "data" / "fstring_cases.txt"
CASES = [line.replace("⏎", "\n") + "\n" for line in DATA.read_text(encoding="utf-8").splitlines()
         if line and not line.startswith("# ")]


def corpus_files() -> list[Path]:
    """A wide spread of the interpreter's standard library (f-strings are rarer than modules), and the
    shared CPython 3.11 corpus where present."""
    shared = workload.shared("python", "cpython-3.11-lib")
    return list(workload.python_stdlib_files(400)) + (sorted(shared.rglob("*.py")) if shared else [])


def fstring_lines() -> list[str]:
    """The corpus lines with an f-string that has a field, as statements CPython accepts."""
    out = []
    for path in corpus_files():
        for line in path.read_text(encoding="utf-8").splitlines():
            line = line.strip()
            if not re.search(r"""(?<![\w'"])[rR]?[fF][rR]?['"]""", line) or "{" not in line:
                continue
            for text in (line + "\n", "(" + line.rstrip(":,") + ")\n"):
                if cpython_error(text) is None:
                    out.append(text)
                    break
    return out


def test_cases_agree_with_ast_parse(python):
    assert len(CASES) >= 90
    valid = sum(cpython_error(c) is None for c in CASES)
    assert valid >= 30 and len(CASES) - valid >= 25  # both kinds, well represented
    wrong = [(c, cpython_error(c), python.validate(c).message) for c in CASES
             if python.validate(c).ok != (cpython_error(c) is None)]
    assert not wrong


def test_mutated_corpus_fstrings_agree_with_ast_parse(python):
    lines = fstring_lines()
    assert len(lines) >= 250
    rng = random.Random(7)
    alphabet = "{}[]():!=rsa'\"\\ #,.x1\n"
    total, wrong = 0, []
    for line in lines:
        for _ in range(6):
            t = list(line[:-1])
            i = rng.randrange(len(t) + 1)
            kind = rng.randrange(4)
            if kind == 0:
                del t[min(i, len(t) - 1)]
            elif kind == 1:
                t.insert(i, rng.choice(alphabet))
            elif kind == 2:
                j, i = rng.randrange(len(t)), min(i, len(t) - 1)
                t[i], t[j] = t[j], t[i]
            else:
                t = t[:i]
            text = "".join(t) + "\n"
            total += 1
            if python.validate(text).ok != (cpython_error(text) is None):
                wrong.append((text, cpython_error(text), python.validate(text).message))
    assert total >= 1500
    assert not wrong, wrong[:5]


def test_nesting_limits(python):
    for n, ok in ((199, True), (200, False)):
        text = "f'{" + "(" * n + "1" + ")" * n + "}'\n"
        assert python.validate(text).ok is ok is (cpython_error(text) is None)
    for n, ok in ((200, True), (201, False)):
        text = "x = " + "(" * n + "1" + ")" * n + "\n"
        assert python.validate(text).ok is ok is (cpython_error(text) is None)


def test_errors_say_what_breaks_the_fstring(python):
    assert "the quote of an enclosing f-string" in python.validate("f'{d['a']}'\n").message
    assert "newline (inside a single-quoted f-string)" in python.validate("f'{\n}'\n").message
    assert "an f-string's expression cannot hold one" in python.validate("f'{x#}'\n").message
    assert "an f-string's expression cannot hold one" in python.validate("f'{x \\'a\\'}'\n").message
    r = python.validate("f'{x:{y:{z}}}'\n")
    assert (r.line, r.column) == (1, 9) and r.expected == ["format spec text", "'}'"]


@pytest.mark.parametrize("family", BOTH_KINDS)
def test_masks_equal_what_the_matcher_accepts(python, family, cache_dir):
    """Inside f-strings (text, fields, specs, nested ones) the mask is exactly the set of tokens
    accept_token takes: the tokens whose lexing the context decides are filled one by one."""
    info = tokenizer_info(family)
    matcher = compiled_for("python", family, cache_dir).matcher()
    prefixes = ["x = f'a{", "x = f'{y", "x = f'{y}", "x = f'{d[", "x = f'{y:", "x = f'{y:>{w", "x = f'{y!r",
                "x = f\"{f'{", "x = f'''{\n", "x = f'{ {1: 2}[1] ", "x = rf'\\", "x = f'{x=", "x = f'''a'",
                "x = f\"{x:{y:", "x = f'{(a,", "x = f'{a}{b:}"]
    bm = np.zeros((info.vocab_size + 31) // 32, dtype=np.int32)
    for prefix in prefixes:
        matcher.reset()
        assert matcher.accept_string(prefix)
        matcher.fill_next_token_bitmask(bm)
        bits = np.unpackbits(bm.view(np.uint8), bitorder="little")[: info.vocab_size].astype(bool)
        accepted = np.zeros(info.vocab_size, dtype=bool)
        for t in range(info.vocab_size):
            if matcher.accept_token(t):
                accepted[t] = True
                matcher.rollback(1)
        assert (bits == accepted).all(), (prefix, np.flatnonzero(bits != accepted)[:10])


@pytest.mark.parametrize("family", BOTH_KINDS)
def test_every_token_of_real_fstrings(family, cache_dir):
    tok = load_tokenizer(family)
    matcher = compiled_for("python", family, cache_dir).matcher()
    text = "".join(fstring_lines())
    assert text.count("{") >= 300
    walk_text(matcher, tok, text)
    assert matcher.is_accepting()


def test_closing_completes_an_open_field(cache_dir):
    """Budget-aware closing in the middle of f-string fields finds completions CPython accepts (the
    evaluation's one error was a closing that left such a field open)."""
    tok = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    compiled = compiled_for("python", BYTE_LEVEL, cache_dir)
    closer = Closer(closing_candidates(info, info.vocab_size))
    for prefix in ["def f(x):\n    return f'({{[{[{[x", "x = f'{a[b:", "x = f\"{f'{y!r:>{w", "x = f'''{\n  [1,"]:
        m = compiled.matcher()
        assert m.accept_string(prefix)
        ids = closer.find(m, 16)
        assert ids is not None, prefix
        text = prefix + tok.decode(ids)
        assert cpython_error(text) is None, text
