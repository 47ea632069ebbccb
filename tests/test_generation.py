"""The logits processor with the real default model (SmolLM2-135M-Instruct) and without a model."""

from __future__ import annotations

import pytest
import torch

import grammask as gm
from conftest import json_parses
from grammask.decoding.generation import chat_input_ids

PROMPTS = ['Reply with a JSON object {"answer": <number>}: what is 2 + 3?',
           'Return JSON {"name": string, "age": number} for Alice, 30 years old.',
           'Return a JSON object with keys "city" and "country" for Paris.',
           'Is the sky blue? Answer as JSON {"answer": true or false}.']


@pytest.fixture(scope="module")
def model_and_tokenizer():
    return gm.load_model()


@pytest.fixture(scope="module")
def processor(model_and_tokenizer):
    _, tok = model_and_tokenizer
    return gm.GrammarLogitsProcessor("json", tok, stop_token_ids=[2])


def run(model, tok, input_ids, processor=None, **kw):
    out = model.generate(input_ids, attention_mask=kw.pop("attention_mask", torch.ones_like(input_ids)),
                         logits_processor=[processor] if processor else [], pad_token_id=2, **kw)
    gen = out[:, input_ids.shape[1]:]
    results = []
    for row in gen.tolist():
        stopped = 2 in row
        text = tok.decode(row[: row.index(2)] if stopped else row, skip_special_tokens=True)
        results.append((text, stopped))
    return results


def test_greedy_outputs_parse_and_processor_is_reusable(model_and_tokenizer, processor):
    model, tok = model_and_tokenizer
    constrained_ok = unconstrained_ok = stopped_count = 0
    for prompt in PROMPTS:  # one processor for every generate() call, never reset by hand
        ids = chat_input_ids(tok, prompt)
        [(text, stopped)] = run(model, tok, ids, processor, max_new_tokens=60, do_sample=False)
        [(free_text, _)] = run(model, tok, ids, None, max_new_tokens=60, do_sample=False)
        if stopped:
            stopped_count += 1
            assert json_parses(text), text
        else:
            assert gm.Grammar.builtin("json").validate(text).prefix_ok
        constrained_ok += json_parses(text)
        unconstrained_ok += json_parses(free_text)
    print(f"\ngreedy: constrained {constrained_ok}/{len(PROMPTS)} parse, unconstrained {unconstrained_ok}/{len(PROMPTS)}")
    assert stopped_count >= 3
    assert constrained_ok >= unconstrained_ok


def test_sampling_batch_with_left_padding_and_return_sequences(model_and_tokenizer, processor):
    model, tok = model_and_tokenizer
    tok.padding_side = "left"
    texts = [tok.apply_chat_template([{"role": "user", "content": p}], add_generation_prompt=True, tokenize=False)
             for p in (PROMPTS[1], 'Return JSON {"name": string} for Bob.')]
    batch = tok(texts, return_tensors="pt", padding=True, add_special_tokens=False)
    assert (batch["attention_mask"] == 0).any(), "prompts of equal length: no left padding exercised"
    torch.manual_seed(0)
    results = run(model, tok, batch["input_ids"], processor, attention_mask=batch["attention_mask"],
                  max_new_tokens=50, do_sample=True, temperature=0.8, top_p=0.95, num_return_sequences=2)
    assert len(results) == 4
    for text, stopped in results:
        assert json_parses(text) if stopped else gm.Grammar.builtin("json").validate(text).prefix_ok, text
    assert sum(stopped for _, stopped in results) >= 2


def test_beam_search_follows_reordered_beams(model_and_tokenizer, processor):
    model, tok = model_and_tokenizer
    ids = chat_input_ids(tok, PROMPTS[1])
    results = run(model, tok, ids, processor, max_new_tokens=40, num_beams=3, num_return_sequences=3,
                  do_sample=False)
    assert any(stopped for _, stopped in results)
    for text, stopped in results:
        assert json_parses(text) if stopped else gm.Grammar.builtin("json").validate(text).prefix_ok, text


def test_prefix_is_continued(model_and_tokenizer):
    model, tok = model_and_tokenizer
    prefix = '{"name": "Alice", "age":'
    proc = gm.GrammarLogitsProcessor("json", tok, prefix=prefix, stop_token_ids=[2])
    [(text, stopped)] = run(model, tok, chat_input_ids(tok, PROMPTS[1]), proc, max_new_tokens=30)
    assert stopped and json_parses(prefix + text), prefix + text
    with pytest.raises(ValueError, match="prefix"):
        gm.GrammarLogitsProcessor("json", tok, prefix='{"a" 1', stop_token_ids=[2])


# -- without a model: synthetic scores --------------------------------------------------------------------

@pytest.fixture(scope="module")
def padded_processor():
    from conftest import BYTE_LEVEL, load_tokenizer

    tok = load_tokenizer(BYTE_LEVEL)
    width = len(tok) + 100  # the model head: wider than the tokenizer
    return tok, gm.GrammarLogitsProcessor("json", tok, vocab_size=width), width


def step(proc, input_ids, width):
    scores = torch.randn(input_ids.shape[0], width)
    return proc(input_ids, scores)


def test_special_tokens_never_allowed_and_padded_head(padded_processor):
    tok, proc, width = padded_processor
    n, eos = len(tok), tok.eos_token_id
    other_special = [i for i in tok.all_special_ids if i != eos]
    assert other_special
    word = tok.encode("The", add_special_tokens=False)[0]
    ids = torch.tensor([[eos, eos, word]])
    torch.manual_seed(1)
    for _ in range(40):
        scores = step(proc, ids, width)
        assert torch.isinf(scores[0, n:]).all()      # the padded head's extra ids
        allowed = torch.isfinite(scores[0])
        assert not allowed[other_special].any()
        # the stop token (eos) only once the document is complete
        assert not allowed[eos] or proc.matchers[0].is_accepting()
        nxt = int(torch.multinomial(torch.softmax(scores[0], -1), 1))
        if nxt == eos:
            break
        ids = torch.cat([ids, torch.tensor([[nxt]])], dim=1)


def test_rows_reordered_like_beam_search(padded_processor):
    tok, proc, width = padded_processor
    a = tok.encode('{"a": [1, 2', add_special_tokens=False)
    b = tok.encode('[{"b": nul', add_special_tokens=False)
    n = min(len(a), len(b))
    word = tok.encode("The", add_special_tokens=False)[0]
    prompt = torch.tensor([[word], [word]])
    ids = prompt
    for i in range(n):
        step(proc, ids, width)
        ids = torch.cat([ids, torch.tensor([[a[i]], [b[i]]])], dim=1)
    # Beam search swaps the rows: row 0 now holds b's history and row 1 a's.
    swapped = torch.cat([ids[1:], ids[:1]])
    scores = step(proc, swapped, width)
    for row, text in ((0, tok.decode(b[:n])), (1, tok.decode(a[:n]))):
        fresh = gm.compile("json", proc.compiled.tokenizer_info).matcher()
        assert fresh.accept_tokens(tok.encode(text, add_special_tokens=False))
        expected = torch.zeros(width, dtype=torch.bool)
        expected[torch.as_tensor(fresh.allowed_token_ids())] = True
        assert torch.equal(torch.isfinite(scores[row]), expected)


def test_only_stop_tokens_once_nothing_but_whitespace_may_follow(padded_processor):
    tok, proc, width = padded_processor
    word = tok.encode("The", add_special_tokens=False)[0]
    ids = torch.tensor([[word] + tok.encode('{"a": 1}', add_special_tokens=False)])
    step(proc, ids[:, :1], width)
    for i in range(2, ids.shape[1] + 1):
        scores = step(proc, ids[:, :i], width)
    assert torch.isfinite(scores[0]).nonzero().flatten().tolist() == [tok.eos_token_id]


def test_cli_generate_main_job():
    import subprocess
    import sys

    res = subprocess.run([sys.executable, "-m", "grammask", "generate", "-g", "json", "--max-new-tokens", "40",
                          'Return JSON {"name": string, "age": number} for Alice, 30 years old.'],
                         capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr
    out = res.stdout.rstrip("\n")
    assert json_parses(out), out  # this prompt completes well inside the budget
    assert "loading" in res.stderr and "Traceback" not in res.stderr
    missing = subprocess.run([sys.executable, "-m", "grammask", "generate", "--model", "/nonexistent/model", "hi"],
                             capture_output=True, text=True, timeout=120)
    assert missing.returncode == 2 and "cannot load the model" in missing.stderr
    assert "Traceback" not in missing.stderr
