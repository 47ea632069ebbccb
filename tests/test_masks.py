"""The precomputed mask equals the token-by-token answer: at many points of real texts, the tokens the fill
allows are exactly the tokens accept_token takes. This pins the fill's shortcuts (dense group masks,
sequences fed once per shared prefix, refused prefixes skipped) to the plain definition."""

from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import (BYTE_LEVEL, compiled_for, go_corpus, load_tokenizer, python_corpus, real_json_documents,
                      tokenizer_info)


def accepted_one_by_one(matcher, vocab_size: int) -> np.ndarray:
    ok = np.zeros(vocab_size, bool)
    for t in range(vocab_size):
        if matcher.accept_token(t):
            ok[t] = True
            matcher.rollback(1)
    return ok


def texts(grammar: str) -> list[str]:
    if grammar == "json":
        import json

        return [json.dumps(d, indent=2) for d in real_json_documents()[:2]]
    texts = [p.read_text(encoding="utf-8") for p in (go_corpus() if grammar == "go" else python_corpus())]
    # 3000 characters of two files far apart in the corpus: the first long enough from index 3 and from 40
    return [next(t for t in texts[start:] if len(t) >= 3000)[:3000] for start in (3, 40)]


@pytest.mark.parametrize("grammar", ["json", "python", "go"])
def test_fill_equals_accept_token_at_every_sampled_point(grammar, cache_dir):
    family = BYTE_LEVEL
    info = tokenizer_info(family)
    tok = load_tokenizer(family)
    matcher = compiled_for(grammar, family, cache_dir).matcher()
    rng = random.Random(7)
    checked = 0
    for text in texts(grammar):
        ids = tok.encode(text, add_special_tokens=False)
        points = set(rng.sample(range(len(ids) + 1), min(8, len(ids) + 1)))
        matcher.reset()
        for i in range(len(ids) + 1):
            if i in points:
                allowed = np.zeros(info.vocab_size, bool)
                allowed[matcher.allowed_token_ids()] = True
                expected = accepted_one_by_one(matcher, info.vocab_size)
                diff = np.flatnonzero(allowed != expected)
                assert diff.size == 0, (grammar, i, [(int(t), info.token_bytes[t]) for t in diff[:5]])
                checked += 1
            if i < len(ids):
                assert matcher.accept_token(ids[i])
    assert checked == 16


@pytest.mark.parametrize("grammar", ["json", "python", "go"])
def test_fill_cache_gives_the_tables_answer(grammar, cache_dir):
    """A matcher reuses a mask for a parse configuration it has seen (keyed by what the fill read of
    the stacks): at every step of real texts, with rollbacks in between, its mask equals the one a
    matcher without the cache computes from the tables."""
    from grammask._core import CoreMatcher

    family = BYTE_LEVEL
    tok = load_tokenizer(family)
    compiled = compiled_for(grammar, family, cache_dir)
    cached = CoreMatcher(compiled.core_grammar, compiled.core_vocab)
    plain = CoreMatcher(compiled.core_grammar, compiled.core_vocab, fill_cache=False)
    words = compiled.core_vocab.n_words
    a, b = np.zeros(words, np.uint32), np.zeros(words, np.uint32)
    rng = random.Random(11)
    steps = 0
    if grammar == "json":
        import json

        walk = [json.dumps(d, indent=indent) for d in real_json_documents()[:60] for indent in (None, 2)]
    else:
        walk = texts(grammar)
    for text in walk:
        ids = tok.encode(text, add_special_tokens=False)
        cached.reset()
        plain.reset()
        i = 0
        while i < len(ids):
            cached.fill(a.ctypes.data)
            plain.fill(b.ctypes.data)
            assert np.array_equal(a, b), (grammar, i, tok.decode(ids[max(0, i - 10):i]))
            steps += 1
            if i > 4 and rng.random() < 0.05:  # step back a little: configurations seen before come again
                back = rng.randint(1, 4)
                assert cached.rollback(back) and plain.rollback(back)
                i -= back
                continue
            assert cached.accept_token(ids[i]) and plain.accept_token(ids[i])
            i += 1
    assert steps > 1500


def test_fill_cache_tells_apart_indentation_stacks_with_the_same_top(cache_dir):
    """Two blocks indented to 8 columns through different levels: a dedent to 4 is valid in one only.
    The configurations differ only below the top of the indentation stack."""
    from grammask._core import CoreMatcher

    compiled = compiled_for("python", BYTE_LEVEL, cache_dir)
    cached = CoreMatcher(compiled.core_grammar, compiled.core_vocab)
    plain = CoreMatcher(compiled.core_grammar, compiled.core_vocab, fill_cache=False)
    words = compiled.core_vocab.n_words
    a, b = np.zeros(words, np.uint32), np.zeros(words, np.uint32)
    masks = []
    for levels in ("if a:\n  if b:\n        x = 1\n    ", "if a:\n    if b:\n        x = 1\n    "):
        for m in (cached, plain):
            m.reset()
            assert m.accept_bytes(levels.encode())
        cached.fill(a.ctypes.data)
        plain.fill(b.ctypes.data)
        assert np.array_equal(a, b)
        masks.append(a.copy())
    assert not np.array_equal(masks[0], masks[1])  # the test means something: the dedent decides


@pytest.mark.parametrize("grammar", ["json", "python"])
def test_tables_built_on_threads_equal_the_single_threaded_ones(grammar):
    """Builders on several threads take every n-th lexer state and number their sequences apart; merged,
    every state has the same groups (terminal sequences, completable sets, tokens) and masks."""
    import grammask as gm
    from grammask.decoding.compiler import core_grammar

    info = tokenizer_info(BYTE_LEVEL)
    core = core_grammar(gm.Grammar.builtin(grammar))
    text = [b if b and i not in info.stop_token_ids else b"" for i, b in enumerate(info.token_bytes)]
    tok_begin = np.concatenate([[0], np.cumsum([len(b) for b in text])]).astype(np.int64)
    tok_bytes = np.frombuffer(b"".join(text), dtype=np.uint8)
    order = np.asarray(sorted((i for i, b in enumerate(text) if b), key=text.__getitem__), dtype=np.int32)
    n_terminals = core.n_terminals

    def canonical(raw):
        sb, st = raw["seq_begin"], raw["seq_terms"]
        wb, wbytes, wreset = raw["wsop_begin"], raw["wsop_bytes"], raw["wsop_reset"]

        def event(e):
            k = int(e) - n_terminals - 1
            return (int(wreset[k]), bytes(wbytes[wb[k]:wb[k + 1]])) if k >= 0 else int(e)

        gb, tb, toks = raw["group_begin"], raw["group_tok_begin"], raw["group_toks"]
        states = []
        for ts in range(len(gb) - 1):
            states.append(sorted(
                (tuple(event(e) for e in st[sb[raw["group_seq"][i]]:sb[raw["group_seq"][i] + 1]]),
                 int(raw["group_cset"][i]), tuple(sorted(toks[tb[i]:tb[i + 1]].tolist())))
                for i in range(gb[ts], gb[ts + 1])))
        return states, raw["masks"].tobytes()

    words = (info.vocab_size + 31) // 32
    one = canonical(core.build_vocab(tok_bytes, tok_begin, order, words, info.strips_leading_space, 1))
    for threads in (2, 3):
        assert canonical(core.build_vocab(tok_bytes, tok_begin, order, words, info.strips_leading_space, threads)) == one
