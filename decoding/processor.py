"""GrammarLogitsProcessor: constrain any Hugging Face model's generate() to a grammar."""

from __future__ import annotations

from typing import Iterable, Optional, Union

import numpy as np
import torch
from transformers import LogitsProcessor

from ..fsm.vocab import TokenizerInfo
from ..grammar import Grammar
from .bitmask import allocate_token_bitmask, apply_token_bitmask_inplace, bitmask_words
from .closing import BudgetClosing
from .compiler import CompiledGrammar, compile
from .matcher import GrammarMatcher


class GrammarLogitsProcessor(LogitsProcessor):
    """Masks the logits so that the generated text stays inside the grammar.

    Pass it to `model.generate(..., logits_processor=[proc])`. One matcher follows each row (batch x
    beams x return sequences); rows reordered by beam search are followed by rolling back to the common
    prefix. The prompt is not parsed; `prefix` is text fed to the grammar before the first generated
    token (e.g. the code a completion continues). A stop token is allowed only once the output is
    complete; once nothing but ignored text (whitespace) may follow, only stop tokens are allowed. The
    same processor can serve several generate() calls: a new call is detected from the input ids.

    Budget-aware closing (off by default): `token_budget=N`, the same N as generate()'s max_new_tokens,
    keeps a complete text reachable within the tokens left, so an output cut by the budget is still
    complete: only tokens after which a completion within the remaining budget was found (and verified
    by the matcher) stay allowed, and the last steps force one (see grammask.decoding.closing).
    `closing_checks` is how many candidates (in logit order) are checked per step at most, `closing_keep`
    how many verified ones are enough (greedy decoding needs one; sampling draws from them). A budget
    with no completion of the prefix found raises ValueError at the first step.
    """

    def __init__(self, grammar: Union[Grammar, CompiledGrammar, str], tokenizer, *, prefix: str = "",
                 stop_token_ids: Optional[Iterable[int]] = None, vocab_size: Optional[int] = None,
                 token_budget: Optional[int] = None, closing_checks: int = 32, closing_keep: int = 8):
        if isinstance(grammar, CompiledGrammar):
            self.compiled = grammar
        else:
            if isinstance(grammar, str):
                grammar = Grammar.builtin(grammar)
            info = TokenizerInfo.from_huggingface(tokenizer, vocab_size=vocab_size, stop_token_ids=stop_token_ids)
            self.compiled = compile(grammar, info)
        self.prefix = prefix.encode("utf-8") if isinstance(prefix, str) else bytes(prefix)
        if self.prefix:
            check = self.compiled.matcher()
            if not check.accept_string(self.prefix):
                result = self.compiled.grammar.validate(self.prefix)
                raise ValueError(f"prefix is not the start of any text of the grammar: "
                                 f"{result.line}:{result.column}: {result.message}")
        self.stop_token_ids = list(self.compiled.tokenizer_info.stop_token_ids)
        stop_words = np.zeros(bitmask_words(self.compiled.vocab_size), dtype=np.uint32)
        for t in self.stop_token_ids:
            stop_words[t >> 5] |= np.uint32(1 << (t & 31))
        self._stop_only = torch.from_numpy(stop_words.view(np.int32))
        if token_budget is not None:
            if isinstance(token_budget, bool) or not isinstance(token_budget, int) or token_budget < 1:
                raise ValueError(f"token_budget must be a positive int (generate()'s max_new_tokens), "
                                 f"not {token_budget!r}")
            for name, value in (("closing_checks", closing_checks), ("closing_keep", closing_keep)):
                if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                    raise ValueError(f"{name} must be a positive int, not {value!r}")
        self.token_budget = token_budget
        self._closing = None
        if token_budget is not None:
            self._closing = BudgetClosing(self.compiled, token_budget, checks=closing_checks, keep=closing_keep)
        self._matchers: list[GrammarMatcher] = []
        self._prompt: Optional[torch.Tensor] = None
        self._length = -1
        self._bitmask: Optional[torch.Tensor] = None

    # -- following the rows -------------------------------------------------------------------------

    def _start(self, input_ids: torch.Tensor) -> None:
        rows = input_ids.shape[0]
        while len(self._matchers) < rows:
            self._matchers.append(self.compiled.matcher())
        del self._matchers[rows:]
        for m in self._matchers:
            m.reset()
            if self.prefix and not m.accept_string(self.prefix):  # checked in __init__
                raise RuntimeError("grammask: prefix rejected by a fresh matcher")
        self._prompt = input_ids.clone()
        self._accepted: list[list[int]] = [[] for _ in range(rows)]
        if self._closing is not None:
            self._closing.start(rows)
        if self._bitmask is None or self._bitmask.shape[0] != rows:
            self._bitmask = allocate_token_bitmask(rows, self.compiled.vocab_size)

    def _is_new_generation(self, input_ids: torch.Tensor) -> bool:
        if self._prompt is None or input_ids.shape[1] != self._length + 1:
            return True
        if input_ids.shape[0] != len(self._matchers):
            return True
        # Beam search reorders rows only among the beams of one prompt, so the prompt block stays equal.
        return not torch.equal(input_ids[:, : self._prompt.shape[1]], self._prompt)

    def _follow(self, row: int, generated: list[int]) -> None:
        m = self._matchers[row]
        done = self._accepted[row]
        continuing = len(generated) == len(done) + 1 and generated[:-1] == done
        if continuing:
            new = generated[-1:]
        else:  # beam search moved another beam's history into this row
            common = 0
            limit = min(len(done), len(generated))
            while common < limit and done[common] == generated[common]:
                common += 1
            m.rollback(len(done) - common)
            del done[common:]
            new = generated[common:]
        if self._closing is not None:
            self._closing.follow(row, new, continuing)
        for t in new:
            if m.is_terminated():
                break  # finished rows are padded by generate(); nothing to follow
            if not m.accept_token(t):
                raise RuntimeError(
                    f"grammask: generated token {t} is not allowed by the grammar in row {row}. The mask was "
                    "not applied to this token: is another logits processor or warper overriding -inf scores, "
                    "or was the processor built for another tokenizer?")
            done.append(t)

    # -- the step -------------------------------------------------------------------------------------

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self._is_new_generation(input_ids):
            self._start(input_ids)
        self._length = input_ids.shape[1]
        start = self._prompt.shape[1]
        if input_ids.shape[1] > start:
            generated = input_ids[:, start:].tolist()
            for row in range(input_ids.shape[0]):
                self._follow(row, generated[row])
        bitmask = self._bitmask
        for row, m in enumerate(self._matchers):
            if not m.is_terminated() and m.is_accepting() and not m.can_continue():
                bitmask[row].copy_(self._stop_only)
            else:
                m.fill_next_token_bitmask(bitmask, row)
                if self._closing is not None and not m.is_terminated():
                    self._closing.restrict(row, m, len(self._accepted[row]), scores[row], bitmask[row],
                                           self._stop_only)
        apply_token_bitmask_inplace(scores, bitmask)
        return scores

    @property
    def matchers(self) -> list[GrammarMatcher]:
        """The matchers of the current generation, one per row."""
        return self._matchers
