"""The engine-neutral half of the serving plugins (no vLLM or SGLang needed): request specs, the shared
compiled tables, per-request constraints and the batch masker."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import grammask as gm
from grammask.integrations.constraints import BatchMasker, CompiledGrammarCache, RequestConstraint
from grammask.integrations.request_grammar import GrammarCache, GrammarSpec, build_grammar, parse_spec
from tests.conftest import BYTE_LEVEL, load_tokenizer, tokenizer_info


def test_parse_spec_forms_and_errors():
    assert parse_spec({"grammar": "json"}) == GrammarSpec("grammar", "json")
    assert parse_spec('{"regex": "[a-z]+"}') == GrammarSpec("regex", "[a-z]+")  # JSON text, as over HTTP
    assert parse_spec({"json_schema": {"type": "integer"}}) == parse_spec({"json_schema": '{ "type" : "integer" }'})
    # Property order is kept: it is the order the generated object follows.
    a = parse_spec({"json_schema": {"properties": {"b": {}, "a": {}}}})
    b = parse_spec({"json_schema": {"properties": {"a": {}, "b": {}}}})
    assert a != b
    for bad, message in [([1], "must be an object"), ("{nope", "not JSON"), ({}, "got none"),
                         ({"regex": "a", "grammar": "json"}, "got grammar, regex"),
                         ({"ebnf": "x"}, "unknown key"), ({"regex": ""}, "non-empty string"),
                         ({"json_schema": "[1, 2]"}, "must be a JSON object"),
                         ({"json_schema": "{"}, "json_schema is not valid JSON")]:
        with pytest.raises(ValueError, match=message):
            parse_spec(bad)


def test_build_grammar_kinds():
    assert build_grammar(parse_spec({"grammar": "json"})).validate('{"a": 1}').ok
    lark = build_grammar(parse_spec({"grammar": 'start: "a"+ "b"'}))
    assert lark.validate("aab").ok and not lark.validate("ba").prefix_ok
    assert build_grammar(parse_spec({"regex": "[0-9]{2}"})).validate("42").ok
    schema = build_grammar(parse_spec({"json_schema": {"type": "object", "required": ["x"],
                                                       "properties": {"x": {"type": "integer"}}}}))
    assert schema.validate('{"x": 3}').ok and not schema.validate('{"x": "3"}').ok
    with pytest.raises(gm.GrammarError, match="Unclosed parenthesis"):
        build_grammar(parse_spec({"grammar": "start: ("}))
    with pytest.raises(gm.GrammarError, match="unknown built-in"):
        build_grammar(parse_spec({"grammar": "pyhton"}))
    # a structural tag, as vLLM passes XGrammar's form through: free text, then exactly the call
    tag = {"structures": [{"begin": "<tool_call>", "schema": {"type": "object", "required": ["q"],
                                                              "properties": {"q": {"type": "string"}}},
                           "end": "</tool_call>"}], "triggers": ["<tool_call>"]}
    tools = build_grammar(parse_spec({"structural_tag": json.dumps(tag)}))
    assert tools.validate('Let me look. <tool_call>{"q": "cats"}</tool_call> Done.').ok
    assert not tools.validate('<tool_call>{"q": 3}</tool_call>').prefix_ok


def test_grammar_cache_is_bounded_and_reuses():
    cache = GrammarCache(capacity=2)
    specs = [parse_spec({"regex": f"a{{{n}}}"}) for n in (1, 2, 3)]
    first = cache.get(specs[0])
    assert cache.get(specs[0]) is first
    cache.get(specs[1])
    cache.get(specs[2])  # evicts specs[0], the least recently used
    assert cache.get(specs[0]) is not first


def test_constraints_and_masker_on_a_real_tokenizer():
    tokenizer, info = load_tokenizer(BYTE_LEVEL), tokenizer_info(BYTE_LEVEL)
    compiled = CompiledGrammarCache(info, GrammarCache())
    spec = parse_spec({"regex": "[0-9]{3}-[0-9]{4}"})
    a, b = RequestConstraint(compiled.get(spec), spec), RequestConstraint(compiled.get(spec), spec)
    assert compiled.compiles == 1 and a.matcher.compiled is b.matcher.compiled
    ids = tokenizer.encode("555-01", add_special_tokens=False)
    a.feed(ids[:1])
    a.feed(ids)  # the whole list again: only the new tokens are consumed
    assert a.consumed == len(ids) and a.matcher.num_accepted_tokens == len(ids)
    a.feed(ids + [-1])  # a placeholder stops the walk without error
    assert a.consumed == len(ids) and a.error is None

    masker = BatchMasker(info)
    logits = torch.randn(3, info.vocab_size)
    original = logits.clone()
    masker.apply(logits, [(0, a), (2, b)])
    assert torch.equal(logits[1], original[1])
    for row, constraint in ((0, a), (2, b)):
        allowed = np.zeros(info.vocab_size, dtype=bool)
        allowed[constraint.matcher.allowed_token_ids()] = True
        assert torch.equal(torch.isfinite(logits[row]), torch.from_numpy(allowed))

    # A token outside the grammar ends the request: afterwards only stop tokens are allowed.
    b.feed(tokenizer.encode("x", add_special_tokens=False))
    assert b.error is not None and "outside the request's grammar" in b.error
    logits = torch.zeros(1, info.vocab_size)
    masker.apply(logits, [(0, b)])
    assert torch.nonzero(torch.isfinite(logits[0])).flatten().tolist() == sorted(info.stop_token_ids)
    with pytest.raises(ValueError, match="fewer than"):
        masker.apply(torch.zeros(1, info.vocab_size - 1), [(0, a)])
