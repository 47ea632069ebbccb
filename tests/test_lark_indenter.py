"""Lark's Indenter postlexer (`Grammar.from_lark(..., postlex=Indenter())`), with Lark itself as the oracle:
`lark.Lark(text, parser="lalr", postlex=...)` accepts a text iff grammask's validator does, and random token
walks under the masks end only in texts Lark parses.

(a) a small Python-like grammar in Lark's documented Indenter style, at two tab lengths; (b) Lark's own
python.lark with PythonIndenter on standard-library files and their mutations. Lark's Indenter is not
CPython's tokenizer: comment-only lines count (when the NL terminal takes them in), a tab is tab_len
spaces with no consistency check, and a text without a final newline has no NEWLINE; the texts below
exercise those differences on purpose.
"""

from __future__ import annotations

import random
import sysconfig
import warnings
from pathlib import Path

import lark
import numpy as np
import pytest
from lark.indenter import Indenter, PythonIndenter

import grammask as gm
from conftest import BYTE_LEVEL, SENTENCEPIECE, load_tokenizer, tokenizer_info, walk_text, word_walk
from grammask.grammar.table_cache import from_arrays, to_arrays

MINI = r"""
start: (_NL | stmt)*
?stmt: simple _NL | compound
?simple: NAME "=" expr -> assign
       | "pass" -> pass_
       | expr
compound: "if" expr ":" suite ["else" ":" suite]
        | "while" expr ":" suite
        | "def" NAME "(" [NAME ("," NAME)*] ")" ":" suite
suite: simple _NL | _NL _INDENT stmt+ _DEDENT
?expr: atom (("+" | "-") atom)*
?atom: NAME | NUMBER | "(" expr ")" | "[" [expr ("," expr)* [","]] "]" | NAME "(" [expr ("," expr)*] ")"
NAME: /[xyzab][0-9]*/
NUMBER: /[0-9]+/
COMMENT: /#[^\n]*/
%ignore /[ \t]+/
%ignore COMMENT
_NL: /(\r?\n[\t ]*)+/
%declare _INDENT _DEDENT
"""


class MiniIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR", "LSQB"]
    CLOSE_PAREN_types = ["RPAR", "RSQB"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 8


class MiniIndenter3(MiniIndenter):
    tab_len = 3


MINI_TEXTS = [
    "", "\n", "x = 1\n", "x = 1", "if x:\n    y = 1\n", "if x:\n    y = 1", "if x:\n  y = 1\nelse:\n  y = 2\n",
    "def x(a, b):\n    if a:\n        y = [a,\n  b]\n    z = 1\n", "while x:\n\tpass\n",
    "if x:\n        y = 1\n\tz = 2\n",  # a tab is tab_len spaces, no consistency check
    "if x:\n   y = 1\n\tz = 2\n", "if x:\n\t y = 1\n\t\tz = 2\n", "x = (1 +\n2)\n", "x = [\n1,\n    ]\n",
    "if x:\n    # a comment line on its own\n    y = 1\n", "if x:\n    y = 1\n  # dedent by comment\n    z = 2\n",
    "if x:\n    y = 1\n\n\n    z = 1\n", "if x:\n    y = 1\n    \n", "if x:\n  if y:\n    pass\nz = 1\n",
    "if x:\n  if y:\n    pass\n z = 1\n", "  x = 1\n", "if x:\ny = 1\n", "x = 1\n  y = 2\n", "x = (1\n",
    "x = 1)\n", "x = (1))\n", "x = [1\n", "if x: pass\n", "if x: pass\n    y = 1\n", "\n  \nx = 1\n",
    "x = 1 # c", "# c", "# c\n", "x = 1\n# c", "if x:\n    pass\n# c", "if (x):\n    pass\n",
    "if x:\n    pass\n\t\n", "if x:\r\n    pass\r\n", "if x:\n\x0c    pass\n", "x\n(\n  )\ny\n",
]


def lark_accepts(parser: lark.Lark, text: str) -> bool:
    try:
        parser.parse(text)
        return True
    except lark.exceptions.LarkError:
        return False
    except (AssertionError, IndexError):  # Indenter: a close paren too many; an NL token without '\n'
        return False


def mutate(text: str, rng: random.Random) -> str:
    """One edit aimed at layout: delete or duplicate a whitespace character, a line or a bracket, insert
    a space, a tab or a newline, or cut the text."""
    kind = rng.randrange(7)
    if kind == 0 or kind == 1:
        spots = [i for i, c in enumerate(text) if c in " \t"]
        if spots:
            i = rng.choice(spots)
            return text[:i] + text[i + 1:] if kind == 0 else text[:i] + text[i] + text[i:]
    if kind == 2 or kind == 3:
        lines = text.split("\n")
        i = rng.randrange(len(lines))
        if kind == 2:
            del lines[i]
        else:
            lines.insert(i, lines[i])
        return "\n".join(lines)
    if kind == 4:
        spots = [i for i, c in enumerate(text) if c in "()[]{}"]
        if spots:
            i = rng.choice(spots)
            return text[:i] + text[i + 1:] if rng.random() < 0.5 else text[:i] + text[i] + text[i:]
    if kind == 5 or not text:
        starts = [0] + [i + 1 for i, c in enumerate(text) if c == "\n"]
        i = rng.choice(starts)
        return text[:i] + rng.choice([" ", "\t", "\n", "    ", "  "]) + text[i:]
    return text[: rng.randrange(len(text) + 1)]


def random_mini_program(rng: random.Random, depth: int = 0) -> str:
    """A statement list with random (often wrong) indentation, brackets across lines and comments."""
    out = []
    for _ in range(rng.randint(1, 4)):
        ind = rng.choice(["", " ", "  ", "    ", "\t", "\t ", "        ", "   "]) * (depth > 0 or rng.random() < .1)
        ind = ind * (1 + (depth > 1))
        r = rng.random()
        if r < 0.25 and depth < 3:
            head = rng.choice(["if x:", "while (y +\n z):", "def a(x, y):", "if [x,\n\t]:"])
            out.append(ind + head + "\n" + random_mini_program(rng, depth + 1))
        elif r < 0.35:
            out.append(ind + rng.choice(["# note", "", "   ", "\t# t"]) + "\n")
        else:
            stmt = rng.choice(["x = 1", "y = (x +\n    2)", "pass", "z = [1,\n2,\n]", "a(x,\n  y)", "b = x - 1"])
            out.append(ind + stmt + rng.choice(["\n", "\n", "  # c\n", "\n\n"]))
    return "".join(out)


@pytest.fixture(scope="module", params=[MiniIndenter, MiniIndenter3], ids=["tab8", "tab3"])
def mini(request):
    indenter = request.param
    return (gm.Grammar.from_lark(MINI, postlex=indenter()),
            lark.Lark(MINI, parser="lalr", postlex=indenter()))


def test_mini_hand_made_texts_agree_with_lark(mini):
    grammar, parser = mini
    wrong = [(t, lark_accepts(parser, t)) for t in MINI_TEXTS if grammar.validate(t).ok != lark_accepts(parser, t)]
    assert not wrong
    assert sum(lark_accepts(parser, t) for t in MINI_TEXTS) >= 20  # both kinds are present


def test_mini_random_programs_and_mutations_agree_with_lark(mini):
    grammar, parser = mini
    rng = random.Random(20)
    total = accepted = 0
    wrong = []
    for _ in range(300):
        text = random_mini_program(rng)
        for t in [text] + [mutate(text, rng) for _ in range(3)]:
            ok = lark_accepts(parser, t)
            total += 1
            accepted += ok
            if grammar.validate(t).ok != ok:
                wrong.append((t, ok))
    assert not wrong, (len(wrong), total, wrong[:3])
    assert total == 1200 and 150 <= accepted <= 1050, accepted


QUIRKS = r"""
start: (_NL | stmt)*
stmt: atom+ _NL | atom+ ":" _NL _INDENT stmt+ _DEDENT
atom: "x" | "(" atom* ")"
%ignore " "
%declare _INDENT _DEDENT
"""
# An NL that takes comments in (as python.lark's): the spaces inside a comment after the last newline
# count, and a comment with no newline is an NL token Lark's Indenter fails on. An NL that is one byte:
# it ends in a final lexer state, with the byte. Brackets drop NL tokens, even "(" "(" ... ")".
QUIRK_NLS = {"comments": r"_NL: /(\n[\t ]*|#[^\n]*)+/", "one_byte": "_NL: /\\n/\n%ignore /\\t/"}


class QuirkIndenter(Indenter):
    NL_type = "_NL"
    OPEN_PAREN_types = ["LPAR"]
    CLOSE_PAREN_types = ["RPAR"]
    INDENT_type = "_INDENT"
    DEDENT_type = "_DEDENT"
    tab_len = 2


@pytest.mark.parametrize("nl", sorted(QUIRK_NLS))
def test_every_short_text_agrees_with_lark(nl):
    """Every text of up to 5 pieces over an alphabet of layout and brackets."""
    import itertools

    text = QUIRKS + QUIRK_NLS[nl]
    grammar = gm.Grammar.from_lark(text, postlex=QuirkIndenter())
    parser = lark.Lark(text, parser="lalr", postlex=QuirkIndenter())
    pieces = ["x", "\n", " ", "\t", "#", "(", ")", ":"]
    total = accepted = 0
    wrong = []
    for n in range(6):
        for combo in itertools.product(pieces, repeat=n):
            t = "".join(combo)
            ok = lark_accepts(parser, t)
            total += 1
            accepted += ok
            if grammar.validate(t).ok != ok:
                wrong.append((t, ok))
    assert not wrong, (len(wrong), wrong[:5])
    assert total == 37449 and accepted > 300, accepted


def test_tab_len_is_the_indenters():
    """The same text means different things at tab_len 8 and 3, as in Lark."""
    text = "if x:\n        y = 1\n\tz = 2\n"
    assert gm.Grammar.from_lark(MINI, postlex=MiniIndenter()).validate(text).ok
    assert not gm.Grammar.from_lark(MINI, postlex=MiniIndenter3()).validate(text).ok
    assert gm.Grammar.from_lark(MINI, postlex=MiniIndenter3()).validate("if x:\n   y = 1\n\tz = 2\n").ok


def test_a_dedent_to_no_level_says_so():
    result = gm.Grammar.from_lark(MINI, postlex=MiniIndenter()).validate("if x:\n    y = 1\n  z = 2\n")
    assert not result.ok and not result.prefix_ok and (result.line, result.column) == (2, 10)
    assert "matches no open level" in result.message


@pytest.mark.parametrize("family", [BYTE_LEVEL, SENTENCEPIECE])
def test_mini_token_walks_end_in_texts_lark_parses(family):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    grammar = gm.Grammar.from_lark(MINI, postlex=MiniIndenter())
    parser = lark.Lark(MINI, parser="lalr", postlex=MiniIndenter())
    matcher = gm.compile(grammar, info, cache_dir=False).matcher()
    for text in MINI_TEXTS:
        if lark_accepts(parser, text):
            walk_text(matcher, tok, text)
            assert matcher.is_accepting(), repr(text)
    rng = np.random.default_rng(0)
    words = {b"", b"if", b"x", b"y", b":", b"pass", b"else", b"while", b"def", b"a", b"(", b")", b"[", b"]",
             b"=", b"1", b",", b"+"}
    ended = indented = 0
    for _ in range(200):
        data, stopped = word_walk(matcher, info, words, rng, max_steps=120, stop_from=10)
        text = data.decode("utf-8")
        if stopped:
            ended += 1
            indented += "\n " in text or "\n\t" in text
            assert lark_accepts(parser, text), text
        else:
            assert grammar.validate(data).prefix_ok, text
    assert ended >= 40 and indented >= 8, (ended, indented)


MASK_CASES = {
    "mini": (MINI, MiniIndenter3, ["if x:\n   y = 1\n\tz = 2\n", "def x(a):\n  while a:\n    pass\n  y = 2 # c\nz = [1,\n 2]\n",
                                 "if x:\n        y = 1\n        z = (1 +\n2)\n  \n\t\t  x\n", "if x:\n  y = 1\n# c\n"]),
    "comments": (QUIRKS + QUIRK_NLS["comments"], QuirkIndenter, ["x:\n x\n#a b\n x (\n\n)\n#\n", "x:\n\tx:\n\t  x\n#a"]),
    "one_byte": (QUIRKS + QUIRK_NLS["one_byte"], QuirkIndenter, ["x\n(\n\tx\n)\n\nx (x)\n"]),
}


@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_mask_is_what_accept_token_takes(case):
    """The mask (token tables: a newline lexeme's bytes inside one token) and accept_token (the byte loop)
    agree on every token holding a newline or a tab, and a sample of the others, along texts with blocks."""
    text, indenter, texts = MASK_CASES[case]
    tok = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    grammar = gm.Grammar.from_lark(text, postlex=indenter())
    parser = lark.Lark(text, parser="lalr", postlex=indenter())
    assert all(lark_accepts(parser, t) for t in texts)
    matcher = gm.compile(grammar, info, cache_dir=False).matcher()
    rng = np.random.default_rng(1)
    layout = [t for t, b in enumerate(info.token_bytes) if b and (b"\n" in b or b"\t" in b)]
    checked = 0
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        matcher.reset()
        for i in range(len(ids) + 1):
            allowed = set(matcher.allowed_token_ids().tolist())
            sample = layout + rng.choice(info.vocab_size, 300, replace=False).tolist()
            for t in sample:
                if t in info.stop_token_ids:
                    continue
                took = matcher.accept_token(t)
                if took:
                    matcher.rollback(1)
                assert took == (t in allowed), (text, tok.decode(ids[:i]), info.token_bytes[t])
                checked += 1
            if i < len(ids):
                assert matcher.accept_token(ids[i])
        assert matcher.is_accepting()
    assert checked > 5000


# -- (b) Lark's own python.lark with PythonIndenter --------------------------------------------------------

LARK_PYTHON = Path(lark.__file__).parent / "grammars" / "python.lark"


def python_lark_dfa_text() -> str:
    """python.lark with its lookaround string and number terminals written without lookarounds (the same
    strings; STRING/LONG_STRING's lazy `.*?` up to an unescaped quote as escapes and non-quotes), and
    without `%ignore COMMENT` (COMMENT only occurs inside _NEWLINE, which always lexes first: Lark never
    produces it). Both Lark and grammask read this text, so it tests the Indenter on Python whatever the
    regex front end supports."""
    q = r"""([ubf]?r?|r[ubf])("([^"\\\n]|\\.)*"|'([^'\\\n]|\\.)*')"""
    lq = r"""([ubf]?r?|r[ubf])(\"\"\"("?"?([^"\\]|\\[\s\S]))*\"\"\"|'''('?'?([^'\\]|\\[\s\S]))*''')"""
    out = []
    for line in LARK_PYTHON.read_text(encoding="utf-8").split("\n"):
        if line.startswith("STRING:"):
            line = f"STRING: /{q}/i"
        elif line.startswith("LONG_STRING:"):
            line = f"LONG_STRING: /{lq}/is"
        elif line.startswith("%ignore COMMENT"):
            continue
        out.append(line.replace("/(?![1-9])/", ""))
    return "\n".join(out)


@pytest.fixture(scope="module")
def python_lark():
    text = python_lark_dfa_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # python.lark's shift/reduce conflicts, which Lark resolves alike
        grammar = gm.Grammar.from_lark(text, start="file_input", postlex=PythonIndenter())
    # The basic lexer: the one grammask's lexer follows today (the contextual one is test_lark_compat's).
    parser = lark.Lark(text, parser="lalr", lexer="basic", postlex=PythonIndenter(), start="file_input")
    return grammar, parser


def stdlib_sample(parser, count: int, max_bytes: int = 12000) -> list[tuple[str, str]]:
    """`count` standard-library files (spread over the sorted list) that Lark parses."""
    files = sorted(Path(sysconfig.get_paths()["stdlib"]).glob("*.py"))
    files = [f for f in files if f.stat().st_size <= max_bytes]
    out = []
    for f in files[:: max(1, len(files) // (3 * count))]:
        text = f.read_text(encoding="utf-8")
        if lark_accepts(parser, text):
            out.append((f.name, text))
        if len(out) == count:
            break
    return out


PYTHON_TEXTS = [
    "if x:\n    y\n", "if x:\n    y\n  z\n", "if x:\n\ty\n        z\n", "if x:\n        y\n\tz\n", "def f(\n):\n  pass\n",
    "x = (1,\n  2\n", "x = 1)\n", "x = [1,\n]]\n", "if x:\n    y\n    # c\n", "if x:\n    y\n  # c\n    z\n",
    "if x:\n    y\n\\\n    z\n", "if x:\n    pass", "x = {\n'a': 1}\n", "class A:\n  def f(self):\n    pass\n  x = 1\n",
    "if x:\npass\n", "  x = 1\n", "x = 1  # c", "for a in b:\n    pass\nelse:\n    pass\n",
]


def test_python_lark_hand_made_texts_agree_with_lark(python_lark):
    grammar, parser = python_lark
    wrong = [t for t in PYTHON_TEXTS if grammar.validate(t).ok != lark_accepts(parser, t)]
    assert not wrong


def test_python_lark_stdlib_files_and_mutations_agree_with_lark(python_lark):
    grammar, parser = python_lark
    files = stdlib_sample(parser, 30)
    assert len(files) == 30
    rng = random.Random(2024)
    total = accepted = 0
    wrong = []
    for name, text in files:
        assert grammar.validate(text).ok, (name, grammar.validate(text).message)
        for _ in range(8):
            mutated = mutate(text, rng)
            ok = lark_accepts(parser, mutated)
            total += 1
            accepted += ok
            if grammar.validate(mutated).ok != ok:
                wrong.append((name, ok, grammar.validate(mutated).message))
    assert not wrong, (len(wrong), total, wrong[:3])
    assert 30 <= accepted <= total - 30, (accepted, total)


def test_installed_python_lark_builds_and_agrees():
    """The unmodified file, look-aheads past its terminals included (STRING's `(?!"")`): it builds and agrees
    with Lark on a sample. (30,000 lexer states: a build bound above the 30 s default, which is for runaway
    grammars.)"""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # python.lark's shift/reduce conflicts and its COMMENT
        grammar = gm.Grammar.from_file(LARK_PYTHON, start="file_input", postlex=PythonIndenter(), build_timeout=300)
    parser = lark.Lark.open(str(LARK_PYTHON), parser="lalr", postlex=PythonIndenter(), start="file_input")
    for text in PYTHON_TEXTS:
        assert grammar.validate(text).ok == lark_accepts(parser, text), text


# -- settings, refusals, caching -------------------------------------------------------------------------

def test_what_is_not_an_indenter_is_refused_clearly():
    class Process(MiniIndenter):
        def process(self, stream):
            return stream

    class NotIndenter:
        always_accept = ()

        def process(self, stream):
            return stream

    with pytest.raises(gm.GrammarError, match="supports lark.indenter.Indenter.*not an Indenter"):
        gm.Grammar.from_lark(MINI, postlex=NotIndenter())
    with pytest.raises(gm.GrammarError, match="overrides Indenter.process"):
        gm.Grammar.from_lark(MINI, postlex=Process())
    with pytest.raises(gm.GrammarError, match="overrides Indenter.process"):
        gm.Grammar.from_file(LARK_PYTHON, postlex=Process())

    class Missing(MiniIndenter):
        NL_type = "_NEWLINE"

    with pytest.raises(gm.GrammarError, match="NL_type _NEWLINE is not a terminal"):
        gm.Grammar.from_lark(MINI, postlex=Missing())
    with pytest.raises(gm.GrammarError, match="takes no indent"):
        gm.Grammar.from_lark("// grammask: indent NL=_NL NEWLINE=_NL INDENT=_INDENT DEDENT=_DEDENT\n" + MINI,
                             postlex=MiniIndenter())


def test_settings_are_in_the_digest_and_the_table_cache():
    g8 = gm.Grammar.from_lark(MINI, postlex=MiniIndenter())
    g3 = gm.Grammar.from_lark(MINI, postlex=MiniIndenter3())
    assert len({g8.digest, g3.digest, gm.Grammar(MINI).digest}) == 3
    back = from_arrays(*to_arrays(g3.tables))
    assert back.indenter == g3.tables.indenter and back.indenter.kind == "lark" and back.indenter.tab_len == 3
    assert np.array_equal(back.term_bracket, g3.tables.term_bracket)
    assert np.array_equal(back.lex_nl, g3.tables.lex_nl)


def test_builtin_python_keeps_the_cpython_indenter():
    tables = gm.Grammar.builtin("python").tables
    assert tables.indenter.kind == "cpython"
    from grammask.decoding.compiler import core_grammar_arrays
    assert core_grammar_arrays(tables)["indenter"] == 1
