"""grammask as a vLLM logits processor: each request constrained to its own grammar.

    LLM(model, logits_processors=["grammask.integrations.vllm:GrammaskLogitsProcessor"])
    vllm serve MODEL --logits-processors grammask.integrations.vllm:GrammaskLogitsProcessor

Per request, SamplingParams(extra_args={"grammask": {...}}) (over HTTP: "vllm_xargs") with exactly one
of "grammar" (a built-in name or Lark text), "json_schema" (JSON text or a dict), "regex",
"structural_tag" (JSON text). Requests without it are not touched.

vLLM has two logits-processor interfaces: the V1 model runner's (vllm/v1/sample/logits_processor/
interface.py: update_state(BatchUpdate) + apply(logits)) and the V2 GPU model runner's
(vllm/v1/worker/gpu/sample/logits_processor/interface.py: add_request(slot) + apply(logits, ctx)).
Each runner checks the class it loads against its own base; this class derives from both and takes
its role from the constructor arguments the runner passes, so one name works in either engine.

Where it runs: the frontend process calls validate_params() at admission (a broken grammar fails that
request with the GrammarError message, HTTP 400); each worker process that samples builds its own
tables (once per grammar, shared by all requests with it) and fills the masks on its CPU.
"""

from __future__ import annotations

import logging
from typing import Any, Optional

import torch
from vllm.v1.sample.logits_processor import BatchUpdate, MoveDirectionality
from vllm.v1.sample.logits_processor import LogitsProcessor as V1LogitsProcessor

from ..grammar import GrammarError
from .constraints import PLACEHOLDER_TOKEN, BatchMasker, CompiledGrammarCache, RequestConstraint
from .request_grammar import GrammarCache, GrammarSpec, parse_spec

try:  # vLLM releases with the V2 model runner
    from vllm.v1.worker.gpu.sample.logits_processor.interface import LogitsProcessor as V2LogitsProcessor
except ImportError:  # pragma: no cover - older vLLM: V1 only
    V2LogitsProcessor = None

try:
    from vllm.exceptions import VLLMValidationError as _RequestError
except ImportError:  # pragma: no cover - older vLLM turns a ValueError into the same HTTP 400
    _RequestError = ValueError

log = logging.getLogger("grammask.integrations.vllm")

EXTRA_ARGS_KEY = "grammask"
QUALNAME = "grammask.integrations.vllm:GrammaskLogitsProcessor"

# Grammars built in this process for admission checks, reused when the worker shares the process.
_GRAMMARS = GrammarCache()


def request_spec(sampling_params) -> Optional[GrammarSpec]:
    """The request's grammar spec, or None when it asks for no grammar. ValueError when malformed."""
    extra = getattr(sampling_params, "extra_args", None) or {}
    if EXTRA_ARGS_KEY not in extra:
        return None
    return parse_spec(extra[EXTRA_ARGS_KEY])


class _EngineTables:
    """What every request in one engine process shares: the tokenizer's vocabulary, compiled grammars
    and the mask buffer. Built on the first constrained request, so engines that never see one pay
    nothing."""

    def __init__(self, tokenizer_info, grammars: Optional[GrammarCache] = None):
        self.info = tokenizer_info
        self.compiled = CompiledGrammarCache(tokenizer_info, grammars or _GRAMMARS)
        self.masker = BatchMasker(tokenizer_info)

    @classmethod
    def from_tokenizer_info(cls, tokenizer_info, grammars: Optional[GrammarCache] = None) -> "_EngineTables":
        return cls(tokenizer_info, grammars)

    @classmethod
    def from_vllm_config(cls, vllm_config) -> "_EngineTables":
        from vllm.tokenizers import cached_tokenizer_from_config

        from ..fsm import TokenizerInfo

        model_config = vllm_config.model_config
        tokenizer = cached_tokenizer_from_config(model_config)
        if tokenizer is None:
            raise ValueError("grammask needs the model's tokenizer; the engine was started with "
                             "skip_tokenizer_init")
        # vLLM stops on the tokenizer's EOS and on the generation config's eos_token_id(s): a complete
        # text may end with any of them.
        generation = model_config.try_get_generation_config() or {}
        eos = generation.get("eos_token_id")
        stops = [eos] if isinstance(eos, int) else list(eos or ())
        return cls(TokenizerInfo.from_huggingface(tokenizer, vocab_size=model_config.get_vocab_size(),
                                                  stop_token_ids=stops))

    def constraint(self, spec: GrammarSpec) -> RequestConstraint:
        try:
            compiled = self.compiled.get(spec)
        except GrammarError as exc:
            # Admission already built this grammar; what can still fail here is the table size for
            # this vocabulary. The request ends (only stop tokens allowed) and the reason is logged.
            log.error("grammask: cannot compile %s for this model: %s", spec.describe(), exc)
            return RequestConstraint.failed(spec, f"grammask: {exc}")
        return RequestConstraint(compiled, spec)


_BASES = (V1LogitsProcessor,) if V2LogitsProcessor is None else (V1LogitsProcessor, V2LogitsProcessor)


class GrammaskLogitsProcessor(*_BASES):
    """Constrains each request that carries extra_args["grammask"] to its grammar (V1 and V2 runners)."""

    @classmethod
    def validate_params(cls, sampling_params) -> None:
        try:
            spec = request_spec(sampling_params)
            if spec is not None:
                _GRAMMARS.get(spec)
        except ValueError as exc:  # GrammarError is a ValueError
            raise _RequestError(str(exc)) from None

    def __init__(self, vllm_config, *runner_args: Any):
        # V1 passes (device, is_pin_memory); V2 passes (LogitsProcRequestState,).
        if vllm_config.speculative_config is not None:
            raise ValueError("grammask: speculative decoding is not supported (draft tokens would need "
                             "rollback of the per-request matchers)")
        self._vllm_config = vllm_config
        self._tables: Optional[_EngineTables] = None
        self._v2_state = runner_args[0] if len(runner_args) == 1 else None
        # V1: batch row -> (constraint, the request's live output-token list).
        self._rows: "dict[int, tuple[RequestConstraint, list]]" = {}
        # V2: persistent request slot -> constraint (its tokens are read from the runner's buffers).
        self._slots: "dict[int, RequestConstraint]" = {}

    # -- shared -------------------------------------------------------------------------------------

    def _constraint_for(self, sampling_params) -> Optional[RequestConstraint]:
        spec = request_spec(sampling_params)
        if spec is None:
            return None
        if self._tables is None:
            self._tables = _EngineTables.from_vllm_config(self._vllm_config)
        return self._tables.constraint(spec)

    def is_argmax_invariant(self) -> bool:
        return False  # masking changes the greedy choice

    def apply(self, logits: torch.Tensor, ctx=None) -> torch.Tensor:
        if ctx is None:
            rows = self._v1_rows()
        else:
            rows = self._v2_rows(logits, ctx)
        if rows:
            self._tables.masker.apply(logits, rows)
        return logits

    # -- V1 model runner ----------------------------------------------------------------------------

    def update_state(self, batch_update: Optional[BatchUpdate]) -> None:
        if not batch_update:
            return
        # Order as the interface documents: removed, added, moved. A slot that is both freed and
        # refilled in one step appears only under added.
        for index in batch_update.removed:
            self._rows.pop(index, None)
        for index, params, _prompt_ids, output_ids in batch_update.added:
            constraint = self._constraint_for(params)
            if constraint is None:
                self._rows.pop(index, None)
            else:
                # A resumed request arrives with the outputs it had; the fresh matcher replays them.
                self._rows[index] = (constraint, output_ids)
        for a, b, direction in batch_update.moved:
            entry_a = self._rows.pop(a, None)
            entry_b = self._rows.pop(b, None)
            if entry_a is not None:
                self._rows[b] = entry_a
            if direction == MoveDirectionality.SWAP and entry_b is not None:
                self._rows[a] = entry_b

    def _v1_rows(self):
        rows = []
        for index, (constraint, output_ids) in self._rows.items():
            constraint.feed(output_ids)
            if constraint.error is None and constraint.consumed < len(output_ids):
                # Tokens still unknown at sampling time: masks would be stale. vLLM fills them in
                # only for processors named in logits_processors, not for entry-point plugins.
                raise RuntimeError("grammask: the request's previous token is not yet known to the "
                                   f"logits processor (async scheduling); load it with "
                                   f"--logits-processors {QUALNAME}")
            rows.append((index, constraint))
        return rows

    # -- V2 model runner ----------------------------------------------------------------------------

    def add_request(self, req_idx: int, sampling_params) -> bool:
        constraint = self._constraint_for(sampling_params)
        if constraint is None:
            self._slots.pop(req_idx, None)  # the slot may hold a finished request's matcher
            return False
        self._slots[req_idx] = constraint
        return True

    def apply_staged_writes(self) -> None:
        return None  # nothing is staged: matchers live on the host

    def _v2_rows(self, logits: torch.Tensor, ctx):
        if not self._slots:
            return []
        slots = ctx.idx_mapping_np
        if logits.shape[0] != len(slots):
            raise RuntimeError("grammask: more logits rows than requests (speculative decoding) is not "
                               "supported")
        state = self._v2_state
        prompt_len = state.prompt_len.np
        wanted = []  # (row, constraint, slot, first position to read, end position)
        for row, slot in enumerate(slots.tolist()):
            constraint = self._slots.get(slot)
            if constraint is None:
                continue
            start = int(prompt_len[slot]) + constraint.consumed
            end = int(ctx.seq_lens_upper_bound_np[row])  # exact without speculative decoding
            wanted.append((row, constraint, slot, start, max(start, end)))
        # One device-to-host copy for every request's new tokens (usually one each).
        pieces = [state.all_token_ids.gpu[slot, start:end] for _, _, slot, start, end in wanted]
        flat = torch.cat(pieces).tolist() if pieces else []
        rows, offset = [], 0
        for row, constraint, _, start, end in wanted:
            new = flat[offset:offset + end - start]
            offset += end - start
            if PLACEHOLDER_TOKEN in new:
                raise RuntimeError("grammask: a committed token is still a placeholder at sampling time")
            constraint.feed(new, first_position=constraint.consumed)
            rows.append((row, constraint))
        return rows


__all__ = ["EXTRA_ARGS_KEY", "GrammaskLogitsProcessor", "QUALNAME", "request_spec"]
