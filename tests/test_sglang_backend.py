"""The grammask SGLang backend, driven through SGLang's own classes the way SGLang 0.5.23 calls them.

SGLang itself cannot run on these CPU machines (its wheel pulls a CUDA torch); its pure-Python grammar
layer imports fine. The calls below follow SGLang's code:
- sglang/srt/constrained/grammar_manager.py: get_cached_or_future_value(key) -> Future or cached copy,
  .result(), set_cache(key, grammar.copy()), InvalidGrammarObject -> the request is aborted with
  its error_message;
- sglang/srt/sampling/sampling_batch_info.py (update_regex_vocab_mask): the first grammar allocates the
  batch mask, fill_vocab_mask_batched() fills the rows of unfinished, unterminated grammars, the rest
  keep the allocated (unconstrained) value; move_vocab_mask(); GrammarMask(first, mask).apply(logits);
- sglang/srt/managers/scheduler_components/batch_result_processor.py: accept_token(next_token) (a
  ValueError aborts that request), grammar.finished, is_terminated();
- sglang/srt/speculative/spec_utils.py: accept_token on draft tokens, then rollback(k).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

base = pytest.importorskip("sglang.srt.constrained.base_grammar_backend",
                           reason="SGLang is not installed in this environment (tests/test_vllm_engine.py runs "
                                  "this file in .venv/engines where scripts/setup installs it)")

import grammask as gm  # noqa: E402
from grammask.integrations import sglang as gm_sglang  # noqa: E402
from tests.conftest import BYTE_LEVEL, load_tokenizer, tokenizer_info  # noqa: E402

SCHEMA = {"type": "object", "additionalProperties": False, "required": ["name", "age"],
          "properties": {"name": {"type": "string"}, "age": {"type": "integer"}}}
LARK = 'start: "The answer is " NUMBER "."\nNUMBER: /[0-9]+/\n'


@pytest.fixture(scope="module")
def backend():
    tokenizer = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    gm_sglang.register()
    init = base.GRAMMAR_BACKEND_REGISTRY[gm_sglang.BACKEND_NAME]
    # create_grammar_backend(): GRAMMAR_BACKEND_REGISTRY[name](server_args, tokenizer, vocab_size, eos_token_ids)
    return init(None, tokenizer, info.vocab_size, set(info.stop_token_ids)), tokenizer, info


def _grammar_for(backend, key):
    """grammar_manager.py: a cache miss gives a Future, resolved later and cached as a copy."""
    value, hit = backend.get_cached_or_future_value(key, False)
    if hit:
        return value, True
    grammar = value.result()
    backend.set_cache(key, grammar.copy())
    return grammar, False


def test_register_makes_the_backend_selectable():
    from sglang.srt.arg_groups.choices import GRAMMAR_BACKEND_CHOICES

    gm_sglang.register()
    gm_sglang.register()  # idempotent: SGLang may load plugins in several processes
    assert base.GRAMMAR_BACKEND_REGISTRY["grammask"] is gm_sglang.create_backend
    assert GRAMMAR_BACKEND_CHOICES.count("grammask") == 1


def test_entry_point_declared():
    from importlib.metadata import entry_points

    eps = [ep for ep in entry_points(group="sglang.srt.plugins") if ep.name == "grammask"]
    if not eps:
        pytest.skip("grammask's installed metadata predates the sglang.srt.plugins entry point (reinstall it)")
    assert eps[0].load() is gm_sglang.register


def test_batch_masks_as_sglang_builds_them(backend):
    backend, tokenizer, info = backend
    keys = [("json", json.dumps(SCHEMA)), ("regex", "[0-9]{3}-[0-9]{4}"), None, ("ebnf", LARK), ("json", "$$ANY$$")]
    texts = ['{"name": "Ada", "age": 36}', "555-0199", "free text", "The answer is 42.", "[1, {\"a\": null}]"]
    grammars = [None if k is None else _grammar_for(backend, k)[0] for k in keys]
    scripts = [tokenizer.encode(t, add_special_tokens=False) for t in texts]
    stop = info.stop_token_ids[0]
    steps = max(len(s) for s in scripts) + 1
    for step in range(steps):
        # sampling_batch_info.update_regex_vocab_mask
        first = next(g for g in grammars if g)
        vocab_mask = first.allocate_vocab_mask(vocab_size=info.vocab_size, batch_size=len(grammars), device="cpu")
        entries = [base.GrammarRow(row=row, grammar=g) for row, g in enumerate(grammars)
                   if g and not g.finished and not g.is_terminated()]
        first.fill_vocab_mask_batched(entries, vocab_mask)
        vocab_mask = first.move_vocab_mask(vocab_mask, "cpu")
        logits = torch.randn(len(grammars), info.vocab_size, generator=torch.Generator().manual_seed(step))
        original = logits.clone()
        base.GrammarMask(first, vocab_mask).apply(logits)
        for row, g in enumerate(grammars):
            if g is None or g.finished:
                assert torch.equal(logits[row], original[row])
                continue
            reference = g.compiled.matcher()
            for t in scripts[row][:step]:
                assert reference.accept_token(t)
            allowed = np.zeros(info.vocab_size, dtype=bool)
            allowed[reference.allowed_token_ids()] = True
            assert torch.equal(torch.isfinite(logits[row]), torch.from_numpy(allowed)), (keys[row], step)
            # batch_result_processor: the sampled token goes to accept_token, then finished is synced.
            token = scripts[row][step] if step < len(scripts[row]) else stop
            assert allowed[token]
            g.accept_token(token)
            g.finished = g.is_terminated()
    assert all(g.is_terminated() for g in grammars if g)


def test_cache_hit_is_a_fresh_copy_on_shared_tables(backend):
    backend, tokenizer, _ = backend
    key = ("regex", "(yes|no)!")
    first, hit = _grammar_for(backend, key)
    first.accept_token(tokenizer.encode("yes", add_special_tokens=False)[0])
    second, hit = _grammar_for(backend, key)
    assert hit and second is not first
    assert second.compiled is first.compiled
    assert second.matcher.num_accepted_tokens == 0


def test_broken_grammars_become_invalid_grammar_objects(backend):
    backend, _, _ = backend
    cases = {("ebnf", "start: ("): "Unclosed parenthesis", ("json", "{not json"): "not valid JSON",
             ("regex", "(ab"): "", ("json", json.dumps({"type": "object", "minProperties": "x"})): ""}
    for key, message in cases.items():
        grammar, _ = _grammar_for(backend, key)
        assert isinstance(grammar, base.InvalidGrammarObject), key
        assert message in grammar.error_message and grammar.error_message


def test_rejected_token_raises_value_error_and_keeps_state(backend):
    backend, tokenizer, _ = backend
    grammar, _ = _grammar_for(backend, ("regex", "[0-9]+"))
    before = grammar.matcher.allowed_token_ids()
    with pytest.raises(ValueError, match="not allowed"):
        grammar.accept_token(tokenizer.encode("abc", add_special_tokens=False)[0])
    assert np.array_equal(grammar.matcher.allowed_token_ids(), before)


def test_speculative_rollback(backend):
    backend, tokenizer, _ = backend
    grammar, _ = _grammar_for(backend, ("json", json.dumps(SCHEMA)))
    ids = tokenizer.encode('{"name": "Bo', add_special_tokens=False)
    for t in ids[:2]:
        grammar.accept_token(t)
    before = grammar.matcher.allowed_token_ids()
    for t in ids[2:]:  # draft tokens
        grammar.accept_token(t)
    grammar.rollback(len(ids) - 2)
    assert np.array_equal(grammar.matcher.allowed_token_ids(), before)


def test_jump_forward(backend):
    backend, tokenizer, info = backend
    grammar, _ = _grammar_for(backend, ("json", json.dumps({"type": "object", "additionalProperties": False,
                                                            "required": ["name"],
                                                            "properties": {"name": {"type": "string"}}})))
    old = tokenizer.encode('{"', add_special_tokens=False)  # the only key must follow: `name"` is forced
    for t in old:
        grammar.accept_token(t)
    helper = grammar.try_jump_forward(tokenizer)
    assert helper is not None
    text, state = grammar.jump_forward_str_state(helper)
    assert text.startswith('name"')
    new = tokenizer.encode('{"' + text, add_special_tokens=False)
    grammar.jump_and_retokenize(old, new, state)
    reference = gm.compile(gm.Grammar.from_json_schema(grammar.key[1]), info).matcher()
    for t in new:
        assert reference.accept_token(t)
    assert np.array_equal(grammar.matcher.allowed_token_ids(), reference.allowed_token_ids())
