"""The one exception type for grammars that cannot be used."""

from __future__ import annotations

from typing import Optional


class GrammarError(ValueError):
    """A grammar that cannot be loaded or compiled. The message says what and, when known, where."""

    def __init__(self, message: str, line: Optional[int] = None, column: Optional[int] = None,
                 source: Optional[str] = None):
        where = ""
        if line is not None:
            where = f"{source or 'grammar'}:{line}:{column or 1}: "
        elif source:
            where = f"{source}: "
        super().__init__(where + message)
        self.line = line
        self.column = column
        self.source = source
