"""Bad input gets one clear error; nothing breaks, hangs or leaks (grammars, tokenizers, matcher, cache, CLI)."""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import warnings

import numpy as np
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import grammask as gm
from conftest import (BYTE_LEVEL, compiled_for, json_parses, load_tokenizer, real_json_documents, run_on_threads,
                      tokenizer_info)

# -- grammars -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text,fragment,line", [
    ("start: a\na: \"x\" (", "grammar syntax error", 2),
    ("start: b\nb: X", "undefined terminal 'X'", 2),
    ("start: missing", "undefined rule 'missing'", 1),
    ("rule: \"x\"", "no start rule 'start'", None),
    ("   \n", "empty", None),
    ("start: A\nA: /(?<=x)y/", "reaches before the start of the lexeme", 2),
    ("start: A\nA: /(x)\\1/", "backreference or conditional group (?(n)...) is not regular", 2),
    ("start: A\nA: /x\\1/", "invalid regex", 2),
    ("start: a | b\na: \"x\"\nb: \"x\"", "reduce/reduce conflict", 2),
    ("start: X _INDENT\nX: \"x\"\n%declare _INDENT", "has no pattern", None),
])
def test_broken_grammar_one_clear_error(text, fragment, line):
    t0 = time.monotonic()
    with pytest.raises(gm.GrammarError) as info:
        gm.Grammar.from_lark(text)
    assert time.monotonic() - t0 < 5
    message = str(info.value)
    assert fragment in message and "\n" not in message.strip(), message
    if line is not None:
        assert info.value.line == line and f":{line}:" in message, message


def test_shift_reduce_conflict_resolved_as_shift_with_a_warning():
    text = 'start: stmt\nstmt: "if" X stmt | "if" X stmt "else" stmt | X\nX: "x"\n%ignore " "'
    with pytest.warns(gm.GrammarWarning, match=r"shift/reduce conflict on ELSE .*resolved as shift"):
        g = gm.Grammar.from_lark(text)
    assert g.validate("if x if x x else x").ok  # the else binds to the nearest if


def test_grammar_size_and_time_limits():
    t0 = time.monotonic()
    with pytest.raises(gm.GrammarError, match="took too long"):
        # (the 15th letter from the end is an a: 2**15 states; /[a-z]{1,60}x[a-z]{1,60}/ served once, but as
        # re.match reads it, Lark's meaning, its automaton is small)
        gm.Grammar.from_lark("start: A\nA: /(a|b)*a(a|b){14}/", build_timeout=1.0)
    assert time.monotonic() - t0 < 10
    with pytest.raises(gm.GrammarError, match="more than 300 DFA states"):
        gm.Grammar.from_lark("start: A B\nA: /(a|b)*a(a|b){9}/\nB: /c/", max_lexer_states=300)
    info = gm.TokenizerInfo.from_token_bytes([b"a"] * 5000 + [None], stop_token_ids=[5000])
    with pytest.raises(gm.GrammarError, match="max_table_bytes"):
        gm.compile("json", info, cache_dir=False, max_table_bytes=10_000)


# -- tokenizers ---------------------------------------------------------------------------------------

def _tokenizer(vocab: dict, decoder):
    from tokenizers import Tokenizer, models
    from transformers import PreTrainedTokenizerFast

    t = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    t.decoder = decoder
    return PreTrainedTokenizerFast(tokenizer_object=t, eos_token="<eos>" if "<eos>" in vocab else None)


def test_tokenizer_errors_and_several_eos_ids():
    from tokenizers import decoders

    bad = _tokenizer({"a": 0, "\u4e2d": 1, "<eos>": 2}, decoders.ByteLevel())
    with pytest.raises(gm.TokenizerError, match="outside the byte alphabet"):
        gm.TokenizerInfo.from_huggingface(bad)
    wordpiece = _tokenizer({"a": 0, "##b": 1, "<eos>": 2}, decoders.WordPiece())
    with pytest.raises(gm.TokenizerError, match="unsupported tokenizer decoder"):
        gm.TokenizerInfo.from_huggingface(wordpiece)
    no_eos = _tokenizer({"a": 0, "b": 1}, decoders.ByteLevel())
    with pytest.raises(gm.TokenizerError, match="no stop token"):
        gm.TokenizerInfo.from_huggingface(no_eos)
    # Several end tokens (e.g. generation_config lists two): every one is a stop token.
    tok = load_tokenizer(BYTE_LEVEL)
    [newline] = tok.encode("\n", add_special_tokens=False)
    eos = tok.eos_token_id
    info = gm.TokenizerInfo.from_huggingface(tok, stop_token_ids=[newline])
    assert info.stop_token_ids == tuple(sorted({newline, eos})) and newline != eos
    m = gm.compile("json", info, cache_dir=False).matcher()
    assert m.accept_tokens(tok.encode("[1]", add_special_tokens=False))
    allowed = set(m.allowed_token_ids().tolist())
    assert {newline, eos} <= allowed and m.accept_token(newline) and m.is_terminated()


# -- matcher --------------------------------------------------------------------------------------------

def _walk_masks(compiled, ids) -> list[np.ndarray]:
    m = compiled.matcher()
    bm = np.zeros(compiled.core_vocab.n_words, dtype=np.int32)
    out = []
    for t in ids:
        m.fill_next_token_bitmask(bm)
        out.append(bm.copy())
        assert m.accept_token(t)
    return out


def test_independent_matchers_in_threads(cache_dir):
    tok = load_tokenizer(BYTE_LEVEL)
    compiled = compiled_for("json", BYTE_LEVEL, cache_dir)
    docs = [tok.encode(json.dumps(d)) for d in real_json_documents()[:16]]
    expected = [_walk_masks(compiled, ids) for ids in docs]
    results: dict[int, list] = {}

    def work(i):
        for _ in range(3):
            results[i] = [_walk_masks(compiled, ids) for ids in docs[i::4]]

    assert not run_on_threads(work, 4)
    # Every thread left a result for each of its documents, a mask for each of their tokens.
    assert sorted(results) == [0, 1, 2, 3]
    for i in range(4):
        for got, want in zip(results[i], expected[i::4], strict=True):
            assert all(np.array_equal(a, b) for a, b in zip(got, want, strict=True))


def test_long_run_does_not_grow_memory(cache_dir):
    tok = load_tokenizer(BYTE_LEVEL)
    compiled = compiled_for("json", BYTE_LEVEL, cache_dir)
    ids = tok.encode(json.dumps(real_json_documents()[:40]))
    bm = gm.allocate_token_bitmask(1, compiled.vocab_size)
    proc = psutil.Process()

    def run(steps: int, matchers: int):
        done = 0
        m = compiled.matcher(max_rollback_tokens=64)
        while done < steps:
            for t in ids:
                m.fill_next_token_bitmask(bm)
                assert m.accept_token(t)
                done += 1
            m.rollback(32)
            m.reset()
        assert m.num_accepted_tokens == 0
        for _ in range(matchers):
            other = compiled.matcher()
            other.accept_tokens(ids[:20])
            del other
        gc.collect()

    run(10_000, 300)  # warm up allocators
    before = proc.memory_info().rss
    run(100_000, 3000)
    grown = proc.memory_info().rss - before
    assert grown < 8 * 2**20, f"memory grew by {grown / 2**20:.1f} MiB"
    # One matcher that never resets keeps a bounded history with max_rollback_tokens.
    m = compiled.matcher(max_rollback_tokens=100)
    long_array = tok.encode("[" + "1, " * 20000 + "1]")
    assert m.accept_tokens(long_array) and m.num_accepted_tokens < 200


# -- cache -------------------------------------------------------------------------------------------------

_COMPILE_SCRIPT = """
import sys, hashlib, numpy as np, grammask as gm
from transformers import PreTrainedTokenizerFast
tok = PreTrainedTokenizerFast(tokenizer_file=sys.argv[2])
info = gm.TokenizerInfo.from_huggingface(tok, stop_token_ids=[int(sys.argv[3])])
c = gm.compile("json", info, cache_dir=sys.argv[1])
m = c.matcher()
h = hashlib.sha256()
for t in tok.encode('{"a": [1, "x", null]}'):
    h.update(m.allowed_token_ids().tobytes()); m.accept_token(t)
print(h.hexdigest())
"""


def test_two_processes_compiling_at_once(tmp_path, tmp_path_factory):
    tok = load_tokenizer(BYTE_LEVEL)
    tok_file = str(tmp_path_factory.mktemp("tokenizer") / "tokenizer.json")
    tok.backend_tokenizer.save(tok_file)  # the real vocabulary, as a file the processes read quickly
    args = [str(tmp_path), tok_file, str(tok.eos_token_id)]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    procs = [subprocess.Popen([sys.executable, "-c", _COMPILE_SCRIPT, *args],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for _ in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert all(p.returncode == 0 for p in procs), [o[1][-500:] for o in outs]
    digests = {o[0].strip() for o in outs}
    assert len(digests) == 1
    assert len(list(tmp_path.glob("*.npz"))) == 1 and not list(tmp_path.glob("*.tmp"))
    again = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT, *args], capture_output=True,
                           text=True, env=env, timeout=300)
    assert again.stdout.strip() in digests


# -- fuzzing -----------------------------------------------------------------------------------------------

JSON_GRAMMAR = gm.Grammar.builtin("json")
JSONISH = st.text(alphabet=st.sampled_from(list('{}[],:"\\ \n\t0123456789.-+eEtrufalsnbu\u00e9\u20ac')), max_size=40)


def _mutate(text: str, data) -> str:
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(text)))
        op = data.draw(st.sampled_from(["delete", "insert", "swap"]))
        if op == "delete" and i < len(text):
            text = text[:i] + text[i + 1:]
        elif op == "insert":
            text = text[:i] + data.draw(st.sampled_from(list('{}[],:"\\ 0e.-tn\x01'))) + text[i:]
        elif op == "swap" and i + 1 < len(text):
            text = text[:i] + text[i + 1] + text[i] + text[i + 2:]
    return text


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(JSONISH)
def test_fuzz_validator_agrees_with_json_loads(text):
    assert JSON_GRAMMAR.validate(text).ok == json_parses(text), text


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=30))
def test_fuzz_random_bytes(data):
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        assert not JSON_GRAMMAR.validate(data).ok
        return
    assert JSON_GRAMMAR.validate(data).ok == json_parses(text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzz_mutated_real_documents(data):
    docs = real_json_documents()
    doc = docs[data.draw(st.integers(0, len(docs) - 1))]
    text = json.dumps(doc, indent=data.draw(st.sampled_from([None, 2])), ensure_ascii=data.draw(st.booleans()))
    mutated = _mutate(text, data)
    assert JSON_GRAMMAR.validate(mutated).ok == json_parses(mutated), mutated


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_token_sequences_agree_with_validator(cache_dir, data):
    info = tokenizer_info(BYTE_LEVEL)
    tok = load_tokenizer(BYTE_LEVEL)
    compiled = compiled_for("json", BYTE_LEVEL, cache_dir)
    pool = sorted({t for s in ['{"a": [1, 2.5, true, null]}', '["x\\n", {}, -0.1e+2]', ' \n  "\u00e9"'] for t in tok.encode(s)})
    m = compiled.matcher()
    text = b""
    for _ in range(data.draw(st.integers(1, 25))):
        t = data.draw(st.one_of(st.sampled_from(pool), st.integers(0, info.vocab_size - 1)))
        if t in info.stop_token_ids:
            assert m.accept_token(t) == JSON_GRAMMAR.validate(text).ok
            return
        candidate = text + (info.token_bytes[t] or b"")
        expected = info.token_bytes[t] is not None and JSON_GRAMMAR.validate(candidate).prefix_ok
        assert m.accept_token(t) == expected, (text, info.token_bytes[t])
        if expected:
            text = candidate


# -- CLI ------------------------------------------------------------------------------------------------

def _cli(*args):
    return subprocess.run([sys.executable, "-m", "grammask", *args], capture_output=True, text=True, timeout=120)


def test_cli_bad_inputs(tmp_path):
    binary = tmp_path / "blob.bin"
    binary.write_bytes(b"\x00\xff" + bytes(range(256)))  # fixed bytes: the first one is already wrong
    res = _cli("validate", "-g", "json", str(binary))
    assert res.returncode == 1 and f"{binary}:1:" in res.stderr and "Traceback" not in res.stderr
    res = _cli("validate", "-g", "json", str(tmp_path))  # a directory
    assert res.returncode == 1 and "cannot read" in res.stderr and "Traceback" not in res.stderr
    res = _cli("validate", "-g", str(tmp_path / "missing.lark"), str(binary))
    assert res.returncode == 2 and "not found" in res.stderr and "Traceback" not in res.stderr
    broken = tmp_path / "broken.lark"
    broken.write_text("start: a\na: \"x\" (\n")
    res = _cli("validate", "-g", str(broken), str(binary))
    assert res.returncode == 2 and f"{broken}:2:" in res.stderr and len(res.stderr.strip().splitlines()) == 1
    res = _cli("validate", "-g", "cobol", str(binary))
    assert res.returncode == 2 and "unknown grammar 'cobol'" in res.stderr
    res = _cli("frobnicate")
    assert res.returncode == 2 and "Traceback" not in res.stderr


def test_validate_rejects_unencodable_text():
    with pytest.raises(ValueError, match="lone surrogate"):
        JSON_GRAMMAR.validate('"\ud800"')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert JSON_GRAMMAR.validate('"\\ud800"').ok  # the escape is fine
