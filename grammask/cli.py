"""The `grammask` command line."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from pathlib import Path
from typing import Optional


def _validate_command_starting() -> bool:
    """This process is `grammask validate` (the console script or `python -m grammask`), numpy not loaded yet."""
    main = sys.modules.get("__main__")
    as_module = getattr(getattr(main, "__spec__", None), "name", None) == "grammask.__main__"
    as_script = bool(sys.argv) and Path(sys.argv[0]).stem == "grammask"
    return (as_module or as_script) and sys.argv[1:2] == ["validate"] and "numpy" not in sys.modules


# Validating multiplies no matrices: numpy's BLAS need not start a thread per core as numpy loads (a fifth
# of `grammask validate`'s time on 2 cores; more with more). Only in that command's own process, before
# numpy loads, and never over the user's own setting.
if _validate_command_starting():
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from .grammar import BUILTINS, Grammar, GrammarError  # noqa: E402 (numpy loads here)

# generate's default: measured with the default model (see the README's main job); 1 turns it off.
DEFAULT_REPETITION_PENALTY = 1.1


def load_grammar(spec: str) -> Grammar:
    """A built-in name (json, python, go), the path of a .lark file, or of a .json file read as a JSON Schema."""
    if spec in BUILTINS:
        return Grammar.builtin(spec)
    path = Path(spec)
    if path.suffix == ".json":
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise GrammarError(f"cannot read JSON Schema file {path}: {exc}") from None
        return Grammar.from_json_schema(text)
    if path.suffix == ".lark" or path.exists():
        return Grammar.from_file(path)
    raise GrammarError(f"unknown grammar {spec!r}: give a built-in name ({', '.join(BUILTINS)}) or a .lark file")


def _print_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """A warning as a compiler prints one: a line on stderr, no Python source."""
    text = str(message)
    print(text if text.startswith("grammask: ") else f"grammask: warning: {text}", file=sys.stderr)


def _validate(args) -> int:
    # Imports neither torch nor transformers, and reads the grammar's tables from the disk cache once
    # built (grammar/table_cache.py): a syntax check's start-up, measured in bench/bench_validate.py.
    with warnings.catch_warnings():
        warnings.showwarning = _print_warning
        grammar = load_grammar(args.grammar)
        grammar.tables  # a broken grammar fails before any file is read
    status = 0
    for name in args.files:
        try:
            data = sys.stdin.buffer.read() if name == "-" else Path(name).read_bytes()
        except OSError as exc:
            print(f"{name}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            status = 1
            continue
        result = grammar.validate(data)
        if result.ok:
            if not args.quiet:
                print(f"{name}: ok", file=sys.stderr)
            continue
        status = 1
        kind = "incomplete" if result.prefix_ok else "error"
        print(f"{name}:{result.line}:{result.column}: {kind}: {result.message}", file=sys.stderr)
    return status


def _generate(args) -> int:
    import time

    from .decoding.generation import generate, load_model

    grammar = None if args.grammar == "none" else load_grammar(args.grammar)
    if grammar is not None:
        grammar.tables  # a broken grammar fails before the model loads
    close = args.close and grammar is not None  # without a grammar there is nothing to complete
    started = time.perf_counter()
    print(f"grammask: loading {args.model or 'the default model (SmolLM2-135M-Instruct)'}...", file=sys.stderr)
    try:
        model, tokenizer = load_model(args.model)
    except (FileNotFoundError, OSError, ValueError) as exc:
        print(f"grammask: cannot load the model: {exc}", file=sys.stderr)
        return 2
    print(f"grammask: loaded in {time.perf_counter() - started:.1f} s; generating "
          f"(grammar: {args.grammar}, at most {args.max_new_tokens} tokens"
          f"{', closing within them' if close else ''})...", file=sys.stderr)
    started = time.perf_counter()
    text = generate(model, tokenizer, args.prompt, grammar, max_new_tokens=args.max_new_tokens,
                    do_sample=args.sample, temperature=args.temperature, top_p=args.top_p, seed=args.seed,
                    prefix=args.prefix, chat=not args.no_chat, closing=close,
                    repetition_penalty=args.repetition_penalty)
    print(text)
    print(f"grammask: done in {time.perf_counter() - started:.1f} s", file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="grammask",
        description="Exact grammar-constrained decoding: validate texts against a grammar, "
                    "generate with a Hugging Face model under one, benchmark the engine.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    v = sub.add_parser(
        "validate", help="check files against a grammar",
        description="Check each FILE against the grammar with the same tables the token masks use. "
                    "Exit status 0 when every file is valid, 1 otherwise; each problem is printed on "
                    "stderr as FILE:LINE:COLUMN: message.")
    v.add_argument("-g", "--grammar", required=True, metavar="GRAMMAR",
                   help=f"built-in grammar ({', '.join(BUILTINS)}), a .lark file or a JSON Schema .json file")
    v.add_argument("files", nargs="+", metavar="FILE", help="files to check ('-' reads standard input)")
    v.add_argument("-q", "--quiet", action="store_true", help="print nothing for valid files")
    v.set_defaults(run=_validate)
    g = sub.add_parser(
        "generate", help="generate text with a model, constrained to a grammar",
        description="Generate a reply to PROMPT with a local Hugging Face model (default: the embedded "
                    "SmolLM2-135M-Instruct) under the grammar. Only the generated text goes to stdout; "
                    "progress goes to stderr. By default the output is a JSON object, complete within the "
                    "token budget.")
    g.add_argument("prompt", metavar="PROMPT", help="the user message (the chat template is applied)")
    g.add_argument("-g", "--grammar", default="json_object", metavar="GRAMMAR",
                   help=f"built-in grammar ({', '.join(BUILTINS)}), a .lark file, a JSON Schema .json file, "
                        "or 'none' (default: json_object, a JSON object as in chat APIs' JSON mode)")
    g.add_argument("--model", metavar="DIR", help="local Hugging Face model directory (default: SmolLM2-135M)")
    g.add_argument("--max-new-tokens", type=int, default=256, metavar="N", help="token budget (default: 256)")
    g.add_argument("--close", action=argparse.BooleanOptionalAction, default=True,
                   help="budget-aware closing (default: on): keep a complete text reachable within "
                        "--max-new-tokens, so an output cut by the budget is still valid; --no-close turns it off")
    g.add_argument("--repetition-penalty", type=float, default=DEFAULT_REPETITION_PENALTY, metavar="P",
                   help="divide the scores of the content tokens already written by P (the grammar's punctuation, "
                        "quotes, whitespace and keywords exempt); keeps a small model from looping (default: "
                        f"{DEFAULT_REPETITION_PENALTY}; 1 turns it off)")
    g.add_argument("--sample", action="store_true", help="sample instead of greedy decoding")
    g.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (default: 0.7)")
    g.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (default: 0.95)")
    g.add_argument("--seed", type=int, help="random seed for sampling")
    g.add_argument("--prefix", default="", help="text the output continues (fed to the grammar first)")
    g.add_argument("--no-chat", action="store_true", help="feed the prompt as is, without the chat template")
    g.set_defaults(run=_generate)
    return parser


def main(argv: Optional[list[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.run(args)
    except GrammarError as exc:
        print(f"grammask: grammar error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
