"""A grammar's engine form: terminals, the combined lexer DFA and the LALR(1) tables."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from ..fsm.lexer import LexerDFA, RegexError, TerminalSpec, build_lexer, never_produced
from .errors import GrammarError
from .lark_frontend import ParseTables, _definition_line, load_lark, parse_tables, terminal_specs


@dataclass
class GrammarTables:
    terminals: list[TerminalSpec]
    display: list[str]          # how messages show each terminal; index n_terminals is end of input
    lexer: LexerDFA
    parser: ParseTables

    @property
    def n_terminals(self) -> int:
        return len(self.terminals)

    def describe(self, term: int) -> str:
        return "end of input" if term == len(self.terminals) else self.display[term]


def build_tables(text: str, start: str, source: Optional[str] = None) -> GrammarTables:
    lark = load_lark(text, start, source)
    terminals, display = terminal_specs(lark, text, source)
    try:
        lexer = build_lexer(terminals)
    except RegexError as exc:
        line, col = _definition_line(text, exc.terminal)
        raise GrammarError(str(exc), line, col, source) from None
    hidden = never_produced(lexer, len(terminals))
    if hidden:
        t = terminals[hidden[0]]
        line, col = _definition_line(text, t.name)
        raise GrammarError(f"terminal {t.name} can never be produced: every string it matches is lexed as "
                           "another terminal (give it a higher priority, e.g. NAME.2, or merge the two)",
                           line, col, source)
    parser = parse_tables(lark, [t.name for t in terminals], text, source)
    return GrammarTables(terminals, display + ["end of input"], lexer, parser)
