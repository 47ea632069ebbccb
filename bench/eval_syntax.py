"""Syntax errors with and without grammask: the seed paper's (SynCode's) experiment with the default model.

SmolLM2-135M-Instruct, greedy decoding, the same prompts three ways: unconstrained, constrained, and
constrained with budget-aware closing (`token_budget=max_new_tokens`).

- Python: the HumanEval problems of the first half, the prompt without its trailing newline (as the
  bigcode harness strips it: a prompt that ends in "\\n" splits the tokens "\\n   " + " return" the model
  knows, and it answers with a blank line instead of a body) fed to the model as is and to the matcher
  as `prefix`; the completion cut at the bigcode harness's HumanEval stop sequences (PY_STOPS);
  checked with `ast.parse(prompt + completion)`.
- Go: MBGP prompts spread over the whole set, prefix = prompt; the completion cut at MultiPL-E's Go stop
  sequences (GO_STOPS); checked with `gofmt -e`.
- JSON: JSON-answer prompts of our own through the chat template, with a system turn asking for one
  compact JSON document and nothing else; no stop sequence: the whole output checked with `json.loads`.

Stop sequences: one rule for every mode, the harnesses' own. The completion ends just before the first
occurrence of any of the language's stop sequences, wherever it is: the same function of the decoded
text with a grammar or without one (`cut_at_stop`), used to stop the batched rows, the timing runs
(StopAtCut) and to cut each output before its check. So under a grammar too, `\\n#` at the start of a
line inside an unfinished block, or `\\ndef` inside a string, ends the completion there, and the
output is judged as cut.

The three ways of a prompt are rows of one continuously batched greedy decoder (bench/greedy.py: the
prompt prefilled once, a row leaves the batch when it ends and the next prompt's rows take its place);
tokens/s is measured apart, one way at a time, with generate() and a batch of one.

    python -m bench.eval_syntax                     # everything (under 20 min on the 2-core machine)
    python -m bench.eval_syntax --languages json --limit 5 --max-new-tokens 64
    python -m bench.eval_syntax --max-new-tokens 128 go=320   # one budget for all, another for Go

Writes bench/results/eval_syntax.md (table, the outputs cut by the budget, one line per output),
eval_syntax.jsonl (every output) and eval_syntax.png.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

import grammask as gm
from grammask.grammar.grammar import PYTHON_VERSIONS
from bench import python_oracle
from bench.greedy import Row, greedy_rows
from bench.workload import CORPORA

# The standard harness stop sequences, the same with or without a grammar. Python: the bigcode evaluation
# harness's HumanEval stop words (bigcode_eval/tasks/humaneval.py; Codex's five plus "\n@", the closing
# fence and StarCoder's file separator, which SmolLM2's decode drops as a special token). Go: MultiPL-E's
# Go stop tokens (dataset_builder/humaneval_to_go.py, also bigcode's multiple-go). JSON: none, the whole
# output (only a stop token or the budget ends it).
PY_STOPS = ("\nclass", "\ndef", "\n#", "\n@", "\nprint", "\nif", "\n```", "<file_sep>")
GO_STOPS = ("\nfunc", "struct", "\n// ")
JSON_STOPS = ()
STOPS = {"python": PY_STOPS, "go": GO_STOPS, "json": JSON_STOPS}
MODES = ["unconstrained", "constrained", "closing"]
TIMING_TOKENS = 48  # the budget of the tokens/s runs
LANGUAGES = ["python", "go", "json"]
DEFAULT_LIMITS = {"python": 82, "go": 64, "json": 36}
DEFAULT_BUDGETS = {"python": 256, "go": 256, "json": 256}

# The system turn of every JSON prompt (instead of the template's default one), the same in every mode.
JSON_SYSTEM = "You answer with one compact JSON document and nothing else."
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
    input_ids: list                  # the model's input
    prefix: str                      # text the completion continues (fed to the grammar); "" for JSON
    stops: tuple                     # stop sequences (see cut_at_stop), the same in every mode
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
    decode_seconds: float = 0.0      # timing runs: from the first generated token to the last
    steps: int = 0                   # timing runs: generated tokens
    ended: str = ""                  # "eos" | "stop" (its cut rule) | "budget"
    repeating: bool = False          # cut by the budget in the middle of a repetition (see repeating_tail)
    processor_seconds: float = 0.0   # time in the logits processor (grammar mask, closing)


# -- checks ----------------------------------------------------------------------------------------------

check_python = python_oracle.cpython_error


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

def cut_at_stop(completion: str, stops) -> Optional[str]:
    """The completion up to the earliest occurrence of any stop sequence (the harnesses' rule: bigcode's
    _stop_at_stop_token), or None while none has occurred. A function of the text alone: no grammar, no
    mode."""
    hits = [i for i in (completion.find(s) for s in stops) if i >= 0]
    return completion[:min(hits)] if hits else None


def stop_rule(tok, stops) -> Callable[[list], bool]:
    """Generated ids -> has the completion reached a stop sequence? For the batched rows and StopAtCut."""
    return lambda ids: cut_at_stop(tok.decode(ids, skip_special_tokens=True), stops) is not None


def repeating_tail(text: str, tail: int = 96, share: float = 0.9) -> bool:
    """Does the text end in a repetition? With runs of whitespace as one space and every digit as 0
    (so deepening indentation and counting still repeat), at least `share` of the 16-character windows
    of its last `tail` characters occur earlier in it. A rough test, for the report only: it tells a
    greedy loop from a long answer the budget cut (a new word in the tail makes ~16 new windows)."""
    t = re.sub(r"\d", "0", re.sub(r"\s+", " ", text))
    if len(t) < tail + 16:
        return False
    windows = range(len(t) - tail, len(t) - 15)
    seen = sum(t.find(t[i:i + 16], 0, i + 15) >= 0 for i in windows)  # an earlier start
    return seen >= share * len(windows)


class StopAtCut:
    """A StoppingCriteria (batch of one, for the timing runs): stop once the completion reaches one of the
    task's stop sequences (stop_rule, as the batched rows)."""

    def __init__(self, tokenizer, start: int, stops):
        self.start, self.stopped = start, stop_rule(tokenizer, stops)
        self.stamps: list[float] = []  # when each token was there (after the first: decoding speed)

    def __call__(self, input_ids, scores, **kwargs):
        self.stamps.append(time.perf_counter())
        return torch.tensor([self.stopped(input_ids[0, self.start:].tolist())], device=input_ids.device)


# -- tasks -------------------------------------------------------------------------------------------------

def python_tasks(tok, limit: int, check=check_python) -> list[Task]:
    path = CORPORA / "python" / "humaneval" / "HumanEval-first-half.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    out = []
    for r in rows[:limit]:
        # Without its trailing newline (see the module's docstring); the model writes that newline.
        p = r["prompt"].rstrip()
        out.append(Task("python", r["task_id"], tok(p)["input_ids"], p, PY_STOPS, check))
    return out


def go_tasks(tok, limit: int) -> list[Task]:
    path = CORPORA / "go" / "mbgp" / "mbgp_release_v1.1.jsonl"
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    step = max(1, len(rows) // max(1, limit))  # spread the subset over the whole set
    out = []
    for r in rows[::step][:limit]:
        p = r["prompt"]
        out.append(Task("go", r["task_id"], tok(p)["input_ids"], p, GO_STOPS, check_go))
    return out


def json_input_ids(tok, prompt: str) -> list[int]:
    """The chat template: JSON_SYSTEM as the system turn, the prompt as the user's."""
    messages = [{"role": "system", "content": JSON_SYSTEM}, {"role": "user", "content": prompt}]
    text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return tok(text, add_special_tokens=False)["input_ids"]


def json_tasks(tok, limit: int) -> list[Task]:
    return [Task("json", f"json/{i}", json_input_ids(tok, p), "", JSON_STOPS, check_json)
            for i, p in enumerate(JSON_PROMPTS[:limit])]


# -- running -----------------------------------------------------------------------------------------------

CLOSING_KEEP = 1  # verified tokens per step greedy decoding needs (see processor())


def processor(compiled, tok, task: Task, mode: str, budget: int, eos: list[int], keep: int = CLOSING_KEEP):
    """The mode's logits processor (None: unconstrained). Closing checks the allowed tokens in logit order
    until `keep` of them are verified closable; greedy takes the first verified one whatever `keep` is
    (a token with a higher logit was refused or is the one), so 1 gives the same output as the library's
    default 8 (which sampling needs) with fewer completion searches."""
    if mode == "unconstrained":
        return None
    closing = mode == "closing"
    return gm.GrammarLogitsProcessor(compiled, tok, prefix=task.prefix, stop_token_ids=eos,
                                     token_budget=budget if closing else None,
                                     **({"closing_keep": keep} if closing else {}))


def outcome(tok, task: Task, mode: str, gen: list[int], ended: str, seconds: float, eos: list[int]) -> Outcome:
    """Judge one output: cut it at its stop sequences (whatever the mode), check prefix + completion with
    the language's own parser."""
    if ended == "eos":
        gen = gen[: min(gen.index(t) for t in eos if t in gen)]
    completion = tok.decode(gen, skip_special_tokens=True)
    cut = cut_at_stop(completion, task.stops)
    rest = completion if cut is None else cut
    if ended != "eos":
        ended = "budget" if cut is None else "stop"
    hit_budget = ended == "budget"
    text = task.prefix + rest
    if task.language == "json":
        text = text.strip()
    return Outcome(task.name, mode, len(gen), seconds, hit_budget, task.check(text), text, not rest.strip(),
                   ended=ended, repeating=hit_budget and repeating_tail(rest))


def run_language(model, tok, tasks: list[Task], modes: list[str], budget: int, compiled, eos: list[int],
                 max_rows: int, started: float, keep: int = CLOSING_KEEP) -> tuple[list[Outcome], dict]:
    """Every task, every mode: one greedy row each, continuously batched."""
    rows, meta = [], []
    for k, task in enumerate(tasks):
        for mode in modes:
            rows.append(Row(k, budget, processor(compiled, tok, task, mode, budget, eos, keep),
                            stop_rule(tok, task.stops)))
            meta.append((task, mode))
    results: list = [None] * len(rows)
    done = [0]

    def report(k: int) -> None:
        outs = []
        for i, r in enumerate(rows):
            if r.prompt == k:
                task, mode = meta[i]
                results[i] = outcome(tok, task, mode, r.tokens, r.reason, r.seconds, eos)
                results[i].processor_seconds = r.processor_seconds
                outs.append(results[i])
        done[0] += 1
        print(f"[{tasks[k].language} {done[0]}/{len(tasks)} {time.perf_counter() - started:5.0f}s] {tasks[k].name}: "
              + "; ".join(f"{o.mode} {o.tokens} tok{' (budget)' if o.hit_budget else ''} "
                          f"{'ok' if o.error is None else 'ERROR ' + o.error}" for o in outs),
              file=sys.stderr, flush=True)

    stats = greedy_rows(model, [t.input_ids for t in tasks], rows, eos, max_rows=max_rows, on_prompt_done=report)
    return results, stats


def time_task(model, tok, task: Task, mode: str, budget: int, compiled, eos: list[int],
              keep: int = CLOSING_KEEP) -> Outcome:
    """One output with generate(), batch of one, for tokens/s: decoding speed from the first generated
    token to the last (prefill and set-up left out)."""
    ids = torch.tensor([task.input_ids], dtype=torch.long)
    proc = processor(compiled, tok, task, mode, budget, eos, keep)
    stop = StopAtCut(tok, ids.shape[1], task.stops)
    t0 = time.perf_counter()
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=budget, do_sample=False,
                             logits_processor=[proc] if proc is not None else [], stopping_criteria=[stop],
                             pad_token_id=eos[0], eos_token_id=eos)
    seconds = time.perf_counter() - t0
    gen = out[0, ids.shape[1]:].tolist()
    o = outcome(tok, task, mode, gen, "eos" if any(t in eos for t in gen) else "", seconds, eos)
    o.decode_seconds = stop.stamps[-1] - stop.stamps[0] if len(stop.stamps) > 1 else 0.0
    o.steps = len(stop.stamps)
    return o


def summarize(results: dict, speed: dict, modes: list[str]) -> tuple[str, list]:
    lines = ["| language | outputs | mode | syntax errors | error rate | reduction vs unconstrained | "
             "errors in outputs that ended | tokens/s | processor ms/token | hit budget (repeating) | "
             "empty completions |", "|---|---|---|---|---|---|---|---|---|---|---|"]
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
            ended_errors = sum(o.error is not None and not o.hit_budget for o in outs)
            timed = [o for o in speed.get(lang, {}).get(mode, []) if o.steps > 1]
            tps = (f"{sum(o.steps - 1 for o in timed) / sum(o.decode_seconds for o in timed):.1f}"
                   if timed else "–")
            proc = ("–" if mode == "unconstrained" else
                    f"{sum(o.processor_seconds for o in outs) * 1000 / max(1, sum(o.tokens for o in outs)):.2f}")
            if mode == "unconstrained":
                base = rate
            red = "–" if mode == "unconstrained" or base is None else (
                "–" if base == 0 else f"{(base - rate) / base * 100:.1f}%")
            lines.append(f"| {lang} | {n} | {mode} | {errors} | {rate * 100:.1f}% | {red} | "
                         f"{ended_errors} of {n - hits} | {tps} | {proc} | {hits} ({sum(o.repeating for o in outs)}) | "
                         f"{sum(o.empty for o in outs)} |")
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


def parse_budgets(values: list[str], languages: list[str]) -> dict:
    """`N` (every language) and/or `LANG=N` items, later ones win; the rest keep their defaults."""
    budgets = dict(DEFAULT_BUDGETS)
    for v in values:
        lang, _, n = v.rpartition("=")
        if lang and lang not in LANGUAGES:
            raise ValueError(f"unknown language {lang!r} in {v!r} (one of {', '.join(LANGUAGES)})")
        try:
            n = int(n)
        except ValueError:
            raise ValueError(f"not a token count: {v!r} (N or LANG=N)") from None
        if n < 1:
            raise ValueError(f"the budget must be positive: {v!r}")
        for l in ([lang] if lang else LANGUAGES):
            budgets[l] = n
    return {l: budgets[l] for l in languages}


def cut_example(o: Outcome, chars: int = 160) -> str:
    """A Markdown table line: an output cut by the budget, with its last characters."""
    tail = o.text[-chars:].replace("\\", "\\\\").replace("`", "'").replace("\n", "\\n").replace("|", "/")
    return (f"| {o.task} | {o.mode} | {'yes' if o.repeating else ''} | {'ok' if o.error is None else 'error'} | "
            f"`…{tail}` |")


def extension(extended: dict, budget: Optional[int]) -> str:
    """The --extend section: the constrained outputs the budget cut, decoded again with a larger one."""
    if not extended:
        return ""
    lines = [f"## The constrained outputs the budget cut, with a budget of {budget} tokens\n",
             "| language | cut at | decoded again | ended by themselves | of which parse | cut again "
             "(repeating) | ended: tokens |", "|---|---|---|---|---|---|---|"]
    for lang, (old, outs) in extended.items():
        ended = [o for o in outs if not o.hit_budget]
        lines.append(f"| {lang} | {old} | {len(outs)} | {len(ended)} | {sum(o.error is None for o in ended)} | "
                     f"{len(outs) - len(ended)} ({sum(o.repeating for o in outs)}) | "
                     f"{', '.join(f'{o.task} {o.tokens}' for o in ended) or '–'} |")
    return "\n".join(lines) + "\n\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.eval_syntax", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--languages", nargs="+", choices=LANGUAGES, default=LANGUAGES)
    ap.add_argument("--python-version", default=python_oracle.RUNNING, choices=PYTHON_VERSIONS,
                    help="the Python grammar and judge (default: this interpreter's version, judged by its "
                    "ast.parse; a newer one is judged as bench/python_oracle.py says)")
    ap.add_argument("--limit", type=int, help="prompts per language (default: " +
                    ", ".join(f"{l} {n}" for l, n in DEFAULT_LIMITS.items()) + "; Go prompts are spread over "
                    "the whole MBGP set)")
    ap.add_argument("--max-new-tokens", nargs="+", default=[], metavar="N|LANG=N",
                    help="token budget per output, for every language (N) or one (LANG=N) (default: " +
                    ", ".join(f"{l}={n}" for l, n in DEFAULT_BUDGETS.items()) + ")")
    ap.add_argument("--modes", nargs="+", choices=MODES, default=MODES, help="default: all three")
    ap.add_argument("--out", type=Path, default=Path("bench/results"), help="folder of the results (default "
                    "bench/results)")
    ap.add_argument("--rows", type=int, default=48,
                    help="rows decoded at once (continuous batching; default 48)")
    ap.add_argument("--timing", type=int, default=2, metavar="N",
                    help=f"tasks per language (those with the longest outputs) rerun one mode at a time with "
                         f"generate(), budget {TIMING_TOKENS}, for tokens/s (default 2; 0: none)")
    ap.add_argument("--extend", type=int, metavar="N",
                    help="then decode the constrained outputs the budget cut again with a budget of N tokens: "
                         "do they end with more room? (off by default)")
    ap.add_argument("--closing-keep", type=int, default=CLOSING_KEEP, metavar="K",
                    help=f"closing: verified tokens per step (GrammarLogitsProcessor's closing_keep; default "
                         f"{CLOSING_KEEP}, all greedy needs: the output is the same with the library's default 8)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (default 1: on a small shared machine more threads run slower)")
    args = ap.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be positive")
    if args.rows < 1:
        ap.error("--rows must be positive")
    if args.closing_keep < 1:
        ap.error("--closing-keep must be positive")
    if args.extend is not None and args.extend < 1:
        ap.error("--extend must be positive")
    try:
        budgets = parse_budgets(args.max_new_tokens, args.languages)
    except ValueError as exc:
        ap.error(f"--max-new-tokens: {exc}")
    started = time.perf_counter()
    print("loading the default model...", file=sys.stderr)
    torch.set_num_threads(args.threads)
    model, tok = gm.load_model()
    eos = [int(tok.eos_token_id)]
    info = gm.TokenizerInfo.from_huggingface(tok, stop_token_ids=eos)
    results: dict = {}
    makers = {"python": lambda tok, n: python_tasks(tok, n, python_oracle.python_error(args.python_version)),
              "go": go_tasks, "json": json_tasks}
    log: list[Outcome] = []
    speed: dict = {}
    batches: dict = {}
    extended: dict = {}
    for lang in args.languages:
        # Python: the grammar of the version its judge reads
        name = f"python{args.python_version}" if lang == "python" else lang
        compiled = gm.compile(gm.Grammar.builtin(name), info)
        tasks = makers[lang](tok, args.limit or DEFAULT_LIMITS[lang])
        outs, stats = run_language(model, tok, tasks, args.modes, budgets[lang], compiled, eos, args.rows, started,
                                   args.closing_keep)
        batches[lang] = stats
        results[lang] = {m: [o for o in outs if o.mode == m] for m in args.modes}
        log += outs
        # Tokens/s each way: the tasks with the longest outputs again, one mode at a time (batch of one),
        # interleaved, after a warm-up.
        if args.extend and "constrained" in args.modes:
            cut = [k for k, t in enumerate(tasks) if results[lang]["constrained"][k].hit_budget]
            if cut:
                longer, _ = run_language(model, tok, [tasks[k] for k in cut], ["constrained"], args.extend, compiled,
                                         eos, args.rows, started, args.closing_keep)
                extended[lang] = (budgets[lang], longer)
        speed[lang] = {m: [] for m in args.modes}
        if args.timing:
            time_task(model, tok, tasks[0], args.modes[-1], 4, compiled, eos, args.closing_keep)
        n = len(args.modes)
        longest = sorted(range(len(tasks)), key=lambda k: -min(o.tokens for o in outs[k * n:(k + 1) * n]))
        for task in [tasks[k] for k in sorted(longest[: args.timing])]:
            for mode in args.modes:
                speed[lang][mode].append(time_task(model, tok, task, mode, min(budgets[lang], TIMING_TOKENS),
                                                   compiled, eos, args.closing_keep))
            print(f"[{lang} timing {time.perf_counter() - started:5.0f}s] {task.name}: " + "; ".join(
                f"{m} {speed[lang][m][-1].tokens} tok in {speed[lang][m][-1].seconds:.1f} s" for m in args.modes),
                file=sys.stderr, flush=True)
    total = time.perf_counter() - started
    table, rows = summarize(results, speed, args.modes)
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m bench.eval_syntax" + "".join(" " + a for a in (argv if argv is not None else sys.argv[1:]))
    batch_lines = "\n".join(
        f"| {l} | {budgets[l]} | {len(results[l][args.modes[0]])} | {s['prefill_tokens']} | {s['tokens']} | "
        f"{s['steps']} | {s['seconds']:.0f} | {s['tokens'] / s['seconds']:.1f} |" for l, s in batches.items())
    examples = [line for o in log if o.mode != "unconstrained" and o.hit_budget for line in [cut_example(o)]]
    details = "\n".join(f"| {o.task} | {o.mode} | {o.tokens} | {o.ended} | {'yes' if o.repeating else ''} | "
                        f"{(o.error or 'ok').replace('|', '/')} |" for o in log)
    (args.out / "eval_syntax.md").write_text(
        "# Syntax errors with and without grammask (SmolLM2-135M-Instruct, greedy, CPU)\n\n"
        f"`{command}`; closing: token_budget=max_new_tokens, closing_keep={args.closing_keep}; max_new_tokens "
        + ", ".join(f"{l} {b}" for l, b in budgets.items()) +
        f"; total {total:.0f} s. Stop sequences, the same in every mode (the completion ends before the first "
        "occurrence of any): " + "; ".join(f"{l} {', '.join(repr(x) for x in STOPS[l]) or 'none'}" for l in budgets)
        + f".\n\n{table}\n\n"
        "\"errors in outputs that ended\": errors among the outputs the budget did not cut (a stop token or "
        "the cut rule ended them). \"repeating\": cut by the budget in the middle of a repetition (a rough "
        "test: 90% of the 16-character windows of the last 96 characters occur earlier, digits and "
        "whitespace runs alike). tokens/s: generate(), one "
        f"way at a time, batch of one, on the {args.timing} prompts per language with the longest outputs, "
        f"{TIMING_TOKENS} tokens at most. processor ms/token: time in the logits processor per generated token, "
        "over all outputs of the batched run.\n\n"
        "Decoding (continuous batching, all modes together):\n\n"
        "| language | budget | prompts | prefill tokens | generated tokens | steps | seconds | tokens/s |\n"
        "|---|---|---|---|---|---|---|---|\n" + batch_lines + "\n\n"
        + extension(extended, args.extend) +
        "## Constrained outputs cut by the budget (their last characters)\n\n"
        "| output | mode | repeating | check | end |\n|---|---|---|---|---|\n" + "\n".join(examples) + "\n\n"
        "## Every output\n\n"
        "| output | mode | tokens | ended | repeating | check |\n|---|---|---|---|---|---|\n" + details + "\n",
        encoding="utf-8")
    (args.out / "eval_syntax.jsonl").write_text(
        "".join(json.dumps(o.__dict__) + "\n" for o in log), encoding="utf-8")
    chart(rows, args.out / "eval_syntax.png")
    print(table)
    print(f"total {total:.0f} s; wrote {args.out / 'eval_syntax.md'}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
