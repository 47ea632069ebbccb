"""Many matchers at once: memory, and the fill with the fill cache shared by all the matchers of one
compiled grammar against one cache per matcher (as before they shared), in one process and one run.

Workload: CPython 3.11 standard-library modules (the Python workload of bench_masks). Two ways to walk
them, each run with both caches, interleaved so machine noise hits both alike:
  - sequential: one matcher walks every text, every token one step (bench_masks' fill);
  - batch: N matchers (default 1,000) step together, as a server decoding N requests: each step, every
    matcher fills its mask (timed) and accepts its text's next token. Matcher i walks text i mod 40
    from token (i * 37) mod len, so the batch holds many positions of each text.
Memory: what the core reports for the N matchers (stacks, undo history, caches) plus the shared cache;
and, per cache kind in a fresh process, the growth of the process's resident memory.

    .venv/bin/python -m bench.bench_matchers --family deepseek --matchers 1000 --steps 256
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import grammask as gm
from bench.bench_masks import percentiles, workload
from bench.workload import load_tokenizer
from grammask._core import CoreMatcher

KINDS = ("private", "shared")


def rss_bytes() -> int:
    import psutil

    return psutil.Process().memory_info().rss


def setup(family: str, grammar: str):
    tok = load_tokenizer(family)
    info = gm.TokenizerInfo.from_huggingface(tok)
    compiled = gm.compile(grammar, info)
    texts = [tok.encode(t, add_special_tokens=False) for t in workload(grammar)]
    return compiled, texts


def new_matcher(compiled, kind: str) -> CoreMatcher:
    return CoreMatcher(compiled.core_grammar, compiled.core_vocab, 0, True if kind == "shared" else "private")


def sequential(compiled, texts, rounds: int) -> dict:
    """One matcher per kind walks every text; kinds alternate text by text."""
    words = np.zeros(compiled.core_vocab.n_words, dtype=np.uint32)
    address = words.ctypes.data
    fill_ns = {k: [] for k in KINDS}
    perf = time.perf_counter_ns
    for _ in range(rounds):
        for ids in texts:
            for kind in KINDS:
                m = new_matcher(compiled, kind)
                for t in ids:
                    t0 = perf()
                    m.fill(address)
                    fill_ns[kind].append(perf() - t0)
                    if not m.accept_token(t):
                        raise AssertionError(f"{kind}: token {t} rejected")
    return {k: percentiles(np.asarray(v) / 1e3) | {"steps": len(v), "mean": float(np.mean(v) / 1e3)}
            for k, v in fill_ns.items()}


def batch(compiled, texts, n: int, steps: int) -> dict:
    """n matchers per kind stepping together; kinds alternate step by step."""
    words = np.zeros(compiled.core_vocab.n_words, dtype=np.uint32)
    address = words.ctypes.data
    plan = [(i % len(texts), (i * 37) % max(1, len(texts[i % len(texts)]) - steps)) for i in range(n)]
    matchers = {k: [new_matcher(compiled, k) for _ in range(n)] for k in KINDS}
    for kind in KINDS:  # each matcher to its starting position as a prompt's text (not timed, no history)
        for m, (text, start) in zip(matchers[kind], plan):
            if not m.accept_bytes(prefix_bytes(compiled, texts[text][:start])):
                raise AssertionError("workload prefix rejected")
    hits0 = compiled.core_vocab.fill_cache_stats
    fill_ns = {k: np.zeros(n * steps, dtype=np.int64) for k in KINDS}
    perf = time.perf_counter_ns
    for step in range(steps):
        for kind in KINDS:
            out = fill_ns[kind]
            for i, m in enumerate(matchers[kind]):
                text, start = plan[i]
                ids = texts[text]
                if start + step >= len(ids):
                    out[step * n + i] = -1
                    continue
                t0 = perf()
                m.fill(address)
                out[step * n + i] = perf() - t0
                if not m.accept_token(ids[start + step]):
                    raise AssertionError(f"{kind}: token rejected")
    hits1 = compiled.core_vocab.fill_cache_stats
    result = {}
    for kind in KINDS:
        v = fill_ns[kind][fill_ns[kind] >= 0]
        held = sum(m.memory_bytes for m in matchers[kind])
        shared = compiled.core_vocab.fill_cache_bytes if kind == "shared" else 0
        result[kind] = percentiles(v / 1e3) | {"steps": int(v.size), "mean": float(v.mean() / 1e3),
                                                 "matcher_bytes": held,
                                                 "shared_cache_bytes": shared, "total_bytes": held + shared}
    own = np.array([m.fill_cache_stats for m in matchers["private"]]).sum(axis=0)  # (their prefixes: none)
    result["private"]["hit_rate"] = float(own[0] / max(1, own.sum()))
    shared_hits, shared_misses = hits1[0] - hits0[0], hits1[1] - hits0[1]
    result["shared"]["hit_rate"] = shared_hits / max(1, shared_hits + shared_misses)
    return result


def prefix_bytes(compiled, ids) -> bytes:
    return b"".join(compiled.tokenizer_info.token_bytes[t] or b"" for t in ids)


def rss_growth(family: str, grammar: str, kind: str, n: int, steps: int) -> int:
    """Resident memory the process gains building and walking n matchers of one kind (in a fresh
    process: freed memory the allocator keeps would blur the second kind's figure)."""
    code = (f"from bench.bench_matchers import *\n"
            f"compiled, texts = setup({family!r}, {grammar!r})\n"
            f"print(rss_of_batch(compiled, texts, {kind!r}, {n}, {steps}))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(out.stdout.strip().splitlines()[-1])


def rss_of_batch(compiled, texts, kind: str, n: int, steps: int) -> int:
    words = np.zeros(compiled.core_vocab.n_words, dtype=np.uint32)
    before = rss_bytes()
    matchers = []
    for i in range(n):
        m = new_matcher(compiled, kind)
        ids = texts[i % len(texts)]
        start = (i * 37) % max(1, len(ids) - steps)
        m.accept_bytes(prefix_bytes(compiled, ids[:start]))
        for t in ids[start:start + steps]:
            m.fill(words.ctypes.data)
            m.accept_token(t)
        matchers.append(m)
    return rss_bytes() - before


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--family", default="deepseek", help="tokenizer (default: deepseek, 129,280 tokens)")
    ap.add_argument("--grammar", default="python", choices=["json", "python", "go"])
    ap.add_argument("--matchers", type=int, default=1000)
    ap.add_argument("--steps", type=int, default=256, help="batch steps (tokens per matcher)")
    ap.add_argument("--rounds", type=int, default=1, help="passes of the sequential walk")
    ap.add_argument("--no-rss", action="store_true", help="skip the resident-memory subprocesses")
    ap.add_argument("--out", type=Path, default=Path("bench/results/matchers.json"))
    args = ap.parse_args(argv)
    compiled, texts = setup(args.family, args.grammar)
    report = {"family": args.family, "vocab": compiled.vocab_size, "grammar": args.grammar,
              "matchers": args.matchers, "steps": args.steps,
              "sequential": sequential(compiled, texts, args.rounds),
              "batch": batch(compiled, texts, args.matchers, args.steps)}
    if not args.no_rss:
        report["rss_growth"] = {k: rss_growth(args.family, args.grammar, k, args.matchers, args.steps)
                                for k in KINDS}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    for walk in ("sequential", "batch"):
        for kind in KINDS:
            r = report[walk][kind]
            extra = (f"  held {r['total_bytes'] / 1e6:.1f} MB (matchers {r['matcher_bytes'] / 1e6:.1f} MB"
                     f" + shared cache {r['shared_cache_bytes'] / 1e6:.2f} MB)" if walk == "batch" else "")
            print(f"{walk:10s} {kind:7s} steps {r['steps']:7d}  fill p50 {r['p50']:6.2f} µs  p90 {r['p90']:6.2f} µs"
                  f"  p99 {r['p99']:7.2f} µs  mean {r['mean']:6.2f} µs{extra}")
    print(f"hit rates (batch): private {report['batch']['private']['hit_rate']:.3f}, "
          f"shared {report['batch']['shared']['hit_rate']:.3f}")
    for kind, b in report.get("rss_growth", {}).items():
        print(f"resident memory growth, {args.matchers} {kind}-cache matchers: {b / 1e6:.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
