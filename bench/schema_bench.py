"""MaskBench scoring of Grammar.from_json_schema, with llguidance and XGrammar scored the same way.

Per schema and engine: does it compile (or is it refused)? Is every valid test instance (json.dumps)
generable, and every invalid one blocked? An engine passes a schema when all three hold. Peers are
judged token by token under their masks with the gpt2 tokenizer (all tokens accepted, then a stop
token); grammask by its validator, which runs the same lexer and parser as its masks (`--walk` judges
it token by token too). Each schema runs in a worker process that is killed after `--timeout` seconds
(counted as a compile error). Per-schema results are appended to bench/results/schema_bench.jsonl as
they come (`--resume` skips those already there); the Markdown table goes to
bench/results/schema_bench.md and stdout (`--out NAME` for other names).

    python -m bench.schema_bench [--limit N] [--splits Handwritten ...] [--engines grammask xgrammar llguidance]
                                 [--jobs 2] [--timeout 20] [--walk] [--resume] [--tokens N]
    python -m bench.schema_bench --from-logs full peers --limit 60 --out side_by_side   # tables from logs
    python -m bench.schema_bench --suite      # the official JSON-Schema-Test-Suite, per keyword (grammask)
    python -m bench.schema_bench --ttfm [--tokenizer deepseek] --limit 30 --spread --timeout 20
                                     # time to first mask per engine, grammask's stages (bench/ttfm.py)

--spread with --limit N takes N schemas spread evenly over each split (sorted by name) rather than the first N
(names sort by topic in some splits, e.g. Synthesized by keyword).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import time
import warnings
from collections import deque
from functools import partial
from multiprocessing.connection import wait
from pathlib import Path

from bench.workload import CORPORA

import grammask as gm
import grammask.grammar.json_schema  # noqa: F401 - loaded before workers fork: all score the same code

RESULTS = Path(__file__).resolve().parent / "results"
STATUSES = ("pass", "compile-error", "valid-rejected", "invalid-accepted")


def splits() -> list[Path]:
    return sorted((CORPORA / "jsonschema").glob("maskbench-*"))


def chosen_splits(names: list[str] | None) -> list[tuple[str, Path]]:
    """(name, folder) of each split, or of those in `names`."""
    named = [(split.name.removeprefix("maskbench-"), split) for split in splits()]
    return [(name, split) for name, split in named if not names or name in names]


def score_schema(path: Path, build_timeout: float = 5.0) -> dict:
    """grammask on one schema, judged by its validator: status pass | compile-error | valid-rejected |
    invalid-accepted, with details (the grammar too, for token walks)."""
    doc = json.loads(path.read_text(encoding="utf-8"))
    out = {"file": path.name, "seconds": None, "error": None, "valid_rejected": 0, "invalid_accepted": 0,
           "valid": 0, "invalid": 0}
    t0 = time.perf_counter()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            grammar = gm.Grammar.from_json_schema(doc["schema"], build_timeout=build_timeout)
    except gm.GrammarError as exc:
        out["status"] = "compile-error"
        out["error"] = str(exc).splitlines()[0][:200]
        return out
    out["seconds"] = time.perf_counter() - t0
    out["grammar"] = grammar
    _judge(out, doc, lambda text: grammar.validate(text).ok)
    return out


def _judge(out: dict, doc: dict, accepts) -> None:
    for test in doc.get("tests", []):
        ok = accepts(json.dumps(test["data"]))
        if test["valid"]:
            out["valid"] += 1
            out["valid_rejected"] += not ok
        else:
            out["invalid"] += 1
            out["invalid_accepted"] += ok
    out["status"] = ("invalid-accepted" if out["invalid_accepted"] else
                     "valid-rejected" if out["valid_rejected"] else "pass")


# ---- engines --------------------------------------------------------------------------------------
# Each: compile(schema) -> compiled (raises on refusal) and accepts(compiled, text) -> bool.

class CompileRefused(Exception):
    pass


class Grammask:
    name = "grammask"

    def __init__(self, tokenizer, walk: bool, build_timeout: float):
        self.tok, self.walk, self.build_timeout = tokenizer, walk, build_timeout
        self.info = gm.TokenizerInfo.from_huggingface(tokenizer) if walk else None

    def compile(self, schema):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                grammar = gm.Grammar.from_json_schema(schema, build_timeout=self.build_timeout)
                if not self.walk:
                    grammar.tables  # noqa: B018 - build the lexer and parser now, inside the timing
                    return grammar
                return gm.compile(grammar, self.info, cache_dir=False).matcher()
        except gm.GrammarError as exc:
            raise CompileRefused(str(exc).splitlines()[0]) from None

    def accepts(self, compiled, text: str) -> bool:
        if not self.walk:
            return compiled.validate(text).ok
        compiled.reset()
        return all(compiled.accept_token(t) for t in self.tok.encode(text, add_special_tokens=False)) \
            and compiled.is_accepting()


class XGrammar:
    name = "xgrammar"

    def __init__(self, tokenizer):
        import xgrammar

        self.xgr, self.tok = xgrammar, tokenizer
        self.compiler = xgrammar.GrammarCompiler(xgrammar.TokenizerInfo.from_huggingface(tokenizer),
                                                 max_threads=1, cache_enabled=False)

    def compile(self, schema):
        try:  # strict_mode=False: additionalProperties/items absent mean "anything", as the specification says
            return self.compiler.compile_json_schema(json.dumps(schema), any_whitespace=True, strict_mode=False)
        except Exception as exc:  # noqa: BLE001 - any refusal of the peer counts as a compile error
            raise CompileRefused(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from None

    def accepts(self, compiled, text: str) -> bool:
        m = self.xgr.GrammarMatcher(compiled)
        return all(m.accept_token(t) for t in self.tok.encode(text, add_special_tokens=False)) \
            and m.accept_token(self.tok.eos_token_id) and m.is_terminated()


class LLGuidance:
    name = "llguidance"

    def __init__(self, tokenizer):
        import llguidance
        import llguidance.hf

        self.llg, self.tok = llguidance, tokenizer
        self.lltok = llguidance.hf.from_tokenizer(tokenizer)

    def compile(self, schema):
        try:
            grammar = self.llg.LLMatcher.grammar_from_json_schema(schema, defaults={"whitespace_flexible": True})
        except Exception as exc:  # noqa: BLE001
            raise CompileRefused(str(exc).splitlines()[0]) from None
        error = self.llg.LLMatcher.validate_grammar(grammar, self.lltok)
        if error and not error.startswith("WARNING"):
            raise CompileRefused(error.splitlines()[0])
        m = self.llg.LLMatcher(self.lltok, grammar, log_level=0)
        if m.is_error():
            raise CompileRefused(m.get_error().splitlines()[0])
        return grammar

    def accepts(self, compiled, text: str) -> bool:
        m = self.llg.LLMatcher(self.lltok, compiled, log_level=0)
        return all(m.consume_token(t) for t in self.tok.encode(text, add_special_tokens=False)) \
            and not m.is_error() and m.is_accepting()


ENGINES = ("grammask", "llguidance", "xgrammar")


def installed(name: str) -> bool:
    import importlib.util

    return name == "grammask" or importlib.util.find_spec(name) is not None


def make_engine(name: str, walk: bool, build_timeout: float):
    from bench.workload import load_tokenizer

    tok = load_tokenizer("gpt2")
    if name == "grammask":
        return Grammask(tok, walk, build_timeout)
    return {"xgrammar": XGrammar, "llguidance": LLGuidance}[name](tok)


def score_with(engine, path: Path) -> dict:
    doc = json.loads(path.read_text(encoding="utf-8"))
    out = {"valid_rejected": 0, "invalid_accepted": 0, "valid": 0, "invalid": 0, "seconds": None, "error": None}
    t0 = time.perf_counter()
    try:
        compiled = engine.compile(doc["schema"])
    except CompileRefused as exc:
        out["status"], out["error"] = "compile-error", str(exc)[:200]
        return out
    out["seconds"] = time.perf_counter() - t0
    _judge(out, doc, lambda text: engine.accepts(compiled, text))
    return out


def _worker(conn, make, score, failed: str) -> None:
    """make(engine name) -> engine, once per engine; score(engine, path) -> result dict."""
    engines = {}
    while True:
        task = conn.recv()
        if task is None:
            return
        name, path = task
        try:
            if name not in engines:
                engines[name] = make(name)
            conn.send(score(engines[name], Path(path)))
        except Exception as exc:  # noqa: BLE001 - an engine crash on one schema is that schema's result
            conn.send({"status": failed, "error": f"{type(exc).__name__}: {exc}"[:200], "seconds": None})


class _Worker:
    """A process scoring one (engine, schema) at a time; killed and replaced when it overruns."""

    def __init__(self, make, score, failed: str):
        self.args = (make, score, failed)
        self.seen: set[str] = set()  # engines this process has loaded
        self.start()

    def start(self) -> None:
        self.conn, child = mp.Pipe()
        self.proc = mp.Process(target=_worker, args=(child, *self.args), daemon=True)
        self.proc.start()
        self.task, self.deadline = None, None

    def kill(self) -> None:
        self.proc.kill()
        self.proc.join()
        self.start()
        self.seen = set()


def run_engines(tasks: list[tuple[str, str, Path]], jobs: int, timeout: float, walk: bool, log: Path,
                resume: bool, make=None, score=score_with, timed_out: str = "compile-error",
                failed: str = "compile-error") -> list[dict]:
    """Score (engine, split, schema path) tasks in `jobs` worker processes; results appended to `log`.
    make(name) -> engine (default: make_engine for scoring) and score(engine, path) -> result dict run in the
    workers; a task past `timeout` gets status `timed_out`, an exception in it status `failed`."""
    make = make or partial(make_engine, walk=walk, build_timeout=timeout)
    done = {}
    if resume and log.exists():
        for line in log.read_text(encoding="utf-8").splitlines():
            r = json.loads(line)
            done[(r["engine"], r["split"], r["file"])] = r
    elif log.exists():
        log.unlink()
    todo = deque(t for t in tasks if (t[0], t[1], t[2].name) not in done)
    results = [done[(e, s, p.name)] for e, s, p in tasks if (e, s, p.name) in done]
    # Each worker loads the tokenizer and the engines' vocabularies once (seconds); a compile that hangs
    # costs a restart. A slow first task is not a hang: the first deadline allows for the start-up.
    workers = [_Worker(make, score, failed) for _ in range(max(1, jobs))]
    startup = 60.0
    with log.open("a", encoding="utf-8") as out:
        while todo or any(w.task for w in workers):
            for w in workers:
                if w.task is None and todo:
                    w.task = todo.popleft()
                    w.deadline = time.monotonic() + timeout + (startup if w.task[0] not in w.seen else 0)
                    w.seen.add(w.task[0])
                    w.conn.send((w.task[0], str(w.task[2])))
            busy = [w for w in workers if w.task]
            ready = wait([w.conn for w in busy], timeout=max(0.0, min(w.deadline for w in busy) - time.monotonic()))
            for w in busy:
                engine, split, path = w.task
                if w.conn in ready:
                    r = w.conn.recv()
                elif time.monotonic() > w.deadline:
                    w.kill()
                    r = {"status": timed_out, "error": f"timeout ({timeout:g} s)", "seconds": None}
                else:
                    continue
                r.update(engine=engine, split=split, file=path.name)
                results.append(r)
                out.write(json.dumps(r) + "\n")
                out.flush()
                w.task = None
                n = len(results)
                if n % 50 == 0:
                    print(f"{n}/{len(tasks)} scored", flush=True)
    for w in workers:
        w.conn.send(None)
        w.proc.join(timeout=5)
    return results


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def seconds(x: float) -> str:
    return "–" if x != x else f"{x:.3f} s"  # nan: no schema of the split compiled


def table(results: list[dict], engines: list[str], split_names: list[str]) -> str:
    """One row per split and engine, then all splits per engine."""
    lines = ["| split | engine | schemas | pass | compile-error | valid-rejected | invalid-accepted | compile p50 | p99 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for split in split_names + ["all"]:
        for engine in engines:
            rs = [r for r in results if r["engine"] == engine and (split == "all" or r["split"] == split)]
            if not rs and not installed(engine):
                lines.append(f"| {split} | {engine} | not installed | | | | | | |")
                continue
            secs = [r["seconds"] for r in rs if r["seconds"] is not None]
            counts = [sum(r["status"] == s for r in rs) for s in STATUSES]
            name = f"**{split}**" if split == "all" else split
            lines.append(f"| {name} | {engine} | {len(rs)} | " + " | ".join(map(str, counts)) +
                         f" | {seconds(percentile(secs, 0.5))} | {seconds(percentile(secs, 0.99))} |")
    timeouts = {e: sum(1 for r in results if r["engine"] == e and str(r.get("error", "")).startswith("timeout"))
                for e in engines}
    lines.append("")
    lines.append("Timeouts (counted as compile errors): " + ", ".join(f"{e} {n}" for e, n in timeouts.items()))
    return "\n".join(lines)


def pick(split: Path, limit: int | None, spread: bool = False) -> list[Path]:
    """The split's schemas sorted by name: the first `limit`, or `limit` spread evenly over them."""
    paths = sorted(split.glob("*.json"))
    if limit is None or not spread or limit >= len(paths):
        return paths[:limit]
    return [paths[k * len(paths) // limit] for k in range(limit)]


def run(limit: int | None = None, names: list[str] | None = None, engines: list[str] | None = None,
        jobs: int = 1, timeout: float = 20.0, walk: bool = False, resume: bool = False,
        out: str = "schema_bench", spread: bool = False) -> list[dict]:
    engines = [e for e in (engines or ENGINES)]
    tasks, split_names = [], []
    for name, split in chosen_splits(names):
        split_names.append(name)
        for path in pick(split, limit, spread):
            tasks += [(e, name, path) for e in engines if installed(e)]
    RESULTS.mkdir(exist_ok=True)
    results = run_engines(tasks, jobs, timeout, walk, RESULTS / f"{out}.jsonl", resume)
    text = table(results, engines, split_names)
    (RESULTS / f"{out}.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    return results


def report(logs: list[str], limit: int | None, names: list[str] | None, out: str) -> None:
    """The table from existing logs (bench/results/NAME.jsonl), over the first `limit` schemas per split."""
    results = [json.loads(line) for name in logs
               for line in (RESULTS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
    split_names, keep = [], set()
    for name, split in chosen_splits(names):
        split_names.append(name)
        keep |= {(name, p.name) for p in sorted(split.glob("*.json"))[:limit]}
    results = [r for r in results if (r["split"], r["file"]) in keep]
    engines = [e for e in ENGINES if any(r["engine"] == e for r in results)]
    text = table(results, engines, split_names)
    (RESULTS / f"{out}.md").write_text(text + "\n", encoding="utf-8")
    print(text)


def run_ttfm(limit: int | None, names: list[str] | None, engines: list[str], timeout: float, resume: bool,
             out: str, family: str, spread: bool, keep_caches: bool, jobs: int = 1) -> list[dict]:
    """Time to first mask per schema and engine (bench/ttfm.py), with grammask's stages; no disk caches.
    Every engine of a schema runs in the same worker process, one after another."""
    import os

    from bench import ttfm

    os.environ["GRAMMASK_CACHE_DIR"] = ""  # grammar tables too: no disk cache (inherited by the workers)
    ttfm.preload(family)
    engines = [e for e in engines if installed(e)]
    tasks, split_names = [], []
    for name, split in chosen_splits(names):
        split_names.append(name)
        tasks += [(e, name, path) for path in pick(split, limit, spread) for e in engines]
    RESULTS.mkdir(exist_ok=True)
    make = partial(ttfm.make_engine, family=family, build_timeout=timeout, keep_caches=keep_caches)
    results = run_engines(tasks, jobs, timeout, False, RESULTS / f"{out}.jsonl", resume, make=make,
                          score=ttfm.measure, timed_out="timeout", failed="error")
    text = ttfm.report(results, engines, split_names, timeout, family, ttfm._TOKENIZER[family][1].vocab_size,
                       keep_caches, CORPORA / "jsonschema")
    (RESULTS / f"{out}.md").write_text(text + "\n", encoding="utf-8")
    print(text)
    return results


def report_ttfm(logs: list[str], args) -> None:
    """The time-to-first-mask tables from existing logs (bench/results/NAME.jsonl)."""
    from bench import ttfm
    from bench.workload import VOCAB_SIZES

    results = [json.loads(line) for name in logs
               for line in (RESULTS / f"{name}.jsonl").read_text(encoding="utf-8").splitlines()]
    split_names = sorted({r["split"] for r in results})
    engines = [e for e in ENGINES if any(r["engine"] == e for r in results)]
    print(ttfm.report(results, engines, split_names, args.timeout, args.tokenizer, VOCAB_SIZES[args.tokenizer],
                      args.keep_caches, CORPORA / "jsonschema"))


def run_token_walks(limit: int | None, names: list[str] | None, tokens: int) -> None:
    """grammask's valid instances of the first `tokens` passing schemas per split, token by token (gpt2)."""
    from bench.workload import load_tokenizer

    tok = load_tokenizer("gpt2")
    info = gm.TokenizerInfo.from_huggingface(tok)
    walked = failed = 0
    for _, split in chosen_splits(names):
        results = (score_schema(f) for f in sorted(split.glob("*.json"))[:limit])
        for r in [r for r in results if r["status"] == "pass"][:tokens]:
            w, f = walk_valid(r, split, tok, info)
            walked, failed = walked + w, failed + f
    print(f"token walks (gpt2): {walked} valid instances walked, {failed} blocked a token")


def walk_valid(result: dict, split: Path, tok, info) -> tuple[int, int]:
    """Walk each valid instance of a passing schema token by token under the mask."""
    doc = json.loads((split / result["file"]).read_text(encoding="utf-8"))
    compiled = gm.compile(result["grammar"], info, cache_dir=False)
    matcher = compiled.matcher()
    walked = failed = 0
    for test in doc.get("tests", []):
        if not test["valid"]:
            continue
        text = json.dumps(test["data"])
        matcher.reset()
        walked += 1
        for t in tok.encode(text, add_special_tokens=False):
            if not matcher.accept_token(t):
                failed += 1
                break
        else:
            failed += not matcher.is_accepting()
    return walked, failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--limit", type=int, default=None, help="at most N schemas per split (sorted by name)")
    ap.add_argument("--splits", nargs="*", help="split names, e.g. Handwritten Github_easy")
    ap.add_argument("--engines", nargs="*", default=list(ENGINES), choices=ENGINES)
    ap.add_argument("--jobs", type=int, default=1, help="worker processes")
    ap.add_argument("--timeout", type=float, default=20.0, help="seconds per schema and engine")
    ap.add_argument("--walk", action="store_true", help="judge grammask token by token (gpt2) too")
    ap.add_argument("--resume", action="store_true", help="keep the results already in the log")
    ap.add_argument("--out", default="schema_bench", help="base name of the log and table in bench/results/")
    ap.add_argument("--from-logs", nargs="*", metavar="NAME", help="instead: the table of existing logs "
                    "bench/results/NAME.jsonl (e.g. one per engine), over the first --limit schemas per split")
    ap.add_argument("--tokens", type=int, default=0, help="instead: walk the valid instances of N passing "
                    "schemas per split token by token with grammask's gpt2 masks")
    ap.add_argument("--spread", action="store_true", help="with --limit N: N schemas spread evenly over each "
                    "split instead of the first N")
    ap.add_argument("--ttfm", action="store_true", help="instead: time to first mask per engine, cold, with "
                    "grammask's stages (log and table: bench/results/ttfm.*, or --out)")
    ap.add_argument("--tokenizer", default="deepseek", help="--ttfm: tokenizer family (bench/workload.py; "
                    "deepseek: 129,280 tokens, the 128k class)")
    ap.add_argument("--keep-caches", action="store_true", help="--ttfm: keep grammask's in-process caches "
                    "across schemas (default: emptied before each)")
    ap.add_argument("--suite", action="store_true", help="score the official JSON-Schema-Test-Suite draft2020-12 "
                    "keyword files instead")
    args = ap.parse_args()
    if args.suite:
        run_suite()
    elif args.ttfm and args.from_logs:
        report_ttfm(args.from_logs, args)
    elif args.ttfm:
        run_ttfm(args.limit, args.splits, args.engines, args.timeout, args.resume,
                 "ttfm" if args.out == "schema_bench" else args.out, args.tokenizer, args.spread, args.keep_caches,
                 args.jobs)
    elif args.from_logs:
        report(args.from_logs, args.limit, args.splits, args.out)
    elif args.tokens:
        run_token_walks(args.limit, args.splits, args.tokens)
    else:
        run(args.limit, args.splits, args.engines, args.jobs, args.timeout, args.walk, args.resume, args.out,
            args.spread)


def suite_dir() -> Path:
    return CORPORA / "jsonschema" / "JSON-Schema-Test-Suite" / "tests" / "draft2020-12" \
        if (CORPORA / "jsonschema" / "JSON-Schema-Test-Suite" / "tests").exists() \
        else CORPORA / "jsonschema" / "JSON-Schema-Test-Suite" / "draft2020-12"


def score_suite_file(path: Path) -> dict:
    """One keyword file: schemas compiled/refused, valid accepted, invalid blocked (compiled schemas only)."""
    out = {"file": path.stem, "groups": 0, "compiled": 0, "valid": 0, "valid_ok": 0, "valid_rejected": [],
           "invalid": 0, "invalid_blocked": 0, "invalid_accepted": []}
    for group in json.loads(path.read_text(encoding="utf-8")):
        out["groups"] += 1
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                grammar = gm.Grammar.from_json_schema(group["schema"], build_timeout=10.0)
        except gm.GrammarError:
            continue
        out["compiled"] += 1
        for test in group["tests"]:
            ok = grammar.validate(json.dumps(test["data"])).ok
            if test["valid"]:
                out["valid"] += 1
                out["valid_ok"] += ok
                if not ok:
                    out["valid_rejected"].append((group["description"], test["description"]))
            else:
                out["invalid"] += 1
                out["invalid_blocked"] += not ok
                if ok:
                    out["invalid_accepted"].append((group["description"], test["description"]))
    return out


def run_suite() -> list[dict]:
    """Every keyword file of draft 2020-12 (not optional/): refused schemas count in 'compiled' only."""
    rows = [score_suite_file(p) for p in sorted(suite_dir().glob("*.json"), key=lambda p: p.stem.lower())]
    print("| keyword file | schemas compiled | valid accepted | invalid blocked | invalid accepted |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['file']} | {r['compiled']}/{r['groups']} | {r['valid_ok']}/{r['valid']} | "
              f"{r['invalid_blocked']}/{r['invalid']} | {len(r['invalid_accepted'])} |")
    tot = {k: sum(r[k] for r in rows) for k in ("groups", "compiled", "valid", "valid_ok", "invalid", "invalid_blocked")}
    print(f"| **total** | {tot['compiled']}/{tot['groups']} | {tot['valid_ok']}/{tot['valid']} | "
          f"{tot['invalid_blocked']}/{tot['invalid']} | {tot['invalid'] - tot['invalid_blocked']} |")
    return rows


if __name__ == "__main__":
    main()
