"""GrammarMatcher, bitmask helpers, padded vocabularies, special tokens, stop tokens."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import grammask as gm
from conftest import BYTE_LEVEL, SENTENCEPIECE, compiled_for, load_tokenizer, tokenizer_info


@pytest.fixture(scope="module")
def json_tables(cache_dir):
    return load_tokenizer(BYTE_LEVEL), compiled_for("json", BYTE_LEVEL, cache_dir)


def ids_of(tok, text):
    return tok.encode(text, add_special_tokens=False)


def test_rejected_token_leaves_state_unchanged(json_tables):
    tok, compiled = json_tables
    m = compiled.matcher()
    for t in ids_of(tok, '{"a": [1, '):
        assert m.accept_token(t)
    before = m.allowed_token_ids()
    for bad in ids_of(tok, "}") + ids_of(tok, " hello") + [compiled.vocab_size - 1]:
        assert not m.accept_token(bad)
        assert np.array_equal(m.allowed_token_ids(), before)
    assert m.num_accepted_tokens == len(ids_of(tok, '{"a": [1, '))


def test_rollback_restores_every_earlier_state(json_tables):
    tok, compiled = json_tables
    ids = ids_of(tok, '{"key": [1, {"x": "y\\n"}, [[]], null], "k2": -3.5e2}')
    m = compiled.matcher()
    masks = [m.allowed_token_ids()]
    for t in ids:
        assert m.accept_token(t)
        masks.append(m.allowed_token_ids())
    rng = np.random.default_rng(0)
    pos = len(ids)
    while pos > 0:
        n = int(rng.integers(1, min(4, pos) + 1))
        m.rollback(n)
        pos -= n
        assert np.array_equal(m.allowed_token_ids(), masks[pos])
        if pos and rng.random() < 0.5:  # walk forward again part of the way
            k = int(rng.integers(1, len(ids) - pos + 1))
            assert m.accept_tokens(ids[pos:pos + k])
            pos += k
            assert np.array_equal(m.allowed_token_ids(), masks[pos])
    with pytest.raises(ValueError):
        m.rollback(1)


def test_stop_token_only_when_complete_and_then_only_stops(json_tables):
    tok, compiled = json_tables
    stop = compiled.tokenizer_info.stop_token_ids[0]
    m = compiled.matcher()
    assert not m.accept_token(stop)
    assert m.accept_tokens(ids_of(tok, "[1"))
    assert not m.is_accepting() and not m.accept_token(stop)
    assert m.accept_tokens(ids_of(tok, "]"))
    assert m.is_accepting() and not m.is_terminated()
    assert m.accept_token(stop)
    assert m.is_terminated()
    assert list(m.allowed_token_ids()) == [stop]
    assert not m.accept_token(ids_of(tok, " ")[0])
    m.rollback(1)
    assert not m.is_terminated() and len(m.allowed_token_ids()) > 1
    m.reset()
    assert m.num_accepted_tokens == 0 and not m.is_accepting()


@pytest.mark.parametrize("family", ["qwen", "phi-3-mini"])
def test_special_tokens_never_allowed(family):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    compiled = gm.compile("json", info, cache_dir=False)
    special = [i for i, b in enumerate(info.token_bytes) if b is None and i not in info.stop_token_ids]
    assert len(special) >= 10
    m = compiled.matcher()
    for text in ['{"a": ', '{"a": "text', '[1, 2]']:
        m.reset()
        assert m.accept_tokens(ids_of(tok, text))
        allowed = set(m.allowed_token_ids().tolist())
        assert not allowed & set(special)


def test_padded_model_head():
    base = tokenizer_info(BYTE_LEVEL)
    n = base.vocab_size
    width = n + 100  # a model head wider than the tokenizer, not a multiple of 32
    padded = gm.TokenizerInfo.from_huggingface(load_tokenizer(BYTE_LEVEL), vocab_size=width)
    assert padded.vocab_size == width and n == len(load_tokenizer(BYTE_LEVEL))
    compiled = gm.compile("json", padded, cache_dir=False)
    m = compiled.matcher()
    bm = gm.allocate_token_bitmask(2, padded.vocab_size)
    assert bm.shape == (2, (width + 31) // 32) and bm.dtype == torch.int32
    m.fill_next_token_bitmask(bm, index=1)
    allowed = gm.decoding.unpack_bitmask(bm[1], width)
    assert not allowed[n:].any() and allowed[:n].any()
    assert not m.accept_token(width - 4)
    with pytest.raises(gm.TokenizerError):
        gm.TokenizerInfo.from_huggingface(load_tokenizer(BYTE_LEVEL), vocab_size=1000)


def test_bitmask_layout_and_apply(json_tables):
    tok, compiled = json_tables
    m = compiled.matcher()
    assert m.accept_tokens(ids_of(tok, '{"a": tr'))
    bm = gm.allocate_token_bitmask(1, compiled.vocab_size)
    m.fill_next_token_bitmask(bm)
    allowed = set(m.allowed_token_ids().tolist())
    words = bm[0].numpy().view(np.uint32)
    for t in list(allowed)[:50] + [0, 1, 100, compiled.vocab_size - 1]:
        assert bool(words[t // 32] >> (t % 32) & 1) == (t in allowed)
    logits = torch.randn(1, compiled.vocab_size + 7)  # a head wider than the mask
    gm.apply_token_bitmask_inplace(logits, bm)
    finite = set(torch.isfinite(logits[0]).nonzero().flatten().tolist())
    assert finite == allowed
    one = torch.randn(compiled.vocab_size)
    gm.apply_token_bitmask_inplace(one, bm[0])
    assert set(torch.isfinite(one).nonzero().flatten().tolist()) == allowed


def test_bitmask_misuse_is_reported(json_tables):
    _, compiled = json_tables
    m = compiled.matcher()
    with pytest.raises(ValueError, match="does not fit"):
        m.fill_next_token_bitmask(torch.zeros(1, 10, dtype=torch.int32))
    with pytest.raises(TypeError):
        m.fill_next_token_bitmask(torch.zeros(1, compiled.core_vocab.n_words, dtype=torch.int64))
    with pytest.raises(IndexError):
        m.fill_next_token_bitmask(gm.allocate_token_bitmask(2, compiled.vocab_size), index=2)
    with pytest.raises(TypeError):
        m.fill_next_token_bitmask([0] * compiled.core_vocab.n_words)


def test_independent_matchers_do_not_share_state(json_tables):
    tok, compiled = json_tables
    a, b = compiled.matcher(), compiled.matcher()
    assert a.accept_tokens(ids_of(tok, '{"x": '))
    assert b.accept_tokens(ids_of(tok, "[1, 2"))
    assert ids_of(tok, "]")[0] in set(b.allowed_token_ids().tolist())
    assert ids_of(tok, "]")[0] not in set(a.allowed_token_ids().tolist())


def test_tokenizer_info_errors():
    with pytest.raises(gm.TokenizerError, match="no stop token"):
        gm.TokenizerInfo.from_token_bytes([b"a", b"b"], stop_token_ids=[])
    with pytest.raises(gm.TokenizerError, match="outside the vocabulary"):
        gm.TokenizerInfo.from_token_bytes([b"a", b"b"], stop_token_ids=[5])
    info = gm.TokenizerInfo.from_token_bytes([b"[", b"]", b"1", b",", None], stop_token_ids=[4])
    m = gm.compile("json", info, cache_dir=False).matcher()
    assert m.accept_tokens([0, 2, 3, 2, 1, 4]) and m.is_terminated()


@pytest.mark.parametrize("family", [SENTENCEPIECE, "llama2"])
def test_after_a_prefix_the_mask_is_the_prefix_states(family, cache_dir):
    """A tokenizer that drops the first token's leading space (SentencePiece): after a prefix the first
    token's space is still dropped (the output is decoded alone), from the lexer state after the prefix,
    not from the start of a text (the start table)."""
    info = tokenizer_info(family)
    matcher = compiled_for("python", family, cache_dir).matcher()
    assert matcher.accept_string("x = f'a{")
    allowed = set(matcher.allowed_token_ids().tolist())
    takes = set()
    for t in range(info.vocab_size):
        if matcher.accept_token(t):
            takes.add(t)
            matcher.rollback(1)
    assert allowed == takes
    assert info.token_bytes.index(b"(") in allowed  # `{` then opens a field
