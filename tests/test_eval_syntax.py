"""bench.eval_syntax's helpers (prompts, cut rules, budgets, the repetition test) and bench.greedy's batched
decoder against generate(). The evaluation itself is not run here (it takes minutes)."""

from __future__ import annotations

import pytest
import torch

import grammask as gm
from bench import eval_syntax as es
from bench.greedy import Row, greedy_rows
from conftest import BYTE_LEVEL, shared_corpus


class FakeTokenizer:
    """Enough of a tokenizer for the task builders: one id per character."""

    def __call__(self, text, **kwargs):
        return {"input_ids": [ord(c) for c in text]}


@pytest.fixture(scope="module")
def python_grammar():
    return gm.Grammar.builtin("python")


@pytest.fixture(scope="module")
def go_grammar():
    return gm.Grammar.builtin("go")


def test_python_prompts_lose_their_trailing_newline_only():
    shared_corpus("python", "humaneval", "HumanEval-first-half.jsonl")
    tasks = es.python_tasks(FakeTokenizer(), 82)
    assert len(tasks) == 82
    for t in tasks:
        assert t.prefix.endswith(('"""', "'''")), t.name
        assert "".join(map(chr, t.input_ids)) == t.prefix
        assert t.check(t.prefix) is None  # a docstring is a body: an empty completion parses


def test_go_prompts_spread_over_the_set():
    shared_corpus("go", "mbgp", "mbgp_release_v1.1.jsonl")
    tasks = es.go_tasks(FakeTokenizer(), 16)
    assert len(tasks) == 16 and len({t.name for t in tasks}) == 16
    numbers = [int(t.name.split("/")[1]) for t in tasks]
    assert numbers == sorted(numbers) and numbers[-1] - numbers[0] > 800
    assert all(t.prefix.endswith("{\n") for t in tasks)


def test_python_cut_unconstrained_first_stop(python_grammar):
    prompt = 'def f(x):\n    """Doc."""'
    cut = es.python_cut(prompt)
    assert cut("\n    return x\n\n\ndef g():\n    pass\n", None) == "\n    return x\n\n"
    assert cut("\n    return x\n```\n\nThis function returns x.", None) == "\n    return x"
    assert cut("\n    return x", None) is None  # no stop sequence yet: still going


def test_python_cut_under_the_grammar_waits_for_a_complete_text(python_grammar):
    prompt = 'def f(x):\n    """Doc."""'
    cut = es.python_cut(prompt)
    # "\n#" inside the block and "\ndef " inside a string do not end the completion.
    text = '\n    if x:\n#  a comment\n        return 1\n    s = """\ndef """\n    return s\n\n# end\n'
    assert cut(text, None) == "\n    if x:"
    assert cut(text, python_grammar) == text[: text.index("\n# end")]
    assert es.check_python(prompt + cut(text, python_grammar)) is None
    assert cut(text[: text.index("\n# end")], python_grammar) is None


def test_go_cut(go_grammar):
    prompt = "package main\n\nfunc f (x int) int {\n"
    cut = es.go_cut(prompt)
    body = "\tif x > 0 {\n\t\treturn 1\n}\n\treturn 0\n}\n\nfunc g() {}\n"
    assert cut(body, None) == "\tif x > 0 {\n\t\treturn 1\n}\n"  # the first "}" line
    assert cut(body, go_grammar) == "\tif x > 0 {\n\t\treturn 1\n}\n\treturn 0\n}\n"
    assert cut("\treturn 0\n}", go_grammar) is None  # a line is a line once its newline came


def test_budgets():
    assert es.parse_budgets([], ["go"]) == {"go": es.DEFAULT_BUDGETS["go"]}
    assert es.parse_budgets(["100"], es.LANGUAGES) == {"python": 100, "go": 100, "json": 100}
    assert es.parse_budgets(["100", "go=300"], ["python", "go"]) == {"python": 100, "go": 300}
    for bad in (["0"], ["go=x"], ["rust=5"], ["-3"]):
        with pytest.raises(ValueError):
            es.parse_budgets(bad, es.LANGUAGES)


def test_repeating_tail():
    loop = '{\n  "type": "json",\n  "data": {\n' + "".join(
        f'{"  " * k}"type": "json",\n{"  " * k}"data": {{\n' for k in range(2, 20))
    assert es.repeating_tail(loop)
    assert es.repeating_tail("    if a == 1:\n        return True\n" + "".join(
        f"    if a == {k}:\n        return True\n" for k in range(2, 40)))
    prose = ("The quick brown fox jumps over the lazy dog while seven wizards quietly hex a jovial "
             "bumpkin; meanwhile zebras graze near fjords, and a sphinx of black quartz judges my vow.")
    assert not es.repeating_tail(prose)
    assert not es.repeating_tail("short")
    # A long answer of distinct items is not a loop; digits going on and on are.
    cities = ", ".join(f'{{"name": "{c}", "population": {n}}}' for c, n in zip(
        ["Paris", "Berlin", "Madrid", "Rome", "Vienna", "Lisbon", "Warsaw", "Prague", "Dublin", "Oslo"], range(10)))
    assert not es.repeating_tail('{"capitals": [' + cities)
    assert es.repeating_tail('{\n  "name": "John",\n  "id": "' + "1234567890" * 20)


def test_outcome_cut_and_budget():
    class Tok:
        def decode(self, ids, skip_special_tokens=True):
            return "".join(chr(i) for i in ids if i != 2)

    task = es.Task("python", "t", [], 'def f():\n    """D."""', es.python_cut('def f():\n    """D."""'),
                   es.check_python)
    ids = [ord(c) for c in "\n    return 1\n\ndef g("]
    o = es.outcome(Tok(), task, "unconstrained", None, ids, "stop", 0.0, [2])
    assert (o.ended, o.hit_budget, o.error, o.empty) == ("stop", False, None, False)
    o = es.outcome(Tok(), task, "unconstrained", None, [ord(c) for c in "\n    return ("], "budget", 0.0, [2])
    assert o.hit_budget and o.error is not None
    o = es.outcome(Tok(), task, "unconstrained", None, [ord("\n"), 2], "eos", 0.0, [2])
    assert (o.ended, o.tokens, o.empty, o.error) == ("eos", 1, True, None)


def test_greedy_rows_match_generate(monkeypatch):
    """The batched decoder gives each row what generate() gives it alone: rows of prompts of different
    lengths joining and leaving the batch, processors, stop rules, budgets, cache buffers that grow."""
    import bench.greedy

    monkeypatch.setattr(bench.greedy, "ROOM", 3)  # the buffers run out of room every few tokens
    torch.set_num_threads(1)
    model, tok = gm.load_model()
    texts = ["def fib(n):\n", "The capital of France is", "import numpy as np\n\n# the mean of a list\ndef mean(xs):\n"]
    prompts = [tok(t)["input_ids"] for t in texts]
    compiled = gm.compile(gm.Grammar.builtin("json"), gm.TokenizerInfo.from_huggingface(tok, stop_token_ids=[2]))
    rows = []
    for p in range(len(texts)):
        rows.append(Row(p, 6 + 3 * p))
        rows.append(Row(p, 12, gm.GrammarLogitsProcessor(compiled, tok, stop_token_ids=[2])))
    rows.append(Row(0, 12, stop=lambda ids: "\n" in tok.decode(ids[1:])))
    stats = greedy_rows(model, prompts, rows, [2], max_rows=4)
    assert stats["prefill_tokens"] == sum(len(p) for p in prompts)
    for r in rows:
        ids = torch.tensor([prompts[r.prompt]])
        procs = [gm.GrammarLogitsProcessor(compiled, tok, stop_token_ids=[2])] if r.processor else []
        ref = model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=r.budget, do_sample=False,
                             logits_processor=procs, pad_token_id=2)[0, ids.shape[1]:].tolist()
        if r.reason == "stop":
            assert len(r.tokens) < r.budget and ref[: len(r.tokens)] == r.tokens
        else:
            assert r.tokens == ref, (r, ref)
            assert r.reason == ("eos" if ref[-1] == 2 else "budget")


@pytest.mark.parametrize("grammar", ["json", "python", "go"])
def test_greedy_closing_keep_one_is_keep_eight(grammar, cache_dir):
    """eval_syntax runs closing with closing_keep=1: under greedy decoding the chosen token is the first
    verified one in logit order whatever `keep` is, so the outputs equal the library default's (8)."""
    from conftest import compiled_for, load_tokenizer, tokenizer_info
    from test_closing import PREFIXES, fake_generate, opener_bias

    tok = load_tokenizer(BYTE_LEVEL)
    info = tokenizer_info(BYTE_LEVEL)
    compiled = compiled_for(grammar, BYTE_LEVEL, cache_dir)
    bias = opener_bias(info, grammar)
    for budget in (6, 16):
        outs = []
        for keep in (1, 8):
            proc = gm.GrammarLogitsProcessor(compiled, tok, prefix=PREFIXES[grammar], token_budget=budget,
                                             closing_keep=keep)
            outs.append(fake_generate(proc, info, 3, budget, budget, bias, True))
        assert outs[0] == outs[1]
