"""TokenizerInfo reads every tokenizer family exactly: token bytes == what decode() gives."""

from __future__ import annotations

import pytest

from conftest import FAMILIES, decoded_text, load_tokenizer, tokenizer_info

TEXTS = ["{\"name\": \"Zoë\", \"emoji\": \"😀🎉\", \"n\": [1, 2.5e-3]}\n",
         "def f(x):\n    return x ** 2  # 𝛼\n\tpass\r\n",
         "  leading spaces, tabs\t\tand\n\nnewlines; 中文 العربية ñ",
         "<not special> <tag>literal</tag>"]


@pytest.mark.parametrize("family", FAMILIES)
def test_token_bytes_match_decode(family):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    assert info.vocab_size >= len(tok) - 1 and info.stop_token_ids
    assert info.kind == ("sentencepiece" if family in ("llama2", "phi-3-mini") else "byte_level")
    assert info.strips_leading_space == (info.kind == "sentencepiece")
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=False)
        assert decoded_text(info, ids).decode("utf-8") == tok.decode(ids)
        # Every single token, too (byte tokens may be partial UTF-8: compare as bytes).
        for i in set(ids):
            b = info.token_bytes[i]
            assert b, (family, i)
            one = tok.decode([i])
            if "\ufffd" not in one:
                assert b.decode("utf-8").lstrip(" ") == one.lstrip(" ")


@pytest.mark.parametrize("family", FAMILIES)
def test_special_tokens_have_no_text(family):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    for i in tok.all_special_ids:
        assert info.token_bytes[i] is None
    assert all(0 <= s < info.vocab_size for s in info.stop_token_ids)


def test_byte_fallback_tokens():
    info = tokenizer_info("llama2")
    tok = load_tokenizer("llama2")
    assert info.token_bytes[tok.convert_tokens_to_ids("<0x0A>")] == b"\n"
    assert info.token_bytes[tok.convert_tokens_to_ids("<0xF0>")] == b"\xf0"
    assert info.token_bytes[tok.convert_tokens_to_ids("\u2581the")] == b" the"
