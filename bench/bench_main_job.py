"""The main job's decoding defaults, measured: `grammask generate PROMPT` (json_object, budget-aware
closing, 256 tokens) with the default model, for several repetition penalties on the same prompts.

Per penalty: how many outputs ended by themselves (a stop token before the budget forced the end), how
many end in a repetition (eval_syntax.repeating_tail), how many name what the prompt asked about, and
whether every output is one valid JSON object.

    python -m bench.bench_main_job [--penalties 1.0 1.1 1.2] [--max-new-tokens 256]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import grammask as gm
from bench.eval_syntax import repeating_tail

PROMPTS = {  # prompt -> words of which a reply about it names at least one
    "Describe a cat as JSON": ("cat", "kitten", "feline", "meow", "whisker", "fur"),
    "Give me a recipe for pancakes as JSON": ("pancake", "flour", "egg", "milk"),
    "List three planets with their diameters as JSON": ("earth", "mars", "jupiter", "venus", "saturn", "mercury"),
    "Describe a dog as JSON": ("dog", "breed", "bark", "puppy"),
    "A user profile for a software engineer named Ana, as JSON": ("ana", "engineer", "software"),
    "The weather forecast for Paris tomorrow as JSON": ("paris", "weather", "temperature", "forecast"),
    "Describe a book you like, in JSON": ("title", "author", "book"),
    "Three tips for learning to code, as JSON": ("code", "coding", "learn", "practice", "program"),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--penalties", type=float, nargs="+", default=[1.0, 1.1, 1.2])
    ap.add_argument("--max-new-tokens", type=int, default=256)
    args = ap.parse_args()
    model, tok = gm.load_model()
    grammar = gm.Grammar.builtin("json_object")
    lines = [f"## grammask generate: json_object, closing, budget {args.max_new_tokens}, greedy, SmolLM2-135M\n",
             "| penalty | ended by themselves | repeating at the end | about the prompt | valid objects | "
             "tokens (median) | seconds |", "|---|---|---|---|---|---|---|"]
    log = []
    for penalty in args.penalties:
        ended = repeating = about = valid = 0
        lengths = []
        started = time.perf_counter()
        for prompt, words in PROMPTS.items():
            text = gm.generate(model, tok, prompt, grammar, max_new_tokens=args.max_new_tokens, closing=True,
                               repetition_penalty=penalty)
            n = len(tok.encode(text, add_special_tokens=False))
            lengths.append(n)
            try:
                value = json.loads(text)
            except ValueError:
                value = None
            valid += isinstance(value, dict)
            ended += n < args.max_new_tokens - 8  # the closing forces its completion only in the last steps
            repeating += repeating_tail(text)
            about += any(w in text.lower() for w in words)
            log.append(dict(penalty=penalty, prompt=prompt, tokens=n, text=text))
            print(json.dumps(log[-1]), flush=True)
        lengths.sort()
        lines.append(f"| {penalty} | {ended}/{len(PROMPTS)} | {repeating}/{len(PROMPTS)} | {about}/{len(PROMPTS)} | "
                     f"{valid}/{len(PROMPTS)} | {lengths[len(lengths) // 2]} | {time.perf_counter() - started:.0f} |")
    report = "\n".join(lines)
    print(report)
    out = Path(__file__).resolve().parent / "results"
    out.mkdir(exist_ok=True)
    (out / "main_job.md").write_text(report + "\n", encoding="utf-8")
    (out / "main_job.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log), encoding="utf-8")


if __name__ == "__main__":
    main()
