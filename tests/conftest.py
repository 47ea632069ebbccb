"""Shared fixtures: corpora, real tokenizers of every family, compiled JSON tables.

Material from the machine (the interpreter's standard library, the Go toolchain's tree, installed
packages' JSON and tokenizers) is always used. Material that only ../shared/corpora holds is used where
present; where it is not, its tests skip with one line per corpus (`shared_corpus`).
"""

from __future__ import annotations

import json
import threading
from functools import lru_cache
from pathlib import Path

import pytest

import grammask as gm
from bench import python_oracle, workload

# Tokenizer families: the packaged ones always, the shared ones where ../shared/corpora is present.
BYTE_LEVEL, SENTENCEPIECE = workload.BYTE_LEVEL, workload.SENTENCEPIECE
FAMILIES = workload.FAMILIES
# One family of each kind the engine reads, the defaults first, then the shared pair (gpt2, llama2).
BOTH_KINDS = [BYTE_LEVEL, SENTENCEPIECE, "gpt2", "llama2"]

# What each shared corpus is, for its one skip line (the longest matching path prefix names it).
SHARED = {
    ("json", "JSONTestSuite"): "JSONTestSuite",
    ("jsonschema", "JSON-Schema-Test-Suite"): "JSON-Schema-Test-Suite",
    ("jsonschema",): "JSONSchemaBench (MaskBench)",
    ("python", "cpython-3.11-lib"): "CPython 3.11 corpus",
    ("python", "humaneval"): "HumanEval",
    ("go", "go-1.19-stdlib"): "Go 1.19 corpus",
    ("go", "mbgp"): "MBGP",
    ("tokenizers",): "gpt2, llama2, phi-2 and phi-3-mini tokenizer",
}


def shared_corpus(*parts: str) -> Path:
    """A path under ../shared/corpora; where it is absent, the test (or, at module level, the module)
    is skipped. Every skip comes from this one line with one reason per corpus, so `pytest -rs` names
    each missing corpus once."""
    path = workload.shared(*parts)
    if path is None:
        what = SHARED[max((prefix for prefix in SHARED if parts[: len(prefix)] == prefix), key=len)]
        pytest.skip(f"../shared/corpora not present: {what} tests skipped (CI has it; set GRAMMASK_CORPORA)",
                    allow_module_level=True)
    return path


def load_tokenizer(family: str):
    if family in workload.SHARED_FAMILIES:
        shared_corpus("tokenizers", f"{family}.tokenizer.json")
    return workload.load_tokenizer(family)


# Corpora of real code: the machine's own always, the shared one where present.
CODE_CORPORA = ["machine", "shared"]


def python_corpus(which: str = "machine") -> list[Path]:
    if which == "machine":
        return list(workload.python_stdlib_files())
    return sorted(shared_corpus("python", "cpython-3.11-lib").rglob("*.py"))


def go_corpus(which: str = "machine") -> list[Path]:
    if which == "machine":
        return list(workload.go_source_files())
    return sorted(shared_corpus("go", "go-1.19-stdlib").rglob("*.go"))


@lru_cache(maxsize=None)
def tokenizer_info(family: str) -> gm.TokenizerInfo:
    return gm.TokenizerInfo.from_huggingface(load_tokenizer(family))


def run_on_threads(work, n: int) -> list:
    """work(i) for i in range(n), on n threads started together; the exceptions they raised."""
    errors, start = [], threading.Barrier(n)

    def run(i):
        try:
            start.wait()
            work(i)
        except Exception as exc:  # noqa: BLE001 - returned to the test
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors


def walk_masks(compiled, ids) -> list:
    """The allowed token ids before each of `ids` and after the last, from a new matcher."""
    m = compiled.matcher()
    out = []
    for t in ids:
        out.append(m.allowed_token_ids())
        assert m.accept_token(t)
    out.append(m.allowed_token_ids())
    return out


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("grammask-cache")


_compiled: dict = {}


# The Python tests judge with the running interpreter (ast.parse, compile): "python" in them is the
# grammar of its version, not the newest (tests/test_python_versions.py covers the others).
PYTHON_HERE = f"python{python_oracle.RUNNING}"


def builtin_here(name: str) -> gm.Grammar:
    return gm.Grammar.builtin(PYTHON_HERE if name == "python" else name)


def compiled_for(grammar: str, family: str, cache_dir) -> gm.CompiledGrammar:
    key = (grammar, family)
    if key not in _compiled:
        _compiled[key] = gm.compile(builtin_here(grammar), tokenizer_info(family), cache_dir=cache_dir)
    return _compiled[key]


@lru_cache(maxsize=1)
def real_json_documents() -> list:
    return workload.real_json_documents()


json_texts = workload.json_texts


def json_parses(text) -> bool:
    """The oracle: Python's json module, with NaN/Infinity (not JSON) rejected."""
    def reject(name):
        raise ValueError(name)

    try:
        json.loads(text, parse_constant=reject)
        return True
    except ValueError:
        return False


def decoded_text(info: gm.TokenizerInfo, ids) -> bytes:
    """The bytes the matcher judges: token bytes, with the decoder's first leading space dropped."""
    out = b"".join(info.token_bytes[i] for i in ids)
    if info.strips_leading_space and out.startswith(b" "):
        out = out[1:]
    return out


def word_walk(matcher, info: gm.TokenizerInfo, words: set, rng, max_steps: int, stop_from: int):
    """One random walk under the mask, among tokens whose non-blank bytes are in `words` (a subset
    grammar's NAME would take keywords it lacks), stopping more often after `stop_from` steps. Asserts
    the mask is never empty and every picked token is accepted. Returns (bytes, ended with a stop)."""
    import numpy as np

    usable = _usable(info, frozenset(words))
    is_stop = np.zeros(info.vocab_size, bool)
    is_stop[list(info.stop_token_ids)] = True
    matcher.reset()
    ids = []
    for step in range(max_steps):
        allowed = matcher.allowed_token_ids()
        assert len(allowed), decoded_text(info, ids)
        stops, small = allowed[is_stop[allowed]], allowed[usable[allowed] & ~is_stop[allowed]]
        if len(stops) and step > stop_from and rng.random() < 0.4:
            allowed = stops
        elif len(small):
            allowed = small
        t = int(rng.choice(allowed))
        assert matcher.accept_token(t)
        if is_stop[t]:
            return decoded_text(info, ids), True
        ids.append(t)
    return decoded_text(info, ids), False


@lru_cache(maxsize=8)
def _usable(info: gm.TokenizerInfo, words: frozenset):
    import numpy as np

    usable = np.zeros(info.vocab_size, bool)
    usable[: len(info.token_bytes)] = [b is not None and b.strip(b" \t\n") in words for b in info.token_bytes]
    return usable


def walk_text(matcher, tok, text: str) -> list[int]:
    """Feed `text`'s tokens one by one from a reset matcher, asserting each is in the mask first."""
    ids = tok.encode(text, add_special_tokens=False)
    matcher.reset()
    for i, t in enumerate(ids):
        assert t in matcher.allowed_token_ids(), (text[:80], tok.decode(ids[:i])[-80:])
        assert matcher.accept_token(t)
    return ids


def mutate_lines(text: str, rng, insert_chars: str, edit_line) -> str:
    """One random edit: delete a line or a character, insert one of `insert_chars`, `edit_line(line, rng)`
    (None when it does not apply), swap two lines, or truncate the text."""
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    kind = rng.randrange(6)
    line = lines[i]
    edited = edit_line(line, rng) if kind == 3 else None
    if kind == 0:
        del lines[i]
    elif kind == 1 and line:
        j = rng.randrange(len(line))
        lines[i] = line[:j] + line[j + 1:]
    elif kind == 2:
        j = rng.randrange(len(line) + 1)
        lines[i] = line[:j] + rng.choice(insert_chars) + line[j:]
    elif edited is not None:
        lines[i] = edited
    elif kind == 4 and i:
        lines[i], lines[i - 1] = lines[i - 1], line
    else:
        lines = lines[:i] + [line[: rng.randrange(len(line) + 1)]]
    return "\n".join(lines)


def mutation_agreement(paths, per_file: int, mutate, reference_error, grammar, known,
                       open_bug=None) -> tuple[int, int, list]:
    """Mutate each file `per_file` times (seed 2024) and compare the validator with the reference parser
    (`reference_error(text)`: None when it accepts). Returns (total, agreeing, disagreements that no
    message in `known` explains and that are not texts `open_bug(text)` recognizes: a grammar bug that a
    strict xfail test pins)."""
    import random

    rng = random.Random(2024)
    total = agree = 0
    unknown = []
    for path in paths:
        text = path.read_text(encoding="utf-8")
        for _ in range(per_file):
            mutated = mutate(text, rng)
            error = reference_error(mutated)
            total += 1
            if grammar.validate(mutated).ok == (error is None):
                agree += 1
            elif (error is None or not any(k in error for k in known)) and not (open_bug and open_bug(mutated)):
                unknown.append((path.name, error, grammar.validate(mutated).message))
    return total, agree, unknown


def walks_parse(matcher, info: gm.TokenizerInfo, words: set, rng, walks: int, grammar, reference_error,
                max_steps: int, stop_from: int) -> int:
    """Random word walks under the mask: each must reach a stop token with a text the reference parser
    accepts, or end as a valid prefix. Returns how many stopped."""
    ended = 0
    for _ in range(walks):
        data, stopped = word_walk(matcher, info, words, rng, max_steps=max_steps, stop_from=stop_from)
        if stopped:
            ended += 1
            text = data.decode("utf-8")
            assert reference_error(text) is None, (text, reference_error(text))
        else:
            assert grammar.validate(data).prefix_ok
    return ended


def assert_masks_follow_validator(grammar_text: str, family: str, prefixes, cache_dir) -> None:
    """The Lark grammar compiled for `family`: after each prefix, no token's mask bit differs from the
    validator's word (mask_disagreements)."""
    grammar = gm.Grammar.from_lark(grammar_text)
    info = tokenizer_info(family)
    compiled = gm.compile(grammar, info, cache_dir=cache_dir)
    for prefix in prefixes:
        wrong = mask_disagreements(compiled, grammar, info, prefix)
        assert not wrong, (prefix, wrong[:10], len(wrong))


def mask_disagreements(compiled, grammar, info: gm.TokenizerInfo, prefix: bytes) -> list:
    """After `prefix` (fed as raw text), the tokens whose bit in the mask differs from the validator's word
    on the prefix plus the token (prefix_ok): [(token bytes, in the mask)]; the stop tokens' bits must say
    whether the prefix is complete. The first token after a prefix is decoded without its leading space
    where the tokenizer drops it."""
    matcher = compiled.matcher()
    assert matcher.accept_string(prefix), prefix
    allowed = set(matcher.allowed_token_ids().tolist())
    stop = set(info.stop_token_ids)
    wrong = []
    for t, b in enumerate(info.token_bytes):
        if not b or t in stop:
            continue
        if info.strips_leading_space and b[:1] == b" ":
            b = b[1:]
        if (t in allowed) != grammar.validate(prefix + b).prefix_ok:
            wrong.append((b, t in allowed))
    if any(t in allowed for t in stop) != grammar.validate(prefix).ok:
        wrong.append((b"<stop>", any(t in allowed for t in stop)))
    return wrong


def lark_accepts(parser, text: str) -> bool:
    """Whether a Lark parser (the oracle of the Lark-grammar tests) takes the text."""
    import lark

    try:
        parser.parse(text)
    except lark.LarkError:
        return False
    return True
