"""Time to first mask: a JSON Schema dict in, the first token bitmask filled, per engine (issue #22).

Each engine is timed the way a server meets a new schema: the tokenizer's tables are made once per
process (outside the timing); everything else is built per schema, with no disk cache and grammask's
in-process caches emptied before each schema (`keep_caches` keeps them, to see what reuse across
schemas would give). grammask's time is split into stages by timing its own functions from outside
(wrappers installed in the worker process only; the engine's code is not changed). Stage times are
exclusive: a stage's time excludes the stages it calls, so the stages and "other" add up to the total.
"""

from __future__ import annotations

import gc
import json
import time
from contextlib import contextmanager
from pathlib import Path

import grammask as gm

# grammask's stages, in pipeline order, as the tables print them.
STAGES = (
    ("schema_to_lark", "schema → Lark text"),
    ("lark", "Lark load (grammar compile)"),
    ("lalr", "LALR tables (native)"),
    ("lr_readout", "LR tables read out"),
    ("tables_other", "terminals, directives, checks"),
    ("regex_dfa", "lexer: regexes → char DFAs"),
    ("determinize", "lexer: byte NFA → DFA"),
    ("minimize", "lexer: trim + minimize"),
    ("csets", "lexer: completable sets"),
    ("lexer_other", "lexer: other (NFA build)"),
    ("core_grammar", "core grammar arrays"),
    ("vocab_prep", "token tables: vocabulary arrays (per tokenizer)"),
    ("vocab_c", "token tables: C build"),
    ("vocab_groups", "token tables: sort + dense groups"),
    ("vocab_py", "token tables: distinct masks, rest"),
    ("matcher", "matcher"),
    ("first_fill", "first fill (lazy tables: its state's built)"),
    ("other", "other (compile glue, keys)"),
)


class Stopwatch:
    """Exclusive time per stage over wrapped functions."""

    def __init__(self):
        self.times: dict[str, float] = {}
        self._stack: list[list[float]] = []  # per open stage: [start, time spent in inner stages]

    def reset(self) -> None:
        self.times = {}

    @contextmanager
    def stage(self, name: str):
        entry = [time.perf_counter(), 0.0]
        self._stack.append(entry)
        try:
            yield
        finally:
            self._stack.pop()
            elapsed = time.perf_counter() - entry[0]
            self.times[name] = self.times.get(name, 0.0) + elapsed - entry[1]
            if self._stack:
                self._stack[-1][1] += elapsed

    def wrap(self, module, attr: str, name: str) -> None:
        inner = getattr(module, attr)
        if getattr(inner, "_ttfm_stage", None):
            return

        def timed(*args, **kwargs):
            with self.stage(name):
                return inner(*args, **kwargs)

        timed._ttfm_stage = name
        setattr(module, attr, timed)


class _TimedCore:
    """The CoreGrammar as _vocab_arrays sees it: build_vocab (the C table build) timed on its own, and the
    time from _vocab_arrays' start to that call: the vocabulary's byte arrays and sort order, which depend
    on the tokenizer only (`prep`)."""

    def __init__(self, core, watch: Stopwatch):
        self._core, self._watch = core, watch
        self.started, self.prep = time.perf_counter(), 0.0

    def build_vocab(self, *args):
        self.prep = time.perf_counter() - self.started
        with self._watch.stage("vocab_c"):
            return self._core.build_vocab(*args)


def _clear_caches() -> None:
    """grammask's in-process caches of schema-dependent pieces (regex automata, character classes)."""
    import importlib

    from grammask.fsm import lexer, python_regex
    from grammask.grammar import lark_frontend, lark_subset, regex
    from grammask.grammar.json_schema import literals, terminals

    grammar_text = importlib.import_module("grammask.grammar.json_schema.grammar_text")  # (the package
    # exports a function of that name)

    lark_subset._cached_regex_pattern.cache_clear()
    lark_frontend._compiles.cache_clear()
    lark_subset._alternatives.cache_clear()
    grammar_text._names.cache_clear()
    grammar_text._top_level_names.cache_clear()
    grammar_text._within_automata.cache_clear()
    terminals._automata_relation.cache_clear()
    regex.lark_pattern.cache_clear()
    literals._char_spelling.cache_clear()
    literals._string_spelling.cache_clear()
    lexer._cached_regex_dfa.cache_clear()
    lexer._cached_fragment.cache_clear()
    lexer._utf8_sequences.cache_clear()
    python_regex._ranges_re_matches.cache_clear()


def _features(grammar, compiled) -> dict:
    tables = grammar.tables
    return {"lexer_states": int(tables.lexer.n_states), "terminals": len(tables.terminals),
            "lr_states": int(tables.parser.action.shape[0]), "grammar_chars": len(grammar.text),
            "table_bytes": int(compiled.memory_bytes)}


class Grammask:
    name = "grammask"

    def __init__(self, tokenizer, info, build_timeout: float, keep_caches: bool = False):
        import torch

        from grammask.decoding import compiler
        from grammask.fsm import lexer
        from grammask.grammar import json_schema, lark_frontend, table_cache, tables

        self.info, self.build_timeout, self.keep_caches = info, build_timeout, keep_caches
        self.bitmask = torch.zeros((1, (info.vocab_size + 31) // 32), dtype=torch.int32)
        w = self.watch = Stopwatch()
        w.wrap(json_schema, "schema_to_lark", "schema_to_lark")
        w.wrap(table_cache, "build_tables", "tables_other")
        w.wrap(tables, "load_lark", "lark")   # what it does besides the two below: Lark's terminal checks
        w.wrap(lark_frontend, "compile_grammar", "lark")
        w.wrap(lark_frontend, "build_lalr", "lalr")
        w.wrap(tables, "parse_tables", "lr_readout")
        w.wrap(tables, "build_lexer", "lexer_other")
        w.wrap(lexer, "_regex_dfa", "regex_dfa")
        w.wrap(lexer, "_determinize", "determinize")
        w.wrap(lexer, "_trim_minimize", "minimize")
        w.wrap(lexer, "_completable_sets", "csets")
        w.wrap(compiler, "core_grammar_arrays", "core_grammar")
        w.wrap(compiler, "core_grammar", "core_grammar")
        w.wrap(compiler, "_sort_groups", "vocab_groups")
        w.wrap(compiler, "_dense_groups", "vocab_groups")
        if not getattr(compiler._vocab_arrays, "_ttfm_stage", None):
            vocab_arrays = compiler._vocab_arrays

            def timed_vocab_arrays(core, info):
                timed = _TimedCore(core, w)
                try:
                    with w.stage("vocab_py"):
                        return vocab_arrays(timed, info)
                finally:  # the prep's time moves from vocab_py (exclusive) to its own stage
                    w.times["vocab_py"] -= timed.prep
                    w.times["vocab_prep"] = w.times.get("vocab_prep", 0.0) + timed.prep

            timed_vocab_arrays._ttfm_stage = "vocab_py"
            compiler._vocab_arrays = timed_vocab_arrays
        self.first_mask({"type": "object", "properties": {"a": {"type": "string"}}})  # imports, out of the timing

    def first_mask(self, schema) -> dict:
        import warnings

        if not self.keep_caches:
            _clear_caches()
        gc.collect()
        self.watch.reset()
        t0 = time.perf_counter()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                grammar = gm.Grammar.from_json_schema(schema, build_timeout=self.build_timeout)
                compiled = gm.compile(grammar, self.info, cache_dir=False)
        except gm.GrammarError as exc:
            return {"status": "refused", "error": str(exc).splitlines()[0][:200],
                    "seconds_to_refusal": time.perf_counter() - t0}
        with self.watch.stage("matcher"):
            matcher = compiled.matcher()
        with self.watch.stage("first_fill"):
            matcher.fill_next_token_bitmask(self.bitmask)
        total = time.perf_counter() - t0
        stages = dict(self.watch.times)
        stages["other"] = total - sum(stages.values())
        return {"status": "ok", "seconds": total, "stages": stages, **_features(grammar, compiled)}


class XGrammar:
    name = "xgrammar"

    def __init__(self, tokenizer, info, threads: int):
        import xgrammar

        self.xgr = xgrammar
        xinfo = xgrammar.TokenizerInfo.from_huggingface(tokenizer, vocab_size=info.vocab_size)
        self.compiler = xgrammar.GrammarCompiler(xinfo, max_threads=threads, cache_enabled=False)
        self.bitmask = xgrammar.allocate_token_bitmask(1, info.vocab_size)
        self.first_mask({"type": "object", "properties": {"a": {"type": "string"}}})

    def first_mask(self, schema) -> dict:
        gc.collect()
        t0 = time.perf_counter()
        try:  # strict_mode=False: as in schema_bench's scoring (absent additionalProperties means anything)
            compiled = self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=True, strict_mode=False)
        except Exception as exc:  # noqa: BLE001 - any refusal of the peer
            return {"status": "refused", "error": (str(exc).splitlines() or [type(exc).__name__])[0][:200]}
        t1 = time.perf_counter()
        self.xgr.GrammarMatcher(compiled).fill_next_token_bitmask(self.bitmask)
        t2 = time.perf_counter()
        return {"status": "ok", "seconds": t2 - t0, "stages": {"compile": t1 - t0, "matcher+fill": t2 - t1}}


class LLGuidance:
    name = "llguidance"

    def __init__(self, tokenizer, info):
        import llguidance
        import llguidance.hf
        import llguidance.torch

        self.llg, self.fill = llguidance, llguidance.torch.fill_next_token_bitmask
        self.lltok = llguidance.hf.from_tokenizer(tokenizer, n_vocab=info.vocab_size)
        self.bitmask = llguidance.torch.allocate_token_bitmask(1, info.vocab_size)
        self.first_mask({"type": "object", "properties": {"a": {"type": "string"}}})

    def first_mask(self, schema) -> dict:
        gc.collect()
        t0 = time.perf_counter()
        try:
            grammar = self.llg.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": True})
        except Exception as exc:  # noqa: BLE001
            return {"status": "refused", "error": str(exc).splitlines()[0][:200]}
        t1 = time.perf_counter()
        m = self.llg.LLMatcher(self.lltok, grammar, log_level=0)
        if m.is_error():
            return {"status": "refused", "error": m.get_error().splitlines()[0][:200]}
        self.fill(m, self.bitmask, 0)
        t2 = time.perf_counter()
        return {"status": "ok", "seconds": t2 - t0, "stages": {"grammar": t1 - t0, "matcher+fill": t2 - t1}}


_TOKENIZER: dict = {}


def preload(family: str) -> None:
    """The tokenizer and grammask's TokenizerInfo, loaded in the parent so that every worker (and every
    worker restarted after a timeout) inherits them instead of loading them again."""
    from bench.workload import load_tokenizer

    if family not in _TOKENIZER:
        tok = load_tokenizer(family)
        _TOKENIZER[family] = (tok, gm.TokenizerInfo.from_huggingface(tok))


def make_engine(name: str, family: str, build_timeout: float, keep_caches: bool):
    from grammask.decoding.compiler import _build_threads

    preload(family)
    tok, info = _TOKENIZER[family]
    if name == "grammask":
        return Grammask(tok, info, build_timeout, keep_caches)
    if name == "xgrammar":
        return XGrammar(tok, info, _build_threads())  # as many threads as grammask's table build
    return LLGuidance(tok, info)


_NAMED_MAPS = {"properties", "patternProperties", "$defs", "definitions", "dependentSchemas"}


def schema_traits(schema) -> dict:
    """What a schema holds that shapes its grammar: property and $ref counts, nesting depth, the largest
    length bound, patterns, formats, enum/const values, combinators."""
    out = {"properties": 0, "refs": 0, "depth": 0, "max_length_bound": 0, "patterns": 0, "formats": 0,
           "enum_values": 0, "combinators": 0}

    def walk(node, depth):
        if isinstance(node, list):
            for x in node:
                walk(x, depth)
            return
        if not isinstance(node, dict):
            return
        out["depth"] = max(out["depth"], depth)
        for key, value in node.items():
            if key in _NAMED_MAPS and isinstance(value, dict):
                out["properties"] += len(value) if key == "properties" else 0
                for sub in value.values():
                    walk(sub, depth + 1)
                continue
            if key == "$ref":
                out["refs"] += 1
            elif key in ("maxLength", "minLength", "maxItems", "minItems") and isinstance(value, int):
                out["max_length_bound"] = max(out["max_length_bound"], value)
            elif key == "pattern":
                out["patterns"] += 1
            elif key == "format":
                out["formats"] += 1
            elif key == "enum" and isinstance(value, list):
                out["enum_values"] += len(value)
            elif key == "const":
                out["enum_values"] += 1
            elif key in ("anyOf", "oneOf", "allOf", "not", "if"):
                out["combinators"] += 1
            if isinstance(value, (dict, list)) and key not in ("enum", "const", "default", "examples"):
                walk(value, depth + 1)

    walk(schema, 0)
    return out


def measure(engine, path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    return engine.first_mask(doc["schema"])


# ---- report -------------------------------------------------------------------------------------------

def _pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def _ms(x: float) -> str:
    if x != x:
        return "–"
    if x == float("inf"):
        return "timeout"
    return f"{x * 1e3:.1f} ms" if x < 1 else f"{x:.2f} s"


def report(results: list[dict], engines: list[str], split_names: list[str], timeout: float, family: str,
           vocab_size: int, keep_caches: bool, schema_dir: Path) -> str:
    for r in results:  # grammask stopping its own build at build_timeout (= the timeout) is a timeout too
        if r["status"] == "refused" and "build_timeout" in str(r.get("error")):
            r["status"] = "timeout"
    return (f"Time to first mask, {family} tokenizer ({vocab_size:,} tokens), "
            f"{'caches kept across schemas' if keep_caches else 'cold per schema'}\n\n"
            + table(results, engines, split_names, timeout) + "\n\n" + breakdown(results, schema_dir))


def table(results: list[dict], engines: list[str], split_names: list[str], timeout: float) -> str:
    """Per split and engine: p50 / p99 / max time to first mask over the schemas the engine did not refuse
    (a timeout counts as infinitely slow), and the refusal and timeout counts."""
    lines = ["| split | engine | schemas | first mask | refused | timeouts | p50 | p99 | max |",
             "|---|---|---|---|---|---|---|---|---|"]
    for split in split_names + ["all"]:
        for engine in engines:
            rs = [r for r in results if r["engine"] == engine and (split == "all" or r["split"] == split)]
            if not rs:
                continue
            secs = [r["seconds"] if r["status"] == "ok" else float("inf")
                    for r in rs if r["status"] in ("ok", "timeout")]
            n = {s: sum(r["status"] == s for r in rs) for s in ("ok", "refused", "timeout", "error")}
            name = f"**{split}**" if split == "all" else split
            lines.append(f"| {name} | {engine} | {len(rs)} | {n['ok']} | {n['refused'] + n['error']} | "
                         f"{n['timeout']} | {_ms(_pct(secs, 0.5))} | {_ms(_pct(secs, 0.99))} | "
                         f"{_ms(max(secs, default=float('nan')))} |")
    lines.append(f"\nper-schema timeout {timeout:g} s (the worker is killed); refused = the engine rejects the "
                 "schema (no mask), excluded from the percentiles")
    return "\n".join(lines)


def breakdown(results: list[dict], schema_dir: Path) -> str:
    """grammask's stages over the schemas it gave a first mask for: median and p99 of each stage, its share
    of all time, and its share of the time of the slowest 10% and the middle of the distribution."""
    rs = sorted((r for r in results if r["engine"] == "grammask" and r["status"] == "ok"),
                key=lambda r: r["seconds"])
    if not rs:
        return ""
    n = len(rs)
    slow = rs[int(0.9 * n):]
    middle = rs[int(0.4 * n):int(0.6 * n) + 1]
    total = sum(r["seconds"] for r in rs)

    def share(group, key):
        t = sum(r["seconds"] for r in group)
        return sum(r["stages"].get(key, 0.0) for r in group) / t if t else float("nan")

    lines = [f"grammask stages over {n} schemas (exclusive times; total {total:.1f} s)", "",
             "| stage | median | p99 | max | share of all | share, p40–p60 schemas | share, slowest 10% |",
             "|---|---|---|---|---|---|---|"]
    for key, label in STAGES:
        xs = [r["stages"].get(key, 0.0) for r in rs]
        if not any(xs):
            continue  # a stage this run never entered (lazy token tables: no build before the first fill)
        lines.append(f"| {label} | {_ms(_pct(xs, 0.5))} | {_ms(_pct(xs, 0.99))} | {_ms(max(xs))} | "
                     f"{share(rs, key):.0%} | {share(middle, key):.0%} | {share(slow, key):.0%} |")
    lines += ["", "slowest 10 first masks:", "",
              "| split | file | total | lexer states | terminals | LR states | grammar chars | top stages | traits |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rs[::-1][:10]:
        traits = schema_traits(json.loads(Path(schema_dir, f"maskbench-{r['split']}", r["file"]).read_text())["schema"])
        top = sorted(r["stages"].items(), key=lambda kv: -kv[1])[:3]
        lines.append(f"| {r['split']} | {r['file']} | {_ms(r['seconds'])} | {r['lexer_states']} | {r['terminals']} | "
                     f"{r['lr_states']} | {r['grammar_chars']} | "
                     + ", ".join(f"{k} {_ms(v)}" for k, v in top) + " | "
                     + ", ".join(f"{k} {v}" for k, v in traits.items() if v) + " |")
    return "\n".join(lines)
