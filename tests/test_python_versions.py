"""The built-in Python grammar by version: 3.11 to 3.14 from one source (grammar/python.lark, lines marked
per version), each judged against a parser nobody here wrote.

Oracles (bench/python_oracle.py): this machine's CPython (3.11) for 3.11; for the newer versions
libcst's native parser where CPython 3.11 rejects a text, CPython's verdict standing where the two differ
on what has not changed. libcst accepts every version's syntax whatever version it is told, so a
construct's first version comes from the CPython documentation (What's New, the PEPs), written beside
each case, and CPython's grammar (Grammar/python.gram) decides where libcst gets new syntax wrong.
"""

from __future__ import annotations

import random
import subprocess
import sys

import numpy as np
import pytest

import grammask as gm
from bench.python_oracle import cpython_error, libcst_error, python_error
from grammask.grammar.versions import parse_version
from conftest import (BOTH_KINDS, load_tokenizer, mutate_lines, mutation_agreement, python_corpus, tokenizer_info,
                      walks_parse)

pytest.importorskip("libcst", reason="libcst not installed (pip install libcst): no oracle for Python 3.12+")

VERSIONS = ("3.11", "3.12", "3.13", "3.14")

# (text, first version that accepts it): new syntax, each valid from its version on.
NEW_SYNTAX = [
    # PEP 695 (3.12): type aliases, generic functions and classes
    ("type Alias = list[int]\n", "3.12"),
    ("type ListOrSet[T] = list[T] | set[T]\n", "3.12"),
    ("type match = int\ntype case[T: (int, str)] = dict[str, T]\n", "3.12"),
    ("def first[T](xs: list[T]) -> T:\n    return xs[0]\n", "3.12"),
    ("class Box[T: int, *Ts, **P]:\n    def get[U](self, u: U) -> T | U: ...\n", "3.12"),
    ("async def f[T,](x: T):\n    pass\n", "3.12"),
    ("@dataclass\nclass Pair[K, V](Base[K], metaclass=M):\n    key: K\n", "3.12"),
    ("type A[T] = (lambda: T)\n", "3.12"),
    # PEP 696 (3.13): type parameter defaults
    ("def f[T = int](x: T = 0) -> T:\n    return x\n", "3.13"),
    ("class C[T: int = bool, *Ts = *tuple[int, str], **P = [int, str]]:\n    pass\n", "3.13"),
    ("type Alias[T = str, *Ts = Unpack[tuple[()]]] = dict[T, tuple[*Ts]]\n", "3.13"),
    ("def g[T=int, U](): pass\n", "3.13"),  # a compile-time error (codegen), not a parse error: ast.parse accepts
    # PEP 758 (3.14): except without parentheses, when there is no "as"
    ("try:\n    pass\nexcept ValueError, TypeError:\n    pass\n", "3.14"),
    ("try:\n    pass\nexcept* A, B, C:\n    pass\n", "3.14"),
    ("try:\n    pass\nexcept A,:\n    pass\nexcept (B, C) as e:\n    pass\n", "3.14"),
    # PEP 701 (3.12): a replacement field is code
    ('f"{"nested"}"\n', "3.12"),
    ("f'{\"\\n\".join(lines)}'\n", "3.12"),
    ("f'{x  # a comment\n}'\n", "3.12"),
    ("f'''{\n    x  # c\n}''' f\"{'a' 'b'}\"\n", "3.12"),
    ('f"{f"{f"{f"{f"{x}"}"}"}"}"\n', "3.12"),
    ("f\"\"\"{\"\"\"a\"\"\"}\"\"\" + f'''{f'''{x!r:>{w}}'''}'''\n", "3.12"),
    ("f'{1 + \\\n 2}' rf'{x}\\d'\n", "3.12"),
    ('f"{x!r }" f"{x!s  # c\n:>10}"\n', "3.12"),
    # PEP 750 (3.14): template strings
    ('t"Hello {name}"\n', "3.14"),
    ("x = t'' + rt'{x!r:>{w}}'\n", "3.14"),
    ("Tr'''{x}'''\n", "3.14"),
    ('t"a" t"b{c}"\n', "3.14"),
    ('t"{t"{x}"}"\n', "3.14"),
]
# libcst gets these wrong, and CPython's grammar (Grammar/python.gram) decides: `except A,:` is
# except_block: 'except' expressions ':' with expressions: expression ','; PEP 750 takes t and r in either
# order and case, and t-strings concatenated with each other.
LIBCST_REJECTS = {"try:\n    pass\nexcept A,:\n    pass\nexcept (B, C) as e:\n    pass\n", "Tr'''{x}'''\n",
                  't"a" t"b{c}"\n'}

# Valid in every version: `type` stays a name where it is not a type alias.
SOFT_KEYWORD = ("type = 5\ntype(x)\nx.type = type[int]\ndef type(): pass\nf(type=1)\nimport type\n"
                "match x:\n    case type(): pass\ntype: int = 3\nprint(type if type else type)\n")

# Invalid in every version (CPython's messages quoted); libcst accepts some of them, CPython's rule wins.
NEVER = [
    "try:\n    pass\nexcept A, B as e:\n    pass\n",  # multiple exception types must be parenthesized when using 'as'
    "try:\n    pass\nexcept* A, B as e:\n    pass\n",
    "class C[*Ts: int]: pass\n",    # cannot use bound with TypeVarTuple
    "class C[**P: int]: pass\n",    # cannot use bound with ParamSpec
    "def f[](): pass\n",            # a type parameter list is not empty
    "type A B = int\n",
    "type A = *x\n",                # the value is an expression, not a starred one
    "type A[T] += 1\n",
    "def f[T = *int](): pass\n",    # only a TypeVarTuple's default is starred
    'f"{x:{y:{z}}}"\n',              # f-string: expressions nested too deeply (libcst accepts it)
    't"a" "b"\n',                    # cannot mix t-string literals with string or bytes literals
    'f"{x}" t"b"\n',
    "f'a\nb'\n",                     # a single-quoted f-string's text holds no newline
    'f"{x! r}"\n',                   # conversion type must come right after the exclamation mark (libcst accepts)
]

def older(a: str, b: str) -> bool:
    return parse_version(a) < parse_version(b)


@pytest.fixture(scope="module")
def grammars():
    return {v: gm.Grammar.builtin("python", version=v) for v in VERSIONS}


def test_names_and_default(grammars):
    assert gm.Grammar.builtin("python").text == grammars["3.14"].text
    assert gm.Grammar.builtin("python3.12").text == grammars["3.12"].text
    assert len({g.text for g in grammars.values()}) == 4
    with pytest.raises(gm.GrammarError, match="no Python 3.10 grammar"):
        gm.Grammar.builtin("python", version="3.10")
    with pytest.raises(gm.GrammarError, match="has no versions"):
        gm.Grammar.builtin("json", version="3.12")


@pytest.mark.parametrize("version", VERSIONS)
def test_new_syntax_from_its_version_on(grammars, version):
    for text, since in NEW_SYNTAX:
        expected = not older(version, since)
        assert grammars[version].validate(text).ok == expected, (version, text, grammars[version].validate(text).message)
        if version == "3.11":
            assert (cpython_error(text) is None) == expected, text
        elif expected:
            assert (libcst_error(version)(text) is None) != (text in LIBCST_REJECTS), text
    assert grammars[version].validate(SOFT_KEYWORD).ok
    assert python_error(version)(SOFT_KEYWORD) is None


@pytest.mark.parametrize("version", VERSIONS)
def test_invalid_in_every_version(grammars, version):
    for text in NEVER:
        assert not grammars[version].validate(text).ok, (version, text)
        assert cpython_error(text) is not None  # 3.11 rejects them too (older syntax, or none)


def _mutate(text: str, rng: random.Random) -> str:
    return mutate_lines(text, rng, "()[]{}:,.=+*@ \"'\\#", lambda line, rng: rng.choice(["  ", "\t", "    "]) + line)


@pytest.mark.parametrize("version", VERSIONS[1:])
def test_mutations_of_real_files_agree_with_the_oracle(grammars, version):
    total, agree, unknown = mutation_agreement(python_corpus()[::2], 12, _mutate, python_error(version),
                                               grammars[version], ())
    assert total == 900
    assert agree / total >= 0.995, (f"{agree}/{total}", unknown[:5])


@pytest.mark.parametrize("version", VERSIONS[1:])
def test_mutations_of_new_syntax_agree_with_the_oracle(grammars, version, tmp_path):
    module = tmp_path / "new_syntax.py"
    module.write_text("".join(text for text, since in NEW_SYNTAX if not older(version, since)
                              and text not in LIBCST_REJECTS) + SOFT_KEYWORD)
    assert grammars[version].validate(module.read_text()).ok
    total, agree, unknown = mutation_agreement([module], 600, _mutate, python_error(version), grammars[version], ())
    assert agree / total >= 0.995, (f"{agree}/{total}", unknown[:5])


@pytest.mark.parametrize("family", BOTH_KINDS)
def test_every_token_of_new_syntax_is_allowed(family, cache_dir):
    tok, info = load_tokenizer(family), tokenizer_info(family)
    matcher = gm.compile(gm.Grammar.builtin("python", version="3.14"), info, cache_dir=cache_dir).matcher()
    bm = np.zeros((info.vocab_size + 31) // 32, dtype=np.int32)
    for text in [t for t, _ in NEW_SYNTAX] + [SOFT_KEYWORD]:
        matcher.reset()
        ids = tok.encode(text, add_special_tokens=False)
        for i, t in enumerate(ids):
            matcher.fill_next_token_bitmask(bm)
            assert int(bm[t >> 5]) >> (t & 31) & 1, (family, text, tok.decode(ids[:i]))
            assert matcher.accept_token(t)
        assert matcher.is_accepting(), text


def test_cli_names_a_version(tmp_path):
    path = tmp_path / "alias.py"
    path.write_text("type Alias = list[int]\n")
    run = [sys.executable, "-m", "grammask", "validate", "-g"]
    new = subprocess.run([*run, "python3.12", str(path)], capture_output=True, text=True, timeout=600)
    old = subprocess.run([*run, "python3.11", str(path)], capture_output=True, text=True, timeout=600)
    assert (new.returncode, new.stderr.strip()) == (0, f"{path}: ok")
    assert old.returncode == 1 and f"{path}:1:6: error" in old.stderr


@pytest.mark.parametrize("family", BOTH_KINDS)
def test_random_walks_with_new_syntax_end_in_code_the_oracle_accepts(family, cache_dir):
    """Word walks under the 3.14 masks, the words new syntax and f-string pieces: no dead end, and every
    walk that stops is a module the oracle parses."""
    info = tokenizer_info(family)
    python = gm.Grammar.builtin("python", version="3.14")
    matcher = gm.compile(python, info, cache_dir=cache_dir).matcher()
    words = {b"", b"type", b"X", b"[", b"]", b"T", b"=", b"*", b"**", b":", b"def", b"class", b"(", b")",
             b"try", b"except", b",", b"pass", b"x", b"f", b"t", b"'", b'"', b"{", b"}", b"!r", b"#", b"\\",
             b"\n", b"f'", b't"', b'"}', b"rt'", b'"""', b"1", b"+", b"return", b"int"}
    ended = walks_parse(matcher, info, words, np.random.default_rng(7), 150, python, python_error("3.14"),
                        max_steps=80, stop_from=30)
    assert ended >= 30, ended


@pytest.mark.parametrize("version", VERSIONS[1:])
def test_closing_ends_new_syntax_within_the_budget(version, cache_dir):
    """Budget-aware closing from inside new syntax (a type parameter list, a PEP 701 field holding a
    string in the enclosing quotes): random logits, a small budget; every output parses."""
    import torch

    tok, info = load_tokenizer("smollm2"), tokenizer_info("smollm2")
    compiled = gm.compile(gm.Grammar.builtin("python", version=version), info, cache_dir=cache_dir)
    prefixes = ["class Box[T: int, ", 'def f[T](x: T) -> T:\n    return f"{x + "'] + (
        ['t"{f"{x:>{'] if version == "3.14" else [])
    for prefix in prefixes:
        for seed in range(3):
            proc = gm.GrammarLogitsProcessor(compiled, tok, prefix=prefix, token_budget=12)
            gen = torch.Generator().manual_seed(seed)
            ids = torch.zeros((1, 1), dtype=torch.long)
            for _ in range(12):
                scores = proc(ids, torch.randn((1, info.vocab_size), generator=gen) * 4)
                nxt = torch.multinomial(torch.softmax(scores, dim=1), 1, generator=gen)
                ids = torch.cat([ids, nxt], dim=1)
                if int(nxt) in info.stop_token_ids:
                    break
            out = tok.decode([t for t in ids[0, 1:].tolist() if t not in info.stop_token_ids])
            assert python_error(version)(prefix + out) is None, (version, prefix + out)
