"""Non-ASCII text and emoji; tokens that end inside a multi-byte UTF-8 character are judged on bytes."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import BOTH_KINDS, FAMILIES, compiled_for, load_tokenizer, tokenizer_info, walk_text

DOCS = [
    {"greeting": "こんにちは世界", "emoji": "😀🎉👩‍👩‍👧‍👦", "math": "𝛼 ≤ 𝛽 → ∞"},
    {"names": ["Zoë", "Ångström", "Łódź", "Ðorđe", "ǅemal"], "rtl": "مرحبا بالعالم", "mixed": "a\u00a0b\u2028c"},
    ["🦀🐍🐹", "\U0001F1EB\U0001F1F7", "𝄞 music", "ﷺ", "\ufeffbom-in-string"],
    {"ko": "한국어 텍스트", "hi": "हिन्दी", "th": "ภาษาไทย", "ru": "Привет, мир!"},
]


def partial_utf8(b: bytes) -> bool:
    try:
        b.decode("utf-8")
        return False
    except UnicodeDecodeError:
        return True


@pytest.mark.parametrize("family", FAMILIES)
def test_non_ascii_documents(family, cache_dir):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    m = compiled_for("json", family, cache_dir).matcher()
    split_tokens = 0
    for doc in DOCS:
        for text in (json.dumps(doc, ensure_ascii=False), json.dumps(doc, ensure_ascii=False, indent=2),
                     json.dumps(doc)):
            ids = walk_text(m, tok, text)
            split_tokens += sum(partial_utf8(info.token_bytes[t]) for t in ids)
            assert m.is_accepting()
    if family != "phi-3-mini":  # its vocabulary holds whole characters for all of these
        assert split_tokens > 0, "no token split a UTF-8 character: the test exercised nothing"


def byte_token(info, value: bytes):
    for i, b in enumerate(info.token_bytes):
        if b == value:
            return i
    raise LookupError(value)


@pytest.mark.parametrize("family", BOTH_KINDS)
def test_incomplete_characters_are_judged_on_bytes(family, cache_dir):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    m = compiled_for("json", family, cache_dir).matcher()
    lead, cont, ascii_a = byte_token(info, b"\xf0"), byte_token(info, b"\x9f"), byte_token(info, b"a")
    assert m.accept_tokens(tok.encode('["', add_special_tokens=False))
    allowed = set(m.allowed_token_ids().tolist())
    assert lead in allowed and cont not in allowed  # a character may start, a lone continuation may not
    assert m.accept_token(lead)
    allowed = set(m.allowed_token_ids().tolist())
    assert cont in allowed and ascii_a not in allowed  # after F0 only a continuation byte fits
    assert not m.accept_token(ascii_a)
    assert m.accept_tokens([cont, byte_token(info, b"\x98"), byte_token(info, b"\x80")])  # U+1F600
    assert m.accept_tokens(tok.encode('"]', add_special_tokens=False))
    assert m.is_accepting()
    stops = np.asarray(info.stop_token_ids)
    assert m.accept_token(int(stops[0]))
