"""Arrays: prefixItems (or the draft-07 items list) with the items after them, minItems/maxItems;
the count of items written so far is tracked up to the largest bound that matters."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .keywords import NoInstance, count_keyword, pointer, schema_error
from .object_unions import ArraySpec

if TYPE_CHECKING:
    from .translator import Translator

MAX_TRACKED_ITEMS = 1000


def array_alts(tr: Translator, schema: dict, ptr: str) -> list[str]:
    """Rules S_i (i items written so far) up to the tracked count, then a loop over the remaining items."""
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
        raise schema_error("minItems > maxItems (or more than the tuple allows): no array is valid", ptr, NoInstance)
    tracked = max(k, lo) if hi is None else hi
    if tracked > MAX_TRACKED_ITEMS:
        raise schema_error(f"array bounds above {MAX_TRACKED_ITEMS} items are not supported", ptr)
    base = tr.fresh("a")

    def item(i: int) -> str:
        if i < k:
            return tr.node(prefix[i], pointer(ptr, "prefixItems" if "prefixItems" in schema else "items", i))
        return tr.node(rest, rest_ptr)

    # S_i: i items written so far.
    loop_at = max(k, lo) if hi is None else None
    for i in range(1, tracked + 1):
        if loop_at is not None and i == loop_at:
            tr.rule(f"{base}_s{i}", [f"(COMMA {item(i)})* RBK"], ptr)
            break
        alts = (["RBK"] if i >= lo else []) + ([f"COMMA {item(i)} {base}_s{i + 1}"] if hi is None or i < hi else [])
        tr.rule(f"{base}_s{i}", alts, ptr)
    alts = ["LBK RBK"] if lo == 0 else []
    if hi is None or hi >= 1:
        if loop_at == 0:
            alts = ["LBK RBK", f"LBK {item(0)} (COMMA {item(0)})* RBK"]
        else:
            alts.append(f"LBK {item(0)} {base}_s1")
        # What object_unions needs to merge this array with the other branches of an anyOf/oneOf.
        rest_item = item(k) if rest is not False and (hi is None or hi > k) else None
        spec = ArraySpec([item(i) for i in range(min(k, tracked))], rest_item, lo, hi)
        tr.container_specs[alts[-1]] = [spec]
    return alts
