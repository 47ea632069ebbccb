"""grammask as an SGLang grammar backend: `--grammar-backend grammask`.

SGLang loads general plugins from the entry-point group `sglang.srt.plugins` before it parses its
arguments (sglang/launch_server.py); grammask's entry point runs register(), which adds the backend
under the name "grammask" (register_grammar_backend) and lets the argument parser accept that name.

SGLang's requests carry json_schema, regex, ebnf or structural_tag; each maps to one grammask grammar
("ebnf" is grammask's Lark dialect). One grammar object follows one request (SGLang copies the cached
one per request); masks are grammask's packed int32 bitmasks, filled and applied by grammask's own
CPU code (apply_token_bitmask_inplace, or its Triton kernel on CUDA).
"""

from __future__ import annotations

import logging
from typing import List, Optional, Tuple

import torch
from sglang.srt.constrained.base_grammar_backend import (
    BaseGrammarBackend,
    BaseGrammarObject,
    InvalidGrammarObject,
    register_grammar_backend,
)

from ..decoding import allocate_token_bitmask, apply_token_bitmask_inplace
from ..fsm import TokenizerInfo
from .constraints import CompiledGrammarCache
from .request_grammar import parse_spec

log = logging.getLogger("grammask.integrations.sglang")

BACKEND_NAME = "grammask"
# SGLang's json_schema value for "any JSON" (response_format {"type": "json_object"}).
ANY_JSON = "$$ANY$$"


class GrammaskGrammar(BaseGrammarObject):
    """One request's state in one compiled grammar."""

    def __init__(self, compiled, key: Tuple[str, str]):
        super().__init__()
        self.compiled = compiled
        self.key = key
        self.matcher = compiled.matcher()

    def accept_token(self, token: int) -> None:
        # SGLang catches ValueError here and aborts only this request.
        if not self.matcher.accept_token(int(token)):
            raise ValueError(f"grammask: token {token} is not allowed by the {self.key[0]} grammar here")

    def rollback(self, k: int) -> None:
        self.matcher.rollback(k)

    def is_terminated(self) -> bool:
        return self.matcher.is_terminated()

    def allocate_vocab_mask(self, vocab_size: int, batch_size: int, device) -> torch.Tensor:
        # All bits set: rows SGLang does not fill (unconstrained requests) stay unconstrained.
        return allocate_token_bitmask(batch_size, vocab_size)

    def fill_vocab_mask(self, vocab_mask: torch.Tensor, idx: int) -> None:
        self.matcher.fill_next_token_bitmask(vocab_mask, index=idx)

    @staticmethod
    def reset_vocab_mask(vocab_mask: torch.Tensor) -> None:
        vocab_mask.fill_(-1)

    @staticmethod
    def move_vocab_mask(vocab_mask: torch.Tensor, device) -> torch.Tensor:
        return vocab_mask.to(device, non_blocking=True)

    @staticmethod
    def apply_vocab_mask(logits: torch.Tensor, vocab_mask: torch.Tensor) -> None:
        apply_token_bitmask_inplace(logits, vocab_mask)

    def copy(self) -> "GrammaskGrammar":
        # A fresh matcher on the same compiled tables (SGLang caches one object per key and hands
        # each new request a copy).
        return GrammaskGrammar(self.compiled, self.key)

    # Jump-forward: the bytes the grammar forces next, as text.
    def try_jump_forward(self, tokenizer) -> Optional[Tuple[List[int], str]]:
        forced = self.matcher.forced_bytes()
        text = _utf8_prefix(forced)
        return ([], text) if text else None

    def jump_forward_str_state(self, helper: Tuple[List[int], str]) -> Tuple[str, int]:
        return helper[1], -1

    def jump_and_retokenize(self, old_output_ids: List[int], new_output_ids: List[int], next_state: int) -> None:
        common = 0
        for a, b in zip(old_output_ids, new_output_ids):
            if a != b:
                break
            common += 1
        if common < len(old_output_ids):
            self.matcher.rollback(len(old_output_ids) - common)
        for token in new_output_ids[common:]:
            self.accept_token(token)

    def __repr__(self) -> str:
        return f"GrammaskGrammar({self.key[0]}, {self.matcher.num_accepted_tokens} tokens)"


def _utf8_prefix(data: bytes) -> str:
    """The longest prefix of `data` that is whole UTF-8 characters, decoded."""
    for cut in range(len(data), max(len(data) - 4, -1), -1):
        try:
            return data[:cut].decode("utf-8")
        except UnicodeDecodeError:
            continue
    return ""


class GrammaskGrammarBackend(BaseGrammarBackend):
    """Compiles each (key type, key) once per tokenizer; a broken grammar becomes SGLang's
    InvalidGrammarObject carrying grammask's error message, which fails only that request."""

    def __init__(self, tokenizer, vocab_size: int, eos_token_ids=None):
        super().__init__()
        self.tokenizer_info = TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size,
                                                             stop_token_ids=sorted(eos_token_ids or ()))
        self.compiled = CompiledGrammarCache(self.tokenizer_info)

    def _grammar(self, key_type: str, args: dict, key_string: str) -> BaseGrammarObject:
        try:
            spec = parse_spec(args)
            return GrammaskGrammar(self.compiled.get(spec), (key_type, key_string))
        except ValueError as exc:  # GrammarError is a ValueError
            log.error("grammask: invalid %s grammar: %s", key_type, exc)
            return InvalidGrammarObject(str(exc))

    def dispatch_json(self, key_string: str) -> BaseGrammarObject:
        if key_string == ANY_JSON:
            return self._grammar("json", {"grammar": "json"}, key_string)
        return self._grammar("json", {"json_schema": key_string}, key_string)

    def dispatch_regex(self, key_string: str) -> BaseGrammarObject:
        return self._grammar("regex", {"regex": key_string}, key_string)

    def dispatch_ebnf(self, key_string: str) -> BaseGrammarObject:
        return self._grammar("ebnf", {"grammar": key_string}, key_string)

    def dispatch_structural_tag(self, key_string: str) -> BaseGrammarObject:
        return self._grammar("structural_tag", {"structural_tag": key_string}, key_string)


def create_backend(server_args, tokenizer, vocab_size: int, eos_token_ids=None) -> GrammaskGrammarBackend:
    """The init function SGLang calls: init_func(server_args, tokenizer, vocab_size, eos_token_ids)."""
    return GrammaskGrammarBackend(tokenizer, vocab_size, eos_token_ids)


def register() -> None:
    """Entry point of the `sglang.srt.plugins` group: makes `--grammar-backend grammask` available."""
    register_grammar_backend(BACKEND_NAME, create_backend)
    try:
        from sglang.srt.arg_groups.choices import GRAMMAR_BACKEND_CHOICES
    except ImportError:  # releases whose parser takes any name
        return
    if BACKEND_NAME not in GRAMMAR_BACKEND_CHOICES:
        GRAMMAR_BACKEND_CHOICES.append(BACKEND_NAME)


__all__ = ["BACKEND_NAME", "GrammaskGrammar", "GrammaskGrammarBackend", "create_backend", "register"]
