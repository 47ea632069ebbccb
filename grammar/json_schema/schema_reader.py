"""Reading a schema: local $ref resolution against the root document, and allOf merged into one schema
(the normalization the translator works on)."""

from __future__ import annotations

import re
from typing import Any

from .keywords import ANNOTATIONS, KNOWN, NoInstance, pointer, schema_error


class SchemaReader:
    """The schema document being translated, read through its local references."""

    def __init__(self, root: Any):
        self.root = root

    def resolve_ref(self, ref: str, ptr: str) -> tuple[Any, str]:
        """The subschema a local $ref (a JSON pointer into the root) names, and its absolute pointer."""
        if not ref.startswith("#"):
            raise schema_error(f"$ref {ref!r}: only local references (#...) are supported", ptr)
        node = self.root
        path = ref[1:]
        if path and not path.startswith("/"):
            raise schema_error(f"$ref {ref!r}: anchors are not supported", ptr)
        for part in path.split("/")[1:] if path else []:
            part = part.replace("~1", "/").replace("~0", "~")
            part = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), part)
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise schema_error(f"$ref {ref!r} does not resolve", ptr)
        return node, "#" + path

    def deref(self, schema: Any, ptr: str) -> tuple[Any, str]:
        """Follow a schema that is only a $ref (a few steps at most)."""
        for _ in range(8):
            if not (isinstance(schema, dict) and "$ref" in schema and len(schema) == 1):
                break
            schema, ptr = self.resolve_ref(schema["$ref"], ptr)
        return schema, ptr

    def merge_all_of(self, schema: dict, ptr: str) -> dict:
        """The schema with its allOf parts merged in (recursively); keywords that cannot be merged without
        changing their meaning are refused."""
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        subs = schema["allOf"]
        if not isinstance(subs, list):
            raise schema_error("'allOf' must be an array", pointer(ptr, "allOf"))
        # additionalProperties/items depend on their sibling properties/prefixItems: merging those from two
        # parts would change what they mean, so such merges are refused.
        coupled = ({"properties", "patternProperties", "additionalProperties"}, {"items", "prefixItems", "additionalItems"})
        owners = [{0} if merged.keys() & group else set() for group in coupled]
        for i, sub in enumerate(subs):
            sptr = pointer(ptr, "allOf", i)
            while isinstance(sub, dict) and set(sub) - ANNOTATIONS == {"$ref"}:
                sub, sptr = self.resolve_ref(sub["$ref"], sptr)
            if sub is True or sub == {}:
                continue
            if not isinstance(sub, dict):
                raise schema_error("'allOf' with a false or non-object schema is not supported", sptr)
            if "allOf" in sub:
                sub = self.merge_all_of(sub, sptr)
            for g, group in enumerate(coupled):
                if sub.keys() & group:
                    owners[g].add(i + 1)
                    if len(owners[g]) > 1 and (merged.keys() | sub.keys()) & {"additionalProperties", "items",
                                                                               "additionalItems"}:
                        raise schema_error(f"'allOf' combining {'/'.join(sorted(group))} from several subschemas is not "
                                           "supported", sptr)
            for k, v in sub.items():
                if k in ANNOTATIONS or k not in KNOWN:
                    continue
                if k not in merged or merged[k] == v:
                    merged[k] = v
                elif k == "required":
                    merged[k] = list(dict.fromkeys(list(merged[k]) + list(v)))
                elif k == "properties" and isinstance(v, dict):
                    props = dict(merged[k])
                    for pk, pv in v.items():
                        if pk in props and props[pk] != pv:
                            raise schema_error(f"'allOf': property {pk!r} has two different schemas; merging them is not "
                                               "supported", sptr)
                        props[pk] = pv
                    merged[k] = props
                elif k == "type":
                    a = {merged[k]} if isinstance(merged[k], str) else set(merged[k])
                    b = {v} if isinstance(v, str) else set(v)
                    both = (a & b) | ({"integer"} if ("integer" in a and "number" in b) or
                                      ("number" in a and "integer" in b) else set())
                    if not both:
                        raise schema_error(f"'allOf': the types {sorted(a)} and {sorted(b)} have nothing in common: no "
                                           "instance is valid here", sptr, NoInstance)
                    merged[k] = sorted(both)
                else:
                    raise schema_error(f"'allOf': keyword {k!r} appears with different values; merging them is not "
                                       "supported", sptr)
        return merged
