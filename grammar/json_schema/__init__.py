"""JSON Schema (draft 2020-12, common draft-07 spellings) -> a Lark grammar for the engine.

Exactness first: every keyword that constrains instances is either enforced exactly by the grammar or
refused with a GrammarError naming the keyword and its JSON pointer. The grammar may be narrower than
the schema (documented below), never wider.

Narrower by design:
- properties come in schema order (required and optional alike; optional ones may be left out), and
  other keys (when additionalProperties allows them) anywhere in between;
- strings use one spelling per ASCII character (as json.dumps writes it; no \\/ and no \\u for
  printable ASCII, lowercase hex), non-ASCII raw or as \\uxxxx;
- integers without fraction or exponent; enum/const values spelled as json.dumps spells them;
- a string under a maxLength above EXACT_LENGTH: printable ASCII (short escapes allowed) and at most
  LENGTH_CAP characters (longer bounds build automata too slowly, see length_content);
- numbers with a fraction under bounds: no exponent, non-integer bounds rounded inward;
- multiples (multipleOf): no exponent (fsm/multiples.py tracks the remainder digit by digit);
- format ipv6 without zone ids, email and uri as strict subsets of their RFCs;
- whitespace: at most WS_MAX blanks around each punctuation mark (none with compact=True).

Finite instance sets: when an enum/const bounds the instances (on the schema or in its allOf), each
listed value is judged against the whole schema (json_instance.Judge) and the grammar lists the ones
that pass, so any keyword around an enum (not, if/then/else, multipleOf, ...) is exact there.

Lexing: grammask's lexer is context-free (longest match, then priority), so every string or number
terminal must lex exactly. The terminals of one schema form a laminar family (any two are disjoint or
nested); the innermost wins by priority, and a position that expects language L accepts every terminal
contained in L. Two that overlap partially get their intersection as one more terminal (the grammar's
`intersect` directive), closed under intersection; keys that must not occur are kept in the lexer
(`keep` directive) so that their text is never lexed as another key.
"""

from __future__ import annotations

import itertools
import json
import re
import time
from typing import Any, Callable, Optional

import interegular

from ...fsm.lexer import LexerTooLarge, _time_limit
from ..errors import GrammarError
from ..json_instance import Unjudgeable, distinct, finite_values
from .arrays import array_alts
from .instance_sets import check_disjoint, instance_judge
from .keywords import KNOWN, REQUIRED_ANY, TYPES, pointer, refuse_unsupported, schema_error
from .literals import literal
from .numeric import FRAC, INT, frac_range_regex, int_range_regex, number_alts
from .objects import object_alts
from .schema_reader import SchemaReader
from .string_lengths import length_content
from .strings import string_alts
from .terminals import Term, Terminals, fsm_disjoint

__all__ = ["schema_to_lark", "int_range_regex", "frac_range_regex"]

WS_MAX = 16

# The alternatives of each JSON type but numbers (number_alts also takes whether only integers pass).
_TYPE_ALTS: dict[str, Callable[["_Translator", dict, str], list[str]]] = {
    "object": object_alts,
    "array": array_alts,
    "string": string_alts,
    "boolean": lambda tr, schema, ptr: ['"true"', '"false"'],
    "null": lambda tr, schema, ptr: ['"null"'],
}


class _Translator:
    def __init__(self, root: Any, compact: bool):
        self.reader = SchemaReader(root)
        self.compact = compact
        self.rules: dict[str, list[str]] = {}
        self.memo: dict[str, str] = {}
        self.terms = Terminals()
        self.classes: dict[tuple, str] = {}
        self.keep: set[str] = set()  # terminals to lex although no rule uses them (keys that must not occur)
        self.n = 0

    # ---- helpers -------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def rule(self, name: str, alts: list[str], ptr: str) -> str:
        if not alts:
            raise schema_error("no instance can satisfy this schema (an empty choice)", ptr)
        self.rules[name] = alts
        return name

    def cls(self, spec: tuple) -> str:
        """A nonterminal for a set of terminals, resolved when all terminals are known."""
        if spec not in self.classes:
            self.classes[spec] = f"cls_{len(self.classes)}"
        return self.classes[spec]

    def class_term(self, cls_name: str) -> str:
        return next(spec[1] for spec, n in self.classes.items() if n == cls_name and spec[0] == "sub")

    def any_value(self) -> str:
        if "any" not in self.rules:
            self.rules["any"] = []  # reserve the name (recursive)
            strs, nums = self.cls(("all", "string")), self.cls(("all", "number"))
            self.rules["any"] = ["any_obj", "any_arr", strs, nums, '"true"', '"false"', '"null"']
            self.rules["any_obj"] = ["LB RB", "LB any_member (COMMA any_member)* RB"]
            self.rules["any_member"] = [f"{strs} COLON any"]
            self.rules["any_arr"] = ["LBK RBK", "LBK any (COMMA any)* RBK"]
        return "any"

    # ---- schemas ------------------------------------------------------------------------------
    def node(self, schema: Any, ptr: str) -> str:
        # One nonterminal per distinct subschema (by content: $refs are absolute), so that equal values
        # in two branches or properties are one nonterminal, not two an LR parser would have to choose from.
        key = json.dumps(schema, sort_keys=True) if isinstance(schema, dict) else ptr
        if key in self.memo:
            return self.memo[key]
        if schema is True or schema == {}:
            return self.any_value()
        if schema is False:
            raise schema_error("schema false: no instance is valid here", ptr)
        if not isinstance(schema, dict):
            raise schema_error(f"a schema must be an object or a boolean, not {type(schema).__name__}", ptr)
        name = self.fresh("v")
        self.memo[key] = name
        self.rules[name] = []  # reserved: recursion through $ref sees the name
        alts = self.schema_alts(schema, ptr)
        return self.rule(name, alts, ptr)

    def schema_alts(self, schema: dict, ptr: str) -> list[str]:
        schema = dict(schema)
        # An enum/const (here or in allOf) bounds the instances to a list: keep the values the whole
        # schema accepts, whatever other keywords (not, if, multipleOf, ...) say.
        values = finite_values(schema, self.reader.resolve_ref, ptr)
        if values is not None:
            return self.enum_alts(schema, values, ptr)
        refuse_unsupported(schema, ptr)
        if "allOf" in schema:
            return self.schema_alts(self.reader.merge_all_of(schema, ptr), ptr + "/allOf*")  # a pointer no $ref can name
        if "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k in KNOWN and k != "$ref"}
            target, tptr = self.reader.resolve_ref(schema["$ref"], pointer(ptr, "$ref"))
            if rest:
                raise schema_error("'$ref' next to other assertion keywords "
                                   f"({', '.join(sorted(rest))}) is not supported", ptr)
            return [self.node(target, tptr)]
        for comb in ("anyOf", "oneOf"):
            if comb in schema:
                branches = schema[comb]
                if not isinstance(branches, list) or not branches:
                    raise schema_error(f"{comb!r} must be a non-empty array", pointer(ptr, comb))
                if REQUIRED_ANY not in schema and \
                        all(isinstance(b, dict) and set(b) & KNOWN <= {"required"} for b in branches):
                    # "one of these key sets" (anyOf), "exactly one" (oneOf: the others each miss a key):
                    # folded into the object's rules (as branches, an object with keys of several sets would
                    # make the grammar ambiguous)
                    needs = [list(b.get("required", [])) for b in branches]
                    sets = [(need, []) for need in needs]
                    if comb == "oneOf":
                        sets = [(need, list(ban)) for j, need in enumerate(needs) for ban in
                                itertools.product(*(other for k, other in enumerate(needs) if k != j))]
                    folded = {k: v for k, v in schema.items() if k != comb}
                    folded[REQUIRED_ANY] = sets
                    return self.schema_alts(folded, ptr)
                rest = {k: v for k, v in schema.items() if k in KNOWN and k != comb}
                if comb == "oneOf":  # the siblings narrow every branch
                    check_disjoint(self.reader, [{"allOf": [rest, b]} if rest else b for b in branches], pointer(ptr, comb))
                if rest:
                    # Siblings apply to every branch: X and anyOf[B...] = anyOf[allOf[X, B]...]; the branches
                    # stay disjoint for oneOf since each only got narrower.
                    return self.union_alts([self.node({"allOf": [rest, b]}, pointer(ptr, comb, i) + "&")
                                            for i, b in enumerate(branches)])
                return self.union_alts([self.node(b, pointer(ptr, comb, i)) for i, b in enumerate(branches)])
        types = schema.get("type", list(TYPES) + ["integer"])
        if isinstance(types, str):
            types = [types]
        if not types:
            raise schema_error("'type' is an empty list", pointer(ptr, "type"))
        unknown = [t for t in types if t not in TYPES and t != "integer"]
        if unknown:
            raise schema_error(f"unknown type {unknown[0]!r}", pointer(ptr, "type"))
        alts = []
        for t in TYPES:
            if t == "number" and ("number" in types or "integer" in types):
                alts.extend(number_alts(self, schema, ptr, integer="number" not in types))
            elif t in types:
                alts.extend(_TYPE_ALTS[t](self, schema, ptr))
        return alts

    def union_alts(self, nodes: list[str]) -> list[str]:
        """The alternatives of anyOf/oneOf branches, flattened: the branches' terminal sets merged into one
        set and equal alternatives kept once. (A value two branches' sets share would make the LR parser
        pick a branch it cannot know yet: a reduce/reduce conflict.)"""
        flat: list[str] = []

        def expand(alt: str, depth: int) -> None:
            rule = self.rules.get(alt)
            if rule and depth < 8 and alt.startswith("v_"):  # a value node (not one still being built)
                for a in rule:
                    expand(a, depth + 1)
            elif alt not in flat:
                flat.append(alt)

        for n in nodes:
            expand(n, 0)
        spec_of = {name: spec for spec, name in self.classes.items()}
        sets = [a for a in flat if a in spec_of]
        if len(sets) < 2:
            return flat
        merged = self.cls(("union", frozenset(spec_of[a] for a in sets)))
        return [merged] + [a for a in flat if a not in spec_of]

    def enum_alts(self, schema: dict, values: list, ptr: str) -> list[str]:
        """The listed values the whole schema accepts (judged one by one), each as a literal."""
        judge = instance_judge(self.reader)
        try:
            kept = [v for v in distinct(values) if judge.valid(schema, v, ptr)]
        except Unjudgeable as exc:
            raise schema_error(f"cannot check the enum/const values against the rest of the schema: {exc}", ptr) from None
        if not kept:
            raise schema_error("no value of 'enum'/'const' satisfies the rest of the schema", ptr)
        return [literal(self.terms, v, pointer(ptr, "enum")) for v in kept]

    # ---- grammar text -------------------------------------------------------------------------
    def grammar(self, root_name: str) -> str:
        if ("all", "string") in self.classes or any(s[0] == "except" for s in self.classes):
            self.terms.add("string", f'"{length_content(0, None)}"', None, "#", length=(0, None))
        if ("all", "number") in self.classes or ("all", "int") in self.classes:
            self.terms.add("number", INT, None, "#")
        if ("all", "number") in self.classes or ("all", "frac") in self.classes:
            self.terms.add("number", FRAC, None, "#")
        inside, depth = self.terms.finalize()
        canon = lambda t: self.terms.alias.get(t, t)  # noqa: E731
        live = [t for t in self.terms.terms if t not in self.terms.alias and t not in self.terms.hidden]
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
                return [t for t in live if self.terms.terms[t].family == "string" and t not in banned]
            if spec[0] == "union":  # the terminals of several classes (anyOf branches), each once
                return sorted({t for sub in spec[1] for t in members(sub)})
            if spec[1] in ("string", "number"):
                return [t for t in live if self.terms.terms[t].family == spec[1]]
            # all integers / all fraction-spelled numbers: the number terminals inside that spelling
            probe = int_re if spec[1] == "int" else frac_re
            return [t for t in live if self.terms.terms[t].family == "number" and _within(self.terms.terms[t], probe)]

        for spec, name in self.classes.items():
            lines.append(f"{name}: " + " | ".join(members(spec)))
        for name, alts in self.rules.items():
            lines.append(f"{name}: " + "\n    | ".join(alts))
        for t in live:
            term = self.terms.terms[t]
            lines.append(f"{t}.{depth[t] + 1}: /{term.pattern}/")
            if term.parts:
                others = [p.directive_item() for p in term.parts[1:]]
                lines.append(f"// grammask: intersect {t} {json.dumps(others)}")
        kept = sorted({t for k in self.keep for t in inside[canon(k)] if t in live})
        if kept:
            lines.append("// grammask: keep " + " ".join(kept))
        ws = f"[ \\t\\n\\r]{{0,{WS_MAX}}}"
        punct = {"LB": r"\{", "RB": r"\}", "LBK": r"\[", "RBK": r"\]", "COMMA": ",", "COLON": ":"}
        for t, p in punct.items():
            if self.compact:
                lines.append(f"{t}: /{p}/")
            else:
                before = "" if t in ("LB", "LBK") else ws
                after = "" if t in ("RB", "RBK") else ws
                lines.append(f"{t}: /{before}{p}{after}/")
        start = f"start: {root_name}" if self.compact else f"start: WS? {root_name} WS?\nWS: /[ \\t\\n\\r]{{1,{WS_MAX}}}/"
        return start + "\n" + "\n".join(lines) + "\n"


def _within(term: Term, spelling: re.Pattern) -> bool:
    """Is every number this terminal lexes written in `spelling` (integers, or with fraction/exponent)?"""
    if term.literal is not None:
        return spelling.fullmatch(term.literal) is not None
    other = FRAC if spelling.pattern == INT else INT
    return not fsm_disjoint(term.fsm, interegular.parse_pattern(spelling.pattern).to_fsm()) and \
        fsm_disjoint(term.fsm, interegular.parse_pattern(other).to_fsm())


def schema_to_lark(schema: Any, compact: bool = False, timeout: Optional[float] = 30.0) -> str:
    """The Lark grammar (start rule `start`) of the JSON texts valid under `schema`."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise GrammarError(f"JSON Schema: not valid JSON: {exc}") from None
    elif hasattr(schema, "model_json_schema"):  # a Pydantic model class (duck-typed: no dependency)
        schema = schema.model_json_schema()
    if not isinstance(schema, (dict, bool)):
        raise GrammarError(f"JSON Schema must be an object or a boolean, not {type(schema).__name__}")
    t = _Translator(schema, compact)
    deadline = time.monotonic() + timeout if timeout else None
    try:
        with _time_limit(deadline):  # the automaton comparisons (interegular) can blow up too
            root = t.node(schema, "#")
            return t.grammar(root)
    except RecursionError:
        raise GrammarError("JSON Schema: nested too deeply") from None
    except LexerTooLarge:
        raise GrammarError(f"JSON Schema: comparing its string/number constraints took longer than {timeout} s "
                           "(build_timeout)") from None
