"""GrammarLogitsProcessor: constrain any Hugging Face model's generate() to a grammar."""

from __future__ import annotations

from typing import Iterable, Optional, Union

import torch
from transformers import LogitsProcessor

from ..fsm.vocab import TokenizerInfo
from ..grammar import Grammar
from .bitmask import allocate_token_bitmask, apply_token_bitmask_inplace, stop_token_bitmask
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
    same processor can serve several generate() calls: a new call is detected from the input ids (call
    `reset()` before one whose prompt begins with the previous prompt and its output). Assisted and
    prompt-lookup decoding are followed too: drafts scored one position per call, rejected ones rolled
    back; a call it cannot follow raises instead of restarting.

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
        self._stop_only = stop_token_bitmask(self.compiled.vocab_size, self.stop_token_ids)
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
        self._history: Optional[torch.Tensor] = None  # (rows, capacity): the tokens each row has followed
        self._lengths: list[int] = []
        self._bitmask: Optional[torch.Tensor] = None

    # -- following the rows -------------------------------------------------------------------------
    #
    # Every decoding mode of generate() calls the processor with sequences that extend one it has already
    # seen by one token: greedy and sampling one step at a time; beam search with rows that may now hold
    # another beam's history; assisted and prompt-lookup decoding once per draft position, then with the
    # drafts the model rejected dropped (the sequence gets shorter). Each row is followed by rolling its
    # matcher back to the part it shares with what the row held before and accepting the rest. The
    # histories are kept as one tensor, so a step compares them vectorized and converts only new tokens.

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
        self._history = torch.zeros((rows, 64), dtype=input_ids.dtype, device=input_ids.device)
        self._lengths = [0] * rows
        if self._closing is not None:
            self._closing.start(rows)
        if self._bitmask is None or self._bitmask.shape[0] != rows:
            self._bitmask = allocate_token_bitmask(rows, self.compiled.vocab_size)

    def _is_new_generation(self, input_ids: torch.Tensor) -> bool:
        prompt = self._prompt
        if prompt is None or input_ids.shape[0] != prompt.shape[0] or input_ids.shape[1] < prompt.shape[1]:
            return True
        return not torch.equal(input_ids[:, : prompt.shape[1]], prompt)

    def reset(self) -> None:
        """Forget the generation being followed: the next call starts a new one. Needed only before a
        generate() call whose prompt begins with the previous call's prompt and its output (a chat turn
        after the one before); any other new prompt is recognized."""
        self._prompt = None

    def _shared_length(self, row: int, generated: torch.Tensor) -> int:
        """How many leading tokens of `generated` the history of `row` holds."""
        n = min(self._lengths[row], generated.shape[0])
        if n == 0 or torch.equal(self._history[row, :n], generated[:n]):  # the common case, one compare
            return n
        return int((self._history[row, :n] != generated[:n]).nonzero()[0])

    def _shared_with_before(self, generated: torch.Tensor) -> list[int]:
        """Per row, how many leading tokens it shares with what it held before this call. Checks, against
        the histories before any row is updated, that each row extends a sequence seen (in any row: beams
        move) by at most one token."""
        shared = []
        for row in range(generated.shape[0]):
            length = generated.shape[1]
            n = self._shared_length(row, generated[row])
            if length - n > 1 and not any(self._shared_length(other, generated[row]) >= length - 1
                                          for other in range(generated.shape[0]) if other != row):
                raise RuntimeError(
                    f"grammask: row {row} holds {length - n} tokens the processor has not seen after the {n} "
                    "it shares with what it followed; generate() adds one per call. If this is a new "
                    "generate() call whose prompt begins with the previous prompt and its output, call "
                    "processor.reset() before it.")
            shared.append(n)
        return shared

    def _follow(self, row: int, generated: torch.Tensor, shared: int) -> None:
        length = generated.shape[0]
        new = generated[shared:].tolist()
        m = self._matchers[row]
        done = self._lengths[row]
        if done > shared:  # rejected drafts, or beam search moved another beam's history here
            m.rollback(min(done, m.num_accepted_tokens) - min(shared, m.num_accepted_tokens))
        if self._closing is not None:
            self._closing.follow(row, new, continuing=done == shared)
        if length > self._history.shape[1]:
            grown = torch.zeros((self._history.shape[0], 2 * length), dtype=self._history.dtype,
                                device=self._history.device)
            grown[:, : self._history.shape[1]] = self._history
            self._history = grown
        self._history[row, shared:length] = generated[shared:]
        self._lengths[row] = length
        for t in new:
            if m.is_terminated():
                break  # finished rows are padded by generate(); nothing to follow
            if not m.accept_token(t):
                raise RuntimeError(
                    f"grammask: generated token {t} is not allowed by the grammar in row {row}. The mask was "
                    "not applied to this token: is another logits processor or warper overriding -inf scores, "
                    "or was the processor built for another tokenizer?")

    # -- the step -------------------------------------------------------------------------------------

    def follow(self, input_ids: torch.LongTensor) -> None:
        """Bring the matchers to `input_ids` without filling a mask (what a call does first)."""
        if self._is_new_generation(input_ids):
            self._start(input_ids)
        generated = input_ids[:, self._prompt.shape[1]:]
        for row, shared in enumerate(self._shared_with_before(generated)):
            self._follow(row, generated[row], shared)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        self.follow(input_ids)
        bitmask = self._bitmask
        for row, m in enumerate(self._matchers):
            if not m.is_terminated() and m.is_accepting() and not m.can_continue():
                bitmask[row].copy_(self._stop_only)
            else:
                m.fill_next_token_bitmask(bitmask, row)
                if self._closing is not None and not m.is_terminated():
                    self._closing.restrict(row, m, self._lengths[row], scores[row], bitmask[row],
                                           self._stop_only)
        apply_token_bitmask_inplace(scores, bitmask)
        return scores

    @property
    def matchers(self) -> list[GrammarMatcher]:
        """The matchers of the current generation, one per row."""
        return self._matchers
