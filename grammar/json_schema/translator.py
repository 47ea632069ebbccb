"""The translator: one nonterminal per distinct subschema, each dispatched to the module of its keyword
family. It owns what those modules share: the rules written so far, the terminal pool, the terminal
classes (sets of terminals resolved when the grammar is written) and the keys kept in the lexer."""

from __future__ import annotations

import json
from typing import Any, Callable

from ..json_instance import finite_values
from .arrays import array_alts
from .combinators import branch_alts, difference_alts, enum_alts
from .keywords import KNOWN, TYPES, NoInstance, pointer, refuse_unsupported, schema_error
from .negation import without_not
from .numeric import number_alts
from .objects import object_alts
from .schema_reader import SchemaReader
from .strings import string_alts
from .terminals import Terminals

# The alternatives of each JSON type but numbers (number_alts also takes whether only integers pass).
_TYPE_ALTS: dict[str, Callable[["Translator", dict, str], list[str]]] = {
    "object": object_alts,
    "array": array_alts,
    "string": string_alts,
    "boolean": lambda tr, schema, ptr: ['"true"', '"false"'],
    "null": lambda tr, schema, ptr: ['"null"'],
}


class Translator:
    """The state of one schema's translation, shared by the keyword families."""

    def __init__(self, root: Any, compact: bool, length_cap: int):
        self.reader = SchemaReader(root)
        self.compact = compact
        self.length_cap = length_cap  # the longest bounded string kept (string_lengths.LENGTH_CAP)
        self.long_bounds = False      # some length bound above SHORT_LENGTH_CAP was met
        self.rules: dict[str, list[str]] = {}
        self.memo: dict[str, str] = {}
        self.terms = Terminals()
        self.classes: dict[tuple, str] = {}
        self.keep: set[str] = set()  # terminals to lex although no rule uses them (keys that must not occur)
        self.keep_classes: set[str] = set()  # classes whose terminals are lexed likewise (values no branch of
        # a oneOf may take alone: combinators.exactly_one_alts)
        self.unmerged: list[str] = []  # anyOf/oneOf whose object/array branches stay apart, and why
        self.container_specs: dict[str, list] = {}  # object/array alternative -> its specs (object_unions.py)
        self.n = 0

    # ---- what the keyword families share ----------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def rule(self, name: str, alts: list[str], ptr: str) -> str:
        if not alts:
            raise schema_error("no instance can satisfy this schema (an empty choice)", ptr, NoInstance)
        self.rules[name] = alts
        return name

    def cls(self, spec: tuple) -> str:
        """A nonterminal for a set of terminals, resolved when all terminals are known."""
        if spec not in self.classes:
            self.classes[spec] = f"cls_{len(self.classes)}"
        return self.classes[spec]

    def class_term(self, cls_name: str) -> str:
        """The terminal whose value set the class `cls_name` (made as ("sub", terminal)) stands for."""
        return next(spec[1] for spec, n in self.classes.items() if n == cls_name and spec[0] == "sub")

    def any_value(self) -> str:
        """The rules of any JSON value (schema true or {}), made once."""
        if "any" not in self.rules:
            self.rules["any"] = []  # reserve the name (recursive)
            strs, nums = self.cls(("all", "string")), self.cls(("all", "number"))
            self.rules["any"] = ["any_obj", "any_arr", strs, nums, '"true"', '"false"', '"null"']
            self.rules["any_obj"] = ["LB RB", "LB any_member (COMMA any_member)* RB"]
            self.rules["any_member"] = [f"{strs} COLON any"]
            self.rules["any_arr"] = ["LBK RBK", "LBK any (COMMA any)* RBK"]
        return "any"

    # ---- dispatch --------------------------------------------------------------------------------
    def node(self, schema: Any, ptr: str) -> str:
        # One nonterminal per distinct subschema (by content: $refs are absolute), so that equal values
        # in two branches or properties are one nonterminal, not two an LR parser would have to choose from.
        key = json.dumps(schema, sort_keys=True) if isinstance(schema, dict) else ptr
        if key in self.memo:
            return self.memo[key]
        if schema is True or schema == {}:
            return self.any_value()
        if schema is False:
            raise schema_error("schema false: no instance is valid here", ptr, NoInstance)
        if not isinstance(schema, dict):
            raise schema_error(f"a schema must be an object or a boolean, not {type(schema).__name__}", ptr)
        name = self.fresh("v")
        self.memo[key] = name
        self.rules[name] = []  # reserved: recursion through $ref sees the name
        alts = self.schema_alts(schema, ptr)
        return self.rule(name, alts, ptr)

    def schema_alts(self, schema: dict, ptr: str) -> list[str]:
        """The alternatives of one subschema: enum/const first, then refusals, allOf, $ref, anyOf/oneOf,
        and otherwise the types."""
        schema = dict(schema)
        # An enum/const (here or in allOf) bounds the instances to a list: keep the values the whole
        # schema accepts, whatever other keywords (not, if, multipleOf, ...) say.
        values = finite_values(schema, self.reader.resolve_ref, ptr)
        if values is not None:
            return enum_alts(self, schema, values, ptr)
        schema = without_not(self.reader, schema, ptr)
        if "not" in schema:  # of another shape: where the values can be split, those the `not` leaves
            alts = difference_alts(self, schema, schema["not"], ptr)
            if alts is not None:
                return alts
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
                return branch_alts(self, schema, comb, ptr)
        return self.type_alts(schema, ptr)

    def type_alts(self, schema: dict, ptr: str) -> list[str]:
        """The alternatives of each type the schema allows (all without 'type'), in a fixed order."""
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
