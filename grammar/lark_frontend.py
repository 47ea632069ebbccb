"""Lark EBNF -> terminals and LALR(1) parse tables for the engine.

Lark does the grammar work (imports, templates, `?rule` inlining, `[]`/`*`/`+` expansion, terminals). The
LALR(1) tables are built natively from its compiled rules (csrc/gm_lalr.c: Lark's construction and conflict
policy, tables equal to Lark's up to state numbering), without Lark building its parser or lexer; Lark's
own construction answers only the grammars gm_lalr.c hands back (GM_LALR_FALLBACK). Lark's lexer is not
used: grammask lexes with its own byte DFA (see grammask.fsm.lexer), so that masks, matcher and validator
share one definition of the language; only the checks Lark's lexer makes of the terminals are kept.
"""

from __future__ import annotations

import logging
import os
import re
import time
import warnings
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import numpy as np

from ..fsm.lark_scan import LarkPattern
from ..fsm.lexer import TerminalSpec
from .errors import GrammarError
from .lark_subset import REGEX_SYNTAX, compile_subset

if TYPE_CHECKING:  # Lark itself loads with a grammar, not here: cached tables need only this module's classes
    from lark.grammar import Rule
    from lark.lexer import TerminalDef

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


@dataclass
class LalrTables:
    """LALR(1) tables over the grammar's own symbols: terminals (the last one $END), then nonterminals."""

    terminals: list[str]
    nonterminals: list[str]
    rules: list[Rule]       # by rule id; the last one is the root rule `$root_<start>: <start>`
    trans: np.ndarray       # (n_states, n_terminals + n_nonterminals) int32: shift / goto target, -1
    reduce: np.ndarray      # (n_states, n_terminals) int32: rule reduced, -1 (a shift wins a conflict)
    end_state: int
    start_state: int = 0
    by_lark: bool = False   # Lark's own construction made them (gm_lalr.c's GM_LALR_FALLBACK)


@dataclass
class LarkGrammar:
    """What grammask reads of a grammar Lark loaded: Lark's compiled terminals and rules, and the tables."""

    terminals: list[TerminalDef]   # in Lark's order
    rules: list[Rule]
    ignore_tokens: list[str]
    start: str
    lalr: Optional[LalrTables] = None
    grammask_conflicts: list = field(default_factory=list)  # (line, column, what)


def compile_grammar(text: str, start: str, keep_terminals=(), source_path: Optional[str] = None) -> LarkGrammar:
    """The grammar as Lark(text, parser="lalr", start=start, postlex=P) compiles it (P.always_accept =
    keep_terminals: terminals kept though no rule uses them, an indenter's NL), without its parser or lexer."""
    from lark.load_grammar import load_grammar

    compiled = compile_subset(text, start, keep_terminals)  # generated grammars: without Lark's parser
    if compiled is None:
        grammar, _ = load_grammar(text, source_path or "<string>", [], False)
        compiled = grammar.compile([start], set(keep_terminals))
    terminals, rules, ignore = compiled
    return LarkGrammar(terminals, rules, ignore, start)


def _flat_grammar(lark: LarkGrammar):
    """The rules as gm_lalr.c takes them, with the root rule last; Lark's refusal of an undefined rule."""
    from lark.exceptions import GrammarError as LarkGrammarError
    from lark.grammar import NonTerminal, Rule

    rules = lark.rules + [Rule(NonTerminal("$root_" + lark.start), [NonTerminal(lark.start)])]
    nonterminals = {}
    for rule in rules:
        nonterminals.setdefault(rule.origin.name, len(nonterminals))
    terminals: dict[str, int] = {}
    lhs, begin, rhs = [], [0], []
    for rule in rules:
        lhs.append(nonterminals[rule.origin.name])
        for sym in rule.expansion:
            if sym.is_term:
                rhs.append(terminals.setdefault(sym.name, len(terminals)))
            elif sym.name in nonterminals:
                rhs.append(-1 - nonterminals[sym.name])
            else:  # Lark's check before its LALR analysis (the root rule last: a missing start rule)
                raise LarkGrammarError("Using an undefined rule: %r" % (sym,))
        begin.append(len(rhs))
    n_terms = len(terminals) + 1  # $END last
    rhs = np.asarray(rhs, dtype=np.int64)
    rhs = np.where(rhs < 0, n_terms - 1 - rhs, rhs).astype(np.int32)
    # Lark compares priorities (None: 0) only with each other: their ranks are exact and fit int32.
    prios = [rule.options.priority or 0 for rule in rules]
    rank = {p: i for i, p in enumerate(sorted(set(prios)))}
    names = list(terminals) + [END]
    return rules, names, list(nonterminals), (n_terms, len(nonterminals), np.asarray(lhs, dtype=np.int32),
                                              np.asarray(begin, dtype=np.int32), rhs,
                                              np.asarray([rank[p] for p in prios], dtype=np.int32))


def build_lalr(lark: LarkGrammar, deadline: Optional[float] = None) -> tuple[LalrTables, list[tuple[str, str]]]:
    """The LALR(1) tables and the shift/reduce conflicts resolved as shift, (terminal, rule) as Lark logs
    them. Raises Lark's GrammarError for a reduce/reduce collision, with Lark's message."""
    from lark.exceptions import GrammarError as LarkGrammarError
    from lark.grammar import Terminal

    from grammask import _core

    rules, terms, nonterms, flat = _flat_grammar(lark)
    n_terms, n_nonterms, lhs, begin, rhs, prio = flat
    out = _core.lalr_tables(n_terms, n_nonterms, lhs, begin, rhs, prio, len(rules) - 1, n_terms - 1,
                            deadline or 0.0)
    if out is None:
        return _lark_lalr(lark, rules, terms, nonterms)
    if out["collisions"]:
        raise LarkGrammarError("\n\n".join(
            "Reduce/Reduce collision in %r between the following rules: %s"
            % (Terminal(terms[t]), "".join("\n\t- " + str(rules[r]) for r in rs))
            for _, t, rs in out["collisions"]))
    tables = LalrTables(terms, nonterms, rules, out["trans"], out["reduce"], out["end_state"])
    return tables, [(terms[t], str(rules[r])) for _, t, r in out["conflicts"].tolist()]


def _lark_lalr(lark: LarkGrammar, rules, terms, nonterms) -> tuple[LalrTables, list[tuple[str, str]]]:
    """Lark's own LALR(1) construction, read into LalrTables: for the grammars gm_lalr.c hands back."""
    from lark import logger as lark_logger
    from lark.common import ParserConf
    from lark.parsers.lalr_analysis import LALR_Analyzer, Shift

    conflicts = _ConflictLog()
    saved = lark_logger.handlers[:], lark_logger.level, lark_logger.propagate
    lark_logger.handlers = [conflicts]
    lark_logger.setLevel(logging.DEBUG)
    lark_logger.propagate = False
    try:
        analysis = LALR_Analyzer(ParserConf(lark.rules, {}, [lark.start]))
        analysis.compute_lalr()
    finally:
        lark_logger.handlers, level, lark_logger.propagate = saved
        lark_logger.setLevel(level)
    table = analysis.parse_table
    column = {name: i for i, name in enumerate(terms)}
    column.update({name: len(terms) + i for i, name in enumerate(nonterms)})
    rule_id = {str(rule): i for i, rule in enumerate(rules)}
    states = sorted(table.states)
    start = table.start_states[lark.start]  # state 0, as gm_lalr.c numbers them
    states.remove(start)
    states.insert(0, start)
    index = {s: i for i, s in enumerate(states)}
    trans = np.full((len(states), len(terms) + len(nonterms)), -1, dtype=np.int32)
    reduce = np.full((len(states), len(terms)), -1, dtype=np.int32)
    for s, acts in table.states.items():
        for sym, (kind, arg) in acts.items():
            if kind is Shift:
                trans[index[s], column[sym]] = index[arg]
            else:
                reduce[index[s], column[sym]] = rule_id[str(arg)]
    tables = LalrTables(terms, nonterms, rules, trans, reduce, index[table.end_states[lark.start]], by_lark=True)
    return tables, conflicts.shift_reduce


def check_terminals(lark: LarkGrammar) -> None:
    """The checks Lark's lexer makes of the terminals when it is built (lark/lexer.py BasicLexer), with
    its messages: each compiles as a Python regex, none matches the empty string, %ignore names terminals."""
    from lark.exceptions import LexError

    for t in lark.terminals:
        if not _compiles(t.pattern.to_regexp()):
            raise LexError("Cannot compile token %s: %s" % (t.name, t.pattern))
        if t.pattern.min_width == 0:
            raise LexError("Lexer does not allow zero-width terminals. (%s: %s)" % (t.name, t.pattern))
    names = {t.name for t in lark.terminals}
    if not set(lark.ignore_tokens) <= names:
        raise LexError("Ignore terminals are not defined: %s" % (set(lark.ignore_tokens) - names))


@lru_cache(maxsize=8192)
def _compiles(regexp: str) -> bool:
    """Whether Python's re compiles `regexp`. Kept by content across grammars: re's own cache (512
    patterns) turns over within a few JSON Schemas, each with a terminal per key spelling."""
    if not REGEX_SYNTAX.search(regexp):
        return True  # plain characters (a key's spelling), each matching itself
    try:
        re.compile(regexp)
    except re.error:
        return False
    return True


def load_lark(text: str, start: str, source: Optional[str] = None, keep_terminals=(),
              warn_conflicts: bool = True, source_path: Optional[str] = None,
              build_timeout: Optional[float] = None) -> LarkGrammar:
    """The grammar loaded by Lark, with its LALR(1) tables, and `grammask_conflicts`: the shift/reduce
    conflicts resolved, as (line, column, what) (warned as GrammarWarning when warn_conflicts). Errors come
    in Lark's order: loading, the LALR(1) analysis, then its lexer's checks of the terminals."""
    from lark.exceptions import GrammarError as LarkGrammarError
    from lark.exceptions import LarkError, UnexpectedInput

    from grammask import _core

    if not text.strip():
        raise GrammarError("the grammar is empty", source=source)
    try:
        lark = compile_grammar(text, start, keep_terminals, source_path)
        deadline = time.monotonic() + build_timeout if build_timeout else None
        lark.lalr, shift_reduce = build_lalr(lark, deadline)
        check_terminals(lark)
        for terminal, rule in shift_reduce:
            origin = rule.split(":")[0].strip().lstrip("<")
            line, col = _definition_line(text, origin)
            lark.grammask_conflicts.append(
                (line, col, f"shift/reduce conflict on {terminal} in {rule}: resolved as shift (the longer match)"))
        for conflict in lark.grammask_conflicts if warn_conflicts else ():
            warnings.warn(conflict_warning(source, *conflict), stacklevel=4)
        return lark
    except _core.LalrTimeout as exc:
        raise GrammarError(f"grammar too large: {exc}", source=source) from None
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


def terminal_specs(lark: LarkGrammar) -> tuple[list[TerminalSpec], list[str]]:
    """Terminal specs for the lexer and display names for messages: Lark's terminals in its order, then
    the %declare'd ones the parser uses (no pattern: they come from context, like INDENT)."""
    from lark.lexer import PatternStr

    ignored = set(lark.ignore_tokens)
    specs: list[TerminalSpec] = []
    display: list[str] = []
    known = {t.name for t in lark.terminals}
    tables = lark.lalr
    used = (tables.trans[:, :len(tables.terminals)] >= 0).any(axis=0) | (tables.reduce >= 0).any(axis=0)
    declared = sorted({name for name, u in zip(tables.terminals, used.tolist())
                       if u and name.isupper() and name not in known and name != END})
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


def parse_tables(lark: LarkGrammar, terminal_names: list[str], text: str, source: Optional[str]) -> ParseTables:
    """The engine's tables: terminal columns in terminal_names' order then $END, the nonterminals that have
    a goto or a reduced rule, the rules some action reduces."""
    tables = lark.lalr
    n_terms = len(tables.terminals)
    trans, reduce = tables.trans, tables.reduce
    n_states = trans.shape[0]
    shift = trans[:, :n_terms]
    goto = trans[:, n_terms:]
    reduced = np.unique(reduce[reduce >= 0])
    rule_id = np.full(len(tables.rules), -1, dtype=np.int32)
    rule_id[reduced] = np.arange(len(reduced), dtype=np.int32)
    acts = np.where(shift >= 0, shift, np.where(reduce >= 0, -2 - rule_id[reduce], ERROR)).astype(np.int32)
    term_id = {name: i for i, name in enumerate(terminal_names)}
    term_id[END] = len(terminal_names)
    action = np.full((n_states, len(terminal_names) + 1), ERROR, dtype=np.int32)
    used = (acts != ERROR).any(axis=0)
    for j, name in enumerate(tables.terminals):
        if name in term_id:
            action[:, term_id[name]] = acts[:, j]
        elif used[j]:  # terminal_specs lists every terminal the tables use
            raise GrammarError(f"internal error: the LALR tables use terminal {name}, which has no lexer terminal",
                               source=source)
    lhs_of = {tables.rules[r].origin.name for r in reduced.tolist()}
    kept = [i for i, name in enumerate(tables.nonterminals) if name in lhs_of or bool((goto[:, i] >= 0).any())]
    nonterminals = [tables.nonterminals[i] for i in kept]
    nt_id = {name: i for i, name in enumerate(nonterminals)}
    goto = np.ascontiguousarray(goto[:, kept]) if kept else np.full((n_states, 1), ERROR, dtype=np.int32)
    return ParseTables(
        action=action, goto=goto,
        rule_lhs=np.asarray([nt_id[tables.rules[r].origin.name] for r in reduced.tolist()], dtype=np.int32),
        rule_len=np.asarray([len(tables.rules[r].expansion) for r in reduced.tolist()], dtype=np.int32),
        start_state=tables.start_state, end_state=tables.end_state, nonterminals=nonterminals)
