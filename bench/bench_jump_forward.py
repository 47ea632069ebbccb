"""Jump-forward decoding and the processor's per-step cost.

1. JSON Schema generation with the default model (SmolLM2-135M-Instruct), jump-forward off and on in the
   same run, on schemas from the visible MaskBench splits (../shared/corpora): model calls per output,
   wall time, the share of tokens the grammar forced, and whether every output is valid.
2. The GrammarLogitsProcessor's cost per step after 20 and after 2,000 generated tokens (no model: a real
   JSON document's tokens fed one call at a time), to show it does not grow with the length.

    python -m bench.bench_jump_forward [--schemas 12] [--max-new-tokens 128] [--compact] [--skip-model | --skip-steps]
"""

from __future__ import annotations

import argparse
import glob
import json
import statistics
import time
from pathlib import Path

import torch

import grammask as gm
from bench import workload


def maskbench_schemas(count: int, compact: bool = False) -> list[tuple[str, dict, gm.Grammar]]:
    """The first schemas (by file name) of each visible split that compile within 10 s, spread over the
    splits, with their grammars."""
    splits = sorted(glob.glob(str(workload.CORPORA / "jsonschema" / "maskbench-*")))
    if not splits:
        raise SystemExit(f"no MaskBench splits under {workload.CORPORA / 'jsonschema'} (set GRAMMASK_CORPORA)")
    per_split = max(1, -(-count // len(splits)))
    out = []
    for split in splits:
        taken = 0
        for f in sorted(glob.glob(split + "/*.json")):
            if taken >= per_split:
                break
            schema = json.loads(Path(f).read_text(encoding="utf-8"))["schema"]
            try:
                grammar = gm.Grammar.from_json_schema(schema, compact=compact, build_timeout=10.0)
            except gm.GrammarError:
                continue
            out.append((f"{Path(split).name}/{Path(f).stem}", schema, grammar))
            taken += 1
    return out[:count]


def run_schemas(args) -> str:
    model, tok = gm.load_model()
    rows = []
    totals = {False: [0, 0, 0, 0.0, 0, 0], True: [0, 0, 0, 0.0, 0, 0]}  # tokens, forced, calls, s, valid, cut
    same = n = 0
    for name, schema, grammar in maskbench_schemas(args.schemas, args.compact):
        prompt = "Write one JSON object that is valid under this JSON Schema, and nothing else:\n" + json.dumps(schema)[:1500]
        texts = {}
        n += 1
        for jump in (False, True):
            stats: dict = {}
            started = time.perf_counter()
            text = gm.generate(model, tok, prompt, grammar, max_new_tokens=args.max_new_tokens,
                               jump_forward=jump, stats=stats)
            seconds = time.perf_counter() - started
            # an output the budget cut is a valid prefix (the mask sees to it); one that ended must parse
            cut = stats["tokens"] >= args.max_new_tokens
            valid = grammar.validate(text).prefix_ok if cut else grammar.validate(text).ok and _json_ok(text)
            t = totals[jump]
            t[0] += stats["tokens"]; t[1] += stats["forced_tokens"]; t[2] += stats["model_calls"]
            t[3] += seconds; t[4] += valid; t[5] += cut
            texts[jump] = text
            rows.append(f"| {name} | {'on' if jump else 'off'} | {stats['tokens']} | {stats['forced_tokens']} | "
                        f"{stats['model_calls']} | {seconds:.1f} s | {'yes' if valid else '**no**'}{' (cut)' if cut else ''} |")
            print(rows[-1], flush=True)
        same += texts[False] == texts[True]
    lines = [f"## Jump-forward on {n} MaskBench schemas (SmolLM2-135M, greedy, budget {args.max_new_tokens}"
             f"{', compact: no whitespace' if args.compact else ''})\n",
             "| schema | jump | tokens | forced | model calls | wall | valid |", "|---|---|---|---|---|---|---|", *rows, "",
             "| jump | tokens | forced | forced share | model calls | calls per output | wall | valid | cut by the budget |",
             "|---|---|---|---|---|---|---|---|---|"]
    for jump in (False, True):
        tokens, forced, calls, seconds, valid, cut = totals[jump]
        lines.append(f"| {'on' if jump else 'off'} | {tokens} | {forced} | {forced / max(tokens, 1):.1%} | {calls} | "
                     f"{calls / n:.1f} | {seconds:.1f} s | {valid}/{n} | {cut} |")
    lines.append(f"\nOutputs identical with and without jumps: {same}/{n} (a jump writes the forced text as the "
                 "tokenizer splits it, which can differ from the model's own split, so greedy outputs may differ).")
    return "\n".join(lines)


def _json_ok(text: str) -> bool:
    try:
        json.loads(text)
        return True
    except ValueError:
        return False


def processor_step_cost(repeats: int = 7) -> str:
    """Median cost of one processor call after about 20 and after about 2,000 generated tokens, at the same
    grammar states: the text is a JSON array of one real document repeated, so the calls compared are a
    whole number of elements apart and fill the same masks; only the length differs."""
    tok = workload.load_tokenizer("smollm2")
    element = min((json.dumps(d) for d in workload.real_json_documents()), key=lambda t: abs(len(t) - 300))
    first = tok.encode("[" + element, add_special_tokens=False)
    period = len(tok.encode("[" + element + ", " + element, add_special_tokens=False)) - len(first)
    ids = tok.encode("[" + ", ".join([element] * (2_100 // period + 3)), add_special_tokens=False)
    early = range(20, 20 + period)
    late = range(early.start + period * ((2_000 - 20) // period), early.stop + period * ((2_000 - 20) // period))
    assert ids[early.start:early.stop] == ids[late.start:late.stop], "the element's tokens are not periodic"
    proc = gm.GrammarLogitsProcessor("json", tok)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # one row's small tensor ops: thread hand-offs would only add noise
    prompt = [1, 2, 3]
    scores = torch.zeros(1, proc.compiled.vocab_size)
    times = {"early": [], "late": []}
    for _ in range(repeats):
        proc.reset()
        for n in range(0, late.stop):
            seq = torch.tensor([prompt + ids[:n]])
            fresh = scores.clone()
            started = time.perf_counter()
            proc(seq, fresh)
            elapsed = time.perf_counter() - started
            if n in early:
                times["early"].append(elapsed)
            elif n in late:
                times["late"].append(elapsed)
    torch.set_num_threads(threads)
    a, b = (statistics.median(times[k]) * 1e6 for k in ("early", "late"))
    return ("## Processor cost per step (json, SmolLM2 vocabulary, one row; the same grammar states at both "
            f"lengths, median of {len(times['early'])} calls each)\n\n| generated tokens | per call |\n|---|---|\n"
            f"| {early.start}-{early.stop - 1} | {a:.1f} µs |\n| {late.start}-{late.stop - 1} | {b:.1f} µs |\n\n"
            f"Ratio: {b / a:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--schemas", type=int, default=12, help="MaskBench schemas to generate for (default 12)")
    ap.add_argument("--max-new-tokens", type=int, default=128, help="token budget per output (default 128)")
    ap.add_argument("--compact", action="store_true", help="schemas without whitespace (Grammar.from_json_schema(compact=True))")
    ap.add_argument("--skip-model", action="store_true", help="only the processor's per-step cost")
    ap.add_argument("--skip-steps", action="store_true", help="only the generation with and without jumps")
    args = ap.parse_args()
    parts = [] if args.skip_steps else [processor_step_cost()]
    if parts:
        print(parts[0], flush=True)
    if not args.skip_model:
        parts.append(run_schemas(args))
        print(parts[-1], flush=True)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "jump_forward.md").write_text("\n\n".join(parts) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
