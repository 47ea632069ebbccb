"""JSON Schema and regex constraints: per keyword, MaskBench sample, official test suite, token walks."""

from __future__ import annotations

import json

import pytest

import grammask as gm
from bench import schema_bench
from grammask.grammar.json_schema.formats import FORMATS
from conftest import BYTE_LEVEL, load_tokenizer, shared_corpus, tokenizer_info, walk_text


def accepts(grammar: gm.Grammar, value) -> bool:
    return grammar.validate(json.dumps(value)).ok


def check(schema, valid, invalid, compact=False):
    g = gm.Grammar.from_json_schema(schema, compact=compact)
    for v in valid:
        assert accepts(g, v), (schema, v)
    for v in invalid:
        assert not accepts(g, v), (schema, v)
    return g


def refused(schema, *words):
    with pytest.raises(gm.GrammarError) as exc:
        gm.Grammar.from_json_schema(schema)
    for w in words:
        assert w in str(exc.value), str(exc.value)


# ---- keywords --------------------------------------------------------------------------------------

def test_type_and_type_lists():
    check({"type": "string"}, ["", "a", "é\n\"\\"], [1, None, [], {}])
    check({"type": "integer"}, [0, -5, 12345678901234567890], [1.5, "1", True])
    check({"type": "number"}, [0, -1.5, 1e100, 3], ["3", None])
    check({"type": "boolean"}, [True, False], [0, "true", None])
    check({"type": "null"}, [None], [0, False])
    check({"type": ["string", "null"]}, ["x", None], [1, [], {}])
    check({}, [1, "x", None, [1, {"a": []}], {"b": {"c": 1.5}}], [])


def test_properties_required_additional():
    s = {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"},
                                          "c": {"type": "boolean"}}, "required": ["a"]}
    check(s, [{"a": 1}, {"a": 1, "b": "x"}, {"a": 1, "c": True}, {"a": 1, "b": "", "c": False},
              {"a": 1, "extra": [1, {"q": None}]}, {"a": 1, "zz": 1, "b": "y"}],
          [{}, {"b": "x"}, {"a": "1"}, {"a": 1, "b": 2}, {"a": 1.5}])
    closed = dict(s, additionalProperties=False)
    check(closed, [{"a": 1, "b": "x"}], [{"a": 1, "d": 1}])
    typed = dict(s, additionalProperties={"type": "number"})
    check(typed, [{"a": 1, "x": 2.5}], [{"a": 1, "x": "s"}])


def test_escaped_key_cannot_dodge_its_schema():
    g = gm.Grammar.from_json_schema({"type": "object", "properties": {"name": {"type": "string"}}})
    assert g.validate('{"name": "x"}').ok
    assert not g.validate('{"n\\u0061me": 5}').ok  # the same key, spelled with an escape


def test_optional_properties_in_schema_order():
    s = {"type": "object", "properties": {k: {"type": "integer"} for k in "abcdefgh"},
         "required": ["d"], "additionalProperties": False}
    g = check(s, [{"d": 1}, {"a": 1, "d": 2, "h": 3}, {k: 1 for k in "abcdefgh"}], [{"a": 1}, {"d": 1, "d2": 1}])
    assert not g.validate('{"d": 1, "a": 1}').ok  # schema order


SMALL_OBJECTS = [  # at most ANY_ORDER_MEMBERS listed properties: members in any order
    {"type": "object", "properties": {"data": {}, "schema": {"type": "string"}}, "required": ["schema", "data"],
     "additionalProperties": False},
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}, "c": {"type": "integer"}},
     "required": ["b"]},
    {"type": "object", "properties": {k: {"type": "integer"} for k in "abcd"}, "required": ["a", "d"],
     "additionalProperties": {"type": "string"}, "maxProperties": 3},
    {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}},
     "dependentRequired": {"c": ["a"]}, "minProperties": 2, "additionalProperties": False,
     "patternProperties": {"^[cz]$": {"type": "integer"}}},
    {"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "oneOf": [{"required": ["a"]}, {"required": ["b"]}]},
    {"anyOf": [{"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "string"}},
                "required": ["a", "b"], "additionalProperties": False},
               {"type": "object", "properties": {"b": {"type": "integer"}, "c": {"type": "integer"}},
                "required": ["c"], "additionalProperties": False}]},
]


@pytest.mark.parametrize("schema", SMALL_OBJECTS, ids=range(len(SMALL_OBJECTS)))
def test_small_objects_take_their_members_in_any_order(schema):
    """An object of at most ANY_ORDER_MEMBERS listed properties has no key-order narrowing: against
    jsonschema on every object of up to four keys (listed ones and others, integer or string values) in
    every order, the grammar accepts exactly the valid ones; anyOf branches merge with any order too."""
    import itertools

    jsonschema = pytest.importorskip("jsonschema")
    from grammask.grammar.json_schema.objects import ANY_ORDER_MEMBERS
    validator = jsonschema.Draft202012Validator(schema)
    g = gm.Grammar.from_json_schema(schema)
    listed = sorted({k for branch in [schema, *schema.get("anyOf", [])] for k in branch.get("properties", {})})
    assert len(listed) <= ANY_ORDER_MEMBERS + 1
    keys = [*listed, "z"][:5]
    seen = {True: 0, False: 0}
    for n in range(5):
        for order in itertools.permutations(keys, n):
            for values in itertools.product([1, "s"], repeat=n) if n < 4 else [(1,) * n, ("s",) * n, (1, "s") * 2]:
                value = dict(zip(order, values))
                expected = validator.is_valid(value)
                assert accepts(g, value) == expected, (schema, value)
                seen[expected] += 1
    assert seen[True] >= 4 and seen[False] >= 4, seen


def test_object_unions_too_large_in_any_order_merge_in_schema_order():
    """Five small object branches over their own keys: run side by side in any order they pass the union's
    state cap (a state per set of keys written, in every branch at once); in schema order they merge."""
    import jsonschema
    from grammask.grammar.json_schema import schema_to_lark
    branches = [{"type": "object", "required": ["type"], "properties": {
        "type": {"enum": [f"t{i}"]}, **{f"k{i}{j}": {"type": "string"} for j in range(3)}}} for i in range(5)]
    for schema, any_order in (({"anyOf": branches}, False), ({"anyOf": branches[:2]}, True)):
        assert "LB u_" in schema_to_lark(schema)  # merged
        g = gm.Grammar.from_json_schema(schema)
        in_order, reordered = {"type": "t1", "k10": "a", "k12": "b"}, {"k12": "b", "type": "t1", "k10": "a"}
        assert jsonschema.Draft202012Validator(schema).is_valid(reordered)
        assert accepts(g, in_order) and accepts(g, reordered) == any_order
        assert not accepts(g, {"type": "t1", "k10": 1}) and not accepts(g, {"type": "t9"})


def test_key_sets_that_no_object_meets_leave_no_object():
    """`required` naming every key of a oneOf of required lists: each object matches all the branches, so
    none is valid (a MaskBench shape that crashed the translator)."""
    refused({"type": "object", "properties": {"r": {}, "w": {}}, "required": ["r", "w"],
             "oneOf": [{"required": ["r"]}, {"required": ["w"]}]}, "no instance")


def test_branches_no_instance_satisfies_add_nothing():
    """An anyOf/oneOf branch no instance satisfies (types with nothing in common, false, bounds that leave
    nothing) is dropped, not refused; with no branch left, the refusal says so."""
    check({"anyOf": [{"allOf": [{"type": "string"}, {"type": "null"}]}, {"type": "integer"}]}, [1], ["s", None])
    check({"oneOf": [False, {"type": "integer"}, {"type": "string", "minLength": 3, "maxLength": 2}]}, [1], ["abc", ""])
    check({"type": "object", "anyOf": [{"required": ["a"], "properties": {"a": False}}, {"required": ["b"]}]},
          [{"b": 1}], [{"a": 1}, {}])
    refused({"anyOf": [False, {"allOf": [{"type": "string"}, {"type": "null"}]}]}, "no branch of 'anyOf'")


MANY_KEY_SETS = [
    # oneOf of three required lists: each branch's keys, and a key of each other branch absent (8 sets)
    {"type": "object", "properties": {k: {"type": "number"} for k in ("radius", "length", "width", "base", "height")},
     "oneOf": [{"required": ["radius"]}, {"required": ["length", "width"]}, {"required": ["base", "height"]}]},
    # four keys, in any order; a dependency doubles the 5 sets
    {"type": "object", "properties": {k: {"type": "number"} for k in ("radius", "length", "width", "base")},
     "oneOf": [{"required": ["radius"]}, {"required": ["length", "width"]}, {"required": ["base"]}],
     "dependentRequired": {"radius": ["length"]}},
]


@pytest.mark.parametrize("schema", MANY_KEY_SETS, ids=["schema order", "any order"])
def test_many_key_sets_against_jsonschema(schema):
    """More key sets than a tag per subset of them would allow (the states are the reachable ones), against
    jsonschema on every object over the listed keys (in schema order where there are more than
    ANY_ORDER_MEMBERS of them, else in every order)."""
    import itertools

    jsonschema = pytest.importorskip("jsonschema")
    from grammask.grammar.json_schema.objects import ANY_ORDER_MEMBERS
    validator = jsonschema.Draft202012Validator(schema)
    g = gm.Grammar.from_json_schema(schema)
    keys = list(schema["properties"])
    arrange = itertools.permutations if len(keys) <= ANY_ORDER_MEMBERS else itertools.combinations
    valid_seen = 0
    for order in itertools.chain(*(arrange(keys, n) for n in range(len(keys) + 1))):
        value = dict.fromkeys(order, 1)
        assert accepts(g, value) == validator.is_valid(value), value
        valid_seen += validator.is_valid(value)
    assert valid_seen >= 3


def test_one_of_told_apart_by_a_key_one_branch_forbids():
    """A key one branch requires and the other forbids (`not: {}`, false, an enum none of whose values
    its schema takes) proves the branches disjoint."""
    for forbidden in ({"not": {}}, False, {"type": "string", "enum": [1]}):
        check({"oneOf": [{"type": "object", "required": ["a"]},
                         {"type": "object", "properties": {"a": forbidden, "b": {"type": "integer"}}}]},
              [{"a": 1}, {"a": "x", "b": "y"}, {"b": 2}, {}], [{"b": "y"}, "x"])


def test_listed_values_judged_exactly_under_multiple_of():
    """A listed value far larger than the step (the quotient passes any decimal precision) is judged
    exactly, not with an arithmetic error (a MaskBench schema from the official suite)."""
    check({"allOf": [{"enum": [1e308]}, {"not": {"type": "integer", "multipleOf": 0.123456789}}]}, [1e308], [])
    check({"enum": [1e308, 0.75], "multipleOf": 0.5}, [1e308], [0.75])


def test_large_objects_keep_schema_order():
    from grammask.grammar.json_schema.objects import ANY_ORDER_MEMBERS
    props = {f"k{i}": {"type": "integer"} for i in range(ANY_ORDER_MEMBERS + 1)}
    g = gm.Grammar.from_json_schema({"type": "object", "properties": props})
    assert accepts(g, {"k0": 1, "k1": 2}) and not accepts(g, {"k1": 2, "k0": 1})


def test_items_prefix_items_and_bounds():
    check({"type": "array", "items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
          [[1], [1, 2, 3]], [[], [1, 2, 3, 4], ["a"]])
    check({"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
          [[], ["a"], ["a", 1]], [[1], ["a", 1, 2]])
    check({"type": "array", "items": [{"type": "string"}], "additionalItems": {"type": "null"}},  # draft-07
          [["a", None, None]], [["a", 1]])
    check({"type": "array", "minItems": 2}, [[1, "x"], [1, 2, 3, 4, 5]], [[], [1]])
    refused({"type": "array", "maxItems": 10 ** 6}, "array bounds")


def test_enum_const():
    check({"enum": ["red", 1, None, [1, 2], {"k": "v"}]}, ["red", 1, None, [1, 2], {"k": "v"}],
          ["blue", 2, [1], {"k": "w"}, False])
    check({"const": "x"}, ["x"], ["y", ""])
    check({"type": "string", "enum": ["a", 1]}, ["a"], [1])


def test_any_of_one_of_all_of():
    check({"anyOf": [{"type": "string"}, {"type": "integer"}]}, ["x", 3], [None, 1.5])
    check({"oneOf": [{"type": "string"}, {"type": "null"}]}, ["x", None], [1])
    refused({"oneOf": [{"type": "integer"}, {"minimum": 2}]}, "oneOf")  # 2.0 is in both (see below)
    # Objects of two different branch schemas that may overlap: refused.
    refused({"oneOf": [{"type": "object", "properties": {"a": {"type": "integer"}}},
                       {"type": "object", "properties": {"b": {}}}]}, "oneOf", "may overlap")
    check({"allOf": [{"type": "object", "properties": {"a": {"type": "integer"}}},
                     {"required": ["a"]}]}, [{"a": 1}], [{}, {"a": "x"}])
    # additionalProperties must not see properties of a sibling subschema: refused, not merged.
    refused({"allOf": [{"properties": {"foo": {}}}], "additionalProperties": {"type": "boolean"}}, "allOf")


def test_ref_recursion():
    tree = {"$defs": {"node": {"type": "object", "properties": {
        "v": {"type": "integer"}, "kids": {"type": "array", "items": {"$ref": "#/$defs/node"}}},
        "required": ["v"], "additionalProperties": False}}, "$ref": "#/$defs/node"}
    check(tree, [{"v": 1}, {"v": 1, "kids": [{"v": 2, "kids": [{"v": 3}]}]}],
          [{"v": 1, "kids": [{"kids": []}]}, {"v": 1, "kids": [{"v": "x"}]}])
    check({"definitions": {"s": {"type": "string"}}, "type": "array", "items": {"$ref": "#/definitions/s"}},
          [["a"]], [[1]])
    refused({"$ref": "other.json#/x"}, "$ref")


def test_strings_length_pattern_format():
    check({"type": "string", "minLength": 2, "maxLength": 3}, ["ab", "abc", "é😀"], ["a", "abcd"])
    check({"type": "string", "pattern": "^[a-z]+\\d$"}, ["abc1"], ["abc", "ABC1", "abc12"])
    check({"type": "string", "pattern": "b+"}, ["abbc", "b"], ["ac", ""])  # patterns search
    check({"type": "string", "pattern": "^a\"\\\\$"}, ['a"\\'], ['a"'])  # JSON escapes inside the string
    check({"type": "string", "format": "date"}, ["2024-02-29", "2023-12-31"], ["2023-02-29", "2023-13-01", "x"])
    check({"type": "string", "format": "date-time"}, ["2023-01-02T03:04:05Z", "2023-01-02T03:04:05.5+01:00"],
          ["2023-01-02 03:04:05", "2023-01-02T25:00:00Z"])
    check({"type": "string", "format": "uuid"}, ["123e4567-e89b-12d3-a456-426614174000"], ["123e4567"])
    check({"type": "string", "format": "ipv4"}, ["192.168.0.1"], ["256.1.1.1", "01.1.1.1"])
    check({"type": "string", "format": "email"}, ["a.b@example.com"], ["a@b", "@x.com"])
    check({"type": "string", "format": "ipv6"}, ["::1", "::", "1:2:3:4:5:6:7:8", "fe80::1:2", "1::", "::ffff:1.2.3.4",
                                                 "1:2:3:4:5:6:1.2.3.4", "ABCD:ef01::9"],
          ["1:2:3:4:5:6:7", "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "::1.2.3", ":1", "1:2:3:4:5:6:7::8",
           "::ffff:256.1.1.1", "g::1"])
    refused({"type": "string", "pattern": "(?=a)a"}, "pattern", "look")
    # One repeated class with length bounds: both bounds hold at once.
    check({"type": "string", "pattern": "^[a-z]+$", "maxLength": 5}, ["a", "abcde"], ["", "abcdef", "ab1"])
    check({"type": "string", "pattern": "^[a-z0-9]{2,}$", "minLength": 3, "maxLength": 4}, ["abc", "a1b2"],
          ["ab", "abcde", "ab-c"])
    # Any other combination: the intersection of the constraints' strings, as one terminal.
    check({"type": "string", "pattern": "^a[a-z]+$", "maxLength": 5}, ["ab", "abcde"], ["a", "abcdef", "bcd"])
    check({"type": "string", "pattern": "x", "minLength": 3, "maxLength": 10}, ["abx", "xxxxxxxxxx"],
          ["x", "abc", "xxxxxxxxxxx"])
    check({"type": "string", "format": "email", "maxLength": 12}, ["a@b.co"], ["abcdef@gh.com", "x"])
    check({"type": "string", "format": "date", "pattern": "^2020"}, ["2020-01-05"], ["2021-01-05", "2020-13-01"])
    refused({"type": "string", "format": "date", "pattern": "^x"}, "no string")


def test_multiple_of():
    check({"type": "number", "multipleOf": 0.01}, [1000.45, 5, -0.1, 0.5, 3.0, 0], [1000.451, 0.001, "1"])
    check({"type": "integer", "multipleOf": 7, "minimum": 0, "maximum": 100}, [0, 7, 14, 98], [105, -7, 8, 7.0])
    check({"multipleOf": 11}, [22, 0, -121, 121.0, "a", None], [23, 2.2])
    check({"type": "number", "multipleOf": 2.5, "minimum": 1}, [2.5, 5, 12.5, 10.0], [0, 1, -2.5, 2.4])
    # multiples and a range at two places: the sets overlap, their intersection is a terminal of its own
    check({"type": "object", "properties": {"a": {"type": "integer", "multipleOf": 3},
                                            "b": {"type": "integer", "minimum": 0, "maximum": 10}}},
          [{"a": 9, "b": 9}, {"a": -3, "b": 10}, {"a": 12, "b": 1}], [{"a": 8}, {"b": 11}, {"a": 9, "b": -3}])
    g = gm.Grammar.from_json_schema({"type": "number", "multipleOf": 0.5})
    assert not g.validate("1e1").ok  # multiples are written without an exponent (a documented narrowing)


def test_multiple_automaton_against_decimal_arithmetic():
    import random
    import re
    from decimal import Decimal

    from grammask.fsm.multiples import multiple_fsm, multiple_parts

    spelling = re.compile(r"-?(0|[1-9][0-9]*)(\.[0-9]+)?")
    rng = random.Random(0)
    for step in [1, 2, 3, 7, 11, 0.01, 2.5, 0.5, 10, 100, 1.0, 6.75, 0.0001, 25, 1.5]:
        fsm = multiple_fsm(*multiple_parts(step))
        for _ in range(1500):
            text = rng.choice(["", "-"]) + rng.choice(["0", str(rng.randint(1, 10 ** rng.randint(0, 6)))])
            if rng.random() < 0.6:
                text += "." + "".join(rng.choice("0123456789" if rng.random() < 0.7 else "05")
                                      for _ in range(rng.randint(1, 5)))
            if rng.random() < 0.3:
                text = str(rng.randint(0, 200) * step)
            expected = spelling.fullmatch(text) is not None and (Decimal(text) / Decimal(str(step))) % 1 == 0
            assert fsm.accepts(text) == expected, (step, text)
        for text in ["1e5", "01", "1.", ".5", "--1", "", "-", "1.5.0"]:
            assert not fsm.accepts(text), (step, text)


def test_numbers_bounds():
    check({"type": "integer", "minimum": -3, "maximum": 120}, [-3, 0, 7, 99, 120], [-4, 121, 1000, 1.5])
    check({"type": "integer", "exclusiveMinimum": 0}, [1, 50000], [0, -1])
    check({"type": "number", "minimum": 0}, [0, 0.5, 7, 1e-7], [-1, -0.5])
    check({"type": "number", "exclusiveMinimum": 0}, [0.5, 3], [0, 0.0, -2])
    # Numbers with a fraction between bounds (no exponent).
    check({"type": "number", "minimum": -2, "exclusiveMaximum": 3}, [-2, -2.0, -1.5, 0.0, 2.999, 2],
          [-2.01, 3, 3.0, 3.5, -3])
    check({"type": "number", "maximum": 2.5}, [2, 2.0, -7.25, 1.5], [3, 2.75, 3.0])
    check({"type": "number", "exclusiveMinimum": -1, "maximum": 0}, [-0.5, 0, 0.0, -0.0], [-1, -1.0, 0.5, 1e-3])
    check({"type": "number", "minimum": 0.01, "maximum": 1}, [0.05, 0.01, 0.5, 1, 1.0], [0.009, 0.0, 1.01, 0])


def test_number_bounds_with_fractions_are_exact():
    """Decimal bounds (any of minimum/maximum/exclusive*, up to three decimals, either sign) against
    Python's decimal comparison, on numbers written with a fraction near the bounds and elsewhere, and
    integers: every such text accepted iff it lies within the bounds."""
    import random
    from decimal import Decimal

    rng = random.Random(7)
    for _ in range(40):
        bounds = {}
        for key in rng.sample(["minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum"], rng.randint(1, 2)):
            bounds[key] = round(rng.uniform(-20, 20), rng.choice([1, 2, 3]))
        schema = {"type": "number", **bounds}
        near = [format(Decimal(repr(v)) + Decimal(delta), "f") for v in bounds.values()
                for delta in ("0", "0.001", "-0.001", "0.0001", "-0.0001", "0.5", "-0.5", "1", "-1")]
        texts = [*near, *(f"{t}0" for t in near if "." in t), *(str(rng.randint(-25, 25)) for _ in range(20)),
                 *(str(round(rng.uniform(-25, 25), rng.randint(1, 4))) for _ in range(60))]

        def within(text):
            value = Decimal(text)
            return all({"minimum": value >= Decimal(repr(b)), "exclusiveMinimum": value > Decimal(repr(b)),
                        "maximum": value <= Decimal(repr(b)), "exclusiveMaximum": value < Decimal(repr(b))}[k]
                       for k, b in bounds.items())
        try:
            g = gm.Grammar.from_json_schema(schema)
        except gm.GrammarError:  # bounds that leave no number
            assert not any(map(within, texts)), schema
            continue
        for text in texts:
            assert g.validate(text).ok == within(text), (schema, text)
    refused({"type": "integer", "multipleOf": 0}, "multipleOf", "positive")
    refused({"type": "number", "multipleOf": 0.0123457}, "multipleOf", "remainders")
    refused({"type": "number", "multipleOf": 0.0317}, "multipleOf", "states")


def test_object_counts_and_refusals():
    check({"type": "object", "properties": {"a": {}}, "required": ["a"], "minProperties": 1}, [{"a": 1}], [{}])
    # Member counts (other keys included) kept between minProperties and maxProperties.
    check({"type": "object", "minProperties": 2, "properties": {"a": {"type": "integer"}}},
          [{"a": 1, "b": 2}, {"x": 1, "y": 2}, {"a": 1, "b": 2, "c": 3}], [{}, {"a": 1}, {"b": 1}, {"a": "s", "b": 1}])
    check({"type": "object", "minProperties": 1, "maxProperties": 2, "properties": {"a": {}, "b": {}}, "required": ["b"]},
          [{"b": 1}, {"a": 1, "b": 2}, {"b": 1, "z": 2}], [{}, {"a": 1, "b": 2, "c": 3}, {"a": 1}])
    check({"type": "object", "maxProperties": 1}, [{}, {"q": [1]}], [{"a": 1, "b": 2}])
    refused({"type": "object", "maxProperties": 1, "required": ["a", "b"], "properties": {"a": {}, "b": {}}},
            "no instance")
    refused({"type": "object", "minProperties": 33}, "minProperties")
    refused({"type": "object", "patternProperties": {"^x": {}, "y": {}}}, "patternProperties", "overlap")
    refused({"not": {"pattern": "a"}}, "not")
    refused({"type": "array", "uniqueItems": True}, "uniqueItems")
    refused({"type": "string", "format": "uri-reference"}, "#", "format")


def test_unknown_formats_assert_nothing():
    check({"type": "string", "format": "semver"}, ["1.2.3", "anything"], [1])  # no draft defines it: passes all
    check({"enum": ["a", "b"], "format": "x-custom"}, ["a", "b"], ["c"])
    refused({"type": "string", "format": "idn-hostname"}, "format", "idn-hostname")  # defined, not enforced here


def test_pattern_properties():
    schema = {"type": "object", "properties": {"id": {"type": "integer"}, "x-b": {"minimum": 3}},
              "patternProperties": {"^x-": {"type": "integer"}, "^s_": {"type": "string"}},
              "additionalProperties": {"type": "boolean"}, "required": ["id"]}
    check(schema, [{"id": 1}, {"id": 1, "x-a": 2}, {"id": 1, "x-b": 3}, {"id": 1, "s_1": "a", "z": True},
                   {"id": 1, "x-": -4, "q": False}],
          [{"id": 1, "x-a": "s"}, {"id": 1, "x-b": 2}, {"id": 1, "x-b": "s"}, {"id": 1, "s_1": 1},
           {"id": 1, "z": 1}, {"x-a": 1}])
    # A required key that is not listed takes the schema of the pattern it matches.
    check({"type": "object", "patternProperties": {"^x-": {"type": "integer"}}, "required": ["x-q", "z"],
           "additionalProperties": {"type": "boolean"}},
          [{"x-q": 1, "z": True}], [{"x-q": True, "z": True}, {"x-q": 1, "z": 1}, {"z": True}])
    # No additional keys: only listed keys and keys matching a pattern.
    check({"type": "object", "patternProperties": {"^[a-z]+$": {"type": "integer"}}, "additionalProperties": False},
          [{}, {"ab": 1, "c": 2}], [{"A": 1}, {"ab": "x"}, {"a1": 1}])


def test_overlapping_value_sets_get_their_intersection():
    # Unanchored patterns at two places overlap without either containing the other ("xwifimonitor"
    # matches both): their common part is a lexer terminal of its own, accepted wherever either set is.
    s = {"type": "object", "additionalProperties": False, "required": ["a", "b", "c"],
         "properties": {"a": {"type": "string", "pattern": "wifi"}, "b": {"type": "string", "pattern": "monitor"},
                        "c": {"type": "string", "pattern": "^[a-z]+$"}}}
    valid = [{"a": "wifi", "b": "monitor", "c": "q"}, {"a": "monitorwifi", "b": "wifimonitor", "c": "wifimonitor"},
             {"a": "wifi!", "b": "monitor", "c": "wifi"}]
    invalid = [{"a": "monitor", "b": "monitor", "c": "a"}, {"a": "wifi", "b": "wifi", "c": "a"},
               {"a": "wifi", "b": "monitor", "c": "wifi!"}, {"a": "wifi", "b": "monitor", "c": "WIFI"}]
    check(s, valid, invalid)
    tok = load_tokenizer(BYTE_LEVEL)
    m = gm.compile(gm.Grammar.from_json_schema(s), tokenizer_info(BYTE_LEVEL), cache_dir=False).matcher()
    for v in valid:
        walk_text(m, tok, json.dumps(v))
        assert m.is_accepting(), v
    # Integer ranges [1, 65535], [0, 10000], [1000, 10^9] overlap pairwise. [1, 65535] is then covered by
    # the intersections inside it and has no strings of its own left: the lexer never produces it.
    n = {"type": "object", "required": ["p", "q", "r"],
         "properties": {"p": {"type": "integer", "minimum": 1, "maximum": 65535},
                        "q": {"type": "integer", "minimum": 0, "maximum": 10000},
                        "r": {"type": "integer", "minimum": 1000, "maximum": 1000000000}}}
    check(n, [{"p": 1, "q": 0, "r": 1000}, {"p": 65535, "q": 10000, "r": 1000000000}, {"p": 5000, "q": 5000, "r": 5000},
              {"p": 20000, "q": 1, "r": 20000}],
          [{"p": 0, "q": 0, "r": 1000}, {"p": 65536, "q": 0, "r": 1000}, {"p": 1, "q": 10001, "r": 1000},
           {"p": 1, "q": 0, "r": 999}, {"p": 1, "q": 0, "r": 1000000001}])


def test_required_outside_properties_and_false_properties():
    check({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a", "c"],
           "additionalProperties": {"type": "string"}},
          [{"a": 1, "c": "x"}, {"a": 1, "d": "q", "c": "x"}], [{"a": 1}, {"a": 1, "c": 2}, {"c": "x"}])
    check({"type": "object", "properties": {"a": {"type": "integer"}, "b": False}, "additionalProperties": False},
          [{}, {"a": 1}], [{"b": 1}, {"a": 1, "b": None}])
    refused({"type": "object", "required": ["a"], "additionalProperties": False}, "'a'", "no object")


def test_keys_that_must_not_occur_among_keys_that_may():
    # The banned keys' terminals are kept in the lexer (no rule uses them), so their text is never taken
    # for any other key; elsewhere (a nested free-form object, a string value) the same text is fine.
    s = {"type": "object", "properties": {"a": False, "x": {"type": "integer"},
                                          "builtin": {"type": "object", "enum": ["A", "B"]}},  # no value fits
         "patternProperties": {"^z": False}}
    valid = [{}, {"x": 1}, {"b": 1}, {"yz": 1}, {"q": {"a": 1, "builtin": 2, "zz": 3}}, {"b": "a"}, {"b": "builtin"}]
    check(s, valid, [{"a": 1}, {"x": 1, "a": None}, {"zz": 1}, {"z": []}, {"builtin": "A"}, {"builtin": {}}])
    tok = load_tokenizer(BYTE_LEVEL)
    m = gm.compile(gm.Grammar.from_json_schema(s), tokenizer_info(BYTE_LEVEL), cache_dir=False).matcher()
    for v in valid:
        walk_text(m, tok, json.dumps(v))
        assert m.is_accepting(), v
    # required, it makes the object impossible: refused
    refused({"type": "object", "properties": {"a": {"type": "string", "enum": [1]}}, "required": ["a"]}, "no value")


def test_enum_judged_against_the_whole_schema():
    # Synthesized-style: allOf of an enum and a not; only the values the whole schema accepts remain.
    check({"allOf": [{"enum": [1, "a", [1, 2], {"k": 1}]}, {"not": {"type": "string"}}]}, [1, [1, 2], {"k": 1}], ["a"])
    check({"enum": [1, 2, 3, 4, 6], "multipleOf": 2}, [2, 4, 6], [1, 3])
    check({"enum": [{"a": 1}, {"b": 1}], "if": {"required": ["a"]}, "then": {"properties": {"a": {"const": 2}}}},
          [{"b": 1}], [{"a": 1}])
    check({"const": "x", "type": "string", "maxLength": 3, "pattern": "^x$"}, ["x"], ["y"])
    refused({"enum": [1, 2], "not": {"const": 1}, "allOf": [{"not": {"const": 2}}]}, "no value")
    refused({"enum": ["a"], "$dynamicRef": "#x"}, "dynamicRef")


def test_long_string_lengths_build_fast_and_narrow_soundly():
    import time
    t0 = time.perf_counter()
    g = check({"type": "object", "properties": {"a": {"type": "string", "maxLength": 255},
                                                 "b": {"type": "string", "minLength": 2, "maxLength": 3},
                                                 "c": {"type": "string", "maxLength": 4096}}},
              [{"a": "x" * 255, "b": "é😀", "c": 'a "quoted"\nline'}, {"a": ""}, {"c": "y" * 256}],
              [{"a": "x" * 256}, {"b": "a"}, {"b": "abcd"}, {"a": 1}])
    assert time.perf_counter() - t0 < 20
    # Beyond 3 characters a bounded string is printable ASCII, and at most LENGTH_CAP (256) long (sound:
    # narrower than the schema).
    assert not accepts(g, {"a": "héllo"}) and accepts(g, {"b": "hé"})
    assert not accepts(g, {"c": "y" * 257})


def test_long_bounds_beside_many_patterns_fall_back_to_the_short_cap():
    """Nine patterns each overlap eight length intervals: 72 intersections at the 256 cap, more than
    MAX_TERM_INTERSECTIONS; capped at 64 the intervals are one, and the schema compiles."""
    props = {f"p{i}": {"type": "string", "pattern": "^" + chr(98 + i) + "[a-z]*$"} for i in range(9)}
    props.update({f"l{j}": {"type": "string", "maxLength": 100 + 10 * j} for j in range(8)})
    check({"type": "object", "properties": props},
          [{"p0": "bxyz", "l0": "x" * 64, "l7": ""}, {"p8": "j"}],
          [{"l0": "x" * 65}, {"p0": "cxyz"}, {"l3": 5}])
    # one long bound alone keeps the long cap
    check({"type": "object", "properties": {"p0": props["p0"], "l0": props["l0"]}},
          [{"p0": "b", "l0": "x" * 100}], [{"l0": "x" * 101}])


def test_one_of_told_apart_by_a_discriminator():
    check({"oneOf": [{"type": "object", "properties": {"k": {"const": "a"}, "x": {"type": "integer"}},
                      "required": ["k"], "additionalProperties": False},
                     {"type": "object", "properties": {"k": {"enum": ["b", "c"]}, "y": {"type": "string"}},
                      "required": ["k"], "additionalProperties": False}]},
          [{"k": "a", "x": 1}, {"k": "c", "y": "s"}, {"k": "b"}], [{"k": "a", "y": "s"}, {"k": "d"}, {"x": 1}])
    refused({"oneOf": [{"type": "object", "properties": {"k": {"enum": ["a", "b"]}}, "required": ["k"]},
                       {"type": "object", "properties": {"k": {"const": "b"}}, "required": ["k"]}]}, "oneOf")


def test_any_of_required_lists_and_overlapping_scalar_branches():
    # "at least one of these keys": folded into the object's rules (branches would make an ambiguous grammar)
    s = {"type": "object", "required": ["c"], "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}, "c": {}},
         "anyOf": [{"required": ["a"], "title": "with a"}, {"required": ["b"]}]}
    check(s, [{"a": 1, "c": 1}, {"b": 1, "c": 1}, {"a": 1, "b": 2, "c": 3}, {"a": 1, "b": 2, "c": 3, "d": 4}],
          [{"c": 1}, {"a": 1}, {"b": 1, "d": 2}, 5])
    check({"anyOf": [{"required": ["a"]}, {"required": ["b"]}]}, [{"a": 1}, {"b": 1, "z": 2}, 5, "s"], [{}, {"z": 1}])
    # oneOf: exactly one set complete (each other set misses a key)
    check({"type": "object", "properties": {"r": {}, "b": {}, "h": {}, "s": {}},
           "oneOf": [{"required": ["r"]}, {"required": ["b", "h"]}, {"required": ["s"]}]},
          [{"r": 1}, {"b": 1, "h": 1}, {"s": 1}, {"r": 1, "b": 1}, {"x": 1, "s": 1}],
          [{"r": 1, "s": 1}, {"b": 1}, {"b": 1, "h": 1, "s": 1}, {}])
    # ranges that share a value: one set of terminals for the union, so "4" is not claimed by two branches
    check({"anyOf": [{"type": "integer", "minimum": 2, "maximum": 4}, {"type": "integer", "minimum": 4, "maximum": 6},
                     {"type": "string", "pattern": "^a"}, {"type": "string"}]},
          [2, 4, 6, "abc", "b"], [1, 7, None])


def test_one_of_objects_told_apart_by_their_properties():
    # a property both require, with disjoint schemas (array vs null), under a sibling type: object
    s = {"type": "object", "oneOf": [
        {"properties": {"locks": {"type": "array"}, "next": {"type": "string"}}, "required": ["locks"],
         "additionalProperties": False},
        {"properties": {"locks": {"type": "null"}, "error": {"type": "string"}}, "required": ["locks", "error"]}]}
    check(s, [{"locks": []}, {"locks": [1], "next": "x"}, {"locks": None, "error": "e"}],
          [{"locks": None}, {"locks": [], "error": "e"}, {}, "s"])
    # a key one branch requires and the other (additionalProperties false) cannot have; equal property
    # schemas in both branches are one nonterminal (else: a reduce/reduce conflict on "version")
    s = {"oneOf": [{"type": "string", "enum": ["sha256sum"]},
                   {"type": "object", "properties": {"version": {"type": "string"}, "pattern": {"enum": ["a", "b"]}},
                    "required": ["version", "pattern"], "additionalProperties": False},
                   {"type": "object", "properties": {"version": {"type": "string"}, "pattern": {"type": "string"},
                                                     "object": {"type": "string"}},
                    "required": ["version", "pattern", "object"], "additionalProperties": False}]}
    check(s, ["sha256sum", {"version": "1", "pattern": "a"}, {"version": "1", "pattern": "a", "object": "o"}],
          ["x", {"version": "1", "pattern": "c"}, {"version": "1", "object": "o"}])
    refused({"oneOf": [{"properties": {"a": {"type": "null"}}, "required": ["a"]},
                       {"properties": {"a": {"type": "array"}}, "required": ["a"]}]}, "oneOf")  # "s" matches both


def test_dependencies_as_key_lists():
    # a and its keys (the dependency keys are members in the order the schema names them, after the listed ones)
    s = {"type": "object", "properties": {"a": {}, "b": {}, "c": {}}, "dependencies": {"a": ["b"], "c": ["a"]},
         "additionalProperties": False}
    check(s, [{}, {"b": 1}, {"a": 1, "b": 1}, {"a": 1, "b": 2, "c": 3}], [{"a": 1}, {"c": 1}, {"b": 1, "c": 1}])
    s = {"type": "object", "properties": {"length": {"type": "number"}},
         "dependentRequired": {"shape": ["circle", "rectangle"]}}
    check(s, [{}, {"length": 1}, {"circle": 1}, {"shape": 1, "circle": 2, "rectangle": 3},
              {"length": 1, "shape": "x", "circle": 1, "rectangle": 2}], [{"shape": 1}, {"shape": 1, "circle": 2}])
    refused({"type": "object", "dependencies": {"a": {"required": ["b"]}}}, "dependencies", "lists of keys")
    refused({"type": "object", "dependencies": {k: [k + "2"] for k in "abcdef"}}, "key sets")


def test_one_of_told_apart_by_types_and_listed_values():
    # An enum's types bound its branch: a string enum and an integer never overlap.
    check({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "enum": ["validated", "closed"]}]},
          [1, 7, "closed"], [0, "current", None])
    check({"oneOf": [{"type": "integer"}, {"enum": ["a", None]}]}, [3, "a", None], ["b", 1.5])
    # Listed values none of which the other branch takes ("abcd" is longer than 3): judged value by value.
    check({"oneOf": [{"type": "string", "maxLength": 3}, {"enum": ["abcd", "efgh"]}]}, ["", "abc", "abcd"],
          ["abcde", 1])
    check({"oneOf": [{"type": "string", "maxLength": 3}, {"enum": ["abcd", "b"]}]}, ["abcd", "ab", ""],
          ["b", "abcde", 1])  # "b" is in both
    # Types through allOf and $ref; pairwise, so a third branch is checked against both others.
    check({"$defs": {"n": {"type": "number"}}, "oneOf": [{"allOf": [{"$ref": "#/$defs/n"}, {"minimum": 0}]},
                                                         {"type": "string"}, {"type": "null"}]},
          [0, 2.5, "s", None], [-1, True])
    check({"oneOf": [{"type": "null"}, {"type": "string"}, {"type": "string", "maxLength": 2}]},
          [None, "abc"], ["ab", "", 1])


def test_annotations_ignored_and_inputs():
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "x", "title": "t",
              "description": "d", "examples": [1], "default": 1, "$comment": "c", "type": "integer"}
    check(schema, [1], ["1"])
    check(json.dumps({"type": "boolean"}), [True], [1])

    class Model:  # duck-typed Pydantic model class
        @classmethod
        def model_json_schema(cls):
            return {"type": "object", "properties": {"x": {"type": "integer"}}, "required": ["x"]}

    check(Model, [{"x": 1}], [{}])


def test_whitespace_bounded_and_compact():
    g = gm.Grammar.from_json_schema({"type": "array", "items": {"type": "integer"}})
    assert g.validate("[1, 2]").ok and g.validate("[\n  1,\n  2\n]").ok
    assert not g.validate("[1," + " " * 100 + "2]").ok  # a model cannot loop on whitespace
    c = gm.Grammar.from_json_schema({"type": "array", "items": {"type": "integer"}}, compact=True)
    assert c.validate("[1,2]").ok and not c.validate("[1, 2]").ok


def test_from_regex():
    g = gm.Grammar.from_regex(r"[a-z]+@\d{2}")
    assert g.validate("ab@12").ok
    assert not g.validate("ab@1").ok and not g.validate("Ab@12").ok
    assert g.validate("ab@1").prefix_ok
    with pytest.raises(gm.GrammarError):
        gm.Grammar.from_regex(r"(a)\1")


def test_cli_reads_a_json_schema(tmp_path):
    from grammask.cli import main

    schema = tmp_path / "s.json"
    schema.write_text(json.dumps({"type": "object", "properties": {"a": {"type": "integer"}}, "required": ["a"]}))
    good, bad = tmp_path / "good.json", tmp_path / "bad.json"
    good.write_text('{"a": 1}')
    bad.write_text('{"a": "x"}')
    assert main(["validate", "-g", str(schema), str(good)]) == 0
    assert main(["validate", "-g", str(schema), str(bad)]) == 1


# ---- MaskBench sample ------------------------------------------------------------------------------

# A fixed sample: the first 4 schemas (by name) of every split. Measured: 9 of 28 pass (the rest refused,
# none accepts an invalid instance).
MASKBENCH_SAMPLE = 4
MASKBENCH_MIN_PASS = 9


def test_maskbench_sample():
    shared_corpus("jsonschema", "maskbench-Glaiveai2K")
    passed = 0
    for split in schema_bench.splits():
        for path in sorted(split.glob("*.json"))[:MASKBENCH_SAMPLE]:
            r = schema_bench.score_schema(path)
            assert r["invalid_accepted"] == 0, (split.name, path.name)
            passed += r["status"] == "pass"
    assert passed >= MASKBENCH_MIN_PASS


def test_maskbench_token_walk():
    """Valid instances are generable token by token with a real tokenizer."""
    tok = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    path = sorted(shared_corpus("jsonschema", "maskbench-Glaiveai2K").glob("*.json"))[0]
    doc = json.loads(path.read_text())
    c = gm.compile(gm.Grammar.from_json_schema(doc["schema"]), info, cache_dir=False)
    m = c.matcher()
    walked = 0
    for test in doc["tests"]:
        if test["valid"]:
            walk_text(m, tok, json.dumps(test["data"]))
            assert m.is_accepting()
            walked += 1
    assert walked


def test_new_keywords_token_by_token():
    """The masks agree with the validator on the new keywords: valid instances generable token by token,
    invalid ones blocked at some token or left incomplete."""
    tok = load_tokenizer(BYTE_LEVEL)
    schema = {"type": "object", "minProperties": 2, "maxProperties": 3,
              "properties": {"id": {"type": "integer", "minimum": -2, "maximum": 2.5},
                             "tag": {"enum": ["a", "b", "c"], "not": {"const": "b"}}},
              "patternProperties": {"^x-": {"type": "array", "maxItems": 2}},
              "additionalProperties": {"type": "string", "format": "ipv6"}}
    m = gm.compile(gm.Grammar.from_json_schema(schema), tokenizer_info(BYTE_LEVEL), cache_dir=False).matcher()
    for v in [{"id": 2, "tag": "a"}, {"id": -2, "x-q": [1, "s"]}, {"tag": "c", "z": "::1", "x-": []}]:
        walk_text(m, tok, json.dumps(v))
        assert m.is_accepting(), v
    for v in [{"id": 1}, {"id": 3}, {"id": 1.5, "tag": "a"}, {"tag": "b", "id": 0}, {"id": 0, "z": "1::2::3"}, {"id": 0, "x-q": [1, 2, 3]},
              {"id": 0, "tag": "a", "x-1": [], "x-2": []}]:
        m.reset()
        ok = all(m.accept_token(t) for t in tok.encode(json.dumps(v), add_special_tokens=False))
        assert not (ok and m.is_accepting()), v


# ---- official test suite ---------------------------------------------------------------------------

SUITE_FILES = ["type", "properties", "required", "additionalProperties", "items", "prefixItems", "minItems",
               "maxItems", "enum", "const", "anyOf", "oneOf", "allOf", "ref", "minLength", "maxLength", "pattern",
               "boolean_schema", "format", "patternProperties", "uniqueItems", "if-then-else", "exclusiveMinimum",
               "exclusiveMaximum", "minimum", "maximum", "multipleOf", "dependentRequired", "minProperties",
               "maxProperties"]


# Valid instances the grammars reject on purpose: each a documented narrowing (grammars sound, narrower
# than the schema). Any other rejected valid instance fails the test.
NARROWER = {
    # integers are written without a fraction; listed values are matched as spelled
    ("type", "integer type matches integers", "a float with zero fractional part is an integer"),
    ("enum", "enum with 0 does not match false", "float zero is valid"),
    ("enum", "enum with [0] does not match [false]", "[0.0] is valid"),
    ("enum", "enum with 1 does not match true", "float one is valid"),
    ("enum", "enum with [1] does not match [true]", "[1.0] is valid"),
    ("const", "const with 0 does not match other zero-like types", "float zero is valid"),
    ("const", "const with 1 does not match true", "float one is valid"),
    ("const", "const with -2.0 matches integer and float types", "integer -2 is valid"),
    ("const", "float and integers are equal up to 64-bit representation limits", "float is valid"),
    ("const", "const with object", "same object with different property order is valid"),
    # formats are asserted, not only annotations
    *(("format", f"{f} format", f"invalid {f} string is only an annotation by default")
      for f in ("email", "ipv4", "ipv6", "hostname", "date", "date-time", "time", "uri", "uuid")),
}


@pytest.mark.parametrize("name", SUITE_FILES)
def test_official_suite_blocks_invalid_and_accepts_valid(name):
    shared_corpus("jsonschema", "JSON-Schema-Test-Suite")
    path = schema_bench.suite_dir() / f"{name}.json"
    assert path.exists(), path
    r = schema_bench.score_suite_file(path)
    assert r["invalid_accepted"] == [], r["invalid_accepted"]
    assert r["compiled"] > 0 and r["valid"] > 0
    rejected = [(name, *where) for where in r["valid_rejected"]]
    assert r["valid_ok"] == r["valid"] - len(rejected)
    assert not set(rejected) - NARROWER, sorted(set(rejected) - NARROWER)
    listed = {x for x in NARROWER if x[0] == name}
    assert not listed - set(rejected), sorted(listed - set(rejected))  # the list says what is narrowed now


# ---- anyOf/oneOf of objects run side by side (object_unions.py) -----------------------------------

def _object_union_instances(schema, rng, n):
    """Random instances shaped by the schema: objects over the keys its branches name (mostly in the
    schema's order, sometimes with a stray key), values drawn from each key's schemas in any branch (so
    keys and values of different branches mix), nested, with noise; then near misses of the valid ones."""
    import re
    noise = ["", "x", 0, -3, 2.5, True, None, [], [1, "x"], {}]
    typical = {"string": ["s", ""], "integer": [7, -1], "number": [1.5, 0], "null": [None], "boolean": [False],
               "object": [{}], "array": [[]]}

    def branches(sub):
        subs = [sub]
        for comb in ("anyOf", "oneOf", "allOf"):
            for b in sub.get(comb, []) if isinstance(sub, dict) else []:
                subs += branches(b)
        return [b for b in subs if isinstance(b, dict)]

    def gen(sub, depth):
        if not isinstance(sub, dict) or depth > 3 or rng.random() < 0.1:
            return rng.choice(noise)
        sub = rng.choice(branches(sub))
        listed = sub.get("enum", []) + ([sub["const"]] if "const" in sub else [])
        if listed and rng.random() < 0.8:
            return rng.choice(listed)
        types = sub.get("type", [])
        types = [types] if isinstance(types, str) else types
        keyed: dict = {}
        for b in branches(sub):
            for k, v in b.get("properties", {}).items():
                keyed.setdefault(k, []).append(v)
            for k in b.get("required", []):
                keyed.setdefault(k, [])
            for pattern, v in b.get("patternProperties", {}).items():  # a few keys each pattern may match
                for k in ("a", "a1", "b", "ax9", "1"):
                    if re.search(pattern, k):
                        keyed.setdefault(k, []).append(v)
        if keyed or "object" in types:
            if "array" in types and rng.random() < 0.3:
                return [gen(sub.get("items"), depth + 1) for _ in range(rng.randint(0, 3))]
            keys = list(keyed) + (["zz"] if rng.random() < 0.3 else [])
            picked = rng.sample(keys, rng.randint(0, min(len(keys), 5)))
            if rng.random() < 0.8:  # mostly in the schema's order, which the grammar keeps
                picked.sort(key=keys.index)
            return {k: gen(rng.choice(keyed[k]) if keyed.get(k) else None, depth + 1) for k in picked}
        if "array" in types or "items" in sub or "prefixItems" in sub:
            prefix = sub.get("prefixItems", [])
            return [gen(prefix[i] if i < len(prefix) else sub.get("items"), depth + 1)
                    for i in range(rng.randint(0, len(prefix) + 2))]
        if types and rng.random() < 0.9:
            return rng.choice(typical[rng.choice(types)])
        return rng.choice(noise)

    out = [gen(schema, 0) for _ in range(n)]
    import jsonschema
    valid = [x for x in out if jsonschema.Draft202012Validator(schema).is_valid(x)]
    for x in valid[:50]:  # near misses: one member (item) changed or dropped
        if isinstance(x, list):
            out += [x[:-1], x + x[:1], [rng.choice(noise)] + x[1:]]
        elif isinstance(x, dict):
            for k in list(x):
                out.append({**x, k: rng.choice(noise)})
                out.append({j: v for j, v in x.items() if j != k})
    return out


OBJECT_UNIONS = [
    # a discriminating enum first, then keys shared with different value schemas
    {"oneOf": [{"type": "object", "required": ["type"], "properties": {
        "type": {"enum": ["a"]}, "email": {"type": "string"}, "n": {"type": "integer"}}},
        {"type": "object", "required": ["type"], "properties": {
            "type": {"enum": ["b"]}, "email": {"type": "string"}, "n": {"type": "string"}}}]},
    # closed branches beside an open fallback whose value is a plain string (value atoms)
    {"anyOf": [{"additionalProperties": False, "required": ["name", "error"], "properties": {
        "error": {"type": "string"}, "name": {"enum": ["Pass"]}}},
        {"additionalProperties": False, "required": ["name", "error", "extra"], "properties": {
            "error": {"type": "string"}, "name": {"enum": ["Rm", "Rb"]}, "extra": {"type": "string"}}},
        {"additionalProperties": True, "required": ["name", "error"], "properties": {
            "error": {"type": "string"}, "name": {"type": "string"}}}], "type": "object"},
    # branches that contain one another (optional keys only)
    {"type": "object", "required": ["req"], "anyOf": [
        {"additionalProperties": False, "properties": {"req": {"type": "string"}}},
        {"additionalProperties": False, "properties": {"req": {"type": "string"}, "f1": {"type": "string"}}},
        {"additionalProperties": False, "properties": {"req": {"type": "string"}, "f2": {"type": "string"}}}]},
    # an object value of different schemas in two live branches (the next level), numbers vs strings
    {"anyOf": [{"type": "object", "properties": {"alg": {"enum": ["RS", "ES"]}, "jwk": {
        "type": "object", "required": ["kty"], "properties": {"kty": {"enum": ["RSA"]}, "n": {"type": "string"}}}}},
        {"type": "object", "additionalProperties": False, "properties": {"alg": {"enum": ["ES", 3]}, "jwk": {
            "type": "object", "required": ["kty"], "additionalProperties": False,
            "properties": {"kty": {"enum": ["EC"]}, "x": {"type": "number"}}}}},
        {"type": "object", "additionalProperties": False, "properties": {"alg": {"type": "integer"}}}]},
    # counts and key sets in the branches; a nested anyOf merged with its parent's branches
    {"anyOf": [{"type": "object", "minProperties": 2, "properties": {"a": {"type": "integer"}, "b": {}}},
               {"anyOf": [{"type": "object", "maxProperties": 1, "additionalProperties": False,
                           "properties": {"a": {"type": "string"}, "c": {"type": "null"}}},
                          {"type": "object", "required": ["c"], "properties": {"c": {"enum": [None, 1]}},
                           "dependentRequired": {"c": ["b"]}}]}]},
    # arrays: a shared key whose arrays differ by branch, and an anyOf of arrays (tuples, bounds, items)
    {"anyOf": [{"type": "object", "properties": {"k": {"enum": [1, 2]}, "tags": {
        "type": "array", "items": {"type": "string"}, "maxItems": 2}}},
        {"type": "object", "properties": {"k": {"enum": [2, 3]}, "tags": {"type": "array", "prefixItems": [
            {"type": "integer"}], "items": False}}},
        {"type": "object", "additionalProperties": False, "properties": {"k": {"const": "x"}}}]},
    # patternProperties: keys by the patterns of each branch they match (one forbids keys, "^b": false)
    {"anyOf": [{"type": "object", "patternProperties": {"^a": {"type": "string"}, "^b": False},
                "properties": {"c": {"type": "integer"}, "ax9": {"minLength": 2}}},
               {"type": "object", "patternProperties": {"^a[0-9]": {"type": "integer"}, "^1": {}},
                "additionalProperties": False, "properties": {"k": {"type": "null"}, "a5": {"type": "integer"}}}]},
    {"anyOf": [{"type": "array", "items": {"type": "string"}, "minItems": 1},
               {"type": "array", "prefixItems": [{"enum": ["x", 0]}, {"type": "null"}], "maxItems": 3},
               {"type": "array", "items": {"type": "object", "required": ["a"],
                                           "properties": {"a": {"type": "integer"}}}}, {"type": "string"}]},
]


@pytest.mark.parametrize("index", range(len(OBJECT_UNIONS)))
def test_object_unions_are_the_union_of_their_branches(index):
    """The merged grammar accepts exactly what some branch's own grammar accepts (the union: the branches
    keep their documented narrowing, listed keys in schema order), and nothing the schema refuses."""
    import random

    import jsonschema
    schema = OBJECT_UNIONS[index]
    comb = "anyOf" if "anyOf" in schema else "oneOf"
    rest = {k: v for k, v in schema.items() if k != comb}
    branches = [gm.Grammar.from_json_schema({"allOf": [rest, b]} if rest else b) for b in schema[comb]]
    merged = gm.Grammar.from_json_schema(schema)
    from grammask.grammar.json_schema import schema_to_lark
    assert "LB u_" in schema_to_lark(schema) or "LBK u_" in schema_to_lark(schema)  # merged, not apart
    oracle = jsonschema.Draft202012Validator(schema)
    rng = random.Random(index)
    seen_valid = 0
    for x in _object_union_instances(schema, rng, 1500):
        text = json.dumps(x)
        got = merged.validate(text).ok
        assert got == any(b.validate(text).ok for b in branches), (schema, x)
        assert not got or oracle.is_valid(x), (schema, x)
        seen_valid += got
    assert seen_valid >= 20, seen_valid  # the instances reach the branches' languages


def test_object_unions_from_maskbench():
    """Snowplow/Github schemas whose object branches begin alike (refused before as reduce/reduce)."""
    check({"type": "object", "properties": {}, "oneOf": [
        {"properties": {"status": {"type": "string", "enum": ["ok"]}}, "required": ["status"]},
        {"properties": {"status": {"type": "string", "enum": ["notFound"]}}, "required": ["status"]}]},
        [{"status": "ok"}, {"status": "notFound"}], [{}, {"status": "other"}, {"status": 1}])
    check({"type": "array", "items": {"anyOf": [
        {"additionalProperties": False, "required": ["name"], "properties": {"name": {"enum": ["A"]}}},
        {"additionalProperties": True, "required": ["name", "error"],
         "properties": {"name": {"type": "string"}, "error": {"type": "string"}}}]}},
        [[{"name": "A"}, {"name": "A", "error": "e", "z": 1}, {"name": "B", "error": "e"}]],
        [[{"name": "B"}], [{"name": "A", "z": 1}], [{"name": "A", "error": 3}]])


@pytest.mark.parametrize("schema, instances", [
    # an inner level (jwk's two schemas) resumes only the outer branches whose schema took the value
    (OBJECT_UNIONS[3], [{"alg": "ES", "jwk": {"kty": "EC"}, "zz": 1}, {"alg": "ES", "jwk": {"kty": "RSA"}, "zz": 1},
                        {"alg": "ES", "jwk": {"kty": "EC", "x": 1}}, {"alg": "ES", "jwk": {"kty": "RSA", "x": 1}},
                        {"alg": "ES", "jwk": {"kty": "EC", "x": "1"}}, {"alg": 3, "jwk": {"kty": "RSA"}}]),
    # key sets (a dependency) in one branch
    ({"anyOf": [{"type": "object", "additionalProperties": False, "dependentRequired": {"c": ["b"]},
                 "properties": {"a": {"type": "string"}, "b": {}, "c": {}}},
                {"type": "object", "additionalProperties": False, "properties": {"a": {"type": "integer"}}}]},
     [{"a": "s", "c": 1}, {"a": "s", "b": 1, "c": 1}, {"a": 1}, {"a": "s"}, {"c": 1}, {"b": 1, "c": 2}, {}]),
    # a key one branch forbids, another allows as any other key
    ({"anyOf": [{"type": "object", "properties": {"k": {"enum": [1]}, "bad": False}},
                {"type": "object", "required": ["k"], "properties": {"k": {"enum": [2]}}}]},
     [{"k": 1, "bad": 0}, {"k": 2, "bad": 0}, {"bad": 0}, {"k": 1, "zz": 0}, {"k": 3}]),
    # item counts of arrays run side by side, at the top and under one key
    ({"anyOf": [{"type": "array", "items": {"type": "string"}, "minItems": 2},
                {"type": "array", "items": {"type": "integer"}, "maxItems": 1}]},
     [["a"], ["a", "b"], [1], [1, 2], [], ["a", 1], ["a", "b", "c"]]),
    ({"anyOf": [{"type": "object", "properties": {"v": {"type": "array", "items": {"type": "string"}, "minItems": 2}}},
                {"type": "object", "additionalProperties": False,
                 "properties": {"v": {"type": "array", "maxItems": 1}, "w": {"type": "null"}}}]},
     [{"v": ["a"], "w": None}, {"v": ["a", "b"], "w": None}, {"v": ["a", "b"], "w": 1}, {"v": [1]}, {"v": [1, 2]},
      {"v": [], "w": None}]),
    # a listed value equal to another branch's key, and one inside another branch's string class
    ({"anyOf": [{"type": "object", "required": ["name"], "additionalProperties": False,
                 "properties": {"name": {"enum": ["error"]}, "error": {"type": "string"}}},
                {"type": "object", "required": ["name"], "properties": {"name": {"type": "string", "maxLength": 3}}}]},
     [{"name": "error"}, {"name": "error", "error": 3}, {"name": "err", "error": 3}, {"name": "error", "error": "e"},
      {"name": "toolong", "error": "e"}, {"error": "e"}]),
])
def test_object_unions_exact_on_chosen_instances(schema, instances):
    """Instances (members in schema order) at the places where the union of branches could go wrong,
    judged against the jsonschema package."""
    import jsonschema
    g = gm.Grammar.from_json_schema(schema)
    from grammask.grammar.json_schema import schema_to_lark
    assert "LB u_" in schema_to_lark(schema) or "LBK u_" in schema_to_lark(schema)  # merged, not apart
    oracle = jsonschema.Draft202012Validator(schema)
    verdicts = [(x, g.validate(json.dumps(x)).ok, oracle.is_valid(x)) for x in instances]
    assert [v for v in verdicts if v[1] != v[2]] == []
    assert any(ok for _, ok, _ in verdicts) and not all(ok for _, ok, _ in verdicts)


def test_object_unions_not_merged_are_refused_with_the_reason():
    # an enum's object beside an object schema under one key: the objects stay apart, and the conflict
    # names the anyOf and why
    refused({"anyOf": [{"type": "object", "required": ["k"], "properties": {"k": {"enum": [{"a": 1}]}}},
                       {"type": "object", "properties": {"k": {"type": "object"}, "j": {"type": "integer"}}}]},
            "conflict", "anyOf/oneOf at #/anyOf", "not merged (a value starting with { that is no")


# Valid instances of the optional format files the enforced formats reject: each a narrowing the README
# lists (a strict subset of the format, never an invalid string let through).
FORMAT_NARROWER = {
    "date-time": {"a valid date-time with a leap second, UTC", "a valid date-time with a leap second, with minus offset"},
    "time": {"a valid time string with leap second, Zulu", "valid leap second, zero time-offset",
             "valid leap second, positive time-offset", "valid leap second, large positive time-offset",
             "valid leap second, negative time-offset", "valid leap second, large negative time-offset"},
    "email": {"a quoted string with a space in the local part is valid",
              "a quoted string with a double dot in the local part is valid",
              "a quoted string with a @ in the local part is valid", "an IPv4-address-literal after the @ is valid",
              "an IPv6-address-literal after the @ is valid"},
    "uri": {"a valid URL"},  # ldap://[2001:db8::7]/...: no IP literal hosts
}
A_LABELS = "validation of A-label (punycode) host names"  # hostname: no xn-- labels (Punycode is not regular)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_official_format_suite_within_the_listed_narrowings(fmt):
    shared_corpus("jsonschema", "JSON-Schema-Test-Suite")
    r = schema_bench.score_suite_file(schema_bench.suite_dir() / "optional" / "format" / f"{fmt}.json")
    assert r["compiled"] == r["groups"] and r["invalid"] > 0
    assert r["invalid_accepted"] == [], r["invalid_accepted"]
    unexpected = [(group, test) for group, test in r["valid_rejected"]
                  if test not in FORMAT_NARROWER.get(fmt, ()) and not (fmt == "hostname" and group == A_LABELS)]
    assert unexpected == []
    listed = FORMAT_NARROWER.get(fmt, set()) - {test for _, test in r["valid_rejected"]}
    assert not listed, listed  # the list says what is narrowed now
    assert r["valid_ok"] >= r["valid"] // 2  # the narrowings leave most of each file's valid strings


def test_hostname_labels_and_lengths():
    s = {"type": "string", "format": "hostname"}
    check(s, ["www.example.com", "hostname", "1host", "a--b.com", "a" * 63 + ".com", "a.b.c.d.e.f.g.h",
              "ec2-1-2-3-4.compute-1.amazonaws.com", ".".join(["a" * 62] * 4), ".".join(["b" * 30] * 8)],
          ["", ".", ".example", "example.", "-a", "a-", "a_b", "a" * 64, "é.com", "xn--9n2bp8q",
           ".".join(["a" * 63] * 4)])  # 255 characters: over 253
    # Every NR-LDH label of up to 7 characters over {a, -}, against its definition (RFC 5890 2.3.1).
    import itertools
    g = gm.Grammar.from_json_schema(s)
    for n in range(1, 8):
        for chars in itertools.product("a-", repeat=n):
            label = "".join(chars)
            nr_ldh = label[0] != "-" and label[-1] != "-" and label[2:4] != "--"
            assert accepts(g, label) == nr_ldh, label


def test_anchors_in_every_branch_of_an_alternation():
    # sre_parse moves the shared ^ out of the branches: ^a$|^b$ parses as ^(?:a$|b$)
    check({"type": "string", "pattern": "^[0-9a-f]{8}-([0-9a-f]{4}-){3}[0-9a-f]{12}$|^[0-9a-f]{16}$"},
          ["123e4567-e89b-12d3-a456-426614174000", "0123456789abcdef"],
          ["0123456789abcde", "0123456789abcdef0", "x0123456789abcdef", "123e4567-e89b-12d3-a456-42661417400"])
    check({"type": "string", "pattern": "^ab$|^cd"}, ["ab", "cd", "cdx"], ["abx", "xab", "xcd"])


NEGATION_SCHEMAS = [
    {"not": {"type": "object"}}, {"not": {"type": ["number", "string"]}},
    {"type": ["integer", "object"], "not": {"type": "object"}}, {"not": {"type": "array", "description": "x"}},
    {"not": {"required": ["a", "b"]}}, {"type": "object", "not": {"required": ["a"]}},
    {"type": "object", "required": ["a"], "not": {"required": ["b", "c"]}},
    {"type": ["string", "object"], "not": {"required": ["a"]}},
    {"properties": {"a": {"type": "integer"}}, "not": {"required": ["a", "d"]}},
    {"anyOf": [{"required": ["a"]}, {"required": ["c"]}], "not": {"required": ["b"]}},
    {"oneOf": [{"required": ["a"]}, {"required": ["c"]}], "not": {"required": ["b"]}},
    {"anyOf": [{"required": ["a"]}, {"required": ["b"]}], "oneOf": [{"required": ["c"]}, {"required": ["a"]}]},
    {"oneOf": [{"required": ["c"]}, {"required": ["a"]}]}, {"oneOf": [{"required": ["c"]}]},
]


@pytest.mark.parametrize("schema", NEGATION_SCHEMAS, ids=lambda s: json.dumps(s)[:60])
def test_not_of_types_and_required_keys_against_jsonschema(schema):
    """`not` of a type list or of required keys, and oneOf/anyOf of required lists beside it, judged by the
    jsonschema package on non-objects and on every object over four keys in every order: nothing invalid
    accepted; a valid object rejected only for its key order (the same keys in schema order pass)."""
    import itertools

    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema)
    g = gm.Grammar.from_json_schema(schema)
    objects = [{k: 1 for k in keys} for n in range(5) for keys in itertools.permutations("abcd", n)]
    valid_seen = 0
    for value in [None, True, 1, 1.5, "s", [], [1], *objects]:
        expected = validator.is_valid(value)
        valid_seen += expected
        if accepts(g, value):
            assert expected, value
        elif expected:
            assert isinstance(value, dict), value
            assert any(accepts(g, dict.fromkeys(order, 1)) for order in itertools.permutations(value)), value
    assert valid_seen


def test_not_refused_where_no_keyword_says_it():
    refused({"not": {"type": "integer"}}, "not")  # a number whose fraction is not zero: no type here
    refused({"not": {"minimum": 3}}, "not")
    refused({"type": "object", "not": {"type": "object"}}, "not", "no instance")
    refused({"type": "string", "not": {"required": ["a"]}}, "not", "objects only")


OVERLAPPING_SCALAR_ONE_OFS = [
    {"oneOf": [{"type": "string", "pattern": "^[A-Fa-f0-9]{4}$"}, {"type": "string"}]},
    {"oneOf": [{"enum": ["blue", "orange", True]}, {"enum": ["red", "blue", None]}, {"type": ["boolean", "null"]}]},
    {"oneOf": [{"type": "string", "format": "uuid"}, {"type": "string", "pattern": "^\\$[A-Z0-9_-]+"}]},
    {"oneOf": [{"type": "object"}, {"type": "string", "maxLength": 3}, {"type": ["string", "null"], "minLength": 2}]},
    {"type": ["string", "number"], "oneOf": [{"maxLength": 2}, {"minLength": 1}]},
    {"type": "string", "not": {"enum": ["CAN", "MEX", "USA"]}, "maxLength": 5},
    {"type": ["string", "number", "null"], "not": {"pattern": "[^a-z ]"}},
    {"not": {"const": "0"}},
]

# Subtracting a narrowed set would let its values through: refused. 1.0 is an integer the grammar spells
# only as 1, bounds drop exponents, long strings are capped, formats kept to subsets.
INEXACT_SUBTRACTIONS = [
    {"oneOf": [{"type": "integer"}, {"type": "number", "minimum": 0}]},
    {"oneOf": [{"enum": ["blue", 6]}, {"enum": ["red", 3]}, {"type": "integer"}]},
    {"oneOf": [{"type": "string", "maxLength": 10}, {"type": "string", "pattern": "^a"}]},
    {"oneOf": [{"type": "string", "format": "uri"}, {"type": "string", "pattern": "^a"}]},
    {"not": {"type": "integer"}},
    {"type": "string", "not": {"format": "hostname"}},
]


@pytest.mark.parametrize("schema", INEXACT_SUBTRACTIONS, ids=range(len(INEXACT_SUBTRACTIONS)))
def test_subtracting_a_narrowed_value_set_is_refused(schema):
    refused(schema, "not" if "not" in schema else "oneOf")


@pytest.mark.parametrize("schema", OVERLAPPING_SCALAR_ONE_OFS, ids=range(len(OVERLAPPING_SCALAR_ONE_OFS)))
def test_one_of_overlapping_scalar_branches_keeps_the_values_of_exactly_one(schema):
    """oneOf branches that may overlap, whose values are strings and listed values (and objects of one
    branch only), and `not` of such schemas: the values in exactly one branch, or outside the negated
    schema, against jsonschema (formats asserted)."""
    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER)
    g = gm.Grammar.from_json_schema(schema)
    values = ["", "0", "a b", "a", "ab", "abc", "abcd", "ABCD", "zzzz", "blue", "red", "orange", "$AB", "$X-1", "$", "x" * 5,
              "123e4567-e89b-12d3-a456-426614174000", -3, -1, 0, 1, 2, 3, 4, 6, 0.5, 1.5, 3.5, 3.75, -0.5,
              True, False, None, {}, {"a": 1}, [], [1]]
    seen = {True: 0, False: 0}
    for value in values:
        expected = validator.is_valid(value)
        assert accepts(g, value) == expected, (schema, value)
        seen[expected] += 1
    assert seen[True] and seen[False], seen  # the values reach both sides


ONE_OF_BY_REQUIRED_KEYS = [
    {"oneOf": [{"type": "object", "properties": {"error": {"type": "string"}, "reason": {"type": "string"}},
                "required": ["error", "reason"]},
               {"type": "object", "properties": {"ok": {"type": "boolean"}, "rev": {"type": "string"}},
                "required": ["ok"]}]},
    {"type": "object", "oneOf": [{"required": ["a"], "properties": {"a": {"type": "integer"}}},
                                 {"required": ["b"], "properties": {"b": {"type": "integer"}, "a": {"type": "string"}}},
                                 {"required": ["c"]}]},
]


@pytest.mark.parametrize("schema", ONE_OF_BY_REQUIRED_KEYS, ids=["two", "three"])
def test_one_of_object_branches_that_may_overlap_are_narrowed_apart(schema):
    """oneOf object branches that may overlap, each requiring a key the other does not: each keeps only
    objects without the other's key, so no text matches two. Against jsonschema on objects over the keys
    (values of several types, every order of up to three keys): nothing invalid accepted; a valid object
    rejected only for the documented narrowings (a key another branch requires, or key order)."""
    import itertools

    jsonschema = pytest.importorskip("jsonschema")
    validator = jsonschema.Draft202012Validator(schema)
    g = gm.Grammar.from_json_schema(schema)
    keys = ["error", "reason", "ok", "rev", "a", "b", "c", "z"]
    values = ["s", 1, True]
    requires = [set(b.get("required", [])) for b in schema["oneOf"]]
    accepted_valid = 0
    for n in range(4):
        for chosen in itertools.combinations(keys, n):
            for vals in itertools.product(values, repeat=n):
                obj = dict(zip(chosen, vals))
                valid = validator.is_valid(obj)
                ok = accepts(g, obj)
                assert not ok or valid, obj
                accepted_valid += ok
                if valid and not ok:
                    branch = next(i for i, b in enumerate(schema["oneOf"])
                                  if jsonschema.Draft202012Validator(b).is_valid(obj))
                    carries_another = any(r & set(obj) for j, r in enumerate(requires) if j != branch)
                    in_order = any(accepts(g, dict(zip(p, (obj[k] for k in p)))) for p in itertools.permutations(obj))
                    assert carries_another or in_order, obj
    assert accepted_valid > 10
