"""JSON Schema (draft 2020-12, common draft-07 spellings) -> a Lark grammar for the engine.

Exactness first: every keyword that constrains instances is either enforced exactly by the grammar or
refused with a GrammarError naming the keyword and its JSON pointer. The grammar may be narrower than
the schema (documented below), never wider.

Narrower by design:
- properties come in schema order (required and optional alike; optional ones may be left out), and
  other keys (when additionalProperties allows them) anywhere in between;
- strings use one spelling per ASCII character (as json.dumps writes it; no \\/ and no \\u for
  printable ASCII, lowercase hex), non-ASCII raw or as \\uxxxx;
- integers without fraction or exponent; enum/const values spelled as json.dumps spells them;
- a string under a maxLength above EXACT_LENGTH: printable ASCII (short escapes allowed) and at most
  LENGTH_CAP characters (longer bounds build automata too slowly, see _length_content);
- numbers with a fraction under bounds: no exponent, non-integer bounds rounded inward;
- multiples (multipleOf): no exponent (fsm/multiples.py tracks the remainder digit by digit);
- format ipv6 without zone ids, email and uri as strict subsets of their RFCs;
- whitespace: at most WS_MAX blanks around each punctuation mark (none with compact=True).

Finite instance sets: when an enum/const bounds the instances (on the schema or in its allOf), each
listed value is judged against the whole schema (json_instance.Judge) and the grammar lists the ones
that pass, so any keyword around an enum (not, if/then/else, multipleOf, ...) is exact there.

Lexing: grammask's lexer is context-free (longest match, then priority), so every string or number
terminal must lex exactly. The terminals of one schema form a laminar family (any two are disjoint or
nested); the innermost wins by priority, and a position that expects language L accepts every terminal
contained in L. Two that overlap partially get their intersection as one more terminal (the grammar's
`intersect` directive), closed under intersection; keys that must not occur are kept in the lexer
(`keep` directive) so that their text is never lexed as another key.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import re
import time
from typing import Any, Optional

import interegular

from ...fsm.lexer import LexerTooLarge, _time_limit
from ...fsm.multiples import checked_multiple_fsm, multiple_fsm, multiple_parts
from ..errors import GrammarError
from ..json_instance import Judge, Unjudgeable, distinct, finite_values, json_equal
from ..regex import (MAX_CODEPOINT, Emitter, RegexRefused, class_run, decimal_class, digit_range, intersect,
                    json_spelling, lark_pattern)

WS_MAX = 16
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
MAX_TRACKED_ITEMS = 1000
MAX_COUNTED_PROPERTIES = 32  # minProperties/maxProperties: the object rules are copied once per count
MAX_TERM_INTERSECTIONS = 64  # value sets made as intersections of overlapping ones (see _Terminals.finalize)
MAX_KEY_SETS = 6  # object key sets (required, anyOf/oneOf of required lists, dependencies): 2**6 - 1 state tags
_REQUIRED_ANY = "$keySets (grammask)"  # schema_alts -> object_alts: (need, ban) key lists, one set to hold

# Any character in its JSON spellings: the same language as json_spelling([(0, MAX_CODEPOINT)]), written
# prefix-factored so that interegular's automaton for it is small (39 states instead of 71): bounded
# repetitions of it cost time quadratic in that size, in the lexer as well as here.
_HEX = "[0-9a-f]"
_ANY_CHAR = (r'(?:[^"\\\u0000-\u001f]|[\\]["\\bfnrt]|[\\]u(?:00(?:0[0-7bef]|1' + _HEX + r')|007f|00[89a-f]'
             + _HEX + r'|0[1-9a-f]' + _HEX + '{2}|[1-9a-c]' + _HEX + '{3}|d[0-7]' + _HEX + '{2}|[ef]' + _HEX
             + r'{3}|d[89ab]' + _HEX + r'{2}[\\]ud[c-f]' + _HEX + '{2}))')
# A printable ASCII character, raw or as a two-character escape: the unit of long bounded strings.
_PLAIN_CHAR = r'(?:[ !#-\[\]-~]|[\\]["\\bfnrt])'
EXACT_LENGTH = 3   # strings up to this length: every spelling of every character
LENGTH_CAP = 64    # above EXACT_LENGTH, under a maxLength: printable ASCII and short escapes, at most this long
_INT = r"-?(?:0|[1-9][0-9]*)"
_FRAC = r"-?(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)"
_FRAC_NONNEG = r"(?:0|[1-9][0-9]*)(?:\.[0-9]+(?:[eE][+-]?[0-9]+)?|[eE][+-]?[0-9]+)"
# > 0: some nonzero digit in the mantissa.
_FRAC_POS = (r"(?:[1-9][0-9]*\.[0-9]+(?:[eE][+-]?[0-9]+)?|[1-9][0-9]*[eE][+-]?[0-9]+"
             r"|0\.[0-9]*[1-9][0-9]*(?:[eE][+-]?[0-9]+)?)")

# Formats as exact regexes (raw syntax, turned into JSON spellings like a pattern).
_YEAR = r"[0-9]{4}"
_LEAP = r"(?:[0-9]{2}(?:0[48]|[2468][048]|[13579][26])|(?:[02468][048]|[13579][26])00)"
_DATE = (rf"(?:{_YEAR}-(?:(?:0[13578]|1[02])-(?:0[1-9]|[12][0-9]|3[01])|(?:0[469]|11)-(?:0[1-9]|[12][0-9]|30)"
         rf"|02-(?:0[1-9]|1[0-9]|2[0-8]))|{_LEAP}-02-29)")
_TIME = r"(?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](?:\.[0-9]+)?(?:Z|[+-](?:[01][0-9]|2[0-3]):[0-5][0-9])"
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4 = rf"{_OCTET}(?:\.{_OCTET}){{3}}"
_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
_ATEXT = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
_PCHAR = r"(?:[A-Za-z0-9._~!$&'()*+,;=:@-]|%[0-9A-Fa-f]{2})"
_H16 = "[0-9a-fA-F]{1,4}"


def _ipv6() -> str:
    """RFC 4291 text forms: eight groups, or k groups, "::", m groups with k + m <= 7; the last two groups
    may be a dotted IPv4 address (then k + m <= 5)."""
    def groups(n: int) -> str:  # n groups joined by ':'
        return "" if n == 0 else _H16 + (f"(?::{_H16}){{{n - 1}}}" if n > 1 else "")

    def upto(n: int) -> str:  # 0..n groups joined by ':'
        return "" if n == 0 else f"(?:{_H16}(?::{_H16}){{0,{n - 1}}})?"

    alts = [groups(8), f"(?:{_H16}:){{6}}{_IPV4}"]
    alts += [groups(k) + "::" + upto(7 - k) for k in range(8)]
    alts += [groups(k) + "::" + f"(?:{_H16}:){{0,{5 - k}}}" + _IPV4 for k in range(6)]
    return "(?:" + "|".join(alts) + ")"


FORMATS = {
    "date": _DATE,
    "time": _TIME,
    "date-time": rf"{_DATE}T{_TIME}",
    "uuid": r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}",
    "ipv4": _IPV4,
    "ipv6": _ipv6(),
    # A subset of RFC 5321 addresses: dot-atom local part, domain of two or more labels.
    "email": rf"{_ATEXT}+(?:\.{_ATEXT}+)*@{_LABEL}(?:\.{_LABEL})+",
    # A subset of RFC 3986 URIs: scheme://host[:port][/path][?query][#fragment].
    "uri": (rf"[A-Za-z][A-Za-z0-9+.-]*://(?:[A-Za-z0-9._~!$&'()*+,;=-]|%[0-9A-Fa-f]{{2}})+(?::[0-9]+)?"
            rf"(?:/{_PCHAR}*)*(?:\?(?:{_PCHAR}|[/?])*)?(?:#(?:{_PCHAR}|[/?])*)?"),
}


# Formats the drafts define (2020-12, and the draft 3/4 names): one of these we cannot enforce is refused.
# Any other format name is unknown to the specification, which makes it pass every instance.
SPECIFIED_FORMATS = {"date-time", "date", "time", "duration", "email", "idn-email", "hostname", "idn-hostname",
                     "ipv4", "ipv6", "uri", "uri-reference", "iri", "iri-reference", "uuid", "uri-template",
                     "json-pointer", "relative-json-pointer", "regex", "host-name", "ip-address", "color",
                     "style", "phone", "utc-millisec"}


def _err(msg: str, ptr: str) -> GrammarError:
    return GrammarError(f"JSON Schema at {ptr or '#'}: {msg}")


def _ptr(base: str, *parts) -> str:
    out = base or "#"
    for p in parts:
        out += "/" + str(p).replace("~", "~0").replace("/", "~1")
    return out


class _Term:
    def __init__(self, name: str, family: str, pattern: Optional[str], literal: Optional[str], where: str,
                 length: Optional[tuple[int, Optional[int]]] = None, parts: tuple["_Term", ...] = (),
                 multiple: Optional[tuple[int, int]] = None):
        self.name, self.family, self.pattern, self.literal, self.where = name, family, pattern, literal, where
        self.length = length  # (lo, hi) for the strings of _length_content(lo, hi): compared without automata
        self.parts = parts    # an intersection: the strings every one of these terms matches (pattern: parts[0]'s)
        self.multiple = multiple  # (m, e): not a terminal, a part: the multiples of m / 10**e (multiple_fsm)
        self._fsm = None

    def directive_item(self):
        """How an intersect directive names this part."""
        return {"multipleOf": list(self.multiple)} if self.multiple else lark_pattern(self.pattern)

    @property
    def fsm(self):
        if self._fsm is None:
            if self.multiple:
                self._fsm = multiple_fsm(*self.multiple)
            elif self.parts:
                self._fsm = functools.reduce(lambda a, b: a & b, (p.fsm for p in self.parts))
            else:
                self._fsm = interegular.parse_pattern(lark_pattern(self.pattern)).to_fsm()
        return self._fsm

    def matches(self, text: str) -> bool:
        if self.multiple:
            return self.fsm.accepts(text)
        if self.parts:
            return all(p.matches(text) for p in self.parts)
        return re.fullmatch(lark_pattern(self.pattern), text) is not None


class _Terminals:
    """String and number terminals of one schema grammar, with the containment relation between them."""

    def __init__(self):
        self.terms: dict[str, _Term] = {}
        self.by_key: dict[tuple, str] = {}
        self.alias: dict[str, str] = {}
        self.made: set[str] = set()    # intersections of overlapping value sets (see finalize)
        self.made_by_parts: dict[frozenset, str] = {}  # the same, by the names of the terms intersected
        self.multiples: dict[tuple[int, int], _Term] = {}  # multipleOf steps (m, e) -> their part
        self.hidden: set[str] = set()  # terminals every string of which the lexer gives to one inside them

    def add(self, family: str, pattern: str, literal: Optional[str], where: str,
            length: Optional[tuple[int, Optional[int]]] = None) -> str:
        key = (family, literal) if literal is not None else (family, "re", pattern)
        if key not in self.by_key:
            name = f"{family[0].upper()}{len(self.terms)}"
            self.terms[name] = _Term(name, family, pattern, literal, where, length)
            self.by_key[key] = name
        return self.by_key[key]

    def _relation(self, a: _Term, b: _Term) -> str:
        if a.literal is not None and b.literal is not None:
            return "disjoint"
        if a.literal is not None:
            return "sub" if b.matches(a.literal) else "disjoint"
        if b.literal is not None:
            return "super" if a.matches(b.literal) else "disjoint"
        if a.length and b.length:
            return _interval_relation(a.length, b.length)
        fa, fb = a.fsm, b.fsm
        if _disjoint(fa, fb):
            return "disjoint"
        sub, sup = fa.issubset(fb), fb.issubset(fa)
        if sub and sup:
            return "equal"
        if sub:
            return "sub"
        if sup:
            return "super"
        return "overlap"

    def finalize(self) -> tuple[dict[str, set], dict[str, int]]:
        """Containment (name -> names it contains, itself included) and lexer priorities.

        The lexer sees one terminal per value set and gives a string to the highest-priority terminal
        that matches it, so every value set must lie inside or outside every other. Two that overlap
        otherwise get their intersection as one more terminal (closed under intersection, so the most
        specific terminal matching a string lies inside every value set the string belongs to)."""
        queue = [n for n in self.terms if n not in self.alias]
        inside = {n: {n} for n in queue}
        depth = {n: 0 for n in queue}
        live: list[str] = []
        made = self.made_by_parts
        while queue:
            a = queue.pop(0)
            ta = self.terms[a]
            rels = []
            for b in live:
                tb = self.terms[b]
                if ta.family == tb.family:
                    rel = self._relation(ta, tb)
                    if rel == "equal":
                        self.alias[a] = b
                        break
                    rels.append((b, rel))
            if a in self.alias:
                continue
            live.append(a)
            for b, rel in rels:
                if rel == "sub":
                    inside[b].add(a)
                    depth[a] += 1
                elif rel == "super":
                    inside[a].add(b)
                    depth[b] += 1
                elif rel == "overlap":
                    c = self._intersection(ta, self.terms[b], made)
                    if c not in inside:
                        inside[c], depth[c] = {c}, 0
                        queue.append(c)
        for b, a in self.alias.items():
            if a in inside:
                inside[a] |= inside.get(b, set())
        self.hidden = {t for t in live if self._covered(t, inside)}
        return inside, depth

    def _covered(self, name: str, inside: dict) -> bool:
        """Does every string of `name` belong to an intersection terminal inside it (which the lexer
        prefers)? Then the lexer never produces `name`: its value sets take the terminals inside it."""
        subs = [t for t in inside[name] if t != name and t not in self.alias]
        if not any(t in self.made for t in subs):
            return False
        union = functools.reduce(lambda a, b: a | b, (self.terms[t].fsm for t in subs))
        return (self.terms[name].fsm - union).empty()

    def both(self, a: str, b: str) -> str:
        """The terminal for the strings/numbers both terminals match."""
        return self._intersection(self.terms[a], self.terms[b], self.made_by_parts)

    def multiple_of(self, name: str, step: tuple[int, int], where: str) -> str:
        """The terminal for the numbers of terminal `name` that are multiples of m / 10**e (step = (m, e))."""
        part = self.multiples.setdefault(step, _Term(f"M{len(self.multiples)}", "number", None, None, where,
                                                      multiple=step))
        return self._intersection(self.terms[name], part, self.made_by_parts)

    def _intersection(self, a: _Term, b: _Term, made: dict) -> str:
        parts = tuple(sorted({*(a.parts or (a,)), *(b.parts or (b,))}, key=lambda t: (t.multiple is not None, t.name)))
        key = frozenset(t.name for t in parts)
        if key in made:
            return made[key]
        if len(made) >= MAX_TERM_INTERSECTIONS:
            raise _err(f"the strings/numbers allowed at {a.where} and at {b.where} overlap without one "
                       f"containing the other, and more than {MAX_TERM_INTERSECTIONS} such overlaps arise",
                       a.where)
        name = f"{a.family[0].upper()}{len(self.terms)}"
        if a.length and b.length:  # an interval's language: the common interval's
            his = [x for x in (a.length[1], b.length[1]) if x is not None]
            lo, hi = max(a.length[0], b.length[0]), (min(his) if his else None)
            term = _Term(name, a.family, f'"{_length_content(lo, hi)}"', None, a.where, (lo, hi))
        else:
            term = _Term(name, a.family, parts[0].pattern, None, a.where, parts=parts)
        self.terms[name] = term
        made[key] = name
        self.made.add(name)
        return name


class _Translator:
    def __init__(self, root: Any, compact: bool):
        self.root = root
        self.compact = compact
        self.rules: dict[str, list[str]] = {}
        self.memo: dict[str, str] = {}
        self.terms = _Terminals()
        self.classes: dict[tuple, str] = {}
        self.keep: set[str] = set()  # terminals to lex although no rule uses them (keys that must not occur)
        self.n = 0

    # ---- helpers -------------------------------------------------------------------------------
    def fresh(self, hint: str) -> str:
        self.n += 1
        return f"{hint}_{self.n}"

    def rule(self, name: str, alts: list[str], ptr: str) -> str:
        if not alts:
            raise _err("no instance can satisfy this schema (an empty choice)", ptr)
        self.rules[name] = alts
        return name

    def cls(self, spec: tuple) -> str:
        """A nonterminal for a set of terminals, resolved when all terminals are known."""
        if spec not in self.classes:
            self.classes[spec] = f"cls_{len(self.classes)}"
        return self.classes[spec]

    def _class_term(self, cls_name: str) -> str:
        return next(spec[1] for spec, n in self.classes.items() if n == cls_name and spec[0] == "sub")

    def resolve_ref(self, ref: str, ptr: str) -> tuple[Any, str]:
        if not ref.startswith("#"):
            raise _err(f"$ref {ref!r}: only local references (#...) are supported", ptr)
        node = self.root
        path = ref[1:]
        if path and not path.startswith("/"):
            raise _err(f"$ref {ref!r}: anchors are not supported", ptr)
        for part in path.split("/")[1:] if path else []:
            part = part.replace("~1", "/").replace("~0", "~")
            part = re.sub(r"%([0-9A-Fa-f]{2})", lambda m: chr(int(m.group(1), 16)), part)
            if isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            elif isinstance(node, dict) and part in node:
                node = node[part]
            else:
                raise _err(f"$ref {ref!r} does not resolve", ptr)
        return node, "#" + path

    # ---- terminals and literal values ----------------------------------------------------------
    def string_literal(self, s: str, ptr: str) -> str:
        if any(0xD800 <= ord(c) <= 0xDFFF for c in s):
            raise _err("a string with a lone surrogate is not supported", ptr)
        pattern = '"' + "".join(json_spelling([(ord(c), ord(c))]) for c in s) + '"'
        return self.terms.add("string", pattern, json.dumps(s, ensure_ascii=False), ptr)

    def literal(self, v: Any, ptr: str) -> str:
        """Grammar symbols for exactly the value v (object keys in their order)."""
        if v is None:
            return '"null"'
        if v is True:
            return '"true"'
        if v is False:
            return '"false"'
        if isinstance(v, (int, float)):
            if isinstance(v, float) and not math.isfinite(v):
                raise _err("non-finite number in enum/const", ptr)
            text = json.dumps(v)
            return self.terms.add("number", re.escape(text), text, ptr)
        if isinstance(v, str):
            return self.string_literal(v, ptr)
        if isinstance(v, list):
            if not v:
                return "LBK RBK"
            return "LBK " + " COMMA ".join(self.literal(x, ptr) for x in v) + " RBK"
        if isinstance(v, dict):
            if not v:
                return "LB RB"
            return "LB " + " COMMA ".join(f"{self.string_literal(k, ptr)} COLON {self.literal(x, ptr)}"
                                          for k, x in v.items()) + " RB"
        raise _err(f"unsupported value {v!r}", ptr)

    def any_value(self) -> str:
        if "any" not in self.rules:
            self.rules["any"] = []  # reserve the name (recursive)
            strs, nums = self.cls(("all", "string")), self.cls(("all", "number"))
            self.rules["any"] = ["any_obj", "any_arr", strs, nums, '"true"', '"false"', '"null"']
            self.rules["any_obj"] = ["LB RB", "LB any_member (COMMA any_member)* RB"]
            self.rules["any_member"] = [f"{strs} COLON any"]
            self.rules["any_arr"] = ["LBK RBK", "LBK any (COMMA any)* RBK"]
        return "any"

    # ---- schemas ------------------------------------------------------------------------------
    def node(self, schema: Any, ptr: str) -> str:
        # One nonterminal per distinct subschema (by content: $refs are absolute), so that equal values
        # in two branches or properties are one nonterminal, not two an LR parser would have to choose from.
        key = json.dumps(schema, sort_keys=True) if isinstance(schema, dict) else ptr
        if key in self.memo:
            return self.memo[key]
        if schema is True or schema == {}:
            return self.any_value()
        if schema is False:
            raise _err("schema false: no instance is valid here", ptr)
        if not isinstance(schema, dict):
            raise _err(f"a schema must be an object or a boolean, not {type(schema).__name__}", ptr)
        name = self.fresh("v")
        self.memo[key] = name
        self.rules[name] = []  # reserved: recursion through $ref sees the name
        alts = self.schema_alts(schema, ptr)
        return self.rule(name, alts, ptr)

    def schema_alts(self, schema: dict, ptr: str) -> list[str]:
        schema = dict(schema)
        # An enum/const (here or in allOf) bounds the instances to a list: keep the values the whole
        # schema accepts, whatever other keywords (not, if, multipleOf, ...) say.
        values = finite_values(schema, self.resolve_ref, ptr)
        if values is not None:
            return self.enum_alts(schema, values, ptr)
        for k in ("$dynamicRef", "$recursiveRef", "not", "if", "then", "else", "unevaluatedProperties",
                  "unevaluatedItems", "dependentSchemas", "dependencies", "propertyNames", "contains",
                  "dependentRequired"):
            if k in schema:
                if k == "then" or k == "else":
                    if "if" not in schema:
                        continue  # then/else without if are ignored by the specification
                if k in ("dependencies", "dependentRequired") and isinstance(schema[k], dict) and \
                        all(isinstance(v, list) for v in schema[k].values()):
                    continue  # key lists: object_alts tracks them
                raise _err(f"keyword {k!r} is not supported" + (" (only lists of keys)" if k == "dependencies" else ""),
                           _ptr(ptr, k))
        if schema.get("uniqueItems") is True:
            raise _err("keyword 'uniqueItems': true is not supported", _ptr(ptr, "uniqueItems"))
        if "allOf" in schema:
            return self.schema_alts(self.merge_all_of(schema, ptr), ptr + "/allOf*")  # a pointer no $ref can name
        if "$ref" in schema:
            rest = {k: v for k, v in schema.items() if k in KNOWN and k != "$ref"}
            target, tptr = self.resolve_ref(schema["$ref"], _ptr(ptr, "$ref"))
            if rest:
                raise _err("'$ref' next to other assertion keywords "
                           f"({', '.join(sorted(rest))}) is not supported", ptr)
            return [self.node(target, tptr)]
        for comb in ("anyOf", "oneOf"):
            if comb in schema:
                branches = schema[comb]
                if not isinstance(branches, list) or not branches:
                    raise _err(f"{comb!r} must be a non-empty array", _ptr(ptr, comb))
                if _REQUIRED_ANY not in schema and \
                        all(isinstance(b, dict) and set(b) & KNOWN <= {"required"} for b in branches):
                    # "one of these key sets" (anyOf), "exactly one" (oneOf: the others each miss a key):
                    # folded into the object's rules (as branches, an object with keys of several sets would
                    # make the grammar ambiguous)
                    needs = [list(b.get("required", [])) for b in branches]
                    sets = [(need, []) for need in needs]
                    if comb == "oneOf":
                        sets = [(need, list(ban)) for j, need in enumerate(needs) for ban in
                                itertools.product(*(other for k, other in enumerate(needs) if k != j))]
                    folded = {k: v for k, v in schema.items() if k != comb}
                    folded[_REQUIRED_ANY] = sets
                    return self.schema_alts(folded, ptr)
                rest = {k: v for k, v in schema.items() if k in KNOWN and k != comb}
                if comb == "oneOf":  # the siblings narrow every branch
                    self.check_disjoint([{"allOf": [rest, b]} if rest else b for b in branches], _ptr(ptr, comb))
                if rest:
                    # Siblings apply to every branch: X and anyOf[B...] = anyOf[allOf[X, B]...]; the branches
                    # stay disjoint for oneOf since each only got narrower.
                    return self.union_alts([self.node({"allOf": [rest, b]}, _ptr(ptr, comb, i) + "&")
                                            for i, b in enumerate(branches)])
                return self.union_alts([self.node(b, _ptr(ptr, comb, i)) for i, b in enumerate(branches)])
        types = schema.get("type", list(TYPES) + ["integer"])
        if isinstance(types, str):
            types = [types]
        if not types:
            raise _err("'type' is an empty list", _ptr(ptr, "type"))
        unknown = [t for t in types if t not in TYPES and t != "integer"]
        if unknown:
            raise _err(f"unknown type {unknown[0]!r}", _ptr(ptr, "type"))
        alts = []
        for t in TYPES:
            if t == "number" and ("number" in types or "integer" in types):
                alts.extend(self.number_alts(schema, ptr, integer="number" not in types))
            elif t in types:
                alts.extend(getattr(self, f"{t}_alts")(schema, ptr))
        return alts

    def union_alts(self, nodes: list[str]) -> list[str]:
        """The alternatives of anyOf/oneOf branches, flattened: the branches' terminal sets merged into one
        set and equal alternatives kept once. (A value two branches' sets share would make the LR parser
        pick a branch it cannot know yet: a reduce/reduce conflict.)"""
        flat: list[str] = []

        def expand(alt: str, depth: int) -> None:
            rule = self.rules.get(alt)
            if rule and depth < 8 and alt.startswith("v_"):  # a value node (not one still being built)
                for a in rule:
                    expand(a, depth + 1)
            elif alt not in flat:
                flat.append(alt)

        for n in nodes:
            expand(n, 0)
        spec_of = {name: spec for spec, name in self.classes.items()}
        sets = [a for a in flat if a in spec_of]
        if len(sets) < 2:
            return flat
        merged = self.cls(("union", frozenset(spec_of[a] for a in sets)))
        return [merged] + [a for a in flat if a not in spec_of]

    def merge_all_of(self, schema: dict, ptr: str) -> dict:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        subs = schema["allOf"]
        if not isinstance(subs, list):
            raise _err("'allOf' must be an array", _ptr(ptr, "allOf"))
        # additionalProperties/items depend on their sibling properties/prefixItems: merging those from two
        # parts would change what they mean, so such merges are refused.
        coupled = ({"properties", "patternProperties", "additionalProperties"}, {"items", "prefixItems", "additionalItems"})
        owners = [{0} if merged.keys() & group else set() for group in coupled]
        for i, sub in enumerate(subs):
            sptr = _ptr(ptr, "allOf", i)
            while isinstance(sub, dict) and set(sub) - ANNOTATIONS == {"$ref"}:
                sub, sptr = self.resolve_ref(sub["$ref"], sptr)
            if sub is True or sub == {}:
                continue
            if not isinstance(sub, dict):
                raise _err("'allOf' with a false or non-object schema is not supported", sptr)
            if "allOf" in sub:
                sub = self.merge_all_of(sub, sptr)
            for g, group in enumerate(coupled):
                if sub.keys() & group:
                    owners[g].add(i + 1)
                    if len(owners[g]) > 1 and (merged.keys() | sub.keys()) & {"additionalProperties", "items",
                                                                               "additionalItems"}:
                        raise _err(f"'allOf' combining {'/'.join(sorted(group))} from several subschemas is not "
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
                            raise _err(f"'allOf': property {pk!r} has two different schemas; merging them is not "
                                       "supported", sptr)
                        props[pk] = pv
                    merged[k] = props
                elif k == "type":
                    a = {merged[k]} if isinstance(merged[k], str) else set(merged[k])
                    b = {v} if isinstance(v, str) else set(v)
                    both = (a & b) | ({"integer"} if ("integer" in a and "number" in b) or
                                      ("number" in a and "integer" in b) else set())
                    if not both:
                        raise _err(f"'allOf': the types {sorted(a)} and {sorted(b)} have nothing in common: no "
                                   "instance is valid here", sptr)
                    merged[k] = sorted(both)
                else:
                    raise _err(f"'allOf': keyword {k!r} appears with different values; merging them is not "
                               "supported", sptr)
        return merged

    def possible_types(self, schema: Any, ptr: str, seen=()) -> Optional[set]:
        """The JSON types a schema admits (integer counted as number), or None if unknown."""
        if schema is True or schema == {}:
            return set(TYPES)
        if schema is False:
            return set()
        if not isinstance(schema, dict):
            return None
        if "$ref" in schema and ptr not in seen:
            target, tptr = self.resolve_ref(schema["$ref"], ptr)
            return self.possible_types(target, tptr, seen + (ptr,))
        t = schema.get("type", list(TYPES))
        out = {"number" if x == "integer" else x for x in ([t] if isinstance(t, str) else t)}
        if "const" in schema or "enum" in schema:  # the listed values' types bound it too
            values = [schema["const"]] if "const" in schema else schema["enum"]
            if not isinstance(values, list):
                return None
            out &= {_json_type(v) for v in values}
        for comb in ("anyOf", "oneOf"):
            if comb in schema:
                union = set()
                for i, b in enumerate(schema[comb]):
                    bt = self.possible_types(b, _ptr(ptr, comb, i), seen)
                    if bt is None:
                        return None
                    union |= bt
                out &= union
        for i, b in enumerate(schema.get("allOf", [])):  # each part bounds it; an unknown part does not
            bt = self.possible_types(b, _ptr(ptr, "allOf", i), seen)
            if bt is not None:
                out &= bt
        return out

    def check_disjoint(self, branches: list, ptr: str) -> None:
        """oneOf is anyOf when no instance can match two branches: proved pair by pair (see disjoint)."""
        for i in range(len(branches)):
            for j in range(i + 1, len(branches)):
                if not self.disjoint(branches[i], _ptr(ptr, i), branches[j], _ptr(ptr, j)):
                    raise _err(f"'oneOf' branches {i} and {j} may overlap, which is not supported (cannot prove "
                               "exactly one matches)", ptr)

    def disjoint(self, a: Any, pa: str, b: Any, pb: str, depth: int = 0) -> bool:
        """Can no instance match both schemas? Proved by the types they admit; by listed values (enum/const)
        of one none of which matches the other; or, for two object schemas, by a property both require
        whose schemas are disjoint, or one requires and the other forbids (additionalProperties false)."""
        ta, tb = self.possible_types(a, pa), self.possible_types(b, pb)
        if ta is not None and tb is not None and not ta & tb:
            return True
        judge = Judge(self.resolve_ref, FORMATS, SPECIFIED_FORMATS)
        for x, px, y, py in ((a, pa, b, pb), (b, pb, a, pa)):
            values = finite_values(x, self.resolve_ref, px) if isinstance(x, dict) else None
            try:
                if values is not None and not any(judge.valid(x, v, px) and judge.valid(y, v, py) for v in values):
                    return True
            except Unjudgeable:
                pass
        if depth >= 3 or ta is None or tb is None or not ta | tb <= {"object"}:
            return False
        (a, pa), (b, pb) = self.deref(a, pa), self.deref(b, pb)
        if not isinstance(a, dict) or not isinstance(b, dict):
            return False
        try:  # properties and required of allOf parts, merged where they can be
            a = self.merge_all_of(a, pa) if "allOf" in a else a
            b = self.merge_all_of(b, pb) if "allOf" in b else b
        except GrammarError:
            return False
        pr_a, pr_b = a.get("properties", {}), b.get("properties", {})
        req_a, req_b = a.get("required", []), b.get("required", [])
        for k in set(req_a) & set(req_b) & set(pr_a) & set(pr_b):
            if self.disjoint(pr_a[k], _ptr(pa, "properties", k), pr_b[k], _ptr(pb, "properties", k), depth + 1):
                return True
        for x, y_req in ((a, req_b), (b, req_a)):  # a key one requires that the other allows in no way
            props = x.get("properties", {})
            if x.get("additionalProperties", True) is False and not x.get("patternProperties"):
                if any(k not in props or props[k] is False for k in y_req):
                    return True
        return False

    def deref(self, schema: Any, ptr: str) -> tuple[Any, str]:
        """Follow a schema that is only a $ref (a few steps at most)."""
        for _ in range(8):
            if not (isinstance(schema, dict) and "$ref" in schema and len(schema) == 1):
                break
            schema, ptr = self.resolve_ref(schema["$ref"], ptr)
        return schema, ptr

    def no_value_satisfies(self, schema: Any, ptr: str) -> bool:
        """Is the schema's enum/const (its own or through allOf) a list none of whose values it accepts?"""
        values = finite_values(schema, self.resolve_ref, ptr) if isinstance(schema, dict) else None
        if values is None:
            return False
        judge = Judge(self.resolve_ref, FORMATS, SPECIFIED_FORMATS)
        try:
            return not any(judge.valid(schema, v, ptr) for v in distinct(values))
        except Unjudgeable:
            return False

    def enum_alts(self, schema: dict, values: list, ptr: str) -> list[str]:
        """The listed values the whole schema accepts (judged one by one), each as a literal."""
        judge = Judge(self.resolve_ref, FORMATS, SPECIFIED_FORMATS)
        try:
            kept = [v for v in distinct(values) if judge.valid(schema, v, ptr)]
        except Unjudgeable as exc:
            raise _err(f"cannot check the enum/const values against the rest of the schema: {exc}", ptr) from None
        if not kept:
            raise _err("no value of 'enum'/'const' satisfies the rest of the schema", ptr)
        return [self.literal(v, _ptr(ptr, "enum")) for v in kept]

    def null_alts(self, schema, ptr):
        return ['"null"']

    def boolean_alts(self, schema, ptr):
        return ['"true"', '"false"']

    # ---- strings ------------------------------------------------------------------------------
    def string_alts(self, schema: dict, ptr: str) -> list[str]:
        present = [k for k in ("pattern", "format", "minLength", "maxLength") if k in schema]
        fmt = schema.get("format")
        if fmt is not None and fmt not in FORMATS:
            if fmt in SPECIFIED_FORMATS:
                raise _err(f"format {fmt!r} is not supported (supported: {', '.join(sorted(FORMATS))})",
                           _ptr(ptr, "format"))
            # A format no draft defines asserts nothing: validators must let every string pass.
            schema = {k: v for k, v in schema.items() if k != "format"}
            fmt = None
        lo = _count(schema, "minLength", ptr, 0)
        hi = _count(schema, "maxLength", ptr, None)
        length = lo > 0 or hi is not None
        kinds = [k for k in ("pattern", "format") if k in schema] + (["minLength/maxLength"] if length else [])
        if kinds == ["pattern", "minLength/maxLength"] and isinstance(schema["pattern"], str):
            run = class_run(schema["pattern"])
            if run is not None:  # ^[class]{a,b}$ with length bounds: the class, counted once
                return self.class_run_alts(run, lo, hi, ptr)
        if len(kinds) > 1:
            # Each constraint's strings, then their intersection (unless one lies inside the others).
            parts = [{k: v for k, v in schema.items() if k not in ("pattern", "format", "minLength", "maxLength")
                      or k == kind or kind == "minLength/maxLength" and k in ("minLength", "maxLength")}
                     for kind in kinds]
            names = [self._class_term(self.string_alts(part, ptr)[0]) for part in parts]
            name = names[0]
            for other in names[1:]:
                rel = self.terms._relation(self.terms.terms[name], self.terms.terms[other])
                if rel == "disjoint":
                    raise _err(f"{' together with '.join(kinds)}: no string satisfies them all", ptr)
                if rel in ("super", "equal"):
                    name = other
                elif rel == "overlap":
                    name = self.terms.both(name, other)
            return [self.cls(("sub", name))]
        if not present or kinds == []:
            return [self.cls(("all", "string"))]
        if "pattern" in schema:
            content = self.pattern_content(schema["pattern"], _ptr(ptr, "pattern"))
        elif "format" in schema:
            body, _, _ = Emitter(json_spelling).emit(FORMATS[fmt])
            content = body
        else:
            if not (isinstance(lo, int) and lo >= 0 and (hi is None or isinstance(hi, int) and hi >= 0)):
                raise _err("minLength/maxLength must be non-negative integers", ptr)
            if hi is not None and hi < lo:
                raise _err("maxLength < minLength: no string is valid", ptr)
            if lo > LENGTH_CAP:
                raise _err(f"minLength above {LENGTH_CAP} is not supported", ptr)
            hi = None if hi is None else min(hi, LENGTH_CAP)
            name = self.terms.add("string", f'"{_length_content(lo, hi)}"', None, ptr, length=(lo, hi))
            return [self.cls(("sub", name))]
        name = self.terms.add("string", f'"{content}"', None, ptr)
        return [self.cls(("sub", name))]

    def class_run_alts(self, run: tuple, lo: int, hi: Optional[int], ptr: str) -> list[str]:
        """Strings of characters from one class, with both the pattern's and the length bounds."""
        ranges, a, b = run
        lo, hi = max(lo, a), (b if hi is None else hi if b is None else min(hi, b))
        if hi is not None and hi < lo:
            raise _err("the pattern and minLength/maxLength leave no string", ptr)
        if hi is not None and hi > EXACT_LENGTH:
            # As for plain bounded strings: beyond EXACT_LENGTH, printable ASCII and at most LENGTH_CAP long.
            if lo > LENGTH_CAP:
                raise _err(f"minLength above {LENGTH_CAP} is not supported", ptr)
            hi = min(hi, LENGTH_CAP)
            ranges = intersect(ranges, [(0x20, 0x7E)])
            if not ranges:
                raise _err("pattern with a long maxLength: only classes with printable ASCII characters are "
                           "supported", ptr)
        count = f"{{{lo},}}" if hi is None else f"{{{lo},{hi}}}"
        name = self.terms.add("string", f'"(?:{json_spelling(ranges)}){count}"', None, ptr)
        return [self.cls(("sub", name))]

    def pattern_keys(self, patterns: Any, ptr: str) -> list[tuple[str, Any, str]]:
        """patternProperties as (key terminal, value schema, pointer); the patterns must be pairwise disjoint
        (else a key could owe its value to two schemas at once)."""
        if not isinstance(patterns, dict):
            raise _err("'patternProperties' must be an object", ptr)
        out = []
        for p, sub in patterns.items():
            pptr = _ptr(ptr, p)
            term = self.terms.add("string", f'"{self.pattern_content(p, pptr)}"', None, pptr)
            for other, _, optr in out:
                if self.terms._relation(self.terms.terms[term], self.terms.terms[other]) != "disjoint":
                    raise _err(f"patternProperties whose patterns overlap ({optr} and {pptr}) are not supported", ptr)
            out.append((term, sub, pptr))
        return out

    def pattern_content(self, pattern: Any, ptr: str) -> str:
        if not isinstance(pattern, str):
            raise _err("'pattern' must be a string", ptr)
        try:
            body, start, end = Emitter(json_spelling).emit(pattern)
        except RegexRefused as exc:
            raise _err(f"pattern {pattern!r}: {str(exc)}", ptr) from None
        # JSON Schema patterns search: an unanchored end may be followed/preceded by anything.
        pad = f"(?:{_ANY_CHAR})*"
        return ("" if start else pad) + body + ("" if end else pad)

    # ---- numbers ------------------------------------------------------------------------------
    def number_alts(self, schema: dict, ptr: str, integer: bool) -> list[str]:
        step = None
        if "multipleOf" in schema:
            try:
                step = multiple_parts(schema["multipleOf"])
                checked_multiple_fsm(*step)
            except ValueError as exc:
                raise _err(f"'multipleOf': {exc}", _ptr(ptr, "multipleOf")) from None
            if integer and step == (1, 0):
                step = None  # every integer

        def value_set(name: str) -> str:  # a terminal's values (the multiples among them, under multipleOf)
            return self.cls(("sub", self.terms.multiple_of(name, step, ptr) if step else name))

        lo, lo_x = schema.get("minimum"), False
        hi, hi_x = schema.get("maximum"), False
        emin, emax = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        if emin is True:
            lo_x = True
        elif isinstance(emin, (int, float)) and not isinstance(emin, bool):
            if lo is None or emin >= lo:
                lo, lo_x = emin, True
        if emax is True:
            hi_x = True
        elif isinstance(emax, (int, float)) and not isinstance(emax, bool):
            if hi is None or emax <= hi:
                hi, hi_x = emax, True
        for v, k in ((lo, "minimum"), (hi, "maximum")):
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise _err(f"'{k}' must be a finite number", _ptr(ptr, k))
        # Integer values: an interval of integers.
        ilo = None if lo is None else (math.floor(lo) + 1 if lo_x and lo == math.floor(lo) else math.ceil(lo))
        ihi = None if hi is None else (math.ceil(hi) - 1 if hi_x and hi == math.ceil(hi) else math.floor(hi))
        alts = []
        if ilo is not None and ihi is not None and ilo > ihi:
            if integer:
                raise _err("the bounds leave no integer", ptr)
        elif ilo is None and ihi is None:
            alts.append(value_set(self.terms.add("number", _INT, None, ptr)) if step else self.cls(("all", "int")))
        else:
            alts.append(value_set(self.terms.add("number", int_range_regex(ilo, ihi), None, ptr)))
        if integer:
            return alts
        # Numbers written with a fraction or exponent (multiples: with a fraction, no exponent).
        if lo is None and hi is None:
            alts.append(value_set(self.terms.add("number", _FRAC, None, ptr)) if step else self.cls(("all", "frac")))
        elif hi is None and lo == 0:
            alts.append(value_set(self.terms.add("number", _FRAC_POS if lo_x else _FRAC_NONNEG, None, ptr)))
        else:
            # Non-integer bounds are rounded inward (a sound narrowing); no exponent under bounds.
            flo, fhi = (None if lo is None else math.ceil(lo)), (None if hi is None else math.floor(hi))
            pattern = frac_range_regex(flo, lo_x and flo == lo, fhi, hi_x and fhi == hi)
            if pattern is not None:
                alts.append(value_set(self.terms.add("number", pattern, None, ptr)))
        return alts

    # ---- objects ------------------------------------------------------------------------------
    def object_alts(self, schema: dict, ptr: str) -> list[str]:
        props = schema.get("properties", {})
        if not isinstance(props, dict):
            raise _err("'properties' must be an object", _ptr(ptr, "properties"))
        patterns = self.pattern_keys(schema.get("patternProperties", {}), _ptr(ptr, "patternProperties"))
        required = schema.get("required", [])
        # Key sets: an object has every key of one set's `need` and none of its `ban`. From `required`, an
        # anyOf/oneOf of required lists (folded in by schema_alts) and dependencies (k present needs its keys:
        # one copy of each set without k, one with k and its keys).
        sets = [(set(required) | set(need), set(ban)) for need, ban in schema.get(_REQUIRED_ANY, [([], [])])]
        sets = [(need, ban) for need, ban in sets if not need & ban]
        for kw in ("dependencies", "dependentRequired"):
            for k, needs in schema.get(kw, {}).items():
                sets = [(need, ban | {k}) for need, ban in sets] + [(need | {k, *needs}, ban) for need, ban in sets]
                sets = [(need, ban) for need, ban in sets if not need & ban]
        if len(sets) > MAX_KEY_SETS:
            raise _err(f"required/anyOf/dependencies make more than {MAX_KEY_SETS} key sets", ptr)
        addl = schema.get("additionalProperties", True)
        # A property whose schema is false must be absent: not a member (refused below if other keys may occur).
        absent = [k for k, v in props.items() if v is False]
        value_ptr = {k: _ptr(ptr, "properties", k) for k in props if k not in absent}
        named = [*required, *(r for need, ban in schema.get(_REQUIRED_ANY, []) for r in (*need, *ban)),
                 *(r for kw in ("dependencies", "dependentRequired") for k, needs in schema.get(kw, {}).items()
                   for r in (k, *needs))]
        for r in dict.fromkeys(named):  # in the order the schema names them
            if r not in value_ptr and r not in absent:  # named in a set, not listed: a member after the listed ones
                value_ptr[r] = _ptr(ptr, "required", r)
        keys = list(value_ptr)
        # The schemas a listed key's value must satisfy: its own and those of the patterns it matches; a
        # key not listed takes the patterns it matches, or else additionalProperties.
        schemas = {}
        for k in keys:
            spelled = json.dumps(k, ensure_ascii=False)
            parts = ([(props[k], value_ptr[k])] if k in props else []) + \
                [(sub, sptr) for term, sub, sptr in patterns if self.terms.terms[term].matches(spelled)]
            if not parts:
                if addl is False:  # a key no object may have
                    absent.append(k)
                    continue
                parts = [(addl, _ptr(ptr, "additionalProperties"))]
            if len(parts) == 1:
                schemas[k], value_ptr[k] = parts[0]
            else:  # a pointer no $ref can name
                schemas[k], value_ptr[k] = {"allOf": [p for p, _ in parts]}, _ptr(ptr, "properties", k) + "&patterns"
        for k in keys:  # a property no value satisfies must be absent, like one with schema false
            if k not in absent and self.no_value_satisfies(schemas[k], value_ptr[k]):
                absent.append(k)
        keys = [k for k in keys if k not in absent]
        if all(need & set(absent) for need, _ in sets):
            bad = min(r for need, _ in sets for r in need & set(absent))
            raise _err(f"required property {bad!r} cannot occur (schema false, no value satisfies it, or "
                       "additionalProperties false): no object is valid", _ptr(ptr, "required"))
        sets = [(need, ban - set(absent)) for need, ban in sets if not need & set(absent)]
        if addl is not False:
            # Keys that must not occur while other keys may: the lexer must know them (a terminal no
            # rule uses is left out of it, and its text would be lexed as any other key).
            self.keep.update(self.string_literal(k, ptr) for k in absent)
            self.keep.update(term for term, sub, _ in patterns if sub is False)
        req = [frozenset(j for j, (need, _) in enumerate(sets) if k in need) for k in keys]
        banned = [frozenset(j for j, (_, ban) in enumerate(sets) if k in ban) for k in keys]
        n = len(keys)
        base = self.fresh("o")
        members = []
        for j, k in enumerate(keys):
            key = self.string_literal(k, value_ptr[k])
            value = self.node(schemas[k], value_ptr[k])
            members.append(f"{key} COLON {value}")
        extra = None
        key_terms = frozenset(self.string_literal(k, ptr) for k in keys + absent)
        # Other keys: those matching a pattern (patterns are disjoint: one schema each), then the rest.
        extra_alts = [f"{self.cls(('sub-except', term, key_terms))} COLON {self.node(sub, sptr)}"
                      for term, sub, sptr in patterns if sub is not False]  # false: keys that must not occur
        if addl is not False:
            xkey = self.cls(("except", "string", key_terms, frozenset(term for term, _, _ in patterns)))
            extra_alts.append(f"{xkey} COLON {self.node(addl, _ptr(ptr, 'additionalProperties'))}")
        if extra_alts:
            extra = self.rule(f"{base}_x", extra_alts, ptr)
        least = _count(schema, "minProperties", ptr, 0)
        most = _count(schema, "maxProperties", ptr, None)
        if least <= min(len(need) for need, _ in sets):
            least = 0  # the required keys already make it
        if most is not None and extra is None and most >= n:
            most = None  # cannot be exceeded
        if max(least, most or 0) > MAX_COUNTED_PROPERTIES:
            raise _err(f"minProperties/maxProperties above {MAX_COUNTED_PROPERTIES} are not supported", ptr)
        return self.object_rules(base, members, req, banned, len(sets), extra, least, most, ptr)

    def object_rules(self, base: str, members: list[str], req: list[frozenset], banned: list[frozenset], n_sets: int,
                     extra: Optional[str], least: int, most: Optional[int], ptr: str) -> list[str]:
        """Members in schema order, other keys anywhere between, the member count kept in [least, most], and
        the members of one of `n_sets` key sets present and absent as the set says (req[i], banned[i]: the
        sets that need member i, that ban it).

        O(i,c,s): after a member, c members so far (at most `top`, saturating at `least` without `most`), the
        last listed property written having index i-1, s the key sets no written or skipped member ruled out.
        A(i,c,s): the next member (after a comma or the brace). B(i,c,s): a listed property j >= i. Only
        productive rules are made (an empty choice would let a model write a prefix it cannot complete)."""
        n = len(members)
        top = most if most is not None else least
        bump = (lambda c: c + 1) if most is not None else (lambda c: min(c + 1, least))  # noqa: E731
        all_sets = frozenset(range(n_sets))
        alive_sets = [frozenset(j for j in range(n_sets) if bits >> j & 1) for bits in range(1, 1 << n_sets)]

        def name(kind: str, i: int, c: int, alive: frozenset) -> str:
            tag = "_s" + "".join(map(str, sorted(alive))) if n_sets > 1 else ""
            return f"{base}_{kind}{i}" + (f"_{c}" if top else "") + tag

        def satisfied(i: int, alive: frozenset) -> bool:  # a set alive needs no member from i on
            return any(all(j not in req[t] for t in range(i, n)) for j in alive)

        made: set[str] = set()

        def make(kind: str, i: int, c: int, alive: frozenset, alts: list[str]) -> None:
            if alts:
                self.rule(name(kind, i, c, alive), alts, ptr)
                made.add(name(kind, i, c, alive))

        for i in range(n, -1, -1):
            for c in range(top, -1, -1):
                for alive in alive_sets:
                    room = most is None or c < most
                    closes = satisfied(i, alive) and c >= least
                    if room and i < n:
                        kept = alive - banned[i]  # the sets still possible with member i
                        nxt = name("o", i + 1, bump(c), kept) if kept else None
                        b_alts = [f"{members[i]} {nxt}"] if nxt in made else []
                        rest = alive - req[i]  # the sets still possible without member i
                        if rest and i + 1 < n and name("b", i + 1, c, rest) in made:
                            b_alts.append(name("b", i + 1, c, rest))
                        make("b", i, c, alive, b_alts)
                    if room:
                        nxt = name("o", i, bump(c), alive)
                        # O(i,c,s) itself when the count saturates: productive if it can close, or if B(i,c,s) is.
                        loops_back = bump(c) == c and (closes or name("b", i, c, alive) in made)
                        a_alts = [f"{extra} {nxt}"] if extra and (nxt in made or loops_back) else []
                        if name("b", i, c, alive) in made:
                            a_alts.append(name("b", i, c, alive))
                        make("a", i, c, alive, a_alts)
                    o_alts = (["RB"] if closes else []) + \
                        ([f"COMMA {name('a', i, c, alive)}"] if name("a", i, c, alive) in made else [])
                    make("o", i, c, alive, o_alts)
        alts = ["LB RB"] if satisfied(0, all_sets) and least == 0 else []
        if name("a", 0, 0, all_sets) in made:
            alts.append(f"LB {name('a', 0, 0, all_sets)}")
        return alts

    # ---- arrays -------------------------------------------------------------------------------
    def array_alts(self, schema: dict, ptr: str) -> list[str]:
        prefix, rest, rest_ptr = [], schema.get("items", True), _ptr(ptr, "items")
        if "prefixItems" in schema:
            prefix = schema["prefixItems"]
        elif isinstance(schema.get("items"), list):  # draft-07 tuple form
            prefix, rest, rest_ptr = schema["items"], schema.get("additionalItems", True), _ptr(ptr, "additionalItems")
        lo = _count(schema, "minItems", ptr, 0)
        hi = _count(schema, "maxItems", ptr, None)
        k = len(prefix)
        if rest is False:
            hi = k if hi is None else min(hi, k)
        if hi is not None and lo > hi:
            raise _err("minItems > maxItems (or more than the tuple allows): no array is valid", ptr)
        tracked = max(k, lo) if hi is None else hi
        if tracked > MAX_TRACKED_ITEMS:
            raise _err(f"array bounds above {MAX_TRACKED_ITEMS} items are not supported", ptr)
        base = self.fresh("a")

        def item(i: int) -> str:
            if i < k:
                return self.node(prefix[i], _ptr(ptr, "prefixItems" if "prefixItems" in schema else "items", i))
            return self.node(rest, rest_ptr)

        # S_i: i items written so far.
        loop_at = max(k, lo) if hi is None else None
        for i in range(1, tracked + 1):
            if loop_at is not None and i == loop_at:
                self.rule(f"{base}_s{i}", [f"(COMMA {item(i)})* RBK"], ptr)
                break
            alts = (["RBK"] if i >= lo else []) + ([f"COMMA {item(i)} {base}_s{i + 1}"] if hi is None or i < hi else [])
            self.rule(f"{base}_s{i}", alts, ptr)
        alts = ["LBK RBK"] if lo == 0 else []
        if hi is None or hi >= 1:
            if loop_at == 0:
                alts = ["LBK RBK", f"LBK {item(0)} (COMMA {item(0)})* RBK"]
            else:
                alts.append(f"LBK {item(0)} {base}_s1")
        return alts

    # ---- grammar text -------------------------------------------------------------------------
    def grammar(self, root_name: str) -> str:
        if ("all", "string") in self.classes or any(s[0] == "except" for s in self.classes):
            self.terms.add("string", f'"{_length_content(0, None)}"', None, "#", length=(0, None))
        if ("all", "number") in self.classes or ("all", "int") in self.classes:
            self.terms.add("number", _INT, None, "#")
        if ("all", "number") in self.classes or ("all", "frac") in self.classes:
            self.terms.add("number", _FRAC, None, "#")
        inside, depth = self.terms.finalize()
        canon = lambda t: self.terms.alias.get(t, t)  # noqa: E731
        live = [t for t in self.terms.terms if t not in self.terms.alias and t not in self.terms.hidden]
        int_re, frac_re = re.compile(_INT), re.compile(_FRAC)
        lines = []

        def members(spec: tuple) -> list[str]:
            if spec[0] == "sub":
                return sorted(canon(t) for t in inside[canon(spec[1])] if t in live)
            if spec[0] == "sub-except":  # inside a terminal, less some literals
                banned = {canon(t) for t in spec[2]}
                return sorted(canon(t) for t in inside[canon(spec[1])] if t in live and canon(t) not in banned)
            if spec[0] == "except":  # any string, less some literals and whatever lies inside some terminals
                banned = {canon(t) for t in spec[2]}
                banned |= {canon(t) for e in spec[3] for t in inside[canon(e)]}
                return [t for t in live if self.terms.terms[t].family == "string" and t not in banned]
            if spec[0] == "union":  # the terminals of several classes (anyOf branches), each once
                return sorted({t for sub in spec[1] for t in members(sub)})
            if spec[1] in ("string", "number"):
                return [t for t in live if self.terms.terms[t].family == spec[1]]
            # all integers / all fraction-spelled numbers: the number terminals inside that spelling
            probe = int_re if spec[1] == "int" else frac_re
            return [t for t in live if self.terms.terms[t].family == "number" and _within(self.terms.terms[t], probe)]

        for spec, name in self.classes.items():
            lines.append(f"{name}: " + " | ".join(members(spec)))
        for name, alts in self.rules.items():
            lines.append(f"{name}: " + "\n    | ".join(alts))
        for t in live:
            term = self.terms.terms[t]
            lines.append(f"{t}.{depth[t] + 1}: /{term.pattern}/")
            if term.parts:
                others = [p.directive_item() for p in term.parts[1:]]
                lines.append(f"// grammask: intersect {t} {json.dumps(others)}")
        kept = sorted({t for k in self.keep for t in inside[canon(k)] if t in live})
        if kept:
            lines.append("// grammask: keep " + " ".join(kept))
        ws = f"[ \\t\\n\\r]{{0,{WS_MAX}}}"
        punct = {"LB": r"\{", "RB": r"\}", "LBK": r"\[", "RBK": r"\]", "COMMA": ",", "COLON": ":"}
        for t, p in punct.items():
            if self.compact:
                lines.append(f"{t}: /{p}/")
            else:
                before = "" if t in ("LB", "LBK") else ws
                after = "" if t in ("RB", "RBK") else ws
                lines.append(f"{t}: /{before}{p}{after}/")
        start = f"start: {root_name}" if self.compact else f"start: WS? {root_name} WS?\nWS: /[ \\t\\n\\r]{{1,{WS_MAX}}}/"
        return start + "\n" + "\n".join(lines) + "\n"


def _length_content(lo: int, hi: Optional[int]) -> str:
    """The content of a string of lo..hi characters. Exact up to EXACT_LENGTH characters and without an
    upper bound; beyond, a sound narrowing: longer strings are printable ASCII with short escapes (hi is
    capped at LENGTH_CAP by the caller). The automata of bounded repetitions of _ANY_CHAR take seconds
    per character to build (interegular, and the lexer's minimization): maxLength 128 took 40 s."""
    if hi is None:
        return f"(?:{_ANY_CHAR})" + ("*" if lo == 0 else f"{{{lo},}}")
    if hi <= EXACT_LENGTH:
        return f"(?:{_ANY_CHAR}){{{lo},{hi}}}"
    plain = f"(?:{_PLAIN_CHAR}){{{max(lo, EXACT_LENGTH + 1)},{hi}}}"
    return plain if lo > EXACT_LENGTH else f"(?:(?:{_ANY_CHAR}){{{lo},{EXACT_LENGTH}}}|{plain})"


def _interval_relation(a: tuple[int, Optional[int]], b: tuple[int, Optional[int]]) -> str:
    """How the languages of _length_content(*a) and _length_content(*b) relate: as their length intervals
    do, since the content language grows with the interval."""
    inf = float("inf")
    (alo, ahi), (blo, bhi) = a, b
    ahi, bhi = inf if ahi is None else ahi, inf if bhi is None else bhi
    if ahi < blo or bhi < alo:
        return "disjoint"
    if (alo, ahi) == (blo, bhi):
        return "equal"
    if blo <= alo and ahi <= bhi:
        return "sub"
    if alo <= blo and bhi <= ahi:
        return "super"
    return "overlap"


def _json_type(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, (int, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def _count(schema: dict, key: str, ptr: str, default):
    """A non-negative integer keyword (2.0 counts as 2)."""
    v = schema.get(key, default)
    if v is default:
        return v
    if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0 or v != int(v):
        raise _err(f"'{key}' must be a non-negative integer", _ptr(ptr, key))
    return int(v)


def _within(term: _Term, spelling: re.Pattern) -> bool:
    """Is every number this terminal lexes written in `spelling` (integers, or with fraction/exponent)?"""
    if term.literal is not None:
        return spelling.fullmatch(term.literal) is not None
    other = _FRAC if spelling.pattern == _INT else _INT
    return not _disjoint(term.fsm, interegular.parse_pattern(spelling.pattern).to_fsm()) and \
        _disjoint(term.fsm, interegular.parse_pattern(other).to_fsm())


def _disjoint(a, b) -> bool:
    # Not FSM.isdisjoint: interegular 0.3.3 answers True for "y_.*" and ".*" (its alphabet intersection
    # loses characters); the intersection automaton is right.
    return (a & b).empty()


def int_range_regex(lo: Optional[int], hi: Optional[int]) -> str:
    """Regex for the decimal integers (json.dumps spelling) in [lo, hi]; None is unbounded."""
    parts = []
    if lo is None or lo < 0:  # negative part: -m for m in [max(1, -hi), -lo]
        m_lo = 1 if hi is None or hi >= 0 else -hi
        m_hi = None if lo is None else -lo
        if m_hi is None or m_lo <= m_hi:
            parts.append("-" + _nonneg_range(m_lo, m_hi))
    if hi is None or hi >= 0:
        a = 0 if lo is None or lo < 0 else lo
        if hi is None or a <= hi:
            parts.append(_nonneg_range(a, hi))
    return "(?:" + "|".join(parts) + ")"


def frac_range_regex(lo: Optional[int], lo_x: bool, hi: Optional[int], hi_x: bool) -> Optional[str]:
    """Regex for the numbers written with a fraction and no exponent (-?I.F) in the interval from lo to hi
    (integers; None unbounded; *_x exclusive); None if there is none."""
    parts = []
    if hi is None or hi > 0 or (hi == 0 and not hi_x):  # values >= 0
        at_lo = lo is not None and lo >= 0
        parts.append(_frac_magnitude(lo if at_lo else 0, lo_x and at_lo, hi, hi_x))
    if lo is None or lo < 0 or (lo == 0 and not lo_x):  # values <= 0, as -magnitude
        at_hi = hi is not None and hi <= 0
        m = _frac_magnitude(-hi if at_hi else 0, hi_x and at_hi, None if lo is None else -lo, lo_x)
        parts.append(None if m is None else "-" + m)
    parts = [p for p in parts if p is not None]
    return "(?:" + "|".join(parts) + ")" if parts else None


def _frac_magnitude(a: int, a_x: bool, b: Optional[int], b_x: bool) -> Optional[str]:
    """I.F with a <= I.F <= b (bounds >= 0, *_x exclusive): a nonzero fraction needs a <= I < b; an all-zero
    fraction is the integer I itself."""
    parts = []
    if b is None or a <= b - 1:
        parts.append(_nonneg_range(a, None if b is None else b - 1) + r"\.[0-9]*[1-9][0-9]*")
    z_lo, z_hi = a + a_x, None if b is None else b - b_x
    if z_hi is None or z_lo <= z_hi:
        parts.append(_nonneg_range(z_lo, z_hi) + r"\.0+")
    return "(?:" + "|".join(parts) + ")" if parts else None


def _nonneg_range(lo: int, hi: Optional[int]) -> str:
    parts = []
    if lo == 0:
        parts.append("0")
        lo = 1
        if hi == 0:
            return "0"
    n_lo = len(str(lo))
    n_hi = len(str(hi)) if hi is not None else n_lo
    for n in range(n_lo, n_hi + 1):
        a = max(lo, 10 ** (n - 1))
        b = (10 ** n - 1) if hi is None else min(hi, 10 ** n - 1)
        if a <= b:
            parts.append(digit_range(a, b, n, 10, decimal_class))
    if hi is None:
        parts.append(f"[1-9][0-9]{{{n_lo},}}")
    return "(?:" + "|".join(parts) + ")"


def schema_to_lark(schema: Any, compact: bool = False, timeout: Optional[float] = 30.0) -> str:
    """The Lark grammar (start rule `start`) of the JSON texts valid under `schema`."""
    if isinstance(schema, str):
        try:
            schema = json.loads(schema)
        except ValueError as exc:
            raise GrammarError(f"JSON Schema: not valid JSON: {exc}") from None
    elif hasattr(schema, "model_json_schema"):  # a Pydantic model class (duck-typed: no dependency)
        schema = schema.model_json_schema()
    if not isinstance(schema, (dict, bool)):
        raise GrammarError(f"JSON Schema must be an object or a boolean, not {type(schema).__name__}")
    t = _Translator(schema, compact)
    deadline = time.monotonic() + timeout if timeout else None
    try:
        with _time_limit(deadline):  # the automaton comparisons (interegular) can blow up too
            root = t.node(schema, "#")
            return t.grammar(root)
    except RecursionError:
        raise GrammarError("JSON Schema: nested too deeply") from None
    except LexerTooLarge:
        raise GrammarError(f"JSON Schema: comparing its string/number constraints took longer than {timeout} s "
                           "(build_timeout)") from None
