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


def test_a_fallback_goes_back_any_distance():
    """Lark's re.match backs up over any number of bytes: the lexeme that dies 16 bytes past the complete one
    it passed falls back to it (the first bytes in the context, the others in the matcher's arena)."""
    grammar = 'start: (A | B)+\nA: /a(bcdefghijklmnopq)?/\nB: /[b-z]/\n'
    parser = lark.Lark(grammar, parser="lalr")
    ours = gm.Grammar.from_lark(grammar)
    for text in ["abcdefghijkx", "abcdefghijklmnopx", "abcdefghijklmnopqx", "abcdefghijklmnop", "abcdefghijklmnop9"]:
        assert ours.validate(text).ok == lark_accepts(parser, text), text


# lark.lark's comment and newline: COMMENT begins with \s*, so after a space or a tab, a newline and the next
# line's indentation go on with it; where no `//` comes, the text falls back to the space (WS_INLINE) and
# the newline is _NL, however long the indentation (Unicode spaces: up to 3 bytes each).
COMMENTS = r"""
start: (NAME | _NL)*
NAME: /[a-z]+/
_NL: /(\r?\n)+\s*/
COMMENT: /\s*/ "//" /[^\n]/*
%import common.WS_INLINE
%ignore WS_INLINE
%ignore COMMENT
"""
INDENTS = [" " * 11, " " * 12, " " * 13, " " * 40, " " * 300, "\u3000" * 5, "\x85" * 6,
           "\u205f\u2007\u2009\u200a\u2008\x1e\u3000\x1d"]
COMMENT_TEXTS = ([f"a\t\n{w}b" for w in INDENTS] + [f"a \n{w}//c\nb" for w in INDENTS]
                 + [f"a \n{w}" for w in INDENTS] + [f"a \n{w}/" for w in INDENTS] + [f"a \n{w}/b" for w in INDENTS]
                 + ["\t\n" + "\x85" * 6, "a\t\n" + " " * 20 + "\t\n" + " " * 20 + "b", "a \n" + " " * 20 + "//"])


def test_validator_agrees_with_lark_on_long_fallbacks():
    parser = lark.Lark(COMMENTS, parser="lalr")
    ours = gm.Grammar.from_lark(COMMENTS)
    wrong = [(t, lark_accepts(parser, t)) for t in COMMENT_TEXTS if ours.validate(t).ok != lark_accepts(parser, t)]
    assert not wrong, wrong


@pytest.mark.parametrize("family", [BYTE_LEVEL, SENTENCEPIECE])
def test_masks_equal_the_validator_after_a_long_fallback(family, cache_dir):
    """Prefixes that end with a fallback pending 13 bytes or more back: the fill falls back over all of them.
    After `a\t` and `a `, tokens such as a newline and a long indentation hold a long fallback themselves (the
    token tables track it at any depth)."""
    prefixes = [b"a\t", b"a ", b"a\t\n" + b" " * 20, b"a \n" + "\u3000".encode() * 5, b"a \n" + b" " * 13 + b"/",
                b"a\t\n" + b" " * 12, b"a \n" + "\x85".encode() * 7]
    assert_masks_follow_validator(COMMENTS, family, prefixes, cache_dir)


@pytest.mark.parametrize("family", [BYTE_LEVEL])
def test_tokens_through_a_long_fallback_and_back(family, cache_dir):
    """Tokens that take a pending fallback past 13 bytes, one at a time, then rollback over them: after each
    step the mask follows the validator on the text so far (the matcher's arena keeps the bytes that its
    history's contexts need)."""
    ours = gm.Grammar.from_lark(COMMENTS)
    info = tokenizer_info(family)
    compiled = gm.compile(ours, info, cache_dir=cache_dir)
    matcher = compiled.matcher()
    ids = {bytes(b): t for t, b in enumerate(info.token_bytes) if b}
    steps = [b"a", b" ", b"\n"] + [b" "] * 16 + [b"/"]
    fed = b""
    for k, step in enumerate(steps):
        assert matcher.accept_token(ids[step]), fed + step
        fed += step
        if k % 4 == 3 or k == len(steps) - 1:
            allowed = set(matcher.allowed_token_ids().tolist())
            for t in (ids[b"/"], ids[b"b"], ids[b" "], ids[b"\n"]):
                assert (t in allowed) == ours.validate(fed + info.token_bytes[t]).prefix_ok, (fed, t)
    matcher.rollback(1)  # back before the "/": the 16 spaces' fallback is the history's
    assert matcher.accept_token(ids[b"b"]) and matcher.is_accepting()
    matcher.rollback(5)  # a, space, newline and 12 spaces: 13 bytes to go back over
    fed = b"a \n" + b" " * 12
    allowed = set(matcher.allowed_token_ids().tolist())
    assert all((t in allowed) == ours.validate(fed + info.token_bytes[t]).prefix_ok
               for t in (ids[b"/"], ids[b"b"], ids[b" "], ids[b"\n"]))
    assert matcher.accept_token(ids[b"b"]) and matcher.is_accepting()
    assert ours.validate(fed + b"b").ok


def test_out_of_memory_in_a_long_fallback_leaves_the_matcher_as_it_was(cache_dir):
    """The arena that holds a fallback's bytes past the first 8 grows as a token goes on with the lexeme: an
    allocation that fails there leaves the matcher as it was."""
    from grammask._core import _fail_allocation_after

    info = tokenizer_info(BYTE_LEVEL)
    compiled = gm.compile(gm.Grammar.from_lark(COMMENTS), info, cache_dir=cache_dir)
    ids = {bytes(b): t for t, b in enumerate(info.token_bytes) if b}
    prefix = [ids[b"a"], ids[b" "], ids[b"\n"]] + [ids[b" "]] * 7  # 8 bytes after the space: the context is full
    reference = compiled.matcher()
    assert reference.accept_tokens(prefix)
    before = (reference.num_accepted_tokens, reference.allowed_token_ids().tobytes())
    failures = 0
    for n in range(1, 200):
        m = compiled.matcher()
        assert m.accept_tokens(prefix)  # (no fill yet: the arena is first needed by the next token)
        _fail_allocation_after(n)
        try:
            m.accept_token(ids[b" "])
            break
        except MemoryError:
            failures += 1
        finally:
            _fail_allocation_after(0)
        assert (m.num_accepted_tokens, m.allowed_token_ids().tobytes()) == before, n
        assert m.accept_token(ids[b" "]) and m.accept_token(ids[b"b"]) and m.is_accepting()
    assert failures >= 1
