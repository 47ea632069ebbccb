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


def test_python_cut_at_the_harness_stops():
    """The bigcode harness's HumanEval rule: the completion before the earliest stop sequence, wherever it
    is; only unindented lines stop it."""
    def cut(text):
        return es.cut_at_stop(text, es.PY_STOPS)

    assert cut("\n    return x\n\n\ndef g():\n    pass\n") == "\n    return x\n\n"
    assert cut("\n    return x\n```\n\nThis function returns x.") == "\n    return x"
    assert cut("\n    return x\n\nif __name__ == '__main__':\n    f(1)\n") == "\n    return x\n"
    assert cut("\n    return x\nprint(f(1))\n") == "\n    return x"
    assert cut("\n    return x\n\n@cache\ndef g(): pass\n") == "\n    return x\n"
    assert cut("\n    return x\n\nclass A:\n") == "\n    return x\n"
    assert cut("\n    if x:\n        print(x)\n    # done\n    return x\n") is None  # indented: no stop
    assert cut("\n    return x") is None  # no stop sequence yet: still going
    # The earliest occurrence wins, whichever stop sequence it is and wherever it stands: "\n#" at the
    # start of a line inside an unfinished block ends the completion there, and the text is judged so.
    prompt = 'def f(x):\n    """Doc."""'
    text = '\n    if x:\n#  a comment\n        return 1\n    s = """\ndef """\n    return s\n\n# end\n'
    assert cut(text) == "\n    if x:"
    assert es.check_python(prompt + cut(text)) is not None
    assert cut(text[text.index("    s = "):]) == '    s = """'  # "\ndef" inside a string as well


def test_go_cut_at_the_multipl_e_stops():
    def cut(text):
        return es.cut_at_stop(text, es.GO_STOPS)

    body = "\tif x > 0 {\n\t\treturn 1\n}\n\treturn 0\n}\n\nfunc main() {}\n"
    assert cut(body) == "\tif x > 0 {\n\t\treturn 1\n}\n\treturn 0\n}\n"
    assert cut("\treturn 0\n}\n\n// f returns 0.\n") == "\treturn 0\n}\n"
    assert cut("\tseen := map[int]struct{}{}\n") == "\tseen := map[int]"  # "struct" anywhere
    assert cut("\t// a comment\n\treturn 0\n}\n//no space\n") is None  # indented, or "//" without space
    assert cut("\treturn 0\n}") is None


def test_json_has_no_stop_sequence():
    assert es.JSON_STOPS == ()
    assert es.cut_at_stop('```json\n{"a": 1}\n```\n\ndef f():\n', es.JSON_STOPS) is None


def test_one_cut_rule_for_every_mode(monkeypatch, cache_dir):
    """run_language gives the rows of every mode the same stop rule and judges their outputs by the same
    cut; StopAtCut (the timing runs) stops where the rows stop. Scripted outputs (the same tokens in each
    mode, a real tokenizer, the real processors of each mode) must give identical outcomes: a constrained
    row that waited for a complete text, or a cut that looked at the grammar, would differ."""
    from conftest import compiled_for, load_tokenizer

    tok = load_tokenizer("gpt2")
    eos = [tok.eos_token_id]
    compiled = compiled_for("python", "gpt2", cache_dir)
    prompt = 'def f(x):\n    """Doc."""'
    scripts = {  # completion -> (judged completion, how it ended, parses)
        "\n    if x:\n#  a comment\n        return 1\n    return 0\n": ("\n    if x:", "stop", False),
        '\n    s = """\ndef """\n    return s\n\ndef g():\n': ('\n    s = """', "stop", False),
        "\n    return 1\n\n\nprint(f(2))\n": ("\n    return 1\n\n", "stop", True),
        "\n    return 1\n": ("\n    return 1\n", "eos", True),
        "\n    x = [" + "1, " * 60: (None, "budget", False),
    }
    texts = list(scripts)
    ids = [tok.encode(t) + (eos if scripts[t][1] == "eos" else []) for t in texts]
    budget = 40
    assert all(len(i) < budget for i, t in zip(ids, texts) if scripts[t][1] != "budget")
    tasks = [es.Task("python", f"t{k}", tok.encode(prompt), prompt, es.PY_STOPS, es.check_python)
             for k in range(len(texts))]

    def scripted_rows(model, prompts, rows, stop_ids, *, max_rows, on_prompt_done):
        for p in range(len(prompts)):
            for r in (r for r in rows if r.prompt == p):
                assert r.stop is not None
                for t in ids[p]:
                    r.tokens.append(t)
                    if t in stop_ids:
                        r.reason = "eos"
                    elif r.stop(r.tokens):
                        r.reason = "stop"
                    elif len(r.tokens) >= r.budget:
                        r.reason = "budget"
                    else:
                        continue
                    break
            on_prompt_done(p)
        return {}

    monkeypatch.setattr(es, "greedy_rows", scripted_rows)
    outs, _ = es.run_language(None, tok, tasks, es.MODES, budget, compiled, eos, 48, 0.0)
    assert len(outs) == len(texts) * len(es.MODES)
    for k, text in enumerate(texts):
        mine = outs[k * len(es.MODES):(k + 1) * len(es.MODES)]
        assert [o.mode for o in mine] == es.MODES
        judged, ended, parses = scripts[text]
        for o in mine:
            assert (o.text, o.ended, o.tokens, o.error) == (mine[0].text, mine[0].ended, mine[0].tokens,
                                                          mine[0].error), (o, mine[0])
            assert o.ended == ended and (o.error is None) == parses, o
            if judged is not None:
                assert o.text == prompt + judged
        # The timing runs' criterion stops after the same token as the rows.
        stop = es.StopAtCut(tok, len(tasks[k].input_ids), es.PY_STOPS)
        full = torch.tensor([tasks[k].input_ids + ids[k]])
        first = next((n for n in range(1, len(ids[k]) + 1) if stop(full[:, :len(tasks[k].input_ids) + n], None)),
                     None)
        assert first == (mine[0].tokens if ended == "stop" else None)


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

    task = es.Task("python", "t", [], 'def f():\n    """D."""', es.PY_STOPS, es.check_python)
    ids = [ord(c) for c in "\n    return 1\n\ndef g("]
    o = es.outcome(Tok(), task, "unconstrained", ids, "stop", 0.0, [2])
    assert (o.ended, o.hit_budget, o.error, o.empty) == ("stop", False, None, False)
    o = es.outcome(Tok(), task, "unconstrained", [ord(c) for c in "\n    return ("], "budget", 0.0, [2])
    assert o.hit_budget and o.error is not None
    o = es.outcome(Tok(), task, "unconstrained", [ord("\n"), 2], "eos", 0.0, [2])
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
