"""A Lark grammar's text with every rule and terminal renamed into a namespace, to embed it in another.

Structural tags put several grammars (a tool's JSON Schema, a regex, a user's Lark text) into one Lark
grammar, each lexed in its own lexer mode. For that every terminal must have a name the composer knows:
anonymous literals and regexes in rules ("true", /[0-9]+/) become named terminals of the namespace (one
per distinct pattern; a literal a named terminal already spells reuses it, as Lark itself does), and
`%import`ed terminals get an alias in the namespace.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from .directives import split_directive
from .errors import GrammarError

_TOKEN = re.compile(r"""
    (?P<comment>//[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*"i?)
  | (?P<regex>/(?![/*])(?:[^/\\\n]|\\.)+/[imslux]*)
  | (?P<name>[_A-Za-z][_A-Za-z0-9]*)
  | (?P<range>\.\.)
  | (?P<newline>\n)
  | (?P<other>.)
""", re.X | re.S)
_DEFINITION = re.compile(r"[?!]?(_?[A-Za-z][_A-Za-z0-9]*)\s*(?:\.\s*-?\d+\s*)?(?:\{[^}]*\}\s*)?:")


@dataclass
class Renamed:
    text: str
    start: str                       # the namespaced start rule
    terminals: list[str] = field(default_factory=list)  # every terminal name the text defines or imports


def _is_terminal(name: str) -> bool:
    return name.lstrip("_")[:1].isupper()


def rename(text: str, start: str, prefix: str, source: str) -> Renamed:
    """`text` with rule r -> {prefix}_r and terminal T -> {PREFIX}_T (a leading underscore kept in front,
    so inlining and filtering work as before). Raises GrammarError on what cannot be embedded."""
    lower, upper = prefix.lower() + "_", prefix.upper() + "_"

    def new_name(name: str) -> str:
        under = "_" if name.startswith("_") else ""
        return under + (upper if _is_terminal(name) else lower) + name.lstrip("_")

    out: list[str] = []
    terminals: list[str] = []
    anonymous: dict[str, str] = {}      # pattern text -> its terminal's name
    extra: list[str] = []               # definitions of the anonymous terminals
    spelled: dict[str, str] = {}        # "literal" -> the named terminal defined as exactly that
    for m in re.finditer(r"^[ \t]*(_?[A-Z][_A-Z0-9]*)\s*(?:\.\s*-?\d+\s*)?:\s*(\"(?:[^\"\\\n]|\\.)*\")\s*$", text, re.M):
        spelled.setdefault(m.group(2), new_name(m.group(1)))
    in_rule = False
    line_start = True
    tokens = list(_TOKEN.finditer(text))
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        kind, value = tok.lastgroup, tok.group()
        line_no = text.count("\n", 0, tok.start()) + 1
        if line_start and kind not in ("newline",) and not value.isspace():
            line_start = False
            rest = text[tok.start():]
            head = _DEFINITION.match(rest)
            if head:
                in_rule = not _is_terminal(head.group(1))
                if not in_rule:
                    terminals.append(new_name(head.group(1)))
            elif value == "%":
                i = _statement(text, tokens, i, new_name, out, terminals, source)
                line_start = True
                continue
            elif value != "|":
                in_rule = False
        if kind == "newline":
            line_start = True
            out.append(value)
        elif kind == "comment":
            out.append(_comment(value, new_name, line_no, source))
        elif kind == "name":
            out.append(new_name(value))
        elif kind in ("string", "regex") and in_rule:
            pattern = value
            j = i + 1
            if kind == "string":  # a range "a".."z" is one pattern
                k = _skip_spaces(tokens, j)
                if k < len(tokens) and tokens[k].lastgroup == "range":
                    k2 = _skip_spaces(tokens, k + 1)
                    if k2 < len(tokens) and tokens[k2].lastgroup == "string":
                        pattern = f"{value}..{tokens[k2].group()}"
                        j = k2 + 1
            name = spelled.get(pattern) or anonymous.get(pattern)
            if name is None:
                name = anonymous[pattern] = f"{upper}L{len(anonymous)}"
                extra.append(f"{name}: {pattern}")
                terminals.append(name)
            out.append(name)
            i = j
            continue
        else:
            out.append(value)
        i += 1
    return Renamed("".join(out) + "\n" + "\n".join(extra) + "\n", new_name(start), terminals)


def _skip_spaces(tokens, j: int) -> int:
    while j < len(tokens) and tokens[j].lastgroup == "other" and tokens[j].group() in " \t":
        j += 1
    return j


def _comment(value: str, new_name, line: int, source: str) -> str:
    directive = split_directive(value)
    if directive is None:
        return value
    kind, args = directive
    if kind in ("keep", "fullmatch"):
        return f"// grammask: {kind} " + " ".join(new_name(n) for n in args.split())
    if kind == "intersect":
        parts = args.split(None, 1)
        return f"// grammask: intersect {new_name(parts[0])} {parts[1] if len(parts) > 1 else ''}"
    raise GrammarError(f"the grammask directive {kind!r} cannot be used in a grammar embedded in a structural "
                       "tag (it changes how the whole text is lexed)", line, 1, source)


def _statement(text: str, tokens, i: int, new_name, out: list, terminals: list, source: str) -> int:
    """A %-statement starting at tokens[i]; appends its renamed form, returns the index after its line."""
    end = i
    while end < len(tokens) and tokens[end].lastgroup != "newline":
        end += 1
    line = text[tokens[i].start(): tokens[end - 1].end()] if end > i else ""
    line_no = text.count("\n", 0, tokens[i].start()) + 1
    words = line.split()
    keyword = words[0]
    if keyword == "%import":
        out.append(_import(line, new_name, terminals, line_no, source))
    elif keyword == "%ignore":
        out.append("%ignore" + "".join(new_name(t.group()) if t.lastgroup == "name" else t.group()
                                       for t in tokens[i + 2:end]))
    else:
        raise GrammarError(f"{keyword} cannot be used in a grammar embedded in a structural tag", line_no, 1, source)
    return end


_IMPORT = re.compile(r"%import\s+([\w.]+)\s*(?:->\s*(\w+)|\(([^)]*)\))?\s*$")


def _import(line: str, new_name, terminals: list, line_no: int, source: str) -> str:
    m = _IMPORT.match(line.strip())
    if not m or m.group(1).startswith("."):
        raise GrammarError("structural tags embed %import of Lark's own modules only (e.g. %import common.NUMBER)",
                           line_no, 1, source)
    path, alias, names = m.groups()
    if names is not None:
        module = path
        items = [(n.strip(), n.strip()) for n in names.split(",") if n.strip()]
    else:
        module, _, item = path.rpartition(".")
        items = [(item, alias or item)]
    lines = []
    for item, local in items:
        renamed = new_name(local)
        if _is_terminal(local):
            terminals.append(renamed)
        lines.append(f"%import {module}.{item} -> {renamed}")
    return "\n".join(lines)

