"""A grammar's engine form: terminals, the combined lexer DFA and the LALR(1) tables."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional

import numpy as np

from ..fsm.contextual import contextual_plan
from ..fsm.lexer import (DEFAULT_MAX_LEXER_STATES, LexerDFA, LexerTooLarge, RegexError, TerminalSpec, build_lexer,
                         never_produced)
from .directives import (IndenterSpec, SemicolonSpec, apply_fullmatch, apply_intersections, apply_lexmodes, check_kept,
                         read_directives, resolve_indenter, resolve_semicolons)
from .errors import GrammarError
from .fstrings import FStringSpec, extend_terminals
from .lark_frontend import ParseTables, _definition_line, load_lark, parse_tables, terminal_specs
from .postlex import LarkIndenterSettings, nl_states, resolve_lark_indenter

_BRACKETS = {"(": 1, "[": 1, "{": 1, ")": -1, "]": -1, "}": -1}


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
    conflicts: tuple = ()             # what Lark takes silently, warned about: shift/reduce conflicts it
                                      # resolved, terminals its lexer never produces (line, column, what)
    mode_restart: np.ndarray = None   # (n_terminals,) int32 lexmodes directive or contextual lexer: the next
                                      # lexeme's mode, -1 the same, -2 the parser state's (state_mode)
    state_mode: np.ndarray = None     # (n_lr_states,) int32 contextual lexer: the mode a lexeme begins in
    lex_fallback: bool = False        # Lark's scanner: a lexeme that dies falls back to the complete one it
                                      # passed, and the bytes after it are lexed again (gm_core.h)

    @property
    def n_terminals(self) -> int:
        return len(self.terminals)


def build_tables(text: str, start: str, source: Optional[str] = None,
                 max_lexer_states: int = DEFAULT_MAX_LEXER_STATES,
                 build_timeout: Optional[float] = 30.0, warn_conflicts: bool = True,
                 source_path: Optional[str] = None, lexer_kind: str = "longest",
                 postlex: Optional[LarkIndenterSettings] = None) -> GrammarTables:
    """lexer_kind: "longest", one lexer over all terminals taking the longest lexeme; "basic", Lark's basic
    lexer (fsm/lark_scan.py); "contextual", Lark's default: each lexeme lexed with the terminals the parser
    state at its start accepts (fsm/contextual.py). postlex: a Lark Indenter's settings (grammar/postlex.py),
    instead of an indent directive."""
    directives = read_directives(text, source)
    kept = directives.kept_terminals()
    if postlex is not None:
        line = directives.indent_line or directives.semicolons_line or directives.fstrings_line
        if line:
            raise GrammarError("a grammar with a postlex Indenter takes no indent, semicolons or fstrings "
                               "directive", line, 1, source)
        kept = kept + [postlex.nl_type]  # as Lark keeps the postlexer's always_accept
    lark = load_lark(text, start, source, keep_terminals=kept, warn_conflicts=warn_conflicts,
                     source_path=source_path, build_timeout=build_timeout)
    terminals, display = terminal_specs(lark)
    check_kept(directives, terminals, source)
    terminals = apply_intersections(directives, terminals, source)
    terminals = apply_fullmatch(directives, terminals)
    terminals, mode_restart = apply_lexmodes(directives, terminals, source)
    fstrings = None
    made_by_matcher = set()
    if directives.fstrings_line:
        n_before = len(terminals)
        try:
            terminals, fstrings = extend_terminals(terminals, display, pep701=directives.fstrings_pep701)
        except KeyError as exc:
            raise GrammarError(f"fstrings directive: the grammar lacks {exc.args[0]}",
                               directives.fstrings_line, 1, source) from None
        display = display + [t.name for t in terminals[n_before:]]
        for i, shown in fstrings.display.items():
            display[i] = shown
        made_by_matcher = {fstrings.t_fclose, fstrings.t_spec_open} | {
            i for i in range(n_before, len(terminals)) if terminals[i].regex is None and not terminals[i].mode_regexes}
    indenter = resolve_indenter(directives, terminals, source)
    lark_brackets = None
    if postlex is not None:
        indenter, lark_brackets = resolve_lark_indenter(postlex, terminals, source)
    semicolons = resolve_semicolons(directives, terminals, display, source)
    made_by_indenter = {indenter.newline, indenter.indent, indenter.dedent} if indenter else set()
    for i, t in enumerate(terminals):
        if t.regex is None and not t.mode_regexes and i not in made_by_indenter | made_by_matcher:
            line, col = _definition_line(text, t.name) if t.name in text else (None, None)
            raise GrammarError(f"terminal {t.name} has no pattern (%declare): grammask makes only the "
                               "NEWLINE/INDENT/DEDENT terminals of an indent directive itself", line, col, source)
    deadline = time.monotonic() + build_timeout if build_timeout else None
    parser = parse_tables(lark, [t.name for t in terminals], text, source)
    state_mode = None
    if lexer_kind == "contextual" and fstrings is None and mode_restart is None:
        plan = _contextual(terminals, parser, indenter, semicolons, max_lexer_states, deadline, source)
        if plan is not None:
            terminals, mode_restart, state_mode = plan
    try:
        lexer = build_lexer(terminals, max_lexer_states, deadline, lark_scanner=lexer_kind != "longest")
    except LexerTooLarge as exc:
        raise GrammarError(f"grammar too large: {exc}", source=source) from None
    except RegexError as exc:
        line, col = _definition_line(text, exc.terminal)
        raise GrammarError(str(exc), line, col, source) from None
    notices = tuple(lark.grammask_conflicts)
    for i in never_produced(lexer, terminals):
        t = terminals[i]
        line, col = _definition_line(text, t.name)
        what = (f"terminal {t.name} can never be produced: every string it matches is lexed as another terminal "
                "(give it a higher priority, e.g. NAME.2, or merge the two)")
        if lexer_kind == "longest":
            raise GrammarError(what, line, col, source)
        notices += ((line, col, what),)  # Lark takes such a grammar: a warning, as for its conflicts
    term_bracket = np.zeros(len(terminals), dtype=np.int8)
    lex_nl = np.zeros(lexer.n_states, dtype=np.uint8)
    lex_init = 0 if state_mode is None else int(lexer.mode_start[state_mode[parser.start_state]])
    if lark_brackets is not None:
        term_bracket = lark_brackets
        lex_nl = nl_states(lexer.trans, lexer.ends_as(indenter.nl), lexer.mode_start)
    elif indenter is not None:
        for i, t in enumerate(terminals):
            if t.is_literal and display[i][1:-1] in _BRACKETS:
                term_bracket[i] = _BRACKETS[display[i][1:-1]]
        for q in range(1, lexer.n_states):
            c = lexer.cset[q]
            lex_nl[q] = c >= 0 and lexer.csets[c] == (indenter.nl,)
        if fstrings is not None:
            term_bracket[fstrings.term_fop != 0] = 0  # the matcher counts these itself
        lex_init = int(lexer.trans[lex_init, ord("\n")])
        if lex_init < 0 or not lex_nl[lex_init]:
            raise GrammarError(f"indent directive: NL={terminals[indenter.nl].name} must match a newline "
                               "followed by indentation", source=source)
    term_flags = np.zeros(len(terminals), dtype=np.uint8)
    if semicolons is not None:
        term_flags[list(semicolons.newlines)] |= 1
        term_flags[list(semicolons.after)] |= 2
    return GrammarTables(terminals, display + ["end of input"], lexer, parser, indenter, term_bracket, lex_nl,
                         lex_init, semicolons, term_flags, fstrings, notices, mode_restart,
                         state_mode, lexer_kind != "longest")


def _contextual(terminals, parser, indenter, semicolons, max_lexer_states, deadline, source):
    """Lark's contextual lexer as modes (None: the one lexer already lexes as it would)."""
    # What a directive turns into parser terminals is lexed everywhere, and after it the matcher may feed
    # more than the LR table's shift (INDENT, DEDENT, a semicolon): there the parser state decides the mode.
    handled = set()
    if indenter is not None:
        handled |= {indenter.nl} | ({indenter.cont} if indenter.cont is not None else set())
    if semicolons is not None:
        handled |= set(semicolons.newlines)
    always = handled | {i for i, t in enumerate(terminals) if t.ignored}
    try:
        return contextual_plan(terminals, parser.action, always, handled, max_lexer_states, deadline)
    except LexerTooLarge as exc:
        raise GrammarError(f"grammar too large: {exc}", source=source) from None
    except RegexError:
        return None  # build_lexer reports it, with the terminal's line
