"""Look-arounds past the end of a Lark terminal's lexeme (lark.lark's `OP: /[+*]|[?](?![a-z])/`, python.lark's
STRING with `(?!"")`, `/\\S+$/m`): the lexeme may end in a state only before some next bytes (LexerDFA.cond,
cond_rows). Oracles: `re.match` for one terminal's automaton, Lark's own lexer for the byte DFA (simulated
here in Python), Lark's LALR parser for the validator, and the validator for the masks."""

from __future__ import annotations

import random
import re
import warnings
from pathlib import Path

import lark
import numpy as np
import pytest

import grammask as gm
from grammask.fsm.python_regex import RegexUnsupported, regex_dfa
from grammask.grammar.table_cache import from_arrays, to_arrays
from grammask.grammar.tables import build_tables

from conftest import BYTE_LEVEL, SENTENCEPIECE, assert_masks_follow_validator, lark_accepts

LARK_GRAMMARS = Path(lark.__file__).resolve().parent / "grammars"
FLAGS = Path(__file__).resolve().parent / "data" / "lark_compat" / "flags.lark"

OP = 'start: item+\nitem: NAME OP?\nOP: /[+*]|[?](?![a-z])/\nNAME: /[a-z]+/\n%ignore " "\n'
# A conditional match that cuts a later terminal on some bytes only, and a string shadowed by a regex
MIX = ('start: (Q | QN | NAME | INT | QQ)+\nQ: /[?](?![a-z0-9])/\nQN: /[?]\\d+/\nQQ: "??"\nNAME: /[a-z]+/\n'
       'INT: /\\d+/\n%ignore " "\n')
# python.lark's STRING alone: `""` is a lexeme only when no third quote follows
STRINGS = ('start: (STRING | NAME | LONG_STRING)+\n'
           'STRING: /([ubf]?r?|r[ubf])("(?!"").*?(?<!\\\\)(\\\\\\\\)*?"|\'(?!\'\').*?(?<!\\\\)(\\\\\\\\)*?\')/i\n'
           'LONG_STRING: /([ubf]?r?|r[ubf])(""".*?(?<!\\\\)(\\\\\\\\)*?"""|\'\'\'.*?(?<!\\\\)(\\\\\\\\)*?\'\'\')/is\n'
           'NAME: /[a-z]+/\n%ignore " "\n')


# Look-aheads that the character after the lexeme decides but its first byte does not (Unicode \w: U+00E9 is
# a letter, U+00D7 is not, both begin with 0xC3): a keyword with \b beside an ASCII name (the name is the
# choice left when é fails the keyword's \b), beside a Unicode name (which takes é), one beside a \b name
# (two tentative matches on one character), and a word alone (nothing left when it fails).
KEYWORD_B = 'start: (IF | NAME | SIGN)+\nIF.2: /if\\b/\nNAME: /[a-z]+/\nSIGN: /[^\\w ]/\n%ignore " "\n'
KEYWORD_UNICODE = 'start: (IF | NAME)+\nIF.2: /if\\b/\nNAME: /\\w+/\n%ignore " "\n'
KEYWORD_BOTH_B = 'start: (IF | NAME | SIGN)+\nIF.2: /if\\b/\nNAME: /[a-z]+\\b/\nSIGN: /[×]/\n%ignore " "\n'
WORD_B = 'start: (WORD | SIGN)+\nWORD: /[a-z]+(?!\\w)/\nSIGN: /[^\\w ]/\n%ignore " "\n'
# ... where parser states lex with different terminals (the contextual lexer: a type is lexed only where one
# is expected, so `inté` is a name after a type and an error before one)
TYPED = 'start: decl+\ndecl: TYPE NAME ";"\nTYPE.2: /int\\b|long\\b/\nNAME: /[a-zé×]+/\n%ignore " "\n'
UNICODE_ALPHABET = ["i", "f", "a", "x", " ", "é", "×", "\u00a0", "ª", "ы", "€", "😀"]


def _python_lark_lexable() -> str:
    """python.lark with its declared indentation terminals given a pattern, for the basic lexer alone."""
    text = (LARK_GRAMMARS / "python.lark").read_text(encoding="utf-8")
    return text.replace("%declare _INDENT _DEDENT", '_INDENT: "\\x01"\n_DEDENT: "\\x02"')


# ---- one terminal: the automaton with conditional accepting states is re.match ----

def _char_lexeme(dfa, text: str):
    """The lexeme the automaton gives at the start of `text`: the longest run, back to the last state
    that accepts before the character after it (or at the end)."""
    q, last = 0, None
    for i, ch in enumerate(text):
        if i and dfa.accepts_before(q, ch):
            last = i
        for lo, hi, t in dfa.edges[q]:
            if lo <= ord(ch) <= hi:
                q = t
                break
        else:
            return last
    return len(text) if dfa.accepts_before(q, None) else last


@pytest.mark.parametrize("regex", [
    r"[+*]|[?](?![a-z])", r'([ubf]?r?|r[ubf])("(?!"").*?(?<!\\)(\\\\)*?"|' + r"'(?!'').*?(?<!\\)(\\\\)*?')",
    r"(?m)\S+$", r"a(?!b)|ac", r"a+(?=b)", r"(?a)\w+\b", r"\w+\b", r"x(?=[a-c])|xa", r"(?m)a$|ab", r"ab?(?!c)",
    r'(?i)"(?!"")[^"]*"', r"a\Z|ab",
])
def test_conditional_automaton_is_re_match(regex):
    dfa = regex_dfa(regex)
    assert any(c is not None for c in dfa.cond)
    rng = random.Random(regex)
    alphabet = "abcxy?+*\"'\\ \n\tuébr"
    for _ in range(4000):
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 8)))
        m = re.match(regex, text)
        assert _char_lexeme(dfa, text) == (m.end() if m and m.end() else None), (regex, text)


@pytest.mark.parametrize("regex", [r"a(?!bc)", r"a$", r"a(?=bc)"])
def test_a_lookahead_the_next_character_cannot_decide_is_refused(regex):
    with pytest.raises(RegexUnsupported, match="more than one character past"):
        regex_dfa(regex)


@pytest.mark.parametrize("pattern, message", [
    (r"/[a-z]+$/", "does not decide it"),                      # $ without m: a newline, then the end
    (r"/a(?!bc)/", "does not decide it"),
])
def test_grammar_error_names_the_terminal(pattern, message):
    with pytest.raises(gm.GrammarError, match=f"terminal WORD: .*{re.escape(message)}"):
        gm.Grammar.from_lark(f'start: WORD+\nWORD: {pattern}\n%ignore " "\n')


def test_a_void_lookahead_that_would_lose_a_shorter_lexeme_is_refused():
    """`1x` then é: X's \b fails, and Lark goes back to INT `1`, complete before the x; the runtime keeps
    only the latest complete lexeme (X's, tentative), so this one grammar is refused, naming X."""
    with pytest.raises(gm.GrammarError, match="terminal X: .*a shorter lexeme may already be complete"):
        gm.Grammar.from_lark('start: (X | INT | NAME)+\nX: /1x\\b/\nINT: /1/\nNAME: /x/\n%ignore " "\n')


def test_the_longest_match_lexer_refuses_them():
    with pytest.raises(gm.GrammarError, match="terminal OP: .*Lark's scanner"):
        gm.Grammar.from_lark(OP, lexer="longest")


def test_decidable_by_the_first_byte_is_taken():
    """(?a)\\b and \\Z: the next byte decides."""
    for pattern in (r"/(?a)[a-z]+\b/", r"/[a-z]+\Z/"):
        gm.Grammar.from_lark(f'start: WORD+\nWORD: {pattern}\n%ignore " "\n')


# ---- the byte DFA: Lark's basic lexer, simulated ----

def _byte_lex(tables, data: bytes):
    """The basic lexer's tokens (ignored ones dropped) and the offset of an error (None: none): the longest
    run through the DFA, back to the last state whose winner before the next byte (or the end) is a
    terminal, as re.match backtracks; a state that voids that one (a look-ahead the character after it
    failed) makes it the one its void names, or none."""
    lexer = tables.lexer
    out, pos = [], 0
    while pos < len(data):
        q, last, i = 0, None, pos
        while True:
            b = data[i] if i < len(data) else 256
            if i > pos and lexer.winner_before(q, b) >= 0:
                last = (i, lexer.winner_before(q, b))
            if b == 256 or lexer.trans[q, b] < 0:
                break
            q, i = int(lexer.trans[q, b]), i + 1
            if lexer.void is not None and lexer.void[q] != -1 and last is not None:
                last = None if lexer.void[q] == -2 else (last[0], int(lexer.void[q]))
        if last is None:
            return out, pos
        end, w = last
        if not tables.terminals[w].ignored:
            out.append((tables.terminals[w].name, data[pos:end].decode("utf-8")))
        pos = end
    return out, None


def _lark_lex(lexer_parser, text: str):
    out = []
    try:
        for tok in lexer_parser.lex(text):
            out.append((tok.type, str(tok)))
    except lark.exceptions.UnexpectedCharacters as exc:
        return out, len(text[:exc.pos_in_stream].encode("utf-8"))
    return out, None


@pytest.mark.parametrize("name, grammar, start, alphabet", [
    ("op", OP, "start", "ab?+* é\n"),
    ("mix", MIX, "start", "a1?? "),
    ("strings", STRINGS, "start", "\"'\\rbux \n"),
    ("lark_lark", lambda: (LARK_GRAMMARS / "lark.lark").read_text(encoding="utf-8"), "start", "ab?+*~ :/\"'\\.!%i\n"),
    ("python_lark", _python_lark_lexable, "file_input", "\"'\\rbuf x=()#1. \n"),
    ("flags", lambda: FLAGS.read_text(encoding="utf-8"), "start", "ab =\"\n\r<>;$1. \t"),
    *((name, g, "start", UNICODE_ALPHABET) for name, g in (("keyword_b", KEYWORD_B), ("keyword_both_b", KEYWORD_BOTH_B),
                                                           ("word_b", WORD_B))),
])
def test_byte_lexer_is_larks_basic_lexer(name, grammar, start, alphabet):
    text = grammar() if callable(grammar) else grammar
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tables = build_tables(text, start, lexer_kind="basic")
        parser = lark.Lark(text, parser="lalr", lexer="basic", start=start)
    assert tables.lexer.cond is not None
    parser.lexer = parser._build_lexer()  # Lark.lex builds it again on every call otherwise
    rng = random.Random(name)
    for _ in range(3000):
        sample = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10)))
        assert _byte_lex(tables, sample.encode("utf-8")) == _lark_lex(parser, sample), sample


# ---- the validator (the C core) against Lark's LALR parser with its contextual lexer ----

def _texts(seeds, alphabet: str, n: int, seed: str) -> list[str]:
    """The seeds, random strings over the alphabet, and seeded edits of the seeds."""
    rng = random.Random(seed)
    out = list(seeds)
    for _ in range(n):
        if rng.random() < 0.6:
            s = list(rng.choice(seeds))
            for _ in range(rng.randint(1, 3)):
                i = rng.randint(0, len(s))
                op = rng.random()
                if op < 0.4 or not s:
                    s.insert(i, rng.choice(alphabet))
                elif op < 0.7:
                    del s[min(i, len(s) - 1)]
                else:
                    s[min(i, len(s) - 1)] = rng.choice(alphabet)
            out.append("".join(s))
        else:
            out.append("".join(rng.choice(alphabet) for _ in range(rng.randint(1, 10))))
    return out


VALIDATOR_CASES = {
    "op": (OP, "ab?+* ", ["a? b", "a?b", "a+b", "ab ? c", "a?", "a*?"]),
    "mix": (MIX, "a1?? ", ["? a", "?1", "?a", "??1a", "???", "a??"]),
    "strings": (STRINGS, "\"'bru x", ['""', '"" ""', 'b""', '"""a"""', '""""""', "''x", 'r"\\""', "'''''' ''"]),
    "flags": (None, "ab =\"\n<>;1.\t", ["include a.txt\n", "key = 1\n", "include x\ny = \"s\"\n", "a = <<<x>>>\n"]),
    "keyword_b": (KEYWORD_B, UNICODE_ALPHABET, ["if x", "ifé", "if×", "x if", "iff if"]),
    "keyword_unicode": (KEYWORD_UNICODE, UNICODE_ALPHABET, ["if x", "ifé", "if×", "é if", "ifª"]),
    "keyword_both_b": (KEYWORD_BOTH_B, UNICODE_ALPHABET, ["if x", "ifé", "if×", "x×if", "xx if"]),
    "word_b": (WORD_B, UNICODE_ALPHABET, ["a", "a×", "aé", "ax €", "a\u00a0"]),
    "typed": (TYPED, ["i", "n", "t", "l", "o", "g", "x", " ", ";", "é", "×", "ª"],
              ["int x;", "int inté;", "long int×;", "int x;long y;", "inté x;"]),
}


@pytest.mark.parametrize("name", list(VALIDATOR_CASES))
def test_validator_agrees_with_lark(name):
    grammar, alphabet, seeds = VALIDATOR_CASES[name]
    grammar = grammar or FLAGS.read_text(encoding="utf-8")
    parser = lark.Lark(grammar, parser="lalr")
    ours = gm.Grammar.from_lark(grammar)
    texts = _texts(seeds, alphabet, 1500, name)
    wrong = [(t, lark_accepts(parser, t)) for t in texts if ours.validate(t).ok != lark_accepts(parser, t)]
    assert sum(lark_accepts(parser, t) for t in texts) > 100
    assert not wrong, wrong[:10]


def test_python_lark_with_its_indenter_agrees_with_lark():
    """Lark's own python.lark (STRING's `(?!"")`), with PythonIndenter: `b""` then a newline is STRING (the
    conditional state is complete before the newline: no fallback to NAME `b`), and edits of a few sources."""
    from lark.indenter import PythonIndenter

    text = (LARK_GRAMMARS / "python.lark").read_text(encoding="utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = lark.Lark(text, parser="lalr", start="file_input", postlex=PythonIndenter())
        # 30,000 lexer states: about 17 s on an idle 2-core machine, more beside other work (the 30 s default
        # bound is for runaway grammars, not this one)
        ours = gm.Grammar.from_lark(text, start="file_input", postlex=PythonIndenter(), build_timeout=300)
    seeds = ['x = ""\n', 'x = b""\ny = 1\n', "s = ''' a ''' + \"b\"\n", 'def f(a, b=""):\n    return a\n',
             'if x:\n    y = "a\\"b" \'\'\nelse:\n    pass\n', 'print(f"{x}", rb"\\d", "")\n', "x = ''\n"]

    def lark_says(t):
        try:
            return lark_accepts(parser, t)
        except IndexError:  # Lark's Indenter on a comment-only _NEWLINE without a newline: a crash, no text
            return None

    verdicts = [(t, lark_says(t)) for t in _texts(seeds, "\"'\\rbf x=()#1. \n", 600, "python")]
    wrong = [(t, ok) for t, ok in verdicts if ok is not None and ours.validate(t).ok != ok]
    assert all(ok for _, ok in verdicts[:len(seeds)])
    assert not wrong, wrong[:10]


# ---- masks ----

@pytest.mark.parametrize("family", [BYTE_LEVEL, SENTENCEPIECE])
@pytest.mark.parametrize("grammar, prefixes", [
    (OP, [b"", b"a", b"a?", b"a ?", b"a? b", b"a+", b"ab?"]),
    (STRINGS, [b"", b'"', b'""', b'b""', b'"" ', b"''", b'""""', b'"a"']),
    (KEYWORD_B, [b"", b"i", b"if", b"if\xc3", b"if \xc3", b"x", b"if\xc3\x97", b"iff", b"if\xe2\x82"]),
    (WORD_B, [b"", b"a", b"ax\xc3", b"a\xc3\x97", b"a \xc2", b"a\xc2"]),
], ids=["op", "strings", "keyword_b", "word_b"])
def test_masks_equal_the_validator_for_every_token(grammar, prefixes, family, cache_dir):
    """After prefixes that end in a conditional state (`a?`, `""`: the next byte decides the lexeme), a
    token is in the mask exactly when the validator takes the prefix plus the token as a prefix."""
    assert_masks_follow_validator(grammar, family, prefixes, cache_dir)


# ---- tables ----

def test_builtins_have_no_conditional_state():
    for name in ("json", "python", "go"):
        assert gm.Grammar.builtin(name).tables.lexer.cond is None


def test_conditional_states_survive_the_table_cache():
    tables = build_tables(OP, "start", lexer_kind="contextual")
    back = from_arrays(*to_arrays(tables))
    assert (back.lexer.cond == tables.lexer.cond).all()
    assert (back.lexer.cond_rows == tables.lexer.cond_rows).all()
    q = int(tables.lexer.trans[0, ord("?")])
    op = [t.name for t in tables.terminals].index("OP")
    assert tables.lexer.winner[q] == -1 and tables.lexer.final[q] == 0
    assert tables.lexer.winner_before(q, ord("a")) == -1
    assert tables.lexer.winner_before(q, ord(" ")) == op and tables.lexer.winner_before(q, 256) == op


def test_voiding_states_survive_the_table_cache_and_bad_ones_are_refused():
    from grammask._core import CoreGrammar, TableError
    from grammask.decoding.compiler import core_grammar_arrays

    tables = build_tables(KEYWORD_B, "start", lexer_kind="contextual")
    lexer = tables.lexer
    assert lexer.void is not None and (lexer.void >= 0).any()  # é after `if`: NAME `if` is the choice left
    meta, arrays = to_arrays(tables)
    back = from_arrays(meta, arrays)
    assert (back.lexer.void == lexer.void).all()
    with pytest.raises(ValueError, match="voided fallbacks"):
        from_arrays(meta, dict(arrays, lex_void=np.full_like(arrays["lex_void"], len(tables.terminals))))
    with pytest.raises(ValueError, match="one entry per lexer state"):
        from_arrays(meta, dict(arrays, lex_void=arrays["lex_void"][:-1]))
    core_args = core_grammar_arrays(tables)
    CoreGrammar(**core_args)
    for bad in (np.full(lexer.n_states, -3, np.int32), np.full(lexer.n_states, len(tables.terminals), np.int32),
                np.zeros(lexer.n_states + 1, np.int32)):
        with pytest.raises(TableError, match="lex_void"):
            CoreGrammar(**dict(core_args, lex_void=bad))
    with pytest.raises(TableError, match="lex_void"):
        CoreGrammar(**dict(core_args, lex_fallback=0))
