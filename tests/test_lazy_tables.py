"""Lazy token tables (each lexer state's built by the first fill that needs it, csrc/gm_tables.c): the
same tables as the eager build, state by state; safe with many matchers filling at once; a failed
allocation while building leaves nothing behind; and compile() picks them where it should."""

from __future__ import annotations

import gc
import json

import numpy as np
import pytest

import grammask as gm
from conftest import BYTE_LEVEL, SENTENCEPIECE, load_tokenizer, run_on_threads, tokenizer_info, walk_masks
from grammask._core import CoreMatcher, CoreTokens, CoreVocab, _fail_allocation_after, _live_blocks

# Schemas in the shapes tool arguments and response formats take: nested objects, arrays, enums and
# consts, patterns and formats, length bounds (above and below the exact limit), numbers with bounds and
# steps, combinators, references, open and closed objects.
SCHEMAS = [
    {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"enum": ["celsius", "fahrenheit"]}},
     "required": ["location"]},
    {"type": "object", "properties": {"query": {"type": "string", "minLength": 1, "maxLength": 100},
                                      "limit": {"type": "integer", "minimum": 1, "maximum": 50}},
     "required": ["query"], "additionalProperties": False},
    {"type": "array", "items": {"type": "number"}, "minItems": 1, "maxItems": 4},
    {"type": "object", "properties": {"id": {"type": "string", "pattern": "^[A-Z]{3}-[0-9]{4}$"},
                                      "tags": {"type": "array", "items": {"type": "string"}, "uniqueItems": False}}},
    {"type": "object", "properties": {"when": {"type": "string", "format": "date-time"},
                                      "email": {"type": ["string", "null"], "format": "email"}}},
    {"anyOf": [{"type": "string", "maxLength": 5}, {"type": "integer"}, {"type": "boolean"}]},
    {"type": "object", "properties": {"a": {"$ref": "#/$defs/node"}},
     "$defs": {"node": {"type": "object", "properties": {"value": {"type": "integer"},
                                                         "next": {"anyOf": [{"$ref": "#/$defs/node"},
                                                                            {"type": "null"}]}}}}},
    {"type": "object", "properties": {"price": {"type": "number", "exclusiveMinimum": 0, "multipleOf": 0.01}}},
    {"const": {"status": "ok", "code": 200}},
    {"type": "object", "additionalProperties": {"type": "integer"}},
    {"type": "string", "enum": ["red", "green", "blue", "reddish"]},
    {"type": "object", "properties": {"name": {"type": "string", "minLength": 2, "maxLength": 255}},
     "required": ["name"]},
    {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}], "items": False},
    {"oneOf": [{"type": "object", "properties": {"kind": {"const": "circle"}, "r": {"type": "number"}},
                "required": ["kind", "r"], "additionalProperties": False},
               {"type": "object", "properties": {"kind": {"const": "square"}, "side": {"type": "number"}},
                "required": ["kind", "side"], "additionalProperties": False}]},
    {"type": "object", "properties": {"uuid": {"type": "string", "format": "uuid"},
                                      "day": {"type": "string", "format": "date"}}},
    {"type": "integer", "minimum": -20, "maximum": 300},
    {"type": "object", "properties": {"nested": {"type": "object", "properties": {
        "deep": {"type": "object", "properties": {"x": {"type": "array", "items": {"type": "boolean"}}}}}}}},
    {"type": "string", "pattern": "^(yes|no|maybe)( [0-9]+)?$"},
    {"type": "object", "properties": {"text": {"type": "string", "maxLength": 3},
                                      "score": {"type": "number", "minimum": 0, "maximum": 1}},
     "required": ["text", "score"], "additionalProperties": False},
    {},
]


def _compiled(grammar, info, tables):
    return gm.compile(grammar, info, cache_dir=False, tables=tables)


def _assert_same_tables(grammar, info):
    eager, lazy = _compiled(grammar, info, "eager"), _compiled(grammar, info, "lazy")
    assert not eager.lazy and lazy.lazy
    assert lazy.core_vocab.lazy_stats == (0, 0)
    n = eager.core_vocab.n_table_states
    for ts in range(n):
        uncond_e, groups_e = eager.core_vocab.state_tables(ts)
        uncond_l, groups_l = lazy.core_vocab.state_tables(ts)
        assert np.array_equal(uncond_e, uncond_l), f"{grammar.name}: state {ts}'s unconditional mask"
        assert groups_e == groups_l, f"{grammar.name}: state {ts}'s groups"
    assert lazy.core_vocab.lazy_stats[0] == n


@pytest.mark.parametrize("family", [BYTE_LEVEL, SENTENCEPIECE])
@pytest.mark.parametrize("name", ["json", "python", "go"])
def test_lazy_tables_equal_the_eager_ones_for_the_builtins(name, family):
    _assert_same_tables(gm.Grammar.builtin(name), tokenizer_info(family))


@pytest.mark.parametrize("family", [SENTENCEPIECE, "deepseek"])
def test_lazy_tables_equal_the_eager_ones_for_schemas(family):
    info = tokenizer_info(family)
    assert len(SCHEMAS) == 20
    for schema in SCHEMAS:
        _assert_same_tables(gm.Grammar.from_json_schema(schema), info)


INSTANCES = ['{"location": "Paris, France", "unit": "celsius"}', '{"location": "Zürich"}',
             '{ "location" : "a\\"b\\u00e9" , "unit" : "fahrenheit" }']


def _masks_along(compiled, ids):
    """walk_masks' allowed ids at each step, as bytes (compared whole)."""
    return [allowed.tobytes() for allowed in walk_masks(compiled, ids)]


def test_matchers_filling_at_once_on_threads_build_each_state_once():
    tok, info = load_tokenizer(BYTE_LEVEL), tokenizer_info(BYTE_LEVEL)
    grammar = gm.Grammar.from_json_schema(SCHEMAS[0])
    walks = [tok.encode(text) for text in INSTANCES]
    want = [_masks_along(_compiled(grammar, info, "eager"), ids) for ids in walks]
    for _ in range(3):
        lazy = _compiled(grammar, info, "lazy")
        got = {}

        def run(k):
            got[k] = _masks_along(lazy, walks[k % len(walks)])

        assert not run_on_threads(run, 8)
        assert all(got[k] == want[k % len(walks)] for k in range(8))
        built, held = lazy.core_vocab.lazy_stats
        states = lazy.core_vocab.built_states()
        assert 0 < built == len(states) < lazy.core_vocab.n_table_states  # each state built once
        eager = _compiled(grammar, info, "eager")
        for ts in states:
            assert lazy.core_vocab.state_tables(ts)[1] == eager.core_vocab.state_tables(ts)[1]
        assert lazy.core_vocab.lazy_stats == (built, held)  # (reading them built nothing more)


def test_a_failed_allocation_while_building_leaves_the_state_unbuilt_and_leaks_nothing():
    tok, info = load_tokenizer(BYTE_LEVEL), tokenizer_info(BYTE_LEVEL)
    grammar = gm.Grammar.from_json_schema(SCHEMAS[1])
    ids = tok.encode('{"query": "weather", "limit": 3}')
    want = _masks_along(_compiled(grammar, info, "eager"), ids)
    lazy = _compiled(grammar, info, "lazy")
    words = np.zeros(lazy.core_vocab.n_words, np.uint32)
    gc.collect()
    baseline = _live_blocks()
    failures = 0
    for n in range(1, 400):
        m = CoreMatcher(lazy.core_grammar, lazy.core_vocab, 0, False)
        _fail_allocation_after(n)
        try:
            m.fill(words.ctypes.data)
            failed = False
        except MemoryError:
            failed = True
        finally:
            _fail_allocation_after(0)
        del m
        gc.collect()
        built = lazy.core_vocab.lazy_stats[0]
        # one block per state built, and nothing else left behind
        assert _live_blocks() == baseline + built, f"allocation {n}"
        if not failed:
            break
        assert built <= 1  # the first fill's state: built, or not at all (then the next fill builds it)
        failures += 1
    assert failures > 5
    assert _masks_along(lazy, ids) == want


def test_compile_builds_lazily_where_nothing_would_be_stored(tmp_path):
    info = tokenizer_info(BYTE_LEVEL)
    assert gm.compile("json", info, cache_dir=False).lazy  # no disk cache: nothing to store
    eager = gm.compile("json", info, cache_dir=tmp_path)
    assert not eager.lazy and list(tmp_path.iterdir())  # stored for the next process ...
    assert gm.compile("json", info, cache_dir=tmp_path).from_cache  # ... which loads it
    schema = gm.Grammar.from_json_schema(SCHEMAS[0])
    stored = set(tmp_path.iterdir())
    assert gm.compile(schema, info, cache_dir=tmp_path).lazy  # per request: not stored
    assert set(tmp_path.iterdir()) == stored
    assert not gm.compile(schema, info, cache_dir=tmp_path, tables="eager").lazy
    assert gm.compile("json", info, cache_dir=tmp_path, tables="lazy").lazy
    with pytest.raises(ValueError, match="tables='sometimes'"):
        gm.compile("json", info, tables="sometimes")


def test_core_vocab_takes_lazy_or_eager_tables_not_both():
    info = tokenizer_info(BYTE_LEVEL)
    compiled = gm.compile("json", info, cache_dir=False, tables="eager")
    tok_bytes, tok_begin, order, is_stop = info.byte_layout()
    common = dict(vocab_size=info.vocab_size, tok_bytes=tok_bytes, tok_begin=tok_begin, is_stop=is_stop,
                  strip_leading_space=info.strips_leading_space)
    arrays = {k: v for k, v in compiled.core_vocab.arrays.items() if k not in common and k != "group_lcp"}
    with pytest.raises(TypeError, match="either"):
        CoreVocab(compiled.core_grammar, order=order, **common, **arrays)
    with pytest.raises(TypeError, match="every table array"):
        CoreVocab(compiled.core_grammar, **common)
    with pytest.raises(ValueError, match="order"):  # a token id past the vocabulary never reaches the core
        CoreVocab(compiled.core_grammar, order=np.array([0, info.vocab_size + 5]), **common)


def test_lazy_tables_share_the_tokenizers_checked_vocabulary():
    """One CoreTokens per tokenizer serves every lazy table set compiled for it; tables over it give the
    masks of tables over the vocabulary's own arrays."""
    tok, info = load_tokenizer(BYTE_LEVEL), tokenizer_info(BYTE_LEVEL)
    first = gm.compile(gm.Grammar.from_json_schema(SCHEMAS[0]), info, cache_dir=False)
    grammar = gm.Grammar.from_json_schema(SCHEMAS[1])
    second = gm.compile(grammar, info, cache_dir=False)
    assert first.lazy and second.lazy
    assert first.core_vocab.tokens is second.core_vocab.tokens
    assert first.core_vocab.arrays["tok_bytes"] is second.core_vocab.arrays["tok_bytes"]
    tok_bytes, tok_begin, order, is_stop = info.byte_layout()
    own = CoreVocab(second.core_grammar, vocab_size=info.vocab_size, strip_leading_space=info.strips_leading_space,
                    tok_bytes=tok_bytes, tok_begin=tok_begin, is_stop=is_stop, order=order)
    assert own.tokens is not second.core_vocab.tokens
    for ts in (0, 1, second.core_vocab.n_table_states - 1):
        a, b = own.state_tables(ts), second.core_vocab.state_tables(ts)
        assert np.array_equal(a[0], b[0]) and a[1] == b[1]
    ids = tok.encode('{"query": "weather", "limit": 3}')
    assert _masks_along(second, ids) == _masks_along(_compiled(grammar, info, "eager"), ids)
    tokens = second.core_vocab.tokens
    common = dict(vocab_size=info.vocab_size, strip_leading_space=info.strips_leading_space)
    with pytest.raises(TypeError, match="in place of"):
        CoreVocab(second.core_grammar, tokens=tokens, order=order, **common)
    with pytest.raises(TypeError, match="sorted order"):
        CoreVocab(second.core_grammar, tokens=CoreTokens(vocab_size=info.vocab_size, tok_bytes=tok_bytes,
                                                         tok_begin=tok_begin, is_stop=is_stop), **common)
    with pytest.raises(ValueError, match="vocabulary of"):
        CoreVocab(second.core_grammar, tokens=tokens, vocab_size=info.vocab_size + 1,
                  strip_leading_space=info.strips_leading_space)


def test_lazy_tables_json_instances_walk_as_the_eager_ones():
    """A schema's instances token by token: the same masks from lazy and eager tables (json.loads agrees
    the texts are JSON)."""
    tok, info = load_tokenizer(SENTENCEPIECE), tokenizer_info(SENTENCEPIECE)
    for schema, text in [(SCHEMAS[1], '{"query": "cafe \\"near\\" me", "limit": 50}'),
                         (SCHEMAS[6], '{"a": {"value": 1, "next": {"value": 2, "next": null}}}'),
                         (SCHEMAS[13], '{"kind": "square", "side": 2.5}')]:
        json.loads(text)
        grammar = gm.Grammar.from_json_schema(schema)
        ids = tok.encode(text, add_special_tokens=False)
        assert _masks_along(_compiled(grammar, info, "lazy"), ids) == _masks_along(
            _compiled(grammar, info, "eager"), ids)
