"""A repetition penalty for constrained decoding: content is penalized, the grammar's own syntax is not.

A small model under a grammar tends to loop: it writes the same key, value or nested object again and
again until the budget cuts it. The usual remedy, a repetition penalty (Keskar et al., CTRL: a token
already written has its score divided by p when positive, multiplied by p when negative), also hits the
tokens the grammar makes every text repeat -- quotes, colons, commas, brackets, indentation, keywords
such as `true` or `return` -- and the model then escapes into odd spellings of the same syntax (`" :`
instead of `":`). Here those tokens are exempt: only tokens that carry content (a letter or digit that
is not one of the grammar's literal keywords) are penalized, and only once they were generated (the
prompt is not counted: a request about a cat must be able to say "cat").
"""

from __future__ import annotations

import re
from typing import Optional

import torch
from transformers import LogitsProcessor

from ..fsm.vocab import TokenizerInfo
from ..grammar import Grammar

_WORD = re.compile(r"[^\W_]+")  # a run of letters or digits


def content_tokens(grammar: Optional[Grammar], info: TokenizerInfo) -> torch.Tensor:
    """(vocab_size,) bool: the tokens a repetition penalty may touch. A token is content when its text
    has a run of letters or digits that is not a literal terminal of the grammar (`true`, `def`, ...).
    Stop tokens and tokens without text never are. Without a grammar, every word is content."""
    terminals = grammar.tables.terminals if grammar is not None else []
    keywords = {_unescape(t.regex) for t in terminals if t.is_literal and t.regex is not None}
    stops = set(info.stop_token_ids)
    content = torch.zeros(info.vocab_size, dtype=torch.bool)
    for i, raw in enumerate(info.token_bytes):
        if raw and i not in stops:
            # A token ending inside a UTF-8 character keeps the letters it has whole.
            content[i] = any(w not in keywords for w in _WORD.findall(raw.decode("utf-8", "ignore")))
    return content


def _unescape(regex: str) -> str:
    """A literal terminal's text from its regex (re.escape'd)."""
    return re.sub(r"\\(.)", r"\1", regex)


class ContentRepetitionPenalty(LogitsProcessor):
    """Divide (multiply, when negative) by `penalty` the scores of the content tokens (see
    `content_tokens`) already generated in each row. Generated means after the first `prompt_length`
    ids; pass it before the grammar's processor so that masking and budget-aware closing see the
    penalized scores."""

    def __init__(self, content: torch.Tensor, prompt_length: int, penalty: float):
        if not penalty > 0:
            raise ValueError(f"repetition penalty must be positive, not {penalty!r}")
        self.content = content
        self.prompt_length = prompt_length
        self.penalty = float(penalty)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        generated = input_ids[:, self.prompt_length:]
        if self.penalty == 1.0 or generated.shape[1] == 0:
            return scores
        vocab = min(self.content.shape[0], scores.shape[1])
        seen = torch.zeros(scores.shape[0], scores.shape[1], dtype=torch.bool, device=scores.device)
        seen.scatter_(1, generated.clamp(max=scores.shape[1] - 1), True)
        seen[:, :vocab] &= self.content[:vocab].to(scores.device)
        seen[:, vocab:] = False
        penalized = torch.where(scores > 0, scores / self.penalty, scores * self.penalty)
        return torch.where(seen, penalized, scores)
