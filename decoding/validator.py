"""Grammar.validate(): check a text with the same lexer and parser tables the masks use."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Union

from .._core import ERR_LEX, ERR_PARSE, ERR_PENDING, CoreMatcher
from .compiler import core_grammar


@dataclass
class ValidationResult:
    ok: bool                  # the text is a complete string of the grammar
    prefix_ok: bool           # the text can still be completed to one
    line: Optional[int] = None    # 1-based position of the first error (or of the end, if incomplete)
    column: Optional[int] = None  # 1-based, in characters
    message: str = ""
    expected: list[str] = field(default_factory=list)
    offset: Optional[int] = None  # byte offset of the error

    def __bool__(self) -> bool:
        return self.ok


def _position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", "replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def _char_at(data: bytes, offset: int) -> str:
    for n in (1, 2, 3, 4):
        try:
            return repr(data[offset:offset + n].decode("utf-8"))
        except UnicodeDecodeError:
            continue
    return f"byte 0x{data[offset]:02x}" if offset < len(data) else "end of input"


def _snippet(data: bytes, begin: int, limit: int = 24) -> str:
    text = data[begin:begin + limit].split(b"\n")[0].decode("utf-8", "replace")
    return repr(text + ("..." if len(data) > begin + limit else ""))


def _expected(core: CoreMatcher, tables, ignored) -> list[str]:
    acceptable = core.acceptable_terminals()
    lexable = _lexable(tables, int(tables.lexer.lex_mode[core.lex_state]))
    shown = [tables.display[t] for t in range(len(acceptable))
             if acceptable[t] and not (t < len(ignored) and ignored[t]) and t in lexable]
    return list(dict.fromkeys(shown))  # f-strings: several terminals show as '}'


def _lexable(tables, mode: int) -> set:
    """The parser's terminals text in this lexer mode can make: what the mode's states produce, and for
    f-strings what the matcher makes of those (`}` closing a field, `:` opening its spec)."""
    lexer = tables.lexer
    made = lexer.produced(lexer.lex_mode == mode)
    made.add(len(tables.terminals))  # end of input
    f = tables.fstrings
    if f is not None:
        made -= f.hidden
        if mode == 1:  # a field (fstrings.FIELD)
            made |= {f.t_rbrace, f.t_colon, f.t_walrus, f.t_fclose, f.t_spec_open}
    return made


def validate(grammar, text: Union[str, bytes]) -> ValidationResult:
    if isinstance(text, str):
        try:
            data = text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"text has a character UTF-8 cannot encode (a lone surrogate?) at {exc.start}; "
                             "pass bytes to validate raw data") from None
    else:
        data = bytes(text)
    tables = grammar.tables
    names = tables.display
    ignored = [t.ignored for t in tables.terminals]
    starts = set(tables.lexer.mode_start.tolist())
    core = CoreMatcher(core_grammar(grammar))
    code, pos, term, lexeme_begin = core.feed_bytes(data)
    if code == 0:
        if core.is_complete():
            return ValidationResult(True, True)
        line, col = _position(data, len(data))
        q = core.lex_state
        if q not in starts and tables.lexer.winner_before(q, 256) < 0:
            cset = tables.lexer.cset[q]
            what = " / ".join(names[t] for t in tables.lexer.csets[cset]) if cset >= 0 else "token"
            message = f"unexpected end of input inside {what} starting at {_snippet(data, lexeme_begin)}"
        else:
            message = "unexpected end of input"
            core.flush_lexeme()  # what may follow the last, complete lexeme
        expected = _expected(core, tables, ignored)
        return ValidationResult(False, True, line, col, f"{message}; expected {', '.join(expected)}", expected,
                                len(data))
    line, col = _position(data, pos)
    if code == ERR_LEX:
        q = core.lex_state
        lexer = tables.lexer
        if q not in starts and lexer.winner_before(q, data[pos]) >= 0 and lexer.trans[q, data[pos]] < 0:
            # the lexeme before is complete: it is the next one that cannot start with this character
            message = f"unexpected character {_char_at(data, pos)}"
            expected = _expected(core, tables, ignored) if core.flush_lexeme() else []
        elif q not in starts and lexer.cset[q] >= 0:
            inside = " / ".join(names[t] for t in tables.lexer.csets[tables.lexer.cset[q]])
            message = f"unexpected character {_char_at(data, pos)} in {inside}"
            expected = [inside]
        else:
            message = f"unexpected character {_char_at(data, pos)}"
            expected = _expected(core, tables, ignored)
        if tables.fstrings is not None and lexer.lex_mode[core.lex_state] == 1 and data[pos] in b"#\\":
            message += " (an f-string's expression cannot hold one)"
    elif code == ERR_PARSE:
        literal = names[term][:1] in "'\""
        message = f"unexpected {names[term]}" + ("" if literal else f" {_snippet(data, pos)}")
        expected = _expected(core, tables, ignored)
        ind = tables.indenter
        if ind is not None and ind.kind == "lark" and term == ind.nl and names[term] in expected:
            # the parser takes the newline: Lark's Indenter refused it (DedentError, or no '\n' in it)
            message = (f"{names[term]} {_snippet(data, pos)}: its indentation matches no open level, or it "
                       "holds no newline (Lark's Indenter)")
            expected = []
    elif code == ERR_PENDING:
        could_be = " / ".join(names[t] for t in tables.lexer.csets[term])
        message = f"unexpected {could_be} {_snippet(data, pos)}"
        expected = _expected(core, tables, ignored)
    else:  # pragma: no cover - the core returns no other codes
        raise RuntimeError(f"grammask core returned unknown status {code}")
    if expected:
        message += f"; expected {', '.join(expected)}"
    return ValidationResult(False, False, line, col, message, expected, pos)
