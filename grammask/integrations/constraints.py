"""Per-request matchers for a serving engine's batch, and the tables they share.

Engine-neutral. An engine adapter (vLLM V1 / V2, SGLang) decides which batch row holds which request
and where that request's generated tokens live; this module keeps one matcher per request, feeds it
the tokens it has not seen yet, and writes the request's mask into the engine's logits.
"""

from __future__ import annotations

import logging
import threading
from typing import Iterable, Optional

import torch

from ..decoding import CompiledGrammar, allocate_token_bitmask, apply_token_bitmask_inplace, compile
from ..decoding.bitmask import stop_token_bitmask
from ..fsm import TokenizerInfo
from .request_grammar import GrammarCache, GrammarSpec

log = logging.getLogger("grammask.integrations")

# An engine's placeholder for a token sampled but not yet copied back to the host (vLLM's async
# scheduling writes -1 until the real id arrives).
PLACEHOLDER_TOKEN = -1


class CompiledGrammarCache:
    """Compiled tables per grammar spec, for one tokenizer: compiled once per process, shared by every
    request with that spec (a matcher holds only its own small state), loaded from grammask's disk cache
    when another process compiled them before."""

    def __init__(self, tokenizer_info: TokenizerInfo, grammars: Optional[GrammarCache] = None,
                 capacity: int = 64):
        self.tokenizer_info = tokenizer_info
        self.grammars = grammars or GrammarCache()
        self.capacity = capacity
        self._compiled: "dict[GrammarSpec, CompiledGrammar]" = {}
        self._lock = threading.Lock()
        self.compiles = 0  # how many specs this cache compiled (or loaded from disk): for tests and logs

    def get(self, spec: GrammarSpec) -> CompiledGrammar:
        with self._lock:
            hit = self._compiled.get(spec)
            if hit is not None:
                self._compiled[spec] = self._compiled.pop(spec)  # most recent last
                return hit
        compiled = compile(self.grammars.get(spec), self.tokenizer_info)
        with self._lock:
            self._compiled[spec] = compiled
            self.compiles += 1
            while len(self._compiled) > self.capacity:
                self._compiled.pop(next(iter(self._compiled)))
        return compiled


class RequestConstraint:
    """One request's matcher and how many of its generated tokens it has consumed.

    The engine owns the token list; feed() is handed the whole list each step and consumes only what is
    new, so a request resumed after preemption (its list replayed from the start into a fresh
    constraint) ends in the same state as one that never left the batch.
    """

    def __init__(self, compiled: CompiledGrammar, spec: GrammarSpec):
        self.spec = spec
        self.matcher = compiled.matcher()
        self.consumed = 0
        self.error: Optional[str] = None

    @classmethod
    def failed(cls, spec: GrammarSpec, message: str) -> "RequestConstraint":
        """A request that cannot be served (its tables could not be built): only stop tokens allowed."""
        constraint = cls.__new__(cls)
        constraint.spec, constraint.matcher, constraint.consumed, constraint.error = spec, None, 0, message
        return constraint

    def feed(self, tokens, first_position: int = 0) -> None:
        """Advance over the tokens not consumed yet. tokens[i] is the request's output token number
        first_position + i (0 when the engine hands over the whole output list); a placeholder stops."""
        n = first_position + len(tokens)
        while self.consumed < n and self.error is None:
            token = int(tokens[self.consumed - first_position])
            if token == PLACEHOLDER_TOKEN:
                return
            if not self.matcher.accept_token(token):
                # Only reachable when something after the mask changed the choice (another engine
                # stage forcing a token); the request can no longer be in the grammar.
                self.error = (f"grammask: token {token} at output position {self.consumed} is outside the "
                              f"request's grammar ({self.spec.describe()}); the request is ended")
                log.error(self.error)
                return
            self.consumed += 1

    def fill(self, bitmask: torch.Tensor, row: int, stop_only: torch.Tensor) -> None:
        if self.error is not None:
            bitmask[row].copy_(stop_only)
        else:
            self.matcher.fill_next_token_bitmask(bitmask, index=row)


class BatchMasker:
    """Masks logits rows in place, one bitmask row per constrained request, reusing one buffer."""

    def __init__(self, tokenizer_info: TokenizerInfo):
        self.vocab_size = tokenizer_info.vocab_size
        self._bitmask = allocate_token_bitmask(1, self.vocab_size)
        self.stop_only = stop_token_bitmask(self.vocab_size, tokenizer_info.stop_token_ids)

    def apply(self, logits: torch.Tensor, rows: Iterable["tuple[int, RequestConstraint]"]) -> None:
        """rows: (logits row, constraint) pairs; other rows are left exactly as they are."""
        rows = list(rows)
        if not rows:
            return
        if logits.shape[-1] < self.vocab_size:
            raise ValueError(f"grammask: logits have {logits.shape[-1]} columns, fewer than the "
                             f"tokenizer's vocabulary of {self.vocab_size}")
        if self._bitmask.shape[0] < len(rows):
            self._bitmask = allocate_token_bitmask(max(len(rows), 2 * self._bitmask.shape[0]), self.vocab_size)
        masks = self._bitmask[:len(rows)]
        for i, (_, constraint) in enumerate(rows):
            constraint.fill(masks, i, self.stop_only)
        masks = masks.to(logits.device, non_blocking=True) if logits.device != masks.device else masks
        for i, (row, _) in enumerate(rows):
            # A basic-indexed row is a view: the mask lands in the engine's tensor.
            apply_token_bitmask_inplace(logits[row], masks[i])


__all__ = ["BatchMasker", "CompiledGrammarCache", "PLACEHOLDER_TOKEN", "RequestConstraint"]
