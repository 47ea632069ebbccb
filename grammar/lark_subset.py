"""The plain subset of Lark's grammar syntax that grammask's generators write, compiled without Lark's
grammar parser.

A JSON Schema's grammar (json_schema/grammar_text.py) or a regex's is rules over named symbols, a few
string literals, `X?`, `X*`/`X+` and `(X Y)*`-style groups, and one `/regex/` per terminal. Parsing that
text with Lark's own LALR parser and tree transformers is most of the time a new schema waits for its
first mask; this module reads the subset line by line and builds the same terminals and rules that
`lark.load_grammar.Grammar.compile` builds (the same names, order, options and anonymous terminals, its
EBNF expansion and its filtering of unused rules and terminals: tests/test_lark_subset.py compares the
two on every grammar it can find). Anything outside the subset -- imports, directives, templates, rule
modifiers, aliases, priorities on rules, flags, nested groups, alternatives inside a group, a name that
is not defined, a definition given twice -- returns None, and Lark compiles the grammar (with its own
errors where the text is wrong).
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Optional

_RULE_NAME = r"[a-z][_a-z0-9]*"
_TERM_NAME = r"[A-Z][_A-Z0-9]*"
_RULE_HEAD = re.compile(rf"({_RULE_NAME}):[ \t]")
_TERM_HEAD = re.compile(rf"({_TERM_NAME})(?:\.(-?\d+))?:[ \t]*")
# Lark's own REGEXP token (lark/load_grammar.py): a regex ends at its first unescaped slash.
_REGEXP = re.compile(r"/(?!/)(\\/|\\\\|[^/])*?/([imslux]*)")
_CONTINUATION = re.compile(r"[ \t]+\|[ \t]")
# One item of a rule's body. A symbol, literal or closing parenthesis ends before a blank, ")" or the line's
# end, so that Lark reads the same tokens (its `?` is an operator only when no rule name follows it).
_END = r"(?=[ \t)]|$)"
_ITEM = re.compile(rf"""[ \t]*(?:
      (?P<sym>{_RULE_NAME}|{_TERM_NAME})(?P<op>[?*+])?{_END}
    | "(?P<str>[^"\\\n]+)"{_END}
    | (?P<open>\()
    | (?P<close>\))(?P<group_op>[?*+])?{_END}
    | (?P<bar>\|){_END}
    )""", re.X)


class _Outside(Exception):
    """The text leaves the subset: Lark compiles it."""


def compile_subset(text: str, start: str, keep_terminals=()) -> Optional[tuple[list, list, list]]:
    """(terminals, rules, ignored terminal names) as Lark's Grammar.compile([start], keep_terminals) makes
    them from `text`, or None where the text is outside the subset this module reads."""
    try:
        rule_bodies, term_patterns = _read(text)
        return _compile(rule_bodies, term_patterns, start, set(keep_terminals))
    except _Outside:
        return None


def _read(text: str) -> tuple[dict, dict]:
    """Each rule's alternatives (lists of items) and each terminal's pattern, in the order defined."""
    rules: dict[str, list] = {}
    terms: dict[str, tuple] = {}
    current = None
    for line in text.split("\n"):
        stripped = line.strip()
        if not stripped or stripped.startswith("//"):
            continue
        if line[0] in " \t":
            m = _CONTINUATION.match(line)
            if m is None or current is None:
                raise _Outside
            current.append(line[m.end():])
            continue
        m = _RULE_HEAD.match(line)
        if m:
            name = m.group(1)
            if name in rules or name in terms:
                raise _Outside
            current = rules[name] = [line[m.end():]]
            continue
        current = None
        m = _TERM_HEAD.match(line)
        if m is None:
            raise _Outside
        name, priority = m.group(1), int(m.group(2) or 0)
        body = _REGEXP.fullmatch(line.rstrip(" \t"), m.end())
        if body is None or body.group(2) or name in terms or name in rules:
            raise _Outside
        terms[name] = (body.group(0), priority)
    return {name: _alternatives(" | ".join(lines)) for name, lines in rules.items()}, terms


@lru_cache(maxsize=16384)
def _alternatives(body: str) -> tuple:
    """The alternatives of a rule's body, each a list of items: ("sym", name, op), ("str", value, None) or
    ("group", (names...), op). A string literal takes no operator and a group holds symbols only: Lark numbers
    the terminals it makes for literals in the order it meets them in its trees, the text's order only here.
    Kept across grammars (read-only tuples): JSON Schemas' grammars repeat most of their rule bodies."""
    return tuple(tuple(items) for items in _read_alternatives(body))


def _read_alternatives(body: str) -> list[list]:
    alternatives: list[list] = [[]]
    items = alternatives[0]
    group: Optional[list] = None
    pos = 0
    while pos < len(body.rstrip(" \t")):
        m = _ITEM.match(body, pos)
        if m is None:
            raise _Outside
        pos = m.end()
        if m.group("bar"):
            if group is not None:
                raise _Outside
            items = []
            alternatives.append(items)
        elif m.group("open"):
            if group is not None:
                raise _Outside
            group = []
        elif m.group("close"):
            if not group or m.group("group_op") is None:
                raise _Outside
            items.append(("group", tuple(group), m.group("group_op")))
            group = None
        elif group is not None:
            if not m.group("sym") or m.group("op"):
                raise _Outside
            group.append(m.group("sym"))
        elif m.group("sym"):
            items.append(("sym", m.group("sym"), m.group("op")))
        else:
            items.append(("str", m.group("str"), None))
    if group is not None:
        raise _Outside
    return alternatives


def _compile(rule_bodies: dict, term_patterns: dict, start: str, keep: set) -> tuple[list, list, list]:
    from lark.grammar import NonTerminal, Rule, RuleOptions, Terminal
    from lark.lexer import PatternStr, TerminalDef
    from lark.load_grammar import _TERMINAL_NAMES
    from lark.utils import is_id_continue, is_id_start

    if start not in rule_bodies:
        raise _Outside
    terminals = [TerminalDef(name, _regex_pattern(raw), priority)
                 for name, (raw, priority) in term_patterns.items()]
    term_names = set(term_patterns)
    anonymous: dict[str, str] = {}  # string literal -> its terminal, as Lark's PrepareAnonTerminals names it

    symbols: dict = {}  # one object per name (rules share them, as they share the name)

    def symbol(name: str):
        sym = symbols.get(name)
        if sym is None:
            if name[0].isupper():
                if name not in term_names:
                    raise _Outside
                sym = Terminal(name, filter_out=False)
            elif name not in rule_bodies:
                raise _Outside
            else:
                sym = NonTerminal(name)
            symbols[name] = sym
        return sym

    def literal(value: str):
        name = anonymous.get(value)
        if name is None:
            name = _TERMINAL_NAMES.get(value)
            if name is None and is_id_continue(value) and is_id_start(value[0]):
                name = value.upper()
            if name is None or name in term_names:
                raise _Outside  # Lark would number it __ANON_<n>: left to Lark
            anonymous[value] = name
            term_names.add(name)
            terminals.append(TerminalDef(name, PatternStr(value)))
        return Terminal(name, filter_out=True)

    # EBNF to BNF as Lark's EBNF_to_BNF does it: one recursive rule per repeated expression (shared by
    # every `*` and `+` of that expression), named after the rule it first occurs in, appended after all.
    repeats: dict[tuple, object] = {}
    new_rules: list[tuple[str, list]] = []

    def repeat(expr: tuple, grouped: bool, kind: str, prefix: str):
        # Lark's cache key is the expression's tree: `(b)*` and `b*` are two rules, `b*` and `b+` one
        key = (grouped, expr)
        sym = repeats.get(key)
        if sym is None:
            name = "__%s_%s_%d" % (prefix, kind, len(new_rules))
            sym = repeats[key] = symbols[name] = NonTerminal(name)
            new_rules.append((name, [list(expr), [sym, *expr]]))
        return sym

    options: dict[tuple, list] = {}  # item -> its options: the same wherever it recurs (a repeat's rule is
                                     # named after the first, and later ones find it in `repeats`)

    def options_of(item, prefix: str) -> list[list]:
        known = options.get(item)
        if known is None:
            known = options[item] = _options(item, prefix)
        return known

    def _options(item, prefix: str) -> list[list]:
        kind, value, op = item
        if kind == "group":
            expr = tuple(symbol(n) for n in value)
        elif kind == "str":
            expr = (literal(value),)
        else:
            expr = (symbol(value),)
        if op is None:
            return [list(expr)]
        if op == "?":
            return [list(expr), []]
        if op == "+":
            return [[repeat(expr, kind == "group", "plus", prefix)]]
        return [[repeat(expr, kind == "group", "star", prefix)], []]

    compiled: list[tuple[str, list, object]] = []
    for name, alternatives in rule_bodies.items():
        expansions: list[list] = []
        for items in alternatives:
            # Lark's SimplifyRule_Visitor: the leftmost choice varies slowest
            alts: list[list] = [[]]
            for item in items:
                opts = options_of(item, name)
                alts = [a + opts[0] for a in alts] if len(opts) == 1 else [a + o for a in alts for o in opts]
            expansions.extend(alts)
        compiled.append((name, _dedup(expansions), RuleOptions(False, False, priority=None, template_source=None)))
    compiled += [(name, exps, None) for name, exps in new_rules]
    origins = {name: symbols.get(name) or NonTerminal(name) for name, _, _ in compiled}  # (a symbol per name)
    rules = [Rule(origins[name], expansion, i, None, options)
             for name, expansions, options in compiled for i, expansion in enumerate(expansions)]

    # Lark's filtering of rules no other rule uses (repeatedly) and of terminals no rule uses (compared by
    # name: a rule's name is its nonterminal's, and the names of terminals and rules never meet)
    while True:
        used = {s.name for r in rules for s in r.expansion if not s.is_term and s.name != r.origin.name}
        used.add(start)
        kept_rules = [r for r in rules if r.origin.name in used]
        if len(kept_rules) == len(rules):
            break
        rules = kept_rules
    used_terms = {s.name for r in rules for s in r.expansion if s.is_term}
    terminals = [t for t in terminals if t.name in used_terms or t.name in keep]
    return terminals, rules, []


def _dedup(expansions: list[list]) -> list[list]:
    if len(expansions) < 2:
        return expansions
    seen, out = set(), []
    for e in expansions:
        key = tuple((s.is_term, s.name) for s in e)
        if key not in seen:
            seen.add(key)
            out.append(e)
    return out


def _regex_pattern(raw: str):
    pattern = _cached_regex_pattern(raw)
    if pattern is None:
        raise _Outside
    return pattern


@lru_cache(maxsize=8192)
def _cached_regex_pattern(raw: str):
    """Lark's PatternRE of a `/regex/` literal (its escapes evaluated as Lark evaluates them), None where
    Lark refuses it; shared across grammars, so that its width (an sre parse) is found once per regex."""
    from lark.lexer import PatternRE
    from lark.load_grammar import eval_escaping

    body = raw[1:-1]
    if "\\" not in body and body.isprintable():
        value = body  # what eval_escaping's literal_eval gives back, without its cost (a JSON key's regex)
    else:
        try:
            value = eval_escaping(body)
        except Exception:  # Lark's GrammarError, with Lark's message when Lark compiles it
            return None
    if not value:
        return None
    pattern = PatternRE(value, (), raw=raw)
    if not REGEX_SYNTAX.search(value):
        # Plain characters (a JSON key's spelling): each matches itself, so the width Lark would find with
        # sre_parse (get_regexp_width, its checks and its lexer's order) is the length, found without it.
        pattern._width = [len(value), len(value)]
    return pattern


# The characters that make a regex more than the characters it spells (outside a class, without flags).
REGEX_SYNTAX = re.compile(r"[.^$*+?{}\[\]\\|()]")
