"""grammask beside XGrammar and llguidance, in one process: mask fill, compile, cache, memory.

Every engine walks every text token by token (fill the mask, timed; check the text's token is allowed;
accept it), engines interleaved per text so that machine noise hits all alike. Reported per engine:
fill p50/p90/p99/max, cold compile (tokenizer read + grammar; llguidance and grammask's lazy tables build
on first use, so their first mask is counted in; a lazy fill that built a state's tables is counted apart,
as a first visit), warm compile from a disk cache (grammask's cache; XGrammar's serialized grammar
read back; llguidance has none), table memory, and matcher memory (heap growth per matcher, for 64
matchers each walked through a text). XGrammar and llguidance run JSON only: neither has Python's
indentation or Go's semicolon insertion.

Figures not measured in this run (DESIGN.md's SynCode figures) are never rows of the measured table
(nor points of the plot): they are printed apart, under their source. SynCode is not run here: it pins
transformers 4.53.2 (ours is newer), so it cannot share this process.

    .venv/bin/pip install -e ".[bench]"      # xgrammar, llguidance, matplotlib
    .venv/bin/python -m bench.compare --grammars json python go --families smollm2 deepseek
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional

import numpy as np

import grammask as gm
from bench.bench_masks import workload
from bench.workload import load_tokenizer

# Not measured in this run, so printed apart from the measured table with their source.
PUBLISHED_SOURCE = ("DESIGN.md (\"Fast means\"), measured by the project on a 2-core machine of this kind, "
                    "SynCode 0.4.16 (grammar_mask mode), SmolLM2's 49,152-token vocabulary; JSON on that document's "
                    "own workload (~190 real JSON documents, compact and pretty-printed), the Python workload not "
                    "stated; date not recorded")
PUBLISHED = [dict(grammar="json", vocab=49152, engine="SynCode 0.4.16", p50=742.0, p99=3336.0, compile_s=21.0,
                  note="10 s of it the mask store"),
             dict(grammar="python", vocab=49152, engine="SynCode 0.4.16", p50=9780.0, p99=31101.0, compile_s=175.0,
                  note="")]


class Grammask:
    """Eager tables: every lexer state's token tables built by compile()."""
    name = "grammask"
    tables = "eager"

    def __init__(self, grammar: str):
        self.grammar = grammar
        self._built = 0

    def setup(self, tok):
        t0 = time.perf_counter()
        self.info = gm.TokenizerInfo.from_huggingface(tok)
        self.compiled = gm.compile(gm.Grammar.builtin(self.grammar), self.info, cache_dir=False, tables=self.tables)
        self.bitmask = gm.allocate_token_bitmask(1, self.info.vocab_size)
        if self.tables == "lazy":
            self.fill(self.matcher())  # as for llguidance: the first mask counted in
        seconds = time.perf_counter() - t0
        self.built_now()
        return seconds

    def built_now(self) -> bool:
        """Whether the last fill built a state's tables (lazy: a first visit, timed apart)."""
        stats = self.compiled.core_vocab.lazy_stats
        if stats is None or stats[0] == self._built:
            return False
        self._built = stats[0]
        return True

    def warm_compile(self):
        with tempfile.TemporaryDirectory() as d:
            gm.compile(gm.Grammar.builtin(self.grammar), self.info, cache_dir=d)
            t0 = time.perf_counter()
            c = gm.compile(gm.Grammar.builtin(self.grammar), self.info, cache_dir=d)
            seconds = time.perf_counter() - t0
            assert c.from_cache
        return seconds

    def table_bytes(self):
        return self.compiled.memory_bytes

    def matcher(self):
        return self.compiled.matcher()

    def fill(self, m):
        m.fill_next_token_bitmask(self.bitmask)

    def accept(self, m, t):
        return m.accept_token(t)


class GrammaskLazy(Grammask):
    """Lazy tables: each state's built by its first fill (compile() with no disk cache does this by default)."""
    name = "grammask lazy"
    tables = "lazy"

    def warm_compile(self):
        return None  # lazy tables are not stored on disk


class XGrammar:
    name = "XGrammar"

    def __init__(self, grammar: str):
        assert grammar == "json"

    def setup(self, tok):
        import xgrammar as xgr

        self.xgr = xgr
        t0 = time.perf_counter()
        self.info = xgr.TokenizerInfo.from_huggingface(tok, vocab_size=len(tok.get_vocab()))
        self.compiled = xgr.GrammarCompiler(self.info, cache_enabled=False).compile_builtin_json_grammar()
        self.bitmask = xgr.allocate_token_bitmask(1, self.info.vocab_size)
        return time.perf_counter() - t0

    def warm_compile(self):
        with tempfile.TemporaryDirectory() as d:
            path = Path(d) / "json.xgrammar.json"
            path.write_text(self.compiled.serialize_json())
            t0 = time.perf_counter()
            self.xgr.CompiledGrammar.deserialize_json(path.read_text(), self.info)
            return time.perf_counter() - t0

    def table_bytes(self):
        return self.compiled.memory_size_bytes

    def matcher(self):
        return self.xgr.GrammarMatcher(self.compiled)

    def fill(self, m):
        m.fill_next_token_bitmask(self.bitmask)

    def accept(self, m, t):
        return m.accept_token(t)


class LLGuidance:
    name = "llguidance"

    def __init__(self, grammar: str):
        assert grammar == "json"

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

    def warm_compile(self):
        return None  # no cache of compiled grammars

    def table_bytes(self):
        return None  # not exposed

    def matcher(self):
        return self.llg.LLMatcher(self.tokenizer, self.grammar)

    def fill(self, m):
        self.lgt.fill_next_token_bitmask(m, self.bitmask, 0)

    def accept(self, m, t):
        return m.consume_token(t)


ENGINES = {"grammask": Grammask, "grammask-lazy": GrammaskLazy, "xgrammar": XGrammar, "llguidance": LLGuidance}


class _MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks",
                                                      "fsmblks", "uordblks", "fordblks", "keepcost")]


def heap_bytes() -> Optional[int]:
    """Bytes malloc has handed out and not taken back (glibc's mallinfo2): native allocations of every
    engine (C, C++, Rust through the system allocator) and Python's alike. None without glibc 2.33+."""
    libc = ctypes.CDLL(None)
    if not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    info = libc.mallinfo2()
    return info.uordblks + info.hblkhd


def matcher_bytes(engine, ids: list[int], count: int = 64) -> Optional[float]:
    """Heap growth per matcher, each walked through `ids` (what a batch of rows holds)."""
    gc.collect()
    before = heap_bytes()
    if before is None:
        return None
    kept = []
    for _ in range(count):
        m = engine.matcher()
        for t in ids:
            engine.fill(m)
            engine.accept(m, t)
        kept.append(m)
    return (heap_bytes() - before) / count


def run(grammar: str, family: str, texts: list[str], engine_names: list[str]) -> list[dict]:
    tok = load_tokenizer(family)
    engines = [ENGINES[n](grammar) for n in engine_names]
    compile_s = {e.name: e.setup(tok) for e in engines}
    times = {e.name: [] for e in engines}
    first_visits = {e.name: [] for e in engines}  # lazy tables: fills that built a state's tables
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
                dt = perf() - t0
                (first_visits if getattr(e, "built_now", bool)() else times)[e.name].append(dt)
                if not words[t >> 5] >> (t & 31) & 1 or not e.accept(m, t):
                    rejected[e.name] += 1
                    break
    sample_ids = tok.encode(texts[0], add_special_tokens=False)[:2000]
    rows = []
    for e in engines:
        us = np.asarray(times[e.name]) / 1e3
        p50, p90, p99 = np.percentile(us, [50, 90, 99])
        firsts = np.asarray(first_visits[e.name]) / 1e3
        rows.append(dict(grammar=grammar, family=family, vocab=len(tok.get_vocab()), engine=e.name, steps=len(us),
                         first_visits=len(firsts), first_p50=float(np.median(firsts)) if len(firsts) else None,
                         first_max=float(firsts.max()) if len(firsts) else None,
                         p50=p50, p90=p90, p99=p99, max=float(us.max()), compile_s=compile_s[e.name],
                         warm_s=e.warm_compile(), table_bytes=e.table_bytes(),
                         matcher_bytes=matcher_bytes(e, sample_ids), rejected=rejected[e.name], texts=len(texts),
                         samples=us))
    return rows


def _cell(value, fmt: str, unit: str = "") -> str:
    return "–" if value is None else f"{value:{fmt}}{unit}"


def published_markdown() -> str:
    """The figures not measured in this run, as their own table under their source."""
    out = [f"Not measured in this run; source: {PUBLISHED_SOURCE}.", "",
           "| grammar | vocab | engine | fill p50 | p99 | compile (cold) |", "|---|---|---|---|---|---|"]
    out += [f"| {r['grammar']} | {r['vocab']:,} | {r['engine']} | {r['p50']:,.0f} µs | {r['p99']:,.0f} µs | "
            f"{r['compile_s']:.0f} s{' (' + r['note'] + ')' if r['note'] else ''} |" for r in PUBLISHED]
    return "\n".join(out)


def _first_visits(r: dict) -> str:
    """Lazy tables' fills that built a state, apart from the steps: how many, their p50 and max."""
    if not r.get("first_visits"):
        return "–"
    return f"{r['first_visits']} ({r['first_p50'] / 1e3:.1f} ms, {r['first_max'] / 1e3:.1f} ms)"


def markdown(rows: list[dict]) -> str:
    out = ["| grammar | vocab | engine | steps | fill p50 | p90 | p99 | max | first visits (p50, max) | "
           "compile (cold) | from cache | tables | matcher | texts rejected |",
           "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        warm, tables, matcher = r.get("warm_s"), r.get("table_bytes"), r.get("matcher_bytes")
        rejected = "–" if r.get("rejected") is None else f"{r['rejected']} / {r['texts']}"
        out.append(
            f"| {r['grammar']} | {r['vocab']:,} | {r['engine']} | {_cell(r.get('steps'), ',')} | "
            f"{_cell(r['p50'], '.2f', ' µs')} | {_cell(r.get('p90'), '.2f', ' µs')} | {_cell(r['p99'], '.2f', ' µs')} | "
            f"{_cell(r.get('max'), '.0f', ' µs')} | {_first_visits(r)} | {_cell(r['compile_s'], '.3f', ' s')} | "
            f"{_cell(warm and warm * 1e3, '.1f', ' ms')} | {_cell(tables and tables / 1e6, '.1f', ' MB')} | "
            f"{_cell(matcher and matcher / 1e3, '.0f', ' KB')} | {rejected} |")
    return "\n".join(out)


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = list(dict.fromkeys((r["grammar"], r["family"], r["vocab"]) for r in rows))
    cols = min(2, len(panels))
    nrows = (len(panels) + cols - 1) // cols
    fig, axes = plt.subplots(nrows, cols, figsize=(6.5 * cols, 4 * nrows), squeeze=False)
    for ax, (grammar, family, vocab) in zip(axes.flat, panels):
        for r in rows:
            if (r["grammar"], r["family"]) != (grammar, family):
                continue
            xs = np.sort(r["samples"])
            ax.plot(xs, np.linspace(0, 1, len(xs)), label=f"{r['engine']} (p99 {r['p99']:.1f} µs)")
        ax.set_xscale("log")
        ax.set_xlabel("mask fill per token (µs, log)")
        ax.set_ylabel("fraction of steps")
        ax.set_title(f"{grammar}, {family} ({vocab:,} tokens)")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(loc="lower right", fontsize=8)
    for ax in list(axes.flat)[len(panels):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grammars", nargs="+", default=["json", "python", "go"], choices=["json", "python", "go"])
    ap.add_argument("--families", nargs="+", default=["smollm2", "deepseek"],
                    help="tokenizers (gpt2 llama2 phi-2 phi-3-mini smollm2 deepseek)")
    ap.add_argument("--engines", nargs="+", default=list(ENGINES), choices=list(ENGINES),
                    help="engines for JSON (Python and Go run grammask's only)")
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    args = ap.parse_args(argv)
    rows = []
    for grammar in args.grammars:
        texts = workload(grammar)
        engines = args.engines if grammar == "json" else [e for e in args.engines if e.startswith("grammask")]
        for family in args.families:
            rows += run(grammar, family, texts, engines)
            print(f"  {grammar} {family}: done", file=sys.stderr)
    table = markdown(rows)
    published = published_markdown()
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "compare.md").write_text(
        "# Mask fill side by side: grammask, XGrammar, llguidance\n\n"
        "Measured in this run. Engines interleaved per text in one process; fill timed per token through each "
        "engine's Python API. Matcher: heap growth per matcher (64 matchers, each walked through one text's first "
        f"2,000 tokens).\n\n{table}\n\n## Figures from elsewhere\n\n{published}\n")
    try:
        plot(rows, args.out / "compare.png")
    except ImportError:
        print("matplotlib not installed: no plot", file=sys.stderr)
    print(table)
    print("\nFigures from elsewhere:\n" + published)
    return 0


if __name__ == "__main__":
    sys.exit(main())
