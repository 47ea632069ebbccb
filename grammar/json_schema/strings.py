"""Strings: lengths (minLength/maxLength), patterns, formats, and their intersection when several apply
to one string."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Optional

from ..regex import Emitter, RegexRefused, class_run, intersect, json_spelling
from .formats import FORMATS, SPECIFIED_FORMATS
from .keywords import NoInstance, count_keyword, pointer, schema_error
from .string_lengths import ANY_CHAR, EXACT_LENGTH, SHORT_LENGTH_CAP, length_content

if TYPE_CHECKING:
    from .translator import Translator


def string_alts(tr: Translator, schema: dict, ptr: str) -> list[str]:
    """One terminal class: the strings of the pattern, the format or the length bounds, or of the
    intersection of those present."""
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
            return class_run_alts(tr, run, lo, hi, ptr)
    if len(kinds) > 1:
        # Each constraint's strings, then their intersection (unless one lies inside the others).
        parts = [{k: v for k, v in schema.items() if k not in ("pattern", "format", "minLength", "maxLength")
                  or k == kind or kind == "minLength/maxLength" and k in ("minLength", "maxLength")}
                 for kind in kinds]
        names = [tr.class_term(string_alts(tr, part, ptr)[0]) for part in parts]
        name = names[0]
        for other in names[1:]:
            rel = tr.terms.relation(tr.terms.terms[name], tr.terms.terms[other])
            if rel == "disjoint":
                raise schema_error(f"{' together with '.join(kinds)}: no string satisfies them all", ptr, NoInstance)
            if rel in ("super", "equal"):
                name = other
            elif rel == "overlap":
                name = tr.terms.both(name, other)
        return [tr.cls(("sub", name))]
    if not present or kinds == []:
        return [tr.cls(("all", "string"))]
    if "pattern" in schema:
        content = pattern_content(schema["pattern"], pointer(ptr, "pattern"))
    elif "format" in schema:
        body, _, _ = Emitter(json_spelling).emit(FORMATS[fmt])
        content = body
    else:
        if not (isinstance(lo, int) and lo >= 0 and (hi is None or isinstance(hi, int) and hi >= 0)):
            raise schema_error("minLength/maxLength must be non-negative integers", ptr)
        if hi is not None and hi < lo:
            raise schema_error("maxLength < minLength: no string is valid", ptr, NoInstance)
        hi = capped_length(tr, lo, hi, ptr)
        name = tr.terms.add("string", f'"{length_content(lo, hi)}"', None, ptr, length=(lo, hi))
        return [tr.cls(("sub", name))]
    name = tr.terms.add("string", f'"{content}"', None, ptr)
    return [tr.cls(("sub", name))]


def class_run_alts(tr: Translator, run: tuple, lo: int, hi: Optional[int], ptr: str) -> list[str]:
    """Strings of characters from one class, with both the pattern's and the length bounds."""
    ranges, a, b = run
    lo, hi = max(lo, a), (b if hi is None else hi if b is None else min(hi, b))
    if hi is not None and hi < lo:
        raise schema_error("the pattern and minLength/maxLength leave no string", ptr, NoInstance)
    if hi is not None and hi > EXACT_LENGTH:
        # As for plain bounded strings: beyond EXACT_LENGTH, printable ASCII and at most the cap long.
        hi = capped_length(tr, lo, hi, ptr)
        ranges = intersect(ranges, [(0x20, 0x7E)])
        if not ranges:
            raise schema_error("pattern with a long maxLength: only classes with printable ASCII characters are "
                               "supported", ptr)
    count = f"{{{lo},}}" if hi is None else f"{{{lo},{hi}}}"
    name = tr.terms.add("string", f'"(?:{json_spelling(ranges)}){count}"', None, ptr)
    return [tr.cls(("sub", name))]


def capped_length(tr: Translator, lo: int, hi: Optional[int], ptr: str) -> Optional[int]:
    """The upper bound the grammar keeps (at most the translation's length cap); notes bounds that the
    short cap would narrow further."""
    if lo > SHORT_LENGTH_CAP or (hi is not None and hi > SHORT_LENGTH_CAP):
        tr.long_bounds = True
    if lo > tr.length_cap:
        raise schema_error(f"minLength above {tr.length_cap} is not supported", ptr)
    return None if hi is None else min(hi, tr.length_cap)


def pattern_content(pattern: Any, ptr: str) -> str:
    """The regex of the string contents (JSON spellings, between the quotes) a pattern matches."""
    if not isinstance(pattern, str):
        raise schema_error("'pattern' must be a string", ptr)
    try:
        body, start, end = Emitter(json_spelling).emit(pattern)
    except RegexRefused as exc:
        raise schema_error(f"pattern {pattern!r}: {str(exc)}", ptr) from None
    # JSON Schema patterns search: an unanchored end may be followed/preceded by anything.
    pad = f"(?:{ANY_CHAR})*"
    return ("" if start else pad) + body + ("" if end else pad)
