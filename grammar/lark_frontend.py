"""Lark EBNF -> terminals and LALR(1) parse tables for the engine.

Lark does the grammar work (imports, templates, `?rule` inlining, `[]`/`*`/`+` expansion, LALR(1)
construction, reduce/reduce detection). Its lexer is not used: grammask lexes with its own byte DFA
(see grammask.fsm.lexer), so that masks, matcher and validator share one definition of the language.
"""

from __future__ import annotations

import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..fsm.lark_scan import LarkPattern
from ..fsm.lexer import TerminalSpec
from .errors import GrammarError

if TYPE_CHECKING:  # Lark itself loads with a grammar, not here: cached tables need only this module's classes
    from lark import Lark

END = "$END"
ERROR = -1


@dataclass
class ParseTables:
    """LALR(1) tables. Terminal columns follow the terminal list; the last column is $END."""

    action: np.ndarray      # (n_states, n_terminals + 1) int32: >=0 shift, -1 error, <=-2 reduce rule -a-2
    goto: np.ndarray        # (n_states, n_nonterminals) int32, -1 where undefined
    rule_lhs: np.ndarray    # (n_rules,) nonterminal id
    rule_len: np.ndarray    # (n_rules,) right-hand side length
    start_state: int
    end_state: int
    nonterminals: list[str]


def _locate_word(text: str, word: str) -> tuple[Optional[int], Optional[int]]:
    m = re.search(rf"(?<![\w]){re.escape(word)}(?![\w])", text)
    if not m:
        return None, None
    return text.count("\n", 0, m.start()) + 1, m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1


def _definition_line(text: str, name: str) -> tuple[Optional[int], Optional[int]]:
    m = re.search(rf"^[ \t]*[?!]?{re.escape(name)}\b", text, re.M)
    if not m:
        return None, None
    return text.count("\n", 0, m.start()) + 1, m.start() - (text.rfind("\n", 0, m.start()) + 1) + 1


class _KeepTerminals:
    """Stands in Lark's postlexer slot only so that Lark keeps terminals no rule uses (an indenter's NL)."""

    def __init__(self, names):
        self.always_accept = tuple(names)

    def process(self, stream):  # pragma: no cover - Lark never parses here
        return stream


def load_lark(text: str, start: str, source: Optional[str] = None, keep_terminals=(),
              warn_conflicts: bool = True, source_path: Optional[str] = None) -> Lark:
    """The grammar loaded by Lark, with `grammask_conflicts`: the shift/reduce conflicts it resolved, as
    (line, column, what) (warned as GrammarWarning when warn_conflicts)."""
    from lark import Lark, logger as lark_logger
    from lark import lexer as lark_lexer
    from lark.exceptions import GrammarError as LarkGrammarError
    from lark.exceptions import LarkError, UnexpectedInput

    if not text.strip():
        raise GrammarError("the grammar is empty", source=source)
    # Lark only logs the shift/reduce conflicts it resolves: listen to its logger, alone, meanwhile.
    conflicts = _ConflictLog()
    saved = lark_logger.handlers[:], lark_logger.level, lark_logger.propagate
    lark_logger.handlers = [conflicts]
    lark_logger.setLevel(logging.DEBUG)
    lark_logger.propagate = False
    try:
        postlex = _KeepTerminals(keep_terminals) if keep_terminals else None
        # Lark's lexer is never used; its terminal-collision check (interegular) is only a log message
        # and takes minutes on large Unicode classes (JSON Schema grammars): switch it off meanwhile.
        saved_check = lark_lexer.has_interegular
        lark_lexer.has_interegular = False
        try:
            lark = Lark(text, parser="lalr", lexer="basic", start=start, maybe_placeholders=False, postlex=postlex,
                        source_path=source_path)
        finally:
            lark_lexer.has_interegular = saved_check
        lark.grammask_conflicts = []
        for terminal, rule in conflicts.shift_reduce:
            origin = rule.split(":")[0].strip().lstrip("<")
            line, col = _definition_line(text, origin)
            lark.grammask_conflicts.append(
                (line, col, f"shift/reduce conflict on {terminal} in {rule}: resolved as shift (the longer match)"))
        for conflict in lark.grammask_conflicts if warn_conflicts else ():
            warnings.warn(conflict_warning(source, *conflict), stacklevel=4)
        return lark
    except UnexpectedInput as exc:
        raise GrammarError(f"Lark syntax error: {str(exc).strip().splitlines()[0]}",
                           getattr(exc, "line", None), getattr(exc, "column", None), source) from None
    except LarkGrammarError as exc:
        msg = str(exc).strip()
        at = re.search(r"at line (\d+) column (\d+)", msg)
        if at:
            first = msg.splitlines()[0][: at.start()].rstrip(" ,")
            raise GrammarError(f"grammar syntax error: {first}", int(at.group(1)), int(at.group(2)),
                               source) from None
        line = col = None
        undefined = re.search(r"(Rule|Terminal) '([^']+)' used but not defined(?: \(in rule (\w+)\))?", msg)
        missing_start = re.search(r"Using an undefined rule: NonTerminal\('(\w+)'\)", msg)
        collision = re.search(r"Reduce/Reduce collision in Terminal\('([^']+)'\) between the following rules:"
                              r"\s*- <(\w+) :([^>]*)>\s*- <(\w+) :([^>]*)>", msg)
        if missing_start and missing_start.group(1) == start:
            msg = f"no start rule {start!r}: define it, or name another with start=..."
        elif undefined:
            kind, name, user = undefined.groups()
            kind = "terminal" if name.lstrip("_").isupper() else "rule"
            msg = f"undefined {kind} {name!r}" + (f" (used in rule {user})" if user else "")
            line, col = _locate_word(text, name)
        elif collision:
            la, r1, e1, r2, e2 = collision.groups()
            # Lark lists the two rules in no fixed order: name them, and point at, in text order.
            (line, col, r1, e1), (_, _, r2, e2) = sorted(
                [(*_definition_line(text, r1), r1, e1), (*_definition_line(text, r2), r2, e2)],
                key=lambda x: (x[0] or 0, x[1] or 0))
            msg = (f"reduce/reduce conflict: the same input can be '{r1}:{e1}' or '{r2}:{e2}' (before {la}); "
                   "the grammar is ambiguous for an LALR(1) parser")
        else:
            named = re.search(r"(?:Rule|Terminal|NonTerminal)\(Token\('\w+', '(\w+)'\)|'(\w+)'", msg)
            if named:
                line, col = _locate_word(text, named.group(1) or named.group(2))
        raise GrammarError(msg, line, col, source) from None
    except LarkError as exc:
        msg = str(exc).strip()
        bad_regex = re.match(r"Cannot compile token (\w+): (.*)$", msg)
        if bad_regex:
            line, col = _definition_line(text, bad_regex.group(1))
            raise GrammarError(f"terminal {bad_regex.group(1)}: invalid regex {bad_regex.group(2)}", line, col,
                               source) from None
        zero = re.search(r"zero-width terminals\. \((\w+): (.*)\)$", msg)
        if zero:
            line, col = _definition_line(text, zero.group(1))
            raise GrammarError(f"terminal {zero.group(1)} matches the empty string ({zero.group(2)})",
                               line, col, source) from None
        raise GrammarError(msg, source=source) from None
    except OSError as exc:  # Lark's way to say an %import found no file
        missing = getattr(exc, "filename", None) or str(exc)
        line, col = _import_line(text, missing)
        where = f"beside {source_path}" if source_path else "in the current directory"
        raise GrammarError(f"%import: no grammar file {missing} {where} or in Lark's own grammars",
                           line, col, source) from None
    except (ValueError, KeyError, AttributeError, TypeError) as exc:
        # Lark reports some malformed grammars (e.g. an unknown start rule) this way.
        raise GrammarError(f"cannot load grammar: {exc}", source=source) from None
    finally:
        lark_logger.handlers, level, lark_logger.propagate = saved
        lark_logger.setLevel(level)


_IMPORT = re.compile(r"^[ \t]*%import[ \t]+(\.?)([\w.]+)[ \t]*(\()?", re.M)


def _import_module(m: re.Match) -> list[str]:
    """The module path of an %import: `a.b.NAME` imports NAME from a/b.lark; `a.b (X, Y)` from a/b.lark."""
    parts = m.group(2).split(".")
    return parts if m.group(3) else parts[:-1]


def _import_line(text: str, missing: str) -> tuple[Optional[int], Optional[int]]:
    for m in _IMPORT.finditer(text):
        if missing.endswith("/".join(_import_module(m)) + ".lark"):
            return text.count("\n", 0, m.start()) + 1, 1
    return None, None


def relative_imports(text: str, source_path: Optional[str]) -> list[tuple[str, bytes]]:
    """The files `%import .module...` reads, transitively, with their content (b"" when absent): Lark
    looks for them beside the importing file (the current directory for a grammar given as text)."""
    found: dict[str, bytes] = {}
    todo = [(text, os.path.dirname(source_path) if source_path else os.getcwd())]
    while todo:
        body, base = todo.pop()
        for m in _IMPORT.finditer(body):
            if not m.group(1):
                continue
            path = os.path.join(base, *_import_module(m)) + ".lark"
            if path in found:
                continue
            try:
                found[path] = Path(path).read_bytes()
            except OSError:
                found[path] = b""
                continue
            todo.append((found[path].decode("utf-8", "replace"), os.path.dirname(path)))
    return sorted(found.items())


class GrammarWarning(UserWarning):
    """A grammar that works, with a choice made for it (e.g. a shift/reduce conflict resolved)."""


def conflict_warning(source: Optional[str], line: Optional[int], col: Optional[int], what: str) -> GrammarWarning:
    where = f"{source or 'grammar'}:{line}:{col}: " if line else ""
    return GrammarWarning(where + what)


class _ConflictLog(logging.Handler):
    """Collects the shift/reduce conflicts Lark resolves (it only logs them)."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.shift_reduce: list[tuple[str, str]] = []
        self._terminal: Optional[str] = None

    def emit(self, record):
        msg = record.getMessage()
        m = re.match(r"Shift/Reduce conflict for terminal (\S+):", msg)
        if m:
            self._terminal = m.group(1)
        elif self._terminal and msg.startswith(" * "):
            self.shift_reduce.append((self._terminal, msg[3:].strip()))
            self._terminal = None


def terminal_specs(lark: Lark) -> tuple[list[TerminalSpec], list[str]]:
    """Terminal specs for the lexer and display names for messages: Lark's terminals in its order, then
    the %declare'd ones the parser uses (no pattern: they come from context, like INDENT)."""
    from lark.lexer import PatternStr

    ignored = set(lark.ignore_tokens)
    specs: list[TerminalSpec] = []
    display: list[str] = []
    known = {t.name for t in lark.terminals}
    table = lark.parser.parser.parser.parse_table
    declared = sorted({sym for acts in table.states.values() for sym in acts
                       if sym.isupper() and sym not in known and sym != END})
    for name in declared:
        specs.append(TerminalSpec(name, None))
        display.append(name.lstrip("_"))
    for t in lark.terminals:
        p = t.pattern
        if isinstance(p, PatternStr):
            body = re.escape(p.value)
            shown = repr(p.value)
        else:
            body = p.value
            shown = t.name
        regex = f"(?{''.join(sorted(p.flags))}:{body})" if p.flags else body
        order = LarkPattern((-t.priority, -p.max_width, -len(p.value), t.name),
                            p.value if isinstance(p, PatternStr) else None, frozenset(p.flags))
        specs.append(TerminalSpec(t.name, regex, t.priority, isinstance(p, PatternStr), t.name in ignored, lark=order))
        display.append(shown)
    return specs, display


def parse_tables(lark: Lark, terminal_names: list[str], text: str, source: Optional[str]) -> ParseTables:
    from lark.parsers.lalr_analysis import Shift

    table = lark.parser.parser.parser.parse_table
    term_id = {name: i for i, name in enumerate(terminal_names)}
    term_id[END] = len(terminal_names)
    nonterminals: dict[str, int] = {}
    rules: dict[object, int] = {}
    rule_lhs: list[str] = []
    rule_len: list[int] = []
    for state_actions in table.states.values():
        for sym in state_actions:
            if sym not in term_id:
                nonterminals.setdefault(sym, len(nonterminals))
    states = sorted(table.states)
    index = {s: i for i, s in enumerate(states)}
    action = np.full((len(states), len(terminal_names) + 1), ERROR, dtype=np.int32)
    goto = np.full((len(states), max(1, len(nonterminals))), ERROR, dtype=np.int32)
    for s, acts in table.states.items():
        for sym, (kind, arg) in acts.items():
            if sym in term_id:
                if kind is Shift:
                    action[index[s], term_id[sym]] = index[arg]
                else:
                    r = rules.get(arg)
                    if r is None:
                        r = rules[arg] = len(rule_lhs)
                        rule_lhs.append(arg.origin.name)
                        rule_len.append(len(arg.expansion))
                    action[index[s], term_id[sym]] = -2 - r
            else:
                goto[index[s], nonterminals[sym]] = index[arg]
    for name in rule_lhs:
        nonterminals.setdefault(name, len(nonterminals))
    if goto.shape[1] < len(nonterminals):
        goto = np.concatenate([goto, np.full((len(states), len(nonterminals) - goto.shape[1]), ERROR,
                                             dtype=np.int32)], axis=1)
    start = lark.options.start[0] if isinstance(lark.options.start, list) else lark.options.start
    return ParseTables(
        action=action, goto=goto,
        rule_lhs=np.asarray([nonterminals[n] for n in rule_lhs], dtype=np.int32),
        rule_len=np.asarray(rule_len, dtype=np.int32),
        start_state=index[table.start_states[start]], end_state=index[table.end_states[start]],
        nonterminals=sorted(nonterminals, key=nonterminals.get))
