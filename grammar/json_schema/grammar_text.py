"""The grammar text: the translator's rules, its terminal classes resolved against the finished terminal
pool, the terminals with their lexer priorities and directives (intersect, keep), and the punctuation
with the whitespace allowed around it."""

from __future__ import annotations

import json
import re
from functools import lru_cache
from typing import TYPE_CHECKING


from .numeric import FRAC, INT
from .string_lengths import length_content
from ...fsm.fsm_product import disjoint, pattern_dfa
from .terminals import Language, Term, by_language

if TYPE_CHECKING:
    from .translator import Translator

WS_MAX = 16
UNMERGED_NOTE = "// unmerged anyOf/oneOf at "  # a comment line Grammar.from_json_schema quotes in a conflict


def grammar_text(tr: Translator, root_name: str) -> str:
    """The Lark grammar of the translated schema whose root nonterminal is `root_name`."""
    if ("all", "string") in tr.classes or any(s[0] == "except" for s in tr.classes):
        tr.terms.add("string", f'"{length_content(0, None)}"', None, "#", length=(0, None))
    if ("all", "number") in tr.classes or ("all", "int") in tr.classes:
        tr.terms.add("number", INT, None, "#")
    if ("all", "number") in tr.classes or ("all", "frac") in tr.classes:
        tr.terms.add("number", FRAC, None, "#")
    inside, depth = tr.terms.finalize()
    canon = lambda t: tr.terms.alias.get(t, t)  # noqa: E731
    live = [t for t in tr.terms.terms if t not in tr.terms.alias and t not in tr.terms.hidden]
    int_re, frac_re = re.compile(INT), re.compile(FRAC)
    lines = []

    def members(spec: tuple) -> list[str]:
        if spec[0] == "sub":
            return sorted(canon(t) for t in inside[canon(spec[1])] if t in live)
        if spec[0] == "sub-except":  # inside a terminal, less some literals
            banned = {canon(t) for t in spec[2]}
            return sorted(canon(t) for t in inside[canon(spec[1])] if t in live and canon(t) not in banned)
        if spec[0] == "except":  # any string, less some literals and whatever lies inside some terminals
            banned = {canon(t) for t in spec[2]}
            banned |= {canon(t) for e in spec[3] for t in inside[canon(e)]}
            return [t for t in live if tr.terms.terms[t].family == "string" and t not in banned]
        if spec[0] == "union":  # the terminals of several classes (anyOf branches), each once
            return sorted({t for sub in spec[1] for t in members(sub)})
        if spec[0] == "atom":  # in every class of spec[1] and in none of spec[2] (object_unions.value_atoms)
            inside_all = set.intersection(*(set(members(sub)) for sub in spec[1]))
            return sorted(inside_all.difference(*(members(sub) for sub in spec[2])))
        if spec[1] in ("string", "number"):
            return [t for t in live if tr.terms.terms[t].family == spec[1]]
        # all integers / all fraction-spelled numbers: the number terminals inside that spelling
        probe = int_re if spec[1] == "int" else frac_re
        return [t for t in live if tr.terms.terms[t].family == "number" and within(tr.terms.terms[t], probe)]

    class_members = {name: members(spec) for spec, name in tr.classes.items()}
    rules = useful_rules(tr.rules, class_members, root_name)
    for spec, name in tr.classes.items():
        if name in rules["classes"]:
            lines.append(f"{name}: " + " | ".join(class_members[name]))
    for name, alts in rules["rules"].items():
        lines.append(f"{name}: " + "\n    | ".join(alts))
    for t in live:
        term = tr.terms.terms[t]
        lines.append(f"{t}.{depth[t] + 1}: /{term.pattern}/")
        if term.parts:
            others = [p.directive_item() for p in term.parts[1:]]
            lines.append(f"// grammask: intersect {t} {json.dumps(others)}")
    if live:  # the patterns are sets of spellings: alternatives in any order, as the relations compare them
        lines.append("// grammask: fullmatch " + " ".join(live))
    kept = sorted({t for k in tr.keep for t in inside[canon(k)] if t in live} |
                  {t for name in tr.keep_classes for t in class_members[name]})
    if kept:
        lines.append("// grammask: keep " + " ".join(kept))
    ws = f"[ \\t\\n\\r]{{0,{WS_MAX}}}"
    punct = {"LB": r"\{", "RB": r"\}", "LBK": r"\[", "RBK": r"\]", "COMMA": ",", "COLON": ":"}
    for t, p in punct.items():
        if tr.compact:
            lines.append(f"{t}: /{p}/")
        else:
            before = "" if t in ("LB", "LBK") else ws
            after = "" if t in ("RB", "RBK") else ws
            lines.append(f"{t}: /{before}{p}{after}/")
    lines += [f"{UNMERGED_NOTE}{json.dumps(note)[1:-1]}" for note in tr.unmerged]  # escaped: one line each
    start = f"start: {root_name}" if tr.compact else f"start: WS? {root_name} WS?\nWS: /[ \\t\\n\\r]{{1,{WS_MAX}}}/"
    return start + "\n" + "\n".join(lines) + "\n"


_SYMBOL = re.compile(r'"[^"]*"|[A-Za-z_][A-Za-z0-9_]*|[()*?|]')


def useful_rules(rules: dict, class_members: dict, root: str) -> dict:
    """The rules and classes the grammar keeps: productive ones (an empty class, such as an atom of value
    schemas no string lies in, object_unions.py, makes its alternatives unproductive, and a model must
    never write a prefix it cannot complete), and only those reachable from the root.

    An alternative is productive when every symbol outside its (...)* / (...)? groups is; a symbol
    inside a group must be productive too, as the translator only groups symbols it knows productive."""
    productive = {n for n, m in class_members.items() if m}

    def required(alt: str) -> list[str]:
        return [sym for sym in _top_level_names(alt) if sym in rules or sym in class_members]

    needs = {name: [required(a) for a in alts] for name, alts in rules.items()}
    # The least fixpoint, by a worklist: each alternative waits on the count of its symbols not yet known
    # productive; a rule turns productive when one of its alternatives waits on none.
    waiting: dict[str, list[int]] = {}
    missing: list[int] = []
    rule_of: list[str] = []
    queue: list[str] = []
    for name, alt_needs in needs.items():
        for need in alt_needs:
            pending = {s for s in need if s not in productive}
            if pending:
                for sym in pending:
                    waiting.setdefault(sym, []).append(len(missing))
                missing.append(len(pending))
                rule_of.append(name)
            elif name not in productive:
                productive.add(name)
                queue.append(name)
    while queue:
        for k in waiting.pop(queue.pop(), ()):
            missing[k] -= 1
            if not missing[k] and rule_of[k] not in productive:
                productive.add(rule_of[k])
                queue.append(rule_of[k])
    kept = {n: [a for a, need in zip(alts, needs[n]) if all(s in productive for s in need)]
            for n, alts in rules.items() if n in productive}
    reached, todo = {root}, [root]
    while todo:
        for alt in kept.get(todo.pop(), []):
            for sym in _names(alt):
                if (sym in kept or sym in class_members) and sym not in reached:
                    if sym not in productive:
                        raise AssertionError(f"grammar_text: unproductive {sym!r} inside a group of {alt!r}")
                    reached.add(sym)
                    todo.append(sym)
    return {"rules": {n: a for n, a in kept.items() if n in reached},
            "classes": {n for n in class_members if n in reached}}


# An alternative's symbols, read once per text: JSON Schemas' grammars repeat most of their alternatives.
@lru_cache(maxsize=16384)
def _names(alt: str) -> tuple:
    """The alternative's symbols, literals and group marks, in order."""
    return tuple(_SYMBOL.findall(alt))


@lru_cache(maxsize=16384)
def _top_level_names(alt: str) -> tuple:
    """The symbols of the alternative outside its (...)* / (...)? groups, in order."""
    out, depth = [], 0
    for sym in _names(alt):
        if sym == "(":
            depth += 1
        elif sym == ")":
            depth -= 1
        elif depth == 0:
            out.append(sym)
    return tuple(out)


def within(term: Term, spelling: re.Pattern) -> bool:
    """Is every number this terminal lexes written in `spelling` (integers, or with fraction/exponent)?"""
    if term.literal is not None:
        return spelling.fullmatch(term.literal) is not None
    return by_language(_within_automata, term, spelling.pattern)


@lru_cache(maxsize=4096)
def _within_automata(number: Language, spelling: str) -> bool:
    other = FRAC if spelling == INT else INT
    fsm = number.term.fsm
    return not disjoint(fsm, pattern_dfa(spelling)) and disjoint(fsm, pattern_dfa(other))
