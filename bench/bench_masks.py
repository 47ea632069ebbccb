"""Mask microbenchmark: per-token mask fill, compile (cold and from the disk cache), table memory.

Workloads of real text: for json, botocore files and MaskBench valid instances, compact and pretty-printed;
for python, CPython 3.11 standard-library modules; for go, Go 1.19 standard-library files. Every token of each text is one step: fill the mask
(timed), check the text's token is allowed, accept it. Run from the repository root:

    .venv/bin/python -m bench.bench_masks --grammar json --families smollm2 deepseek
    .venv/bin/python -m bench.bench_masks --grammar python
    .venv/bin/python -m bench.bench_masks --grammar go
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import grammask as gm
from bench.workload import CORPORA, go_texts, json_texts, load_tokenizer, real_json_documents


def percentiles(values_us: np.ndarray) -> dict:
    p50, p90, p99 = np.percentile(values_us, [50, 90, 99])
    return {"p50": p50, "p90": p90, "p99": p99, "max": float(values_us.max())}


def workload(grammar: str) -> list[str]:
    if grammar == "json":
        return json_texts(real_json_documents())
    if grammar == "python":
        files = sorted((CORPORA / "python" / "cpython-3.11-lib").rglob("*.py"))
        return [p.read_text(encoding="utf-8") for p in files if p.stat().st_size < 40_000][:40]
    if grammar == "go":
        return go_texts()
    raise SystemExit(f"no workload for grammar {grammar!r}")


def bench_family(family: str, texts: list[str], repeats: int, grammar_name: str = "json") -> dict:
    tok = load_tokenizer(family)
    t0 = time.perf_counter()
    info = gm.TokenizerInfo.from_huggingface(tok)
    t_info = time.perf_counter() - t0
    cold = []
    for _ in range(repeats):  # a fresh Grammar each time: nothing is reused in memory
        t0 = time.perf_counter()
        compiled = gm.compile(gm.Grammar.builtin(grammar_name), info, cache_dir=False)
        cold.append(time.perf_counter() - t0)
    with tempfile.TemporaryDirectory() as d:
        gm.compile(gm.Grammar.builtin(grammar_name), info, cache_dir=d)
        warm = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            c = gm.compile(gm.Grammar.builtin(grammar_name), info, cache_dir=d)
            warm.append(time.perf_counter() - t0)
            assert c.from_cache
    matcher = compiled.matcher()
    bitmask = gm.allocate_token_bitmask(1, info.vocab_size)
    words = bitmask[0].numpy().view(np.uint32)
    fill_ns, accept_ns = [], []
    perf = time.perf_counter_ns
    for text in texts:
        ids = tok.encode(text, add_special_tokens=False)
        matcher.reset()
        for t in ids:
            t0 = perf()
            matcher.fill_next_token_bitmask(bitmask)
            t1 = perf()
            if not words[t >> 5] >> (t & 31) & 1:
                raise AssertionError(f"{family}: document token {t} rejected in {text[:60]!r}")
            t2 = perf()
            matcher.accept_token(t)
            accept_ns.append(perf() - t2)
            fill_ns.append(t1 - t0)
    return {
        "family": family, "vocab": info.vocab_size, "steps": len(fill_ns),
        "fill": percentiles(np.asarray(fill_ns) / 1e3), "accept": percentiles(np.asarray(accept_ns) / 1e3),
        "tokenizer_info_s": t_info, "compile_s": statistics.median(cold), "cache_load_s": statistics.median(warm),
        "tables_mb": compiled.memory_bytes / 1e6,
        "lexer_states": compiled.core_grammar.n_lex_states,
    }


def markdown(rows: list[dict]) -> str:
    out = ["| tokenizer | vocab | steps | fill p50 | p90 | p99 | max | accept p50 | compile (cold) | "
           "cache load | tokenizer read | tables |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f = r["fill"]
        out.append(f"| {r['family']} | {r['vocab']:,} | {r['steps']:,} | {f['p50']:.2f} µs | {f['p90']:.2f} µs | "
                   f"{f['p99']:.2f} µs | {f['max']:.0f} µs | {r['accept']['p50']:.2f} µs | "
                   f"{r['compile_s']:.3f} s | {r['cache_load_s'] * 1e3:.1f} ms | {r['tokenizer_info_s']:.2f} s | "
                   f"{r['tables_mb']:.1f} MB |")
    return "\n".join(out)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", nargs="+", default=["smollm2", "deepseek"],
                    help="tokenizers to run (gpt2 llama2 phi-2 phi-3-mini smollm2 deepseek)")
    ap.add_argument("--repeats", type=int, default=5, help="compile repetitions (median reported)")
    ap.add_argument("--grammar", default="json", choices=["json", "python", "go"], help="built-in grammar")
    ap.add_argument("--out", type=Path, help="Markdown report path (default bench/results/GRAMMAR.md)")
    args = ap.parse_args(argv)
    out = args.out or Path(f"bench/results/{args.grammar}.md")
    texts = workload(args.grammar)
    print(f"workload: {len(texts)} texts", file=sys.stderr)
    rows = []
    for family in args.families:
        rows.append(bench_family(family, texts, args.repeats, args.grammar))
        print(f"  {family}: done", file=sys.stderr)
    table = markdown(rows)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(f"# grammask mask microbenchmark: {args.grammar}\n\n{len(texts)} texts; mask fill timed per "
                   f"token through the public API.\n\n{table}\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
