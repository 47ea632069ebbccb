"""What a serving request asks for: a grammar spec, checked, keyed, built into a Grammar.

Engine-neutral: the vLLM processor reads specs from SamplingParams.extra_args["grammask"], the SGLang
backend from its (key_type, key_string) pairs; both end up here.
"""

from __future__ import annotations

import json
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping

from ..grammar import BUILTINS, Grammar

# The per-request keys, exactly one of which a grammask request carries.
SPEC_KINDS = ("grammar", "json_schema", "regex", "structural_tag")


@dataclass(frozen=True)
class GrammarSpec:
    """One request's grammar, in a canonical form that keys the compiled-table cache."""

    kind: str  # one of SPEC_KINDS
    source: str  # built-in name, Lark text, canonical JSON text (schema / structural tag), or a regex

    def describe(self) -> str:
        text = self.source if len(self.source) <= 60 else self.source[:57] + "..."
        return f"{self.kind} {text!r}"


def _canonical_json(kind: str, value: Any) -> str:
    """JSON text (or an already-parsed dict) -> one canonical text, so equal specs share tables.
    Key order is kept: a schema's property order is the order the generated object follows."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise ValueError(f"grammask: {kind} is not valid JSON: {exc}") from None
    if not isinstance(value, (dict, bool)):
        raise ValueError(f"grammask: {kind} must be a JSON object (text or dict), not {type(value).__name__}")
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def parse_spec(args: Any) -> GrammarSpec:
    """The value of extra_args["grammask"] -> GrammarSpec. ValueError says what is wrong with it.

    The value is an object, or that object as JSON text: HTTP servers take only flat values in their
    per-request extra arguments (vLLM's vllm_xargs: strings, numbers, lists)."""
    if isinstance(args, str):
        try:
            args = json.loads(args)
        except json.JSONDecodeError as exc:
            raise ValueError(f"grammask: the request's grammask argument is text but not JSON: {exc}") from None
    if not isinstance(args, Mapping):
        raise ValueError(f"grammask: the request's grammask argument must be an object with one of "
                         f"{', '.join(SPEC_KINDS)}; got {type(args).__name__}")
    given = [k for k in SPEC_KINDS if k in args]
    unknown = sorted(set(args) - set(SPEC_KINDS))
    if unknown:
        raise ValueError(f"grammask: unknown key(s) {', '.join(map(repr, unknown))}; "
                         f"expected exactly one of {', '.join(SPEC_KINDS)}")
    if len(given) != 1:
        raise ValueError(f"grammask: expected exactly one of {', '.join(SPEC_KINDS)}, got "
                         f"{', '.join(given) if given else 'none'}")
    kind = given[0]
    value = args[kind]
    if kind in ("json_schema", "structural_tag"):
        return GrammarSpec(kind, _canonical_json(kind, value))
    if not isinstance(value, str) or not value:
        raise ValueError(f"grammask: {kind} must be a non-empty string")
    return GrammarSpec(kind, value)


def build_grammar(spec: GrammarSpec) -> Grammar:
    """The Grammar for a spec, tables built (so a broken grammar raises GrammarError here)."""
    if spec.kind == "grammar":
        # A bare name is a built-in (an unknown one gets the list of names, not a Lark syntax error).
        if spec.source in BUILTINS or re.fullmatch(r"[A-Za-z_][A-Za-z0-9_.-]*", spec.source):
            grammar = Grammar.builtin(spec.source)
            grammar.tables
            return grammar
        return Grammar.from_lark(spec.source)
    if spec.kind == "json_schema":
        return Grammar.from_json_schema(spec.source)
    if spec.kind == "regex":
        return Grammar.from_regex(spec.source)
    if spec.kind == "structural_tag":
        return Grammar.from_structural_tag(spec.source)
    raise ValueError(f"grammask: unknown grammar kind {spec.kind!r}")


class GrammarCache:
    """Built grammars by spec, bounded (LRU), safe to share between threads.

    Building is done outside the lock: two threads asking for one new spec may both build it (the
    grammar's disk cache makes the second cheap); neither waits behind an unrelated slow build.
    """

    def __init__(self, capacity: int = 256):
        self.capacity = capacity
        self._items: "OrderedDict[GrammarSpec, Grammar]" = OrderedDict()
        self._lock = threading.Lock()

    def get(self, spec: GrammarSpec) -> Grammar:
        with self._lock:
            hit = self._items.get(spec)
            if hit is not None:
                self._items.move_to_end(spec)
                return hit
        grammar = build_grammar(spec)
        with self._lock:
            self._items[spec] = grammar
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)
        return grammar


__all__ = ["SPEC_KINDS", "GrammarCache", "GrammarSpec", "build_grammar", "parse_spec"]
