"""Mask fills on JSON Schema grammars, eager token tables beside lazy ones (issue #22).

Per schema (MaskBench, spread over each split): compile twice, eager (every lexer state's tables built by
compile) and lazy (each state's by the first fill that needs it), then walk every valid instance token by
token with both, interleaved, timing every fill and checking the two masks are the same. Lazy fills that
built a state's tables are first visits, reported apart: the steady-state fill p50/p99 compare like with
like, and the first-visit times say what a state built late costs once.

    python -m bench.schema_fills [--tokenizer deepseek] [--limit 10] [--splits Glaiveai2K ...]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import warnings

import numpy as np

import grammask as gm
from bench.schema_bench import chosen_splits, pick
from bench.workload import load_tokenizer


def _walk(compiled, ids, bitmask, built=None):
    """Fill times along ids (stopping where the masks refuse), the masks, and which fills built a state."""
    m = compiled.matcher()
    times, masks, firsts = [], [], []
    for t in ids:
        before = built() if built else 0
        t0 = time.perf_counter()
        m.fill_next_token_bitmask(bitmask)
        times.append(time.perf_counter() - t0)
        firsts.append(bool(built) and built() != before)
        masks.append(bitmask[0].numpy().tobytes())
        if not m.accept_token(t):
            break
    return times, masks, firsts


def run(family: str, limit: int, names) -> dict:
    tok = load_tokenizer(family)
    info = gm.TokenizerInfo.from_huggingface(tok)
    bitmask = gm.allocate_token_bitmask(1, info.vocab_size)
    eager_t, lazy_t, first_t = [], [], []
    schemas = differ = 0
    for _, split in chosen_splits(names):
        for path in pick(split, limit, spread=True):
            doc = json.loads(path.read_text())
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    grammar = gm.Grammar.from_json_schema(doc["schema"], build_timeout=20)
                    eager = gm.compile(grammar, info, cache_dir=False, tables="eager")
                    lazy = gm.compile(grammar, info, cache_dir=False, tables="lazy")
            except gm.GrammarError:
                continue
            schemas += 1
            built = lambda: lazy.core_vocab.lazy_stats[0]  # noqa: E731
            for test in doc.get("tests", []):
                if not test.get("valid"):
                    continue
                ids = tok.encode(json.dumps(test["data"]), add_special_tokens=False)
                te, me, _ = _walk(eager, ids, bitmask)
                tl, ml, firsts = _walk(lazy, ids, bitmask, built)
                differ += me != ml
                eager_t += te
                lazy_t += [t for t, f in zip(tl, firsts) if not f]
                first_t += [t for t, f in zip(tl, firsts) if f]
    return dict(family=family, vocab=info.vocab_size, schemas=schemas, eager=np.array(eager_t) * 1e6,
                lazy=np.array(lazy_t) * 1e6, first=np.array(first_t) * 1e3, differ=differ)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tokenizer", default="deepseek", help="tokenizer family (bench/workload.py)")
    ap.add_argument("--limit", type=int, default=10, help="schemas per split, spread over it")
    ap.add_argument("--splits", nargs="*", help="split names (default: all)")
    args = ap.parse_args(argv)
    r = run(args.tokenizer, args.limit, args.splits)
    print(f"{r['schemas']} schemas, {r['family']} ({r['vocab']:,} tokens); walks whose masks differ: {r['differ']}\n")
    print("| tables | fills | p50 | p99 | max |\n|---|---|---|---|---|")
    for name in ("eager", "lazy"):
        us = r[name]
        print(f"| {name} | {len(us):,} | {np.percentile(us, 50):.1f} µs | {np.percentile(us, 99):.1f} µs | "
              f"{us.max():.0f} µs |")
    ms = r["first"]
    if len(ms):
        print(f"| lazy, first visits (a state built) | {len(ms):,} | {np.percentile(ms, 50):.2f} ms | "
              f"{np.percentile(ms, 99):.2f} ms | {ms.max():.1f} ms |")
    return 1 if r["differ"] else 0


if __name__ == "__main__":
    sys.exit(main())
