"""Python f-strings: lexer modes, their terminals, and what the matcher does at each of them.

CPython 3.11 reads an f-string as one string token (it ends at the first unescaped closing quote), then
parses its replacement fields: the expression up to a `!`, `:`, `}` or `=` outside brackets, compiled as
"(" + text + ")"; a format spec of text and fields, whose fields take a plain-text spec only. Inside a
field no backslash, no `#` outside strings, no quote of an enclosing f-string, and no newline where an
enclosing f-string is single-quoted (the token would end there).

CPython 3.12 (PEP 701) tokenizes f-strings instead: a field is ordinary code, so it may hold any string
(the enclosing quotes, backslashes and all), comments, newlines and f-strings nested to any depth
(CPython stops at 150; grammask at GM_MAX_FSTRINGS). `// grammask: fstrings pep701` asks for that: the
same modes, with the field's own terminals and no events.

grammask lexes the f-string in modes (a grammar switches them on with `// grammask: fstrings`):

    TOP       the grammar's own terminals; FSTART_* push an f-string
    LIT(kr)   literal text of an f-string of quote kind k (' " ''' \"\"\"), raw or not: FLIT (text, {{ and }}),
              FOPEN `{`, FEND the closing quote
    FIELD     the expression terminals (strings without backslashes), FSTART_* of nested f-strings, and
              `}` `:` `:=` whose meaning depends on the bracket depth: at the field's own depth `}` closes
              it (FCLOSE) and `:` opens its spec (SPEC_OPEN); `!r}` `!r:` conversions
    SPEC(kr)  format spec text FSPEC_TEXT, FOPEN of a nested field, SPEC_CLOSE `}`

The matcher context keeps a stack of open f-strings (quote kind, raw, where in it: literal, field, spec,
field in a spec, spec of that field; the field's bracket depth) and decides those meanings; after them
the next lexeme's mode comes from that stack ("dynamic restart"). Bytes that may break an enclosing
f-string (a quote character, a newline, a backslash) are reported by the lexer as event terminals the
matcher checks against the stack and never gives the parser.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from ..fsm.lexer import TerminalSpec

KINDS = ("'", '"', "'''", '"""')
TOP, FIELD = 0, 1
N_MODES = 18


def lit_mode(kr: int) -> int:
    return 2 + kr


def spec_mode(kr: int) -> int:
    return 10 + kr


# term_fop codes, as gm_core.h names them
FOP_FSTART, FOP_FOPEN, FOP_RBRACE, FOP_COLON, FOP_WALRUS = 1, 2, 3, 4, 5
FOP_CONV_CLOSE, FOP_CONV_SPEC, FOP_SPEC_CLOSE, FOP_FEND, FOP_EVENT_OWN, FOP_EVENT_ALL = 6, 7, 8, 9, 10, 11
FOP_TRIPLE_STRING = 12  # a string in three quotes inside a field; term_farg: 2 * its string terminal + quote
FARG_FREE_NESTING = 8  # term_farg bit of an FSTART under PEP 701: any quotes may nest (kr in the low 3 bits)
# event bits (term_farg of an event terminal): a byte ' " newline or backslash; which of them an enclosing
# f-string forbids is csrc/gm_parser.c's fstring_forbids
EV_SQ, EV_DQ, EV_NL, EV_BS = 1, 2, 4, 8
# term_restart: -1 the lexeme's own mode, -2 from the context, else that mode
SAME_MODE, DYNAMIC = -1, -2

# The terminals the grammar's rules use (%declare'd there; their patterns come from here).
FSTART_NAMES = tuple(("RFSTART_" if raw else "FSTART_") + ("SQ", "DQ", "SQ3", "DQ3")[k]
                     for k in range(4) for raw in (0, 1))  # index kr = 2 * k + raw
# Template strings (PEP 750, 3.14): lexed as f-strings are, their own start terminals so that the rules
# can keep them apart (a t-string does not concatenate with other strings). Optional in a grammar.
TSTART_NAMES = tuple(name.replace("FSTART", "TSTART") for name in FSTART_NAMES)
LR_TERMINALS = FSTART_NAMES + ("FEMPTY", "FLIT", "FEND", "FOPEN", "FCLOSE", "CONV_CLOSE", "CONV_SPEC",
                               "SPEC_OPEN", "FSPEC_TEXT", "SPEC_CLOSE")
# How messages show them.
DISPLAY = {
    **{name: ("rf" if name[0] == "R" else "f") + KINDS[i // 2] for i, name in enumerate(FSTART_NAMES)},
    **{name: ("rt" if name[0] == "R" else "t") + KINDS[i // 2] for i, name in enumerate(TSTART_NAMES)},
    "TEMPTY": "empty t-string",
    "FEMPTY": "empty f-string", "FLIT": "f-string text", "FEND": "end of f-string", "FOPEN": "'{'",
    "FCLOSE": "'}'", "CONV_CLOSE": "'!r}'", "CONV_SPEC": "'!r:'", "SPEC_OPEN": "':'",
    "FSPEC_TEXT": "format spec text", "SPEC_CLOSE": "'}'", "RBRACE_F": "'}'", "COLON_F": "':'",
    "WALRUS_F": "':='",
}
_EVENT_DISPLAY = {EV_SQ: "\"'\" (the quote of an enclosing f-string)",
                  EV_DQ: "'\"' (the quote of an enclosing f-string)",
                  EV_NL: "newline (inside a single-quoted f-string)",
                  EV_BS: "backslash (inside an f-string's expression)"}
# Terminals of the grammar lexed otherwise inside a field (by their display form or name).
_FIELD_REPLACED = ("'}'", "':'", "':='")
_NOT_IN_FIELD = ("COMMENT", "_NL", "_LINE_CONT")
_FIELD_STRINGS = {
    "STRING": "[uU]?", "RAW_STRING": "[rR]", "BYTES": "[bB]", "RAW_BYTES": "([rR][bB]|[bB][rR])",
}

_HEX = "[0-9a-fA-F]"
_ESCAPE = (rf"\\([^xuUN{{}}\r\n]|x{_HEX}{{2}}|u{_HEX}{{4}}|U(000{_HEX}{{5}}|0010{_HEX}{{4}})"
           r"|N\{[A-Za-z0-9 \-]+\}|\r?\n)")
_RAW_ESCAPE = r"\\([^{}\r\n]|\r?\n)"


def _prefix(raw: int, letter: str = "f") -> str:
    kind = f"[{letter}{letter.upper()}]"
    return f"([rR]{kind}|{kind}[rR])" if raw else kind


def _text(kind: int, raw: int, braces: bool) -> str:
    """Literal text of one mode: characters but braces and the quote, escapes, a backslash before a
    brace (CPython reads `\\{` as a backslash and a brace), runs of the quote shorter than the closing one."""
    q = KINDS[kind][0]
    newline = "" if kind >= 2 else r"\r\n"
    chars = f"[^{q}\\\\{{}}{newline}]"
    body = f"({chars}|{_RAW_ESCAPE if raw else _ESCAPE})+(\\\\)?|\\\\"
    if kind >= 2:
        body += f"|{q}|{q}{q}"
    if braces:
        body += r"|\{\{|\}\}"
    return body


def _field_strings(prefix: str, ascii_only: bool) -> tuple[str, str, str]:
    """Strings inside a field, with no backslash anywhere (CPython 3.11 refuses one in the expression
    part): the single-quoted ones, and apart those in three ' and in three " (an enclosing f-string of
    that quote refuses them)."""
    parts = []
    for q in ("'", '"'):
        line = _ascii_class(q, False) if ascii_only else rf"[^{q}\\\r\n]"
        parts.append(f"{q}{line}*{q}")
    triples = []
    for q in ("'", '"'):
        multi = _ascii_class(q, True) if ascii_only else rf"[^{q}\\]"
        triples.append(f"{prefix}{q * 3}(({q}|{q * 2})?{multi})*{q * 3}")
    return f"{prefix}({'|'.join(parts)})", triples[0], triples[1]


def _ascii_class(q: str, newline: bool) -> str:
    """ASCII bytes but the quote, the backslash and (unless allowed) newlines, as one class."""
    banned = {ord(q), ord("\\")} | (set() if newline else {10, 13})
    ranges, start = [], None
    for c in range(128 + 1):
        ok = c < 128 and c not in banned
        if ok and start is None:
            start = c
        elif not ok and start is not None:
            ranges.append((start, c - 1))
            start = None
    return "[" + "".join(f"\\x{a:02x}" if a == b else f"\\x{a:02x}-\\x{b:02x}" for a, b in ranges) + "]"


@dataclass(frozen=True)
class FStringSpec:
    term_fop: np.ndarray      # (n_terminals,) int8 FOP_* or 0
    term_farg: np.ndarray     # (n_terminals,) int32: FSTART kr; event bits
    term_restart: np.ndarray  # (n_terminals,) int32: SAME_MODE, DYNAMIC or a mode
    mode_event: np.ndarray    # (N_MODES, 256) int32 event terminal a byte reports in a mode, or -1
    t_rbrace: int             # the parser's `}` `:` `:=` (what RBRACE_F, COLON_F, WALRUS_F are off the
    t_colon: int              # field's own depth) and what they are at it
    t_walrus: int
    t_fclose: int
    t_spec_open: int
    t_spec_text: int
    display: dict             # terminal id -> how messages show it
    hidden: frozenset         # terminals never listed as expected (lexer-only forms, events)


def extend_terminals(terminals: list[TerminalSpec], display: list[str], pep701: bool = False):
    """The grammar's terminals with the f-string modes added, the lexer-only terminals appended, and the
    matcher's arrays; pep701: as Python 3.12+ reads f-strings. Raises KeyError naming a terminal the
    grammar lacks."""
    ids = {t.name: i for i, t in enumerate(terminals)}
    by_display = {d: i for i, d in enumerate(display)}
    missing = [n for n in LR_TERMINALS if n not in ids] + [d for d in _FIELD_REPLACED if d not in by_display]
    if missing:
        raise KeyError(", ".join(missing))
    out = list(terminals)
    replaced = {by_display[d] for d in _FIELD_REPLACED}
    triple_strings = []  # (a string terminal, 0 or 1 for its triple ' or " form, regex): their own terminals
    for i, t in enumerate(out):
        if t.regex is None or t.name in LR_TERMINALS or t.name in TSTART_NAMES:
            continue
        if pep701 and (t.name in _FIELD_STRINGS or t.name == "COMMENT"):
            out[i] = dataclasses.replace(t, modes=(TOP, FIELD))  # a field is code: any string, comments
        elif t.name in _FIELD_STRINGS:
            single, *triples = _field_strings(_FIELD_STRINGS[t.name], t.name.endswith("BYTES"))
            out[i] = dataclasses.replace(t, mode_regexes=((FIELD, single),))
            triple_strings += [(i, j, regex) for j, regex in enumerate(triples)]
        elif t.ignored and t.name not in _NOT_IN_FIELD:
            # whitespace: newlines too inside a field (inside parentheses, once compiled); under PEP 701
            # also a backslash continuation
            out[i] = dataclasses.replace(t, mode_regexes=((FIELD, r"([\t \f\r\n]|\\\r?\n)+" if pep701
                                                                  else r"[\t \f\r\n]+"),))
        elif i not in replaced and t.name not in _NOT_IN_FIELD:
            out[i] = dataclasses.replace(t, modes=(TOP, FIELD))

    def add(name: str, regex=None, modes=(), mode_regexes=(), literal=False) -> int:
        out.append(TerminalSpec(name, regex, is_literal=literal, modes=modes, mode_regexes=mode_regexes,
                                fullmatch=True))
        return len(out) - 1

    def set_regex(name: str, regex=None, modes=(), mode_regexes=(), literal=False):
        out[ids[name]] = dataclasses.replace(out[ids[name]], regex=regex, modes=modes, mode_regexes=mode_regexes,
                                             is_literal=literal, fullmatch=True)

    starts = [(kr, name, "f") for kr, name in enumerate(FSTART_NAMES)]
    if "TSTART_SQ" in ids:
        starts += [(kr, name, "t") for kr, name in enumerate(TSTART_NAMES)]
        set_regex("TEMPTY", f"({_prefix(0, 't')}|{_prefix(1, 't')})(''|\"\")", (TOP, FIELD))
    for kr, name, letter in starts:
        set_regex(name, _prefix(kr % 2, letter) + KINDS[kr // 2], (TOP, FIELD))
    set_regex("FEMPTY", f"({_prefix(0)}|{_prefix(1)})(''|\"\")", (TOP, FIELD))
    lit = [lit_mode(kr) for kr in range(8)]
    spec = [spec_mode(kr) for kr in range(8)]
    set_regex("FLIT", mode_regexes=tuple((lit_mode(kr), _text(kr // 2, kr % 2, True)) for kr in range(8)))
    set_regex("FSPEC_TEXT", mode_regexes=tuple((spec_mode(kr), _text(kr // 2, kr % 2, False)) for kr in range(8)))
    # In a spec the closing quote is an error (CPython: the token ends there): lexed as FEND, which no
    # rule takes inside a spec, so that `''` + `'` is never read as two pieces of text.
    set_regex("FEND", mode_regexes=tuple((m, KINDS[kr // 2])
                                         for kr in range(8) for m in (lit_mode(kr), spec_mode(kr))))
    set_regex("FOPEN", r"\{", tuple(lit + spec), literal=True)
    set_regex("SPEC_CLOSE", r"\}", tuple(spec), literal=True)
    # 3.11 reads the conversion with the character after it; 3.12 tokenizes them (`!` right before the
    # name, then anything a field allows between tokens: blanks, newlines, comments)
    between = r"([\t \f\r\n]|\\\r?\n|#[^\r\n]*)*" if pep701 else ""
    set_regex("CONV_CLOSE", rf"![rsa]{between}\}}", (FIELD,))
    set_regex("CONV_SPEC", rf"![rsa]{between}:", (FIELD,))
    rbrace_f = add("RBRACE_F", r"\}", (FIELD,), literal=True)
    colon_f = add("COLON_F", ":", (FIELD,), literal=True)
    walrus_f = add("WALRUS_F", ":=", (FIELD,), literal=True)
    triples = {add(f"{out[i].name}_{('SQ3', 'DQ3')[j]}_F", mode_regexes=((FIELD, regex),)): (i, j)
               for i, j, regex in triple_strings}
    events = {}
    display_of = {ids[name]: shown for name, shown in DISPLAY.items() if name in ids}
    display_of.update({t: display[i] for t, (i, _) in triples.items()})
    display_of.update({rbrace_f: DISPLAY["RBRACE_F"], colon_f: DISPLAY["COLON_F"], walrus_f: DISPLAY["WALRUS_F"]})
    for scope, fop in () if pep701 else (("OWN", FOP_EVENT_OWN), ("ALL", FOP_EVENT_ALL)):
        for bit, label in ((EV_SQ, "SQ"), (EV_DQ, "DQ"), (EV_NL, "NL"), (EV_BS, "BS")):
            events[fop, bit] = add(f"__FEVENT_{scope}_{label}")
            display_of[events[fop, bit]] = _EVENT_DISPLAY[bit]

    n = len(out)
    fop = np.zeros(n, dtype=np.int8)
    farg = np.zeros(n, dtype=np.int32)
    restart = np.full(n, SAME_MODE, dtype=np.int32)
    for kr, name, _ in starts:
        fop[ids[name]], restart[ids[name]] = FOP_FSTART, lit_mode(kr)
        farg[ids[name]] = kr | (FARG_FREE_NESTING if pep701 else 0)
    fop[ids["FOPEN"]], restart[ids["FOPEN"]] = FOP_FOPEN, FIELD
    for t, code in ((rbrace_f, FOP_RBRACE), (colon_f, FOP_COLON), (walrus_f, FOP_WALRUS),
                    (ids["CONV_CLOSE"], FOP_CONV_CLOSE), (ids["CONV_SPEC"], FOP_CONV_SPEC),
                    (ids["SPEC_CLOSE"], FOP_SPEC_CLOSE), (ids["FEND"], FOP_FEND)):
        fop[t], restart[t] = code, DYNAMIC
    for (code, bit), t in events.items():
        fop[t], farg[t] = code, bit
    for t, (i, j) in triples.items():
        fop[t], farg[t] = FOP_TRIPLE_STRING, 2 * i + j
    mode_event = np.full((N_MODES, 256), -1, dtype=np.int32)
    for mode in range(1, N_MODES) if events else ():
        code = FOP_EVENT_ALL if mode == FIELD else FOP_EVENT_OWN
        for byte, bit in ((ord("'"), EV_SQ), (ord('"'), EV_DQ), (10, EV_NL), (13, EV_NL), (ord("\\"), EV_BS)):
            mode_event[mode, byte] = events[code, bit]
    return out, FStringSpec(fop, farg, restart, mode_event, by_display["'}'"], by_display["':'"],
                            by_display["':='"], ids["FCLOSE"], ids["SPEC_OPEN"], ids["FSPEC_TEXT"], display_of,
                            frozenset([rbrace_f, colon_f, walrus_f, *events.values(), *triples]))
