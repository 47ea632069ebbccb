"""The grammar text: the translator's rules, its terminal classes resolved against the finished terminal
pool, the terminals with their lexer priorities and directives (intersect, keep), and the punctuation
with the whitespace allowed around it."""

from __future__ import annotations

import json
import re
from typing import TYPE_CHECKING


from .numeric import FRAC, INT
from .string_lengths import length_content
from ...fsm.fsm_product import disjoint, pattern_dfa
from .terminals import Term

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
        out, depth = [], 0
        for sym in _SYMBOL.findall(alt):
            if sym == "(":
                depth += 1
            elif sym == ")":
                depth -= 1
            elif depth == 0 and (sym in rules or sym in class_members):
                out.append(sym)
        return out

    changed = True
    while changed:
        changed = False
        for name, alts in rules.items():
            if name not in productive and any(all(s in productive for s in required(a)) for a in alts):
                productive.add(name)
                changed = True
    kept = {n: [a for a in alts if all(s in productive for s in required(a))]
            for n, alts in rules.items() if n in productive}
    reached, todo = {root}, [root]
    while todo:
        for alt in kept.get(todo.pop(), []):
            for sym in _SYMBOL.findall(alt):
                if (sym in kept or sym in class_members) and sym not in reached:
                    if sym not in productive:
                        raise AssertionError(f"grammar_text: unproductive {sym!r} inside a group of {alt!r}")
                    reached.add(sym)
                    todo.append(sym)
    return {"rules": {n: a for n, a in kept.items() if n in reached},
            "classes": {n for n in class_members if n in reached}}


def within(term: Term, spelling: re.Pattern) -> bool:
    """Is every number this terminal lexes written in `spelling` (integers, or with fraction/exponent)?"""
    if term.literal is not None:
        return spelling.fullmatch(term.literal) is not None
    other = FRAC if spelling.pattern == INT else INT
    return not disjoint(term.fsm, pattern_dfa(spelling.pattern)) and disjoint(term.fsm, pattern_dfa(other))
