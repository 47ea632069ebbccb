"""User grammars through the same engine: Lark features, lexing rules, errors with locations."""

from __future__ import annotations

import pytest

import grammask as gm

CALC = r"""
?start: sum
?sum: product | sum ("+"|"-") product
?product: atom | product ("*"|"/") atom
?atom: NUMBER | NAME | "(" sum ")" | call
call: NAME "(" _separated{sum, ","} ")"
_separated{x, sep}: x (sep x)*
%import common.NUMBER
%import common.CNAME -> NAME
%import common.WS_INLINE
%ignore WS_INLINE
"""


def test_lark_features_imports_templates_ignore():
    g = gm.Grammar.from_lark(CALC)
    for ok in ["1 + 2*x", "f(1, g(2), 3) / (4 - y)", "  a  ", "max(1,2)"]:
        assert g.validate(ok).ok, (ok, g.validate(ok).message)
    for bad in ["1 +", "f(1,)", "(1", "1 2"]:
        r = g.validate(bad)
        assert not r.ok, bad
    assert g.validate("f(1,").prefix_ok and not g.validate("f(1,)").prefix_ok


def test_keywords_beat_names_of_the_same_length_longest_match_wins():
    g = gm.Grammar.from_lark(r"""
start: stmt+
stmt: "if" NAME ":" NAME ";" | NAME "=" NAME ";"
NAME: /[a-z]+/
%ignore " "
""")
    assert g.validate("if x: y;").ok
    assert g.validate("iffy = x;").ok           # longest match: NAME, not "if" + "fy"
    assert not g.validate("if = x;").ok         # "if" is a keyword, never a NAME


def test_terminal_priority_decides_between_equal_matches():
    g = gm.Grammar.from_lark(r"""
start: (HEX | DEC)+
HEX.2: /[0-9a-f]+h/
DEC: /[0-9]+/
%ignore " "
""")
    assert g.validate("12 ffh 3").ok


def test_intersect_directive_lexes_the_common_part_as_its_own_terminal():
    g = gm.Grammar.from_lark(r"""
start: "a" (A | AB) | "b" (B | AB) | "c" AB
A: /[a-m]+/
B: /[h-z]+/
AB.2: /[a-m]+/
// grammask: intersect AB ["[h-z]+"]
%ignore " "
""")
    for text, ok in [("a abc", True), ("a hij", True), ("b hij", True), ("b xyz", True), ("c hij", True),
                     ("c abc", False), ("c xyz", False), ("a xyz", False), ("b abc", False)]:
        assert g.validate(text).ok == ok, text


def test_case_insensitive_literals():
    g = gm.Grammar.from_lark('start: "select"i NAME\nNAME: /[a-z]+/\n%ignore " "')
    assert g.validate("SeLeCt abc").ok and g.validate("select abc").ok


@pytest.mark.parametrize("text,fragment,line", [
    ("start: a\na: \"x\" (", "syntax error", 2),
    ("start: missing_rule", "undefined rule", 1),
    ("", "empty", None),
    ("start: A\nA: /(?<=x)y/", "reaches before the start of the lexeme", 2),
    ("start: A\nA: /a*/", "matches the empty string", 2),
    ("start: A\nA: /a+/\n// grammask: intersect A [\"b+\"]", "match nothing", 2),
    ("start: A\nA: /a+/\n// grammask: intersect A b+", "intersect directive", 3),
    # directives (grammar/directives.py): a typo or a second layout directive is an error, not ignored
    ("start: A\nA: /a+/\n// grammask: indnet NL=A", "unknown grammask directive 'indnet'", 3),
    ("start: A\nA: /a+/\n// grammask: fstrings on", "unknown argument 'on'", 3),
    ("start: A\nA: /a+/\n// grammask: indent NL=A NEWLINE=A INDENT=A DEDENT=A\n"
     "// grammask: semicolons SEMICOLON=A NEWLINE=A AFTER=A", "one indent or one semicolons", 4),
    ("start: A\nA: /a+/\n// grammask: keep B", "keep directive: B is not a terminal", 3),
])
def test_broken_grammars_raise_grammar_error(text, fragment, line):
    with pytest.raises(gm.GrammarError) as info:
        gm.Grammar.from_lark(text)
    assert fragment in str(info.value).lower() or fragment in str(info.value)
    if line is not None:
        assert info.value.line == line, str(info.value)


def test_unknown_builtin_and_missing_file(tmp_path):
    with pytest.raises(gm.GrammarError, match="unknown built-in grammar 'yaml'"):
        gm.Grammar.builtin("yaml")
    with pytest.raises(gm.GrammarError, match="not found"):
        gm.Grammar.from_file(tmp_path / "nope.lark")


def test_user_grammar_masks(tmp_path):
    info = gm.TokenizerInfo.from_token_bytes([b"f(", b"1", b",", b")", b" ", b"+", b"x", b"(", None],
                                             stop_token_ids=[8])
    m = gm.compile(gm.Grammar.from_lark(CALC), info, cache_dir=False).matcher()
    assert set(m.allowed_token_ids()) == {0, 1, 4, 6, 7}
    assert m.accept_tokens([0, 1, 2, 4, 6])
    # "f(1, x": the name may still grow ("xf(", "x1") or be called ("x(")
    assert set(m.allowed_token_ids()) == {0, 1, 2, 3, 4, 5, 6, 7}
    assert m.accept_token(4)
    # after "x ": an operator, a separator, or "(" (a call: whitespace is ignored); no second operand
    assert set(m.allowed_token_ids()) == {2, 3, 4, 5, 7}
    assert m.accept_tokens([3, 8]) and m.is_terminated()


def test_relative_imports_are_found_beside_the_grammar_file(tmp_path, monkeypatch):
    """`%import .module.NAME` reads module.lark beside the importing file (Lark's rule), at any depth,
    whatever the current directory; an edit to an imported file is a new grammar (digest, tables)."""
    from lark import Lark

    (tmp_path / "sub").mkdir()
    (tmp_path / "g.lark").write_text('start: marker+\n%import .markers.marker\n%ignore " "\n')
    (tmp_path / "markers.lark").write_text('marker: "@" WORD\n%import .sub.words.WORD\n')
    (tmp_path / "sub" / "words.lark").write_text("WORD: /[a-z]+/\n")
    monkeypatch.chdir(tmp_path / "sub")  # not where the grammar is
    lark = Lark((tmp_path / "g.lark").read_text(), parser="lalr", source_path=str(tmp_path / "g.lark"))
    g = gm.Grammar.from_file(tmp_path / "g.lark")
    for text in ("@abc", "@a @bc", "@1", "@", "abc"):
        try:
            lark.parse(text)
            expected = True
        except Exception:
            expected = False
        assert g.validate(text).ok is expected, text
    before = g.digest
    (tmp_path / "sub" / "words.lark").write_text("WORD: /[a-z0-9]+/\n")
    edited = gm.Grammar.from_file(tmp_path / "g.lark")
    assert edited.digest != before and edited.validate("@1 @a2").ok


def test_a_missing_import_names_the_file_and_the_line(tmp_path):
    (tmp_path / "g.lark").write_text('start: "a" marker\n%import .nowhere.marker\n')
    with pytest.raises(gm.GrammarError, match=r"no grammar file nowhere\.lark beside .*g\.lark") as info:
        gm.Grammar.from_file(tmp_path / "g.lark")
    assert info.value.line == 2


def test_a_postlexer_other_than_an_indenter_is_refused_with_what_works():
    from lark.indenter import PythonIndenter

    class Upper:
        always_accept = ()

        def process(self, stream):
            return stream

    with pytest.raises(gm.GrammarError, match="supports lark.indenter.Indenter postlexers.*not an Indenter"):
        gm.Grammar.from_lark('start: "a"', postlex=Upper())
    # an Indenter is taken (tests/test_lark_indenter.py); here its terminals are missing
    with pytest.raises(gm.GrammarError, match="NL_type _NEWLINE is not a terminal of the grammar"):
        gm.Grammar.from_lark('start: "a"', postlex=PythonIndenter())


def test_a_terminal_never_produced():
    """Every parser state takes both A and B, and A wins every text: under grammask's own longest-match rule
    that is an error; a Lark grammar means what Lark makes of it (B never appears), with a warning."""
    text = "start: (A | B)+\nA: /a+/\nB: /a+/"
    with pytest.raises(gm.GrammarError, match="terminal B can never be produced") as info:
        gm.Grammar(text).tables
    assert info.value.line == 3
    with pytest.warns(gm.GrammarWarning, match="3:1: terminal B can never be produced"):
        g = gm.Grammar.from_lark(text)
    assert g.validate("aaa").ok
