"""More than one token per step: speculative drafts through the matcher (validate_tokens, accept_tokens,
rollback) and transformers' assisted decoding (prompt lookup, an assistant model) through the processor."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest
import torch

import grammask as gm
from conftest import builtin_here, compiled_for, load_tokenizer
from grammask.decoding.generation import chat_input_ids

SCHEMA = {"type": "object", "properties": {"name": {"type": "string"}, "tags": {"type": "array", "items": {
    "type": "string"}}, "age": {"type": "integer"}}, "required": ["name", "tags", "age"]}

CASES = {  # grammar -> (prompt, checker of a complete output)
    "json": ('Repeat exactly this JSON: {"name": "Tom", "tags": ["a", "b"], "age": 3}', json.loads),
    "schema": ('Repeat exactly this JSON: {"name": "Tom", "tags": ["a", "b"], "age": 3}', json.loads),
    "python": ("Write a Python function add(a, b) that returns a + b.", lambda s: compile(s, "<out>", "exec")),
    "go": ("Write a Go function Add(a, b int) int that returns a + b.", None),
}


STRICT = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"],
          "additionalProperties": False}


def grammar_for(name: str) -> gm.Grammar:
    if name in ("schema", "strict", "compact"):
        return gm.Grammar.from_json_schema(SCHEMA if name == "schema" else STRICT, compact=name == "compact")
    return builtin_here(name)


@pytest.mark.parametrize("grammar", ["json", "python"])
def test_validate_tokens_and_accept_tokens_agree_with_one_token_at_a_time(grammar, cache_dir):
    compiled = compiled_for(grammar, "smollm2", cache_dir)
    info = compiled.tokenizer_info
    rng = random.Random(7)
    m, reference, walker = compiled.matcher(), compiled.matcher(), compiled.matcher()
    for trial in range(300):
        # a random state: the walker's prefix, fed to both matchers
        m.reset(), reference.reset(), walker.reset()
        for _ in range(rng.randrange(12)):
            allowed = walker.allowed_token_ids()
            allowed = allowed[~np.isin(allowed, list(info.stop_token_ids))]
            if not len(allowed):
                break
            t = int(rng.choice(allowed))
            assert walker.accept_token(t) and m.accept_token(t) and reference.accept_token(t)
        draft = []
        for _ in range(rng.randrange(1, 9)):
            allowed = walker.allowed_token_ids()
            t = int(rng.choice(allowed)) if len(allowed) and rng.random() < 0.85 else rng.randrange(info.vocab_size)
            draft.append(t)
            if not walker.accept_token(t):
                break
        before = m.allowed_token_ids()
        n = m.validate_tokens(draft)
        assert m.num_accepted_tokens == reference.num_accepted_tokens
        assert (m.allowed_token_ids() == before).all()  # state unchanged
        expected = 0
        for t in draft:
            if not reference.accept_token(t):
                break
            expected += 1
        assert n == expected, (trial, draft)
        reference.rollback(expected)
        assert m.accept_tokens(draft) == (n == len(draft))
        if n == len(draft):
            reference_after = [reference.accept_token(t) for t in draft]
            assert all(reference_after)
            assert (m.allowed_token_ids() == reference.allowed_token_ids()).all()
            m.rollback(len(draft))  # and the whole draft rolls back to where it started
            assert (m.allowed_token_ids() == before).all()
            reference.rollback(len(draft))
        else:  # all or nothing
            assert m.num_accepted_tokens == reference.num_accepted_tokens
            assert (m.allowed_token_ids() == before).all()


def test_validate_tokens_respects_the_rollback_window(cache_dir):
    compiled = compiled_for("json", "smollm2", cache_dir)
    tok = load_tokenizer("smollm2")
    m = compiled.matcher(max_rollback_tokens=4)
    ids = tok.encode('{"a": [1, 2, 3]}', add_special_tokens=False)
    assert len(ids) > 4
    with pytest.raises(ValueError, match="max_rollback_tokens=4"):
        m.validate_tokens(ids)
    assert m.validate_tokens(ids[:4]) == 4 and m.num_accepted_tokens == 0


# -- assisted decoding with the real default model --------------------------------------------------

@pytest.fixture(scope="module")
def model_and_tokenizer():
    return gm.load_model()


def run(model, tok, grammar, prompt, **kw):
    ids = chat_input_ids(tok, prompt)
    proc = gm.GrammarLogitsProcessor(grammar, tok, stop_token_ids=[2])
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), logits_processor=[proc], max_new_tokens=48,
                             do_sample=False, pad_token_id=2, **kw)
    gen = out[0, ids.shape[1]:].tolist()
    stopped = 2 in gen
    return tok.decode(gen[: gen.index(2)] if stopped else gen, skip_special_tokens=True), stopped


@pytest.mark.parametrize("name", sorted(CASES))
def test_assisted_decoding_is_constrained_and_equals_greedy(model_and_tokenizer, name):
    model, tok = model_and_tokenizer
    prompt, check = CASES[name]
    grammar = grammar_for(name)
    plain, plain_stopped = run(model, tok, grammar, prompt)
    for kw in (dict(prompt_lookup_num_tokens=5), dict(assistant_model=model)):
        text, stopped = run(model, tok, grammar, prompt, **kw)
        result = grammar.validate(text)
        assert result.ok if stopped else result.prefix_ok, (kw.keys(), text, result.message)
        if stopped and check is not None:
            check(text)
        assert (text, stopped) == (plain, plain_stopped), kw.keys()


# -- forced bytes and jump-forward -----------------------------------------------------------------

FORCED_CASES = [  # (grammar, text so far, the forced bytes)
    ("strict", '{"name', b'"'),
    ("compact", '{"name', b'":"'),
    ("compact", '{', b'"name":"'),
    ("strict", '{"name": "x"', b""),               # whitespace or the closing brace
    ("schema", '{"name', b""),                     # other keys may start with "name"
    ("json", '{"a": t', b"rue"),
    ("json", '{"a": [1', b""),                    # a digit, a comma, a bracket: a choice
    ("json", '{"a": 1}', b""),                    # complete: may end here
    ("python", "def f(x):\n    return x\n", b""),
]


@pytest.mark.parametrize("name,text,forced", FORCED_CASES)
def test_forced_bytes_are_exactly_the_bytes_every_continuation_starts_with(name, text, forced, cache_dir):
    grammar = grammar_for(name)
    tok = load_tokenizer("smollm2")
    compiled = gm.compile(grammar, compiled_for("json", "smollm2", cache_dir).tokenizer_info, cache_dir=cache_dir)
    m = compiled.matcher()
    for t in tok.encode(text, add_special_tokens=False):
        assert m.accept_token(t)
    before = m.allowed_token_ids()
    got = m.forced_bytes()
    assert got == forced
    assert (m.allowed_token_ids() == before).all() and m.num_accepted_tokens == len(tok.encode(text, add_special_tokens=False))
    # The oracle is the validator, byte by byte: the forced text keeps a valid prefix, and after each forced
    # byte's prefix no other byte that some token starts with does.
    data = text.encode()
    first_bytes = {b[0] for b in compiled.tokenizer_info.token_bytes if b}
    assert grammar.validate(data + got).prefix_ok
    for i in range(len(got)):
        others = [c for c in first_bytes if c != got[i] and grammar.validate(data + got[:i] + bytes([c])).prefix_ok]
        assert not others, (i, others)
        assert not grammar.validate(data + got[:i]).ok  # the text could not end there


def test_jump_forward_generation_is_valid_and_saves_model_calls(model_and_tokenizer):
    model, tok = model_and_tokenizer
    grammar = gm.Grammar.from_json_schema(SCHEMA, compact=True)
    prompt = 'Repeat exactly this JSON: {"name": "Tom", "tags": ["a", "b"], "age": 3}'
    stats: dict = {}
    text = gm.generate(model, tok, prompt, grammar, max_new_tokens=64, jump_forward=True, stats=stats)
    assert grammar.validate(text).ok, text  # this prompt ends well inside the budget
    assert json.loads(text)["name"]
    # `{"name":"` is forced at the start, `","tags":["` after the name, ...: fewer calls than tokens
    assert stats["forced_tokens"] > 0 and stats["model_calls"] <= stats["tokens"] - stats["forced_tokens"] + 1
    plain = gm.generate(model, tok, prompt, grammar, max_new_tokens=64)
    assert grammar.validate(plain).ok, plain
