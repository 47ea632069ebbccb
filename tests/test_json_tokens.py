"""Exact masks on real JSON, for every tokenizer family (issue: engine core, end to end on JSON)."""

from __future__ import annotations

import numpy as np
import pytest

import grammask as gm
from conftest import (FAMILIES, compiled_for, decoded_text, json_parses, json_texts, load_tokenizer,
                      real_json_documents, tokenizer_info)


def _bit(bm: np.ndarray, t: int) -> bool:
    return bool((int(bm[t >> 5]) >> (t & 31)) & 1)


@pytest.mark.parametrize("family", FAMILIES)
def test_every_token_of_real_documents_is_allowed(family, cache_dir):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    matcher = compiled_for("json", family, cache_dir).matcher()
    stop = info.stop_token_ids[0]
    bm = np.zeros((info.vocab_size + 31) // 32, dtype=np.int32)
    texts = json_texts(real_json_documents())
    assert len(texts) >= 300
    steps = 0
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        assert decoded_text(info, ids).decode("utf-8") == tok.decode(ids) == text.lstrip(" ")
        matcher.reset()
        for i, t in enumerate(ids):
            matcher.fill_next_token_bitmask(bm)
            prefix = tok.decode(ids[:i])
            assert _bit(bm, t), f"{family}: token {tok.convert_ids_to_tokens(t)!r} rejected after {prefix[-60:]!r}"
            # A stop token is allowed exactly when the text so far is a complete document.
            assert _bit(bm, stop) == json_parses(prefix) if i else not _bit(bm, stop)
            assert matcher.accept_token(t)
            steps += 1
        matcher.fill_next_token_bitmask(bm)
        assert _bit(bm, stop) and matcher.is_accepting()
        assert matcher.accept_token(stop) and matcher.is_terminated()
    assert steps > 20000


@pytest.mark.parametrize("family", FAMILIES)
def test_random_walks_only_produce_valid_json(family, cache_dir):
    info = tokenizer_info(family)
    tok = load_tokenizer(family)
    matcher = compiled_for("json", family, cache_dir).matcher()
    rng = np.random.default_rng(1234)
    stops = set(info.stop_token_ids)
    is_stop = np.zeros(info.vocab_size, dtype=bool)
    is_stop[list(stops)] = True
    is_short = np.zeros(info.vocab_size, dtype=bool)
    is_short[: len(info.token_bytes)] = [b is not None and len(b.strip()) <= 2 for b in info.token_bytes]
    ended = 0
    for walk in range(300):
        matcher.reset()
        ids = []
        for _ in range(48):
            allowed = matcher.allowed_token_ids()
            assert len(allowed), f"{family}: empty mask after {decoded_text(info, ids)!r}"
            # Half the walks favour short tokens and stopping, so that documents actually close.
            if walk % 2 and rng.random() < 0.7:
                allowed_stops = allowed[is_stop[allowed]]
                short = allowed[is_short[allowed]]
                if len(allowed_stops) and rng.random() < 0.5:
                    allowed = allowed_stops
                elif len(short):
                    allowed = short
            t = int(rng.choice(allowed))
            assert matcher.accept_token(t)
            if t in stops:
                break
            ids.append(t)
        text = decoded_text(info, ids)
        try:
            # The text the matcher judged is what the user gets from decode() (when it is whole UTF-8).
            assert tok.decode(ids) == text.decode("utf-8")
        except UnicodeDecodeError:
            pass  # the walk stopped inside a multi-byte character
        if matcher.is_terminated():
            ended += 1
            assert json_parses(text.decode("utf-8")), text
        else:
            assert gm.Grammar.builtin("json").validate(text).prefix_ok
    assert ended >= 30, f"only {ended} walks reached a stop token"
