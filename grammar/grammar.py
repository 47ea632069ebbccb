"""Grammar: a Lark grammar as grammask uses it (built-in, from text or from a file)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Union

from ..fsm.lexer import DEFAULT_MAX_LEXER_STATES
from .errors import GrammarError
from .lark_frontend import relative_imports
from .directives import has_directives
from .postlex import read_postlex
from .tables import GrammarTables
from .versions import select_version

if TYPE_CHECKING:
    from ..decoding.validator import ValidationResult

BUILTIN_DIR = Path(__file__).resolve().parent
# name -> (grammar file, start rule). `json` is RFC 8259 (any value: what a validator must accept);
# `json_object` is the "JSON mode" of chat APIs (an object at the top level: what a user asking a model
# for JSON wants), the same grammar from another start rule.
_BUILTIN_SOURCES = {"json": ("json", "start"), "json_object": ("json", "object"),
                    "python": ("python", "start"), "go": ("go", "start")}
# The versions python.lark describes (its lines marked per version, see versions.py); `python` alone is
# the newest, `python3.12` names one.
PYTHON_VERSIONS = ("3.11", "3.12", "3.13", "3.14")
BUILTINS = (*_BUILTIN_SOURCES, *(f"python{v}" for v in PYTHON_VERSIONS))
# Lark's two LALR lexers, as Lark names them, and grammask's own rule for its built-in grammars: one lexer
# over all terminals, the longest lexeme winning (priority, then string over regex, breaking ties).
LEXERS = ("contextual", "basic", "longest")


class Grammar:
    """A context-free grammar in Lark EBNF. Build with `builtin`, `from_lark` or `from_file`."""

    def __init__(self, text: str, start: str = "start", name: Optional[str] = None, *,
                 max_lexer_states: int = DEFAULT_MAX_LEXER_STATES, build_timeout: Optional[float] = 30.0,
                 source_path: Union[str, os.PathLike, None] = None, lexer: str = "longest", postlex=None):
        """lexer: "contextual" (Lark's default, and from_lark's and from_file's) and "basic" lex as Lark's
        LALR lexers do (the first terminal in Lark's order that matches; "contextual" tries only the terminals
        the parser state at the lexeme's start accepts); "longest", the built-ins' rule, takes the longest
        lexeme among all terminals.
        max_lexer_states and build_timeout (seconds) bound the lexer construction: a grammar past them
        raises GrammarError instead of running away. source_path: the file the text came from; relative
        imports (`%import .module.NAME`) are found beside it, as Lark finds them (else in the current
        directory, as Lark does for a grammar given as text). postlex: a lark.indenter.Indenter, as in
        `Lark(..., postlex=...)` (see postlex.py)."""
        if not isinstance(text, str):
            raise TypeError(f"grammar text must be str, not {type(text).__name__}")
        self.postlex = read_postlex(postlex)
        self.text = text
        self.start = start
        self.name = name or "<grammar>"
        self.max_lexer_states = max_lexer_states
        self.build_timeout = build_timeout
        self.source_path = str(Path(source_path).resolve()) if source_path is not None else None
        if lexer not in LEXERS:
            raise GrammarError(f"lexer={lexer!r}: choose one of {', '.join(map(repr, LEXERS))}")
        self.lexer = lexer
        self.warn_conflicts = True
        # made per request (a JSON Schema, a regex, a structural tag): compile() builds its token tables
        # lazily rather than storing them on disk (see decoding/compiler.py)
        self.per_request = False
        self._tables: Optional[GrammarTables] = None
        self._digest: Optional[tuple] = None  # ((start, text), digest) of the last computation

    @classmethod
    def builtin(cls, name: str, version: Optional[str] = None) -> "Grammar":
        """A built-in grammar: `json` (RFC 8259, any value), `json_object` (an object at the top level,
        for generation), `python` (version "3.11" to "3.14", default the newest; `python3.12` is the same
        as builtin("python", version="3.12")), `go` (1.19)."""
        if name.startswith("python") and name[6:] in PYTHON_VERSIONS:
            if version not in (None, name[6:]):
                raise GrammarError(f"built-in grammar {name!r} is Python {name[6:]}, not {version}")
            name, version = "python", name[6:]
        if name not in _BUILTIN_SOURCES:
            raise GrammarError(f"unknown built-in grammar {name!r}; available: {', '.join(BUILTINS)}")
        file, start = _BUILTIN_SOURCES[name]
        text = (BUILTIN_DIR / f"{file}.lark").read_text(encoding="utf-8")
        if name == "python":
            version = PYTHON_VERSIONS[-1] if version is None else str(version)
            if version not in PYTHON_VERSIONS:
                raise GrammarError(f"no Python {version} grammar; versions: {', '.join(PYTHON_VERSIONS)}")
            text, name = select_version(text, version), f"python{version}"
        elif version is not None:
            raise GrammarError(f"built-in grammar {name!r} has no versions")
        grammar = cls(text, start, name)
        grammar.warn_conflicts = False  # the built-ins document their resolved conflicts in the file
        return grammar

    @classmethod
    def from_lark(cls, text: str, start: str = "start", postlex=None, lexer: Optional[str] = None,
                  **limits) -> "Grammar":
        """A Lark grammar, meaning what `Lark(text, parser="lalr", start=start, lexer=lexer, postlex=postlex)`
        means; postlex: a lark.indenter.Indenter (e.g. PythonIndenter()), enforced as Lark's. lexer: Lark's
        "contextual" (the default) or "basic", or "longest"; a grammar with `// grammask:` directives is a
        grammask grammar and defaults to "longest", the built-ins' rule (docs/directives.md)."""
        g = cls(text, start, lexer=_default_lexer(text, lexer), postlex=postlex, **limits)
        g.tables  # compile now so a broken grammar fails here, with its location
        return g

    @classmethod
    def from_file(cls, path: Union[str, os.PathLike], start: str = "start", postlex=None,
                  lexer: Optional[str] = None, **limits) -> "Grammar":
        """A Lark grammar file, as from_lark reads its text; `%import`s of sibling files are found beside it,
        as Lark finds them."""
        postlex = read_postlex(postlex)  # refused before the file is read
        p = Path(path)
        try:
            text = p.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise GrammarError(f"grammar file not found: {p}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise GrammarError(f"cannot read grammar file {p}: {exc}") from None
        g = cls(text, start, str(p), source_path=p, lexer=_default_lexer(text, lexer), postlex=postlex, **limits)
        g.tables
        return g

    @classmethod
    def from_json_schema(cls, schema, *, compact: bool = False, **limits) -> "Grammar":
        """The JSON texts valid under a JSON Schema (a dict, JSON text, or a Pydantic model class).
        Keywords that cannot be enforced exactly raise GrammarError (see grammar/json_schema/)."""
        from .json_schema import schema_to_lark
        from .json_schema.grammar_text import UNMERGED_NOTE

        text = schema_to_lark(schema, compact=compact, timeout=limits.get("build_timeout", 30.0))
        try:
            g = cls(text, "start", "<json schema>", **limits)
            g.warn_conflicts = False
            g.per_request = True
            g.tables
        except GrammarError as exc:
            # An ambiguous grammar from branches the translator could not merge: say which and why.
            notes = [line[len(UNMERGED_NOTE):] for line in text.splitlines() if line.startswith(UNMERGED_NOTE)]
            if "conflict" in str(exc) and notes:
                raise GrammarError(f"{exc} (JSON Schema: anyOf/oneOf at {'; at '.join(notes)})") from None
            raise
        return g

    @classmethod
    def from_regex(cls, pattern: str, **limits) -> "Grammar":
        """The strings the whole of `pattern` matches (Python syntax; \\d \\w \\s are ASCII, as in ECMA)."""
        from .regex import regex_to_lark

        g = cls(regex_to_lark(pattern), "start", "<regex>", **limits)
        g.per_request = True
        g.tables
        return g

    @classmethod
    def from_structural_tag(cls, spec, **limits) -> "Grammar":
        """Free text in which structures (tool calls) must follow their own grammar once a trigger opens
        them: XGrammar's structural-tag JSON (a dict or its text) or grammask's richer form; see
        grammar/structural_tag.py. The grammar's `structural` attribute holds the parsed specification."""
        from .structural_tag import check_end_strings, compose, parse_spec, uses_user_grammar

        parsed = parse_spec(spec)
        composition = compose(parsed)
        g = cls(composition.text, "start", "<structural tag>", **limits)
        g.warn_conflicts = uses_user_grammar(parsed)
        g.per_request = True
        g.structural = parsed
        check_end_strings(g.tables, composition)
        return g

    @property
    def tables(self) -> GrammarTables:
        """Terminals, lexer DFA and parse tables (on first use: read from the disk cache, or built and
        stored there; see table_cache.py)."""
        if self._tables is None:
            from .table_cache import load_or_build

            self._tables = load_or_build(self)
        return self._tables

    @property
    def digest(self) -> str:
        """Content hash of the grammar: its text and start rule, its lexer kind and postlexer's settings, and
        the files it imports relatively (Lark's own grammars, `%import common.X`, are covered by the Lark
        version in the table cache key)."""
        key = (self.start, self.text, self.lexer, self.postlex)
        if self._digest is None or self._digest[0] != key:  # compile() asks several times: hash once
            h = hashlib.sha256(f"{self.start}\0{self.text}".encode())
            if self.lexer != "longest":  # (longest, no postlexer: the digest the built-ins always had)
                h.update(f"\0lexer={self.lexer}".encode())
            if self.postlex is not None:
                h.update(f"\0postlex\0{self.postlex.key()}".encode())
            for path, content in relative_imports(self.text, self.source_path):
                h.update(f"\0{path}\0".encode() + content)
            self._digest = (key, h.hexdigest())
        return self._digest[1]

    def validate(self, text: Union[str, bytes]) -> "ValidationResult":
        """Check `text` against the grammar: complete (`ok`), a valid prefix (`prefix_ok`), or where it fails."""
        from ..decoding.validator import validate

        return validate(self, text)

    def __repr__(self) -> str:
        return f"Grammar({self.name!r}, start={self.start!r})"


def _default_lexer(text: str, lexer: Optional[str]) -> str:
    if lexer is not None:
        return lexer
    return "longest" if has_directives(text) else "contextual"

