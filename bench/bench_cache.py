"""Loading a table set from the disk cache, in parts: the file read and its signature checked and parsed
(cache.load), then the tables checked and wrapped for the C core (CoreGrammar + CoreVocab: every index
range, the LR checks, the derived group_lcp), and compile() from the cache as a whole. Medians and the
slowest of --repeats runs (the file in the page cache after the first).

    .venv/bin/python -m bench.bench_cache --grammar python --families smollm2 deepseek
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import grammask as gm
from bench.workload import load_tokenizer
from grammask.decoding import cache, compiler


def bench(family: str, grammar_name: str, repeats: int) -> dict:
    info = gm.TokenizerInfo.from_huggingface(load_tokenizer(family))
    grammar = gm.Grammar.builtin(grammar_name)
    times = {"load": [], "check": [], "compile": []}
    with tempfile.TemporaryDirectory() as d:
        directory = Path(d)
        gm.compile(grammar, info, cache_dir=directory)
        key = compiler.cache_key(grammar, info)
        size = cache.cache_file(directory, key).stat().st_size
        for _ in range(repeats):
            t0 = time.perf_counter()
            meta, arrays = cache.load(directory, key)
            t1 = time.perf_counter()
            compiler._from_arrays(grammar, info, meta, arrays, True)
            t2 = time.perf_counter()
            compiled = gm.compile(grammar, info, cache_dir=directory)
            t3 = time.perf_counter()
            assert compiled.from_cache
            times["load"].append(t1 - t0)
            times["check"].append(t2 - t1)
            times["compile"].append(t3 - t2)
    return {"family": family, "vocab": info.vocab_size, "file_mb": size / 1e6,
            **{f"{k}_ms": 1e3 * statistics.median(v) for k, v in times.items()},
            **{f"{k}_max_ms": 1e3 * max(v) for k, v in times.items()}}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grammar", default="python", choices=["json", "python", "go"])
    ap.add_argument("--families", nargs="+", default=["smollm2", "deepseek"])
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    print("| tokenizer | vocab | file | read + signature + parse | tables checked | compile() from cache |")
    print("|---|---|---|---|---|---|")
    for family in args.families:
        r = bench(family, args.grammar, args.repeats)
        print(f"| {family} | {r['vocab']:,} | {r['file_mb']:.1f} MB | {r['load_ms']:.1f} ms (max {r['load_max_ms']:.1f}) "
              f"| {r['check_ms']:.1f} ms (max {r['check_max_ms']:.1f}) "
              f"| {r['compile_ms']:.1f} ms (max {r['compile_max_ms']:.1f}) |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
