"""Tokenizer vocabularies -> the exact bytes each token id contributes to the decoded text."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Iterable, Optional, Sequence

import numpy as np

SENTENCEPIECE_SPACE = "\u2581"  # "▁"
_BYTE_FALLBACK = re.compile(r"^<0x([0-9A-Fa-f]{2})>$")


class TokenizerError(ValueError):
    """The tokenizer cannot be read exactly, or its settings do not fit together."""


def _bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible byte -> printable character map used by byte-level BPE vocabularies."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


_BYTE_LEVEL_DECODE = {ch: b for b, ch in _bytes_to_unicode().items()}
# str.translate maps each alphabet character to the code point of its byte; latin-1 then gives the bytes
# (a C-speed path: vocabularies have 100k+ tokens).
_BYTE_LEVEL_TABLE = {ord(ch): b for ch, b in _BYTE_LEVEL_DECODE.items()}


def _decode_byte_level(token: str) -> bytes:
    try:
        return token.translate(_BYTE_LEVEL_TABLE).encode("latin-1")
    except UnicodeEncodeError:
        bad = next(ch for ch in token if ch not in _BYTE_LEVEL_DECODE)
        raise TokenizerError(f"byte-level token {token!r} has character {bad!r} outside the byte alphabet") from None


def _decode_sentencepiece(token: str) -> bytes:
    m = _BYTE_FALLBACK.match(token)
    if m:
        return bytes([int(m.group(1), 16)])
    return token.replace(SENTENCEPIECE_SPACE, " ").encode("utf-8")


def _flatten_decoders(decoder: Optional[dict]) -> list[dict]:
    if not decoder:
        return []
    if decoder.get("type") == "Sequence":
        return [d for sub in decoder.get("decoders", []) for d in _flatten_decoders(sub)]
    return [decoder]


def _decoder_scheme(decoder: Optional[dict]) -> tuple[str, bool]:
    """(vocabulary kind, whether decode() drops one leading space) from a tokenizer.json decoder."""
    parts = _flatten_decoders(decoder)
    types = {d.get("type") for d in parts}
    if "ByteLevel" in types:
        return "byte_level", False
    strips = any(d.get("type") == "Strip" and d.get("content") == " " and d.get("start", 0) >= 1
                 for d in parts)
    for d in parts:
        if d.get("type") == "Metaspace":
            scheme = d.get("prepend_scheme", "always" if d.get("add_prefix_space", True) else "never")
            return "sentencepiece", strips or scheme != "never"
    if "ByteFallback" in types or any(
            d.get("type") == "Replace" and d.get("pattern", {}).get("String") == SENTENCEPIECE_SPACE
            for d in parts):
        return "sentencepiece", strips
    raise TokenizerError(f"unsupported tokenizer decoder {sorted(t for t in types if t)}: grammask reads "
                         "byte-level BPE and SentencePiece vocabularies")


@dataclass(frozen=True)
class TokenizerInfo:
    """What the engine needs from a tokenizer.

    token_bytes[i] is the UTF-8 (or raw) bytes token i adds to the decoded text, or None for tokens
    with no text (special tokens), which are never allowed except as stop tokens. Ids from
    len(token_bytes) up to vocab_size (a model head padded past the tokenizer) are never allowed.
    """

    token_bytes: tuple[Optional[bytes], ...]
    vocab_size: int
    stop_token_ids: tuple[int, ...]
    strips_leading_space: bool = False
    kind: str = "raw"
    _digest: list = field(default_factory=list, repr=False, compare=False)
    _layout: list = field(default_factory=list, repr=False, compare=False)
    _core_tokens: list = field(default_factory=list, repr=False, compare=False)  # see decoding.compiler

    def __post_init__(self) -> None:
        n = len(self.token_bytes)
        if self.vocab_size < n:
            raise TokenizerError(f"vocab_size={self.vocab_size} is smaller than the tokenizer's {n} tokens")
        if not self.stop_token_ids:
            raise TokenizerError("no stop token: the tokenizer has no eos_token_id; pass stop_token_ids=[...]")
        for t in self.stop_token_ids:
            if not 0 <= t < self.vocab_size:
                raise TokenizerError(f"stop token id {t} is outside the vocabulary (vocab_size={self.vocab_size})")

    @classmethod
    def from_token_bytes(cls, token_bytes: Sequence[Optional[bytes]], stop_token_ids: Iterable[int],
                         vocab_size: Optional[int] = None, strips_leading_space: bool = False) -> "TokenizerInfo":
        tb = tuple(None if b is None else bytes(b) for b in token_bytes)
        stops = tuple(sorted(set(int(t) for t in stop_token_ids)))
        return cls(tb, vocab_size if vocab_size is not None else len(tb), stops, strips_leading_space, "raw")

    @classmethod
    def from_huggingface(cls, tokenizer, vocab_size: Optional[int] = None,
                         stop_token_ids: Optional[Iterable[int]] = None) -> "TokenizerInfo":
        """Read any Hugging Face tokenizer (fast or SentencePiece-based slow)."""
        backend = getattr(tokenizer, "backend_tokenizer", None)
        vocab = tokenizer.get_vocab()
        if backend is not None:
            decoder = backend.decoder
            kind, strips = _decoder_scheme(json.loads(decoder.__getstate__()) if decoder is not None else None)
            added = {i: {"content": a.content, "special": a.special}
                     for i, a in backend.get_added_tokens_decoder().items()}
        elif getattr(tokenizer, "sp_model", None) is not None:
            kind, strips = "sentencepiece", True
            added = {i: {"content": tokenizer.convert_ids_to_tokens(i), "special": True}
                     for i in tokenizer.all_special_ids}
        else:
            raise TokenizerError(f"cannot read {type(tokenizer).__name__}: it has neither a tokenizers "
                                 "backend nor a SentencePiece model")
        n = max(max(vocab.values(), default=-1), max(added, default=-1)) + 1
        decode = _decode_byte_level if kind == "byte_level" else _decode_sentencepiece
        token_bytes: list[Optional[bytes]] = [None] * n
        for text, i in vocab.items():
            if i in added:
                continue
            token_bytes[i] = decode(text)
        for i, a in added.items():
            token_bytes[i] = None if a.get("special") else a["content"].encode("utf-8")
        stops = set(int(t) for t in (stop_token_ids or ()))
        eos = getattr(tokenizer, "eos_token_id", None)
        if eos is not None:
            stops.update([eos] if isinstance(eos, int) else eos)
        size = n if vocab_size is None else int(vocab_size)
        return cls(tuple(token_bytes), size, tuple(sorted(stops)), strips, kind)

    def byte_layout(self) -> tuple:
        """(tok_bytes, tok_begin, order, is_stop) as the table builder reads them: every token's text in one
        uint8 array (stop tokens and tokens without text empty), its offsets, the ids of the tokens with text
        sorted by their bytes, and the stop flags. Made once per tokenizer and kept: every grammar compiled
        for it (a JSON Schema per request) reads the same, and sorting a 128k vocabulary takes most of a
        second."""
        if not self._layout:
            stops = set(self.stop_token_ids)
            text = [b if (b and i not in stops) else b"" for i, b in enumerate(self.token_bytes)]
            lengths = np.fromiter((len(b) for b in text), dtype=np.int64, count=len(text))
            tok_begin = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
            tok_bytes = np.frombuffer(b"".join(text), dtype=np.uint8)
            order = np.asarray(sorted((i for i, b in enumerate(text) if b), key=text.__getitem__), dtype=np.int32)
            is_stop = np.zeros(self.vocab_size, dtype=np.uint8)
            is_stop[list(stops)] = 1
            for a in (tok_begin, order, is_stop):
                a.setflags(write=False)
            self._layout.append((tok_bytes, tok_begin, order, is_stop))
        return self._layout[0]

    @property
    def digest(self) -> str:
        """Content hash: two tokenizers with the same tokens, sizes and stops share compiled tables."""
        if not self._digest:
            h = hashlib.sha256()
            h.update(json.dumps([self.kind, self.vocab_size, list(self.stop_token_ids),
                                 self.strips_leading_space]).encode())
            for b in self.token_bytes:
                if b is None:
                    h.update(b"\xff\xff\xff\xff")
                else:
                    h.update(len(b).to_bytes(4, "little"))
                    h.update(b)
            self._digest.append(h.hexdigest())
        return self._digest[0]

    def __repr__(self) -> str:
        return (f"TokenizerInfo(kind={self.kind!r}, tokens={len(self.token_bytes)}, vocab_size={self.vocab_size}, "
                f"stop_token_ids={list(self.stop_token_ids)}, strips_leading_space={self.strips_leading_space})")
