"""vLLM throughput on a batch of 32 requests: unconstrained, grammask, and vLLM's own xgrammar backend.

One engine serves all three (grammask loaded with logits_processors, vLLM's structured outputs
backend "xgrammar"), alternating modes within each repeat, so the three see the same machine state.
Each batch: 32 chat requests, greedy, JSON Schema constrained (a few different schemas) or free; the
figure is generated tokens / wall seconds for the whole batch; medians (and min/max) over --repeats.
The default model is the packaged SmolLM2-135M-Instruct exported to a Hugging Face directory.

    python -m bench.bench_vllm                  # writes bench/results/vllm_cpu.md
    python -m bench.bench_vllm --repeats 5 --max-tokens 96
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

QUALNAME = "grammask.integrations.vllm:GrammaskLogitsProcessor"
SCHEMAS = [
    {"type": "object", "additionalProperties": False, "required": ["name", "age"],
     "properties": {"name": {"type": "string", "maxLength": 24}, "age": {"type": "integer"}}},
    {"type": "object", "additionalProperties": False, "required": ["city", "country", "population"],
     "properties": {"city": {"type": "string", "maxLength": 24}, "country": {"type": "string", "maxLength": 24},
                    "population": {"type": "integer"}}},
    {"type": "object", "additionalProperties": False, "required": ["title", "tags"],
     "properties": {"title": {"type": "string", "maxLength": 40},
                    "tags": {"type": "array", "maxItems": 4, "items": {"type": "string", "maxLength": 16}}}},
    {"type": "array", "minItems": 1, "maxItems": 5, "items": {"type": "integer"}},
]
PROMPTS = [
    "Describe a person as JSON.", "Describe a city as JSON.", "Describe a blog post as JSON.",
    "List some numbers as JSON.", "Give me a JSON record of a famous scientist.", "Describe Paris as JSON.",
    "Describe a book as JSON.", "Give a JSON list of prime numbers.",
]
MODES = ("unconstrained", "grammask", "xgrammar")


def _requests(n: int):
    return [(PROMPTS[i % len(PROMPTS)], SCHEMAS[i % len(SCHEMAS)]) for i in range(n)]


def _params(mode: str, schema: dict, max_tokens: int):
    from vllm import SamplingParams

    if mode == "grammask":
        return SamplingParams(max_tokens=max_tokens, temperature=0,
                              extra_args={"grammask": {"json_schema": json.dumps(schema)}})
    if mode == "xgrammar":
        from vllm.sampling_params import StructuredOutputsParams

        return SamplingParams(max_tokens=max_tokens, temperature=0,
                              structured_outputs=StructuredOutputsParams(json=schema))
    return SamplingParams(max_tokens=max_tokens, temperature=0)


def _run_batch(llm, mode: str, batch: int, max_tokens: int):
    reqs = _requests(batch)
    messages = [[{"role": "user", "content": p}] for p, _ in reqs]
    params = [_params(mode, s, max_tokens) for _, s in reqs]
    t0 = time.perf_counter()
    outputs = llm.chat(messages, params, use_tqdm=False)
    seconds = time.perf_counter() - t0
    tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
    valid = None
    if mode != "unconstrained":
        valid = sum(_valid(o.outputs[0].text, s) for o, (_, s) in zip(outputs, reqs))
    return tokens, seconds, valid


def _valid(text: str, schema: dict) -> bool:
    import jsonschema

    try:
        jsonschema.validate(json.loads(text), schema)
        return True
    except (ValueError, jsonschema.ValidationError):
        return False


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", help="local Hugging Face model directory (default: the packaged SmolLM2-135M)")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "vllm_cpu.md"))
    args = parser.parse_args(argv)

    os.environ.setdefault("VLLM_CPU_KVCACHE_SPACE", "2")
    import vllm
    from vllm import LLM

    from grammask.integrations.hf_export import default_model_hf_dir

    model = args.model or str(default_model_hf_dir())
    llm = LLM(model=model, logits_processors=[QUALNAME], max_model_len=1024, max_num_seqs=args.batch, seed=0,
              enforce_eager=True, structured_outputs_config={"backend": "xgrammar"})
    # Warm-up: compile every schema in both constrained modes (compilation is not what is measured).
    for mode in MODES:
        _run_batch(llm, mode, len(SCHEMAS), 8)
    results = {mode: [] for mode in MODES}
    for r in range(args.repeats):
        order = MODES[r % 3:] + MODES[:r % 3]  # rotate so no mode always runs first
        for mode in order:
            tokens, seconds, valid = _run_batch(llm, mode, args.batch, args.max_tokens)
            results[mode].append((tokens, seconds, valid))
            print(f"repeat {r} {mode:13s} {tokens:5d} tokens {seconds:7.2f} s {tokens / seconds:8.1f} tok/s"
                  + (f"  valid {valid}/{args.batch}" if valid is not None else ""), flush=True)

    lines = [f"# vLLM throughput, batch of {args.batch} (tokens/s)", "",
             f"vLLM {vllm.__version__}, {platform.machine()}, {os.cpu_count()} CPUs, model {Path(model).name}, "
             f"greedy, max_tokens {args.max_tokens}, {args.repeats} repeats. "
             f"Command: `python -m bench.bench_vllm {' '.join(argv if argv is not None else sys.argv[1:])}`", "",
             "| mode | tokens/s median | min | max | generated tokens (median) | valid outputs |",
             "|---|---|---|---|---|---|"]
    for mode in MODES:
        rates = [t / s for t, s, _ in results[mode]]
        valid = [v for _, _, v in results[mode]]
        lines.append(f"| {mode} | {statistics.median(rates):.1f} | {min(rates):.1f} | {max(rates):.1f} | "
                     f"{statistics.median(t for t, _, _ in results[mode]):.0f} | "
                     f"{'-' if valid[0] is None else f'{min(valid)}/{args.batch} (worst repeat)'} |")
    text = "\n".join(lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
