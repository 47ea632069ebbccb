"""Budget-aware closing: with a tiny token budget every output of every built-in grammar still parses.

No model: a fake decoding loop drives GrammarLogitsProcessor with random or adversarial logits (favoring
openers that a short budget cannot close), greedy and sampled, in batches, with real tokenizers of both
families (byte-level BPE: SmolLM2, and gpt2 where the shared corpora are; SentencePiece: Mistral, and
llama2 where the shared corpora are). The outputs are checked by the external oracles
(json.loads, ast.parse, gofmt -e), not by the engine itself.
"""

from __future__ import annotations

import ast
import json
import random
import shutil
import subprocess
import warnings

import pytest
import torch

import grammask as gm
from conftest import BOTH_KINDS, BYTE_LEVEL, compiled_for, json_parses, load_tokenizer, tokenizer_info
from grammask.decoding.closing import Closer, closing_candidates

PREFIXES = {"json": "", "python": "def f(x):\n", "go": "package main\n\nfunc f() {\n"}
OPENERS = b"([{\"'"
PY_OPENERS = (b"try", b"def", b"class", b"if", b"for", b"while", b"with", b"lambda", b"\"\"\"")
GO_OPENERS = (b"func", b"if", b"for", b"switch", b"struct", b"map[", b"`", b"/*")


def parses(grammar: str, text: str) -> bool:
    if grammar == "json":
        return json_parses(text)
    if grammar == "python":
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", SyntaxWarning)
                warnings.simplefilter("ignore", DeprecationWarning)  # invalid escapes in random strings
                ast.parse(text)
        except SyntaxError:
            return False
        return True
    if shutil.which("gofmt") is None:
        pytest.fail("gofmt is not installed (apt-get install golang-go): the Go oracle is missing")
    r = subprocess.run(["gofmt", "-e", "/dev/stdin"], input=text.encode("utf-8"), capture_output=True, timeout=60)
    return r.returncode == 0


def opener_bias(info: gm.TokenizerInfo, grammar: str) -> torch.Tensor:
    """Logit bonus for tokens that open something a short budget cannot close."""
    words = {"python": PY_OPENERS, "go": GO_OPENERS}.get(grammar, ())
    bias = torch.zeros(info.vocab_size)
    for t, b in enumerate(info.token_bytes):
        if b and (any(c in b for c in OPENERS) or any(w in b for w in words)):
            bias[t] = 6.0
    return bias


def fake_generate(proc, info, rows: int, budget: int, seed: int, bias: torch.Tensor, greedy: bool) -> list[list[int]]:
    """generate() without a model: random (or adversarial) logits, the processor applied each step, rows
    that emit a stop token padded with it as generate() does."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.full((rows, 3), 7, dtype=torch.long)
    finished = [False] * rows
    stop = info.stop_token_ids[0]
    for _ in range(budget):
        scores = torch.randn(rows, info.vocab_size, generator=gen) * 3 + bias
        scores = proc(ids, scores)
        if greedy:
            nxt = scores.argmax(dim=1)
        else:
            nxt = torch.multinomial(torch.softmax(scores, dim=1), 1, generator=gen)[:, 0]
        for r in range(rows):
            if finished[r]:
                nxt[r] = stop
            elif int(nxt[r]) in info.stop_token_ids:
                finished[r] = True
        ids = torch.cat([ids, nxt[:, None]], dim=1)
        if all(finished):
            break
    out = []
    for row in ids[:, 3:].tolist():
        cut = next((i for i, t in enumerate(row) if t in info.stop_token_ids), len(row))
        out.append(row[:cut])
    return out


@pytest.mark.parametrize("family", BOTH_KINDS)
@pytest.mark.parametrize("grammar", ["json", "python", "go"])
def test_tiny_budget_outputs_parse(grammar, family, cache_dir):
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    compiled = compiled_for(grammar, family, cache_dir)
    prefix = PREFIXES[grammar]
    bias = opener_bias(info, grammar)
    checked = 0
    for budget, greedy, adversarial in [(4, True, True), (8, False, True), (12, True, False), (16, False, True)]:
        proc = gm.GrammarLogitsProcessor(compiled, tok, prefix=prefix, token_budget=budget)
        outs = fake_generate(proc, info, 2, budget, budget, bias if adversarial else 0 * bias, greedy)
        for row in outs:
            assert len(row) <= budget
            text = prefix + tok.decode(row)
            assert parses(grammar, text), (budget, greedy, text)
            checked += 1
    assert checked == 8


@pytest.mark.parametrize("grammar", ["json", "python"])
def test_sampling_with_room_to_spare_still_ends_complete(grammar, cache_dir):
    """Sampled, opener-favouring logits with a budget well above the completion length: every token the
    model may draw was verified, so the run that uses the whole budget still ends complete."""
    tok = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    compiled = compiled_for(grammar, BYTE_LEVEL, cache_dir)
    prefix = PREFIXES[grammar]
    bias = opener_bias(info, grammar) * 1.5
    for seed in range(2):
        proc = gm.GrammarLogitsProcessor(compiled, tok, prefix=prefix, token_budget=40)
        for row in fake_generate(proc, info, 2, 40, 100 + seed, bias, False):
            assert parses(grammar, prefix + tok.decode(row)), tok.decode(row)


def test_a_token_too_costly_to_close_is_never_drawn(cache_dir):
    """'<' opens a tail of 20 more words. Halfway through the budget the model likes '<' as much as 'x':
    drawn there, it could not be closed in the tokens left. Every token kept is verified, so it is never
    drawn then (a mask that checked only the model's first choice let it through, and the next step had
    no completion left)."""
    tok = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    grammar = gm.Grammar('start: "x"* tail?\ntail: "<" ("z" " ")~20 ">"\n', name="costly-tail")
    compiled = gm.compile(grammar, info, cache_dir=cache_dir)
    x, lt = tok.encode("x")[0], tok.encode("<")[0]
    budget = 40
    for seed in range(3):
        proc = gm.GrammarLogitsProcessor(compiled, tok, token_budget=budget)
        gen = torch.Generator().manual_seed(seed)
        ids = torch.full((4, 3), 7, dtype=torch.long)
        for step in range(budget):
            scores = torch.full((4, info.vocab_size), -20.0)
            scores[:, x] = 5.0
            scores[:, lt] = 5.0 if step >= 18 else -30.0
            scores = proc(ids, scores)
            nxt = torch.multinomial(torch.softmax(scores, dim=1), 1, generator=gen)
            ids = torch.cat([ids, nxt], dim=1)
        for row in ids[:, 3:].tolist():
            text = tok.decode([t for t in row if t not in info.stop_token_ids])
            assert grammar.validate(text).ok, text


@pytest.mark.parametrize("grammar", ["json", "python", "go"])
def test_without_budget_the_same_run_is_cut_invalid(grammar, cache_dir):
    """The control: the same adversarial run without closing ends unfinished (a third of the runs at
    least), so the test above is not passing by chance."""
    tok = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    compiled = compiled_for(grammar, BYTE_LEVEL, cache_dir)
    prefix = PREFIXES[grammar]
    proc = gm.GrammarLogitsProcessor(compiled, tok, prefix=prefix)
    bad = 0
    for seed in range(6):
        for row in fake_generate(proc, info, 2, 8, seed, opener_bias(info, grammar), False):
            bad += not parses(grammar, prefix + tok.decode(row))
    assert bad >= 4


def cut_character_token(info: gm.TokenizerInfo) -> int:
    """A token that ends inside a three-byte UTF-8 character (its lead byte, or lead and one more)."""
    return next(t for t, b in enumerate(info.token_bytes)
                if b and 0xE0 <= b[0] <= 0xEF and len(b) <= 2 and all(0x80 <= c <= 0xBF for c in b[1:]))


@pytest.mark.parametrize("family", BOTH_KINDS)
def test_a_token_ending_inside_a_character_can_be_closed(family, cache_dir):
    info = tokenizer_info(family)
    compiled = compiled_for("json", family, cache_dir)
    closer = Closer(closing_candidates(info, info.vocab_size))
    cut = cut_character_token(info)
    m = compiled.matcher()
    assert m.accept_string('["') and m.accept_token(cut)
    completion = closer.find(m, 8)
    assert completion is not None, info.token_bytes[cut]
    text = b'["' + info.token_bytes[cut] + b"".join(info.token_bytes[t] for t in completion)
    assert json_parses(text.decode("utf-8"))


# SmolLM2: at its fifth step the model's first choice is a token that ends inside a character.
@pytest.mark.parametrize("family", [BYTE_LEVEL, "gpt2"])
def test_far_from_the_budget_the_greedy_choice_is_unchanged(family, cache_dir):
    """With room to spare, the model's first choice can be closed: greedy decoding is unchanged, and
    every token the budgeted mask keeps is one the grammar allows."""
    tok = load_tokenizer(family)
    info = tokenizer_info(family)
    compiled = compiled_for("json", family, cache_dir)
    plain = gm.GrammarLogitsProcessor(compiled, tok)
    budgeted = gm.GrammarLogitsProcessor(compiled, tok, token_budget=500)
    gen = torch.Generator().manual_seed(3)
    ids = torch.full((1, 2), 7, dtype=torch.long)
    for _ in range(30):
        scores = torch.randn(1, info.vocab_size, generator=gen)
        a = plain(ids, scores.clone())
        b = budgeted(ids, scores.clone())
        assert torch.equal(a.argmax(dim=1), b.argmax(dim=1))
        kept = ~torch.isinf(b)
        assert not torch.isinf(a[kept]).any()
        ids = torch.cat([ids, a.argmax(dim=1, keepdim=True)], dim=1)


def test_the_last_steps_force_a_completion(cache_dir):
    """Whatever the model wants, at the end of the budget only tokens with a short completion remain."""
    tok = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    compiled = compiled_for("json", BYTE_LEVEL, cache_dir)
    proc = gm.GrammarLogitsProcessor(compiled, tok, prefix='{"a": [1, {"b": "x', token_budget=3)
    ids = torch.full((1, 2), 7, dtype=torch.long)
    out = []
    for _ in range(3):
        scores = torch.zeros(1, info.vocab_size)
        scores[0, tok.encode("[")[0]] = 100.0  # the model insists on opening
        scores = proc(ids, scores)
        t = int(scores.argmax())
        if t in info.stop_token_ids:
            break
        out.append(t)
        ids = torch.cat([ids, torch.tensor([[t]])], dim=1)
    assert json.loads('{"a": [1, {"b": "x' + tok.decode(out)) is not None


def test_closer_completions_are_verified_on_real_texts(cache_dir):
    """Closer.find on states cut from real documents: every completion makes the text complete, and the
    search finds one in almost every state (a broken search fails this)."""
    from conftest import real_json_documents, json_texts

    tok = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    compiled = compiled_for("json", BYTE_LEVEL, cache_dir)
    closer = Closer(closing_candidates(info, info.vocab_size))
    rng = random.Random(5)
    texts = json_texts(real_json_documents()[:30])
    found = 0
    for _ in range(60):
        ids = tok.encode(rng.choice(texts))
        cut = rng.randrange(1, len(ids))
        m = compiled.matcher()
        assert m.accept_tokens(ids[:cut])
        before = m.num_accepted_tokens
        comp = closer.find(m, 12)
        assert m.num_accepted_tokens == before  # the state is left as it was
        if comp is not None:
            found += 1
            assert len(comp) <= 12
            assert json_parses(tok.decode(ids[:cut] + comp)), tok.decode(ids[:cut] + comp)
    assert found >= 57


def test_budget_too_small_for_the_prefix_is_an_error(cache_dir):
    tok = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    compiled = compiled_for("json", BYTE_LEVEL, cache_dir)
    proc = gm.GrammarLogitsProcessor(compiled, tok, prefix="[" * 40, token_budget=2)
    with pytest.raises(ValueError, match="token_budget=2"):
        proc(torch.full((1, 2), 7, dtype=torch.long), torch.zeros(1, info.vocab_size))


@pytest.mark.parametrize("bad", [0, -3, 2.5, True, "10"])
def test_bad_budget_values_are_refused(bad, cache_dir):
    tok = load_tokenizer(BYTE_LEVEL)
    compiled = compiled_for("json", BYTE_LEVEL, cache_dir)
    with pytest.raises(ValueError, match="token_budget"):
        gm.GrammarLogitsProcessor(compiled, tok, token_budget=bad)


def test_real_model_short_budget():
    """generate() with the default model and a budget far too short for its answer: still valid JSON."""
    from grammask.decoding.generation import chat_input_ids

    model, tok = gm.load_model()
    ids = chat_input_ids(tok, "Give a JSON array of five European capitals with their population.")
    proc = gm.GrammarLogitsProcessor("json", tok, stop_token_ids=[2], token_budget=10)
    with torch.no_grad():
        out = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=10, do_sample=False,
                             logits_processor=[proc], pad_token_id=2)
    text = tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True)
    assert json_parses(text), text
