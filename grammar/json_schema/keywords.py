"""The keyword vocabulary: which keywords assert, which family each belongs to, which are refused, and
how a refusal names its place (a GrammarError with the JSON pointer of the keyword)."""

from __future__ import annotations

from ..errors import GrammarError

ANNOTATIONS = {"title", "description", "examples", "default", "$schema", "$id", "$comment", "deprecated",
               "readOnly", "writeOnly", "$anchor", "$vocabulary", "contentMediaType", "contentEncoding",
               "$defs", "definitions"}
STRING_KW = {"minLength", "maxLength", "pattern", "format"}
NUMBER_KW = {"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"}
OBJECT_KW = {"properties", "required", "additionalProperties", "patternProperties", "minProperties",
             "maxProperties", "propertyNames", "dependentRequired", "dependentSchemas", "dependencies",
             "unevaluatedProperties"}
ARRAY_KW = {"items", "prefixItems", "additionalItems", "minItems", "maxItems", "uniqueItems", "contains",
            "minContains", "maxContains", "unevaluatedItems"}
COMBINATORS = {"anyOf", "oneOf", "allOf", "not", "if", "then", "else", "$ref", "enum", "const", "type",
               "$dynamicRef", "$recursiveRef"}
KNOWN = STRING_KW | NUMBER_KW | OBJECT_KW | ARRAY_KW | COMBINATORS
TYPES = ("object", "array", "string", "number", "boolean", "null")  # integer is a kind of number
# A keyword of our own: combinators.fold_key_sets -> objects.object_alts: (need, ban) key lists, one set to hold.
REQUIRED_ANY = "$keySets (grammask)"
# Refused wherever they appear (outside an enum/const, which is judged value by value instead).
_REFUSED = ("$dynamicRef", "$recursiveRef", "not", "if", "then", "else", "unevaluatedProperties",
            "unevaluatedItems", "dependentSchemas", "dependencies", "propertyNames", "contains",
            "dependentRequired")


class NoInstance(GrammarError):
    """A subschema no instance satisfies (an anyOf/oneOf branch of it contributes nothing)."""


def schema_error(msg: str, ptr: str, kind: type[GrammarError] = GrammarError) -> GrammarError:
    return kind(f"JSON Schema at {ptr or '#'}: {msg}")


def pointer(base: str, *parts) -> str:
    """The JSON pointer `base` extended by `parts` (each escaped)."""
    out = base or "#"
    for p in parts:
        out += "/" + str(p).replace("~", "~0").replace("/", "~1")
    return out


def count_keyword(schema: dict, key: str, ptr: str, default):
    """A non-negative integer keyword (2.0 counts as 2)."""
    v = schema.get(key, default)
    if v is default:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v):
        raise schema_error(f"'{key}' must be a non-negative integer", pointer(ptr, key))
    return int(v)


def refuse_unsupported(schema: dict, ptr: str) -> None:
    """Refuse the keywords the grammar cannot enforce (the first found, in a fixed order)."""
    for k in _REFUSED:
        if k in schema:
            if k == "then" or k == "else":
                if "if" not in schema:
                    continue  # then/else without if are ignored by the specification
            if k in ("dependencies", "dependentRequired") and isinstance(schema[k], dict) and \
                    all(isinstance(v, list) for v in schema[k].values()):
                continue  # key lists: object_alts tracks them
            raise schema_error(f"keyword {k!r} is not supported" + (" (only lists of keys)" if k == "dependencies" else ""),
                               pointer(ptr, k))
    if schema.get("uniqueItems") is True:
        raise schema_error("keyword 'uniqueItems': true is not supported", pointer(ptr, "uniqueItems"))
