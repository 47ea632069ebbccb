"""GrammarMatcher: the per-sequence state of constrained decoding."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from .._core import CoreMatcher


class GrammarMatcher:
    """Follows one sequence through the grammar, token by token.

    fill_next_token_bitmask() writes which tokens may come next; accept_token() advances (or returns
    False and leaves the state unchanged); rollback(n) undoes the last n accepted tokens.
    """

    def __init__(self, compiled, max_rollback_tokens: Optional[int] = None):
        if max_rollback_tokens is not None and max_rollback_tokens < 1:
            raise ValueError("max_rollback_tokens must be positive, or None for no limit")
        self.compiled = compiled
        self.max_rollback_tokens = max_rollback_tokens
        self._core = CoreMatcher(compiled.core_grammar, compiled.core_vocab, max_rollback_tokens or 0)
        self._words = compiled.core_vocab.n_words

    @property
    def vocab_size(self) -> int:
        return self.compiled.vocab_size

    def _row_address(self, bitmask, index: int) -> int:
        if isinstance(bitmask, torch.Tensor):
            if bitmask.dtype != torch.int32 or bitmask.device.type != "cpu" or not bitmask.is_contiguous():
                raise TypeError("bitmask must be a contiguous torch.int32 CPU tensor "
                                "(see grammask.allocate_token_bitmask)")
            shape, address = tuple(bitmask.shape), bitmask.data_ptr()
        elif isinstance(bitmask, np.ndarray):
            if bitmask.dtype not in (np.int32, np.uint32) or not bitmask.flags.c_contiguous \
                    or not bitmask.flags.writeable:
                raise TypeError("bitmask array must be a writable, C-contiguous int32 array")
            shape, address = bitmask.shape, bitmask.ctypes.data
        else:
            raise TypeError(f"bitmask must be a torch.Tensor or numpy array, not {type(bitmask).__name__}")
        if len(shape) == 1:
            shape = (1,) + shape
        if len(shape) != 2 or shape[1] != self._words:
            raise ValueError(f"bitmask shape {tuple(shape)} does not fit vocab_size={self.vocab_size}: "
                             f"expected (batch, {self._words})")
        if not 0 <= index < shape[0]:
            raise IndexError(f"bitmask row {index} out of range for {shape[0]} rows")
        return address + index * self._words * 4

    def fill_next_token_bitmask(self, bitmask, index: int = 0) -> None:
        """Write the allowed next tokens into row `index` of `bitmask`."""
        self._core.fill(self._row_address(bitmask, index))

    def accept_token(self, token_id: int) -> bool:
        """Advance by one token. False (state unchanged) if the token is not allowed here."""
        return self._core.accept_token(int(token_id))

    def accept_tokens(self, token_ids) -> bool:
        """Accept every token in order, or none: False (state unchanged) if one is rejected. Holds whatever
        max_rollback_tokens is (the history it would drop is kept until all are in)."""
        return self._core.accept_tokens(np.fromiter((int(t) for t in token_ids), dtype=np.int64))

    def validate_tokens(self, token_ids) -> int:
        """How many of `token_ids`, in order, accept_token would take from here. The state is unchanged:
        for checking a speculative draft before accepting it."""
        ids = [int(t) for t in token_ids]
        window = self.max_rollback_tokens
        if window is not None and len(ids) > window:
            raise ValueError(f"validate_tokens got {len(ids)} tokens, more than this matcher can roll back "
                             f"(max_rollback_tokens={window})")
        done = 0
        try:
            for t in ids:
                if not self._core.accept_token(t):
                    break
                done += 1
        finally:
            if not self._core.rollback(done):  # pragma: no cover - within the window by the check above
                raise RuntimeError(f"grammask: could not undo {done} tokens after validate_tokens")
        return done

    def forced_bytes(self, limit: int = 256) -> bytes:
        """The bytes every token allowed from here starts with, repeatedly (at most `limit` bytes): empty
        where the next byte is a choice or the text may end here. The state is unchanged.

        A byte is forced when every allowed token starts with it and no stop token is allowed; the matcher
        then moves on by the token that is that byte alone, so the bytes end where the vocabulary has no
        such token, or where the first token's leading space would be dropped by the tokenizer."""
        first_byte, byte_token = self.compiled.byte_tables
        if self.compiled.tokenizer_info.strips_leading_space and self._core.history_length == 0:
            return b""
        words = np.zeros(self._words, dtype=np.int32)
        out = bytearray()
        accepted = 0
        try:
            while len(out) < limit and (self.max_rollback_tokens is None or accepted < self.max_rollback_tokens):
                self._core.fill(words.ctypes.data)
                nonzero = np.flatnonzero(words)
                if not len(nonzero):
                    break
                w = int(nonzero[0])
                first = w * 32 + (int(words[w]) & -int(words[w])).bit_length() - 1  # the lowest allowed token
                byte = int(first_byte[first])
                # a stop token allowed (first byte -1), a choice of first bytes, or no one-byte token to go on
                if byte < 0 or (words & ~self.compiled.tokens_starting_with(byte)).any() or byte_token[byte] < 0:
                    break
                if not self._core.accept_token(int(byte_token[byte])):
                    raise RuntimeError(f"grammask: the one-byte token for forced byte {byte} was refused")
                accepted += 1
                out.append(byte)
        finally:
            if not self._core.rollback(accepted):  # pragma: no cover - within the window by the loop bound
                raise RuntimeError(f"grammask: could not undo {accepted} tokens after forced_bytes")
        return bytes(out)

    def accept_string(self, text) -> bool:
        """Feed raw text (str or bytes), e.g. code to continue. False (state unchanged) if it does not keep
        the text a valid prefix. Clears the rollback history: tokens before it can no longer be undone."""
        data = text.encode("utf-8") if isinstance(text, str) else bytes(text)
        return self._core.accept_bytes(data)

    def can_continue(self) -> bool:
        """Whether anything but %ignore'd text (whitespace, comments) may still follow."""
        return not self._core.terminated and self._core.can_continue()

    def is_accepting(self) -> bool:
        """The text so far is a complete string of the grammar (a stop token may come next)."""
        return self._core.terminated or self._core.is_complete()

    def is_terminated(self) -> bool:
        """A stop token has been accepted."""
        return self._core.terminated

    def reset(self) -> None:
        self._core.reset()

    def rollback(self, num_tokens: int = 1) -> None:
        """Undo the last `num_tokens` accepted tokens."""
        if num_tokens < 0 or not self._core.rollback(int(num_tokens)):
            raise ValueError(f"cannot roll back {num_tokens} tokens: {self._core.history_length} can be undone")

    @property
    def num_accepted_tokens(self) -> int:
        return self._core.history_length

    @property
    def memory_bytes(self) -> int:
        """Bytes this matcher holds: its stacks, undo history and per-matcher caches. The tables and the
        fill cache are shared by the matchers of one CompiledGrammar (see CompiledGrammar.memory_bytes)."""
        return self._core.memory_bytes

    def allowed_token_ids(self) -> np.ndarray:
        """The allowed next tokens as an array of ids (for inspection and tests; slower than the bitmask)."""
        words = np.zeros(self._words, dtype=np.int32)
        self._core.fill(words.ctypes.data)
        bits = np.unpackbits(words.view(np.uint8), bitorder="little")[: self.vocab_size]
        return np.flatnonzero(bits)

    def __repr__(self) -> str:
        return f"GrammarMatcher({self.compiled.grammar.name!r}, accepted={self.num_accepted_tokens})"
