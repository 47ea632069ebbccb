"""The `grammask` command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Optional

from .grammar import BUILTINS, Grammar, GrammarError


def load_grammar(spec: str) -> Grammar:
    """A built-in name (json, python, go) or the path of a .lark file."""
    if spec in BUILTINS:
        return Grammar.builtin(spec)
    path = Path(spec)
    if path.suffix == ".lark" or path.exists():
        return Grammar.from_file(path)
    raise GrammarError(f"unknown grammar {spec!r}: give a built-in name ({', '.join(BUILTINS)}) or a .lark file")


def _validate(args) -> int:
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
                   help=f"built-in grammar ({', '.join(BUILTINS)}) or a .lark file")
    v.add_argument("files", nargs="+", metavar="FILE", help="files to check ('-' reads standard input)")
    v.add_argument("-q", "--quiet", action="store_true", help="print nothing for valid files")
    v.set_defaults(run=_validate)
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
