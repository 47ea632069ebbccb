"""`not`, where it says something the other keywords can say exactly: `not` of a type list (the types left)
and `not` of a `required` list (key sets: some listed key absent). Any other `not` stays refused (outside
an enum/const, which is judged value by value)."""

from __future__ import annotations

from typing import Any

from .keywords import ANNOTATIONS, REQUIRED_ANY, TYPES, NoInstance, pointer, schema_error
from .schema_reader import SchemaReader


def without_not(reader: SchemaReader, schema: dict, ptr: str) -> dict:
    """The schema with its `not` rewritten into type/key-set keywords, or unchanged when it has no `not`
    or one of another shape (refuse_unsupported names it then)."""
    if "not" not in schema:
        return schema
    negated, nptr = reader.deref(schema["not"], pointer(ptr, "not"))
    if not isinstance(negated, dict):
        return schema
    asserted = set(negated) - ANNOTATIONS
    rest = {k: v for k, v in schema.items() if k != "not"}
    if asserted == {"type"}:
        return _types_left(rest, negated["type"], ptr)
    if asserted == {"required"} and isinstance(negated["required"], list) and negated["required"]:
        return _some_key_absent(rest, negated["required"], ptr)
    return schema


def _type_set(types: Any) -> set:
    return {types} if isinstance(types, str) else set(types)


def _types_left(schema: dict, negated: Any, ptr: str) -> dict:
    """not {type: T}: the instances of every other type. "number" takes "integer" with it; "integer"
    alone is refused (numbers with a fraction that is not zero are no type of their own here)."""
    excluded = _type_set(negated)
    if "integer" in excluded and "number" not in excluded:
        return {**schema, "not": {"type": negated}}  # refused by the caller, as before
    left = set(TYPES) - excluded
    if "type" in schema:
        own = _type_set(schema["type"])
        left = (own & left) | ({"integer"} if "integer" in own and "number" in left else set())
    if not left:
        raise schema_error("'not' excludes every type the schema allows: no instance is valid here",
                           pointer(ptr, "not"), NoInstance)
    return {**schema, "type": sorted(left)}


def _some_key_absent(schema: dict, keys: list, ptr: str) -> dict:
    """not {required: [k...]}: an object that lacks one of the keys (every non-object satisfies `required`,
    so `not` fails it). As key sets: each existing set, once per key it must then lack."""
    sets = schema.get(REQUIRED_ANY, [([], [])])
    return {**objects_only(schema, pointer(ptr, "not"), "'not' of 'required'"),
            REQUIRED_ANY: [(list(need), [*ban, k]) for need, ban in sets for k in dict.fromkeys(keys)]}


def objects_only(schema: dict, ptr: str, what: str) -> dict:
    """The schema with its types cut down to objects (`what` holds for no other instance)."""
    if "type" in schema and "object" not in _type_set(schema["type"]):
        raise schema_error(f"{what} holds for objects only, which 'type' excludes: no instance is valid here", ptr,
                           NoInstance)
    return {**schema, "type": "object"}
