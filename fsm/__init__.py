"""grammask.fsm: terminal regexes -> byte DFAs, tokenizer vocabularies -> token bytes."""

from .lexer import (ANY_TERMINAL, DEAD, LexerDFA, LexerTooLarge, RegexError, TerminalSpec, build_lexer,
                    never_produced)
from .vocab import TokenizerInfo, TokenizerError

__all__ = ["ANY_TERMINAL", "DEAD", "LexerDFA", "LexerTooLarge", "RegexError", "TerminalSpec", "build_lexer",
           "never_produced", "TokenizerInfo", "TokenizerError"]
