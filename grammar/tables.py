"""A grammar's engine form: terminals, the combined lexer DFA and the LALR(1) tables."""

from __future__ import annotations

import dataclasses
import json
import re
import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..fsm.lexer import (DEFAULT_MAX_LEXER_STATES, LexerDFA, LexerTooLarge, RegexError, TerminalSpec, build_lexer,
                         never_produced)
from .errors import GrammarError
from .fstrings import FStringSpec, extend_terminals
from .lark_frontend import ParseTables, _definition_line, load_lark, parse_tables, terminal_specs

# Python-style indentation, switched on by a comment line in the grammar:
#   // grammask: indent NL=_NL NEWLINE=_NEWLINE INDENT=_INDENT DEDENT=_DEDENT
# NL is a lexer terminal for newlines plus the next line's indentation, e.g. /(\r?\n[\t \f]*)+/;
# NEWLINE, INDENT and DEDENT are %declare'd terminals the parser sees, made as CPython's tokenizer makes
# them. Inside brackets ( [ { newlines are plain whitespace. An optional CONT=TERMINAL names the
# backslash continuation (not %ignore'd, used by no rule): a text may not end right after one.
_INDENT_DIRECTIVE = re.compile(r"^\s*//\s*grammask:\s*indent\b(.*)$", re.M)
_INDENT_ROLES = ("NL", "NEWLINE", "INDENT", "DEDENT")
# Go-style automatic semicolons:
#   // grammask: semicolons SEMICOLON=";" NEWLINE=_NL,LINE_COMMENT AFTER=IDENT,INT,"return",")","}"
# After a terminal listed in AFTER, a NEWLINE terminal (newline whitespace, or a comment that acts as
# one) or the end of the text feeds SEMICOLON to the parser; other NEWLINE terminals are whitespace.
# Terminals are given by name or as quoted literals.
_SEMI_DIRECTIVE = re.compile(r"^\s*//\s*grammask:\s*semicolons\b(.*)$", re.M)
# Terminal intersection: a lexeme of NAME must also match each of the listed regexes (JSON strings,
# Python `re` syntax, as TerminalSpec.regex), or be a decimal multiple of m / 10**e ({"multipleOf": [m, e]},
# no exponent). JSON Schema grammars use it for two value sets that overlap without one containing the
# other (their common part becomes its own terminal) and for multipleOf.
#   // grammask: intersect NAME ["regex", {"multipleOf": [m, e]}, ...]
_INTERSECT_DIRECTIVE = re.compile(r"^\s*//\s*grammask:\s*intersect\b(.*)$", re.M)
# Terminals lexed although no rule uses them (Lark would leave them out): their text is then never taken
# for another terminal, so no rule accepts it. JSON Schema grammars keep the keys that must not occur.
#   // grammask: keep NAME ...
_KEEP_DIRECTIVE = re.compile(r"^\s*//\s*grammask:\s*keep\b(.*)$", re.M)
# Python f-strings lexed in modes, their replacement fields parsed by the grammar (see fstrings.py for the
# terminals the grammar declares and uses):
#   // grammask: fstrings
_FSTRINGS_DIRECTIVE = re.compile(r"^\s*//\s*grammask:\s*fstrings\s*$", re.M)
# Lexer modes chosen by the terminals themselves (structural tags: free text, then a tool call's JSON, each
# lexed apart so their terminals never meet): each terminal's mode and the mode the next lexeme starts in
# (-1: the same). Every terminal of the grammar is listed; mode 0 is the start.
#   // grammask: lexmodes {"NAME": [mode, restart], ...}
_LEXMODES_DIRECTIVE = re.compile(r"^\s*//\s*grammask:\s*lexmodes\b(.*)$", re.M)
_BRACKETS = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


@dataclass(frozen=True)
class IndenterSpec:
    nl: int
    newline: int
    indent: int
    dedent: int
    cont: Optional[int] = None


@dataclass(frozen=True)
class SemicolonSpec:
    semicolon: int
    newlines: tuple[int, ...]
    after: tuple[int, ...]


@dataclass
class GrammarTables:
    terminals: list[TerminalSpec]
    display: list[str]          # how messages show each terminal; index n_terminals is end of input
    lexer: LexerDFA
    parser: ParseTables
    indenter: Optional[IndenterSpec] = None
    term_bracket: np.ndarray = None   # (n_terminals,) int8: +1 opening, -1 closing bracket (indenter only)
    lex_nl: np.ndarray = None         # (n_lex_states,) uint8: inside an NL lexeme (indenter only)
    lex_init: int = 0                 # lexer state at the start of a text
    semicolons: Optional[SemicolonSpec] = None
    term_flags: np.ndarray = None     # (n_terminals,) uint8: 1 newline-like, 2 a semicolon may follow
    fstrings: Optional[FStringSpec] = None
    conflicts: tuple = ()             # shift/reduce conflicts Lark resolved: (line, column, what)
    mode_restart: np.ndarray = None   # (n_terminals,) int32 lexmodes directive: the next lexeme's mode, -1 same

    @property
    def n_terminals(self) -> int:
        return len(self.terminals)


def _indent_roles(text: str, source: Optional[str]) -> tuple[Optional[dict], int]:
    m = _INDENT_DIRECTIVE.search(text)
    if not m:
        return None, 0
    line = text.count("\n", 0, m.start()) + 1
    roles = dict(re.findall(r"(\w+)=(\w+)", m.group(1)))
    missing = [r for r in _INDENT_ROLES if r not in roles]
    if missing:
        raise GrammarError(f"indent directive needs {', '.join(r + '=TERMINAL' for r in missing)}", line, 1, source)
    return roles, line


def _indenter(roles: Optional[dict], line: int, terminals: list[TerminalSpec],
              source: Optional[str]) -> Optional[IndenterSpec]:
    if roles is None:
        return None
    ids = {t.name: i for i, t in enumerate(terminals)}
    for role in _INDENT_ROLES:
        if roles[role] not in ids:
            raise GrammarError(f"indent directive: terminal {roles[role]} ({role}) is not used by the grammar",
                               line, 1, source)
    cont = None
    if "CONT" in roles:
        if roles["CONT"] not in ids:
            raise GrammarError(f"indent directive: terminal {roles['CONT']} (CONT) is not defined", line, 1, source)
        cont = ids[roles["CONT"]]
    spec = IndenterSpec(*(ids[roles[r]] for r in _INDENT_ROLES), cont)
    for role, t in (("NL", spec.nl), ("CONT", spec.cont)):
        if t is not None and (terminals[t].regex is None or terminals[t].ignored):
            raise GrammarError(f"indent directive: {role}={terminals[t].name} must be a lexer terminal that is "
                               "not %ignore'd", line, 1, source)
    return spec


def _intersectable(item) -> bool:
    if isinstance(item, str):
        return True
    free = item.get("freeText") if isinstance(item, dict) and len(item) == 1 else None
    if free is not None:  # [which, stop, ...]: see fsm/free_text.py
        return (isinstance(free, list) and len(free) >= 2 and type(free[0]) is int and free[0] >= -1
                and all(isinstance(x, str) and x for x in free[1:]))
    mult = item.get("multipleOf") if isinstance(item, dict) and len(item) == 1 else None
    return isinstance(mult, list) and len(mult) == 2 and all(type(x) is int for x in mult) and mult[0] > 0 <= mult[1]


def _intersections(text: str, terminals: list[TerminalSpec], source: Optional[str]) -> list[TerminalSpec]:
    by_name = {t.name: i for i, t in enumerate(terminals)}
    out = list(terminals)
    for m in _INTERSECT_DIRECTIVE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        parts = m.group(1).split(None, 1)
        try:
            regexes = json.loads(parts[1]) if len(parts) == 2 else None
        except ValueError:
            regexes = None
        if not isinstance(regexes, list) or not regexes or not all(_intersectable(r) for r in regexes):
            raise GrammarError('intersect directive: expected NAME ["regex" or {"multipleOf": [m, e]}, ...]',
                               line, 1, source)
        regexes = [r if isinstance(r, str) else (k := next(iter(r)), *r[k]) for r in regexes]
        i = by_name.get(parts[0])
        if i is None:
            continue  # a terminal no rule uses (Lark leaves it out): nothing to lex
        if out[i].regex is None:
            raise GrammarError(f"intersect directive: {parts[0]} has no pattern", line, 1, source)
        out[i] = dataclasses.replace(out[i], also=out[i].also + tuple(regexes))
    return out


def _semicolon_roles(text: str, source: Optional[str]) -> tuple[Optional[dict], int]:
    m = _SEMI_DIRECTIVE.search(text)
    if not m:
        return None, 0
    line = text.count("\n", 0, m.start()) + 1
    roles = {k: re.findall(r'"(?:[^"\\]|\\.)*"|\w+', v) for k, v in
             re.findall(r'(\w+)=((?:"(?:[^"\\]|\\.)*"|\w+)(?:,(?:"(?:[^"\\]|\\.)*"|\w+))*)', m.group(1))}
    missing = [r for r in ("SEMICOLON", "NEWLINE", "AFTER") if r not in roles]
    if missing:
        raise GrammarError(f"semicolons directive needs {', '.join(r + '=...' for r in missing)}", line, 1, source)
    return roles, line


def _semicolons(roles: Optional[dict], line: int, terminals: list[TerminalSpec], display: list[str],
                source: Optional[str]) -> Optional[SemicolonSpec]:
    if roles is None:
        return None
    by_name = {t.name: i for i, t in enumerate(terminals)}
    by_literal = {d: i for i, d in enumerate(display) if d[:1] == "'"}

    def resolve(item: str) -> int:
        if item.startswith('"'):
            key = repr(item[1:-1].encode().decode("unicode_escape"))
            if key in by_literal:
                return by_literal[key]
        elif item in by_name:
            return by_name[item]
        raise GrammarError(f"semicolons directive: {item} is not a terminal of the grammar", line, 1, source)

    spec = SemicolonSpec(resolve(roles["SEMICOLON"][0]), tuple(resolve(x) for x in roles["NEWLINE"]),
                         tuple(resolve(x) for x in roles["AFTER"]))
    for t in spec.newlines:
        if terminals[t].regex is None or terminals[t].ignored:
            raise GrammarError(f"semicolons directive: NEWLINE terminal {terminals[t].name} must be a lexer "
                               "terminal that is not %ignore'd", line, 1, source)
    return spec


def _lexmodes(text: str, terminals: list[TerminalSpec], source: Optional[str]):
    """The lexmodes directive: terminals with their mode set, and each terminal's restart mode."""
    m = _LEXMODES_DIRECTIVE.search(text)
    if not m:
        return terminals, None
    line = text.count("\n", 0, m.start()) + 1
    try:
        table = json.loads(m.group(1))
    except ValueError:
        table = None
    if not isinstance(table, dict) or not all(
            isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v) for v in table.values()):
        raise GrammarError('lexmodes directive: expected {"TERMINAL": [mode, restart], ...}', line, 1, source)
    unlisted = [t.name for t in terminals if t.name not in table]
    if unlisted:
        raise GrammarError(f"lexmodes directive: terminal {unlisted[0]} has no mode", line, 1, source)
    n_modes = 1 + max(mode for mode, _ in table.values())
    if any(mode < 0 or not -1 <= restart < n_modes for mode, restart in table.values()):
        raise GrammarError(f"lexmodes directive: modes must lie in 0..{n_modes - 1} (restart -1: the same)",
                           line, 1, source)
    out = [dataclasses.replace(t, modes=(table[t.name][0],)) for t in terminals]
    restart = np.asarray([table[t.name][1] for t in terminals], dtype=np.int32)
    return out, restart


def build_tables(text: str, start: str, source: Optional[str] = None,
                 max_lexer_states: int = DEFAULT_MAX_LEXER_STATES,
                 build_timeout: Optional[float] = 30.0, warn_conflicts: bool = True) -> GrammarTables:
    roles, directive_line = _indent_roles(text, source)
    semi_roles, semi_line = _semicolon_roles(text, source)
    if roles and semi_roles:
        raise GrammarError("a grammar takes either the indent or the semicolons directive", semi_line, 1, source)
    keep = [roles[r] for r in ("NL", "CONT") if r in roles] if roles else ()
    if semi_roles:
        keep = [x for x in semi_roles["NEWLINE"] if not x.startswith('"')]
    kept = [(text.count("\n", 0, m.start()) + 1, name) for m in _KEEP_DIRECTIVE.finditer(text) for name in m.group(1).split()]
    lark = load_lark(text, start, source, keep_terminals=[*keep, *(name for _, name in kept)], warn_conflicts=warn_conflicts)
    terminals, display = terminal_specs(lark)
    names = {t.name for t in terminals}
    for line, name in kept:
        if name not in names:
            raise GrammarError(f"keep directive: {name} is not a terminal of the grammar", line, 1, source)
    terminals = _intersections(text, terminals, source)
    terminals, mode_restart = _lexmodes(text, terminals, source)
    fstrings = None
    made_by_matcher = set()
    fmatch = _FSTRINGS_DIRECTIVE.search(text)
    if fmatch and mode_restart is not None:
        raise GrammarError("a grammar takes either the fstrings or the lexmodes directive", source=source)
    if fmatch:
        n_before = len(terminals)
        try:
            terminals, fstrings = extend_terminals(terminals, display)
        except KeyError as exc:
            raise GrammarError(f"fstrings directive: the grammar lacks {exc.args[0]}",
                               text.count("\n", 0, fmatch.start()) + 1, 1, source) from None
        display = display + [t.name for t in terminals[n_before:]]
        for i, shown in fstrings.display.items():
            display[i] = shown
        made_by_matcher = {fstrings.t_fclose, fstrings.t_spec_open} | {
            i for i in range(n_before, len(terminals)) if terminals[i].regex is None and not terminals[i].mode_regexes}
    indenter = _indenter(roles, directive_line, terminals, source)
    semicolons = _semicolons(semi_roles, semi_line, terminals, display, source)
    made_by_indenter = {indenter.newline, indenter.indent, indenter.dedent} if indenter else set()
    for i, t in enumerate(terminals):
        if t.regex is None and not t.mode_regexes and i not in made_by_indenter | made_by_matcher:
            line, col = _definition_line(text, t.name) if t.name in text else (None, None)
            raise GrammarError(f"terminal {t.name} has no pattern (%declare): grammask makes only the "
                               "NEWLINE/INDENT/DEDENT terminals of an indent directive itself", line, col, source)
    deadline = time.monotonic() + build_timeout if build_timeout else None
    try:
        lexer = build_lexer(terminals, max_lexer_states, deadline)
    except LexerTooLarge as exc:
        raise GrammarError(f"grammar too large: {exc}", source=source) from None
    except RegexError as exc:
        line, col = _definition_line(text, exc.terminal)
        raise GrammarError(str(exc), line, col, source) from None
    hidden = never_produced(lexer, terminals)
    if hidden:
        t = terminals[hidden[0]]
        line, col = _definition_line(text, t.name)
        raise GrammarError(f"terminal {t.name} can never be produced: every string it matches is lexed as "
                           "another terminal (give it a higher priority, e.g. NAME.2, or merge the two)",
                           line, col, source)
    parser = parse_tables(lark, [t.name for t in terminals], text, source)
    term_bracket = np.zeros(len(terminals), dtype=np.int8)
    lex_nl = np.zeros(lexer.n_states, dtype=np.uint8)
    lex_init = 0
    if indenter is not None:
        for i, t in enumerate(terminals):
            if t.is_literal and display[i][1:-1] in _BRACKETS:
                term_bracket[i] = _BRACKETS[display[i][1:-1]]
        for q in range(1, lexer.n_states):
            c = lexer.cset[q]
            lex_nl[q] = c >= 0 and lexer.csets[c] == (indenter.nl,)
        if fstrings is not None:
            term_bracket[fstrings.term_fop != 0] = 0  # the matcher counts these itself
        lex_init = int(lexer.trans[0, ord("\n")])
        if lex_init < 0 or not lex_nl[lex_init]:
            raise GrammarError(f"indent directive: NL={terminals[indenter.nl].name} must match a newline "
                               "followed by indentation", source=source)
    term_flags = np.zeros(len(terminals), dtype=np.uint8)
    if semicolons is not None:
        term_flags[list(semicolons.newlines)] |= 1
        term_flags[list(semicolons.after)] |= 2
    return GrammarTables(terminals, display + ["end of input"], lexer, parser, indenter, term_bracket, lex_nl,
                         lex_init, semicolons, term_flags, fstrings, tuple(lark.grammask_conflicts), mode_restart)
