"""End-to-end cost of the constraint: greedy generation with the default model, with and without the
JSON processor, on the same prompts and the same number of tokens, interleaved in one process.

    .venv/bin/python -m bench.bench_generation
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

import grammask as gm
from grammask.decoding.generation import chat_input_ids

PROMPTS = ["Describe a cat as a JSON object.", "Give a JSON array of five European capitals with population.",
           "Return a JSON object describing a book: title, author, year, genres.",
           "Write a JSON configuration for a web server with host, port and routes.",
           "List three programming languages as JSON objects with name and year."]


class TimedProcessor:
    """Wraps the processor to measure the time spent inside it."""

    def __init__(self, inner):
        self.inner = inner
        self.seconds = 0.0

    def __call__(self, input_ids, scores):
        t0 = time.perf_counter()
        out = self.inner(input_ids, scores)
        self.seconds += time.perf_counter() - t0
        return out


def timed_generate(model, ids, tokens: int, processors, exact: bool) -> tuple[float, int]:
    kwargs = dict(min_new_tokens=tokens) if exact else {}
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=tokens, do_sample=False,
                             logits_processor=processors, pad_token_id=2, **kwargs)
    return time.perf_counter() - t0, out.shape[1] - ids.shape[1]


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", type=Path, default=Path("bench/results/generation.md"))
    args = ap.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    model, tok = gm.load_model()
    proc = TimedProcessor(gm.GrammarLogitsProcessor("json", tok, stop_token_ids=[2]))
    rows = []
    for prompt in PROMPTS:
        ids = chat_input_ids(tok, prompt)
        timed_generate(model, ids, 4, [], True)  # warm-up
        con, unc = [], []
        proc.seconds = 0.0
        for _ in range(args.repeats):
            t, n = timed_generate(model, ids, args.max_new_tokens, [proc], False)
            con.append(t / n)
            t, m = timed_generate(model, ids, n, [], True)  # the same number of tokens, unconstrained
            assert m == n
            unc.append(t / n)
        rows.append((prompt, n, statistics.median(con), statistics.median(unc), proc.seconds / (args.repeats * n)))
        print(f"  {n} tokens: {rows[-1][2] * 1e3:.1f} ms vs {rows[-1][3] * 1e3:.1f} ms per token", file=sys.stderr)
    total_con = sum(r[1] * r[2] for r in rows)
    total_unc = sum(r[1] * r[3] for r in rows)
    lines = ["| prompt | tokens | constrained ms/token | unconstrained ms/token | ratio | processor ms/token |",
             "|---|---|---|---|---|---|"]
    for prompt, n, c, u, p in rows:
        lines.append(f"| {prompt[:48]} | {n} | {c * 1e3:.2f} | {u * 1e3:.2f} | {c / u:.3f} | {p * 1e3:.3f} |")
    lines.append(f"| **all** | {sum(r[1] for r in rows)} | {total_con / sum(r[1] for r in rows) * 1e3:.2f} | "
                 f"{total_unc / sum(r[1] for r in rows) * 1e3:.2f} | **{total_con / total_unc:.3f}** | |")
    table = "\n".join(lines)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("# Constrained vs unconstrained greedy generation (SmolLM2-135M-Instruct, CPU)\n\n"
                        f"Median of {args.repeats} interleaved runs per prompt; the unconstrained run generates "
                        f"exactly as many tokens as the constrained one.\n\n{table}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
