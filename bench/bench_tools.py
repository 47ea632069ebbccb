"""Tool calls with the default model: how many replies hold a well-formed call whose arguments validate
against the tool's schema, with grammask and without, on 30 prompts over 3 tools; and the mask fill
time, median and p99, in free text and inside a call.

    PYTHONPATH=. .venv/bin/python -m bench.bench_tools [--tokens 40] [--prompts 30]

The replies go through the same prompt (the tools listed in a system message, Hermes style: the default
model's chat template ignores `tools`) and greedy decoding. Without grammask the reply is parsed as it
comes; with grammask the reply must be one call (tool_choice "required": `text=False`, `required=True`,
`parallel=False`), the text the grammar forces written without the model (`jump_forward=True`); a reply
the token budget cuts before its call is complete counts as a failure. A call counts when its name is one of the tools and
`jsonschema` (the outside oracle) accepts its arguments under that tool's parameters.

Fill times come from feeding real tokenized replies (free text with Hermes calls between) to a matcher
and timing each fill_next_token_bitmask, each step labelled by where the text stands: in free text, or
between a <tool_call> and its </tool_call>.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import grammask as gm
from grammask.decoding.tools import tool_call_spec

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "minLength": 1},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["city"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "calculator", "description": "Evaluate an arithmetic expression.",
        "parameters": {"type": "object", "properties": {
            "expression": {"type": "string", "minLength": 1},
            "precision": {"type": "integer", "minimum": 0, "maximum": 10}},
            "required": ["expression"], "additionalProperties": False}}},
    {"type": "function", "function": {
        "name": "web_search", "description": "Search the web.",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "minLength": 1},
            "max_results": {"type": "integer", "minimum": 1, "maximum": 20}},
            "required": ["query"], "additionalProperties": False}}},
]

PROMPTS = [
    "What's the weather like in Paris right now?", "Is it raining in Tokyo today?",
    "Tell me the temperature in Berlin in celsius.", "How hot is it in Phoenix, in fahrenheit?",
    "Do I need an umbrella in London today?", "What's the weather in Sydney?",
    "Check the current weather in Toronto.", "How cold is it in Oslo?",
    "Weather report for Cairo, please.", "Is it sunny in Madrid?",
    "What is 17 times 23?", "Compute 1024 divided by 7 to 3 decimal places.",
    "What's the square root of 2 plus 3?", "Calculate (45 + 55) * 12.", "How much is 15% of 240?",
    "Add 3.5 and 4.25.", "What is 2 to the power of 16?", "Subtract 999 from 12345.",
    "What's 81 divided by 9?", "Multiply 6.02 by 1000.",
    "Search the web for the latest Python release.", "Find news about the Mars rover.",
    "Look up the population of Canada.", "Search for a good banana bread recipe.",
    "Who won the last football world cup? Search for it.", "Find the opening hours of the Louvre.",
    "Search for reviews of the Framework laptop.", "Look up who wrote 'Dune'.",
    "Find five articles about transformer models.", "Search for cheap flights from Boston to Denver.",
]


def valid_call(call, validators) -> bool:
    check = validators.get(call.name)
    return check is not None and isinstance(call.arguments, dict) and check.is_valid(call.arguments)


def run_model(n_prompts: int, tokens: int) -> dict:
    from jsonschema import Draft202012Validator

    validators = {t["function"]["name"]: Draft202012Validator(t["function"]["parameters"]) for t in TOOLS}
    model, tok = gm.load_model()
    grammar = gm.Grammar.from_structural_tag(tool_call_spec(TOOLS, "hermes", required=True, text=False,
                                                            parallel=False))
    results = {"without": [], "with": []}
    right_tool = {"without": 0, "with": 0}
    seconds = {"without": 0.0, "with": 0.0}
    for i, prompt in enumerate(PROMPTS[:n_prompts]):
        for mode in ("without", "with"):
            t0 = time.perf_counter()
            reply = gm.generate(model, tok, prompt, grammar if mode == "with" else None, tools=TOOLS,
                                max_new_tokens=tokens, jump_forward=mode == "with")
            seconds[mode] += time.perf_counter() - t0
            ok = any(valid_call(c, validators) for c in reply.calls)
            results[mode].append(ok)
            # PROMPTS come in groups of ten per tool, in TOOLS order
            expected = TOOLS[i // 10]["function"]["name"]
            right_tool[mode] += any(valid_call(c, validators) and c.name == expected for c in reply.calls)
            print(f"[{i:2d} {mode:7s}] {'ok ' if ok else 'no '} {reply.text[:110]!r}", flush=True)
    return {"results": results, "seconds": seconds, "right_tool": right_tool}


REPLIES = [
    "Sure! Let me look that up for you.\n<tool_call>\n{\"name\": \"get_weather\", \"arguments\": "
    "{\"city\": \"Paris\", \"unit\": \"celsius\"}}\n</tool_call>\nI'll report back once I have the result.",
    "I think the best approach is to compute it step by step. First 17 * 20 = 340, then 17 * 3 = 51. "
    "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"17*23\", \"precision\": 2}}\n"
    "</tool_call> and then <tool_call>{\"name\": \"web_search\", \"arguments\": {\"query\": \"multiplication "
    "tricks for two digit numbers\", \"max_results\": 5}}</tool_call> Done: the tags <tool and </tool_call> "
    "appear here as text, and a long paragraph follows. " + "Free text keeps going with words. " * 20,
]


def fill_times(family: str, rounds: int) -> dict:
    """Per-step fill times (microseconds) over the REPLIES, in free text and inside a call."""
    import numpy as np

    from bench.workload import load_tokenizer

    tok = load_tokenizer(family)
    info = gm.TokenizerInfo.from_huggingface(tok)
    t0 = time.perf_counter()
    grammar = gm.Grammar.from_structural_tag(tool_call_spec(TOOLS, "hermes"))
    t1 = time.perf_counter()
    compiled = gm.compile(grammar, info, cache_dir=None)
    print(f"build {family:8s} grammar (tables cached on disk after the first run) {t1 - t0:.2f} s, "
          f"token tables {time.perf_counter() - t1:.2f} s")
    m = compiled.matcher()
    bm = gm.allocate_token_bitmask(1, info.vocab_size)
    where = {"free text": [], "in a call": []}
    for _ in range(rounds):
        for text in REPLIES:
            ids = tok.encode(text, add_special_tokens=False)
            m.reset()
            done = ""
            for t in ids:
                inside = done.rfind("<tool_call>") > done.rfind("</tool_call>")
                t0 = time.perf_counter_ns()
                m.fill_next_token_bitmask(bm)
                where["in a call" if inside else "free text"].append((time.perf_counter_ns() - t0) / 1000)
                assert m.accept_token(t), (text, done)
                done += tok.decode([t])
    return {k: (statistics.median(v), float(np.percentile(v, 99)), len(v)) for k, v in where.items()}


def long_text_fills(family: str) -> tuple[float, float]:
    """Median fill (microseconds) over the first and the last 300 tokens of 20,000 characters of free
    text full of near-miss triggers: the trigger search must not make fills grow with the text."""
    import numpy as np

    from bench.workload import load_tokenizer

    tok = load_tokenizer(family)
    info = gm.TokenizerInfo.from_huggingface(tok)
    compiled = gm.compile(gm.Grammar.from_structural_tag(tool_call_spec(TOOLS, "hermes")), info)
    m = compiled.matcher()
    bm = gm.allocate_token_bitmask(1, info.vocab_size)
    ids = tok.encode("Words, and <tool_cal near misses <tool_call without its bracket. " * 310,
                     add_special_tokens=False)
    times = []
    for t in ids:
        t0 = time.perf_counter_ns()
        m.fill_next_token_bitmask(bm)
        times.append((time.perf_counter_ns() - t0) / 1000)
        assert m.accept_token(t)
    return float(np.median(times[:300])), float(np.median(times[-300:]))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=40, help="max new tokens per reply")
    ap.add_argument("--prompts", type=int, default=30)
    ap.add_argument("--fill-rounds", type=int, default=20)
    ap.add_argument("--no-model", action="store_true", help="fill times only")
    args = ap.parse_args(argv)
    for family in ("smollm2", "mistral"):
        for where, (p50, p99, n) in fill_times(family, args.fill_rounds).items():
            print(f"fill {family:8s} {where:10s} p50 {p50:7.1f} us  p99 {p99:7.1f} us  ({n} fills)")
        first, last = long_text_fills(family)
        print(f"fill {family:8s} 20,000 characters of free text: median {first:.1f} us over the first 300 "
              f"tokens, {last:.1f} us over the last 300")
    if args.no_model:
        return 0
    out = run_model(args.prompts, args.tokens)
    for mode in ("without", "with"):
        r = out["results"][mode]
        print(f"{mode:7s} grammask: {sum(r)}/{len(r)} replies with a valid call "
              f"({out['right_tool'][mode]} calling the tool the prompt asks for; "
              f"{out['seconds'][mode]:.0f} s of generation)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
