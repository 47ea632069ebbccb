"""The built-in Python grammar by version: 3.11 to 3.14 from one source (grammar/python.lark, lines marked
per version), each judged against a parser nobody here wrote.

Oracles: this machine's CPython (3.11) for 3.11; libcst's native parser for the newer versions. libcst
builds a syntax tree without CPython's extra checks and accepts every version's syntax whatever version
it is told, so (1) a construct's first version comes from the CPython documentation (What's New, the
PEPs), written beside each case, and (2) where libcst and CPython differ on a construct that has not
changed since 3.11, CPython wins, and `reference_error` says where: libcst does not decode string
escapes ('\\xf' is an error for CPython), and its tokenizer measures tab indentation its own way.
"""

from __future__ import annotations

import ast
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest

import grammask as gm
from conftest import BOTH_KINDS, load_tokenizer, mutate_lines, mutation_agreement, python_corpus, tokenizer_info

libcst = pytest.importorskip("libcst", reason="libcst not installed (pip install libcst): no oracle for Python 3.12+")

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
]
# libcst rejects `except A,:`; CPython's grammar takes it (except_block: 'except' expressions ':', and
# expressions: expression ','), so CPython wins.
LIBCST_REJECTS = {NEW_SYNTAX[-1][0]}

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
]

# PEP 701 (3.12) f-strings and PEP 750 (3.14) template strings: not built yet (issue #24 is open).
PENDING = [
    ('f"{"nested"}"\n', "3.12"),
    ("f'{\"\\n\".join(lines)}'\n", "3.12"),
    ("f'{x  # a comment\n}'\n", "3.12"),
    ('t"Hello {name}"\n', "3.14"),
]


def older(a: str, b: str) -> bool:
    return tuple(map(int, a.split("."))) < tuple(map(int, b.split(".")))


@pytest.fixture(scope="module")
def grammars():
    return {v: gm.Grammar.builtin("python", version=v) for v in VERSIONS}


def cpython_error(text: str):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ast.parse(text)
        return None
    except SyntaxError as exc:
        return exc.msg or "syntax error"
    except ValueError as exc:
        return str(exc)


def libcst_error(version: str):
    config = libcst.PartialParserConfig(python_version=version)

    def error(text: str):
        try:
            libcst.parse_module(text, config=config)
            return None
        except Exception as exc:  # libcst.ParserSyntaxError, and RecursionError on deep nesting
            return f"{type(exc).__name__}: {exc}"
    return error


def reference_error(version: str):
    """libcst for 3.12+, overruled by CPython where the two differ on what has not changed since 3.11."""
    if version == "3.11":
        return cpython_error
    by_libcst = libcst_error(version)

    def error(text: str):
        found = by_libcst(text)
        cpython = cpython_error(text)
        if found is None and cpython is not None and "escape" in cpython:
            return cpython  # libcst does not decode string escapes
        if found is not None and cpython is None and "dedent" in found:
            return None  # libcst's tokenizer measures tab indentation its own way
        return found
    return error


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
    assert reference_error(version)(SOFT_KEYWORD) is None


@pytest.mark.parametrize("version", VERSIONS)
def test_invalid_in_every_version(grammars, version):
    for text in NEVER:
        assert not grammars[version].validate(text).ok, (version, text)
        assert cpython_error(text) is not None  # 3.11 rejects them too (older syntax, or none)


@pytest.mark.xfail(strict=True, reason="PEP 701 f-strings (3.12) and PEP 750 t-strings (3.14) are not built yet")
@pytest.mark.parametrize("text,since", PENDING)
def test_pending_string_syntax(grammars, text, since):
    assert libcst_error(since)(text) is None and cpython_error(text) is not None
    assert grammars[since].validate(text).ok


def _mutate(text: str, rng: random.Random) -> str:
    return mutate_lines(text, rng, "()[]{}:,.=+*@ \"'\\#", lambda line, rng: rng.choice(["  ", "\t", "    "]) + line)


@pytest.mark.parametrize("version", VERSIONS[1:])
def test_mutations_of_real_files_agree_with_the_oracle(grammars, version):
    total, agree, unknown = mutation_agreement(python_corpus()[::2], 12, _mutate, reference_error(version),
                                               grammars[version], ())
    assert total == 900
    assert agree / total >= 0.995, (f"{agree}/{total}", unknown[:5])


@pytest.mark.parametrize("version", VERSIONS[1:])
def test_mutations_of_new_syntax_agree_with_the_oracle(grammars, version, tmp_path):
    module = tmp_path / "new_syntax.py"
    module.write_text("".join(text for text, since in NEW_SYNTAX if not older(version, since)
                              and text not in LIBCST_REJECTS) + SOFT_KEYWORD)
    assert grammars[version].validate(module.read_text()).ok
    total, agree, unknown = mutation_agreement([module], 600, _mutate, reference_error(version), grammars[version], ())
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
