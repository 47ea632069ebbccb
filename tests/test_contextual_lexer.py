"""Lark's contextual lexer (fsm/contextual.py): each lexeme lexed with the terminals its parser state
accepts. Lark's own LALR parser, with its default lexer, is the oracle throughout."""

from __future__ import annotations

import random
import warnings

import lark
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis.extra.lark import from_lark

import grammask as gm
from grammask._core import CoreGrammar, TableError
from grammask.decoding.compiler import core_grammar_arrays
from grammask.grammar.table_cache import from_arrays, to_arrays

from conftest import BYTE_LEVEL, SENTENCEPIECE, decoded_text, lark_accepts, tokenizer_info

# Keywords glued to names: after a type, `intA` is `int` `A` (the type's state accepts no NAME).
GLUED = r"""
start: decl*
decl: type NAME "(" ")" "{" "}"
type: "int" -> int_t
    | "char" -> char_t
NAME: /[a-zA-Z_][a-zA-Z0-9_]*/
%ignore /[ \t\n]+/
"""
GLUED_TEXTS = ["intA(){}", "int A(){}", "intint(){}", "int int(){}", "charx(){} intA(){}", "int(){}", "inta",
               "int char(){}", "intA(){}charB(){}", "intA (){}", "int\nA(){}", "i(){}", "intA(){}int"]

# A keyword terminal that NAME shadows everywhere but where only it fits: the one lexer would never make it.
CONTEXT_ONLY = r"""
start: stmt*
stmt: "loop" INVARIANT NAME ";" -> loop
    | NAME "=" NAME ";"        -> assign
INVARIANT.-1: "invariant"
NAME: /[a-z]+/
%ignore " "
"""
CONTEXT_ONLY_TEXTS = ["loop invariant x;", "loopinvariant x;", "invariant = loop;", "loop = x;", "loopinvariantx;",
                      "loop invariantx;", "x = invariant;", "loop invariant invariant;", "loop invariant;"]

# After NAME the parser state decides the next lexeme's mode (a KW-only state or a NAME-only one).
DYNAMIC = r"""
start: item*
item: "a" NAME KW | "b" NAME NAME
KW: "kw"
NAME: /[a-z]+/
%ignore " "
"""
DYNAMIC_TEXTS = ["a x kw", "b x kw", "a xkw", "b kw kw", "a kw kw", "a kwkw", "a x kwb y z", "a x kwa y kw",
                 "b x kwa y kw", "b xkw kw"]

CASES = {"glued": (GLUED, GLUED_TEXTS), "context_only": (CONTEXT_ONLY, CONTEXT_ONLY_TEXTS),
         "dynamic": (DYNAMIC, DYNAMIC_TEXTS)}


def generated(parser: lark.Lark, n: int) -> list[str]:
    """Texts hypothesis derives from the grammar (terminals glued, no ignored text between them)."""
    out: list[str] = []

    @settings(max_examples=n, derandomize=True, database=None, suppress_health_check=list(HealthCheck))
    @given(from_lark(parser))
    def collect(text):
        out.append(text)

    collect()
    return out


def mutations(texts: list[str], n: int, alphabet: str) -> list[str]:
    rng = random.Random(7)
    out = []
    for _ in range(n):
        t = rng.choice(texts)
        i = rng.randrange(len(t) + 1)
        kind = rng.randrange(3)
        if kind == 0 and t:
            i = min(i, len(t) - 1)
            out.append(t[:i] + t[i + 1:])
        elif kind == 1:
            out.append(t[:i] + rng.choice(alphabet) + t[i:])
        else:
            out.append(t[:i] + " " + t[i:])
    return out


@pytest.mark.parametrize("case", list(CASES))
def test_validator_agrees_with_lark(case):
    text, hand = CASES[case]
    parser = lark.Lark(text, parser="lalr")
    grammar = gm.Grammar.from_lark(text)
    assert grammar.tables.state_mode is not None  # each of these needs the contextual lexer
    texts = hand + generated(parser, 150)
    texts += mutations([t for t in texts if t], 300, "aiknotvw(){} ;=")
    accepted = [t for t in texts if lark_accepts(parser, t)]
    assert len(accepted) > 40, "too few texts Lark accepts to judge by"
    wrong = [(t, lark_accepts(parser, t)) for t in texts if grammar.validate(t).ok != lark_accepts(parser, t)]
    assert not wrong, wrong[:10]


def test_context_only_keyword():
    """Lark's basic lexer never makes INVARIANT (NAME comes first); its contextual lexer does, where only
    INVARIANT fits."""
    with pytest.warns(gm.GrammarWarning, match="INVARIANT can never be produced"):
        basic = gm.Grammar.from_lark(CONTEXT_ONLY, lexer="basic")
    assert not basic.validate("loop invariant x;").ok
    assert gm.Grammar.from_lark(CONTEXT_ONLY).validate("loop invariant x;").ok


def test_restart_modes():
    """A terminal after which every parser state lexes alike restarts in a fixed mode; NAME in DYNAMIC is
    followed by a KW-only state or a NAME-only one, so the parser state decides (-2)."""
    t = gm.Grammar.from_lark(DYNAMIC).tables
    names = [s.name for s in t.terminals]
    assert t.mode_restart[names.index("NAME")] == -2
    assert all(r >= -1 for n, r in zip(names, t.mode_restart) if n != "NAME")
    assert t.lex_init == t.lexer.mode_start[t.state_mode[t.parser.start_state]]


def test_modes_only_where_needed():
    """A grammar whose terminals never compete lexes with the one lexer: no modes, no cost."""
    calc = r"""
    ?start: sum
    ?sum: product | sum "+" product -> add | sum "-" product -> sub
    ?product: atom | product "*" atom -> mul
    ?atom: NUMBER -> number | "(" sum ")"
    %import common.NUMBER
    %ignore " "
    """
    assert gm.Grammar.from_lark(calc).tables.state_mode is None
    assert gm.Grammar.from_lark(GLUED, lexer="basic").tables.state_mode is None
    assert gm.Grammar.builtin("json").tables.state_mode is None  # the built-ins keep their one lexer
    with pytest.raises(gm.GrammarError, match="lexer='dynamic'"):
        gm.Grammar.from_lark(GLUED, lexer="dynamic")


def test_lexer_kind_is_part_of_the_digest():
    g = gm.Grammar.from_lark(GLUED)
    assert len({g.digest, gm.Grammar.from_lark(GLUED, lexer="basic").digest, gm.Grammar(GLUED).digest}) == 3


def test_tables_round_trip_and_corruption_is_refused():
    t = gm.Grammar.from_lark(DYNAMIC).tables
    meta, arrays = to_arrays(t)
    back = from_arrays(meta, arrays)
    assert np.array_equal(back.state_mode, t.state_mode) and np.array_equal(back.mode_restart, t.mode_restart)
    bad = dict(arrays, state_mode=np.full_like(arrays["state_mode"], len(t.lexer.mode_start)))
    with pytest.raises(ValueError, match="contextual lexer modes"):
        from_arrays(meta, bad)
    core_args = core_grammar_arrays(t)
    with pytest.raises(TableError, match="state_mode"):
        CoreGrammar(**dict(core_args, state_mode=np.full(t.parser.action.shape[0], 99, np.int32)))
    with pytest.raises(TableError, match="state_mode"):
        CoreGrammar(**dict(core_args, state_mode=np.zeros(3, np.int32)))


@pytest.mark.parametrize("family", [BYTE_LEVEL, SENTENCEPIECE])
@pytest.mark.parametrize("case", ["glued", "dynamic"])
def test_masks_follow_lark(case, family, cache_dir):
    """Random walks under the masks end only in texts Lark parses, and at every step a sample of tokens is
    in the mask exactly when the validator takes the text so far plus the token as a prefix."""
    text = CASES[case][0]
    parser = lark.Lark(text, parser="lalr")
    grammar = gm.Grammar.from_lark(text)
    info = tokenizer_info(family)
    matcher = gm.compile(grammar, info, cache_dir=cache_dir).matcher()
    rng = random.Random(3)
    stop = set(info.stop_token_ids)
    ascii_ids = [i for i, b in enumerate(info.token_bytes) if b and b.isascii() and i not in stop]
    ended = 0
    for _ in range(25):
        matcher.reset()
        ids: list[int] = []
        for _ in range(30):
            allowed = matcher.allowed_token_ids()
            assert len(allowed)
            allowed_set = set(allowed.tolist())
            so_far = decoded_text(info, ids)
            for t in rng.sample(ascii_ids, 40):
                if info.strips_leading_space and not ids:
                    continue  # the first token's dropped space: the validator does not see it
                assert (t in allowed_set) == grammar.validate(so_far + info.token_bytes[t]).prefix_ok, \
                    (so_far, info.token_bytes[t])
            stops = [t for t in allowed_set if t in stop]
            if stops and rng.random() < 0.5:
                ended += 1
                assert lark_accepts(parser, so_far.decode()), so_far
                break
            short = [t for t in allowed_set if t not in stop and len(info.token_bytes[t] or b"") <= 3]
            t = rng.choice(short or sorted(allowed_set))
            assert matcher.accept_token(t)
            ids.append(t)
    assert ended >= 10


@pytest.mark.parametrize("case", ["dynamic", "glued_keywords", "csv"])
def test_restarts_the_parser_state_decides_are_in_the_tables(case, cache_dir):
    """Where the parser state picks the next lexeme's mode, the token tables hold a group per mode behind a
    mode marker (gm_build.c's walk_in_mode): the fill lexes almost no token by itself (before, every token
    that ends a lexeme there was lexed one by one at each fill, tens of milliseconds at a 49k vocabulary),
    and the masks are those of test_masks_follow_lark."""
    from bench import lark_compat

    text = CASES[case][0] if case in CASES else lark_compat.CASES[case].grammar_text()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gm.GrammarWarning)  # csv's FLOAT, as Lark's lexer never makes it
        grammar = gm.Grammar.from_lark(text)
    info = tokenizer_info(BYTE_LEVEL)
    arrays = gm.compile(grammar, info, cache_dir=cache_dir).core_vocab.arrays
    assert (grammar.tables.mode_restart == -2).any()  # such restarts exist here
    seq_begin, seq_terms = arrays["seq_begin"], arrays["seq_terms"]
    markers = {int(s) for s in arrays["group_seq"] if (seq_terms[seq_begin[s]:seq_begin[s + 1]] < 0).any()}
    assert markers, "no group behind a mode marker"
    sizes = np.diff(arrays["group_tok_begin"])
    begin = arrays["group_begin"]
    for ts in range(len(begin) - 1):
        dynamic = arrays["group_cset"][begin[ts]:begin[ts + 1]] == -2
        assert sizes[begin[ts]:begin[ts + 1]][dynamic].sum() < info.vocab_size // 100, ts
