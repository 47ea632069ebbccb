"""Judge one concrete JSON value against a JSON Schema (draft 2020-12 and the draft-07 spellings).

The translator uses it where the instances are a finite list known in advance: an `enum`/`const`
anywhere in a schema's allOf means only those values can be valid, so the grammar is exactly the
values this judge accepts under the *whole* schema (with `not`, `if`, `multipleOf`, ... around them).

Exactness: every keyword that asserts is evaluated as the specification says, except `format`, which is
asserted with the translator's own format regexes (stricter than an annotation, and the same notion as
the grammar's; a format no draft defines asserts nothing). A keyword the judge cannot evaluate (remote
`$ref`, `$dynamicRef`, `unevaluated*`, a specified format without a regex, a pattern the regex module
refuses) raises `Unjudgeable`; the caller then refuses.
"""

from __future__ import annotations

import math
import re
from decimal import Decimal
from fractions import Fraction
from typing import Any, Callable

from .regex import Emitter, RegexRefused, raw_spelling

Resolver = Callable[[str, str], tuple[Any, str]]  # ($ref, pointer) -> (target schema, its pointer)


class Unjudgeable(Exception):
    """The judge cannot evaluate a keyword exactly; the message names it."""


def json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema defines it: 1 == 1.0, booleans are not numbers, objects unordered."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


def has_type(v: Any, t: str) -> bool:
    if t == "integer":
        return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, float) and v.is_integer())
    return {"null": v is None, "boolean": isinstance(v, bool), "string": isinstance(v, str),
            "object": isinstance(v, dict), "array": isinstance(v, list),
            "number": isinstance(v, (int, float)) and not isinstance(v, bool)}.get(t, False)


_PATTERNS: dict[str, re.Pattern] = {}


def search_pattern(pattern: str) -> re.Pattern:
    """An ECMA-262 pattern as a Python regex with the same meaning, for re.fullmatch (search semantics)."""
    if pattern not in _PATTERNS:
        try:
            body, start, end = Emitter(raw_spelling, ecma=True).emit(pattern)
        except RegexRefused as exc:
            raise Unjudgeable(f"pattern {pattern!r}: {exc}") from None
        pad = r"[\s\S]*"
        _PATTERNS[pattern] = re.compile(("" if start else pad) + "(?:" + body + ")" + ("" if end else pad))
    return _PATTERNS[pattern]


def _number(v) -> Decimal:
    return Decimal(repr(v)) if isinstance(v, float) else Decimal(v)


class Judge:
    def __init__(self, resolve: Resolver, formats: dict[str, str], specified_formats: set[str]):
        self.resolve = resolve
        self.formats = formats  # name -> regex of the strings it accepts
        self.specified_formats = specified_formats  # names the drafts define (others assert nothing)
        self.depth = 0

    def valid(self, schema: Any, v: Any, ptr: str) -> bool:
        if schema is True:
            return True
        if schema is False:
            return False
        if not isinstance(schema, dict):
            raise Unjudgeable(f"a schema must be an object or a boolean at {ptr}")
        self.depth += 1
        try:
            if self.depth > 200:
                raise Unjudgeable(f"$ref recursion without progress at {ptr}")
            return all(check(self, schema, v, ptr) for check in _CHECKS)
        finally:
            self.depth -= 1


def _refuse_unknown(j: Judge, s: dict, v, ptr) -> bool:
    for k in ("$dynamicRef", "$recursiveRef", "unevaluatedProperties", "unevaluatedItems"):
        if k in s:
            raise Unjudgeable(f"keyword {k!r} at {ptr}")
    return True


def _generic(j: Judge, s: dict, v, ptr) -> bool:
    if "type" in s:
        types = s["type"] if isinstance(s["type"], list) else [s["type"]]
        if not any(has_type(v, t) for t in types):
            return False
    if "const" in s and not json_equal(s["const"], v):
        return False
    if "enum" in s and not any(json_equal(e, v) for e in s["enum"]):
        return False
    return True


def _applicators(j: Judge, s: dict, v, ptr) -> bool:
    if "$ref" in s:
        target, tptr = j.resolve(s["$ref"], ptr + "/$ref")
        if not j.valid(target, v, tptr):
            return False
    if "allOf" in s and not all(j.valid(b, v, f"{ptr}/allOf/{i}") for i, b in enumerate(s["allOf"])):
        return False
    if "anyOf" in s and not any(j.valid(b, v, f"{ptr}/anyOf/{i}") for i, b in enumerate(s["anyOf"])):
        return False
    if "oneOf" in s and sum(j.valid(b, v, f"{ptr}/oneOf/{i}") for i, b in enumerate(s["oneOf"])) != 1:
        return False
    if "not" in s and j.valid(s["not"], v, ptr + "/not"):
        return False
    if "if" in s:
        branch = "then" if j.valid(s["if"], v, ptr + "/if") else "else"
        if branch in s and not j.valid(s[branch], v, f"{ptr}/{branch}"):
            return False
    return True


def _numbers(j: Judge, s: dict, v, ptr) -> bool:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return True
    x = _number(v)
    for key, ok in (("minimum", lambda b: x >= b), ("maximum", lambda b: x <= b),
                    ("exclusiveMinimum", lambda b: x > b), ("exclusiveMaximum", lambda b: x < b)):
        b = s.get(key)
        if isinstance(b, bool):  # draft-04 boolean exclusive*: modifies minimum/maximum
            if b and key == "exclusiveMinimum" and "minimum" in s and x == _number(s["minimum"]):
                return False
            if b and key == "exclusiveMaximum" and "maximum" in s and x == _number(s["maximum"]):
                return False
        elif isinstance(b, (int, float)) and not ok(_number(b)):
            return False
    m = s.get("multipleOf")
    if isinstance(m, (int, float)) and not isinstance(m, bool) and m > 0:
        if Fraction(x) % Fraction(_number(m)) != 0:  # exact: a Decimal quotient past its precision raises
            return False
    return True


def _strings(j: Judge, s: dict, v, ptr) -> bool:
    if not isinstance(v, str):
        return True
    n = len(v)  # code points, as the specification counts
    if n < s.get("minLength", 0) or ("maxLength" in s and n > s["maxLength"]):
        return False
    if "pattern" in s and not search_pattern(s["pattern"]).fullmatch(v):
        return False
    if "format" in s:
        fmt = s["format"]
        if fmt in j.formats:
            if not re.fullmatch(j.formats[fmt], v):
                return False
        elif fmt in j.specified_formats:
            raise Unjudgeable(f"format {fmt!r} at {ptr}/format")
        # else: a format no draft defines asserts nothing
    return True


def _arrays(j: Judge, s: dict, v, ptr) -> bool:
    if not isinstance(v, list):
        return True
    if len(v) < s.get("minItems", 0) or ("maxItems" in s and len(v) > s["maxItems"]):
        return False
    if s.get("uniqueItems") is True and any(json_equal(v[a], v[b]) for a in range(len(v))
                                            for b in range(a + 1, len(v))):
        return False
    items = s.get("items", True)
    prefix = s.get("prefixItems", [])
    rest, rest_key = items, "items"
    if isinstance(items, list):  # draft-07 tuple form
        prefix, rest, rest_key = items, s.get("additionalItems", True), "additionalItems"
    for i, x in enumerate(v):
        sub, sptr = (prefix[i], f"{ptr}/prefixItems/{i}") if i < len(prefix) else (rest, f"{ptr}/{rest_key}")
        if not j.valid(sub, x, sptr):
            return False
    if "contains" in s:
        hits = sum(j.valid(s["contains"], x, ptr + "/contains") for x in v)
        if hits < s.get("minContains", 1) or ("maxContains" in s and hits > s["maxContains"]):
            return False
    return True


def _objects(j: Judge, s: dict, v, ptr) -> bool:
    if not isinstance(v, dict):
        return True
    if any(k not in v for k in s.get("required", [])):
        return False
    if len(v) < s.get("minProperties", 0) or ("maxProperties" in s and len(v) > s["maxProperties"]):
        return False
    props, patterns = s.get("properties", {}), s.get("patternProperties", {})
    for k, x in v.items():
        matched = k in props
        if matched and not j.valid(props[k], x, f"{ptr}/properties/{k}"):
            return False
        for p, sub in patterns.items():
            if search_pattern(p).fullmatch(k):
                matched = True
                if not j.valid(sub, x, f"{ptr}/patternProperties/{p}"):
                    return False
        if not matched and not j.valid(s.get("additionalProperties", True), x, ptr + "/additionalProperties"):
            return False
        if "propertyNames" in s and not j.valid(s["propertyNames"], k, ptr + "/propertyNames"):
            return False
    deps = dict(s.get("dependencies", {}))
    deps.update(s.get("dependentRequired", {}))
    deps.update(s.get("dependentSchemas", {}))
    for k, dep in deps.items():
        if k not in v:
            continue
        if isinstance(dep, list):
            if any(d not in v for d in dep):
                return False
        elif not j.valid(dep, v, f"{ptr}/dependencies/{k}"):
            return False
    return True


_CHECKS = (_refuse_unknown, _generic, _applicators, _numbers, _strings, _arrays, _objects)


def finite_values(schema: dict, resolve: Resolver, ptr: str) -> list | None:
    """The values listed by an enum/const of the schema itself or of a subschema of its allOf (any one
    of them bounds the instances), or None when there is no such list."""
    seen = set()
    todo = [(schema, ptr)]
    while todo:
        s, p = todo.pop()
        while isinstance(s, dict) and "$ref" in s and p not in seen:
            seen.add(p)
            s, p = resolve(s["$ref"], p + "/$ref")
        if not isinstance(s, dict):
            continue
        if "const" in s:
            return [s["const"]]
        if "enum" in s and isinstance(s["enum"], list):
            return list(s["enum"])
        todo.extend((b, f"{p}/allOf/{i}") for i, b in enumerate(s.get("allOf", [])))
    return None


def distinct(values: list) -> list:
    """Values without JSON-equal repeats (first spelling kept)."""
    out: list = []
    for v in values:
        if isinstance(v, float) and not math.isfinite(v):
            continue
        if not any(json_equal(v, w) for w in out):
            out.append(v)
    return out


__all__ = ["Judge", "Unjudgeable", "distinct", "finite_values", "has_type", "json_equal", "search_pattern"]
