"""Syntax errors with and without grammask: the seed paper's (SynCode's) experiment with the default model.

SmolLM2-135M-Instruct, greedy decoding, the same prompts three ways: unconstrained, constrained, and
constrained with budget-aware closing (`token_budget=max_new_tokens`).

- Python: HumanEval (first half), the prompt fed to the model as is and to the matcher as `prefix`; the
  completion cut at the usual stop sequences; checked with `ast.parse(prompt + completion)`.
- Go: MBGP prompts (a subset), prefix = prompt; the completion cut after the function's closing `}` line;
  checked with `gofmt -e`.
- JSON: JSON-answer prompts through the chat template; checked with `json.loads`.

Stop sequences: unconstrained, generation stops at the first occurrence (the usual practice). Under the
grammar a stop sequence acts like a stop token: it counts only where the text before it is complete, so
`\\n#` inside an unfinished block or `\\ndef ` inside a string does not cut the program in half.

    python -m bench.eval_syntax                     # everything (under 20 min on the 2-core machine)
    python -m bench.eval_syntax --languages json --limit 5 --max-new-tokens 64

Writes bench/results/eval_syntax.md (table + one line per output) and eval_syntax.png.
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

import grammask as gm
from bench.workload import CORPORA
from grammask.decoding.generation import chat_input_ids

PY_STOPS = ["\ndef ", "\nclass ", "\nif __name__", "\nprint(", "\n#"]
MODES = ["unconstrained", "constrained", "closing"]
TIMING_TOKENS = 48  # the budget of the tokens/s runs
LANGUAGES = ["python", "go", "json"]
DEFAULT_LIMITS = {"python": 82, "go": 16, "json": 24}

JSON_PROMPTS = [
    "Describe a cat as a JSON object.",
    "Give a JSON array of five European capitals with their population.",
    "Return a JSON object describing a book: title, author, year, genres.",
    "Write a JSON configuration for a web server with host, port and routes.",
    "List three programming languages as JSON objects with name and year.",
    'Reply with a JSON object {"answer": <number>}: what is 12 times 7?',
    'Return JSON {"name": string, "age": number} for Alice, 30 years old.',
    "Give the weather forecast for Paris for the next three days as JSON.",
    "Represent a shopping cart with three items, quantities and prices as JSON.",
    "Write a JSON object for a user profile with nested address and a list of hobbies.",
    "Output a JSON array of the first ten prime numbers.",
    "Describe the solar system's four inner planets as a JSON array of objects.",
    "Return a JSON object mapping three colors to their hex codes.",
    "Give a recipe for pancakes as JSON with ingredients and steps.",
    "Write a JSON-LD style object describing a restaurant.",
    "Return a JSON object with a boolean field 'ok' and a null field 'error'.",
    "Create a JSON schema-like description of a person object.",
    "Give a JSON object describing a car: make, model, year, electric (true/false).",
    "Return a JSON list of three movies with title, director and rating.",
    "Answer as JSON: is the Earth flat? Use the key \"answer\" and a short \"reason\".",
    "Produce a JSON object that counts the words in the sentence 'the cat sat on the mat'.",
    "Write a package.json for a small Node.js project.",
    "Return a JSON object describing an HTTP request with method, url, headers and body.",
    "Give a JSON array of three dates in ISO format with an event name each.",
    "Describe a chess opening as JSON with name and a list of moves.",
    "Return the matrix [[1,2],[3,4]] and its transpose as a JSON object.",
    "Write a JSON log entry with timestamp, level, message and a nested context object.",
    "Return a JSON object describing a university course with a list of students.",
    "Give three jokes as a JSON array of objects with setup and punchline.",
    "Return a JSON object with unicode text: a greeting in French, German and Japanese.",
    "Describe a network of three servers and their connections as JSON.",
    "Output a JSON object with the numbers pi and e to five decimals and Avogadro's number.",
    "Give a JSON todo list with three tasks, each with id, title, done.",
    "Return a JSON object describing a bank transaction.",
    "Write a GeoJSON point feature for the Eiffel Tower.",
    "Summarize the plot of Romeo and Juliet as JSON with characters and events.",
]


@dataclass
class Task:
    language: str
    name: str
    model_input: torch.Tensor
    prefix: str                      # text the completion continues (fed to the grammar); "" for JSON
    cut: Callable                    # (completion, grammar or None) -> the completion to check, or None
    check: Callable                  # full text -> error message or None


@dataclass
class Outcome:
    task: str
    mode: str
    tokens: int
    seconds: float
    hit_budget: bool
    error: Optional[str]
    text: str = field(repr=False, default="")
    empty: bool = False              # nothing but whitespace left after the cut
    decode_seconds: float = 0.0      # the batch's time from its first generated token to its last
    steps: int = 0                   # the batch's generated tokens


# -- checks ----------------------------------------------------------------------------------------------

def check_python(text: str) -> Optional[str]:
    try:
        ast.parse(text)
    except SyntaxError as exc:
        return f"{exc.msg} (line {exc.lineno})"
    except ValueError as exc:
        return str(exc)
    return None


def check_go(text: str) -> Optional[str]:
    r = subprocess.run(["gofmt", "-e", "/dev/stdin"], input=text.encode("utf-8"), capture_output=True,
                       timeout=60)
    if r.returncode == 0:
        return None
    return (r.stderr.decode("utf-8", "replace").strip().splitlines() or ["gofmt failed"])[0]


def check_json(text: str) -> Optional[str]:
    def reject(name):
        raise ValueError(f"not JSON: {name}")

    try:
        json.loads(text, parse_constant=reject)
    except ValueError as exc:
        return str(exc).splitlines()[0]
    return None


# -- where a completion ends -------------------------------------------------------------------------------

def complete(grammar, text: str) -> bool:
    return grammar.validate(text).ok


def python_cut(prompt: str):
    def cut(completion: str, grammar) -> Optional[str]:
        """The completion up to the first stop sequence (under a grammar: the first one the text before
        which is complete); None while no stop sequence has been reached."""
        hits = sorted(i for s in PY_STOPS for i in _find_all(completion, s))
        for i in hits:
            if grammar is None or complete(grammar, prompt + completion[:i]):
                return completion[:i]
        return None
    return cut


def go_cut(prompt: str):
    def cut(completion: str, grammar) -> Optional[str]:
        """The completion up to and including the first line that is `}` (the function's closing brace;
        under a grammar, the first such line after which the file is complete)."""
        start = 0
        lines = completion.split("\n")
        for line in lines[:-1]:  # a line is a line once its newline came
            end = start + len(line)
            if line.rstrip() == "}" and (grammar is None or complete(grammar, prompt + completion[:end])):
                return completion[:end] + "\n"
            start = end + 1
        return None
    return cut


def json_cut(prompt: str):
    return lambda completion, grammar: None  # the whole output; only EOS or the budget end it


def _find_all(text: str, sub: str):
    i = text.find(sub)
    while i >= 0:
        yield i
        i = text.find(sub, i + 1)


class StopAtCut:
    """A StoppingCriteria: stop a row once the task's cut rule finds the end of its completion (rows may
    have different grammars: None for the unconstrained one). `done[row]` stays True once set."""

    def __init__(self, tokenizer, start: int, cut, grammars: list):
        self.tokenizer, self.start, self.cut, self.grammars = tokenizer, start, cut, grammars
        self.done = [False] * len(grammars)
        self.stamps: list[float] = []  # when each token was there (after the first: decoding speed)

    def __call__(self, input_ids, scores, **kwargs):
        self.stamps.append(time.perf_counter())
        for i, row in enumerate(input_ids[:, self.start:].tolist()):
            if not self.done[i]:
                text = self.tokenizer.decode(row, skip_special_tokens=True)
                self.done[i] = self.cut(text, self.grammars[i]) is not None
        return torch.tensor(self.done, dtype=torch.bool, device=input_ids.device)


class PerRow:
    """One logits processor per row of the batch (None: unconstrained). A row its stopping criterion
    finished is padded by generate(); its processor is not called any more."""

    def __init__(self, processors: list, stop: StopAtCut):
        self.processors, self.stop = processors, stop

    def __call__(self, input_ids, scores):
        for i, p in enumerate(self.processors):
            if p is not None and not self.stop.done[i]:
                scores[i:i + 1] = p(input_ids[i:i + 1], scores[i:i + 1])
        return scores


# -- tasks -------------------------------------------------------------------------------------------------

def python_tasks(tok, limit: int) -> list[Task]:
    path = CORPORA / "python" / "humaneval" / "HumanEval-first-half.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for r in rows[:limit]:
        p = r["prompt"]
        out.append(Task("python", r["task_id"], tok(p, return_tensors="pt")["input_ids"], p, python_cut(p),
                        check_python))
    return out


def go_tasks(tok, limit: int) -> list[Task]:
    path = CORPORA / "go" / "mbgp" / "mbgp_release_v1.1.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    step = max(1, len(rows) // max(1, limit))  # spread the subset over the whole set
    out = []
    for r in rows[::step][:limit]:
        p = r["prompt"]
        out.append(Task("go", r["task_id"], tok(p, return_tensors="pt")["input_ids"], p, go_cut(p), check_go))
    return out


def json_tasks(tok, limit: int) -> list[Task]:
    return [Task("json", f"json/{i}", chat_input_ids(tok, p), "", json_cut(p), check_json)
            for i, p in enumerate(JSON_PROMPTS[:limit])]


# -- running -----------------------------------------------------------------------------------------------

def run_task(model, tok, task: Task, modes: list[str], max_new_tokens: int, compiled,
             eos: list[int]) -> list[Outcome]:
    """Generate the task's completion once per mode, the modes as rows of one greedy batch (the same
    prompt in every row, so no padding; each row has its own processor and stop rule)."""
    rows = len(modes)
    ids = task.model_input.repeat(rows, 1)
    processors = [None if mode == "unconstrained" else gm.GrammarLogitsProcessor(
        compiled, tok, prefix=task.prefix, stop_token_ids=eos,
        token_budget=max_new_tokens if mode == "closing" else None) for mode in modes]
    grammars = [None if p is None else compiled.grammar for p in processors]
    stop = StopAtCut(tok, ids.shape[1], task.cut, grammars)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                             do_sample=False, logits_processor=[PerRow(processors, stop)],
                             stopping_criteria=[stop], pad_token_id=eos[0], eos_token_id=eos)
    seconds = time.perf_counter() - t0
    # Decoding time: from the first generated token to the last (prefill and set-up left out).
    decode = stop.stamps[-1] - stop.stamps[0] if len(stop.stamps) > 1 else 0.0
    outcomes = []
    for i, mode in enumerate(modes):
        gen = out[i, ids.shape[1]:].tolist()
        stopped = any(t in eos for t in gen)
        if stopped:
            gen = gen[: min(gen.index(t) for t in eos if t in gen)]
        completion = tok.decode(gen, skip_special_tokens=True)
        cut = task.cut(completion, grammars[i])
        hit_budget = not stopped and cut is None and len(gen) >= max_new_tokens
        text = task.prefix + (completion if cut is None else cut)
        if task.language == "json":
            text = text.strip()
        rest = completion if cut is None else cut
        outcomes.append(Outcome(task.name, mode, len(gen), seconds, hit_budget, task.check(text), text,
                                not rest.strip(), decode, len(stop.stamps)))
    return outcomes


def summarize(results: dict, speed: dict, modes: list[str]) -> tuple[str, list]:
    lines = ["| language | outputs | mode | syntax errors | error rate | reduction vs unconstrained | tokens/s | "
             "hit budget | empty completions |", "|---|---|---|---|---|---|---|---|---|"]
    rows = []
    for lang, by_mode in results.items():
        base = None
        for mode in modes:
            outs = by_mode.get(mode, [])
            if not outs:
                continue
            n = len(outs)
            errors = sum(o.error is not None for o in outs)
            rate = errors / n
            hits = sum(o.hit_budget for o in outs)
            timed = [o for o in speed.get(lang, {}).get(mode, []) if o.steps > 1]
            tps = (f"{sum(o.steps - 1 for o in timed) / sum(o.decode_seconds for o in timed):.1f}"
                   if timed else "–")
            if mode == "unconstrained":
                base = rate
            red = "–" if mode == "unconstrained" or base is None else (
                "–" if base == 0 else f"{(base - rate) / base * 100:.1f}%")
            lines.append(f"| {lang} | {n} | {mode} | {errors} | {rate * 100:.1f}% | {red} | "
                         f"{tps} | {hits} | {sum(o.empty for o in outs)} |")
            rows.append((lang, mode, rate))
    return "\n".join(lines), rows


def chart(rows, path: Path) -> None:
    try:
        import matplotlib
    except ImportError:
        print("matplotlib not installed (pip install -e '.[bench]'): no chart", file=sys.stderr)
        return
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    langs = list(dict.fromkeys(r[0] for r in rows))
    modes = list(dict.fromkeys(r[1] for r in rows))
    rate = {(l, m): r for l, m, r in rows}
    fig, ax = plt.subplots(figsize=(7, 4))
    w = 0.8 / len(modes)
    for k, mode in enumerate(modes):
        xs = [i + k * w for i in range(len(langs))]
        ys = [rate.get((l, mode), 0) * 100 for l in langs]
        ax.bar(xs, ys, w, label=mode)
        for x, y in zip(xs, ys):
            ax.text(x, y + 1, f"{y:.0f}%", ha="center", fontsize=8)
    ax.set_xticks([i + w * (len(modes) - 1) / 2 for i in range(len(langs))], langs)
    ax.set_ylabel("syntax-error rate (%)")
    ax.set_title("SmolLM2-135M-Instruct, greedy: syntax errors with and without grammask")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--languages", nargs="+", choices=LANGUAGES, default=LANGUAGES)
    ap.add_argument("--limit", type=int, help="prompts per language (default: python 82, go 16, json 24)")
    ap.add_argument("--max-new-tokens", type=int, default=96, help="token budget per output (default 96)")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=MODES)
    ap.add_argument("--out", type=Path, default=Path("bench/results"))
    ap.add_argument("--timing", type=int, default=2, metavar="N",
                    help="tasks per language (those with the longest outputs) rerun one mode at a time, budget 48, for "
                         "tokens/s (default 2)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a small shared machine more threads run slower)")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be positive")
    if args.max_new_tokens < 1:
        ap.error("--max-new-tokens must be positive")
    started = time.perf_counter()
    print("loading the default model...", file=sys.stderr)
    torch.set_num_threads(args.threads)
    model, tok = gm.load_model()
    eos = [int(tok.eos_token_id)]
    info = gm.TokenizerInfo.from_huggingface(tok, stop_token_ids=eos)
    results: dict = {}
    makers = {"python": python_tasks, "go": go_tasks, "json": json_tasks}
    log = []
    speed: dict = {}
    for lang in args.languages:
        compiled = gm.compile(gm.Grammar.builtin(lang), info)
        tasks = makers[lang](tok, args.limit or DEFAULT_LIMITS[lang])
        results[lang] = {m: [] for m in args.modes}
        run_task(model, tok, tasks[0], args.modes, 4, compiled, eos)  # warm-up, not counted
        for i, task in enumerate(tasks, 1):
            outs = run_task(model, tok, task, args.modes, args.max_new_tokens, compiled, eos)
            for o in outs:
                results[lang][o.mode].append(o)
                log.append(o)
            print(f"[{lang} {i}/{len(tasks)} {time.perf_counter() - started:5.0f}s] {task.name}: " + "; ".join(
                f"{o.mode} {o.tokens} tok{' (budget)' if o.hit_budget else ''} "
                f"{'ok' if o.error is None else 'ERROR ' + o.error}" for o in outs), file=sys.stderr, flush=True)
        # Tokens/s each way: the tasks with the longest outputs again, one mode at a time (batch of one),
        # interleaved; decoding speed from the first generated token to the last.
        speed[lang] = {m: [] for m in args.modes}
        longest = sorted(range(len(tasks)), key=lambda k: -min(results[lang][m][k].tokens for m in args.modes))
        for task in [tasks[k] for k in sorted(longest[: args.timing])]:
            for mode in args.modes:
                [o] = run_task(model, tok, task, [mode], min(args.max_new_tokens, TIMING_TOKENS), compiled, eos)
                speed[lang][mode].append(o)
            print(f"[{lang} timing {time.perf_counter() - started:5.0f}s] {task.name}: " + "; ".join(
                f"{m} {speed[lang][m][-1].tokens} tok in {speed[lang][m][-1].seconds:.1f} s" for m in args.modes),
                file=sys.stderr, flush=True)
    table, rows = summarize(results, speed, args.modes)
    args.out.mkdir(parents=True, exist_ok=True)
    details = "\n".join(f"| {o.task} | {o.mode} | {o.tokens} | {'yes' if o.hit_budget else ''} | "
                        f"{(o.error or 'ok').replace('|', '/')} |" for o in log)
    (args.out / "eval_syntax.md").write_text(
        "# Syntax errors with and without grammask (SmolLM2-135M-Instruct, greedy, CPU)\n\n"
        f"`python -m bench.eval_syntax {' '.join(argv if argv is not None else sys.argv[1:])}`; "
        f"max_new_tokens={args.max_new_tokens}; total {time.perf_counter() - started:.0f} s.\n\n{table}\n\n"
        "| output | mode | tokens | hit budget | check |\n|---|---|---|---|---|\n" + details + "\n",
        encoding="utf-8")
    (args.out / "eval_syntax.jsonl").write_text(
        "".join(json.dumps(o.__dict__) + "\n" for o in log), encoding="utf-8")
    chart(rows, args.out / "eval_syntax.png")
    print(table)
    print(f"total {time.perf_counter() - started:.0f} s; wrote {args.out / 'eval_syntax.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
