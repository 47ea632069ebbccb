"""The fallback to a shorter lexeme (gm_feed.h's fall_back): when the lexeme in progress dies after it passed a
complete one, Lark's re.match backtracks to that one and the bytes after it are lexed again. Lark's LALR
parser is the oracle for texts; for masks, the validator on the text plus each token of the vocabulary."""

from __future__ import annotations

import lark
import pytest

import grammask as gm

from conftest import (BYTE_LEVEL, SENTENCEPIECE, assert_masks_follow_validator, lark_accepts,
                      tokenizer_info)

# `1e` is NUMBER `1` then NAME `e` (FLOAT needs digits after the exponent); `1e+x` is not a text at all.
NUMBERS = r"""
start: (NUMBER | NAME | DOT | PLUS)*
DOT: "."
PLUS: "+"
%import common (NUMBER, WS)
%import common.CNAME -> NAME
%ignore WS
"""
NUMBER_TEXTS = ["1e", "1ex", "1.e", "1.e5", "1 e", "1E\n", "1e+", "1e+x", "1e5", "1e+5", "1e+ 5", "2.5E-x",
                "1e1e1", "1.5.e", "e1e", "1e\t+"]

# A \w name before a character whose first byte could continue it: U+00A0 (C2 A0) starts like U+00AA,
# U+2003 (E2 80 83) like U+203F. Lark, on characters, ends the name there.
NAMES = r"""
start: (NAME "=" NAME ";")*
NAME: /[^\W\d]\w*/
%ignore /\s+/
"""
NAME_TEXTS = ["x\xa0= y;", "x\u2003=\u2003y;", "Ωmega\xa0=\u2003x;", "x\u203f = y;", "x =y\u2028;", "x\u2003",
              "x\xa0\xa0=y;", "é\u3000=\u3000ü;", "x\u2010= y;"]


@pytest.mark.parametrize("grammar, texts", [(NUMBERS, NUMBER_TEXTS), (NAMES, NAME_TEXTS)], ids=["numbers", "names"])
def test_validator_agrees_with_lark(grammar, texts):
    parser = lark.Lark(grammar, parser="lalr")
    ours = gm.Grammar.from_lark(grammar)
    wrong = [(t, lark_accepts(parser, t)) for t in texts if ours.validate(t).ok != lark_accepts(parser, t)]
    assert not wrong, wrong


def test_an_incomplete_text_that_needs_the_fallback_is_a_prefix():
    """A text that ends inside the bytes a fallback would lex again (`1e+` here is 1, e, +; `x` then the first
    bytes of a character) is judged by what may still follow."""
    ours = gm.Grammar.from_lark(NUMBERS)
    assert ours.validate("1e+").ok  # NUMBER 1, NAME e, PLUS
    names = gm.Grammar.from_lark(NAMES)
    r = names.validate(b"x\xe2\x80")
    assert not r.ok and r.prefix_ok
    r = names.validate("x=y;é")
    assert not r.ok and r.prefix_ok


@pytest.mark.parametrize("family", [BYTE_LEVEL, SENTENCEPIECE])
@pytest.mark.parametrize("grammar, prefixes", [
    (NUMBERS, [b"", b"1", b"1e", b"1e+", b"1E-", b"x 2.5e", b"1.", b"1e5"]),
    (NAMES, [b"", b"x", b"x\xc2", b"x\xe2\x80", b"x =\xe2\x80", b"ab\xc2\xa0", b"x = y"]),
], ids=["numbers", "names"])
def test_masks_equal_the_validator_for_every_token(grammar, prefixes, family, cache_dir):
    """After each prefix (several end with a fallback pending: the fill then takes the tokens that end the
    lexeme from the tables after the fallback, the others one by one), a token is in the mask exactly when
    the validator takes the prefix plus the token as a prefix."""
    assert_masks_follow_validator(grammar, family, prefixes, cache_dir)


@pytest.mark.parametrize("family", [BYTE_LEVEL])
def test_tokens_into_and_out_of_a_pending_fallback(family, cache_dir):
    """Tokens that end inside the bytes a fallback would lex again, the fill from there, rollback over them,
    and completeness at the end of the text all follow the validator."""
    ours = gm.Grammar.from_lark(NUMBERS)
    info = tokenizer_info(family)
    matcher = gm.compile(ours, info, cache_dir=cache_dir).matcher()
    ids = {bytes(b): t for t, b in enumerate(info.token_bytes) if b}
    one, e, plus, x, five = (ids[s] for s in (b"1", b"e", b"+", b"x", b"5"))
    assert matcher.accept_token(one) and matcher.accept_token(e)
    assert matcher.is_accepting()  # 1, e
    assert matcher.accept_token(plus)
    assert matcher.is_accepting()  # 1, e, +
    assert matcher.accept_token(five)  # 1e+5
    assert matcher.is_accepting()
    matcher.rollback(1)
    assert matcher.accept_token(x)  # 1, e, +, x
    matcher.rollback(2)
    assert matcher.is_accepting()
    assert set(matcher.allowed_token_ids().tolist()) == {
        t for t, b in enumerate(info.token_bytes)
        if b and t not in info.stop_token_ids and ours.validate(b"1e" + b).prefix_ok} | set(
        t for t in info.stop_token_ids)


def test_a_fallback_further_back_than_the_limit_is_refused():
    """GM_FB_MAX (12 bytes): a lexeme that dies more than that past the complete one it passed is an error,
    where Lark would back up. Pinned here so that the limit is a known one."""
    grammar = 'start: (A | B)+\nA: /a(bcdefghijklmnopq)?/\nB: /[b-z]/\n'
    parser = lark.Lark(grammar, parser="lalr")
    ours = gm.Grammar.from_lark(grammar)
    short, long = "abcdefghijkx", "abcdefghijklmnopx"
    assert lark_accepts(parser, short) and ours.validate(short).ok
    assert lark_accepts(parser, long) and not ours.validate(long).ok
