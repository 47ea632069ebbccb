"""grammask.grammar: Lark grammars -> terminals and LR parse tables; the built-in grammars."""

from .errors import GrammarError
from .lark_frontend import GrammarWarning
from .grammar import BUILTINS, Grammar
from .tables import GrammarTables

__all__ = ["BUILTINS", "Grammar", "GrammarError", "GrammarTables", "GrammarWarning"]
