"""Combinators and listed values: anyOf/oneOf (branches merged into one choice, oneOf proved or narrowed
disjoint, or folded into an object's key sets when the branches only list required keys), and enum/const
(the listed values the whole schema accepts). allOf is merged by schema_reader.py before this point."""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any, Callable, Optional

from ..json_instance import Unjudgeable, distinct
from .instance_sets import OverlappingBranches, exact_values, exclusive_branches, instance_judge
from .keywords import KNOWN, REQUIRED_ANY, NoInstance, pointer, schema_error
from .literals import literal
from .negation import objects_only
from .object_unions import Unmergeable, merge_containers, value_atoms

if TYPE_CHECKING:
    from .translator import Translator


def branch_alts(tr: Translator, schema: dict, comb: str, ptr: str) -> list[str]:
    """The alternatives of a schema with anyOf or oneOf (`comb`), its sibling keywords applied to each
    branch."""
    branches = schema[comb]
    if not isinstance(branches, list) or not branches:
        raise schema_error(f"{comb!r} must be a non-empty array", pointer(ptr, comb))
    if all(isinstance(b, dict) and set(b) & KNOWN <= {"required"} for b in branches):
        return tr.schema_alts(fold_key_sets(schema, comb, ptr), ptr)
    rest = {k: v for k, v in schema.items() if k in KNOWN and k != comb}
    if comb == "oneOf":  # the siblings narrow every branch
        branches = [{"allOf": [rest, b]} if rest else b for b in branches]
        try:
            branches = exclusive_branches(tr.reader, branches, pointer(ptr, comb))
        except OverlappingBranches:
            # Branches that may overlap: where their values are scalars, the values in exactly one.
            if not all(exact_values(tr.reader, b, pointer(ptr, comb, i)) for i, b in enumerate(branches)):
                raise
            alts = exactly_one_alts(tr, [tr.node(b, pointer(ptr, comb, i) + ("&" if rest else ""))
                                         for i, b in enumerate(branches)])
            if alts is None:
                raise
            return alts
        return union_alts(tr, branch_nodes(tr, branches, ptr, comb, "&" if rest else ""), pointer(ptr, comb))
    if rest:
        # Siblings apply to every branch: X and anyOf[B...] = anyOf[allOf[X, B]...].
        return union_alts(tr, branch_nodes(tr, [{"allOf": [rest, b]} for b in branches], ptr, comb, "&"),
                          pointer(ptr, comb))
    return union_alts(tr, branch_nodes(tr, branches, ptr, comb, ""), pointer(ptr, comb))


def branch_nodes(tr: Translator, branches: list, ptr: str, comb: str, mark: str) -> list[str]:
    """The nonterminals of the branches some instance satisfies: a branch none does adds nothing to an
    anyOf, nor to a oneOf (it never matches, so it never makes two). `mark` tags a branch merged with
    its siblings (a pointer no $ref can name)."""
    nodes = []
    for i, b in enumerate(branches):
        try:
            nodes.append(tr.node(b, pointer(ptr, comb, i) + mark))
        except NoInstance:
            continue
    if not nodes:
        raise schema_error(f"no branch of {comb!r} admits an instance", pointer(ptr, comb), NoInstance)
    return nodes


def exactly_one_alts(tr: Translator, nodes: list[str]) -> Optional[list[str]]:
    """oneOf as the values in exactly one branch (values_held_by; the caller has checked that every
    branch's grammar is exact, exact_values); None where objects (arrays) of two different branch
    schemas could overlap."""
    return values_held_by(tr, nodes, lambda branches: len(branches) == 1)


def difference_alts(tr: Translator, schema: dict, negated: Any, ptr: str) -> Optional[list[str]]:
    """A schema with a `not` negation.py cannot rewrite, as the values of the rest of the schema that the
    negated schema does not hold (values_held_by); None where the negated schema's grammar is narrower
    than it (exact_values) or objects (arrays) of both could overlap."""
    if not exact_values(tr.reader, negated, pointer(ptr, "not")):
        return None
    rest = {k: v for k, v in schema.items() if k != "not"}
    nodes = [tr.node(rest, ptr + "&"), tr.node(negated, pointer(ptr, "not"))]
    return values_held_by(tr, nodes, lambda held: held == {0})


def values_held_by(tr: Translator, nodes: list[str], wanted: Callable[[frozenset], bool]) -> Optional[list[str]]:
    """The values of some of these schemas (nonterminals), chosen by which of them hold the value: the
    values split into atoms by the set of schemas holding them (object_unions.value_atoms: classes of
    strings and numbers as Boolean combinations, listed values one by one, true/false/null, an object or
    array alternative by the schemas it comes from), the `wanted` atoms kept. None where objects (arrays)
    of two different schemas could overlap: those are not split into atoms."""
    try:
        atoms, frames = value_atoms(tr, [(i, node, None) for i, node in enumerate(nodes)])
    except Unmergeable:
        return None
    if frames:
        return None
    class_names = set(tr.classes.values())
    for symbol, held in atoms:
        if not wanted(held):  # values dropped: their terminals must still be lexed as themselves, or
            for alt in tr.rules[symbol]:  # their text would lex as a kept atom's terminal
                if alt in tr.terms.terms:
                    tr.keep.add(alt)
                elif alt in class_names:
                    tr.keep_classes.add(alt)
    return [symbol for symbol, held in atoms if wanted(held)]


def fold_key_sets(schema: dict, comb: str, ptr: str) -> dict:
    """anyOf/oneOf of branches that only list required keys, as the key sets object_alts enforces:
    "one of these key sets" (anyOf), "exactly one" (oneOf: the others each miss a key). Folded into the
    object's rules because, as branches, an object with keys of several sets would make the grammar
    ambiguous."""
    needs = [list(b.get("required", [])) for b in schema[comb]]
    sets = [(need, []) for need in needs]
    if comb == "oneOf":
        sets = [(need, list(ban)) for j, need in enumerate(needs) for ban in
                itertools.product(*(other for k, other in enumerate(needs) if k != j))]
    folded = {k: v for k, v in schema.items() if k != comb}
    if comb == "oneOf" and len(needs) > 1:  # a non-object passes every branch: more than one
        folded = objects_only(folded, pointer(ptr, comb), "'oneOf' of 'required' lists")
    # with key sets already there (a `not` of required keys, negation.py): both must hold
    present = schema.get(REQUIRED_ANY, [([], [])])
    folded[REQUIRED_ANY] = [(need + list(need0), ban + list(ban0)) for need0, ban0 in present for need, ban in sets]
    return folded


def union_alts(tr: Translator, nodes: list[str], ptr: str) -> list[str]:
    """The alternatives of anyOf/oneOf branches, flattened: the branches' terminal sets merged into one
    set and equal alternatives kept once. (A value two branches' sets share would make the LR parser
    pick a branch it cannot know yet: a reduce/reduce conflict.)"""
    flat: list[str] = []

    def expand(alt: str, depth: int) -> None:
        rule = tr.rules.get(alt)
        if rule and depth < 8 and alt.startswith("v_"):  # a value node (not one still being built)
            for a in rule:
                expand(a, depth + 1)
        elif alt not in flat:
            flat.append(alt)

    for n in nodes:
        expand(n, 0)
    flat = merge_object_alts(tr, flat, ptr)
    spec_of = {name: spec for spec, name in tr.classes.items()}
    # a listed string/number (a terminal of its own) is a value set like a class: ("sub", itself)
    spec_of.update((a, ("sub", a)) for a in flat if a in tr.terms.terms)
    sets = [a for a in flat if a in spec_of]
    if len(sets) < 2:
        return flat
    merged = tr.cls(("union", frozenset(spec_of[a] for a in sets)))
    return [merged] + [a for a in flat if a not in spec_of]


def merge_object_alts(tr: Translator, flat: list[str], ptr: str) -> list[str]:
    """Object alternatives of several branches as one (a choice between them would be an LR conflict):
    only `any` where a branch admits any value, none but any_obj (any_arr) where a branch admits any
    object (array), as every object (array) alternative's language lies inside it; else the branches'
    objects (arrays) run side by side (object_unions.py). The alternatives stay as they are where that cannot be
    done exactly."""
    def kind(alt: str, first: str, anything: str) -> bool:
        return alt == anything or alt.split()[0] == first

    if "any" in flat:  # a branch admits every value
        return ["any"]
    for first, anything in (("LB", "any_obj"), ("LBK", "any_arr")):
        if anything in flat:
            flat = [a for a in flat if a == anything or not kind(a, first, anything)]
    for first in ("LB", "LBK"):
        containers = [a for a in flat if a in tr.container_specs and a.split()[0] == first]
        if len(containers) < 2:
            continue
        specs = list({id(s): s for a in containers for s in tr.container_specs[a]}.values())
        try:
            merged = merge_containers(tr, specs, first)
        except Unmergeable as exc:  # named if the grammar turns out ambiguous (Grammar.from_json_schema)
            tr.unmerged.append(f"{ptr}: its {'objects' if first == 'LB' else 'arrays'} are not merged ({exc})")
            continue
        tr.container_specs[merged] = specs  # a union of this union with other branches merges them all
        at = flat.index(containers[0])
        kept = [a for a in flat if a not in containers]
        flat = kept[:at] + [merged] + kept[at:]
    return flat


def enum_alts(tr: Translator, schema: dict, values: list, ptr: str) -> list[str]:
    """The listed values the whole schema accepts (judged one by one), each as a literal."""
    judge = instance_judge(tr.reader)
    try:
        kept = [v for v in distinct(values) if judge.valid(schema, v, ptr)]
    except Unjudgeable as exc:
        raise schema_error(f"cannot check the enum/const values against the rest of the schema: {exc}",
                           ptr) from None
    if not kept:
        raise schema_error("no value of 'enum'/'const' satisfies the rest of the schema", ptr, NoInstance)
    return [literal(tr.terms, v, pointer(ptr, "enum")) for v in kept]
