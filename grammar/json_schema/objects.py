"""Objects: properties, required keys and the key sets of dependencies and of anyOf/oneOf over required
lists, patternProperties, additionalProperties, minProperties/maxProperties. Which keys, with which value
schemas, in which sets, in which order; object_members.py writes the rules."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from .instance_sets import no_value_satisfies
from .keywords import REQUIRED_ANY, NoInstance, count_keyword, pointer, schema_error
from .literals import string_literal
from .object_members import object_rules
from .object_unions import ObjectSpec
from .strings import pattern_content
from .terminals import Terminals

if TYPE_CHECKING:
    from .translator import Translator

MAX_COUNTED_PROPERTIES = 32  # minProperties/maxProperties: the object rules are copied once per count
# Listed properties in any order: a state per set of members written, 2**n of them, so only for small
# objects (where models most often reorder keys, and the states stay few); larger ones in schema order.
ANY_ORDER_MEMBERS = 4
MAX_KEY_SETS = 32  # object key sets (required, anyOf/oneOf of required lists, dependencies), each a state tag bit


def object_alts(tr: Translator, schema: dict, ptr: str) -> list[str]:
    """The object's members (listed keys and their value schemas), the rule for other keys, the key sets
    and the member count, handed to object_rules."""
    props = schema.get("properties", {})
    if not isinstance(props, dict):
        raise schema_error("'properties' must be an object", pointer(ptr, "properties"))
    patterns = pattern_keys(tr.terms, schema.get("patternProperties", {}), pointer(ptr, "patternProperties"))
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
    if not sets:  # every set needs a key it bans (a oneOf of required lists all of which `required` names)
        return []  # no object is valid
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
            [(sub, sptr) for term, sub, sptr in patterns if tr.terms.terms[term].matches(spelled)]
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
        if k not in absent and no_value_satisfies(tr.reader, schemas[k], value_ptr[k]):
            absent.append(k)
    keys = [k for k in keys if k not in absent]
    if all(need & set(absent) for need, _ in sets):
        bad = min(r for need, _ in sets for r in need & set(absent))
        raise schema_error(f"required property {bad!r} cannot occur (schema false, no value satisfies it, or "
                           "additionalProperties false): no object is valid", pointer(ptr, "required"), NoInstance)
    sets = [(need, ban - set(absent)) for need, ban in sets if not need & set(absent)]
    if addl is not False:
        # Keys that must not occur while other keys may: the lexer must know them (a terminal no
        # rule uses is left out of it, and its text would be lexed as any other key).
        tr.keep.update(string_literal(tr.terms, k, ptr) for k in absent)
        tr.keep.update(term for term, sub, _ in patterns if sub is False)
    req = [frozenset(j for j, (need, _) in enumerate(sets) if k in need) for k in keys]
    banned = [frozenset(j for j, (_, ban) in enumerate(sets) if k in ban) for k in keys]
    n = len(keys)
    base = tr.fresh("o")
    members = []
    for j, k in enumerate(keys):
        key = string_literal(tr.terms, k, value_ptr[k])
        value = tr.node(schemas[k], value_ptr[k])
        members.append(f"{key} COLON {value}")
    extra = None
    extra_value = None  # the value schema's nonterminal of keys neither listed nor matching a pattern
    key_terms = frozenset(string_literal(tr.terms, k, ptr) for k in keys + absent)
    # Other keys: those matching a pattern (patterns are disjoint: one schema each), then the rest.
    extra_alts = [f"{tr.cls(('sub-except', term, key_terms))} COLON {tr.node(sub, sptr)}"
                  for term, sub, sptr in patterns if sub is not False]  # false: keys that must not occur
    if addl is not False:
        xkey = tr.cls(("except", "string", key_terms, frozenset(term for term, _, _ in patterns)))
        extra_value = tr.node(addl, pointer(ptr, "additionalProperties"))
        extra_alts.append(f"{xkey} COLON {extra_value}")
    if extra_alts:
        extra = tr.rule(f"{base}_x", extra_alts, ptr)
    least = count_keyword(schema, "minProperties", ptr, 0)
    most = count_keyword(schema, "maxProperties", ptr, None)
    if least <= min(len(need) for need, _ in sets):
        least = 0  # the required keys already make it
    if most is not None and extra is None and most >= n:
        most = None  # cannot be exceeded
    if max(least, most or 0) > MAX_COUNTED_PROPERTIES:
        raise schema_error(f"minProperties/maxProperties above {MAX_COUNTED_PROPERTIES} are not supported", ptr)
    any_order = n <= ANY_ORDER_MEMBERS
    alts = object_rules(tr, base, members, req, banned, len(sets), extra, least, most, any_order, ptr)
    # What object_unions needs to merge this object with the other branches of an anyOf/oneOf.
    spec = ObjectSpec([string_literal(tr.terms, k, value_ptr[k]) for k in keys], [m.split()[-1] for m in members],
                      req, banned, len(sets), extra_value, key_terms,
                      tuple((term, None if sub is False else tr.node(sub, sptr)) for term, sub, sptr in patterns),
                      least, most, any_order)
    for alt in alts:
        if alt != "LB RB":  # the empty object is no one object's own: it stays a plain alternative
            tr.container_specs[alt] = [spec]
    return alts


def pattern_keys(terms: Terminals, patterns: Any, ptr: str) -> list[tuple[str, Any, str]]:
    """patternProperties as (key terminal, value schema, pointer); the patterns must be pairwise disjoint
    (else a key could owe its value to two schemas at once)."""
    if not isinstance(patterns, dict):
        raise schema_error("'patternProperties' must be an object", ptr)
    out = []
    for p, sub in patterns.items():
        pptr = pointer(ptr, p)
        term = terms.add("string", f'"{pattern_content(p, pptr)}"', None, pptr)
        for other, _, optr in out:
            if terms.relation(terms.terms[term], terms.terms[other]) != "disjoint":
                raise schema_error(f"patternProperties whose patterns overlap ({optr} and {pptr}) are not supported", ptr)
        out.append((term, sub, pptr))
    return out
