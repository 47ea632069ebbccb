"""Mask fill time on Lark users' grammars (tests/data/lark_compat/ and Lark's own lark.lark).

Per grammar: compile for a tokenizer (no disk cache, timed), then walk the texts Lark accepts (hand-written
and generated, as bench/lark_compat.py makes them) token by token, timing every fill; report fill p50,
p99 and max over all steps, and the token tables' per-token work: the largest number of tokens a fill of
one lexer state checks one by one (dynamic groups), which is what sets the slow fills of contextual-lexer
grammars.

    python -m bench.lark_fills [NAME ...] [--family smollm2] [--repeats 3]
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings

import numpy as np

import grammask as gm
from bench import lark_compat as lc
from bench.workload import load_tokenizer


def dynamic_tokens_per_state(compiled) -> int:
    """The most tokens one lexer state's fill lexes one by one (groups of GM_DYNAMIC_GROUP)."""
    a = compiled.core_vocab.arrays
    sizes = np.diff(a["group_tok_begin"])
    dynamic = np.where(a["group_cset"] == -2, sizes, 0)
    begin = a["group_begin"]
    return max((int(dynamic[begin[s]:begin[s + 1]].sum()) for s in range(len(begin) - 1)), default=0)


def measure(name: str, tok, info: gm.TokenizerInfo, repeats: int) -> dict:
    case = lc.CASES[name]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gm.GrammarWarning)
        try:
            grammar = gm.Grammar.from_lark(case.grammar_text(), start=case.start)
            t0 = time.perf_counter()
            compiled = gm.compile(grammar, info, cache_dir=False, tables="eager")
            compile_s = time.perf_counter() - t0
        except gm.GrammarError as exc:
            return {"grammar": name, "refused": str(exc).splitlines()[0][:100]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", gm.GrammarWarning)
        texts = [v.text for v in lc.run_case(name).accepted_by_lark if v.source != "mutation"]
    bitmask = gm.allocate_token_bitmask(1, info.vocab_size)
    matcher = compiled.matcher()
    fills = []
    for _ in range(repeats):
        for text in texts:
            matcher.reset()
            for t in tok.encode(text, add_special_tokens=False):
                t0 = time.perf_counter()
                matcher.fill_next_token_bitmask(bitmask)
                fills.append(time.perf_counter() - t0)
                if not matcher.accept_token(t):
                    break  # the tokenizer's split of this text is not one the masks allow: walk the next
    us = np.array(fills) * 1e6 if fills else np.zeros(1)
    return {"grammar": name, "texts": len(texts), "steps": len(fills), "compile_s": compile_s,
            "p50": float(np.median(us)), "p99": float(np.percentile(us, 99)), "max": float(us.max()),
            "dynamic": dynamic_tokens_per_state(compiled)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.lark_fills", description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", help=f"grammars (default all: {', '.join(lc.CASES)})")
    ap.add_argument("--family", default="smollm2", help="tokenizer (bench.workload's families)")
    ap.add_argument("--repeats", type=int, default=3, help="walks of every text (default 3)")
    args = ap.parse_args(argv)
    unknown = [n for n in args.names if n not in lc.CASES]
    if unknown:
        ap.error(f"unknown grammar(s) {', '.join(unknown)}; known: {', '.join(lc.CASES)}")
    tok = load_tokenizer(args.family)
    info = gm.TokenizerInfo.from_huggingface(tok)
    print(f"| grammar | texts | steps | compile | fill p50 | p99 | max | most tokens lexed one by one per fill |")
    print("|---|---|---|---|---|---|---|---|")
    for name in args.names or lc.CASES:
        r = measure(name, tok, info, args.repeats)
        if "refused" in r:
            print(f"| {name} | refused: {r['refused']} | | | | | | |", flush=True)
            continue
        print(f"| {name} | {r['texts']} | {r['steps']} | {r['compile_s']:.2f} s | {r['p50']:.1f} µs | "
              f"{r['p99']:.1f} µs | {r['max']:.0f} µs | {r['dynamic']:,} of {info.vocab_size:,} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
