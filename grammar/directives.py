"""The `// grammask: NAME ...` comment lines: what Lark cannot say, said in a comment Lark ignores.

Every directive is read here and only here; docs/directives.md lists them with their syntax, meaning and
an example. Reading is in two steps: `read_directives` takes the lines apart before Lark sees the grammar
(the kept terminals must be passed to Lark), and the `resolve_*` functions turn names into terminal
indices once the terminals are known.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from ..fsm.lexer import TerminalSpec
from .errors import GrammarError

_DIRECTIVE = re.compile(r"^[ \t]*//[ \t]*grammask:[ \t]*(\S*)(.*)$", re.M)
KNOWN = ("indent", "semicolons", "intersect", "keep", "fstrings", "lexmodes", "fullmatch")
_INDENT_ROLES = ("NL", "NEWLINE", "INDENT", "DEDENT")
_SEMICOLON_ROLES = ("SEMICOLON", "NEWLINE", "AFTER")
_QUOTED_OR_NAME = r'"(?:[^"\\]|\\.)*"|\w+'


@dataclass(frozen=True)
class IndenterSpec:
    """Indentation as terminal indices. kind "cpython": the indent directive (CPython's tokenizer rules);
    "lark": a Lark Indenter postlexer (grammar/postlex.py), where NL goes to the parser itself
    (newline == nl) and tab_len counts a tab."""
    nl: int
    newline: int
    indent: int
    dedent: int
    cont: Optional[int] = None
    kind: str = "cpython"
    tab_len: int = 8


@dataclass(frozen=True)
class SemicolonSpec:
    semicolon: int
    newlines: tuple[int, ...]
    after: tuple[int, ...]


@dataclass
class Directives:
    """A grammar's directives as written: names, not yet terminal indices; each with its line."""
    indent: Optional[dict[str, str]] = None            # role -> terminal name
    indent_line: int = 0
    semicolons: Optional[dict[str, list[str]]] = None  # role -> terminal names or quoted literals
    semicolons_line: int = 0
    intersect: list[tuple[int, str, list]] = field(default_factory=list)  # (line, terminal, [regex or multipleOf])
    keep: list[tuple[int, str]] = field(default_factory=list)             # (line, terminal)
    fullmatch: list[tuple[int, str]] = field(default_factory=list)        # (line, terminal)
    fstrings_line: int = 0                                                # 0: no f-strings
    fstrings_pep701: bool = False                                         # f-strings as Python 3.12+ reads them
    lexmodes: Optional[dict[str, list[int]]] = None                      # terminal -> [mode, restart]
    lexmodes_line: int = 0

    def kept_terminals(self) -> list[str]:
        """Terminals Lark must keep although no rule uses them: they are lexed, and their text is theirs."""
        kept = [self.indent[r] for r in ("NL", "CONT") if r in self.indent] if self.indent else []
        if self.semicolons:
            kept = [x for x in self.semicolons["NEWLINE"] if not x.startswith('"')]
        return kept + [name for _, name in self.keep]


def split_directive(line: str) -> Optional[tuple[str, str]]:
    """(name, arguments) of a `// grammask: NAME ARGS` line, or None for any other line."""
    m = _DIRECTIVE.match(line)
    return (m.group(1), m.group(2).strip()) if m else None


def has_directives(text: str) -> bool:
    """Whether the text has a `// grammask:` line: a grammask grammar, lexed by grammask's own rule."""
    return _DIRECTIVE.search(text) is not None


def read_directives(text: str, source: Optional[str] = None) -> Directives:
    found = Directives()
    for m in _DIRECTIVE.finditer(text):
        name, args = split_directive(m.group(0))
        line = text.count("\n", 0, m.start()) + 1
        if name not in KNOWN:
            raise GrammarError(f"unknown grammask directive {name!r} (known: {', '.join(KNOWN)}; "
                               "see docs/directives.md)", line, 1, source)
        if name == "keep":
            found.keep += [(line, t) for t in args.split()]
        elif name == "fullmatch":
            found.fullmatch += [(line, t) for t in args.split()]
        elif name == "intersect":
            found.intersect.append((line, *_intersect_args(args, line, source)))
        elif name == "lexmodes":
            found.lexmodes, found.lexmodes_line = _lexmodes_table(args, line, source), line
        elif name == "fstrings":
            if args not in ("", "pep701"):
                raise GrammarError(f"fstrings directive: unknown argument {args!r} (none: Python 3.11's "
                                   "f-strings; pep701: Python 3.12's)", line, 1, source)
            found.fstrings_line, found.fstrings_pep701 = line, args == "pep701"
        else:
            if found.indent or found.semicolons:
                raise GrammarError("a grammar takes one indent or one semicolons directive", line, 1, source)
            if name == "indent":
                found.indent, found.indent_line = _roles(name, args, _INDENT_ROLES, r"\w+", line, source), line
                found.indent = {role: names[0] for role, names in found.indent.items()}
            else:
                found.semicolons = _roles(name, args, _SEMICOLON_ROLES, _QUOTED_OR_NAME, line, source)
                found.semicolons_line = line
    if found.fstrings_line and found.lexmodes is not None:
        raise GrammarError("a grammar takes either the fstrings or the lexmodes directive", found.lexmodes_line,
                           1, source)
    return found


def _lexmodes_table(args: str, line: int, source: Optional[str]) -> dict[str, list[int]]:
    try:
        table = json.loads(args)
    except ValueError:
        table = None
    if not isinstance(table, dict) or not table or not all(
            isinstance(v, list) and len(v) == 2 and all(type(x) is int for x in v) for v in table.values()):
        raise GrammarError('lexmodes directive: expected {"TERMINAL": [mode, restart], ...}', line, 1, source)
    n_modes = 1 + max(mode for mode, _ in table.values())
    if any(mode < 0 or not -1 <= restart < n_modes for mode, restart in table.values()):
        raise GrammarError(f"lexmodes directive: modes must lie in 0..{n_modes - 1} (restart -1: the same)",
                           line, 1, source)
    return table


def _roles(directive: str, args: str, required: tuple[str, ...], item: str, line: int,
           source: Optional[str]) -> dict[str, list[str]]:
    """ROLE=ITEM[,ITEM...] pairs."""
    roles = {k: re.findall(item, v) for k, v in re.findall(rf"(\w+)=((?:{item})(?:,(?:{item}))*)", args)}
    missing = [r for r in required if r not in roles]
    if missing:
        raise GrammarError(f"{directive} directive needs {', '.join(r + '=...' for r in missing)}", line, 1, source)
    return roles


def _intersectable(item) -> bool:
    if isinstance(item, str):
        return True
    free = item.get("freeText") if isinstance(item, dict) and len(item) == 1 else None
    if free is not None:  # [which, stop, ...]: see fsm/free_text.py
        return (isinstance(free, list) and len(free) >= 2 and type(free[0]) is int and free[0] >= -1
                and all(isinstance(x, str) and x for x in free[1:]))
    mult = item.get("multipleOf") if isinstance(item, dict) and len(item) == 1 else None
    return isinstance(mult, list) and len(mult) == 2 and all(type(x) is int for x in mult) and mult[0] > 0 <= mult[1]


def _intersect_args(args: str, line: int, source: Optional[str]) -> tuple[str, list]:
    parts = args.split(None, 1)
    try:
        items = json.loads(parts[1]) if len(parts) == 2 else None
    except ValueError:
        items = None
    if not isinstance(items, list) or not items or not all(_intersectable(x) for x in items):
        raise GrammarError('intersect directive: expected NAME ["regex", {"multipleOf": [m, e]} or '
                           '{"freeText": [which, stop, ...]}, ...]', line, 1, source)
    return parts[0], [x if isinstance(x, str) else (kind := next(iter(x)), *x[kind]) for x in items]


def check_kept(directives: Directives, terminals: list[TerminalSpec], source: Optional[str]) -> None:
    names = {t.name for t in terminals}
    for line, name in directives.keep:
        if name not in names:
            raise GrammarError(f"keep directive: {name} is not a terminal of the grammar", line, 1, source)


def apply_fullmatch(directives: Directives, terminals: list[TerminalSpec]) -> list[TerminalSpec]:
    """The fullmatch directive's terminals lex every string their regex matches whole (re.fullmatch),
    not only re.match's first match (generated grammars: JSON Schema, from_regex)."""
    names = {name for _, name in directives.fullmatch}
    return [dataclasses.replace(t, fullmatch=True) if t.name in names else t for t in terminals]


def apply_intersections(directives: Directives, terminals: list[TerminalSpec],
                        source: Optional[str]) -> list[TerminalSpec]:
    by_name = {t.name: i for i, t in enumerate(terminals)}
    out = list(terminals)
    for line, name, items in directives.intersect:
        i = by_name.get(name)
        if i is None:
            continue  # a terminal no rule uses (Lark leaves it out): nothing to lex
        if out[i].regex is None:
            raise GrammarError(f"intersect directive: {name} has no pattern", line, 1, source)
        out[i] = dataclasses.replace(out[i], also=out[i].also + tuple(items))
    return out


def apply_lexmodes(directives: Directives, terminals: list[TerminalSpec],
                   source: Optional[str]) -> tuple[list[TerminalSpec], Optional[np.ndarray]]:
    """The terminals in the modes the lexmodes directive gives them, and each one's restart mode."""
    table = directives.lexmodes
    if table is None:
        return terminals, None
    unlisted = [t.name for t in terminals if t.name not in table]
    if unlisted:
        raise GrammarError(f"lexmodes directive: terminal {unlisted[0]} has no mode", directives.lexmodes_line, 1,
                           source)
    out = [dataclasses.replace(t, modes=(table[t.name][0],)) for t in terminals]
    return out, np.asarray([table[t.name][1] for t in terminals], dtype=np.int32)


def resolve_indenter(directives: Directives, terminals: list[TerminalSpec],
                     source: Optional[str]) -> Optional[IndenterSpec]:
    roles, line = directives.indent, directives.indent_line
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


def resolve_semicolons(directives: Directives, terminals: list[TerminalSpec], display: list[str],
                       source: Optional[str]) -> Optional[SemicolonSpec]:
    roles, line = directives.semicolons, directives.semicolons_line
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
