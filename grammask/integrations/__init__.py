"""grammask inside serving engines, as plugins the engines load themselves.

- vLLM: grammask.integrations.vllm:GrammaskLogitsProcessor (a logits processor; per-request grammars in
  SamplingParams.extra_args["grammask"]).
- SGLang: grammask.integrations.sglang (a grammar backend, `--grammar-backend grammask`).

Submodules import their engine only when imported themselves; this package imports nothing heavy.
"""
