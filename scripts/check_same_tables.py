"""Every MaskBench schema's tables built by two checkouts must be identical: the grammar text, the terminals, the
lexer DFA, the LR tables, the core grammar arrays, and the token masks of the first fill and of the fills
along a valid instance (lazy token tables: each state's as its fill builds it). For changes that must not
change what is accepted (time to first mask, issue #22: a faster path to the same tables).

    GRAMMASK_CORPORA=../shared/corpora python scripts/check_same_tables.py BEFORE_CHECKOUT [AFTER_CHECKOUT]

AFTER_CHECKOUT defaults to this script's checkout; CHECK_LIMIT=N compares the first N schemas only. Each
checkout runs in a process of its own (its own package and native core, built in place, on PYTHONPATH; no disk
cache), with this script's digests; the schemas a build refuses must be refused with the same message both
ways. Prints the schemas that differ, and exits 1 if any does.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SCHEMA_TIMEOUT_S = 20
FILLS_ALONG_INSTANCE = 24  # tokens of a valid instance fed, each fill's mask digested
TOKENIZER = "deepseek"


def _update_arrays(h, obj, names) -> None:
    import numpy as np

    for name in names:
        value = getattr(obj, name) if not isinstance(obj, dict) else obj.get(name)
        h.update(name.encode() + (b"-" if value is None else np.ascontiguousarray(value).tobytes()))


def digests(limit: int | None) -> dict:
    """{schema path: {part: digest}} or {"refused": message} / {"timeout": True}, built in this process."""
    os.environ["GRAMMASK_CACHE_DIR"] = ""
    import warnings

    import numpy as np
    import torch

    import grammask as gm
    from bench import workload
    from grammask.decoding.compiler import core_grammar_arrays

    print(f"grammask from {Path(gm.__file__).parent.parent}", file=sys.stderr)
    root = workload.require_shared("jsonschema")
    tok = workload.load_tokenizer(TOKENIZER)
    info = gm.TokenizerInfo.from_huggingface(tok)
    bitmask = torch.zeros((1, (info.vocab_size + 31) // 32), dtype=torch.int32)
    out = {}

    def expired(signum, frame):
        raise TimeoutError()

    signal.signal(signal.SIGALRM, expired)
    paths = sorted(root.glob("maskbench-*/*.json"))[:limit]
    for path in paths:
        doc = json.loads(path.read_text(encoding="utf-8"))
        signal.alarm(SCHEMA_TIMEOUT_S)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                g = gm.Grammar.from_json_schema(doc["schema"])
            t = g.tables
            parts = {"text": hashlib.sha256(g.text.encode()).hexdigest()}
            h = hashlib.sha256(repr([(x.name, x.regex, x.priority, x.is_literal, x.ignored, x.also, x.modes,
                                      x.mode_regexes, x.fullmatch) for x in t.terminals]).encode())
            h.update(repr(t.display).encode())
            parts["terminals"] = h.hexdigest()
            h = hashlib.sha256(repr([list(c) for c in t.lexer.csets]).encode())
            _update_arrays(h, t.lexer, ("trans", "winner", "final", "cset", "mode_start", "lex_mode", "cond",
                                        "cond_rows", "void"))
            parts["lexer"] = h.hexdigest()
            h = hashlib.sha256(repr((t.parser.start_state, t.parser.end_state, t.parser.nonterminals)).encode())
            _update_arrays(h, t.parser, ("action", "goto", "rule_lhs", "rule_len"))
            parts["parser"] = h.hexdigest()
            h = hashlib.sha256(repr((t.lex_init, t.conflicts, t.lex_fallback)).encode())
            _update_arrays(h, t, ("term_bracket", "lex_nl", "term_flags", "mode_restart", "state_mode"))
            arrays = core_grammar_arrays(t)
            for name in sorted(arrays):
                value = arrays[name]
                h.update(name.encode() + (repr(value).encode() if np.isscalar(value) or isinstance(value, int)
                                          else np.ascontiguousarray(value).tobytes()))
            parts["core"] = h.hexdigest()
            compiled = gm.compile(g, info, cache_dir=False)
            matcher = compiled.matcher()
            h = hashlib.sha256()
            instance = next((x["data"] for x in doc.get("tests", ()) if x.get("valid")), None)
            ids = tok.encode(json.dumps(instance), add_special_tokens=False) if instance is not None else []
            for step in range(FILLS_ALONG_INSTANCE + 1):
                matcher.fill_next_token_bitmask(bitmask)
                h.update(bitmask.numpy().tobytes())
                if step >= len(ids) or not matcher.accept_token(ids[step]):
                    h.update(f"stop at {step}".encode())
                    break
            parts["masks"] = h.hexdigest()
            out[str(path)] = parts
        except TimeoutError:
            out[str(path)] = {"timeout": True}
        except Exception as exc:  # a refusal: compared by its message
            out[str(path)] = {"refused": f"{type(exc).__name__}: {exc}"}
        finally:
            signal.alarm(0)
    return out


def main() -> int:
    if len(sys.argv) >= 2 and sys.argv[1] == "--digests":
        json.dump(digests(int(sys.argv[2]) if len(sys.argv) > 2 else None), sys.stdout)
        return 0
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    here = Path(__file__).resolve().parents[1]
    after = Path(sys.argv[2]).resolve() if len(sys.argv) > 2 else here
    checkouts = {"before": Path(sys.argv[1]).resolve(), "after": after}
    limit = os.environ.get("CHECK_LIMIT")
    results = {}
    for way, checkout in checkouts.items():
        t = time.perf_counter()
        env = dict(os.environ, PYTHONPATH=str(checkout))
        # (this script's digests both ways, whatever copy of it a checkout holds)
        run = subprocess.run([sys.executable, __file__, "--digests", *([limit] if limit else [])],
                             capture_output=True, text=True, cwd=checkout, env=env)
        if run.returncode:
            print(run.stderr, file=sys.stderr)
            return 2
        results[way] = json.loads(run.stdout)
        print(run.stderr.strip(), file=sys.stderr)
        print(f"{way} ({checkout}): {len(results[way])} schemas in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    before, after = results["before"], results["after"]
    differ = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    timeouts = sorted(p for p in before if "timeout" in before[p] or "timeout" in after.get(p, {}))
    built = sum(1 for v in before.values() if "masks" in v)
    print(f"{len(before)} schemas ({built} built, {len(before) - built - len(timeouts)} refused both ways), "
          f"{len(differ)} differ, {len(timeouts)} timed out")
    for p in differ:
        b, a = before.get(p, {}), after.get(p, {})
        print(f"  {p}: " + ", ".join(f"{k}: {b.get(k)} vs {a.get(k)}" for k in sorted(b.keys() | a.keys())
                                      if b.get(k) != a.get(k)))
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
