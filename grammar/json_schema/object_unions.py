"""anyOf/oneOf of object (array) schemas as one object (array): the branches' machines run side by side.

Written as separate alternatives, two object branches that begin alike ({"type": "a", ...} and
{"type": "b", ...}, or a closed object beside an open one) make the LR parser choose a branch before the
member that tells them apart: a reduce/reduce conflict. Here every branch is a deterministic machine
over members (object_members.py: listed properties in schema order or in any order, other keys
anywhere, key sets, the member count; arrays.py: items by position, the item count); the union runs
them all at once, a state being the tuple of the branches' states (None once a branch is ruled out). A
member (item) moves every branch that allows it, and no other.

Exactness: a member text is read once. Its key is one key atom: a key some branch names (one terminal),
or the other strings by the set of branch patterns (patternProperties) they match (one class each). Its
value lies in the value schemas of some of the branches that allow that key, and the value is split into
the atoms of those schemas (the values in exactly the schemas of a subset T, one nonterminal each:
disjoint by construction, so the first token decides, and together the union of the schemas). After the
value of atom T, exactly the branches of T move on. Where the values are objects (arrays) of different
schemas, those schemas run side by side as an inner level, and after its closing bracket exactly the
outer branches owning a schema that accepted move on. So a text is accepted iff some branch's machine
accepts it: the union of the branches' languages (each keeps its documented narrowing), which is the
anyOf, and the oneOf, whose branches exclusive_branches has made disjoint.

Atoms of strings/numbers are classes (Boolean combinations of classes are classes: the lexer gives each
string to the innermost terminal containing it, so a string lies in a class iff its terminal does, see
grammar_text), listed values are placed one by one, true/false/null by themselves. An atom may turn out
empty; grammar_text drops what it leaves unproductive. What cannot be split this way (an enum's object
beside an object schema, too many states or value schemas or patterns) raises Unmergeable (too many states:
first tried again with every object's keys in schema order, which multiplies fewer states): the branches
stay separate alternatives, and if that makes the grammar ambiguous, the refusal names the anyOf/oneOf
and the reason (Grammar.from_json_schema)."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Optional

from .numeric import FRAC, INT
from .object_members import key_set_met, may_come, position_after

if TYPE_CHECKING:
    from .translator import Translator

MAX_UNION_STATES = 2048   # product states of one union of object/array branches (inner levels included)
MAX_UNION_PATTERNS = 4  # patternProperties of the branches of one level (2**4 regions of keys)
MAX_VALUE_GROUPS = 6     # distinct value schemas with non-listed strings/numbers for one key (2**6 - 1 atoms)
KEYWORDS = ('"true"', '"false"', '"null"')


class Unmergeable(Exception):
    """These object branches cannot be run side by side exactly (the reason is the message)."""


class TooManyStates(Unmergeable):
    """The product machine passed MAX_UNION_STATES."""


@dataclass(frozen=True)
class ObjectSpec:
    """One object schema as object_alts resolved it: listed keys (terminals, schema order) with their value
    nonterminals, the key sets each needs/bans (req[i], banned[i]: the sets that need/ban key i), the value
    of other keys (None: not allowed), the keys that may not be other keys (listed or absent), and the
    member count bounds."""
    keys: list
    values: list
    req: list
    banned: list
    n_sets: int
    extra_value: Optional[str]
    named: frozenset
    patterns: tuple  # (key terminal, value nonterminal or None: keys that must not occur), pairwise disjoint
    least: int
    most: Optional[int]
    any_order: bool  # listed keys in any order, else in schema order

    def in_schema_order(self) -> ObjectSpec:
        return replace(self, any_order=False) if self.any_order else self

    def start(self):
        return (0, 0, frozenset(range(self.n_sets)))

    def accepts(self, state) -> bool:
        p, c, alive = state
        return c >= self.least and key_set_met(self.req, p, alive, self.any_order)

    def step(self, state, key):
        """(value nonterminal, next state) after a member with this key, or None when the member is not
        allowed here (as object_members.object_rules allows them, at the same positions). The key: a
        literal key's terminal, one of this spec's patterns as ("pattern", terminal) for a key not named
        here that matches it, or None for a key that is neither."""
        p, c, alive = state
        if self.most is not None and c >= self.most:
            return None
        count = c + 1 if self.most is not None else min(c + 1, self.least)
        if key in self.keys:
            j = self.keys.index(key)
            if j not in may_come(len(self.keys), p, self.any_order):  # written, or passed over in schema order
                return None
            after, passed_over = position_after(p, j, self.any_order)
            for t in passed_over:
                alive = alive - self.req[t]
            alive = alive - self.banned[j]
            return (self.values[j], (after, count, alive)) if alive else None
        if isinstance(key, tuple):
            value = dict(self.patterns)[key[1]]
            return None if value is None else (value, (p, count, alive))
        if key in self.named or self.extra_value is None:
            return None
        return self.extra_value, (p, count, alive)


@dataclass(frozen=True)
class ArraySpec:
    """One array schema as array_alts resolved it: the prefix items' nonterminals, the later items' (None:
    none allowed), minItems and maxItems (None: unbounded). A state is the count of items written, which
    saturates where it no longer matters (as array_alts tracks it)."""
    prefix: list
    rest: Optional[str]
    least: int
    most: Optional[int]

    def start(self):
        return 0

    def accepts(self, state) -> bool:
        return state >= self.least

    def step(self, state, key=None):
        if self.most is not None and state >= self.most or state >= len(self.prefix) and self.rest is None:
            return None
        value = self.prefix[state] if state < len(self.prefix) else self.rest
        saturated = self.most is None and state + 1 > max(len(self.prefix), self.least)
        return value, (state if saturated else state + 1)


ANY_OBJECT = ObjectSpec([], [], [], [], 1, "any", frozenset(), (), 0, None, False)  # any_obj (Translator.any_value)
ANY_ARRAY = ArraySpec([], "any", 0, None)  # any_arr
EMPTY_OBJECT = ObjectSpec([], [], [], [], 1, None, frozenset(), (), 0, None, False)  # {} only
EMPTY_ARRAY = ArraySpec([], None, 0, 0)  # [] only
OPEN = {"LB": "{", "LBK": "["}
CLOSE = {"LB": "RB", "LBK": "RBK"}
ANYTHING = {"LB": "any_obj", "LBK": "any_arr"}
EMPTY = {"LB": "LB RB", "LBK": "LBK RBK"}


def container_specs_of(tr: Translator, alts: list[str], kind: str) -> Optional[list]:
    """The specs whose objects (kind "LB") or arrays ("LBK") are exactly those of these alternatives, or
    None if some alternative is no spec's (an enum's non-empty object, say)."""
    specs = {}
    for alt in alts:
        if alt == ANYTHING[kind]:
            anything = ANY_OBJECT if kind == "LB" else ANY_ARRAY
            specs[id(anything)] = anything
        elif alt in tr.container_specs:
            specs.update((id(s), s) for s in tr.container_specs[alt])
        elif alt != EMPTY[kind]:
            return None
    specs = list(specs.values())
    # "{}" ("[]") is the empty object (array) of whichever spec accepts it; from elsewhere (an enum, a
    # maxItems of 0) it is a spec of its own, which accepts nothing else.
    if EMPTY[kind] in alts and not any(s.accepts(s.start()) for s in specs):
        specs.append(EMPTY_OBJECT if kind == "LB" else EMPTY_ARRAY)
    return specs


class _Union:
    """The product machine. A state is (level, the level's branch states, continuation): level 0 runs the
    branches of the anyOf; a member (item) whose value is an object (array) of one of several different
    schemas, in branches still alive, runs those schemas as a further level inside the member, and its
    continuation says where the outer level resumes: after "}" ("]"), the outer branches that own an
    inner schema accepting the value move on (and only they, since only they allow that value)."""

    def __init__(self, tr: Translator, specs: list, kind: str, schema_order: bool):
        self.tr = tr
        self.schema_order = schema_order  # every object spec's keys in schema order, inner levels' too
        self.base = tr.fresh("u")
        self.levels: list[tuple[str, list]] = []
        self.level_keys: list[tuple] = []
        self.names: dict[tuple, str] = {}
        self.queue: list[tuple] = []
        self.productive: dict[int, set] = {}  # id(spec) -> its productive states (_productive_states)
        self.key_atoms: dict[int, list] = {}   # level -> (grammar symbol, each spec's key) per key atom
        self.top = self.level(specs, kind)

    def level(self, specs: list, kind: str) -> int:
        """The level running these specs (made once), with its key atoms (key_regions; an array level's
        items have no key)."""
        key = (kind, tuple(id(s) for s in specs))
        if key in self.level_keys:
            return self.level_keys.index(key)
        if self.schema_order:
            specs = [s.in_schema_order() if isinstance(s, ObjectSpec) else s for s in specs]
        if kind == "LB":
            atoms = self.key_regions(specs)
        else:
            atoms = [(None, [None] * len(specs))]
        for b, s in enumerate(specs):
            if id(s) not in self.productive:
                self.productive[id(s)] = _productive_states(s, list(dict.fromkeys(a[1][b] for a in atoms)))
        self.levels.append((kind, specs))
        self.level_keys.append(key)
        self.key_atoms[len(self.levels) - 1] = atoms
        return len(self.levels) - 1

    def key_regions(self, specs: list) -> list:
        """The key atoms of an object level, as (grammar symbol, the key as each spec's step takes it): each
        key a spec names, one by one, and the other strings by the patterns (patternProperties) of all
        specs they match (a region per set of patterns; those in two disjoint patterns of one spec are none).
        """
        terms = self.tr.terms
        literal_keys = sorted(set().union(*(set(s.keys) | s.named for s in specs)), key=lambda t: int(t[1:]))
        self.tr.keep.update(literal_keys)  # a key no branch allows must still be lexed as itself, not `other`
        patterns = sorted({p for s in specs for p, _ in s.patterns}, key=lambda t: int(t[1:]))
        if len(patterns) > MAX_UNION_PATTERNS:
            raise Unmergeable(f"more than {MAX_UNION_PATTERNS} patternProperties")

        def spec_key(s, literal):  # a named key as it is, another by the pattern of s it matches, if any
            if literal in s.keys or literal in s.named:
                return literal
            text = terms.terms[literal].literal
            return next((("pattern", p) for p, _ in s.patterns if terms.terms[p].matches(text)), literal)

        atoms = [(k, [spec_key(s, k) for s in specs]) for k in literal_keys]
        named = ("union", frozenset(("sub", k) for k in literal_keys))
        for size in range(len(patterns) + 1):
            for inside in itertools.combinations(patterns, size):
                mine = [[p for p, _ in s.patterns if p in inside] for s in specs]
                if any(len(m) > 1 for m in mine):
                    continue  # in two patterns of one spec, which are disjoint: no key
                if inside:
                    outside = frozenset([("sub", p) for p in patterns if p not in inside] + [named])
                    symbol = self.tr.cls(("atom", frozenset(("sub", p) for p in inside), outside))
                else:
                    symbol = self.tr.cls(("except", "string", frozenset(literal_keys), frozenset(patterns)))
                atoms.append((symbol, [("pattern", m[0]) if m else None for m in mine]))
        return atoms

    def start(self, level: int, cont) -> tuple:
        _, specs = self.levels[level]
        return (level, tuple(s.start() if s.start() in self.productive[id(s)] else None for s in specs), cont)

    def name(self, state: tuple) -> str:
        if state not in self.names:
            if len(self.names) >= MAX_UNION_STATES:
                raise TooManyStates(f"more than {MAX_UNION_STATES} states")
            self.names[state] = f"{self.base}_m{len(self.names)}"
            self.queue.append(state)
        return self.names[state]

    def close(self, state: tuple) -> list[str]:
        """The alternative "}" or "]" (and the outer level's resumption) where some branch accepts."""
        level, branches, cont = state
        kind, specs = self.levels[level]
        accepted = [a for a, (s, st) in enumerate(zip(specs, branches)) if st is not None and s.accepts(st)]
        if not accepted:
            return []
        if cont is None:
            return [CLOSE[kind]]
        outer_level, outer_moves, owners, outer_cont = cont
        moving = set().union(*(owners[a] for a in accepted))
        outer = tuple(n if b in moving else None for b, n in enumerate(outer_moves))
        return [f"{CLOSE[kind]} {self.name((outer_level, outer, outer_cont))}_o"]

    def edges(self, state: tuple) -> list[str]:
        level, branches, cont = state
        _, specs = self.levels[level]
        out = []
        for key_symbol, keys in self.key_atoms[level]:
            lead = f"{key_symbol} COLON " if key_symbol else ""
            moves = [(b, spec.step(st, keys[b])) for b, (spec, st) in enumerate(zip(specs, branches))
                     if st is not None]
            moves = [(b, value, nxt) for b, m in moves if m is not None for value, nxt in [m]
                     if nxt in self.productive[id(specs[b])]]
            if not moves:
                continue
            after = {b: nxt for b, _, nxt in moves}
            atoms, frames = value_atoms(self.tr, moves)
            for value_symbol, movers in atoms:
                nxt = tuple(after[b] if b in movers else None for b in range(len(specs)))
                out.append(f"{lead}{value_symbol} {self.name((level, nxt, cont))}_o")
            for inner_kind, inner_specs, owners in frames:  # values of several container schemas: a level
                inner = self.level(inner_specs, inner_kind)
                moves_tuple = tuple(after.get(b) for b in range(len(specs)))
                first = self.start(inner, (level, moves_tuple, owners, cont))
                if any(st is not None for st in first[1]):
                    out.append(f"{lead}{inner_kind} {self.name(first)}_f")
        return out

    def build(self) -> str:
        start = self.start(self.top, None)
        top_name = self.name(start)
        while self.queue:
            state = self.queue.pop()
            name = self.names[state]
            m_alts = self.edges(state)
            if m_alts:
                self.tr.rules[name] = m_alts
            # m: the next member or item (after the opening bracket or a comma); o: after one, the closing
            # bracket or a comma and the next; f: right after the opening bracket of an inner level's value.
            self.tr.rules[f"{name}_o"] = self.close(state) + ([f"COMMA {name}"] if m_alts else [])
            self.tr.rules[f"{name}_f"] = self.close(state) + m_alts
        for name in self.names.values():  # rules no alternative names are left to grammar_text's pruning
            if not self.tr.rules[f"{name}_f"]:
                del self.tr.rules[f"{name}_f"]
        return f"{self.levels[self.top][0]} {top_name}"


def merge_containers(tr: Translator, specs: list, kind: str) -> str:
    """The alternative ("LB ..." or "LBK ...") of the objects (arrays) some spec accepts, with at least one
    member (item): the empty one stays the plain alternative "LB RB" ("LBK RBK") of the branches with it."""
    try:
        return _Union(tr, specs, kind, schema_order=False).build()
    except TooManyStates:
        # Objects in any order can multiply each other's states (a state per set of keys written); in
        # schema order, the narrowing of large objects, there are far fewer.
        return _Union(tr, specs, kind, schema_order=True).build()


def _productive_states(spec, keys: list) -> set:
    """The states of one branch reachable from its start (by members with these keys, as its step takes
    them) from which its object (array) can be closed."""
    reach, todo, succ = {spec.start()}, [spec.start()], {}
    while todo:
        st = todo.pop()
        succ[st] = [m[1] for m in (spec.step(st, k) for k in keys) if m is not None]
        for n in succ[st]:
            if n not in reach:
                reach.add(n)
                todo.append(n)
    good = {st for st in reach if spec.accepts(st)}
    changed = True
    while changed:
        changed = False
        for st in reach - good:
            if any(n in good for n in succ[st]):
                good.add(st)
                changed = True
    return good


def value_atoms(tr: Translator, moves: list) -> tuple[list[tuple[str, frozenset]], list[tuple]]:
    """The value nonterminals of one member (item) with the branches each moves: one per distinct value
    schema when they are one, else one per atom (the values in exactly some of the schemas); and, where
    the values' objects (arrays) come from different schemas, those schemas' specs with the branches
    owning each (an inner level)."""
    groups: dict[str, set] = {}
    for b, value, _ in moves:
        groups.setdefault(value, set()).add(b)
    if len(groups) == 1:
        ((value, branches),) = groups.items()
        return [(value, frozenset(branches))], []
    values = list(groups)
    parts = [value_parts(tr, v) for v in values]
    frames = []
    for kind in ("LB", "LBK"):
        kind_alts = [frozenset(a for a, k in p[2].items() if k == kind) for p in parts]
        if len({s for s in kind_alts if s}) <= 1:
            continue  # one container nonterminal (or none): an atom like the others
        # Containers of different schemas: the specs of an inner level, each owned by its values' branches.
        owners: dict[int, set] = {}
        specs: dict[int, object] = {}
        for g, alts in enumerate(kind_alts):
            group_specs = container_specs_of(tr, sorted(alts), kind) if alts else []
            if group_specs is None:
                raise Unmergeable(f"a value starting with {OPEN[kind]} that is no object/array schema's")
            for spec in group_specs:
                specs[id(spec)] = spec
                owners.setdefault(id(spec), set()).update(groups[values[g]])
        frames.append((kind, list(specs.values()), tuple(frozenset(owners[i]) for i in specs)))
        parts = [(c, k, {a: t for a, t in st.items() if t != kind}) for c, k, st in parts]
    # The atoms, by the set of groups (distinct value schemas) their values lie in. Listed values
    # (literal terminals) are placed one by one; the rest of the terminal classes by Boolean combination.
    atoms: dict[frozenset, list[str]] = {}
    literals = {t for c, _, _ in parts for spec in c if spec[0] == "sub" and tr.terms.terms[spec[1]].literal is not None
                for t in [spec[1]]}
    unlisted = [frozenset(spec for spec in c if not (spec[0] == "sub" and spec[1] in literals)) for c, _, _ in parts]
    for t in sorted(literals, key=lambda t: int(t[1:])):
        inside = frozenset(g for g, (c, _, _) in enumerate(parts) if any(class_contains(tr, spec, t) for spec in c))
        atoms.setdefault(inside, []).append(t)
    classy = [g for g in range(len(values)) if unlisted[g]]
    if len(classy) > MAX_VALUE_GROUPS:
        raise Unmergeable(f"more than {MAX_VALUE_GROUPS} value schemas with unlisted strings/numbers for one key")
    not_listed = ("union", frozenset(("sub", t) for t in literals))
    for size in range(len(classy), 0, -1):
        for inside in itertools.combinations(classy, size):
            spec_in = frozenset(("union", unlisted[g]) for g in inside)
            spec_out = frozenset([("union", unlisted[g]) for g in classy if g not in inside] + [not_listed])
            atoms.setdefault(frozenset(inside), []).append(tr.cls(("atom", spec_in, spec_out)))
    for kw in KEYWORDS:
        inside = frozenset(g for g, p in enumerate(parts) if kw in p[1])
        if inside:
            atoms.setdefault(inside, []).append(kw)
    for alt in sorted({a for p in parts for a in p[2]}):
        atoms.setdefault(frozenset(g for g, p in enumerate(parts) if alt in p[2]), []).append(alt)
    out = []
    for inside, alts in atoms.items():
        key = ("value-atom", tuple(alts))
        if key not in tr.memo:
            tr.memo[key] = tr.rule(tr.fresh("v"), alts, "")
        out.append((tr.memo[key], frozenset(b for g in inside for b in groups[values[g]])))
    return out, frames


def class_contains(tr: Translator, spec: tuple, literal: str) -> bool:
    """Does the class `spec` hold the listed value (literal terminal) `literal`? As grammar_text resolves
    classes: the lexer gives a literal's text to the literal's own terminal, which lies in a class iff its
    value set holds the literal."""
    term = tr.terms.terms[literal]
    kind = spec[0]
    if kind == "sub":
        outer = tr.terms.terms[spec[1]]
        return spec[1] == literal or outer.literal is None and outer.matches(term.literal)
    if kind == "all":
        if spec[1] in ("string", "number"):
            return term.family == spec[1]
        return term.family == "number" and re.fullmatch(INT if spec[1] == "int" else FRAC, term.literal) is not None
    if kind == "union":
        return any(class_contains(tr, sub, literal) for sub in spec[1])
    if kind == "sub-except":
        return literal not in spec[2] and class_contains(tr, ("sub", spec[1]), literal)
    if kind == "except":
        return term.family == "string" and literal not in spec[2] and \
            not any(class_contains(tr, ("sub", p), literal) for p in spec[3])
    if kind == "atom":
        return all(class_contains(tr, sub, literal) for sub in spec[1]) and \
            not any(class_contains(tr, sub, literal) for sub in spec[2])
    raise Unmergeable(f"class {kind!r}")


def value_parts(tr: Translator, name: str, depth: int = 0) -> tuple[frozenset, frozenset, dict]:
    """A value nonterminal as (the specs of its terminal classes, its keywords true/false/null, its object
    and array alternatives with their first token)."""
    spec_of = {n: spec for spec, n in tr.classes.items()}
    classes, keywords, structured = set(), set(), {}

    def walk(alt: str, depth: int) -> None:
        if alt in spec_of:
            classes.add(spec_of[alt])
        elif alt in tr.terms.terms:
            classes.add(("sub", alt))
        elif alt in KEYWORDS:
            keywords.add(alt)
        elif alt == "any_obj" or alt.split()[0] == "LB":
            structured[alt] = "LB"
        elif alt == "any_arr" or alt.split()[0] == "LBK":
            structured[alt] = "LBK"
        elif alt in tr.rules and tr.rules[alt] and depth < 8 and " " not in alt:
            for a in tr.rules[alt]:
                walk(a, depth + 1)
        else:  # a rule still being built (recursion) or of another shape
            raise Unmergeable(f"value {alt!r}")

    walk(name, depth)
    return frozenset(classes), frozenset(keywords), structured
