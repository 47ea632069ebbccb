"""The precomputed mask equals the token-by-token answer: at many points of real texts, the tokens the fill
allows are exactly the tokens accept_token takes. This pins the fill's shortcuts (dense group masks,
sequences fed once per shared prefix, refused prefixes skipped) to the plain definition."""

from __future__ import annotations

import random

import numpy as np
import pytest

from conftest import compiled_for, corpus, load_tokenizer, real_json_documents, tokenizer_info


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
    if grammar == "go":
        files = sorted(corpus("go", "go-1.19-stdlib").rglob("*.go"))
    else:
        files = sorted(corpus("python", "cpython-3.11-lib").glob("*.py"))
    return [files[3].read_text(encoding="utf-8")[:3000], files[40].read_text(encoding="utf-8")[:3000]]


@pytest.mark.parametrize("grammar", ["json", "python", "go"])
def test_fill_equals_accept_token_at_every_sampled_point(grammar, cache_dir):
    family = "gpt2"
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
