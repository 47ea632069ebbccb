"""What can be proved about the instances of schemas without building a grammar: the JSON types they
admit, whether two admit no common instance (for oneOf), and whether an enum/const leaves none."""

from __future__ import annotations

from typing import Any, Optional

from ..errors import GrammarError
from ..json_instance import Judge, Unjudgeable, distinct, finite_values
from .formats import FORMATS, SPECIFIED_FORMATS
from .keywords import ANNOTATIONS, NUMBER_KW, TYPES, pointer, schema_error
from .string_lengths import EXACT_LENGTH
from .schema_reader import SchemaReader


def instance_judge(reader: SchemaReader) -> Judge:
    """A judge of single instances against the schemas of this document."""
    return Judge(reader.resolve_ref, FORMATS, SPECIFIED_FORMATS)


def json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def possible_types(reader: SchemaReader, schema: Any, ptr: str, seen=()) -> Optional[set]:
    """The JSON types a schema admits (integer counted as number), or None if unknown."""
    if schema is True or schema == {}:
        return set(TYPES)
    if schema is False:
        return set()
    if not isinstance(schema, dict):
        return None
    if "$ref" in schema and ptr not in seen:
        target, tptr = reader.resolve_ref(schema["$ref"], ptr)
        return possible_types(reader, target, tptr, seen + (ptr,))
    t = schema.get("type", list(TYPES))
    out = {"number" if x == "integer" else x for x in ([t] if isinstance(t, str) else t)}
    if "const" in schema or "enum" in schema:  # the listed values' types bound it too
        values = [schema["const"]] if "const" in schema else schema["enum"]
        if not isinstance(values, list):
            return None
        out &= {json_type(v) for v in values}
    for comb in ("anyOf", "oneOf"):
        if comb in schema:
            union = set()
            for i, b in enumerate(schema[comb]):
                bt = possible_types(reader, b, pointer(ptr, comb, i), seen)
                if bt is None:
                    return None
                union |= bt
            out &= union
    for i, b in enumerate(schema.get("allOf", [])):  # each part bounds it; an unknown part does not
        bt = possible_types(reader, b, pointer(ptr, "allOf", i), seen)
        if bt is not None:
            out &= bt
    return out


class OverlappingBranches(GrammarError):
    """oneOf branches neither proved disjoint nor narrowed apart."""


def exclusive_branches(reader: SchemaReader, branches: list, ptr: str) -> list:
    """oneOf as anyOf of branches no instance can match two of: each pair proved disjoint (see disjoint),
    or, for two object branches each requiring a key the other does not, both narrowed to objects
    without the other's key (see without_each_others_key). Refused when neither works."""
    out = list(branches)
    for i in range(len(out)):
        for j in range(i + 1, len(out)):
            if disjoint(reader, out[i], pointer(ptr, i), out[j], pointer(ptr, j)):
                continue
            narrowed = without_each_others_key(reader, out[i], pointer(ptr, i), out[j], pointer(ptr, j))
            if narrowed is None:
                raise schema_error(f"'oneOf' branches {i} and {j} may overlap, which is not supported "
                                   "(cannot prove exactly one matches)", ptr, OverlappingBranches)
            out[i], out[j] = narrowed
    return out


def without_each_others_key(reader: SchemaReader, a: Any, pa: str, b: Any, pb: str) -> Optional[tuple]:
    """Two object-only branches A and B that may overlap, as A' = A without a key B requires and B' = B
    without a key A requires (None if there are no such keys). Sound for oneOf: every object of B has
    A' 's missing key, so A' holds no instance of B, and the other way round; what is lost are the
    objects of A that carry B's key (or of B with A's), a narrowing the README lists. The key taken is
    one the branch does not list, when it can be, so that the branch loses only unlisted members."""
    if any(possible_types(reader, x, px) not in ({"object"}, set()) for x, px in ((a, pa), (b, pb))):
        return None
    try:
        merged = []
        for x, px in ((a, pa), (b, pb)):
            x, px = reader.deref(x, px)
            if not isinstance(x, dict):
                return None
            merged.append(reader.merge_all_of(x, px) if "allOf" in x else x)
    except GrammarError:
        return None
    (ma, mb), out = merged, []
    for mx, my in ((ma, mb), (mb, ma)):
        keys = [k for k in my.get("required", []) if k not in mx.get("required", [])]
        if not keys:
            return None
        listed = mx.get("properties", {})
        key = next((k for k in keys if k not in listed), keys[0])
        out.append({**mx, "properties": {**listed, key: False}})
    return tuple(out)


def disjoint(reader: SchemaReader, a: Any, pa: str, b: Any, pb: str, depth: int = 0) -> bool:
    """Can no instance match both schemas? Proved by the types they admit; by listed values (enum/const)
    of one none of which matches the other; or, for two object schemas, by a property both require
    whose schemas are disjoint, or one requires and the other forbids (false, `not: {}`, an enum none of
    whose values it takes, or additionalProperties false)."""
    ta, tb = possible_types(reader, a, pa), possible_types(reader, b, pb)
    if ta is not None and tb is not None and not ta & tb:
        return True
    judge = instance_judge(reader)
    for x, px, y, py in ((a, pa, b, pb), (b, pb, a, pa)):
        values = finite_values(x, reader.resolve_ref, px) if isinstance(x, dict) else None
        try:
            if values is not None and not any(judge.valid(x, v, px) and judge.valid(y, v, py) for v in values):
                return True
        except Unjudgeable:
            pass
    if depth >= 3 or ta is None or tb is None or not ta | tb <= {"object"}:
        return False
    (a, pa), (b, pb) = reader.deref(a, pa), reader.deref(b, pb)
    if not isinstance(a, dict) or not isinstance(b, dict):
        return False
    try:  # properties and required of allOf parts, merged where they can be
        a = reader.merge_all_of(a, pa) if "allOf" in a else a
        b = reader.merge_all_of(b, pb) if "allOf" in b else b
    except GrammarError:
        return False
    pr_a, pr_b = a.get("properties", {}), b.get("properties", {})
    req_a, req_b = a.get("required", []), b.get("required", [])
    for k in set(req_a) & set(req_b) & set(pr_a) & set(pr_b):
        if disjoint(reader, pr_a[k], pointer(pa, "properties", k), pr_b[k], pointer(pb, "properties", k), depth + 1):
            return True
    for x, px, y_req in ((a, pa, req_b), (b, pb, req_a)):  # a key one requires that the other allows in no way
        props = x.get("properties", {})
        if any(k in props and (props[k] is False or no_value_satisfies(reader, props[k], pointer(px, "properties", k)))
               for k in y_req):
            return True
        if x.get("additionalProperties", True) is False and not x.get("patternProperties"):
            if any(k not in props for k in y_req):
                return True
    return False


# Formats whose regexes hold every valid string (the others are subsets: formats.py, README).
EXACT_FORMATS = {"date", "uuid", "ipv4"}


def exact_values(reader: SchemaReader, schema: Any, ptr: str, seen=()) -> bool:
    """Does the schema's grammar take every canonically spelled text whose value the schema holds, so
    that a value outside the grammar is outside the schema? What is subtracted (a `not`, the other branches
    of a oneOf) must be: a narrowing there would let its values through. Not so for numbers under any
    constraint but "number" (1.0 is an integer the grammar spells only as 1; bounds drop exponents),
    length bounds above EXACT_LENGTH (cut to printable ASCII and a cap), formats kept to a subset,
    listed values other than ASCII strings, true, false and null (spelled one way), and nested `not` or
    oneOf. Objects and arrays are left to values_held_by, which splits only one schema's containers."""
    if schema is True or schema is False or schema == {}:
        return True
    if not isinstance(schema, dict):
        return False
    if "$ref" in schema:
        if ptr in seen:
            return True  # a cycle adds no value of its own
        target, tptr = reader.resolve_ref(schema["$ref"], pointer(ptr, "$ref"))
        if not exact_values(reader, target, tptr, seen + (ptr,)):
            return False
    types = schema.get("type", list(TYPES))
    types = {types} if isinstance(types, str) else set(types)
    if "integer" in types and "number" not in types or "number" in types and NUMBER_KW & set(schema):
        return False
    if "format" in schema and schema["format"] in SPECIFIED_FORMATS and schema["format"] not in EXACT_FORMATS:
        return False
    max_length = schema.get("maxLength")
    if isinstance(max_length, int) and max_length > EXACT_LENGTH:
        return False
    listed = [schema["const"]] if "const" in schema else []
    listed += schema["enum"] if isinstance(schema.get("enum"), list) else [schema["enum"]] if "enum" in schema else []
    if not all(v is None or isinstance(v, bool) or isinstance(v, str) and v.isascii() for v in listed):
        return False
    if "not" in schema or "oneOf" in schema:
        return False
    parts = [(b, pointer(ptr, comb, i)) for comb in ("anyOf", "allOf") for i, b in enumerate(schema.get(comb, []))]
    return all(exact_values(reader, b, bp, seen) for b, bp in parts)


def no_value_satisfies(reader: SchemaReader, schema: Any, ptr: str) -> bool:
    """Does the schema say `not` of every value (`not: {}`), or is its enum/const (its own or through allOf)
    a list none of whose values it accepts?"""
    if isinstance(schema, dict) and "not" in schema:
        negated, _ = reader.deref(schema["not"], pointer(ptr, "not"))
        if negated is True or isinstance(negated, dict) and not set(negated) - ANNOTATIONS:
            return True
    values = finite_values(schema, reader.resolve_ref, ptr) if isinstance(schema, dict) else None
    if values is None:
        return False
    judge = instance_judge(reader)
    try:
        return not any(judge.valid(schema, v, ptr) for v in distinct(values))
    except Unjudgeable:
        return False
