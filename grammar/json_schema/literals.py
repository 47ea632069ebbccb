"""Literal values (enum/const members, object keys) as grammar symbols: exactly the JSON text
json.dumps writes for them, strings and numbers as terminals of the pool."""

from __future__ import annotations

import json
import math
import re
from functools import lru_cache
from typing import Any

from ..regex import json_spelling
from .keywords import schema_error
from .terminals import Terminals


def string_literal(terms: Terminals, s: str, ptr: str) -> str:
    """The terminal for exactly the string s, in its one spelling."""
    spelling = _string_spelling(s)
    if spelling is None:
        raise schema_error("a string with a lone surrogate is not supported", ptr)
    return terms.add("string", *spelling, ptr)


@lru_cache(maxsize=16384)
def _string_spelling(s: str):
    """(the pattern of s's one spelling, its JSON text), or None for a string with a lone surrogate. Kept
    across schemas: their keys and enum values repeat."""
    if any(0xD800 <= ord(c) <= 0xDFFF for c in s):
        return None
    return '"' + "".join(map(_char_spelling, s)) + '"', json.dumps(s, ensure_ascii=False)


@lru_cache(maxsize=4096)
def _char_spelling(c: str) -> str:
    # Keys and enum values spell the same few characters over and over.
    return json_spelling([(ord(c), ord(c))])


def literal(terms: Terminals, v: Any, ptr: str) -> str:
    """Grammar symbols for exactly the value v (object keys in their order)."""
    if v is None:
        return '"null"'
    if v is True:
        return '"true"'
    if v is False:
        return '"false"'
    if isinstance(v, (int, float)):
        if isinstance(v, float) and not math.isfinite(v):
            raise schema_error("non-finite number in enum/const", ptr)
        text = json.dumps(v)
        return terms.add("number", re.escape(text), text, ptr)
    if isinstance(v, str):
        return string_literal(terms, v, ptr)
    if isinstance(v, list):
        if not v:
            return "LBK RBK"
        return "LBK " + " COMMA ".join(literal(terms, x, ptr) for x in v) + " RBK"
    if isinstance(v, dict):
        if not v:
            return "LB RB"
        return "LB " + " COMMA ".join(f"{string_literal(terms, k, ptr)} COLON {literal(terms, x, ptr)}"
                                      for k, x in v.items()) + " RB"
    raise schema_error(f"unsupported value {v!r}", ptr)
