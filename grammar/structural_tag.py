"""Structural tags: free text in which triggered structures (tool calls) must follow their own grammar.

    free text ... <tool_call>{"name": "get_weather", "arguments": {...}}</tool_call> free text ...

Accepted forms (a dict or its JSON text):

- XGrammar's first form, as vLLM passes it through:
      {"type": "structural_tag", "structures": [{"begin", "schema", "end"}], "triggers": [...]}
- XGrammar's "triggered_tags" format:
      {"type": "structural_tag", "format": {"type": "triggered_tags", "triggers": [...],
       "tags": [{"begin", "content", "end"}], "at_least_one": false, "stop_after_first": false}}
- this module's own form, the same fields flat plus:
      "free_text": true     text may surround the structures (false: the output is structures only)
      "reasoning": {"begin": "<think>" (optional), "end": "</think>"}: free text up to `end` first (where
                  a trigger is plain text), then the rest
      "content": {...}      instead of structures: after the reasoning, this grammar to the end

A content is {"type": "json_schema", "json_schema": {...}} ("schema": {...} in the first form),
{"type": "regex", "pattern": ...}, {"type": "grammar", "grammar": Lark text, "start": "start"},
{"type": "builtin", "name": "json" | "json_object"}, {"type": "const_string", "value": ...} or
{"type": "any_text"} (text up to the end string).

How it is exact: one Lark grammar, lexed in modes (the `lexmodes` directive). Free text is one terminal
per trigger, "text without any trigger, then that trigger" (fsm/free_text.py: an Aho-Corasick automaton,
so the lexer state stays bounded however long the text), and one for text that ends the output (it may
end in part of a trigger). After a trigger the lexer switches to the mode of the structures it opens; each
structure's content is lexed in a mode of its own, apart from the others' terminals and from the free
text; its end string switches back. Masks, rollback, jump-forward and the processor then work unchanged.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Optional

from .errors import GrammarError
from .lark_rename import rename

SOURCE = "<structural tag>"
_CONTENT_TYPES = ("json_schema", "regex", "grammar", "builtin", "const_string", "any_text")


@dataclass
class Structure:
    begin: str
    content: dict
    end: str


@dataclass
class StructuralSpec:
    """The normalized specification (what every accepted form becomes)."""

    structures: list[Structure]
    triggers: list[str]
    free_text: bool = True
    at_least_one: bool = False
    stop_after_first: bool = False
    reasoning_begin: Optional[str] = None
    reasoning_end: Optional[str] = None
    raw: Any = field(default=None, repr=False)


def parse_spec(spec) -> StructuralSpec:
    """Any accepted form -> StructuralSpec; GrammarError saying which field is wrong."""
    if isinstance(spec, (str, bytes)):
        try:
            spec = json.loads(spec)
        except ValueError as exc:
            raise GrammarError(f"structural tag: not JSON ({exc})", source=SOURCE) from None
    if not isinstance(spec, dict):
        raise GrammarError(f"structural tag: expected an object, not {type(spec).__name__}", source=SOURCE)
    raw = spec
    if spec.get("type") not in (None, "structural_tag"):
        raise GrammarError(f"structural tag: unknown type {spec.get('type')!r}", source=SOURCE)
    if "format" in spec:
        fmt = spec["format"]
        if not isinstance(fmt, dict) or fmt.get("type") != "triggered_tags":
            kind = fmt.get("type") if isinstance(fmt, dict) else type(fmt).__name__
            raise GrammarError(f"structural tag: format type {kind!r} is not supported (only 'triggered_tags')",
                               source=SOURCE)
        spec = dict(fmt, structures=fmt.get("tags"))
        spec.pop("tags", None)
    known = {"type", "structures", "triggers", "free_text", "at_least_one", "stop_after_first", "reasoning",
             "content"}
    unknown = sorted(set(spec) - known)
    if unknown:
        raise GrammarError(f"structural tag: unknown field {unknown[0]!r}", source=SOURCE)
    out = StructuralSpec([], [], raw=raw)
    for name in ("free_text", "at_least_one", "stop_after_first"):
        if name in spec:
            if not isinstance(spec[name], bool):
                raise GrammarError(f"structural tag: {name} must be true or false", source=SOURCE)
            setattr(out, name, spec[name])
    reasoning = spec.get("reasoning")
    if reasoning is not None:
        if not isinstance(reasoning, dict) or set(reasoning) - {"begin", "end"} or not _text(reasoning.get("end")):
            raise GrammarError('structural tag: reasoning must be {"end": "</think>"} with an optional "begin"',
                               source=SOURCE)
        if "begin" in reasoning and not _text(reasoning["begin"]):
            raise GrammarError("structural tag: reasoning.begin must be a non-empty string", source=SOURCE)
        out.reasoning_begin, out.reasoning_end = reasoning.get("begin"), reasoning["end"]
    if "content" in spec:
        if "structures" in spec or "triggers" in spec:
            raise GrammarError("structural tag: give either content (a grammar to the end) or structures",
                               source=SOURCE)
        out.structures = [Structure("", _content(spec["content"], "content"), "")]
        out.free_text, out.at_least_one, out.stop_after_first = False, True, True
        return out
    structures = spec.get("structures")
    if not isinstance(structures, list) or not structures:
        raise GrammarError("structural tag: structures must be a non-empty list", source=SOURCE)
    for i, s in enumerate(structures):
        where = f"structures[{i}]"
        if not isinstance(s, dict):
            raise GrammarError(f"structural tag: {where} must be an object", source=SOURCE)
        extra = sorted(set(s) - {"begin", "end", "schema", "content"})
        if extra:
            raise GrammarError(f"structural tag: {where} has an unknown field {extra[0]!r}", source=SOURCE)
        for key in ("begin", "end"):
            if not isinstance(s.get(key), str):
                raise GrammarError(f"structural tag: {where}.{key} must be a string", source=SOURCE)
        if ("schema" in s) == ("content" in s):
            raise GrammarError(f"structural tag: {where} needs exactly one of schema and content", source=SOURCE)
        content = ({"type": "json_schema", "json_schema": s["schema"]} if "schema" in s
                   else _content(s["content"], f"{where}.content"))
        out.structures.append(Structure(s["begin"], content, s["end"]))
    triggers = spec.get("triggers", [])
    if not isinstance(triggers, list) or not all(_text(t) for t in triggers):
        raise GrammarError("structural tag: triggers must be a list of non-empty strings", source=SOURCE)
    out.triggers = list(dict.fromkeys(triggers))
    if out.free_text and not out.triggers:
        raise GrammarError("structural tag: free text needs triggers (the strings that open a structure)",
                           source=SOURCE)
    return out


def _text(v) -> bool:
    return isinstance(v, str) and bool(v)


def _content(c, where: str) -> dict:
    if not isinstance(c, dict) or c.get("type") not in _CONTENT_TYPES:
        kind = c.get("type") if isinstance(c, dict) else type(c).__name__
        raise GrammarError(f"structural tag: {where} type {kind!r} is not one of {', '.join(_CONTENT_TYPES)}",
                           source=SOURCE)
    needs = {"json_schema": "json_schema", "regex": "pattern", "grammar": "grammar", "builtin": "name",
             "const_string": "value"}.get(c["type"])
    if needs is not None and needs not in c:
        raise GrammarError(f"structural tag: {where} ({c['type']}) needs {needs!r}", source=SOURCE)
    if c["type"] in ("regex", "grammar", "builtin", "const_string") and not isinstance(c[needs], str):
        raise GrammarError(f"structural tag: {where}.{needs} must be a string", source=SOURCE)
    return c


# -- spec -> Lark text ---------------------------------------------------------------------------------

def _literal(s: str) -> str:
    return json.dumps(s)  # a Lark string literal: the same escapes as JSON


def _content_lark(content: dict, prefix: str):
    """(Renamed Lark text, or None for any_text) of one content grammar."""
    kind = content["type"]
    if kind == "any_text":
        return None
    if kind == "json_schema":
        from .json_schema import schema_to_lark

        text, start = schema_to_lark(content["json_schema"]), "start"
    elif kind == "regex":
        from .regex import regex_to_lark

        text, start = regex_to_lark(content["pattern"]), "start"
    elif kind == "const_string":
        if not content["value"]:
            raise GrammarError("structural tag: const_string value must not be empty", source=SOURCE)
        text, start = f"start: {_literal(content['value'])}\n", "start"
    elif kind == "builtin":
        from .grammar import Grammar

        g = Grammar.builtin(content["name"])
        if g.name not in ("json", "json_object"):
            raise GrammarError(f"structural tag: built-in {g.name!r} lexes its whole text itself (indentation or "
                               "semicolons); only json and json_object can be embedded", source=SOURCE)
        text, start = g.text, g.start
    else:
        text, start = content["grammar"], content.get("start", "start")
    return rename(text, start, prefix, f"{SOURCE} {prefix} content")


def _merge_same_begin(spec: StructuralSpec) -> list[Structure]:
    """Structures that share a begin become one (their JSON Schemas as anyOf): after the begin the lexer
    has one mode to be in."""
    groups: dict[str, list[Structure]] = {}
    for s in spec.structures:
        groups.setdefault(s.begin, []).append(s)
    merged = []
    for begin, group in groups.items():
        if len(group) == 1:
            merged.append(group[0])
            continue
        if any(s.content["type"] != "json_schema" for s in group) or len({s.end for s in group}) > 1:
            raise GrammarError(f"structural tag: several structures begin with {begin!r}; they can share it only "
                               "when all are JSON Schemas with the same end", source=SOURCE)
        schema = {"anyOf": [s.content["json_schema"] for s in group]}
        merged.append(Structure(begin, {"type": "json_schema", "json_schema": schema}, group[0].end))
    return merged


def _check_prefix_free(words: list[str], what: str) -> None:
    for a in words:
        for b in words:
            if a != b and b.startswith(a):
                raise GrammarError(f"structural tag: {what} {a!r} is a prefix of {b!r}; after {a!r} the lexer "
                                   "could not tell them apart", source=SOURCE)


@dataclass
class Composition:
    text: str                                      # the Lark grammar
    end_terminals: dict = field(default_factory=dict)  # END terminal name -> its content mode's terminals


class _Modes:
    def __init__(self):
        self.n = 0
        self.table: dict[str, list[int]] = {}  # terminal -> [mode, restart]

    def new(self) -> int:
        self.n += 1
        return self.n - 1

    def put(self, terminal: str, mode: int, restart: int = -1) -> None:
        self.table[terminal] = [mode, restart]


def compose(spec: StructuralSpec) -> Composition:
    """The Lark text of the structural grammar (see the module docstring)."""
    structures = _merge_same_begin(spec)
    for s in structures:
        if not s.end and not spec.stop_after_first:
            raise GrammarError(f"structural tag: structure {s.begin!r} has an empty end, but more text may follow "
                               "it; give it an end string, or set stop_after_first", source=SOURCE)
        if not s.begin and (spec.free_text or len(structures) > 1):
            raise GrammarError("structural tag: a structure with an empty begin must be the only one, without "
                               "free text", source=SOURCE)
    modes = _Modes()
    rules: list[str] = []
    defs: list[str] = []
    directives: list[str] = []
    comp = Composition("")
    start_parts: list[str] = []

    first = modes.new()  # mode 0: where the text starts
    current = first
    if spec.reasoning_end is not None:
        if spec.reasoning_begin is not None:
            defs.append(f"THINK_OPEN: {_literal(spec.reasoning_begin)}")
            nxt = modes.new()
            modes.put("THINK_OPEN", current, nxt)
            current = nxt
            start_parts.append("THINK_OPEN")
        # the reasoning text: anything without the end tag, then the end tag (triggers are plain text here)
        defs.append("THINK: /.+/s")
        directives.append(f"// grammask: intersect THINK {json.dumps([{'freeText': [0, spec.reasoning_end]}])}")
        body_mode = modes.new()
        modes.put("THINK", current, body_mode)
        current = body_mode
        start_parts.append("THINK")

    body_mode = current
    after_end = body_mode  # where the lexer goes after a structure's end string
    # Each structure's content in a mode of its own; its rule "st_k: [REST_k] content END_k".
    content_mode: list[int] = []
    struct_rule: list[str] = []
    for k, s in enumerate(structures):
        if not s.begin and not spec.free_text:
            mode = body_mode  # the only structure, starting right away: its content is lexed from the start
        else:
            mode = modes.new()
        content_mode.append(mode)
        prefix = f"s{k}"
        renamed = _content_lark(s.content, prefix)
        parts: list[str] = []
        if renamed is None:  # any_text: free text up to the end string, the end included
            name = f"S{k}_TEXT"
            if s.end:
                defs.append(f"{name}: /.+/s")
                directives.append(f"// grammask: intersect {name} {json.dumps([{'freeText': [0, s.end]}])}")
                modes.put(name, mode, after_end)
                parts.append(name)
            else:
                defs.append(f"{name}: /.+/s")
                modes.put(name, mode)
                parts.append(f"{name}?")
        else:
            rules.append(renamed.text)
            for t in renamed.terminals:
                modes.put(t, mode)
            parts.append(renamed.start)
            if s.end:
                name = f"END_{k}"
                defs.append(f"{name}: {_literal(s.end)}")
                modes.put(name, mode, after_end)
                parts.append(name)
                comp.end_terminals[name] = (mode, s.end)
        struct_rule.append(f"st_{k}")
        rules.append(f"st_{k}: " + " ".join(parts))

    # How structures are entered: after a trigger (free text), or by their begin string (no free text).
    if spec.free_text:
        triggers = spec.triggers
        from ..fsm.free_text import check_stops

        try:
            check_stops(triggers)
        except ValueError as exc:
            raise GrammarError(f"structural tag: triggers: {exc}", source=SOURCE) from None
        opened_by: dict[int, list[int]] = {i: [] for i in range(len(triggers))}
        for k, s in enumerate(structures):
            owners = [i for i, t in enumerate(triggers) if s.begin.startswith(t)]
            if not owners:
                raise GrammarError(f"structural tag: begin {s.begin!r} starts with no trigger, so it can never be "
                                   "written", source=SOURCE)
            opened_by[owners[0]].append(k)
        calls = []
        for i, trig in enumerate(triggers):
            ks = opened_by[i]
            if not ks:
                raise GrammarError(f"structural tag: trigger {trig!r} opens no structure", source=SOURCE)
            name = f"TEXT_TRIG_{i}"
            defs.append(f"{name}: /.+/s")
            directives.append(f"// grammask: intersect {name} {json.dumps([{'freeText': [i, *triggers]}])}")
            rests = [structures[k].begin[len(trig):] for k in ks]
            if rests == [""]:
                modes.put(name, body_mode, content_mode[ks[0]])
                calls.append(f"{name} {struct_rule[ks[0]]}")
                continue
            if "" in rests:
                raise GrammarError(f"structural tag: begin {trig!r} equals its trigger while other begins extend "
                                   "it; after the trigger the lexer could not tell them apart", source=SOURCE)
            _check_prefix_free(rests, f"the begin after trigger {trig!r},")
            dispatch = modes.new()
            modes.put(name, body_mode, dispatch)
            alts = []
            for k, rest in zip(ks, rests):
                rest_name = f"BEGIN_{k}"
                defs.append(f"{rest_name}: {_literal(rest)}")
                modes.put(rest_name, dispatch, content_mode[k])
                alts.append(f"{rest_name} {struct_rule[k]}")
            rules.append(f"call_{i}: " + "\n    | ".join(alts))
            calls.append(f"{name} call_{i}")
        rules.append("call: " + "\n    | ".join(calls))
        defs.append("TEXT_END: /.+/s")
        directives.append(f"// grammask: intersect TEXT_END {json.dumps([{'freeText': [-1, *triggers]}])}")
        modes.put("TEXT_END", body_mode)
        if spec.stop_after_first:
            body = "call" if spec.at_least_one else "call | TEXT_END?"
        else:
            body = ("call+" if spec.at_least_one else "call*") + " TEXT_END?"
    else:
        entries = []
        begins = [s.begin for s in structures if s.begin]
        _check_prefix_free(begins, "begin")
        for k, s in enumerate(structures):
            if not s.begin:
                entries.append(struct_rule[k])
                continue
            name = f"BEGIN_{k}"
            defs.append(f"{name}: {_literal(s.begin)}")
            modes.put(name, body_mode, content_mode[k])
            entries.append(f"{name} {struct_rule[k]}")
        rules.append("entry: " + "\n    | ".join(entries))
        if spec.stop_after_first:
            body = "entry" if spec.at_least_one else "entry?"
        else:
            body = "entry+" if spec.at_least_one else "entry*"
    start = " ".join(start_parts + [f"({body})"])
    directives.append(f"// grammask: lexmodes {json.dumps(modes.table)}")
    comp.text = "\n".join([*directives, "", f"start: {start}", *rules, *defs, ""])
    return comp


def check_end_strings(tables, comp: Composition) -> None:
    """A structure's end string must end its content cleanly: nothing the content lexes may run on into
    it (a lexeme that could be complete, then the end's first byte, must not be one lexeme), and the end
    must not be the beginning of a longer content lexeme. GrammarError naming the terminal otherwise."""
    lexer = tables.lexer
    names = [t.name for t in tables.terminals]
    for end_name, (mode, end) in comp.end_terminals.items():
        end_id = names.index(end_name)
        data = end.encode()
        q = int(lexer.mode_start[mode])
        for b in data:
            q = int(lexer.trans[q, b])
        if q < 0 or int(lexer.winner[q]) != end_id or not lexer.final[q]:
            other = names[int(lexer.winner[q])] if q >= 0 and lexer.winner[q] >= 0 else "a longer lexeme"
            raise GrammarError(f"structural tag: the end string {end!r} can continue as {other} of its content; "
                               "choose an end string the content grammar cannot run into", source=SOURCE)
        in_mode = (lexer.lex_mode == mode) & (lexer.winner >= 0) & (lexer.winner != end_id)
        runs_on = in_mode & (lexer.trans[:, data[0]] >= 0)
        if runs_on.any():
            q = int(runs_on.nonzero()[0][0])
            raise GrammarError(f"structural tag: the content's terminal {names[int(lexer.winner[q])]} can run on "
                               f"into the end string {end!r} (its first character continues the lexeme); "
                               "choose an end string the content grammar cannot contain there", source=SOURCE)


def uses_user_grammar(spec: StructuralSpec) -> bool:
    return any(s.content["type"] == "grammar" for s in spec.structures)

