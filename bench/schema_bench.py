"""MaskBench scoring of Grammar.from_json_schema.

Per schema: does it compile (or is it refused with a GrammarError)? Is every valid test instance
(json.dumps) accepted by the validator, and every invalid one rejected? Prints a Markdown table per
split with compile-time p50/p99; `--tokens N` also walks the valid instances of the first N passing
schemas token by token under the gpt2 mask (generability with a real tokenizer).

    python -m bench.schema_bench [--limit N] [--splits Handwritten ...] [--tokens N]
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from pathlib import Path

from bench.workload import CORPORA

import grammask as gm


def splits() -> list[Path]:
    return sorted((CORPORA / "jsonschema").glob("maskbench-*"))


def score_schema(path: Path, build_timeout: float = 5.0) -> dict:
    """One schema: status pass | compile-error | valid-rejected | invalid-accepted, with details."""
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
    for test in doc.get("tests", []):
        ok = grammar.validate(json.dumps(test["data"])).ok
        if test["valid"]:
            out["valid"] += 1
            out["valid_rejected"] += not ok
        else:
            out["invalid"] += 1
            out["invalid_accepted"] += ok
    out["status"] = ("invalid-accepted" if out["invalid_accepted"] else
                     "valid-rejected" if out["valid_rejected"] else "pass")
    return out


def percentile(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def seconds(x: float) -> str:
    return "–" if x != x else f"{x:.3f} s"  # nan: no schema of the split compiled


def run(limit: int | None = None, names: list[str] | None = None, tokens: int = 0) -> list[dict]:
    rows = []
    walked = walk_failed = 0
    tok = info = None
    for split in splits():
        name = split.name.removeprefix("maskbench-")
        if names and name not in names:
            continue
        files = sorted(split.glob("*.json"))[:limit]
        results = [score_schema(f) for f in files]
        if tokens:
            from bench.workload import load_tokenizer

            if tok is None:
                tok = load_tokenizer("gpt2")
                info = gm.TokenizerInfo.from_huggingface(tok)
            for r in [r for r in results if r["status"] == "pass"][:tokens]:
                walked_one, failed_one = walk_valid(r, split, tok, info)
                walked += walked_one
                walk_failed += failed_one
        secs = [r["seconds"] for r in results if r["seconds"] is not None]
        counts = {s: sum(r["status"] == s for r in results)
                  for s in ("pass", "compile-error", "valid-rejected", "invalid-accepted")}
        rows.append({"split": name, "schemas": len(results), **counts,
                     "p50": percentile(secs, 0.5), "p99": percentile(secs, 0.99), "results": results})
        print(f"{name}: {counts} p50 {rows[-1]['p50']:.3f}s p99 {rows[-1]['p99']:.3f}s", flush=True)
    print()
    print("| split | schemas | pass | compile-error | valid-rejected | invalid-accepted | compile p50 | p99 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['split']} | {r['schemas']} | {r['pass']} | {r['compile-error']} | {r['valid-rejected']} | "
              f"{r['invalid-accepted']} | {seconds(r['p50'])} | {seconds(r['p99'])} |")
    all_secs = [x["seconds"] for r in rows for x in r["results"] if x["seconds"] is not None]
    print(f"\nall: {sum(r['schemas'] for r in rows)} schemas, compile p50 {percentile(all_secs, 0.5):.3f} s, "
          f"p99 {percentile(all_secs, 0.99):.3f} s")
    if tokens:
        print(f"token walks (gpt2): {walked} valid instances walked, {walk_failed} blocked a token")
    return rows


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
    ap.add_argument("--tokens", type=int, default=0, help="walk the valid instances of N passing schemas per "
                    "split token by token with the gpt2 tokenizer")
    ap.add_argument("--suite", action="store_true", help="score the official JSON-Schema-Test-Suite draft2020-12 "
                    "keyword files instead")
    args = ap.parse_args()
    if args.suite:
        run_suite()
    else:
        run(args.limit, args.splits, args.tokens)



SUITE_KEYWORDS = ("type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
                  "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "ref", "defs", "minLength", "maxLength",
                  "pattern", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "boolean_schema",
                  "format", "default", "infinite-loop-detection")


def suite_dir() -> Path:
    return CORPORA / "jsonschema" / "JSON-Schema-Test-Suite" / "tests" / "draft2020-12" \
        if (CORPORA / "jsonschema" / "JSON-Schema-Test-Suite" / "tests").exists() \
        else CORPORA / "jsonschema" / "JSON-Schema-Test-Suite" / "draft2020-12"


def score_suite_file(path: Path) -> dict:
    """One keyword file: schemas compiled/refused, valid accepted, invalid blocked (compiled schemas only)."""
    out = {"file": path.stem, "groups": 0, "compiled": 0, "valid": 0, "valid_ok": 0, "invalid": 0,
           "invalid_blocked": 0, "invalid_accepted": []}
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
            else:
                out["invalid"] += 1
                out["invalid_blocked"] += not ok
                if ok:
                    out["invalid_accepted"].append((group["description"], test["description"]))
    return out


def run_suite() -> list[dict]:
    rows = [score_suite_file(suite_dir() / f"{k}.json") for k in SUITE_KEYWORDS
            if (suite_dir() / f"{k}.json").exists()]
    print("| keyword file | schemas compiled | valid accepted | invalid blocked |")
    print("|---|---|---|---|")
    for r in rows:
        print(f"| {r['file']} | {r['compiled']}/{r['groups']} | {r['valid_ok']}/{r['valid']} | "
              f"{r['invalid_blocked']}/{r['invalid']} |")
    tot = {k: sum(r[k] for r in rows) for k in ("groups", "compiled", "valid", "valid_ok", "invalid", "invalid_blocked")}
    print(f"| total | {tot['compiled']}/{tot['groups']} | {tot['valid_ok']}/{tot['valid']} | "
          f"{tot['invalid_blocked']}/{tot['invalid']} |")
    return rows


if __name__ == "__main__":
    main()
