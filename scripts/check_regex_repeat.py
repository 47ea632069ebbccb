"""Every MaskBench schema's grammar text, terminals and lexer, built with and without the chain construction
of long repetitions (fsm/regex_repeat.py): they must be identical (tests/test_regex_repeat.py checks a sample).

    GRAMMASK_CORPORA=../shared/corpora python scripts/check_regex_repeat.py

Each way runs in a process of its own (no automaton is kept from the other); the schemas a build refuses
must be refused with the same message both ways. Prints the schemas that differ, and exits 1 if any does.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

SCHEMA_TIMEOUT_S = 20


def digests(chains: bool) -> dict:
    """{schema path: [grammar text digest, grammar + terminals + lexer digest] or [refusal]} in this process."""
    os.environ["GRAMMASK_CACHE_DIR"] = ""
    import numpy as np

    import grammask as gm
    from bench import workload
    from grammask.fsm import regex_repeat

    if not chains:
        regex_repeat.structural_dfa = lambda regex, max_states=None: None
    root = workload.require_shared("jsonschema")
    out = {}

    def expired(signum, frame):
        raise TimeoutError()

    signal.signal(signal.SIGALRM, expired)
    for path in sorted(root.glob("maskbench-*/*.json")):
        schema = json.loads(path.read_text(encoding="utf-8"))["schema"]
        signal.alarm(SCHEMA_TIMEOUT_S)
        try:
            g = gm.Grammar.from_json_schema(schema)
            lex = g.tables.lexer
            h = hashlib.sha256(g.text.encode())
            text_digest = h.hexdigest()
            h.update(repr([(t.name, t.regex) for t in g.tables.terminals]).encode())
            h.update(repr([list(c) for c in lex.csets]).encode())
            for name in ("trans", "winner", "final", "cset", "mode_start", "lex_mode", "cond", "cond_rows"):
                value = getattr(lex, name)
                h.update(name.encode() + (b"-" if value is None else np.ascontiguousarray(value).tobytes()))
            out[str(path)] = [text_digest, h.hexdigest()]
        except TimeoutError:
            out[str(path)] = ["timeout"]
        except Exception as exc:  # a refusal: compared by its message
            out[str(path)] = ["refused", type(exc).__name__, str(exc)]
        finally:
            signal.alarm(0)
    return out


def main() -> int:
    if len(sys.argv) == 2 and sys.argv[1] in ("on", "off"):
        json.dump(digests(sys.argv[1] == "on"), sys.stdout)
        return 0
    results = {}
    for way in ("on", "off"):
        t = time.perf_counter()
        run = subprocess.run([sys.executable, __file__, way], capture_output=True, text=True, check=True)
        results[way] = json.loads(run.stdout)
        print(f"chains {way}: {len(results[way])} schemas in {time.perf_counter() - t:.0f} s", file=sys.stderr)
    on, off = results["on"], results["off"]
    differ = sorted(p for p in on.keys() | off.keys() if on.get(p) != off.get(p))
    timeouts = sorted(p for p in on if on[p] == ["timeout"] or off.get(p) == ["timeout"])
    built = sum(1 for v in on.values() if len(v) == 2)
    print(f"{len(on)} schemas ({built} built, {len(on) - built} refused both ways), {len(differ)} differ, "
          f"{len(timeouts)} timed out")
    for p in differ:
        print(f"  {p}: {on.get(p)} vs {off.get(p)}")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
