"""grammask beside XGrammar and llguidance on one JSON workload, in one process.

Every engine walks every document token by token (fill the mask, timed; check the document's token is
allowed; accept it), engines interleaved per document so that machine noise hits all alike. Compile is
timed cold (tokenizer read + grammar); llguidance builds lazily, so its first mask is counted in.

    .venv/bin/pip install -e ".[bench]"      # xgrammar, llguidance, matplotlib
    .venv/bin/python -m bench.compare_json --families smollm2 deepseek
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

import grammask as gm
from bench.workload import json_texts, load_tokenizer, real_json_documents


class Grammask:
    name = "grammask"

    def setup(self, tok):
        t0 = time.perf_counter()
        info = gm.TokenizerInfo.from_huggingface(tok)
        self.compiled = gm.compile(gm.Grammar(gm.Grammar.builtin("json").text, name="json"), info, cache_dir=False)
        self.bitmask = gm.allocate_token_bitmask(1, info.vocab_size)
        return time.perf_counter() - t0

    def matcher(self):
        return self.compiled.matcher()

    def fill(self, m):
        m.fill_next_token_bitmask(self.bitmask)

    def accept(self, m, t):
        return m.accept_token(t)


class XGrammar:
    name = "XGrammar"

    def setup(self, tok):
        import xgrammar as xgr

        self.xgr = xgr
        t0 = time.perf_counter()
        info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok.get_vocab()))
        self.compiled = xgr.GrammarCompiler(info, cache_enabled=False).compile_builtin_json_grammar()
        self.bitmask = xgr.allocate_token_bitmask(1, info.vocab_size)
        return time.perf_counter() - t0

    def matcher(self):
        return self.xgr.GrammarMatcher(self.compiled)

    def fill(self, m):
        m.fill_next_token_bitmask(self.bitmask)

    def accept(self, m, t):
        return m.accept_token(t)


class LLGuidance:
    name = "llguidance"

    def setup(self, tok):
        import llguidance
        import llguidance.hf
        import llguidance.torch as lgt

        self.llg, self.lgt = llguidance, lgt
        t0 = time.perf_counter()
        self.tokenizer = llguidance.hf.from_tokenizer(tok)
        self.grammar = llguidance.LLMatcher.grammar_from_json_schema({}, defaults={"whitespace_flexible": True})
        self.bitmask = lgt.allocate_token_bitmask(1, self.tokenizer.vocab_size)
        self.fill(self.matcher())  # it compiles lazily: count the first mask in
        return time.perf_counter() - t0

    def matcher(self):
        return self.llg.LLMatcher(self.tokenizer, self.grammar)

    def fill(self, m):
        self.lgt.fill_next_token_bitmask(m, self.bitmask, 0)

    def accept(self, m, t):
        return m.consume_token(t)


ENGINES = {"grammask": Grammask, "xgrammar": XGrammar, "llguidance": LLGuidance}


def run(family: str, texts: list[str], engine_names: list[str]) -> list[dict]:
    tok = load_tokenizer(family)
    engines = [ENGINES[n]() for n in engine_names]
    compile_s = {e.name: e.setup(tok) for e in engines}
    times = {e.name: [] for e in engines}
    rejected = {e.name: 0 for e in engines}
    perf = time.perf_counter_ns
    for k, text in enumerate(texts):
        ids = tok.encode(text, add_special_tokens=False)
        for e in engines[k % len(engines):] + engines[: k % len(engines)]:  # rotate the order
            m = e.matcher()
            words = e.bitmask[0].numpy().view(np.uint32)
            for t in ids:
                t0 = perf()
                e.fill(m)
                times[e.name].append(perf() - t0)
                if not words[t >> 5] >> (t & 31) & 1 or not e.accept(m, t):
                    rejected[e.name] += 1
                    break
    rows = []
    for e in engines:
        us = np.asarray(times[e.name]) / 1e3
        p50, p90, p99 = np.percentile(us, [50, 90, 99])
        rows.append(dict(family=family, vocab=len(tok.get_vocab()), engine=e.name, steps=len(us), p50=p50, p90=p90,
                         p99=p99, max=float(us.max()), compile_s=compile_s[e.name], rejected=rejected[e.name],
                         samples=us))
    return rows


def markdown(rows: list[dict], n_texts: int) -> str:
    out = ["| tokenizer | vocab | engine | steps | fill p50 | p90 | p99 | max | compile (cold) | documents rejected |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        out.append(f"| {r['family']} | {r['vocab']:,} | {r['engine']} | {r['steps']:,} | {r['p50']:.2f} µs | "
                   f"{r['p90']:.2f} µs | {r['p99']:.2f} µs | {r['max']:.0f} µs | {r['compile_s']:.3f} s | "
                   f"{r['rejected']} / {n_texts} |")
    return "\n".join(out)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    families = sorted({r["family"] for r in rows}, key=[r["family"] for r in rows].index)
    fig, axes = plt.subplots(1, len(families), figsize=(6 * len(families), 4), squeeze=False)
    for ax, fam in zip(axes[0], families):
        for r in (r for r in rows if r["family"] == fam):
            xs = np.sort(r["samples"])
            ax.plot(xs, np.linspace(0, 1, len(xs)), label=f"{r['engine']} (p99 {r['p99']:.1f} µs)")
        ax.set_xscale("log")
        ax.set_xlabel("mask fill per token (µs, log)")
        ax.set_ylabel("fraction of steps")
        vocab = next(r["vocab"] for r in rows if r["family"] == fam)
        ax.set_title(f"JSON mask fill, {fam} ({vocab:,} tokens)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--families", nargs="+", default=["smollm2", "deepseek"])
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES))
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)
    texts = json_texts(real_json_documents())
    rows = []
    for family in args.families:
        rows += run(family, texts, args.engines)
        print(f"  {family}: done", file=sys.stderr)
    table = markdown(rows, len(texts))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare_json.md").write_text(
        f"# JSON mask fill: grammask, XGrammar, llguidance\n\n{len(texts)} texts, engines interleaved in one "
        f"process; fill timed per token through each engine's Python API.\n\n{table}\n")
    try:
        plot(rows, args.out / "compare_json.png")
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
