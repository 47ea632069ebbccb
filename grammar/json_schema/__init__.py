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
import math
import re
import time
from typing import Any, Optional

import interegular

from ...fsm.lexer import LexerTooLarge, _time_limit
from ...fsm.multiples import checked_multiple_fsm, multiple_parts
from ..errors import GrammarError
from ..json_instance import Unjudgeable, distinct, finite_values
from ..regex import Emitter, RegexRefused, class_run, decimal_class, digit_range, intersect, json_spelling
from .formats import FORMATS, SPECIFIED_FORMATS
from .instance_sets import check_disjoint, instance_judge, no_value_satisfies
from .keywords import KNOWN, REQUIRED_ANY, TYPES, count_keyword, pointer, refuse_unsupported, schema_error
from .literals import literal, string_literal
from .schema_reader import SchemaReader
from .string_lengths import ANY_CHAR, EXACT_LENGTH, LENGTH_CAP, length_content
from .terminals import Term, Terminals, fsm_disjoint

WS_MAX = 16
MAX_TRACKED_ITEMS = 1000
MAX_COUNTED_PROPERTIES = 32  # minProperties/maxProperties: the object rules are copied once per count
MAX_KEY_SETS = 6  # object key sets (required, anyOf/oneOf of required lists, dependencies): 2**6 - 1 state tags

_INT = r"-?(?:0|[1-9][0-9]*)"
_FRAC = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)"
_FRAC_NONNEG = r"(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)"
# > 0: some nonzero digit in the mantissa.
_FRAC_POS = (r"(?:[1-9][0-9]*\.[0-9]+(?:[eE][+-]?[0-9]+)?|[1-9][0-9]*[eE][+-]?[0-9]+"
             r"|0\.[0-9]*[1-9][0-9]*(?:[eE][+-]?[0-9]+)?)")


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

    def _class_term(self, cls_name: str) -> str:
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
                alts.extend(self.number_alts(schema, ptr, integer="number" not in types))
            elif t in types:
                alts.extend(getattr(self, f"{t}_alts")(schema, ptr))
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

    def null_alts(self, schema, ptr):
        return ['"null"']

    def boolean_alts(self, schema, ptr):
        return ['"true"', '"false"']

    # ---- strings ------------------------------------------------------------------------------
    def string_alts(self, schema: dict, ptr: str) -> list[str]:
        present = [k for k in ("pattern", "format", "minLength", "maxLength") if k in schema]
        fmt = schema.get("format")
        if fmt is not None and fmt not in FORMATS:
            if fmt in SPECIFIED_FORMATS:
                raise schema_error(f"format {fmt!r} is not supported (supported: {', '.join(sorted(FORMATS))})",
                                   pointer(ptr, "format"))
            # A format no draft defines asserts nothing: validators must let every string pass.
            schema = {k: v for k, v in schema.items() if k != "format"}
            fmt = None
        lo = count_keyword(schema, "minLength", ptr, 0)
        hi = count_keyword(schema, "maxLength", ptr, None)
        length = lo > 0 or hi is not None
        kinds = [k for k in ("pattern", "format") if k in schema] + (["minLength/maxLength"] if length else [])
        if kinds == ["pattern", "minLength/maxLength"] and isinstance(schema["pattern"], str):
            run = class_run(schema["pattern"])
            if run is not None:  # ^[class]{a,b}$ with length bounds: the class, counted once
                return self.class_run_alts(run, lo, hi, ptr)
        if len(kinds) > 1:
            # Each constraint's strings, then their intersection (unless one lies inside the others).
            parts = [{k: v for k, v in schema.items() if k not in ("pattern", "format", "minLength", "maxLength")
                      or k == kind or kind == "minLength/maxLength" and k in ("minLength", "maxLength")}
                     for kind in kinds]
            names = [self._class_term(self.string_alts(part, ptr)[0]) for part in parts]
            name = names[0]
            for other in names[1:]:
                rel = self.terms.relation(self.terms.terms[name], self.terms.terms[other])
                if rel == "disjoint":
                    raise schema_error(f"{' together with '.join(kinds)}: no string satisfies them all", ptr)
                if rel in ("super", "equal"):
                    name = other
                elif rel == "overlap":
                    name = self.terms.both(name, other)
            return [self.cls(("sub", name))]
        if not present or kinds == []:
            return [self.cls(("all", "string"))]
        if "pattern" in schema:
            content = self.pattern_content(schema["pattern"], pointer(ptr, "pattern"))
        elif "format" in schema:
            body, _, _ = Emitter(json_spelling).emit(FORMATS[fmt])
            content = body
        else:
            if not (isinstance(lo, int) and lo >= 0 and (hi is None or isinstance(hi, int) and hi >= 0)):
                raise schema_error("minLength/maxLength must be non-negative integers", ptr)
            if hi is not None and hi < lo:
                raise schema_error("maxLength < minLength: no string is valid", ptr)
            if lo > LENGTH_CAP:
                raise schema_error(f"minLength above {LENGTH_CAP} is not supported", ptr)
            hi = None if hi is None else min(hi, LENGTH_CAP)
            name = self.terms.add("string", f'"{length_content(lo, hi)}"', None, ptr, length=(lo, hi))
            return [self.cls(("sub", name))]
        name = self.terms.add("string", f'"{content}"', None, ptr)
        return [self.cls(("sub", name))]

    def class_run_alts(self, run: tuple, lo: int, hi: Optional[int], ptr: str) -> list[str]:
        """Strings of characters from one class, with both the pattern's and the length bounds."""
        ranges, a, b = run
        lo, hi = max(lo, a), (b if hi is None else hi if b is None else min(hi, b))
        if hi is not None and hi < lo:
            raise schema_error("the pattern and minLength/maxLength leave no string", ptr)
        if hi is not None and hi > EXACT_LENGTH:
            # As for plain bounded strings: beyond EXACT_LENGTH, printable ASCII and at most LENGTH_CAP long.
            if lo > LENGTH_CAP:
                raise schema_error(f"minLength above {LENGTH_CAP} is not supported", ptr)
            hi = min(hi, LENGTH_CAP)
            ranges = intersect(ranges, [(0x20, 0x7E)])
            if not ranges:
                raise schema_error("pattern with a long maxLength: only classes with printable ASCII characters are "
                                   "supported", ptr)
        count = f"{{{lo},}}" if hi is None else f"{{{lo},{hi}}}"
        name = self.terms.add("string", f'"(?:{json_spelling(ranges)}){count}"', None, ptr)
        return [self.cls(("sub", name))]

    def pattern_keys(self, patterns: Any, ptr: str) -> list[tuple[str, Any, str]]:
        """patternProperties as (key terminal, value schema, pointer); the patterns must be pairwise disjoint
        (else a key could owe its value to two schemas at once)."""
        if not isinstance(patterns, dict):
            raise schema_error("'patternProperties' must be an object", ptr)
        out = []
        for p, sub in patterns.items():
            pptr = pointer(ptr, p)
            term = self.terms.add("string", f'"{self.pattern_content(p, pptr)}"', None, pptr)
            for other, _, optr in out:
                if self.terms.relation(self.terms.terms[term], self.terms.terms[other]) != "disjoint":
                    raise schema_error(f"patternProperties whose patterns overlap ({optr} and {pptr}) are not supported",
                                       ptr)
            out.append((term, sub, pptr))
        return out

    def pattern_content(self, pattern: Any, ptr: str) -> str:
        if not isinstance(pattern, str):
            raise schema_error("'pattern' must be a string", ptr)
        try:
            body, start, end = Emitter(json_spelling).emit(pattern)
        except RegexRefused as exc:
            raise schema_error(f"pattern {pattern!r}: {str(exc)}", ptr) from None
        # JSON Schema patterns search: an unanchored end may be followed/preceded by anything.
        pad = f"(?:{ANY_CHAR})*"
        return ("" if start else pad) + body + ("" if end else pad)

    # ---- numbers ------------------------------------------------------------------------------
    def number_alts(self, schema: dict, ptr: str, integer: bool) -> list[str]:
        step = None
        if "multipleOf" in schema:
            try:
                step = multiple_parts(schema["multipleOf"])
                checked_multiple_fsm(*step)
            except ValueError as exc:
                raise schema_error(f"'multipleOf': {exc}", pointer(ptr, "multipleOf")) from None
            if integer and step == (1, 0):
                step = None  # every integer

        def value_set(name: str) -> str:  # a terminal's values (the multiples among them, under multipleOf)
            return self.cls(("sub", self.terms.multiple_of(name, step, ptr) if step else name))

        lo, lo_x = schema.get("minimum"), False
        hi, hi_x = schema.get("maximum"), False
        emin, emax = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if emin is True:
            lo_x = True
        elif isinstance(emin, (int, float)) and not isinstance(emin, bool):
            if lo is None or emin >= lo:
                lo, lo_x = emin, True
        if emax is True:
            hi_x = True
        elif isinstance(emax, (int, float)) and not isinstance(emax, bool):
            if hi is None or emax <= hi:
                hi, hi_x = emax, True
        for v, k in ((lo, "minimum"), (hi, "maximum")):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise schema_error(f"'{k}' must be a finite number", pointer(ptr, k))
        # Integer values: an interval of integers.
        ilo = None if lo is None else (math.floor(lo) + 1 if lo_x and lo == math.floor(lo) else math.ceil(lo))
        ihi = None if hi is None else (math.ceil(hi) - 1 if hi_x and hi == math.ceil(hi) else math.floor(hi))
        alts = []
        if ilo is not None and ihi is not None and ilo > ihi:
            if integer:
                raise schema_error("the bounds leave no integer", ptr)
        elif ilo is None and ihi is None:
            alts.append(value_set(self.terms.add("number", _INT, None, ptr)) if step else self.cls(("all", "int")))
        else:
            alts.append(value_set(self.terms.add("number", int_range_regex(ilo, ihi), None, ptr)))
        if integer:
            return alts
        # Numbers written with a fraction or exponent (multiples: with a fraction, no exponent).
        if lo is None and hi is None:
            alts.append(value_set(self.terms.add("number", _FRAC, None, ptr)) if step else self.cls(("all", "frac")))
        elif hi is None and lo == 0:
            alts.append(value_set(self.terms.add("number", _FRAC_POS if lo_x else _FRAC_NONNEG, None, ptr)))
        else:
            # Non-integer bounds are rounded inward (a sound narrowing); no exponent under bounds.
            flo, fhi = (None if lo is None else math.ceil(lo)), (None if hi is None else math.floor(hi))
            pattern = frac_range_regex(flo, lo_x and flo == lo, fhi, hi_x and fhi == hi)
            if pattern is not None:
                alts.append(value_set(self.terms.add("number", pattern, None, ptr)))
        return alts

    # ---- objects ------------------------------------------------------------------------------
    def object_alts(self, schema: dict, ptr: str) -> list[str]:
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            raise schema_error("'properties' must be an object", pointer(ptr, "properties"))
        patterns = self.pattern_keys(schema.get("patternProperties", {}), pointer(ptr, "patternProperties"))
        required = schema.get("required", [])
        # Key sets: an object has every key of one set's `need` and none of its `ban`. From `required`, an
        # anyOf/oneOf of required lists (folded in by schema_alts) and dependencies (k present needs its keys:
        # one copy of each set without k, one with k and its keys).
        sets = [(set(required) | set(need), set(ban)) for need, ban in schema.get(REQUIRED_ANY, [([], [])])]
        sets = [(need, ban) for need, ban in sets if not need & ban]
        for kw in ("dependencies", "dependentRequired"):
            for k, needs in schema.get(kw, {}).items():
                sets = [(need, ban | {k}) for need, ban in sets] + [(need | {k, *needs}, ban) for need, ban in sets]
                sets = [(need, ban) for need, ban in sets if not need & ban]
        if len(sets) > MAX_KEY_SETS:
            raise schema_error(f"required/anyOf/dependencies make more than {MAX_KEY_SETS} key sets", ptr)
        addl = schema.get("additionalProperties", True)
        # A property whose schema is false must be absent: not a member (refused below if other keys may occur).
        absent = [k for k, v in props.items() if v is False]
        value_ptr = {k: pointer(ptr, "properties", k) for k in props if k not in absent}
        named = [*required, *(r for need, ban in schema.get(REQUIRED_ANY, []) for r in (*need, *ban)),
                 *(r for kw in ("dependencies", "dependentRequired") for k, needs in schema.get(kw, {}).items()
                   for r in (k, *needs))]
        for r in dict.fromkeys(named):  # in the order the schema names them
            if r not in value_ptr and r not in absent:  # named in a set, not listed: a member after the listed ones
                value_ptr[r] = pointer(ptr, "required", r)
        keys = list(value_ptr)
        # The schemas a listed key's value must satisfy: its own and those of the patterns it matches; a
        # key not listed takes the patterns it matches, or else additionalProperties.
        schemas = {}
        for k in keys:
            spelled = json.dumps(k, ensure_ascii=False)
            parts = ([(props[k], value_ptr[k])] if k in props else []) + \
                [(sub, sptr) for term, sub, sptr in patterns if self.terms.terms[term].matches(spelled)]
            if not parts:
                if addl is False:  # a key no object may have
                    absent.append(k)
                    continue
                parts = [(addl, pointer(ptr, "additionalProperties"))]
            if len(parts) == 1:
                schemas[k], value_ptr[k] = parts[0]
            else:  # a pointer no $ref can name
                schemas[k], value_ptr[k] = {"allOf": [p for p, _ in parts]}, pointer(ptr, "properties", k) + "&patterns"
        for k in keys:  # a property no value satisfies must be absent, like one with schema false
            if k not in absent and no_value_satisfies(self.reader, schemas[k], value_ptr[k]):
                absent.append(k)
        keys = [k for k in keys if k not in absent]
        if all(need & set(absent) for need, _ in sets):
            bad = min(r for need, _ in sets for r in need & set(absent))
            raise schema_error(f"required property {bad!r} cannot occur (schema false, no value satisfies it, or "
                               "additionalProperties false): no object is valid", pointer(ptr, "required"))
        sets = [(need, ban - set(absent)) for need, ban in sets if not need & set(absent)]
        if addl is not False:
            # Keys that must not occur while other keys may: the lexer must know them (a terminal no
            # rule uses is left out of it, and its text would be lexed as any other key).
            self.keep.update(string_literal(self.terms, k, ptr) for k in absent)
            self.keep.update(term for term, sub, _ in patterns if sub is False)
        req = [frozenset(j for j, (need, _) in enumerate(sets) if k in need) for k in keys]
        banned = [frozenset(j for j, (_, ban) in enumerate(sets) if k in ban) for k in keys]
        n = len(keys)
        base = self.fresh("o")
        members = []
        for j, k in enumerate(keys):
            key = string_literal(self.terms, k, value_ptr[k])
            value = self.node(schemas[k], value_ptr[k])
            members.append(f"{key} COLON {value}")
        extra = None
        key_terms = frozenset(string_literal(self.terms, k, ptr) for k in keys + absent)
        # Other keys: those matching a pattern (patterns are disjoint: one schema each), then the rest.
        extra_alts = [f"{self.cls(('sub-except', term, key_terms))} COLON {self.node(sub, sptr)}"
                      for term, sub, sptr in patterns if sub is not False]  # false: keys that must not occur
        if addl is not False:
            xkey = self.cls(("except", "string", key_terms, frozenset(term for term, _, _ in patterns)))
            extra_alts.append(f"{xkey} COLON {self.node(addl, pointer(ptr, 'additionalProperties'))}")
        if extra_alts:
            extra = self.rule(f"{base}_x", extra_alts, ptr)
        least = count_keyword(schema, "minProperties", ptr, 0)
        most = count_keyword(schema, "maxProperties", ptr, None)
        if least <= min(len(need) for need, _ in sets):
            least = 0  # the required keys already make it
        if most is not None and extra is None and most >= n:
            most = None  # cannot be exceeded
        if max(least, most or 0) > MAX_COUNTED_PROPERTIES:
            raise schema_error(f"minProperties/maxProperties above {MAX_COUNTED_PROPERTIES} are not supported", ptr)
        return self.object_rules(base, members, req, banned, len(sets), extra, least, most, ptr)

    def object_rules(self, base: str, members: list[str], req: list[frozenset], banned: list[frozenset], n_sets: int,
                     extra: Optional[str], least: int, most: Optional[int], ptr: str) -> list[str]:
        """Members in schema order, other keys anywhere between, the member count kept in [least, most], and
        the members of one of `n_sets` key sets present and absent as the set says (req[i], banned[i]: the
        sets that need member i, that ban it).

        O(i,c,s): after a member, c members so far (at most `top`, saturating at `least` without `most`), the
        last listed property written having index i-1, s the key sets no written or skipped member ruled out.
        A(i,c,s): the next member (after a comma or the brace). B(i,c,s): a listed property j >= i. Only
        productive rules are made (an empty choice would let a model write a prefix it cannot complete)."""
        n = len(members)
        top = most if most is not None else least
        bump = (lambda c: c + 1) if most is not None else (lambda c: min(c + 1, least))  # noqa: E731
        all_sets = frozenset(range(n_sets))
        alive_sets = [frozenset(j for j in range(n_sets) if bits >> j & 1) for bits in range(1, 1 << n_sets)]

        def name(kind: str, i: int, c: int, alive: frozenset) -> str:
            tag = "_s" + "".join(map(str, sorted(alive))) if n_sets > 1 else ""
            return f"{base}_{kind}{i}" + (f"_{c}" if top else "") + tag

        def satisfied(i: int, alive: frozenset) -> bool:  # a set alive needs no member from i on
            return any(all(j not in req[t] for t in range(i, n)) for j in alive)

        made: set[str] = set()

        def make(kind: str, i: int, c: int, alive: frozenset, alts: list[str]) -> None:
            if alts:
                self.rule(name(kind, i, c, alive), alts, ptr)
                made.add(name(kind, i, c, alive))

        for i in range(n, -1, -1):
            for c in range(top, -1, -1):
                for alive in alive_sets:
                    room = most is None or c < most
                    closes = satisfied(i, alive) and c >= least
                    if room and i < n:
                        kept = alive - banned[i]  # the sets still possible with member i
                        nxt = name("o", i + 1, bump(c), kept) if kept else None
                        b_alts = [f"{members[i]} {nxt}"] if nxt in made else []
                        rest = alive - req[i]  # the sets still possible without member i
                        if rest and i + 1 < n and name("b", i + 1, c, rest) in made:
                            b_alts.append(name("b", i + 1, c, rest))
                        make("b", i, c, alive, b_alts)
                    if room:
                        nxt = name("o", i, bump(c), alive)
                        # O(i,c,s) itself when the count saturates: productive if it can close, or if B(i,c,s) is.
                        loops_back = bump(c) == c and (closes or name("b", i, c, alive) in made)
                        a_alts = [f"{extra} {nxt}"] if extra and (nxt in made or loops_back) else []
                        if name("b", i, c, alive) in made:
                            a_alts.append(name("b", i, c, alive))
                        make("a", i, c, alive, a_alts)
                    o_alts = (["RB"] if closes else []) + \
                        ([f"COMMA {name('a', i, c, alive)}"] if name("a", i, c, alive) in made else [])
                    make("o", i, c, alive, o_alts)
        alts = ["LB RB"] if satisfied(0, all_sets) and least == 0 else []
        if name("a", 0, 0, all_sets) in made:
            alts.append(f"LB {name('a', 0, 0, all_sets)}")
        return alts

    # ---- arrays -------------------------------------------------------------------------------
    def array_alts(self, schema: dict, ptr: str) -> list[str]:
        prefix, rest, rest_ptr = [], schema.get("items", True), pointer(ptr, "items")
        if "prefixItems" in schema:
            prefix = schema["prefixItems"]
        elif isinstance(schema.get("items"), list):  # draft-07 tuple form
            prefix, rest, rest_ptr = schema["items"], schema.get("additionalItems", True), pointer(ptr, "additionalItems")
        lo = count_keyword(schema, "minItems", ptr, 0)
        hi = count_keyword(schema, "maxItems", ptr, None)
        k = len(prefix)
        if rest is False:
            hi = k if hi is None else min(hi, k)
        if hi is not None and lo > hi:
            raise schema_error("minItems > maxItems (or more than the tuple allows): no array is valid", ptr)
        tracked = max(k, lo) if hi is None else hi
        if tracked > MAX_TRACKED_ITEMS:
            raise schema_error(f"array bounds above {MAX_TRACKED_ITEMS} items are not supported", ptr)
        base = self.fresh("a")

        def item(i: int) -> str:
            if i < k:
                return self.node(prefix[i], pointer(ptr, "prefixItems" if "prefixItems" in schema else "items", i))
            return self.node(rest, rest_ptr)

        # S_i: i items written so far.
        loop_at = max(k, lo) if hi is None else None
        for i in range(1, tracked + 1):
            if loop_at is not None and i == loop_at:
                self.rule(f"{base}_s{i}", [f"(COMMA {item(i)})* RBK"], ptr)
                break
            alts = (["RBK"] if i >= lo else []) + ([f"COMMA {item(i)} {base}_s{i + 1}"] if hi is None or i < hi else [])
            self.rule(f"{base}_s{i}", alts, ptr)
        alts = ["LBK RBK"] if lo == 0 else []
        if hi is None or hi >= 1:
            if loop_at == 0:
                alts = ["LBK RBK", f"LBK {item(0)} (COMMA {item(0)})* RBK"]
            else:
                alts.append(f"LBK {item(0)} {base}_s1")
        return alts

    # ---- grammar text -------------------------------------------------------------------------
    def grammar(self, root_name: str) -> str:
        if ("all", "string") in self.classes or any(s[0] == "except" for s in self.classes):
            self.terms.add("string", f'"{length_content(0, None)}"', None, "#", length=(0, None))
        if ("all", "number") in self.classes or ("all", "int") in self.classes:
            self.terms.add("number", _INT, None, "#")
        if ("all", "number") in self.classes or ("all", "frac") in self.classes:
            self.terms.add("number", _FRAC, None, "#")
        inside, depth = self.terms.finalize()
        canon = lambda t: self.terms.alias.get(t, t)  # noqa: E731
        live = [t for t in self.terms.terms if t not in self.terms.alias and t not in self.terms.hidden]
        int_re, frac_re = re.compile(_INT), re.compile(_FRAC)
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
    other = _FRAC if spelling.pattern == _INT else _INT
    return not fsm_disjoint(term.fsm, interegular.parse_pattern(spelling.pattern).to_fsm()) and \
        fsm_disjoint(term.fsm, interegular.parse_pattern(other).to_fsm())


def int_range_regex(lo: Optional[int], hi: Optional[int]) -> str:
    """Regex for the decimal integers (json.dumps spelling) in [lo, hi]; None is unbounded."""
    parts = []
    if lo is None or lo < 0:  # negative part: -m for m in [max(1, -hi), -lo]
        m_lo = 1 if hi is None or hi >= 0 else -hi
        m_hi = None if lo is None else -lo
        if m_hi is None or m_lo <= m_hi:
            parts.append("-" + _nonneg_range(m_lo, m_hi))
    if hi is None or hi >= 0:
        a = 0 if lo is None or lo < 0 else lo
        if hi is None or a <= hi:
            parts.append(_nonneg_range(a, hi))
    return "(?:" + "|".join(parts) + ")"


def frac_range_regex(lo: Optional[int], lo_x: bool, hi: Optional[int], hi_x: bool) -> Optional[str]:
    """Regex for the numbers written with a fraction and no exponent (-?I.F) in the interval from lo to hi
    (integers; None unbounded; *_x exclusive); None if there is none."""
    parts = []
    if hi is None or hi > 0 or (hi == 0 and not hi_x):  # values >= 0
        at_lo = lo is not None and lo >= 0
        parts.append(_frac_magnitude(lo if at_lo else 0, lo_x and at_lo, hi, hi_x))
    if lo is None or lo < 0 or (lo == 0 and not lo_x):  # values <= 0, as -magnitude
        at_hi = hi is not None and hi <= 0
        m = _frac_magnitude(-hi if at_hi else 0, hi_x and at_hi, None if lo is None else -lo, lo_x)
        parts.append(None if m is None else "-" + m)
    parts = [p for p in parts if p is not None]
    return "(?:" + "|".join(parts) + ")" if parts else None


def _frac_magnitude(a: int, a_x: bool, b: Optional[int], b_x: bool) -> Optional[str]:
    """I.F with a <= I.F <= b (bounds >= 0, *_x exclusive): a nonzero fraction needs a <= I < b; an all-zero
    fraction is the integer I itself."""
    parts = []
    if b is None or a <= b - 1:
        parts.append(_nonneg_range(a, None if b is None else b - 1) + r"\.[0-9]*[1-9][0-9]*")
    z_lo, z_hi = a + a_x, None if b is None else b - b_x
    if z_hi is None or z_lo <= z_hi:
        parts.append(_nonneg_range(z_lo, z_hi) + r"\.0+")
    return "(?:" + "|".join(parts) + ")" if parts else None


def _nonneg_range(lo: int, hi: Optional[int]) -> str:
    parts = []
    if lo == 0:
        parts.append("0")
        lo = 1
        if hi == 0:
            return "0"
    n_lo = len(str(lo))
    n_hi = len(str(hi)) if hi is not None else n_lo
    for n in range(n_lo, n_hi + 1):
        a = max(lo, 10 ** (n - 1))
        b = (10 ** n - 1) if hi is None else min(hi, 10 ** n - 1)
        if a <= b:
            parts.append(digit_range(a, b, n, 10, decimal_class))
    if hi is None:
        parts.append(f"[1-9][0-9]{{{n_lo},}}")
    return "(?:" + "|".join(parts) + ")"


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
